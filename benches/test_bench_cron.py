"""pytest-benchmark cases for the cron search from Python; croniter and cronsim for reference.

Not part of the test suite (pyproject's `testpaths` is `tests`). Run:

    python -m pytest benches/test_bench_cron.py --benchmark-only

Each benchmarked round is ONE call; the start instant rotates through the same 52 instants over 2024
that benches/compare_cron.py uses, so figures are per call and averaged over the starts. Parsing is
excluded except in the `parse` cases. croniter is re-seeded per call with `set_current` (included);
cronsim cannot be re-seeded and its constructor parses, so its case times constructor + first
`next()` (parse included; see compare_cron.py for its parse-free figure).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from fastcron import Cron

BASE = 1_704_067_200 + 12_337  # 2024-01-01T03:25:37Z, as in compare_cron.py
STEP = 607_020
STARTS = [BASE + k * STEP for k in range(52)]

# fastcron/cronsim spelling; croniter wants seconds last.
EXPRESSIONS = ["* * * * *", "0 9 * * 1-5", "30 2 1 * *", "0 0 29 2 *", "*/15 * * * * *"]
ZONES = ["UTC", "America/New_York"]


def croniter_spelling(expr: str) -> str:
    fields = expr.split()
    return " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else expr


def zone_info(name: str):
    return timezone.utc if name == "UTC" else ZoneInfo(name)


def datetimes(zone: str) -> list[datetime]:
    tz = zone_info(zone)
    return [datetime.fromtimestamp(t, tz) for t in STARTS]


cases = pytest.mark.parametrize(
    ("expr", "zone"), [(e, z) for z in ZONES for e in EXPRESSIONS], ids=lambda v: v.replace(" ", "_")
)


@cases
def test_fastcron_next_after_ts(benchmark, expr, zone):
    cron = Cron(expr, tz=zone)
    starts = itertools.cycle(STARTS)
    result = benchmark(lambda: cron.next_after_ts(next(starts)))
    assert result is not None


@cases
def test_fastcron_next_after(benchmark, expr, zone):
    cron = Cron(expr, tz=zone)
    starts = itertools.cycle(datetimes(zone))
    result = benchmark(lambda: cron.next_after(next(starts)))
    assert result is not None and result.tzinfo is not None


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=lambda v: v.replace(" ", "_"))
def test_fastcron_parse(benchmark, expr):
    cron = benchmark(Cron, expr, "America/New_York")
    assert cron.next_after_ts(BASE) is not None


@cases
def test_croniter_get_next(benchmark, expr, zone):
    croniter = pytest.importorskip("croniter").croniter
    it = croniter(croniter_spelling(expr), datetimes(zone)[0])
    starts = itertools.cycle(datetimes(zone))

    def call():
        it.set_current(next(starts), force=True)
        return it.get_next(datetime)

    assert benchmark(call) is not None


@cases
def test_cronsim_construct_and_next(benchmark, expr, zone):
    cronsim = pytest.importorskip("cronsim")
    starts = itertools.cycle(datetimes(zone))
    assert benchmark(lambda: next(cronsim.CronSim(expr, next(starts)))) is not None


@cases
def test_results_agree(expr, zone):
    """The cases above compute the same fire times (not a benchmark; runs in a plain pytest run)."""
    croniter = pytest.importorskip("croniter").croniter
    cronsim = pytest.importorskip("cronsim")
    cron = Cron(expr, tz=zone)
    for dt in datetimes(zone):
        expected = cron.next_after_ts(int(dt.timestamp()))
        assert int(cron.next_after(dt).timestamp()) == expected
        assert int(croniter(croniter_spelling(expr), dt).get_next(datetime).timestamp()) == expected
        assert int(next(cronsim.CronSim(expr, dt)).timestamp()) == expected
