"""The real clock, and every conversion between epoch milliseconds and aware datetimes.

The hot path keeps instants as int epoch milliseconds (the wheel's unit); datetimes appear only at
the API's edges, converted here and nowhere else. A ``Clock`` tells the time and runs a callback
at a wall-clock instant; the scheduler asks it for nothing else, which is what lets
``fastcron.testing.FakeClock`` stand in for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastcron.errors import ConfigError

__all__ = [
    "UTC",
    "Clock",
    "RealClock",
    "TimerHandle",
    "from_ms",
    "resolve_tz",
    "sleep_until",
    "to_ms",
    "wall_ms",
]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimerHandle(Protocol):
    """Something that can be cancelled; cancelling twice, or after it ran, does nothing."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in epoch ms and callbacks at wall-clock instants.

    ``call_at`` runs ``callback`` on the event loop, outside any task, once ``now_ms()`` has
    reached ``deadline_ms`` (a deadline in the past runs on the next loop iteration).
    ``max_sleep_ms`` caps one wait of the scheduler, so a wall clock that jumps is noticed;
    ``None`` means no cap (a virtual clock only moves when told).
    """

    max_sleep_ms: int | None

    def now_ms(self) -> int: ...

    def call_at(self, deadline_ms: int, callback: Callable[[], object]) -> TimerHandle: ...


def wall_ms() -> int:
    """The system's wall-clock time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


class RealClock:
    """The system clock, with loop timers.

    Timers are set as a delay on the loop's monotonic clock, so a timeout of 5 minutes lasts 5
    minutes even if the wall clock is stepped; the scheduler's own waits are capped at
    ``max_sleep_ms`` and re-read the wall clock, so a stepped clock delays a fire by at most that.
    """

    __slots__ = ()
    max_sleep_ms: int | None = 1_000

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def call_at(self, deadline_ms: int, callback: Callable[[], object]) -> TimerHandle:
        return _PreciseTimer(asyncio.get_running_loop(), deadline_ms * 1_000_000, callback)


class _PreciseTimer:
    """Runs ``callback`` on the loop as soon as the wall clock reaches ``deadline_ns``.

    Loop timers have millisecond granularity and fire up to ~2 ms late (uvloop rounds the delay
    and reads a cached clock); a fire's lateness starts there. Worse, libuv computes its poll
    timeout from the time read before the iteration's callbacks ran, so a timer armed before long
    callbacks of the same iteration (a big tick's bookkeeping, a store flush) fires late by their
    duration. So the wait goes in halves: each loop timer wakes at half the remaining time (a
    stale one overshoots only into the half it left), the last ``EARLY_NS`` are covered by
    re-queuing on the loop (other callbacks still run in between) until the deadline has passed.
    """

    EARLY_NS = 2_000_000
    __slots__ = ("_callback", "_deadline_ns", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline_ns: int, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._deadline_ns = deadline_ns
        self._callback = callback
        self._handle: asyncio.Handle = self._wait(deadline_ns - time.time_ns())

    def _wait(self, remaining: int) -> asyncio.Handle:
        if remaining <= self.EARLY_NS:
            return self._loop.call_soon(self._check)
        wake_before = max(self.EARLY_NS, remaining // 2)
        return self._loop.call_later((remaining - wake_before) / 1e9, self._check)

    def _check(self) -> None:
        remaining = self._deadline_ns - time.time_ns()
        if remaining <= 0:
            self._callback()
        else:
            self._handle = self._wait(remaining)

    def cancel(self) -> None:
        self._handle.cancel()


async def sleep_until(clock: Clock, deadline_ms: int) -> None:
    """Wait on ``clock`` until ``deadline_ms``; cancellable."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    handle = clock.call_at(deadline_ms, wake)
    try:
        await fut
    finally:
        handle.cancel()


def to_ms(at: datetime | int | float, *, field: str = "at") -> int:
    """An aware datetime, or Unix seconds, as epoch milliseconds.

    A naive datetime is refused: which zone it meant cannot be known, and guessing is how
    schedulers end up an hour off.
    """
    if isinstance(at, datetime):
        if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
            raise ConfigError(
                f"{field}: naive datetime {at.isoformat()}; pass an aware one, e.g. "
                "datetime(..., tzinfo=ZoneInfo('Europe/Berlin'))"
            )
        # Exact integer arithmetic: timestamp() goes through a float and can be off by one ms.
        return (at - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise ConfigError(f"{field}: expected an aware datetime or Unix seconds, got {at!r}")
    return round(at * 1000)


def from_ms(ms: int, tz: tzinfo | None = None) -> datetime:
    """Epoch milliseconds as an aware datetime in ``tz`` (UTC when ``None``)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt if tz is None or tz is UTC else dt.astimezone(tz)


def resolve_tz(tz: str | tzinfo | None, *, field: str = "tz") -> tuple[str | None, tzinfo | None]:
    """Validate a zone; return its IANA name (what the core takes) and the tzinfo to render with."""
    if tz is None:
        return None, None
    if isinstance(tz, ZoneInfo):
        return tz.key, tz
    if tz is UTC:
        return "UTC", UTC
    if isinstance(tz, str):
        try:
            return tz, ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{field}: unknown time zone {tz!r}; use an IANA name like 'Europe/Berlin'") from exc
    raise ConfigError(f"{field}: expected an IANA zone name or ZoneInfo, got {tz!r}")
