"""Interval, Once and parse_schedule: the schedule kinds beside Cron."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from fastcron import Cron, CronError, Interval, Once, Trigger, parse_schedule

UTC = timezone.utc


def test_interval_grid_is_anchored_and_keeps_its_phase() -> None:
    start = datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)
    every_90s = Interval("90s", start=start)
    assert every_90s.period == 90
    assert every_90s.next_after(start) == datetime(2024, 1, 1, 0, 1, 40, tzinfo=UTC)
    assert every_90s.next_after(datetime(2024, 1, 1, tzinfo=UTC)) == start
    assert every_90s.prev_before(start) == datetime(2023, 12, 31, 23, 58, 40, tzinfo=UTC)
    assert Interval("1h30m").next_after_ts(0) == 5400
    assert Interval("5m").next_n(datetime(2024, 1, 1, 0, 2, tzinfo=UTC), 2) == [
        datetime(2024, 1, 1, 0, 5, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("5x", "'x' is not a unit"),
        ("10", "the last number has no unit"),
        ("0s", "at least one second"),
        ("h", "unit 'h' has no number before it"),
        ("", "empty"),
    ],
)
def test_interval_errors(spec: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Interval(spec)


def test_once_fires_once_in_its_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    once = Once(datetime(2030, 6, 1, 12, 0), tz="Europe/Berlin")
    assert once.next_after(datetime(2030, 1, 1, tzinfo=UTC)) == datetime(2030, 6, 1, 12, 0, tzinfo=berlin)
    assert once.next_after(datetime(2030, 6, 1, 12, 0, tzinfo=berlin)) is None
    assert once.prev_before(datetime(2031, 1, 1, tzinfo=UTC)) == datetime(2030, 6, 1, 12, 0, tzinfo=berlin)
    assert once.at_ts == int(datetime(2030, 6, 1, 10, 0, tzinfo=UTC).timestamp())
    assert Once(0).next_after_ts(-1) == 0 and Once(0).next_after_ts(0) is None


def test_parse_schedule_picks_the_kind() -> None:
    assert isinstance(parse_schedule("*/5 * * * *"), Cron)
    assert isinstance(parse_schedule("@daily", tz="Europe/Berlin"), Cron)
    assert parse_schedule("@daily", tz="Europe/Berlin").tz == "Europe/Berlin"
    interval = parse_schedule("1h30m")
    assert isinstance(interval, Interval) and interval.period == 5400
    once = parse_schedule("2030-01-01T09:00:00", tz="America/New_York")
    assert isinstance(once, Once)
    assert once.at_ts == int(datetime(2030, 1, 1, 14, 0, tzinfo=UTC).timestamp())
    assert isinstance(parse_schedule("2030-01-01T09:00:00Z"), Once)
    assert all(isinstance(parse_schedule(text), Trigger) for text in ["* * * * *", "5m", "2030-01-01"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("every day", "expected 5 fields"),
        ("tomorrow", "'tomorrow' is not a schedule"),
        ("0 0 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("@reboot", "@reboot is not a time schedule"),
    ],
)
def test_parse_schedule_errors(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_schedule(text)


def test_describe_every_kind() -> None:
    assert Cron("0 9 * * 1-5").describe() == "At 09:00, Monday through Friday"
    assert Interval("5m").describe() == "Every 5 minutes"
    assert Once(0).describe() == "Once, at 1970-01-01T00:00:00Z"
