"""A demo app: ``python -m fastcron start --app examples/demo.py`` shows runs within seconds and
records them in ./fastcron.db; in another terminal try ``python -m fastcron list``, ``history``,
``show flaky``, ``pause heartbeat``, ``run report``."""

from __future__ import annotations

import asyncio
import random
import time

from fastcron import JobContext, JobResult, job


@job("*/10 * * * * *", name="heartbeat", description="Every 10 seconds: an async heartbeat.")
async def heartbeat(ctx: JobContext) -> JobResult:
    await asyncio.sleep(0.05)
    return JobResult(message=f"alive at {ctx.scheduled:%H:%M:%S}")


@job("* * * * *", name="tidy_tmp", description="Every minute: a sync job in the thread pool.", timeout="30s")
def tidy_tmp() -> JobResult:
    time.sleep(0.2)
    return JobResult(message="tidied", processed=random.randint(0, 50))


@job("*/15 * * * * *", name="flaky", description="Fails about one time in three, retried once.", retries=1, retry_delay="1s")
async def flaky() -> str:
    if random.random() < 0.33:
        raise RuntimeError("upstream said no")
    return "ok"


@job("manual", name="report", description="Runs only when asked: python -m fastcron run report.")
def report() -> JobResult:
    return JobResult(message="report sent", processed=3)
