"""The real clock's timers (``fastcron._clock.RealClock``): never early, and not held back by
long callbacks that run in the loop iteration that armed them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from fastcron._clock import RealClock, from_ms, to_ms

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _run(loop_name: str, main: Any) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(main)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_timer_is_not_delayed_by_a_long_callback_of_the_arming_iteration(loop_name: str) -> None:
    """libuv computes its poll timeout from the time read before an iteration's callbacks, so a
    plain loop timer armed just before a 300 ms callback fires about 300 ms late. The clock's
    timer must not: a scheduler's next tick is armed right before the last tick's bookkeeping."""
    clock = RealClock()

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        fired: asyncio.Future[int] = loop.create_future()
        deadline = clock.now_ms() + 400
        clock.call_at(deadline, lambda: fired.set_result(time.time_ns()))
        loop.call_soon(time.sleep, 0.3)  # blocks the loop in the same iteration
        return deadline, await fired

    deadline, fired_ns = _run(loop_name, main())
    lateness_ms = fired_ns / 1e6 - deadline
    assert lateness_ms >= 0, "a timer must never fire before its deadline"
    # Late by the blocked 300 ms would be the bug; a loaded machine adds tens of ms at most.
    assert lateness_ms < 150, f"fired {lateness_ms:.1f} ms late"


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_timers_fire_in_deadline_order_and_can_be_cancelled(loop_name: str) -> None:
    clock = RealClock()

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        order: list[int] = []
        done = loop.create_future()
        now = clock.now_ms()
        for offset in (60, 20, 40):
            clock.call_at(now + offset, lambda offset=offset: order.append(offset))
        cancelled = clock.call_at(now + 30, lambda: order.append(30))
        cancelled.cancel()
        cancelled.cancel()  # twice is harmless
        clock.call_at(now + 80, lambda: done.set_result(None))
        clock.call_at(now - 1_000, lambda: order.append(-1))  # a past deadline runs at once
        await done
        return order

    assert _run(loop_name, main()) == [-1, 20, 40, 60]


def test_ms_conversions_round_trip() -> None:
    ms = 1_700_000_000_123
    assert to_ms(from_ms(ms)) == ms
    assert to_ms(1_700_000_000.123) == ms
