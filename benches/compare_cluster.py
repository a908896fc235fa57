"""fastcron nodes on one PostgreSQL database: sustained fires per second, start lateness, and
statements per fire, with 1, 2 and 3 nodes.

    python benches/compare_cluster.py            # N = 10k every-second jobs, 30 s windows
    python benches/compare_cluster.py --short    # CI: N = 5k, 10 s windows

Each node is a real `python -m fastcron start --db postgresql://...` process. Everything is read
back from the database afterwards, on its clock: a fire counts if it was scheduled inside the
window and succeeded; lateness is the attempt's start (the claim, database clock) minus its
scheduled instant; statements per fire is pg_stat_statements' call count over the window divided
by the fires in it. The server runs with its durability settings on (fsync, synchronous commit).
All nodes and the server share this machine's cores, so more nodes add contention, not capacity.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pgserver import PgServer  # noqa: E402 - the test suite's server manager

APP = """
from fastcron import job

def _noop():
    async def noop():
        return None
    return noop

for i in range({n}):
    job("* * * * * *", name=f"tick-{{i}}")(_noop())
"""
NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"


def query(server: PgServer, db: str, sql: str, params: Any = None) -> list[Any]:
    import psycopg

    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def measure(server: PgServer, nodes: int, n: int, window_s: float, workdir: Path) -> dict[str, Any]:
    db = f"bench_{nodes}"
    server.create_database(db)
    query(server, db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    url = f"postgresql://postgres@127.0.0.1:{server.port}/{db}"
    app = workdir / "bench_app.py"
    app.write_text(APP.format(n=n))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "fastcron", "start", "--app", str(app), "--db", url, "--grace", "2"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(nodes)
    ]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # every node up and the first fires made
            alive = query(server, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,))[0][0]
            try:
                ran = query(server, db, "SELECT count(*) FROM fastcron.runs")[0][0]
            except Exception:  # noqa: BLE001 - the schema is not there yet
                ran = 0
            if alive >= nodes and ran >= n:
                break
            time.sleep(0.5)
        time.sleep(3)  # warm-up
        start_ms = query(server, db, f"SELECT {NOW_MS}")[0][0]
        start_ms = (start_ms // 1000 + 1) * 1000
        query(server, db, "SELECT pg_stat_statements_reset()")
        time.sleep(window_s + 1)
        end_ms = start_ms + int(window_s * 1000)
        calls = query(server, db, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements")[0][0]
        time.sleep(3)  # let the window's last fires finish
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows = query(
        server, db,
        "SELECT started_ms - scheduled_ms FROM fastcron.runs WHERE status = 'succeeded' AND trigger = 'schedule' "
        "AND scheduled_ms >= %s AND scheduled_ms < %s",
        (start_ms, end_ms),
    )
    lateness = sorted(int(r[0]) for r in rows)
    per_node = query(
        server, db,
        "SELECT count(*) FROM fastcron.runs WHERE status = 'succeeded' AND scheduled_ms >= %s AND scheduled_ms < %s "
        "GROUP BY node ORDER BY 1",
        (start_ms, end_ms),
    )
    fires = len(lateness)
    return {
        "nodes": nodes,
        "fires_per_s": fires / window_s,
        "expected_per_s": n,
        "p50": percentile(lateness, 0.50),
        "p99": percentile(lateness, 0.99),
        "max": lateness[-1] if lateness else float("nan"),
        "statements_per_fire": calls / fires if fires else float("nan"),
        "spread": [int(r[0]) for r in per_node],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI mode: N = 5k, 10 s windows")
    parser.add_argument("--jobs", type=int, default=None, help="every-second jobs (fires/s asked for)")
    parser.add_argument("--window", type=float, default=None, help="seconds measured per node count")
    parser.add_argument("--nodes", default="1,2,3", help="comma-separated node counts")
    args = parser.parse_args(argv)
    n = args.jobs or (5_000 if args.short else 10_000)
    window = args.window or (10.0 if args.short else 30.0)
    server = PgServer(settings=("fsync=on", "synchronous_commit=on", "full_page_writes=on",
                                "shared_preload_libraries=pg_stat_statements"))
    results = []
    with tempfile.TemporaryDirectory(prefix="fastcron-cluster-bench-") as workdir:
        try:
            server.start()
            for nodes in (int(x) for x in args.nodes.split(",")):
                print(f"{nodes} node(s), {n:,} every-second jobs, {window:.0f} s window", file=sys.stderr)
                results.append(measure(server, nodes, n, window, Path(workdir)))
        finally:
            server.cleanup()
    import fastcron

    print(f"\n{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs (nodes and server share them); fastcron {fastcron.__version__}; "
          f"{n:,} every-second jobs, {window:.0f} s window; lateness = claim (database clock) - scheduled\n")
    print("| nodes | fires/s (of N) | lateness p50 (ms) | p99 (ms) | max (ms) | statements/fire | fires per node |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        print(f"| {r['nodes']} | {r['fires_per_s']:,.0f} ({r['expected_per_s']:,}) | {r['p50']:.0f} | {r['p99']:.0f} "
              f"| {r['max']:.0f} | {r['statements_per_fire']:.4f} | {', '.join(f'{x:,}' for x in r['spread'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
