"""Testing helpers: a virtual clock the Scheduler runs on, and a dry run of a registry's schedule.

``FakeClock`` replaces the wall clock: time stands still until a test calls ``advance("3h")``,
which walks through every timer due in that span in order (scheduler wake-ups, timeouts, retry
delays, cooldown ends, ``ctx.sleep``), letting the loop settle after each, so the test sees every
run that would have happened, DST transitions included, in milliseconds of real time.

``simulate(registry, start, end)`` lists the fires a registry would produce in a span without
running anything, using the same timing wheel as the scheduler.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from fastcron import _core
from fastcron._clock import UTC, from_ms, to_ms
from fastcron._durations import DurationLike, parse_duration
from fastcron.errors import ConfigError
from fastcron.job import Job
from fastcron.registry import Registry

__all__ = ["FakeClock", "Fire", "simulate"]

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "deadline_ms")

    def __init__(self, deadline_ms: int, callback: Callable[[], object]) -> None:
        self.deadline_ms = deadline_ms
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A virtual wall clock for ``Scheduler(clock=FakeClock(...))``.

    ``start`` is an aware datetime or Unix seconds (default 2024-01-01T00:00Z). Time moves only
    through ``advance``/``advance_to``, which are coroutines: between timers they let the event
    loop run until it is idle and wait (up to ``settle_timeout`` real seconds per thread) for
    sync jobs running in threads. Jobs that should take virtual time use ``await ctx.sleep(...)``
    or ``await clock.sleep(...)``; real ``asyncio.sleep`` does not advance this clock.
    """

    max_sleep_ms: int | None = None

    def __init__(self, start: datetime | float = DEFAULT_START, *, settle_timeout: float = 2.0) -> None:
        self._now_ms = to_ms(start, field="start")
        self._timers: list[tuple[int, int, _FakeTimer]] = []
        self._seq = itertools.count()
        self._schedulers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._thread_deadlines: dict[Any, float] = {}
        self.settle_timeout = settle_timeout

    def _attach(self, scheduler: Any) -> None:
        self._schedulers.add(scheduler)

    def now_ms(self) -> int:
        return self._now_ms

    def now(self) -> datetime:
        """The virtual time as an aware UTC datetime."""
        return from_ms(self._now_ms)

    def call_at(self, deadline_ms: int, callback: Callable[[], object]) -> _FakeTimer:
        timer = _FakeTimer(deadline_ms, callback)
        heapq.heappush(self._timers, (deadline_ms, next(self._seq), timer))
        return timer

    async def sleep(self, duration: DurationLike) -> None:
        """Wait ``duration`` of virtual time."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_at(self._now_ms + parse_duration(duration, field="sleep"), wake)
        try:
            await fut
        finally:
            timer.cancel()

    async def advance(self, duration: DurationLike) -> None:
        """Move virtual time forward by ``duration`` ("3h", seconds, timedelta), firing every timer
        due on the way, in order, each at its own instant."""
        await self._advance_to_ms(self._now_ms + parse_duration(duration, field="advance"))

    async def advance_to(self, when: datetime | float) -> None:
        """Move virtual time forward to ``when`` (aware datetime or Unix seconds); refuses to go back."""
        await self._advance_to_ms(to_ms(when, field="advance_to"))

    async def _advance_to_ms(self, target: int) -> None:
        if target < self._now_ms:
            raise ConfigError(f"FakeClock cannot go back from {self.now().isoformat()} to {from_ms(target).isoformat()}")
        await self.settle()
        while True:
            deadline = self._next_deadline()
            if deadline is None or deadline > target:
                break
            self._now_ms = max(self._now_ms, deadline)
            self._run_due()
            await self.settle()
        self._now_ms = target
        await self.settle()

    async def run_until(self, futures: Iterable[asyncio.Future[Any]], limit_ms: int | None) -> None:
        """Move time forward timer by timer until every future is done, no timer is left, or the
        next timer is after ``limit_ms``; time stays at the last timer run (used by ``stop(grace)``)."""
        pending = list(futures)
        await self.settle()
        while not all(f.done() for f in pending):
            deadline = self._next_deadline()
            if deadline is None or (limit_ms is not None and deadline > limit_ms):
                return
            self._now_ms = max(self._now_ms, deadline)
            self._run_due()
            await self.settle()

    def _next_deadline(self) -> int | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _run_due(self) -> None:
        loop = asyncio.get_running_loop()
        timers = self._timers
        while timers and timers[0][0] <= self._now_ms:
            _, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.cancelled = True  # a timer runs once
                # From a loop callback, as a real timer would: outside the test's Task.
                loop.call_soon(timer.callback)

    async def settle(self) -> None:
        """Let the loop run until nothing is ready and no thread job is still working (each thread
        is waited for at most ``settle_timeout`` real seconds over its life)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # asyncio's queue of ready callbacks, when visible
        quiet = 0
        while quiet < 3:
            await asyncio.sleep(0)
            threads = self._pending_threads()
            if threads:
                quiet = 0
                await asyncio.wait(threads, timeout=min(self._thread_deadlines[f] for f in threads) - time.monotonic())
                continue
            quiet = quiet + 1 if ready is None or len(ready) == 0 else 0

    def _pending_threads(self) -> list[Any]:
        now = time.monotonic()
        pending = []
        for scheduler in list(self._schedulers):
            for future in scheduler._threads.pending:
                deadline = self._thread_deadlines.setdefault(future, now + self.settle_timeout)
                if deadline > now and not future.done():
                    pending.append(future)
        for future in [f for f in self._thread_deadlines if f.done()]:
            del self._thread_deadlines[future]
        return pending

    def __repr__(self) -> str:
        return f"<FakeClock {self.now().isoformat()}>"


class Fire(NamedTuple):
    """One fire found by ``simulate``: when, which job, which of its schedules, the call's arguments."""

    scheduled: datetime
    job: str
    schedule_index: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def simulate(
    registry: Registry | Iterable[Job],
    start: datetime | float,
    end: datetime | float,
    *,
    limit: int = 1_000_000,
) -> list[Fire]:
    """Every fire of the registry's enabled, scheduled jobs in ``(start, end]``, in time order
    (ties in registration order), without running anything. Instants are datetimes in each job's
    zone. Raises ``ConfigError`` if more than ``limit`` fires would be listed."""
    start_ms, end_ms = to_ms(start, field="start"), to_ms(end, field="end")
    if end_ms < start_ms:
        raise ConfigError("simulate: end is before start")
    jobs = [job for job in registry if job.opts.enabled and job.schedules]
    wheel = _core.Wheel(start_ms)
    for job_id, job in enumerate(jobs):
        for index, bound in enumerate(job.schedules):
            wheel.insert(job_id, index, bound.trigger, start_ms)
    fires: list[Fire] = []
    while True:
        deadline = wheel.next_deadline()
        if deadline is None or deadline > end_ms:
            return fires
        due = wheel.advance(deadline)
        due.sort(key=lambda f: (f[2], f[0], f[1]))
        for job_id, index, scheduled_ms, _ in due:
            job = jobs[job_id]
            bound = job.schedules[index]
            fires.append(Fire(from_ms(scheduled_ms, job.opts.tzinfo), job.name, index, bound.args, dict(bound.kwargs)))
        if len(fires) > limit:
            raise ConfigError(f"simulate: more than {limit} fires between {from_ms(start_ms)} and {from_ms(end_ms)}; narrow the span")
