"""The scheduler, driven by FakeClock: fires, DST, retries, timeouts, overlap, misfire/catch-up,
cooldown, tenants, run-time control, isolation of failing jobs, run_due/run_job, stop and signals.

DST transitions exercised (Europe/Berlin, 2024): 03-31 02:00 -> 03:00 (a skipped hour) and
10-27 03:00 -> 02:00 (a repeated hour), under the core's Debian-cron rule (docs/cron.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fastcron import Cron, Once
from fastcron.errors import (
    ConfigError,
    DuplicateJobError,
    JobCancelledError,
    JobLookupError,
    JobTimeoutError,
    SchedulerStateError,
)
from fastcron._clock import to_ms
from fastcron.abc import JobState
from fastcron.events import Event
from fastcron.job import JobContext, JobResult, Run, Schedule
from fastcron.registry import Registry
from fastcron.scheduler import Scheduler, run_loop
from fastcron.stores.memory import MemoryStore
from fastcron.testing import FakeClock

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2024, 1, 1, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Recorder:
    """Collects events by kind."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.events: list[Event] = []
        scheduler.on("*", self.events.append)

    def kinds(self, job: str | None = None) -> list[str]:
        return [str(e.kind) for e in self.events if job is None or e.job == job]

    def of(self, kind: str, job: str | None = None) -> list[Event]:
        return [e for e in self.events if e.kind == kind and (job is None or e.job == job)]


# ------------------------------------------------------------------------------------------ fires


def test_fires_every_instant_in_order_with_context() -> None:
    reg = Registry()
    seen: list[tuple[str, str, int, str]] = []

    @reg.job("*/15 * * * *", name="quarter")
    async def quarter(ctx: JobContext) -> None:
        seen.append((iso(ctx.scheduled), ctx.trigger, ctx.attempt, ctx.job))

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock):
            await clock.advance("1h")

    run(main())
    assert seen == [
        ("2024-01-01T00:15:00Z", "schedule", 1, "quarter"),
        ("2024-01-01T00:30:00Z", "schedule", 1, "quarter"),
        ("2024-01-01T00:45:00Z", "schedule", 1, "quarter"),
        ("2024-01-01T01:00:00Z", "schedule", 1, "quarter"),
    ]


def test_each_schedule_calls_with_its_own_arguments() -> None:
    reg = Registry()
    calls: list[tuple[str, str, bool]] = []

    # overlap="queue": at midnight both schedules fire; with the default "skip" the second would
    # be skipped, since overlap is per job whatever the schedule.
    @reg.job([Schedule("0 0 * * *"), Schedule("0 * * * *", "hourly", deep=True)], name="cleanup", overlap="queue")
    def cleanup(mode: str = "daily", deep: bool = False, ctx: JobContext | None = None) -> JobResult:
        assert ctx is not None
        calls.append((iso(ctx.scheduled), mode, deep))
        return JobResult(message=mode, processed=1)

    async def main() -> None:
        clock = FakeClock(datetime(2024, 1, 1, 22, 30, tzinfo=UTC))
        async with Scheduler(reg, clock=clock):
            await clock.advance("2h")

    run(main())
    assert ("2024-01-01T23:00:00Z", "hourly", True) in calls
    assert ("2024-01-02T00:00:00Z", "daily", False) in calls
    assert ("2024-01-02T00:00:00Z", "hourly", True) in calls
    assert len(calls) == 3


def test_dst_berlin_skipped_hour_runs_fixed_time_job_at_first_instant_after_jump() -> None:
    reg = Registry()
    seen: list[datetime] = []

    @reg.job("30 2 * * *", name="nightly", tz="Europe/Berlin")
    async def nightly(ctx: JobContext) -> None:
        seen.append(ctx.scheduled)

    async def main() -> None:
        clock = FakeClock(datetime(2024, 3, 29, 12, tzinfo=UTC))
        async with Scheduler(reg, clock=clock):
            await clock.advance("3d")

    run(main())
    # 03-30 02:30 CET (01:30Z); 03-31 02:30 does not exist -> 03:00 CEST (01:00Z); 04-01 02:30 CEST (00:30Z)
    assert [iso(d) for d in seen] == ["2024-03-30T01:30:00Z", "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"]
    assert all(d.tzinfo == BERLIN for d in seen)


def test_dst_berlin_repeated_hour_hourly_job_runs_in_both_passes_fixed_job_once() -> None:
    reg = Registry()
    hourly: list[datetime] = []
    fixed: list[datetime] = []

    @reg.job("0 * * * *", name="hourly", tz="Europe/Berlin")
    async def every_hour(ctx: JobContext) -> None:
        hourly.append(ctx.scheduled)

    @reg.job("30 2 * * *", name="fixed", tz="Europe/Berlin")
    async def at_230(ctx: JobContext) -> None:
        fixed.append(ctx.scheduled)

    async def main() -> None:
        clock = FakeClock(datetime(2024, 10, 26, 22, 30, tzinfo=UTC))  # 00:30 CEST on the 27th
        async with Scheduler(reg, clock=clock):
            await clock.advance("5h")

    run(main())
    # Local 01:00 CEST, 02:00 CEST, 02:00 CET (fold=1), 03:00 CET, ... every real hour.
    assert [iso(d) for d in hourly] == [
        "2024-10-26T23:00:00Z",
        "2024-10-27T00:00:00Z",
        "2024-10-27T01:00:00Z",
        "2024-10-27T02:00:00Z",
        "2024-10-27T03:00:00Z",
    ]
    assert [d.fold for d in hourly][1:3] == [0, 1]
    assert [iso(d) for d in fixed] == ["2024-10-27T00:30:00Z"]  # first pass only


def test_fires_match_the_core_schedule_over_a_dst_week() -> None:
    reg = Registry()
    seen: list[int] = []

    @reg.job("*/20 1-3 * * *", name="early", tz="Europe/Berlin")
    async def early(ctx: JobContext) -> None:
        seen.append(ctx.scheduled_ms)

    start = datetime(2024, 3, 28, tzinfo=UTC)
    end = datetime(2024, 4, 3, tzinfo=UTC)

    async def main() -> None:
        clock = FakeClock(start)
        async with Scheduler(reg, clock=clock):
            await clock.advance_to(end)

    run(main())
    # Independently of fastcron: every real minute in (start, end] whose Berlin wall time matches.
    # A skipped wall time matches no real minute, so 03-31 02:xx never fires (not fixed-time).
    want = []
    minute = start + timedelta(minutes=1)
    while minute <= end:
        local = minute.astimezone(BERLIN)
        if local.minute % 20 == 0 and 1 <= local.hour <= 3:
            want.append(int(minute.timestamp() * 1000))
        minute += timedelta(minutes=1)
    assert seen == want
    assert seen == [int(d.timestamp() * 1000) for d in Cron("*/20 1-3 * * *", "Europe/Berlin").next_n(start, len(want))]
    march_31 = [ms for ms in seen if datetime.fromtimestamp(ms / 1000, BERLIN).day == 31]
    assert len(march_31) == 6


def test_once_job_fires_once_and_manual_job_never_fires() -> None:
    reg = Registry()
    fired: list[str] = []

    @reg.job(Once(datetime(2024, 1, 1, 0, 10, tzinfo=UTC)), name="once")
    async def once() -> None:
        fired.append("once")

    @reg.job("manual", name="by-hand")
    async def by_hand() -> None:
        fired.append("manual")

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            await clock.advance("1d")
            assert scheduler.metrics("once").next_run is None
            assert scheduler.next_runs("by-hand", 3) == []

    run(main())
    assert fired == ["once"]


# ------------------------------------------------------------------------------------- retries


def test_retries_back_off_exponentially_then_succeed() -> None:
    reg = Registry()
    attempts: list[tuple[int, str, str]] = []

    @reg.job("0 * * * *", name="flaky", retries=3, retry_delay="10s", retry_backoff=2, retry_jitter=0)
    async def flaky(ctx: JobContext) -> str:
        attempts.append((ctx.attempt, ctx.trigger, iso(datetime.fromtimestamp(clock.now_ms() / 1000, UTC))))
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return "ok"

    clock = FakeClock(START)

    async def main() -> Scheduler:
        async with Scheduler(reg, clock=clock) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("1h1m")
            assert [e.detail["delay"] for e in events.of("retrying")] == ["10s", "20s"]  # type: ignore[index]
            assert [str(e.error) for e in events.of("retrying")] == ["boom 1", "boom 2"]
            assert events.kinds("flaky").count("started") == 3
            assert events.of("succeeded")[0].result == "ok"
            return scheduler

    scheduler = run(main())
    assert attempts == [
        (1, "schedule", "2024-01-01T01:00:00Z"),
        (2, "retry", "2024-01-01T01:00:10Z"),
        (3, "retry", "2024-01-01T01:00:30Z"),
    ]
    m = scheduler.metrics("flaky")
    assert (m.runs, m.failures, m.last_status) == (1, 0, "succeeded")


def test_retry_delay_is_capped_and_jittered_within_bounds() -> None:
    reg = Registry()
    starts: list[int] = []

    @reg.job("0 1 * * *", name="j", retries=4, retry_delay="1m", retry_backoff=10, retry_max_delay="5m", retry_jitter=0.5)
    async def j() -> None:
        starts.append(clock.now_ms())
        raise ValueError("no")

    clock = FakeClock(START)

    async def main() -> None:
        async with Scheduler(reg, clock=clock) as scheduler:
            await clock.advance("2h")
            m = scheduler.metrics("j")
            assert (m.runs, m.failures, m.consecutive_failures, m.last_status) == (1, 1, 1, "failed")

    run(main())
    gaps = [(b - a) / 1000 for a, b in zip(starts, starts[1:])]
    assert len(gaps) == 4
    assert 30 <= gaps[0] <= 60  # 1m, shortened by up to half
    assert all(150 <= g <= 300 for g in gaps[1:])  # 10m and 100m capped at 5m, then jittered


def test_exhausted_retries_report_the_last_error() -> None:
    reg = Registry()

    @reg.job("manual", name="bad", retries=1, retry_delay="1s", retry_jitter=0)
    async def bad(ctx: JobContext) -> None:
        raise KeyError(f"attempt {ctx.attempt}")

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            task = asyncio.ensure_future(scheduler.run_job("bad"))
            await clock.advance("1s")
            with pytest.raises(KeyError, match="attempt 2"):
                await task

    run(main())


# ------------------------------------------------------------------------------------- timeouts


def test_async_timeout_cancels_the_run() -> None:
    reg = Registry()
    cancelled: list[bool] = []

    @reg.job("0 * * * *", name="hang", timeout="5m")
    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock, store=(store := MemoryStore())) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("1h4m")
            assert cancelled == []
            assert scheduler.metrics("hang").state == "running"
            await clock.advance("1m")
            assert cancelled == [True]
            (timed_out,) = events.of("timed_out")
            assert isinstance(timed_out.error, JobTimeoutError)
            assert str(timed_out.error) == "job 'hang' timed out after 5m"
            assert scheduler.metrics("hang").state == "idle"
        (record,) = store.runs("hang")
        assert record.status == "timed_out"
        assert record.duration == 300.0

    run(main())


def test_thread_timeout_abandons_the_thread_and_sets_cancelled() -> None:
    reg = Registry()
    observed: list[bool] = []
    release = threading.Event()

    @reg.job("manual", name="slow-thread", timeout="1m")
    def slow_thread(ctx: JobContext) -> None:
        # A cooperative thread job polls ctx.cancelled.
        observed.append(ctx.cancelled.wait(10))
        release.set()

    async def main() -> None:
        clock = FakeClock(START, settle_timeout=0.05)
        async with Scheduler(reg, clock=clock) as scheduler:
            task = asyncio.ensure_future(scheduler.run_job("slow-thread"))
            await clock.advance("30s")
            assert not task.done()
            await clock.advance("31s")
            with pytest.raises(JobTimeoutError, match="timed out after 1m"):
                await task
            await asyncio.to_thread(release.wait, 5)

    run(main())
    assert observed == [True]


# -------------------------------------------------------------------------------------- overlap


def _overlap_registry(policy: str, **extra: Any) -> tuple[Registry, list[tuple[str, str]]]:
    reg = Registry()
    log_: list[tuple[str, str]] = []

    @reg.job("* * * * *", name="slow", overlap=policy, **extra)
    async def slow(ctx: JobContext) -> None:
        log_.append(("start", iso(ctx.scheduled)))
        try:
            await ctx.sleep("90s")
        except asyncio.CancelledError:
            log_.append(("cancelled", iso(ctx.scheduled)))
            raise
        log_.append(("end", iso(ctx.scheduled)))

    return reg, log_


def test_overlap_skip_drops_fires_while_running() -> None:
    reg, log_ = _overlap_registry("skip")

    async def main() -> Recorder:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("4m")
            assert log_ == [
                ("start", "2024-01-01T00:01:00Z"),
                ("end", "2024-01-01T00:01:00Z"),  # at 00:02:30
                ("start", "2024-01-01T00:03:00Z"),
            ]
            return events

    events = run(main())
    assert log_[-1] == ("cancelled", "2024-01-01T00:03:00Z")  # by stop(): 00:04:30 is past the grace
    skipped = events.of("skipped")
    assert [iso(e.scheduled) for e in skipped] == ["2024-01-01T00:02:00Z", "2024-01-01T00:04:00Z"]  # type: ignore[arg-type]
    assert skipped[0].detail == {"overlap": "skip", "running": 1}


def test_overlap_queue_starts_the_next_fire_when_the_running_one_ends() -> None:
    reg, log_ = _overlap_registry("queue")
    starts: list[int] = []

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            scheduler.on("started", lambda e: starts.append(e.at_ms))
            await clock.advance("3m")

    run(main())
    assert log_[:3] == [
        ("start", "2024-01-01T00:01:00Z"),
        ("end", "2024-01-01T00:01:00Z"),
        ("start", "2024-01-01T00:02:00Z"),
    ]
    assert (starts[1] - starts[0]) / 1000 == 90  # the queued fire started when the first ended


def test_overlap_replace_cancels_the_running_one() -> None:
    reg, log_ = _overlap_registry("replace")

    async def main() -> list[Run]:
        clock = FakeClock(START)
        store = MemoryStore()
        async with Scheduler(reg, clock=clock, store=store):
            await clock.advance("2m")
        return store.runs("slow")

    runs = run(main())
    assert log_[:3] == [
        ("start", "2024-01-01T00:01:00Z"),
        ("cancelled", "2024-01-01T00:01:00Z"),
        ("start", "2024-01-01T00:02:00Z"),
    ]
    assert runs[0].status == "cancelled"
    assert isinstance(runs[0].error, JobCancelledError)
    assert "replaced" in str(runs[0].error)


def test_overlap_allow_runs_concurrently() -> None:
    reg, log_ = _overlap_registry("allow")

    async def main() -> int:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            await clock.advance("2m")
            return scheduler.metrics("slow").running

    assert run(main()) == 2
    assert [e for e in log_ if e[0] == "start"] == [("start", "2024-01-01T00:01:00Z"), ("start", "2024-01-01T00:02:00Z")]


def test_per_job_max_concurrency_with_queue() -> None:
    reg, log_ = _overlap_registry("queue", max_concurrency=2)

    async def main() -> list[int]:
        clock = FakeClock(START)
        running = []
        async with Scheduler(reg, clock=clock) as scheduler:
            for _ in range(4):
                await clock.advance("1m")
                running.append(scheduler.metrics("slow").running)
        return running

    # 00:01 starts; 00:02 starts (2 running); 00:03 queued until 00:02:30 ends; ...
    assert run(main()) == [1, 2, 2, 2]


def test_global_max_concurrency_makes_fires_wait_their_turn() -> None:
    reg = Registry()
    order: list[tuple[str, int]] = []

    for name in ("a", "b", "c"):

        async def work(ctx: JobContext, _name: str = name) -> None:
            order.append((_name, clock.now_ms()))
            await ctx.sleep("10s")

        reg.job("* * * * *", name=name)(work)

    clock = FakeClock(START)

    async def main() -> None:
        async with Scheduler(reg, clock=clock, max_concurrency=1):
            await clock.advance("1m30s")

    run(main())
    t0 = order[0][1]
    assert [(n, (t - t0) // 1000) for n, t in order] == [("a", 0), ("b", 10), ("c", 20)]


# ------------------------------------------------------------------------------ misfire, catch-up


def _late_start(catchup: str) -> tuple[list[str], list[Event]]:
    """Restart at 00:05:30 after the store saw the 00:00 fire: 00:01..00:05 are 30-270 s late."""
    reg = Registry()
    ran: list[str] = []

    @reg.job("* * * * *", name="minutely", misfire_grace="10s", catchup=catchup)
    async def minutely(ctx: JobContext) -> None:
        ran.append(f"{iso(ctx.scheduled)} {ctx.trigger}")

    store = MemoryStore()
    run(store.save_job_states([JobState("minutely", last_scheduled_ms=int(START.timestamp() * 1000))]))

    async def main() -> list[Event]:
        clock = FakeClock(datetime(2024, 1, 1, 0, 5, 30, tzinfo=UTC))
        async with Scheduler(reg, clock=clock, store=store) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("40s")
            return events.events

    events = run(main())
    return ran, events


def test_catchup_skip_records_every_late_fire_as_missed() -> None:
    ran, events = _late_start("skip")
    missed = [iso(e.scheduled) for e in events if e.kind == "missed"]  # type: ignore[arg-type]
    assert missed == [f"2024-01-01T00:0{m}:00Z" for m in range(1, 6)]
    assert ran == ["2024-01-01T00:06:00Z schedule"]
    assert events[0].detail == {"misfire_grace": "10s", "catchup": "skip"}


def test_catchup_latest_runs_only_the_newest_late_fire() -> None:
    ran, events = _late_start("latest")
    assert ran == ["2024-01-01T00:05:00Z catch-up", "2024-01-01T00:06:00Z schedule"]
    assert len([e for e in events if e.kind == "missed"]) == 4


def test_catchup_all_runs_every_late_fire() -> None:
    ran, events = _late_start("all")
    assert ran == [f"2024-01-01T00:0{m}:00Z catch-up" for m in range(1, 6)] + ["2024-01-01T00:06:00Z schedule"]
    assert not [e for e in events if e.kind == "missed"]


def test_late_fires_within_grace_run_normally() -> None:
    reg = Registry()
    ran: list[str] = []

    @reg.job("* * * * *", name="m", misfire_grace="5m", catchup="skip")
    async def m(ctx: JobContext) -> None:
        ran.append(ctx.trigger)

    store = MemoryStore()
    run(store.save_job_states([JobState("m", last_scheduled_ms=int(START.timestamp() * 1000))]))

    async def main() -> None:
        clock = FakeClock(datetime(2024, 1, 1, 0, 3, 30, tzinfo=UTC))
        async with Scheduler(reg, clock=clock, store=store):
            await clock.advance("1s")

    run(main())
    assert ran == ["schedule"] * 3


# -------------------------------------------------------------------------------------- cooldown


def test_cooldown_pauses_after_consecutive_failures_then_resumes() -> None:
    reg = Registry()
    fired: list[str] = []

    @reg.job("* * * * *", name="broken", cooldown_after=2, cooldown="10m")
    async def broken(ctx: JobContext) -> None:
        fired.append(iso(ctx.scheduled))
        raise RuntimeError("down")

    async def main() -> Recorder:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("2m")
            assert scheduler.metrics("broken").state == "cooldown"
            assert scheduler.metrics("broken").next_run is None
            await clock.advance("10m")
            assert scheduler.metrics("broken").state == "idle"
            await clock.advance("1m")
            return events

    events = run(main())
    # Fails at 00:01 and 00:02 -> cooling until 00:12; resumes and fires at 00:13.
    assert fired == ["2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z", "2024-01-01T00:13:00Z"]
    (cooldown,) = events.of("cooldown")
    assert cooldown.detail == {"until": "2024-01-01T00:12:00+00:00", "consecutive_failures": 2}
    assert [e.detail for e in events.of("resumed")] == [{"after": "cooldown"}]


# --------------------------------------------------------------------------------------- tenants


def test_tenants_run_once_per_tenant_with_the_id_in_ctx() -> None:
    reg = Registry()
    seen: list[tuple[str, str]] = []

    @reg.job("0 * * * *", name="per-tenant", tenants=lambda: ["acme", "globex", "acme"])
    async def per_tenant(ctx: JobContext) -> None:
        seen.append((ctx.tenant, iso(ctx.scheduled)))
        await ctx.sleep("2h")  # overlap is per tenant: would skip the next fire of the same tenant

    async def tenant_ids() -> list[str]:
        return ["t1"]

    @reg.job("0 * * * *", name="async-tenants", tenants=tenant_ids)
    def sync_job(ctx: JobContext) -> str:
        seen.append((ctx.tenant, "sync"))
        return ctx.tenant

    async def main() -> Recorder:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            events = Recorder(scheduler)
            await clock.advance("2h")
            return events

    events = run(main())
    assert seen.count(("acme", "2024-01-01T01:00:00Z")) == 1
    assert ("globex", "2024-01-01T01:00:00Z") in seen
    assert ("t1", "sync") in seen
    assert sorted(e.tenant for e in events.of("skipped", "per-tenant")) == ["acme", "globex"]


def test_failing_tenant_provider_is_a_failed_run() -> None:
    reg = Registry()

    def no_tenants() -> list[str]:
        raise ConnectionError("tenant db down")

    @reg.job("0 * * * *", name="t", tenants=no_tenants)
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never called")

    async def main() -> list[Run]:
        scheduler = Scheduler(reg, clock=FakeClock(START))
        return await scheduler.run_due(datetime(2024, 1, 1, 1, tzinfo=UTC))

    (failed,) = run(main())
    assert failed.status == "failed"
    assert "tenants() failed: ConnectionError: tenant db down" in str(failed.error)


# ----------------------------------------------------------------------------- run-time control


def test_pause_resume_enable_disable_reschedule_add_remove_at_run_time() -> None:
    reg = Registry()
    fired: list[str] = []

    @reg.job("*/10 * * * *", name="j")
    async def j(ctx: JobContext) -> None:
        fired.append(iso(ctx.scheduled))

    async def extra() -> None:
        fired.append("extra")

    async def main() -> Recorder:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as s:
            events = Recorder(s)
            await clock.advance("10m")  # 00:10
            s.pause("j")
            assert s.metrics("j").state == "paused"
            await clock.advance("20m")  # 00:20, 00:30 not run
            s.resume("j")
            await clock.advance("10m")  # 00:40
            s.disable("j")
            assert s.metrics("j").state == "disabled"
            await clock.advance("10m")  # 00:50 not run
            s.enable("j")
            s.reschedule("j", "5 * * * *")
            assert s.next_runs("j", 2) == [datetime(2024, 1, 1, 1, 5, tzinfo=UTC), datetime(2024, 1, 1, 2, 5, tzinfo=UTC)]
            await clock.advance("20m")  # 01:05
            s.add(extra, "15 * * * *", name="extra")
            await clock.advance("10m")  # 01:15 extra
            s.remove("j")
            s.remove("extra")
            await clock.advance("2h")
            with pytest.raises(JobLookupError, match="no job named 'j'"):
                s.pause("j")
            return events

    events = run(main())
    assert fired == ["2024-01-01T00:10:00Z", "2024-01-01T00:40:00Z", "2024-01-01T01:05:00Z", "extra"]
    assert [e.kind for e in events.events if e.kind in ("paused", "resumed")] == ["paused", "resumed"]
    assert "j" not in reg


def test_add_many_registers_and_arms_all_or_none() -> None:
    reg = Registry()
    fired: list[str] = []

    async def hit(ctx: JobContext) -> None:
        fired.append(ctx.job)

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as s:
            jobs = s.add_many(hit, [("a", "*/2 * * * *"), ("b", Schedule("*/3 * * * *")), ("c", "manual")], retries=1)
            assert [j.name for j in jobs] == ["a", "b", "c"] and jobs[0].opts is jobs[1].opts
            with pytest.raises(DuplicateJobError, match="job name 'b' is used twice"):
                s.add_many(hit, [("d", "* * * * *"), ("b", "* * * * *")])
            assert "d" not in reg
            with pytest.raises(ConfigError, match="make_jobs: names come from the entries"):
                s.add_many(hit, [("e", "* * * * *")], name="x")
            await clock.advance("6m")

    run(main())
    assert sorted(fired) == ["a"] * 3 + ["b"] * 2


def test_add_many_of_simple_async_jobs_fires_them_in_the_core() -> None:
    """The bulk path arms a batch in one wheel call and the core starts its fires; a disabled
    batch is registered but not armed; each run is recorded with its job and instant."""
    hits: list[int] = []

    async def tick(n: int = 0) -> int:
        hits.append(n)
        return n

    async def main() -> None:
        clock = FakeClock(START)
        store = MemoryStore()
        async with Scheduler(Registry(), clock=clock, store=store) as s:
            jobs = s.add_many(tick, [(f"t{i}", "*/2 * * * *") for i in range(50)])
            s.add_many(tick, [(f"off{i}", "* * * * *") for i in range(5)], enabled=False)
            assert all(job.core_start is jobs[0].core_start for job in jobs)
            assert s.next_runs("t7", 1)[0] == START + timedelta(minutes=2)
            await clock.advance("6m")
            metrics = s.metrics("t7")
            assert (metrics.runs, metrics.last_status, metrics.state) == (3, "succeeded", "idle")
            assert s.metrics("off1").runs == 0 and s.metrics("off1").state == "disabled"
        runs = store.runs()
        assert len(runs) == 150 and {run.status for run in runs} == {"succeeded"}
        assert sorted({run.scheduled_ms for run in runs}) == [
            to_ms(START + timedelta(minutes=m)) for m in (2, 4, 6)
        ]

    run(main())
    assert len(hits) == 150


def test_next_runs_merges_schedules_in_the_job_zone() -> None:
    reg = Registry()

    @reg.job([Schedule("0 9 * * *"), Schedule("30 8 * * *")], name="morning", tz="Europe/Berlin")
    async def morning() -> None: ...

    s = Scheduler(reg, clock=FakeClock(datetime(2024, 6, 1, tzinfo=UTC)))
    got = s.next_runs("morning", 3)
    assert [d.strftime("%d %H:%M %Z") for d in got] == ["01 08:30 CEST", "01 09:00 CEST", "02 08:30 CEST"]
    with pytest.raises(JobLookupError, match="did you mean 'morning'"):
        s.next_runs("mourning")


def test_metrics_report_counters_state_and_next_run() -> None:
    reg = Registry()

    @reg.job("*/30 * * * *", name="m")
    async def m(ctx: JobContext) -> None:
        await ctx.sleep("10s")
        if ctx.scheduled.minute == 30:
            raise ValueError("half past")

    async def main() -> Any:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as s:
            await clock.advance("30m5s")
            assert s.metrics("m").state == "running"
            await clock.advance("30m10s")
            return s.metrics()

    metrics = run(main())["m"]
    assert (metrics.runs, metrics.failures, metrics.consecutive_failures) == (2, 1, 0)
    assert metrics.last_status == "succeeded"
    assert metrics.last_duration == 10.0
    assert metrics.last_run == datetime(2024, 1, 1, 1, tzinfo=UTC)
    assert metrics.next_run == datetime(2024, 1, 1, 1, 30, tzinfo=UTC)
    assert metrics.state == "idle"


# ------------------------------------------------------------------------------------ isolation


def test_failing_hanging_and_blocking_jobs_do_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    ticks: list[str] = []
    unblock = threading.Event()

    @reg.job("* * * * *", name="raises")
    async def raises() -> None:
        raise RuntimeError("always")

    @reg.job("* * * * *", name="hangs")
    async def hangs() -> None:
        await asyncio.Event().wait()

    @reg.job("* * * * *", name="blocks-a-thread")
    def blocks() -> None:
        unblock.wait(30)

    @reg.job("* * * * *", name="healthy")
    async def healthy(ctx: JobContext) -> None:
        ticks.append(iso(ctx.scheduled))

    @reg.job("* * * * *", name="healthy-sync")
    def healthy_sync() -> None:
        ticks.append("sync")

    async def main() -> Any:
        clock = FakeClock(START, settle_timeout=0.05)
        async with Scheduler(reg, clock=clock, max_threads=4) as s:
            await clock.advance("5m")
            unblock.set()
            return s.metrics()

    with caplog.at_level(logging.WARNING, logger="fastcron"):
        metrics = run(main())
    assert ticks.count("sync") == 5
    assert len([t for t in ticks if t != "sync"]) == 5
    assert metrics["raises"].failures == 5
    assert metrics["hangs"].running == 1
    assert "job 'raises' run raises#" in caplog.text and "RuntimeError: always" in caplog.text


def test_a_listener_that_raises_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    done: list[int] = []

    @reg.job("* * * * *", name="x")
    async def x() -> None:
        done.append(1)

    def bad_listener(event: Event) -> None:
        raise ValueError("listener bug")

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as s:
            s.on("started", bad_listener)
            await clock.advance("3m")

    with caplog.at_level(logging.ERROR, logger="fastcron.events"):
        run(main())
    assert done == [1, 1, 1]
    failures = [r for r in caplog.records if r.name == "fastcron.events"]
    assert len(failures) == 3
    assert all("listener bug" in str(r.exc_info[1]) for r in failures if r.exc_info)


def test_a_failing_store_does_not_stop_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(MemoryStore):
        async def record_finished(self, runs: Any) -> None:
            raise OSError("disk full")

    reg = Registry()
    done: list[int] = []

    @reg.job("* * * * *", name="x")
    async def x() -> None:
        done.append(1)

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock, store=BrokenStore()):
            await clock.advance("3m")

    with caplog.at_level(logging.ERROR, logger="fastcron"):
        run(main())
    assert done == [1, 1, 1]
    assert "disk full" in caplog.text


def test_a_result_that_is_not_json_fails_the_run() -> None:
    reg = Registry()

    @reg.job("manual", name="obj")
    async def obj() -> object:
        return object()

    async def main() -> None:
        with pytest.raises(TypeError, match="returned object, which is not JSON-serialisable"):
            await Scheduler(reg, clock=FakeClock(START)).run_job("obj")

    run(main())


# ------------------------------------------------------------------------------ run_due, run_job


def test_run_due_runs_what_is_due_at_an_instant_and_returns_the_runs() -> None:
    reg = Registry()

    @reg.job([Schedule("0 * * * *", "hourly"), Schedule("0 0 * * *", "daily")], name="a")
    async def a(kind: str) -> str:
        return kind

    @reg.job("30 * * * *", name="b")
    def b() -> None: ...

    @reg.job("0 * * * *", name="c")
    async def c() -> None:
        raise LookupError("c failed")

    async def main() -> None:
        s = Scheduler(reg, clock=FakeClock(START))
        runs = await s.run_due(datetime(2024, 1, 2, tzinfo=UTC))
        assert sorted((r.name, r.status, r.result) for r in runs) == [
            ("a", "succeeded", "daily"),
            ("a", "succeeded", "hourly"),
            ("c", "failed", None),
        ]
        assert all(r.scheduled == datetime(2024, 1, 2, tzinfo=UTC) for r in runs)
        runs = await s.run_due(datetime(2024, 1, 2, 0, 30, tzinfo=UTC).timestamp())  # Unix seconds
        assert [(r.name, r.status) for r in runs] == [("b", "succeeded")]
        assert await s.run_due(datetime(2024, 1, 2, 0, 31, tzinfo=UTC)) == []
        with pytest.raises(ConfigError, match="naive datetime"):
            await s.run_due(datetime(2024, 1, 2))

    run(main())


def test_run_due_applies_overlap_like_the_scheduler() -> None:
    reg = Registry()
    gate = asyncio.Event()

    @reg.job([Schedule("0 * * * *"), Schedule("0 */2 * * *")], name="one-at-a-time")
    async def one() -> None:
        await gate.wait()

    async def main() -> None:
        s = Scheduler(reg, clock=FakeClock(START))
        task = asyncio.ensure_future(s.run_due(datetime(2024, 1, 1, 2, tzinfo=UTC)))
        await asyncio.sleep(0.01)
        gate.set()
        runs = await task
        assert sorted(r.status for r in runs) == ["skipped", "succeeded"]

    run(main())


def test_run_job_returns_the_result_with_arguments_and_raises_failures() -> None:
    reg = Registry()

    @reg.job("manual", name="add")
    def add(a: int, b: int = 2, ctx: JobContext | None = None) -> JobResult:
        assert ctx is not None and ctx.trigger == "manual"
        return JobResult(message="added", processed=a + b)

    @reg.job("manual", name="fails")
    async def fails() -> None:
        raise PermissionError("nope")

    async def main() -> None:
        s = Scheduler(reg, clock=FakeClock(START))
        assert await s.run_job("add", 40) == JobResult(message="added", processed=42)
        assert await s.run_job("add", 1, b=1) == JobResult(message="added", processed=2)
        with pytest.raises(PermissionError, match="nope"):
            await s.run_job("fails")
        with pytest.raises(TypeError, match="missing 1 required positional argument"):
            await s.run_job("add")
        with pytest.raises(JobLookupError, match="no job named 'sub'"):
            await s.run_job("sub")

    run(main())


def test_eager_job_that_suspends_continues_in_a_task() -> None:
    reg = Registry()
    steps: list[str] = []

    @reg.job("manual", name="eager", eager=True, timeout="1m")
    async def eager(ctx: JobContext) -> int:
        steps.append("before")
        await ctx.sleep("10s")
        steps.append("after")
        await asyncio.sleep(0)
        return 7

    @reg.job("manual", name="eager-hang", eager=True, timeout="1m")
    async def eager_hang() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        clock = FakeClock(START)
        s = Scheduler(reg, clock=clock)
        assert reg.get("eager").eager is True
        task = asyncio.ensure_future(s.run_job("eager"))
        await clock.advance("9s")
        assert steps == ["before"]
        await clock.advance("1s")
        assert await task == 7
        hang = asyncio.ensure_future(s.run_job("eager-hang"))
        await clock.advance("1m")
        with pytest.raises(JobTimeoutError):
            await hang

    run(main())


def test_jitter_delays_each_fire_within_bounds() -> None:
    reg = Registry()
    delays: list[float] = []

    @reg.job("* * * * *", name="jittery", jitter="30s")
    async def jittery(ctx: JobContext) -> None:
        delays.append((clock.now_ms() - ctx.scheduled_ms) / 1000)

    clock = FakeClock(START)

    async def main() -> None:
        async with Scheduler(reg, clock=clock):
            await clock.advance("20m30s")

    run(main())
    assert len(delays) == 20
    assert all(0 <= d <= 30 for d in delays)
    assert len(set(delays)) > 1


# ------------------------------------------------------------------------------------- stopping


def test_stop_waits_for_grace_then_cancels() -> None:
    reg = Registry()
    outcome: list[str] = []

    @reg.job("manual", name="quick")
    async def quick() -> None:
        await asyncio.sleep(0.01)
        outcome.append("quick done")

    @reg.job("manual", name="stuck")
    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("stuck cancelled")
            raise

    async def main() -> None:
        store = MemoryStore()
        s = Scheduler(reg, store=store)
        main_task = asyncio.ensure_future(s.start())
        await asyncio.sleep(0)
        q = asyncio.ensure_future(s.run_job("quick"))
        st = asyncio.ensure_future(s.run_job("stuck"))
        await asyncio.sleep(0.001)
        began = time.monotonic()
        await s.stop(grace=0.2)
        assert 0.15 < time.monotonic() - began < 5  # grace 0.2 s, then cancellation
        await main_task
        assert await q is None
        with pytest.raises(JobCancelledError, match="cancelled \\(stopped\\)"):
            await st
        assert {r.name: r.status for r in store.runs()} == {"quick": "succeeded", "stuck": "cancelled"}
        with pytest.raises(SchedulerStateError, match="is stopped"):
            await s.run_job("quick")
        with pytest.raises(SchedulerStateError, match="start\\(\\) called on a scheduler that is stopped"):
            await s.start()

    run(main())
    assert outcome == ["quick done", "stuck cancelled"]


def test_destroy_is_stop() -> None:
    assert Scheduler.destroy is Scheduler.stop


def test_run_loop_uses_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_loop(loop_module()).startswith("uvloop")
    monkeypatch.setenv("FASTCRON_LOOP", "asyncio")
    assert run_loop(loop_module()).startswith("asyncio")


def test_sigterm_stops_run_forever_gracefully(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    marks = tmp_path / "marks.txt"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            from fastcron.registry import Registry
            from fastcron.scheduler import Scheduler

            reg = Registry()
            MARKS = {str(marks)!r}

            def mark(text):
                with open(MARKS, "a") as f:
                    f.write(text + "\\n")

            @reg.job("* * * * * *", name="tick", overlap="skip")
            async def tick():
                mark("start")
                await asyncio.sleep(0.5)
                mark("end")

            Scheduler(reg).run_forever(grace=5)
            mark("exited cleanly")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if marks.exists() and "start" in marks.read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the job never started: {proc.stderr.read() if proc.poll() is not None else ''}")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    lines = marks.read_text().split()
    assert lines[-1] == "cleanly"  # "exited cleanly" is the last thing written
    assert lines.count("start") == lines.count("end")  # the running job was allowed to finish


def test_sigterm_exits_even_with_a_hung_thread_job(tmp_path: Path) -> None:
    script = tmp_path / "hung.py"
    marks = tmp_path / "marks.txt"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from fastcron.registry import Registry
            from fastcron.scheduler import Scheduler

            reg = Registry()

            @reg.job("* * * * * *", name="hung")
            def hung():
                with open({str(marks)!r}, "a") as f:
                    f.write("hung\\n")
                time.sleep(3600)  # a thread cannot be cancelled: it must not keep the process alive

            Scheduler(reg).run_forever(grace=0.3)
            with open({str(marks)!r}, "a") as f:
                f.write("exited\\n")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (marks.exists() and "hung" in marks.read_text()):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        _, stderr = proc.communicate(timeout=20)
        assert time.monotonic() - began < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert marks.read_text().split()[-1] == "exited"


def test_a_dropped_scheduler_stops_following_its_registry() -> None:
    import gc

    reg = Registry()
    Scheduler(reg)
    gc.collect()
    assert len(reg._observers) == 1

    @reg.job("manual", name="after")
    async def after() -> None: ...

    assert reg._observers == []  # the dead scheduler's observer removed itself


def test_scheduler_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="max_concurrency: expected an integer >= 1, got 0"):
        Scheduler(Registry(), max_concurrency=0)
    with pytest.raises(ConfigError, match="max_threads: expected an integer >= 1"):
        Scheduler(Registry(), max_threads=-1)


def test_start_twice_is_an_error() -> None:
    async def main() -> None:
        async with Scheduler(Registry(), clock=FakeClock(START)) as s:
            with pytest.raises(SchedulerStateError, match="start\\(\\) called on a scheduler that is running"):
                await s.start()

    run(main())


def test_jobs_declared_while_running_are_armed() -> None:
    reg = Registry()
    fired: list[str] = []

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock):
            await clock.advance("1m")

            @reg.job("*/2 * * * *", name="late-comer")
            async def late_comer() -> None:
                fired.append(iso(datetime.fromtimestamp(clock.now_ms() / 1000, UTC)))

            await clock.advance("4m")

    run(main())
    assert fired == ["2024-01-01T00:02:00Z", "2024-01-01T00:04:00Z"]


def test_advance_3h_sees_every_run_of_several_jobs() -> None:
    reg = Registry()
    seen: list[tuple[str, str]] = []

    @reg.job("*/20 * * * *", name="a")
    async def a(ctx: JobContext) -> None:
        seen.append(("a", iso(ctx.scheduled)))

    @reg.job("0 */1 * * *", name="b")
    def b(ctx: JobContext) -> None:
        seen.append(("b", iso(ctx.scheduled)))

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock):
            await clock.advance("3h")

    run(main())
    assert len([s for s in seen if s[0] == "a"]) == 9
    assert [s[1] for s in seen if s[0] == "b"] == ["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z"]


def test_lateness_is_recorded_per_run() -> None:
    reg = Registry()

    @reg.job("0 * * * *", name="x")
    async def x() -> None: ...

    async def main() -> list[Run]:
        store = MemoryStore()
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock, store=store):
            await clock.advance("2h")
        return store.runs()

    runs = run(main())
    assert [r.lateness_ms for r in runs] == [0, 0]
    assert [r.run_id for r in runs] == ["x#1", "x#2"]
    assert runs[0].started == timedelta(hours=1) + START
