#!/usr/bin/env python3
"""Per-call cost of finding the next fire time from Python: fastcron against croniter, cronsim and
APScheduler 3, measured in one run and printed as one markdown table.

    python benches/compare_cron.py            # default: about two minutes
    python benches/compare_cron.py --short    # CI: well under 60 s

What is timed (one "call" = the next fire time strictly after one start instant):
- fastcron `next_after_ts`: `Cron(expr, tz)` built once; timed `cron.next_after_ts(ts)` (int in,
  int out).
- fastcron `next_after`: the same object; timed `cron.next_after(dt)` (aware datetime in, aware
  datetime out).
- croniter: one `croniter(expr, dt0)` built once; timed `it.set_current(dt, force=True)` then
  `it.get_next(datetime)`. Re-seeding costs about 1 µs, a few percent of croniter's call.
- cronsim: has no public way to re-seed an iterator, and its constructor parses the expression, so
  a fresh `CronSim(expr, dt)` per call is built *before* the timer starts (untimed); timed
  `next(it)` on each fresh iterator. Parsing is thus excluded for every library.
- APScheduler 3: one `CronTrigger` built once; timed `trigger.get_next_fire_time(None, dt)`.
- "cold parse + first next": a new schedule object per call, built and queried inside the timer,
  for every library (`Cron(expr, tz).next_after_ts(ts)` / `.next_after(dt)`,
  `croniter(expr, dt).get_next(datetime)`, `next(CronSim(expr, dt))`,
  `CronTrigger.from_crontab(expr, timezone=tz).get_next_fire_time(None, dt)`). The zone is given as
  the IANA name to fastcron and APScheduler, and via the start datetime's tzinfo to croniter and
  cronsim (which take no zone argument).

Start instants: 52, from 2024-01-01T03:25:37Z every 607,020 s (about a week and 37 minutes), so they
cover a year (both DST offsets of New York) at every hour of the day, always at second 37. So no start
is itself a fire time of any expression here, which matters because APScheduler's
`get_next_fire_time(None, now)` returns `now` itself when it matches, where the others return the
next fire strictly after. All libraries get the same instants: ints for `next_after_ts`, and the same aware datetimes in the case's
zone (`datetime.timezone.utc` for UTC, `zoneinfo.ZoneInfo` otherwise) for everything else.

Timing: `time.perf_counter_ns` around a plain `for` loop over the starts, repeated to fill a batch of
about `--batch-ms`; per-call time = batch time / calls. The garbage collector is off inside a batch.
Batches of the libraries are interleaved (round-robin, rotating the order) so drift of this noisy
machine hits all columns alike; each cell is the median over `--batches` batches. The loop itself
costs every column the same few tens of ns (printed as "loop overhead"), which is not subtracted.

Before timing a case, every library's first next fire time from every start (computed by the same
code path that is timed) is compared with fastcron's; any difference is printed as a warning row.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from importlib.metadata import PackageNotFoundError, version
from zoneinfo import ZoneInfo

from fastcron import Cron

try:
    from croniter import croniter
except ImportError:  # pragma: no cover - reported as n/a
    croniter = None
try:
    from cronsim import CronSim
except ImportError:  # pragma: no cover
    CronSim = None
try:
    from apscheduler.triggers.cron import CronTrigger
except ImportError:  # pragma: no cover
    CronTrigger = None

perf_counter_ns = time.perf_counter_ns

BASE = 1_704_067_200 + 12_337  # 2024-01-01T03:25:37Z
STEP = 607_020
N_STARTS = 52
ZONES = ("UTC", "America/New_York")


@dataclass(frozen=True)
class Case:
    """One expression of the mixed set, written for each library.

    `aps` is ("crontab", text) for `CronTrigger.from_crontab(text, timezone=...)`, ("fields", {...})
    for `CronTrigger(**fields, timezone=...)`, or None where the library can't express it.
    """

    fastcron: str
    croniter: str | None
    cronsim: str | None
    aps: tuple[str, object] | None


MIXED = [
    Case("* * * * *", "* * * * *", "* * * * *", ("crontab", "* * * * *")),
    # APScheduler 3 numbers weekdays from 0 = Monday (its issue 286), so crontab's `1-5` would mean
    # Tuesday..Saturday there; names mean the same everywhere.
    Case("0 9 * * 1-5", "0 9 * * 1-5", "0 9 * * 1-5", ("crontab", "0 9 * * mon-fri")),
    Case("30 2 1 * *", "30 2 1 * *", "30 2 1 * *", ("crontab", "30 2 1 * *")),
    Case("0 0 29 2 *", "0 0 29 2 *", "0 0 29 2 *", ("crontab", "0 0 29 2 *")),
    # Seconds: fastcron and cronsim put them first, croniter last; APScheduler's from_crontab takes
    # 5 fields only, so its trigger is built from keyword fields (the unnamed larger ones are `*`).
    Case("*/15 * * * * *", "* * * * * */15", "*/15 * * * * *", ("fields", {"second": "*/15"})),
]
COLD = Case("*/5 * * * *", "*/5 * * * *", "*/5 * * * *", ("crontab", "*/5 * * * *"))

COLUMNS = ("fastcron_ts", "fastcron_dt", "croniter", "cronsim", "aps")
TITLES = {
    "fastcron_ts": "fastcron next_after_ts",
    "fastcron_dt": "fastcron next_after",
    "croniter": "croniter",
    "cronsim": "cronsim",
    "aps": "APScheduler",
}


def zone_info(name: str) -> tzinfo:
    return timezone.utc if name == "UTC" else ZoneInfo(name)


def aps_trigger(spec: tuple[str, object], tz: tzinfo | str):
    kind, value = spec
    if kind == "crontab":
        return CronTrigger.from_crontab(value, timezone=tz)
    return CronTrigger(**value, timezone=tz)


def to_ts(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


@dataclass
class Bench:
    """One column of one row: `results()` gives the first next fire times (epoch s) from every start
    via the timed code path, `run(n)` times n passes over the starts and returns elapsed ns."""

    results: Callable[[], list[int | None]]
    run: Callable[[int], int]


def _timed(loop: Callable[[], None]) -> int:
    gc.disable()
    try:
        t0 = perf_counter_ns()
        loop()
        return perf_counter_ns() - t0
    finally:
        gc.enable()


def hot_benches(case: Case, zone: str, tss: list[int], dts: list[datetime]) -> dict[str, Bench | None]:
    """Schedule objects built once (parse excluded); see the module docstring."""
    tz = zone_info(zone)
    benches: dict[str, Bench | None] = dict.fromkeys(COLUMNS)

    cron = Cron(case.fastcron, tz=zone)

    def ft_results():
        return [cron.next_after_ts(t) for t in tss]

    def ft_run(n):
        f = cron.next_after_ts

        def loop():
            for _ in range(n):
                for t in tss:
                    f(t)

        return _timed(loop)

    benches["fastcron_ts"] = Bench(ft_results, ft_run)

    def fd_results():
        return [to_ts(cron.next_after(d)) for d in dts]

    def fd_run(n):
        f = cron.next_after

        def loop():
            for _ in range(n):
                for d in dts:
                    f(d)

        return _timed(loop)

    benches["fastcron_dt"] = Bench(fd_results, fd_run)

    if croniter is not None and case.croniter is not None:
        it = croniter(case.croniter, dts[0])

        def ci_results():
            out = []
            for d in dts:
                it.set_current(d, force=True)
                out.append(to_ts(it.get_next(datetime)))
            return out

        def ci_run(n):
            seed, get = it.set_current, it.get_next

            def loop():
                for _ in range(n):
                    for d in dts:
                        seed(d, True)
                        get(datetime)

            return _timed(loop)

        benches["croniter"] = Bench(ci_results, ci_run)

    if CronSim is not None and case.cronsim is not None:
        expr = case.cronsim

        def cs_results():
            return [to_ts(next(CronSim(expr, d))) for d in dts]

        def cs_run(n):
            fresh = [CronSim(expr, d) for _ in range(n) for d in dts]  # untimed

            def loop():
                for it in fresh:
                    next(it)

            return _timed(loop)

        benches["cronsim"] = Bench(cs_results, cs_run)

    if CronTrigger is not None and case.aps is not None:
        trigger = aps_trigger(case.aps, tz)

        def ap_results():
            return [to_ts(trigger.get_next_fire_time(None, d)) for d in dts]

        def ap_run(n):
            f = trigger.get_next_fire_time

            def loop():
                for _ in range(n):
                    for d in dts:
                        f(None, d)

            return _timed(loop)

        benches["aps"] = Bench(ap_results, ap_run)
    return benches


def cold_benches(case: Case, zone: str, tss: list[int], dts: list[datetime]) -> dict[str, Bench | None]:
    """A new schedule object per call, built inside the timer."""
    benches: dict[str, Bench | None] = dict.fromkeys(COLUMNS)

    def make(call: Callable[[object], object], args: list) -> Bench:
        def results():
            return [to_ts(call(a)) for a in args]

        def run(n):
            def loop():
                for _ in range(n):
                    for a in args:
                        call(a)

            return _timed(loop)

        return Bench(results, run)

    expr = case.fastcron
    benches["fastcron_ts"] = make(lambda t: Cron(expr, zone).next_after_ts(t), tss)
    benches["fastcron_dt"] = make(lambda d: Cron(expr, zone).next_after(d), dts)
    if croniter is not None:
        ce = case.croniter
        benches["croniter"] = make(lambda d: croniter(ce, d).get_next(datetime), dts)
    if CronSim is not None:
        se = case.cronsim
        benches["cronsim"] = make(lambda d: next(CronSim(se, d)), dts)
    if CronTrigger is not None:
        spec = case.aps
        benches["aps"] = make(lambda d: aps_trigger(spec, zone).get_next_fire_time(None, d), dts)
    return benches


def check_agreement(benches: dict[str, Bench | None], dts: list[datetime]) -> list[str]:
    """Human-readable differences from fastcron next_after_ts, one per disagreeing column."""
    reference = benches["fastcron_ts"].results()
    problems = []
    for col in COLUMNS[1:]:
        bench = benches[col]
        if bench is None:
            continue
        try:
            got = bench.results()
        except Exception as exc:  # noqa: BLE001 - a library failing is reported, not fatal
            problems.append(f"{TITLES[col]} raised {type(exc).__name__}: {exc}")
            continue
        bad = [i for i, (r, g) in enumerate(zip(reference, got)) if r != g]
        if bad:
            i = bad[0]
            tz = dts[i].tzinfo

            def show(ts):
                return "None" if ts is None else datetime.fromtimestamp(ts, tz).isoformat()

            problems.append(
                f"{TITLES[col]} differs on {len(bad)}/{len(dts)} starts, e.g. after "
                f"{dts[i].isoformat()}: fastcron {show(reference[i])}, {TITLES[col]} {show(got[i])}"
            )
    return problems


def measure(benches: dict[str, Bench | None], calls_per_pass: int, batches: int, batch_ns: float) -> dict[str, float | None]:
    """Median per-call ns of each column, batches interleaved across columns."""
    active = [c for c in COLUMNS if benches[c] is not None]
    passes = {}
    for col in active:
        run = benches[col].run
        run(1)  # warm up
        one = max(run(1), 1)
        passes[col] = max(1, math.ceil(batch_ns / one))
    samples: dict[str, list[float]] = {c: [] for c in active}
    for b in range(batches):
        order = active[b % len(active):] + active[: b % len(active)]
        for col in order:
            n = passes[col]
            samples[col].append(benches[col].run(n) / (n * calls_per_pass))
    return {c: (statistics.median(samples[c]) if c in samples else None) for c in COLUMNS}


def loop_overhead(args: list, batches: int, batch_ns: float) -> float:
    """Per-call cost of the timing loop itself, calling a trivial builtin (`id`)."""
    def run(n):
        def loop():
            for _ in range(n):
                for a in args:
                    id(a)

        return _timed(loop)

    run(1)
    n = max(1, math.ceil(batch_ns / max(run(1), 1)))
    return statistics.median(run(n) / (n * len(args)) for _ in range(batches))


def fmt_time(ns: float | None) -> str:
    if ns is None:
        return "n/a"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 10_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000:.1f} µs"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:.0f}×" if r >= 100 else f"{r:.1f}×"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def lib_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="few, short batches (CI; < 60 s)")
    parser.add_argument("--batches", type=int, help="batches per cell (median taken); default 9, short 5")
    parser.add_argument("--batch-ms", type=float, help="target length of one batch; default 120, short 12")
    args = parser.parse_args(argv)
    batches = args.batches or (5 if args.short else 9)
    batch_ns = (args.batch_ms or (12.0 if args.short else 120.0)) * 1e6
    started = time.monotonic()

    tss = [BASE + k * STEP for k in range(N_STARTS)]
    dts_by_zone = {z: [datetime.fromtimestamp(t, zone_info(z)) for t in tss] for z in ZONES}

    print(
        f"# Next fire time from Python, per call (median of {batches} batches of ~{batch_ns / 1e6:.0f} ms; "
        f"{'short' if args.short else 'default'} mode)\n"
    )
    print(
        f"Python {platform.python_version()} on {platform.machine()}; fastcron {lib_version('fastcron')}, "
        f"croniter {lib_version('croniter')}, cronsim {lib_version('cronsim')}, "
        f"APScheduler {lib_version('apscheduler')}. {N_STARTS} start instants over 2024 (same for all "
        "libraries). Schedule objects are built once, outside the timer; cronsim, which cannot be "
        "re-seeded, gets a fresh iterator per call built before the timer; croniter is re-seeded per "
        "call with `set_current` (timed). Method: see the docstring of benches/compare_cron.py.\n"
    )
    print("Expressions per library (n/a = cannot be expressed):")
    for case in MIXED + [COLD]:
        aps = "n/a" if case.aps is None else (
            f"from_crontab({case.aps[1]!r})" if case.aps[0] == "crontab"
            else "CronTrigger(" + ", ".join(f"{k}={v!r}" for k, v in case.aps[1].items()) + ")"
        )
        print(
            f"- `{case.fastcron}`: croniter `{case.croniter or 'n/a'}`, cronsim `{case.cronsim or 'n/a'}`, "
            f"APScheduler `{aps}`"
        )
    print()

    header = ["expression", "zone"] + [TITLES[c] for c in COLUMNS] + [
        "croniter / next_after_ts",
        "croniter / next_after",
    ]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))

    mixed_ratios: dict[str, list[float]] = {}
    warnings = 0

    def row(label: str, zone: str, benches: dict[str, Bench | None], dts: list[datetime], mixed: bool) -> None:
        nonlocal warnings
        problems = check_agreement(benches, dts)
        times = measure(benches, N_STARTS, batches, batch_ns)
        r_ts = ratio(times["croniter"], times["fastcron_ts"])
        r_dt = ratio(times["croniter"], times["fastcron_dt"])
        cells = [label, zone] + [fmt_time(times[c]) for c in COLUMNS] + [fmt_ratio(r_ts), fmt_ratio(r_dt)]
        print("| " + " | ".join(cells) + " |", flush=True)
        for problem in problems:
            warnings += 1
            print(f"| ⚠ {label} | {zone} | first next differs: {problem} |" + " |" * (len(header) - 3), flush=True)
        if mixed:
            for key, other in (
                ("croniter / next_after_ts", ("croniter", "fastcron_ts")),
                ("croniter / next_after", ("croniter", "fastcron_dt")),
                ("cronsim / next_after_ts", ("cronsim", "fastcron_ts")),
                ("cronsim / next_after", ("cronsim", "fastcron_dt")),
                ("APScheduler / next_after_ts", ("aps", "fastcron_ts")),
                ("APScheduler / next_after", ("aps", "fastcron_dt")),
            ):
                r = ratio(times[other[0]], times[other[1]])
                if r is not None:
                    mixed_ratios.setdefault(key, []).append(r)

    for case in MIXED:
        for zone in ZONES:
            dts = dts_by_zone[zone]
            row(f"`{case.fastcron}`", zone, hot_benches(case, zone, tss, dts), dts, mixed=True)
    for zone in ZONES:
        dts = dts_by_zone[zone]
        row(f"cold parse + first next, `{COLD.fastcron}`", zone, cold_benches(COLD, zone, tss, dts), dts, mixed=False)

    print()
    n_cases = len(MIXED) * len(ZONES)

    def medians(keys):
        return ", ".join(
            f"{k} = {fmt_ratio(statistics.median(mixed_ratios[k]))}"
            + ("" if len(mixed_ratios[k]) == n_cases else f" (over {len(mixed_ratios[k])} cases)")
            for k in keys
            if k in mixed_ratios
        )

    print(
        f"Median over the mixed set ({n_cases} cases, cold rows excluded): "
        + medians(["croniter / next_after_ts", "croniter / next_after"])
    )
    print(
        "For reference, same medians: "
        + medians(["cronsim / next_after_ts", "cronsim / next_after", "APScheduler / next_after_ts", "APScheduler / next_after"])
    )
    overhead = loop_overhead(tss, batches, batch_ns / 4)
    print(
        f"Loop overhead included in every cell: {fmt_time(overhead)} per call. "
        f"{'No disagreements' if not warnings else f'{warnings} DISAGREEMENT warning(s)'} on the first next "
        f"fire time. Wall time {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
