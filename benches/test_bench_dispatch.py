"""pytest-benchmark cases for the runtime's Python hot paths.

Not part of the test suite (pyproject's `testpaths` is `tests`). Run:

    python -m pytest benches/test_bench_dispatch.py --benchmark-only

- dispatch: one tick of 1,000 due fires of no-op async jobs, as the wheel reports them, through
  `Scheduler._dispatch` (admission, eager start, outcome bookkeeping); per round = 1,000 fires.
- register: 1,000 `scheduler.add(fn, expr, name=...)` calls on a started scheduler (validate,
  register, arm in the wheel); per round = 1,000 jobs.
- make_job: 1,000 job definitions without registering them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fastcron.job import JobContext, make_job
from fastcron.registry import Registry
from fastcron.scheduler import Scheduler

FIRES = 1_000


async def noop() -> None:
    return None


async def noop_with_ctx(ctx: JobContext) -> None:
    return None


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _armed_scheduler(loop: asyncio.AbstractEventLoop, func: Any) -> tuple[Scheduler, list[tuple[int, int, int, bool]]]:
    scheduler = Scheduler(Registry())
    for i in range(FIRES):
        scheduler.add(func, "* * * * * *", name=f"j{i}")

    async def arm() -> None:
        scheduler._ensure_loop()

    loop.run_until_complete(arm())
    scheduler._state = "running"
    for slot in scheduler._slots:
        assert slot is not None
        slot.armed = True
    now = time.time_ns() // 1_000_000
    return scheduler, [(i, 0, now, False) for i in range(FIRES)]


@pytest.mark.parametrize("func", [noop, noop_with_ctx], ids=["no-op", "no-op with ctx"])
def test_dispatch_1000_fires(benchmark: Any, loop: asyncio.AbstractEventLoop, func: Any) -> None:
    scheduler, fires = _armed_scheduler(loop, func)
    now = fires[0][2]

    def tick() -> None:
        scheduler._dispatch(fires, now)
        scheduler._started_buf.clear()
        scheduler._finished_buf.clear()

    benchmark(tick)
    assert scheduler.metrics("j0").runs >= 1


def test_register_1000_jobs(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    scheduler = Scheduler(Registry())
    counter = itertools.count()

    async def start() -> None:
        await scheduler.__aenter__()

    loop.run_until_complete(start())
    exprs = [f"{i % 60} {(i // 60) % 24} * * *" for i in range(FIRES)]

    def register() -> None:
        base = next(counter) * FIRES
        for i, expr in enumerate(exprs):
            scheduler.add(noop, expr, name=f"job-{base + i}")

    benchmark(register)
    loop.run_until_complete(scheduler.stop(grace=0))


def test_make_job_1000(benchmark: Any) -> None:
    names = [f"job-{i}" for i in range(FIRES)]

    def define() -> None:
        for name in names:
            make_job(noop, "*/5 * * * *", name=name, retries=2)

    benchmark(define)
