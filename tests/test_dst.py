"""Fire times across DST transitions in the zones that break cron libraries.

Transitions covered (2024, local wall times):
- America/New_York: 03-10 02:00 -> 03:00 (gap), 11-03 02:00 -> 01:00 (fold)
- Europe/Berlin: 03-31 02:00 -> 03:00, 10-27 03:00 -> 02:00
- Europe/Dublin (negative DST in tzdb): 03-31 01:00 -> 02:00, 10-27 02:00 -> 01:00
- Australia/Lord_Howe (30-minute shift): 10-06 02:00 -> 02:30, 04-07 02:00 -> 01:30
- Pacific/Chatham (+12:45/+13:45): 09-29 02:45 -> 03:45, 04-07 03:45 -> 02:45
- America/Santiago (at midnight): 09-08 00:00 -> 01:00, 04-07 00:00 -> 04-06 23:00
- America/Havana (at midnight): 03-10 00:00 -> 01:00, 11-03 01:00 -> 00:00

The rule (Debian cron): a fixed-time schedule (neither minute nor hour starts with `*`) fires a
skipped wall time once at the first instant after the jump and a repeated wall time on its first
pass only; every other schedule fires at each real instant whose wall time matches.
Expected instants are built with zoneinfo from wall time and fold, independently of fastcron.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fastcron import Cron

# (zone, expression, start in UTC, expected local wall times "YYYY-MM-DD HH:MM[:SS][ f1]")
CASES = [
    ("America/New_York", "30 2 * * *", "2024-03-09T12:00", ["2024-03-10 03:00", "2024-03-11 02:30"]),
    ("America/New_York", "0,30 2 * * *", "2024-03-09T12:00", ["2024-03-10 03:00", "2024-03-11 02:00"]),
    ("America/New_York", "*/30 2 * * *", "2024-03-09T12:00", ["2024-03-11 02:00", "2024-03-11 02:30"]),
    ("America/New_York", "30 1 * * *", "2024-11-02T12:00", ["2024-11-03 01:30", "2024-11-04 01:30"]),
    ("America/New_York", "30 * * * *", "2024-11-03T04:00",
     ["2024-11-03 00:30", "2024-11-03 01:30", "2024-11-03 01:30 f1", "2024-11-03 02:30"]),
    # Six fields follow the same rule: the seconds field does not make a schedule "not fixed".
    ("America/New_York", "*/20 30 1 * * *", "2024-11-02T12:00",
     ["2024-11-03 01:30:00", "2024-11-03 01:30:20", "2024-11-03 01:30:40", "2024-11-04 01:30:00"]),
    ("America/New_York", "*/20 30 2 * * *", "2024-03-09T12:00", ["2024-03-10 03:00:00", "2024-03-11 02:30:00"]),
    ("America/New_York", "0 * 2 * * *", "2024-03-09T12:00", ["2024-03-11 02:00", "2024-03-11 02:01"]),
    ("Europe/Berlin", "30 2 * * *", "2024-03-30T12:00", ["2024-03-31 03:00", "2024-04-01 02:30"]),
    ("Europe/Berlin", "30 2 * * *", "2024-10-26T12:00", ["2024-10-27 02:30", "2024-10-28 02:30"]),
    ("Europe/Berlin", "0,30 * * * *", "2024-10-27T00:00",
     ["2024-10-27 02:30", "2024-10-27 02:00 f1", "2024-10-27 02:30 f1", "2024-10-27 03:00"]),
    ("Europe/Dublin", "30 1 * * *", "2024-03-30T12:00", ["2024-03-31 02:00", "2024-04-01 01:30"]),
    ("Europe/Dublin", "30 1 * * *", "2024-10-26T12:00", ["2024-10-27 01:30", "2024-10-28 01:30"]),
    ("Europe/Dublin", "15 * * * *", "2024-10-26T23:30",
     ["2024-10-27 01:15", "2024-10-27 01:15 f1", "2024-10-27 02:15"]),
    ("Australia/Lord_Howe", "15 2 * * *", "2024-10-05T00:00", ["2024-10-06 02:30", "2024-10-07 02:15"]),
    ("Australia/Lord_Howe", "*/15 2 * * *", "2024-10-05T00:00",
     ["2024-10-06 02:30", "2024-10-06 02:45", "2024-10-07 02:00"]),
    ("Australia/Lord_Howe", "45 1 * * *", "2024-04-06T00:00", ["2024-04-07 01:45", "2024-04-08 01:45"]),
    ("Australia/Lord_Howe", "*/15 1 * * *", "2024-04-06T00:00",
     ["2024-04-07 01:00", "2024-04-07 01:15", "2024-04-07 01:30", "2024-04-07 01:45",
      "2024-04-07 01:30 f1", "2024-04-07 01:45 f1", "2024-04-08 01:00"]),
    ("Pacific/Chatham", "0 3 * * *", "2024-04-06T00:00", ["2024-04-07 03:00", "2024-04-08 03:00"]),
    ("Pacific/Chatham", "0 3 * * *", "2024-09-28T00:00", ["2024-09-29 03:45", "2024-09-30 03:00"]),
    ("America/Santiago", "0 0 * * *", "2024-09-07T12:00", ["2024-09-08 01:00", "2024-09-09 00:00"]),
    ("America/Santiago", "30 23 * * *", "2024-04-06T12:00", ["2024-04-06 23:30", "2024-04-07 23:30"]),
    ("America/Santiago", "30 * * * *", "2024-04-07T02:00",
     ["2024-04-06 23:30", "2024-04-06 23:30 f1", "2024-04-07 00:30"]),
    ("America/Havana", "0 0 * * *", "2024-03-09T12:00", ["2024-03-10 01:00", "2024-03-11 00:00"]),
    ("America/Havana", "30 0 * * *", "2024-11-02T12:00", ["2024-11-03 00:30", "2024-11-04 00:30"]),
    ("America/Havana", "*/30 0 * * *", "2024-11-02T12:00",
     ["2024-11-03 00:00", "2024-11-03 00:30", "2024-11-03 00:00 f1", "2024-11-03 00:30 f1"]),
]


def wall(zone: ZoneInfo, text: str) -> datetime:
    stamp, _, fold = text.partition(" f")
    parsed = datetime.fromisoformat(stamp)
    return parsed.replace(tzinfo=zone, fold=int(fold or 0))


@pytest.mark.parametrize(("zone_name", "expr", "start", "expected"), CASES)
def test_fires_across_transitions(zone_name: str, expr: str, start: str, expected: list[str]) -> None:
    zone = ZoneInfo(zone_name)
    cron = Cron(expr, zone_name)
    fires = cron.next_n(datetime.fromisoformat(start).replace(tzinfo=timezone.utc), len(expected))
    want = [wall(zone, text) for text in expected]
    assert [f.astimezone(timezone.utc) for f in fires] == [w.astimezone(timezone.utc) for w in want]
    # Results carry the zone and the fold that make them the same instants when read back.
    assert [(f.replace(tzinfo=None), f.fold) for f in fires] == [(w.replace(tzinfo=None), w.fold) for w in want]
    assert all(f.tzinfo is not None and f.utcoffset() == w.utcoffset() for f, w in zip(fires, want))


@pytest.mark.parametrize(("zone_name", "expr", "start", "expected"), CASES)
def test_prev_before_walks_the_same_fires_backwards(zone_name: str, expr: str, start: str, expected: list[str]) -> None:
    cron = Cron(expr, zone_name)
    forward = cron.next_n(datetime.fromisoformat(start).replace(tzinfo=timezone.utc), len(expected))
    backward = []
    # Step in UTC: wall-clock arithmetic on an aware datetime drops its fold.
    at = forward[-1].astimezone(timezone.utc) + timedelta(seconds=1)
    for _ in forward:
        at = cron.prev_before(at)
        backward.append(at)
    assert [b.astimezone(timezone.utc) for b in reversed(backward)] == [f.astimezone(timezone.utc) for f in forward]
    assert all(cron.matches(f) for f in forward)


def test_matches_is_false_inside_a_skipped_hour_and_true_at_the_jump() -> None:
    new_york = ZoneInfo("America/New_York")
    fixed = Cron("30 2 * * *", "America/New_York")
    jump = datetime(2024, 3, 10, 7, 0, tzinfo=timezone.utc)
    assert fixed.matches(jump)
    assert not fixed.matches(datetime(2024, 3, 10, 3, 30, tzinfo=new_york))


def test_naive_datetimes_in_a_fold_are_read_by_their_fold() -> None:
    hourly = Cron("0 * * * *", "America/New_York")
    first_pass = datetime(2024, 11, 3, 1, 30)
    second_pass = datetime(2024, 11, 3, 1, 30, fold=1)
    assert hourly.next_after(first_pass).astimezone(timezone.utc) == datetime(2024, 11, 3, 6, 0, tzinfo=timezone.utc)
    assert hourly.next_after(second_pass).astimezone(timezone.utc) == datetime(2024, 11, 3, 7, 0, tzinfo=timezone.utc)


def test_far_future_transitions_follow_the_zone_rule() -> None:
    # Beyond the explicit tzdb transitions the POSIX rule applies: 2400 still has DST in Berlin.
    berlin = ZoneInfo("Europe/Berlin")
    fires = Cron("30 2 * * *", "Europe/Berlin").next_n(datetime(2400, 3, 25, tzinfo=berlin), 3)
    assert [(f.day, f.hour, f.minute, f.utcoffset()) for f in fires] == [
        (25, 2, 30, timedelta(hours=1)),
        (26, 3, 0, timedelta(hours=2)),  # 2400-03-26 is the last Sunday of March: 02:30 is skipped
        (27, 2, 30, timedelta(hours=2)),
    ]


@pytest.mark.parametrize(
    ("zone_name", "wall_text"),
    [
        ("America/New_York", "2024-03-10 02:30"),  # skipped
        ("America/New_York", "2024-11-03 01:30"),  # repeated
        ("Europe/Dublin", "2024-03-31 01:15"),
        ("Australia/Lord_Howe", "2024-10-06 02:10"),
        ("Australia/Lord_Howe", "2024-04-07 01:45"),
        ("Pacific/Chatham", "2024-09-29 03:00"),
        ("America/Havana", "2024-03-10 00:20"),
        ("America/Santiago", "2024-04-06 23:40"),
    ],
)
@pytest.mark.parametrize("fold", [0, 1])
def test_datetimes_in_the_crons_own_zone_read_like_zoneinfo(zone_name: str, wall_text: str, fold: int) -> None:
    # fastcron reads a datetime that carries the Cron's own tzinfo with its own zone data; it
    # must pick the instant zoneinfo picks, gaps and folds included (PEP 495).
    cron = Cron("* * * * * *", zone_name)
    start = datetime.fromisoformat(wall_text).replace(tzinfo=cron.tzinfo, fold=fold)
    instant = int(start.timestamp())
    assert cron.next_after(start) == cron.next_after(datetime.fromtimestamp(instant, timezone.utc))
    assert cron.next_after_ts(instant) == int(cron.next_after(start).timestamp())
