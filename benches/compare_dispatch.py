#!/usr/bin/env python3
"""Registration and dispatch: fastcron against APScheduler 3 (AsyncIOScheduler on uvloop), measured
in one run and printed as one markdown table.

    python benches/compare_dispatch.py            # full: N = 1k, 10k, 100k for 30 s each (~10 min)
    python benches/compare_dispatch.py --short    # CI: 20k registered; N = 1k, 10k for 8 s (~3 min)

Every measurement runs in a fresh subprocess (one library, one workload), so neither library pays
for the other's heap, and a library that cannot keep up is stopped by a deadline, not waited for.

What is measured:
- Registration: 100k cron jobs added to a *started* scheduler, one call per job (fastcron:
  ``scheduler.add(fn, expr, name=...)``, which validates, registers and arms the job in the wheel;
  a second row uses the bulk ``scheduler.add_many(fn, [(name, expr), ...])``; APScheduler:
  ``add_job(fn, CronTrigger.from_crontab(expr), id=...)``). Expressions vary over 1,440
  ("M H * * *" for every minute of the day), so neither side parses just one. Time per job:
  the median of several rounds (5 in short mode, 3 in full), each round timing every library
  once, one after another, so that a slow stretch of a noisy machine falls on both sides; the
  ratio is of the medians.
- Memory per job: the same registration, in its own process, under tracemalloc (Python heap)
  and as growth of the resident set (RSS; includes the Rust side of fastcron), divided by N.
- Dispatch: N no-op async jobs, each firing every second, for ``--duration`` seconds, in two
  workloads. *aligned*: every job at the top of every second (fastcron ``"* * * * * *"``,
  APScheduler ``CronTrigger(second="*")``), the worst case: the k-th fire of a tick starts k fires
  late. *spread*: job i fires at i/N past every second (``Interval("1s", start=t0 + i/N)``,
  ``IntervalTrigger(seconds=1, start_date=t0 + i/N)``), what interval jobs added over time look
  like; it needs sub-second Interval anchors in the core (the row says so when missing). Each
  job records its start; lateness = start - scheduled instant (fastcron aligned: a no-op job with
  no context notes its start, the scheduled instant is that start's whole second, and every second
  of the window must hold exactly N starts for the figures to count; fastcron spread:
  ``ctx.scheduled_ms`` in the job; APScheduler: the job returns its start time and ``EVENT_JOB_EXECUTED`` carries
  ``scheduled_run_time``). Fires/s = fires scheduled in the window that started (by 5 s after its
  end) / window. Both libraries run with their default misfire settings (APScheduler drops fires
  more than 1 s late, fastcron 1 min: dropped fires count as not achieved).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

REGISTER_N = 100_000


def _exprs(n: int) -> list[str]:
    return [f"{i % 60} {(i // 60) % 24} * * *" for i in range(n)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _loop_runner(main: Any) -> Any:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# ------------------------------------------------------------------------------------ fastcron


async def _noop() -> None:
    return None


def fastcron_register(n: int, memory: bool, bulk: bool = False) -> dict[str, float]:
    from fastcron.registry import Registry
    from fastcron.scheduler import Scheduler

    async def main() -> dict[str, float]:
        scheduler = Scheduler(Registry())
        async with scheduler:
            exprs = _exprs(n)
            names = [f"job-{i}" for i in range(n)]
            scheduler.add(_noop, "0 0 1 1 *", name="warm-up")
            gc.collect()
            if memory:
                rss0 = _rss_bytes()
                tracemalloc.start()
                snap0 = tracemalloc.get_traced_memory()[0]
            t0 = time.perf_counter()
            if bulk:
                scheduler.add_many(_noop, zip(names, exprs))
            else:
                add = scheduler.add
                for name, expr in zip(names, exprs):
                    add(_noop, expr, name=name)
            elapsed = time.perf_counter() - t0
            assert len(scheduler.jobs) == n + 1
            out = {"us_per_job": elapsed / n * 1e6}
            if memory:
                out["py_bytes_per_job"] = (tracemalloc.get_traced_memory()[0] - snap0) / n
                tracemalloc.stop()
                gc.collect()
                out["rss_bytes_per_job"] = (_rss_bytes() - rss0) / n
            await scheduler.stop(grace=0)
        return out

    return _loop_runner(main())


def fastcron_spread_supported() -> bool:
    """Whether the core keeps sub-second Interval anchors (needed to spread jobs over a second)."""
    from fastcron import _core

    try:
        wheel = _core.Wheel(0)
        return wheel.insert(0, 0, _core.Interval("1s", start=0.5), 0) == 500
    except (TypeError, ValueError):
        return False


def fastcron_dispatch(n: int, duration: float, spread: bool = False, sqlite: bool = False) -> dict[str, Any]:
    from fastcron import Interval
    from fastcron.job import JobContext
    from fastcron.registry import Registry
    from fastcron.scheduler import Scheduler

    lateness: list[int] = []
    record = lateness.append
    clock_ns = time.time_ns
    window = WINDOW_MS

    if spread:
        async def tick(ctx: JobContext) -> None:
            scheduled = ctx.scheduled_ms
            if window[0] <= scheduled < window[1]:
                record(clock_ns() // 1_000_000 - scheduled)
    else:
        # A truly no-op job takes no context: it notes its start, and the scheduled instant is
        # the whole second it falls in. That reading is checked, not assumed: `_aligned_lateness`
        # requires every second of the window to hold exactly N starts, which holds only if no
        # fire started a second or more late.
        async def tick() -> None:  # type: ignore[misc]
            record(clock_ns())  # the probe does as little as it can; ms are worked out afterwards

    async def main() -> dict[str, Any]:
        store = None
        if sqlite:  # "store on": every run recorded in a SQLite file (WAL, batched per tick)
            import tempfile

            from fastcron.stores.sqlite import SQLiteStore

            import atexit
            import shutil

            directory = tempfile.mkdtemp(prefix="fastcron-bench-")
            atexit.register(shutil.rmtree, directory, True)
            store = SQLiteStore(os.path.join(directory, "bench.db"))
        scheduler = Scheduler(Registry(), max_concurrency=max(10_000, 2 * n), store=store)
        async with scheduler:
            if spread:  # job i fires at i/n past every second
                base = int(time.time())
                entries = [(f"tick-{i}", Interval("1s", start=base + i / n)) for i in range(n)]
            else:  # every job at the top of every second
                entries = [(f"tick-{i}", "* * * * * *") for i in range(n)]
            scheduler.add_many(tick, entries)
            if spread:
                return await _window(lateness, duration, scheduler.stop)
            return _aligned_lateness(await _window(lateness, duration, scheduler.stop, raw=True), n)

    return _loop_runner(main())


# The window, [start, end) in epoch ms: jobs record only fires scheduled inside it.
WINDOW_MS = [0, 0]


def _aligned_lateness(raw: dict[str, Any], n: int) -> dict[str, Any]:
    """Summaries for the aligned workload from raw start instants (ns): each second of the window
    must hold exactly n starts, else a fire crossed into the next second and the reading of
    'scheduled = the start's whole second' would be wrong (then the figures say so)."""
    first, last = WINDOW_MS[0] * 1_000_000, WINDOW_MS[1] * 1_000_000
    starts = [t for t in raw["samples"] if first <= t < last + 1_000_000_000]
    per_second: dict[int, int] = {}
    for t in starts:
        per_second[t // 1_000_000_000] = per_second.get(t // 1_000_000_000, 0) + 1
    seconds = range(first // 1_000_000_000, last // 1_000_000_000)
    exact = all(per_second.get(second, 0) == n for second in seconds)
    samples = sorted(t % 1_000_000_000 / 1e6 for t in starts if t < last)
    if not exact:
        return {"fires": len(samples), "window": raw["window"], "p50": float("nan"), "p99": float("nan"),
                "max": float("nan"), "note": "a fire started >= 1 s late: lateness not measurable this way"}
    return {
        "fires": len(samples),
        "window": raw["window"],
        "p50": _percentile(samples, 0.50),
        "p99": _percentile(samples, 0.99),
        "max": samples[-1] if samples else float("nan"),
    }


async def _window(lateness: list[Any], duration: float, stop: Any, raw: bool = False) -> dict[str, Any]:
    """Count the fires scheduled in a ``duration``-second window that starts 2 s from now (the
    first fires are warm-up), waiting up to 5 s past its end for late ones to start."""
    start = int(time.time()) + 2
    WINDOW_MS[:] = [start * 1000, int((start + duration) * 1000)]
    await asyncio.sleep(max(0.0, start + duration - time.time()))
    deadline = time.time() + 5.0
    previous = -1
    while time.time() < deadline and len(lateness) != previous:  # until late starts stop coming
        previous = len(lateness)
        await asyncio.sleep(0.5)
    cut = len(lateness)
    samples = sorted(lateness)
    await stop(grace=0)
    if raw:
        return {"window": duration, "samples": samples}
    # Summaries only: the samples themselves would be megabytes of JSON.
    return {
        "fires": cut,
        "window": duration,
        "p50": _percentile(samples, 0.50),
        "p99": _percentile(samples, 0.99),
        "max": samples[-1] if samples else float("nan"),
    }


# --------------------------------------------------------------------------------- APScheduler


def aps_register(n: int, memory: bool) -> dict[str, float]:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    async def main() -> dict[str, float]:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        scheduler.start()
        exprs = _exprs(n)
        names = [f"job-{i}" for i in range(n)]
        scheduler.add_job(_noop, CronTrigger.from_crontab("0 0 1 1 *", timezone="UTC"), id="warm-up")
        gc.collect()
        if memory:
            rss0 = _rss_bytes()
            tracemalloc.start()
            snap0 = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        for name, expr in zip(names, exprs):
            scheduler.add_job(_noop, CronTrigger.from_crontab(expr, timezone="UTC"), id=name)
        elapsed = time.perf_counter() - t0
        out = {"us_per_job": elapsed / n * 1e6}
        if memory:
            out["py_bytes_per_job"] = (tracemalloc.get_traced_memory()[0] - snap0) / n
            tracemalloc.stop()
            gc.collect()
            out["rss_bytes_per_job"] = (_rss_bytes() - rss0) / n
        scheduler.shutdown(wait=False)
        return out

    return _loop_runner(main())


def aps_dispatch(n: int, duration: float, spread: bool = False) -> dict[str, Any]:
    from datetime import datetime, timezone

    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    lateness: list[float] = []

    async def tick() -> float:
        return time.time()

    def executed(event: Any) -> None:
        scheduled = event.scheduled_run_time.timestamp() * 1000
        if WINDOW_MS[0] <= scheduled < WINDOW_MS[1]:
            lateness.append(event.retval * 1000 - scheduled)

    async def main() -> dict[str, Any]:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        scheduler.add_listener(executed, EVENT_JOB_EXECUTED)
        scheduler.start()
        trigger = CronTrigger(second="*", timezone="UTC")
        base = int(time.time()) + 1
        for i in range(n):
            if spread:
                start = datetime.fromtimestamp(base + i / n, timezone.utc)
                trigger = IntervalTrigger(seconds=1, start_date=start, timezone="UTC")
            scheduler.add_job(tick, trigger, id=f"tick-{i}")

        async def stop(grace: float) -> None:
            scheduler.shutdown(wait=False)

        return await _window(lateness, duration, stop)

    return _loop_runner(main())


# ---------------------------------------------------------------------------------- the driver

WORKERS = {
    ("fastcron", "register"): fastcron_register,
    ("fastcron", "dispatch"): fastcron_dispatch,
    ("apscheduler", "register"): aps_register,
    ("apscheduler", "dispatch"): aps_dispatch,
}


def _worker(argv: list[str]) -> None:
    lib, kind, n, extra = argv[0], argv[1], int(argv[2]), argv[3]
    func = WORKERS[(lib, kind.split("-")[0])]
    if kind == "register":
        result = func(n, extra == "memory")
    elif kind == "register-bulk":
        result = func(n, False, True)
    else:
        result = func(n, float(extra), kind == "dispatch-spread", *([True] if kind == "dispatch-sqlite" else []))
    print(json.dumps(result))


def _spawn(lib: str, kind: str, n: int, extra: str, deadline: float) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--worker", lib, kind, str(n), extra]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline, check=False)
    except subprocess.TimeoutExpired:
        print(f"  {lib} {kind} N={n}: no result within {deadline:.0f} s", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"  {lib} {kind} N={n} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _dispatch_cells(result: dict[str, Any] | None, n: int) -> list[str]:
    if result is None:
        return ["n/a"] * 4
    rate = result["fires"] / result["window"]
    return [f"{rate:,.0f} ({rate / n:.0%})", f"{result['p50']:,.1f}", f"{result['p99']:,.1f}", f"{result['max']:,.1f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI mode: N = 1k, 10k; 8 s windows")
    parser.add_argument("--duration", type=float, default=None, help="seconds per dispatch window")
    parser.add_argument("--sizes", default=None, help="comma-separated N for dispatch")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return 0
    duration = args.duration or (8.0 if args.short else 30.0)
    register_n = 20_000 if args.short else REGISTER_N
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([1_000, 10_000] if args.short else [1_000, 10_000, 100_000])
    libs = ["fastcron", "apscheduler"]

    rows: list[list[str]] = []
    # Registration is timed in rounds, each library once per round, one process each: a slow
    # stretch of this noisy machine then hits both sides, and the medians are compared.
    rounds = 5 if args.short else 3
    timed: dict[str, list[float]] = {"fastcron": [], "bulk": [], "apscheduler": []}
    for round_no in range(1, rounds + 1):
        print(f"registering {register_n:,} cron jobs, round {round_no} of {rounds}", file=sys.stderr)
        for key, lib, kind in (("fastcron", "fastcron", "register"), ("bulk", "fastcron", "register-bulk"),
                               ("apscheduler", "apscheduler", "register")):
            result = _spawn(lib, kind, register_n, "time", 900)
            if result is not None:
                timed[key].append(result["us_per_job"])
    mem: dict[str, dict[str, Any] | None] = {lib: _spawn(lib, "register", register_n, "memory", 1200) for lib in libs}

    def cell(d: dict[str, Any] | None, key: str, fmt: str) -> str:
        return "n/a" if d is None else format(d[key], fmt)

    def timed_cell(key: str) -> str:
        values = timed[key]
        if not values:
            return "n/a"
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    def speedup(key: str) -> str:
        if not timed[key] or not timed["apscheduler"]:
            return "n/a"
        return f"{statistics.median(timed['apscheduler']) / statistics.median(timed[key]):.0f}x"

    label = f"register {register_n // 1000}k cron jobs (µs/job, median (min-max) of {rounds} rounds)"
    rows.append([label, timed_cell("fastcron"), timed_cell("apscheduler"), speedup("fastcron")])
    rows.append([f"register {register_n // 1000}k cron jobs, fastcron add_many (µs/job, same rounds)",
                 timed_cell("bulk"), timed_cell("apscheduler"), speedup("bulk")])
    rows.append(["memory per job, RSS growth (bytes)", cell(mem["fastcron"], "rss_bytes_per_job", ",.0f"),
                 cell(mem["apscheduler"], "rss_bytes_per_job", ",.0f"), ""])
    rows.append(["memory per job, Python heap (bytes)", cell(mem["fastcron"], "py_bytes_per_job", ",.0f"),
                 cell(mem["apscheduler"], "py_bytes_per_job", ",.0f"), ""])

    spread_ok = fastcron_spread_supported()
    for workload in ("aligned", "spread"):
        for n in sizes:
            cells = {}
            for lib in libs:
                if lib == "fastcron" and workload == "spread" and not spread_ok:
                    cells[lib] = ["n/a: core Interval anchors are whole seconds"] + [""] * 3
                    continue
                print(f"dispatching N={n:,} {workload} for {duration:.0f} s: {lib}", file=sys.stderr)
                kind = "dispatch" if workload == "aligned" else "dispatch-spread"
                cells[lib] = _dispatch_cells(_spawn(lib, kind, n, str(duration), duration * 4 + 120), n)
            labels = ["fires/s achieved (of N)", "lateness p50 (ms)", "lateness p99 (ms)", "lateness max (ms)"]
            for i, label in enumerate(labels):
                rows.append([f"{workload}, N={n:,}: {label}", cells["fastcron"][i], cells["apscheduler"][i], ""])

    # The same aligned workload with the SQLite store on: every run committed as running before
    # its function is called, then its outcome. Fires/s can reach at most N, so the >= 50k
    # fires/s target is read from the N=50k row (always run) and the N=100k row (full mode).
    for n in sorted({*sizes, 50_000}):
        print(f"dispatching N={n:,} aligned, store on (SQLite), for {duration:.0f} s: fastcron", file=sys.stderr)
        cells_sqlite = _dispatch_cells(_spawn("fastcron", "dispatch-sqlite", n, str(duration), duration * 4 + 120), n)
        labels = ["fires/s achieved (of N)", "lateness p50 (ms)", "lateness p99 (ms)", "lateness max (ms)"]
        for i, label in enumerate(labels):
            rows.append([f"aligned, store on (SQLite), N={n:,}: {label}", cells_sqlite[i], "n/a", ""])

    import apscheduler
    import fastcron

    print(f"\n{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; fastcron {fastcron.__version__}, APScheduler {apscheduler.__version__} "
          f"(AsyncIOScheduler), both on uvloop; dispatch window {duration:.0f} s\n")
    print("| measurement | fastcron | APScheduler 3 | fastcron vs APScheduler |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
