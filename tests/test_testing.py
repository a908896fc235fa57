"""fastcron.testing: FakeClock's virtual time and simulate()'s dry run.

DST transitions covered by simulate (Europe/Berlin, 2024): 03-31 02:00 -> 03:00 (skipped hour),
10-27 03:00 -> 02:00 (repeated hour).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fastcron import Once
from fastcron.errors import ConfigError
from fastcron.job import JobContext, Schedule, make_job
from fastcron.registry import Registry
from fastcron.scheduler import Scheduler
from fastcron.testing import FakeClock, Fire, simulate

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2024, 1, 1, tzinfo=UTC)


def test_fake_clock_tells_and_moves_time() -> None:
    clock = FakeClock(START)
    assert clock.now() == START and clock.now_ms() == 1_704_067_200_000

    async def main() -> None:
        await clock.advance("3h")
        assert clock.now() == START + timedelta(hours=3)
        await clock.advance(timedelta(minutes=1))
        await clock.advance(0.5)
        await clock.advance_to(datetime(2024, 1, 2, tzinfo=UTC))
        assert clock.now() == datetime(2024, 1, 2, tzinfo=UTC)
        with pytest.raises(ConfigError, match="FakeClock cannot go back from 2024-01-02T00:00:00\\+00:00"):
            await clock.advance_to(START)
        with pytest.raises(ConfigError, match="advance: cannot read duration 'soon'"):
            await clock.advance("soon")

    asyncio.run(main())
    assert FakeClock().now() == START  # the default start
    assert FakeClock(86_400).now() == datetime(1970, 1, 2, tzinfo=UTC)  # Unix seconds
    with pytest.raises(ConfigError, match="start: naive datetime"):
        FakeClock(datetime(2024, 1, 1))


def test_fake_clock_runs_timers_in_order_each_at_its_instant() -> None:
    clock = FakeClock(START)
    ran: list[tuple[str, int]] = []
    base = clock.now_ms()

    def mark(name: str) -> None:
        ran.append((name, (clock.now_ms() - base) // 1000))

    async def main() -> None:
        clock.call_at(base + 30_000, lambda: mark("30s"))
        clock.call_at(base + 10_000, lambda: mark("10s"))
        cancelled = clock.call_at(base + 20_000, lambda: mark("20s"))
        cancelled.cancel()
        clock.call_at(base + 90_000, lambda: mark("90s"))
        await clock.advance("1m")
        assert ran == [("10s", 10), ("30s", 30)]
        await clock.advance("1m")

    asyncio.run(main())
    assert ran == [("10s", 10), ("30s", 30), ("90s", 90)]


def test_fake_clock_sleep_is_virtual() -> None:
    clock = FakeClock(START)
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep("5m")
        woke.append(clock.now_ms())

    async def main() -> None:
        task = asyncio.ensure_future(sleeper())
        await clock.advance("4m59s")
        assert not task.done()
        await clock.advance("1s")
        assert task.done()

    asyncio.run(main())
    assert woke == [START.timestamp() * 1000 + 300_000]


def test_scheduler_on_a_fake_clock_sees_every_run_of_three_hours() -> None:
    reg = Registry()
    seen: list[datetime] = []

    @reg.job("*/7 * * * *", name="odd")
    async def odd(ctx: JobContext) -> None:
        seen.append(ctx.scheduled)

    async def main() -> None:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock):
            await clock.advance("3h")

    asyncio.run(main())
    # */7 fires at minutes 7..56 step 7 then 0: 9 per hour (00:00 excluded: the clock starts there).
    assert len(seen) == 3 * 9 - 1 + 1
    assert seen == sorted(seen) and seen[-1] == datetime(2024, 1, 1, 3, tzinfo=UTC)


def test_simulate_lists_fires_in_order_with_arguments() -> None:
    reg = Registry()

    async def report(kind: str = "x") -> None: ...

    reg.add(make_job(report, [Schedule("0 */6 * * *", "quarter-day"), Schedule("0 0 * * *", "daily")], name="report"))
    reg.add(make_job(report, "30 */8 * * *", name="other"))
    reg.add(make_job(report, "manual", name="never"))
    reg.add(make_job(report, "* * * * *", name="off", enabled=False))
    fires = simulate(reg, START, START + timedelta(days=1))
    assert [(f.scheduled.strftime("%H:%M"), f.job, f.args) for f in fires] == [
        ("00:30", "other", ()),
        ("06:00", "report", ("quarter-day",)),
        ("08:30", "other", ()),
        ("12:00", "report", ("quarter-day",)),
        ("16:30", "other", ()),
        ("18:00", "report", ("quarter-day",)),
        ("00:00", "report", ("quarter-day",)),  # ties: registration order, then schedule order
        ("00:00", "report", ("daily",)),
    ]
    assert fires[-1] == Fire(START + timedelta(days=1), "report", 1, ("daily",), {})


def test_simulate_follows_dst_in_the_job_zone() -> None:
    async def nightly() -> None: ...

    reg = Registry()
    reg.add(make_job(nightly, "30 2 * * *", name="n", tz="Europe/Berlin"))
    reg.add(make_job(nightly, "0 2 * * *", name="h", tz="Europe/Berlin"))
    spring = simulate(reg, datetime(2024, 3, 30, 12, tzinfo=UTC), datetime(2024, 4, 1, 12, tzinfo=UTC))
    assert [(f.job, f.scheduled.isoformat()) for f in spring] == [
        ("n", "2024-03-31T03:00:00+02:00"),  # 02:30 and 02:00 do not exist that night: fire at 03:00
        ("h", "2024-03-31T03:00:00+02:00"),
        ("h", "2024-04-01T02:00:00+02:00"),
        ("n", "2024-04-01T02:30:00+02:00"),
    ]
    autumn = simulate(reg, datetime(2024, 10, 26, 12, tzinfo=UTC), datetime(2024, 10, 27, 12, tzinfo=UTC))
    assert [f.scheduled.astimezone(UTC).strftime("%H:%M") for f in autumn] == ["00:00", "00:30"]  # first pass only


def test_simulate_once_and_limits() -> None:
    async def fn() -> None: ...

    reg = Registry()
    reg.add(make_job(fn, Once(START + timedelta(hours=5)), name="once"))
    assert [f.job for f in simulate(reg, START, START + timedelta(days=3))] == ["once"]
    assert simulate(reg, START + timedelta(hours=5), START + timedelta(days=3)) == []  # (start, end]
    reg.add(make_job(fn, "* * * * *", name="busy"))
    with pytest.raises(ConfigError, match="simulate: more than 100 fires"):
        simulate(reg, START, START + timedelta(days=1), limit=100)
    with pytest.raises(ConfigError, match="simulate: end is before start"):
        simulate(reg, START, START - timedelta(days=1))
    assert len(simulate([reg.get("busy")], START, START + timedelta(hours=1))) == 60
