"""fastcron.Cron: the Python API of the cron engine and a table of hand-checked edge cases."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fastcron import Cron, CronError, FastcronError

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (expression, start (UTC), the next fire times (UTC)) — each checked by hand against a calendar.
EDGE_CASES = [
    # Leap days: 2100 is not a leap year, 2400 is.
    ("0 0 29 2 *", utc(2096, 3, 1), [utc(2104, 2, 29)]),
    ("0 0 29 2 *", utc(2399, 1, 1), [utc(2400, 2, 29)]),
    ("0 0 L 2 *", utc(2100, 1, 1), [utc(2100, 2, 28), utc(2101, 2, 28)]),
    ("0 0 L 2 *", utc(2024, 1, 1), [utc(2024, 2, 29)]),
    # L, LW, nW. 2024-06-01 is a Saturday, 2024-09-30 a Monday, 2024-03-31 a Sunday.
    ("0 0 L * *", utc(2024, 4, 1), [utc(2024, 4, 30), utc(2024, 5, 31), utc(2024, 6, 30)]),
    ("0 0 LW * *", utc(2024, 3, 1), [utc(2024, 3, 29), utc(2024, 4, 30)]),
    ("0 0 1W * *", utc(2024, 5, 15), [utc(2024, 6, 3)]),
    ("0 0 15W * *", utc(2024, 6, 1), [utc(2024, 6, 14)]),  # the 15th is a Saturday
    ("0 0 30W * *", utc(2024, 6, 1), [utc(2024, 6, 28)]),  # the 30th is a Sunday and the last day
    ("0 0 31W * *", utc(2024, 4, 1), [utc(2024, 5, 31)]),  # April has no 31st
    # n#k and nL in day-of-week.
    ("0 0 * * 1#1", utc(2024, 1, 2), [utc(2024, 2, 5), utc(2024, 3, 4)]),
    ("0 0 * * FRI#3", utc(2024, 1, 1), [utc(2024, 1, 19)]),
    ("0 0 * * 0#5", utc(2024, 1, 1), [utc(2024, 3, 31), utc(2024, 6, 30)]),
    ("0 0 * * 5L", utc(2024, 2, 1), [utc(2024, 2, 23), utc(2024, 3, 29)]),
    ("0 0 * 2 MON#5", utc(2024, 3, 1), [utc(2044, 2, 29)]),
    # Sunday is 0 and 7; wrap-around day ranges.
    ("0 0 * * 7", utc(2024, 1, 1), [utc(2024, 1, 7)]),
    ("0 0 * * 5-7", utc(2024, 1, 1), [utc(2024, 1, 5), utc(2024, 1, 6), utc(2024, 1, 7), utc(2024, 1, 12)]),
    ("0 0 * * FRI-MON", utc(2024, 1, 2), [utc(2024, 1, 5), utc(2024, 1, 6), utc(2024, 1, 7), utc(2024, 1, 8)]),
    ("0 22-2/2 * * *", utc(2024, 1, 1, 3), [utc(2024, 1, 1, 22), utc(2024, 1, 2, 0), utc(2024, 1, 2, 2)]),
    # The day-field rule: OR when both are restricted, AND when one starts with * or is ?.
    ("0 0 13 * FRI", utc(2024, 9, 1), [utc(2024, 9, 6), utc(2024, 9, 13), utc(2024, 9, 20)]),
    ("0 0 */2 * 1", utc(2024, 1, 2), [utc(2024, 1, 15), utc(2024, 1, 29), utc(2024, 2, 5)]),
    ("0 0 ? * FRI", utc(2024, 9, 1), [utc(2024, 9, 6), utc(2024, 9, 13)]),
    ("0 0 13 * ?", utc(2024, 9, 1), [utc(2024, 9, 13), utc(2024, 10, 13)]),
    # Names, mixed with numbers, in any case.
    ("0 0 1 jun-9 *", utc(2024, 1, 1), [utc(2024, 6, 1), utc(2024, 7, 1), utc(2024, 8, 1), utc(2024, 9, 1), utc(2025, 6, 1)]),
    # Macros.
    ("@yearly", utc(2024, 5, 5), [utc(2025, 1, 1)]),
    ("@weekly", utc(2024, 1, 1), [utc(2024, 1, 7)]),
    ("@hourly", utc(2024, 1, 1, 0, 0, 1), [utc(2024, 1, 1, 1)]),
    # Seconds first in six fields.
    ("*/15 * * * * *", utc(2024, 1, 1, 0, 0, 50), [utc(2024, 1, 1, 0, 1, 0), utc(2024, 1, 1, 0, 1, 15)]),
    ("30 5/20 9 * * *", utc(2024, 1, 1), [utc(2024, 1, 1, 9, 5, 30), utc(2024, 1, 1, 9, 25, 30), utc(2024, 1, 1, 9, 45, 30)]),
    # The year bounds: the last fire before 10000 and nothing after it.
    ("59 23 31 12 *", utc(9999, 1, 1), [utc(9999, 12, 31, 23, 59)]),
    ("0 0 29 2 *", utc(9997, 1, 1), []),
]


@pytest.mark.parametrize(("expr", "start", "expected"), EDGE_CASES)
def test_edge_cases(expr: str, start: datetime, expected: list[datetime]) -> None:
    cron = Cron(expr)
    assert cron.next_n(start, len(expected) + 1)[: len(expected)] == expected
    if not expected:
        assert cron.next_after(start) is None


def test_a_start_exactly_on_a_match_is_excluded() -> None:
    daily = Cron("0 9 * * *")
    assert daily.next_after(utc(2024, 1, 1, 9)) == utc(2024, 1, 2, 9)
    assert daily.prev_before(utc(2024, 1, 1, 9)) == utc(2023, 12, 31, 9)
    assert daily.next_after_ts(1_704_099_600) == 1_704_186_000  # 2024-01-01 09:00 -> 01-02 09:00


def test_sub_second_starts() -> None:
    every_second = Cron("* * * * * *")
    start = utc(2024, 1, 1, 0, 0, 0).replace(microsecond=500_000)
    assert every_second.next_after(start) == utc(2024, 1, 1, 0, 0, 1)
    assert every_second.prev_before(start) == utc(2024, 1, 1, 0, 0, 0)
    assert every_second.matches(start)
    assert every_second.next_after(1_704_067_200.5) == utc(2024, 1, 1, 0, 0, 1)


def test_aware_datetimes_in_any_zone_and_naive_ones_in_the_crons_zone() -> None:
    berlin = Cron("0 9 * * *", "Europe/Berlin")
    tokyo = ZoneInfo("Asia/Tokyo")
    # 2024-01-01 17:00 in Tokyo is 09:00 in Berlin: strictly after it comes the next day.
    nxt = berlin.next_after(datetime(2024, 1, 1, 17, 0, tzinfo=tokyo))
    assert nxt == datetime(2024, 1, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert nxt is not None and nxt.tzinfo == ZoneInfo("Europe/Berlin")
    assert berlin.next_after(datetime(2024, 1, 1, 8, 59)) == datetime(2024, 1, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert berlin.next_after(utc(2024, 1, 1, 7, 59)).astimezone(UTC) == utc(2024, 1, 1, 8)


def test_tz_accepts_names_zoneinfo_and_none() -> None:
    assert Cron("* * * * *").tz == "UTC"
    assert Cron("* * * * *").next_after(utc(2024, 1, 1)).tzinfo is UTC
    zone = ZoneInfo("Pacific/Chatham")
    chatham = Cron("* * * * *", zone)
    assert chatham.tz == "Pacific/Chatham"
    assert chatham.next_after(utc(2024, 1, 1)).tzinfo is zone
    with pytest.raises(CronError, match='unknown time zone "Mars/Base"'):
        Cron("* * * * *", "Mars/Base")
    with pytest.raises(TypeError, match="tz must be an IANA zone name"):
        Cron("* * * * *", 5)  # type: ignore[arg-type]


def test_timestamps_are_the_hot_path() -> None:
    weekdays = Cron("0 9 * * 1-5", "America/New_York")
    start = 1_709_920_800  # 2024-03-08 18:00 UTC, a Friday afternoon in New York
    nxt = weekdays.next_after_ts(start)
    assert nxt == int(datetime(2024, 3, 11, 9, tzinfo=ZoneInfo("America/New_York")).timestamp())
    assert weekdays.prev_before_ts(nxt) == int(datetime(2024, 3, 8, 9, tzinfo=ZoneInfo("America/New_York")).timestamp())
    assert Cron("0 0 1 1 *").next_after_ts(253_402_300_799) is None
    with pytest.raises(OverflowError):
        weekdays.next_after_ts(2**70)


def test_iteration_helpers() -> None:
    quarter_hours = Cron("*/15 * * * *")
    it = quarter_hours.iter_after(utc(2024, 1, 1))
    assert [next(it) for _ in range(3)] == [utc(2024, 1, 1, 0, 15), utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 0, 45)]
    assert quarter_hours.next_n(utc(2024, 1, 1), 0) == []
    assert not quarter_hours.matches(utc(2024, 1, 1, 0, 16))
    assert quarter_hours.matches(utc(2024, 1, 1, 0, 15, 0))
    assert not quarter_hours.matches(utc(2024, 1, 1, 0, 15, 1))


def test_identity_equality_hash_repr_and_pickle() -> None:
    cron = Cron("0 9 * * MON-FRI", "Europe/Berlin")
    assert cron.expr == "0 9 * * MON-FRI"
    assert repr(cron) == 'Cron("0 9 * * MON-FRI", tz="Europe/Berlin")'
    assert cron == Cron("0 9 * * 1-5", "Europe/Berlin")
    assert hash(cron) == hash(Cron("0 9 * * 1-5", "Europe/Berlin"))
    assert cron != Cron("0 9 * * 1-5", "Europe/Paris")
    assert Cron("0 0 * * 0") == Cron("0 0 * * 7")
    assert len({cron, Cron("0 9 * * 1-5", "Europe/Berlin"), Cron("@daily")}) == 2
    assert pickle.loads(pickle.dumps(cron)) == cron
    assert not Cron("0 9 * * 1-5").has_seconds and Cron("0 0 9 * * 1-5").has_seconds


BAD = [
    ("", "empty cron expression"),
    ("   ", "empty cron expression"),
    ("* * * *", "expected 5 fields .* found 4"),
    ("* * * * * * *", "found 7"),
    ("0 0 32 * *", r"day-of-month: 32 is out of range 1-31 \(column 5\)"),
    ("0 0 1,2,32 * *", r"day-of-month: 32 is out of range 1-31 \(column 9\)"),
    ("60 * * * *", r"minute: 60 is out of range 0-59 \(column 1\)"),
    ("0 24 * * *", r"hour: 24 is out of range 0-23 \(column 3\)"),
    ("0 0 * 13 *", r"month: 13 is out of range 1-12 \(column 7\)"),
    ("0 0 * * 8", r"day-of-week: 8 is out of range 0-7 \(column 9\)"),
    ("0 0 * FOO *", r'month: "FOO" is not valid here: expected a number 1-12 or a name JAN..DEC \(column 7\)'),
    ("*/0 * * * *", r"minute: step 0 is out of range 1-60 \(column 3\)"),
    ("? * * * *", r'"\?" is only allowed in the day fields'),
    ("0 0 13 ? FRI", r'month: "\?" is only allowed in the day fields, not in the month field \(column 8\)'),
    ("0 0 * * MON#6", r"day-of-week: \"6\" after # must be 1-5 \(column 13\)"),
    ("@reboot", "@reboot is not a time schedule"),
    ("@fortnightly", 'unknown macro "@fortnightly"'),
    ("0 0 30 2 *", "can never fire"),
    ("0 0 31 4,6,9,11 *", "can never fire"),
    ("0 0 " + "9" * 50 + " * *", "day-of-month: 9{24}... is out of range 1-31"),
    ("0 0 1-é * *", r'day-of-month: "é" is not valid here'),
]


@pytest.mark.parametrize(("expr", "message"), BAD)
def test_errors_name_what_is_wrong_and_where(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message) as caught:
        Cron(expr)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, FastcronError)


def test_a_schedule_that_fires_rarely_is_not_an_error() -> None:
    assert Cron("0 0 31 4,5 *").next_after(utc(2024, 1, 1)) == utc(2024, 5, 31)
    assert Cron("0 0 30 2 1").next_after(utc(2024, 1, 1)) == utc(2024, 2, 5)  # OR: any Monday


def test_next_n_is_bounded() -> None:
    with pytest.raises(ValueError, match="use iter_after"):
        Cron("* * * * * *").next_n(utc(2024, 1, 1), 10**9)


def test_prev_before_consistency_over_a_year_of_minutes() -> None:
    cron = Cron("*/7 9-17 * * MON-FRI", "Europe/Dublin")
    at = utc(2024, 3, 29)
    for _ in range(500):
        nxt = cron.next_after(at)
        assert cron.prev_before(nxt.astimezone(UTC) + timedelta(seconds=1)) == nxt
        at = nxt.astimezone(UTC)
