"""Three scheduler processes on one real PostgreSQL database, abused: one SIGKILLed mid-run and
restarted, one SIGSTOPped for 15 s (presumed dead, its late results fenced), one running with its
clock 3 s ahead (libfaketime), backends killed with pg_terminate_backend, the server stopped and
started again. Then the database must show every fire key the schedule implies, once, with at
most one outcome each, interrupted attempts restarted elsewhere within 10 s, and a fair share of
runs on each surviving node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pgserver import PgServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, libfaketime")

TICKS = 1500  # every-second no-op jobs
SLEEPERS = 30  # every-second jobs that sleep 3 s: always some in flight when a node dies
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

APP = f'''
import asyncio
from fastcron import job

def _tick():
    async def tick():
        return None
    return tick

for i in range({TICKS}):
    job("* * * * * *", name=f"tick-{{i}}", misfire_grace="60s")(_tick())

def _sleeper():
    async def sleeper():
        await asyncio.sleep(3)
    return sleeper

for i in range({SLEEPERS}):
    job("* * * * * *", name=f"sleeper-{{i}}", misfire_grace="60s", retries=3, overlap="allow")(_sleeper())
'''


def start_node(tmp_path: Path, dsn: str, name: str, *, clock_offset_s: int = 0) -> subprocess.Popen[bytes]:
    app = tmp_path / "cluster_app.py"
    if not app.exists():
        app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    env.update(FASTCRON_LOOP="asyncio", FASTCRON_NODE_TTL="6", PYTHONFAULTHANDLER="1")
    if clock_offset_s:
        assert FAKETIME_LIB.exists(), "libfaketime is missing: apt-get install faketime"
        env.update(LD_PRELOAD=str(FAKETIME_LIB), FAKETIME=f"+{clock_offset_s}s", FAKETIME_DONT_FAKE_MONOTONIC="1")
    with (tmp_path / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "fastcron", "start", "--app", str(app), "--db", dsn, "--grace", "5"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )


def query(server: PgServer, dbname: str, sql: str, params: Any = None) -> list[Any]:
    import psycopg

    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - the schema may not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop_node(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to the log
        return proc.wait()


def test_three_nodes_survive_kill_stop_clock_skew_and_a_database_restart(pg_server: PgServer, pg_dsn: str, tmp_path: Path) -> None:
    db = pg_dsn.split("dbname=")[1]
    url = f"postgresql://postgres@127.0.0.1:{pg_server.port}/{db}"  # as an operator passes --db
    nodes = {
        "a": start_node(tmp_path, url, "a"),
        "b": start_node(tmp_path, url, "b"),
        "c": start_node(tmp_path, url, "c", clock_offset_s=3),
    }
    restarted: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: len(query(pg_server, db, "SELECT 1 FROM fastcron.nodes WHERE state = 'alive'")) == 3, 60, "3 nodes")
        wait_until(lambda: query(pg_server, db, "SELECT count(*) FROM fastcron.runs")[0][0] > 3 * TICKS, 30, "runs")
        window_start = query(pg_server, db, "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")[0][0]
        time.sleep(4)

        node_a = query(pg_server, db, "SELECT node FROM fastcron.nodes WHERE pid = %s", (nodes["a"].pid,))[0][0]
        nodes["a"].send_signal(signal.SIGKILL)  # mid-run: sleepers are always in flight
        nodes["a"].wait()
        time.sleep(3)
        restarted = start_node(tmp_path, url, "a2")

        time.sleep(3)
        node_b = query(pg_server, db, "SELECT node FROM fastcron.nodes WHERE pid = %s", (nodes["b"].pid,))[0][0]
        # Stopped while it holds a sleeper's attempt, so there is something of B's to take over.
        wait_until(
            lambda: query(
                pg_server, db,
                "SELECT 1 FROM fastcron.runs WHERE node = %s AND status = 'running' AND job LIKE 'sleeper%%' "
                "AND started_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint - 2000",
                (node_b,),
            ) != [],
            20,
            "B running a sleeper",
        )
        nodes["b"].send_signal(signal.SIGSTOP)
        time.sleep(7)
        killed = pg_server.terminate_backends(db)  # every node's connections, pool and heartbeat
        assert killed > 0
        time.sleep(8)
        nodes["b"].send_signal(signal.SIGCONT)

        time.sleep(4)
        before_outage = query(pg_server, db, "SELECT id, status FROM fastcron.runs WHERE status <> 'running'")
        pg_server.stop()
        time.sleep(3)
        pg_server.start()
        time.sleep(10)
        window_end = query(pg_server, db, "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")[0][0] - 8000
    finally:
        codes = {name: stop_node(proc) for name, proc in nodes.items() if name != "a"}
        if restarted is not None:
            codes["a2"] = stop_node(restarted)
    logs = {p.stem: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert codes == {"b": 0, "c": 0, "a2": 0}, logs
    assert "Traceback" not in "".join(logs.values()), logs

    # Every fire key the schedule implies over the window exists once (the unique index makes
    # "once" structural; this checks nothing is missing), and none was missed.
    first_s, last_s = -(-window_start // 1000), window_end // 1000
    expected = (last_s - first_s + 1) * (TICKS + SLEEPERS)
    counted = query(
        pg_server, db,
        "SELECT count(*), count(*) FILTER (WHERE state = 'missed') FROM fastcron.fires "
        "WHERE schedule_index = 0 AND scheduled_ms BETWEEN %s AND %s",
        (first_s * 1000, last_s * 1000),
    )[0]
    assert counted == (expected, 0)
    unfinished = query(
        pg_server, db,
        "SELECT f.state, f.job LIKE 'sleeper%%', f.node, count(*), min(f.scheduled_ms) - %s, max(f.scheduled_ms) - %s, "
        "min(r.status || ': ' || coalesce(r.error, '') || coalesce(r.message, '')) "
        "FROM fastcron.fires f LEFT JOIN fastcron.runs r ON r.fire_id = f.id "
        "WHERE f.scheduled_ms BETWEEN %s AND %s AND f.state <> 'succeeded' GROUP BY 1, 2, 3",
        (window_start, window_start, first_s * 1000, last_s * 1000),
    )
    assert unfinished == [], "\n".join(map(repr, unfinished))

    # At most one outcome per fire; every attempt row belongs to one fire attempt.
    doubled = query(
        pg_server, db,
        "SELECT fire_id FROM fastcron.runs WHERE status IN ('succeeded', 'failed', 'timed_out', 'cancelled') "
        "AND fire_id IS NOT NULL GROUP BY fire_id HAVING count(*) > 1",
    )
    assert doubled == []

    # Attempts interrupted by the SIGKILL and the SIGSTOP were restarted on another node within 10 s.
    interrupted = query(
        pg_server, db,
        "SELECT r.fire_id, r.node, r.finished_ms, r.message, "
        "(SELECT min(n.started_ms) FROM fastcron.runs n WHERE n.fire_id = r.fire_id AND n.attempt > r.attempt "
        " AND n.node <> r.node) FROM fastcron.runs r WHERE r.status = 'interrupted'",
    )
    by_node = Counter(node for _, node, _, _, _ in interrupted)
    assert by_node[node_a] > 0 and by_node[node_b] > 0, by_node
    for fire_id, node, finished_ms, _message, restart_ms in interrupted:
        assert restart_ms is not None, f"fire {fire_id} interrupted on {node} was never restarted"
        assert restart_ms - finished_ms <= 10_000, (fire_id, node, restart_ms - finished_ms)
    death_to_restart = query(
        pg_server, db,
        "SELECT max(n.started_ms - r.started_ms) FROM fastcron.runs r JOIN fastcron.runs n "
        "ON n.fire_id = r.fire_id AND n.attempt = r.attempt + 1 WHERE r.status = 'interrupted' AND r.node = %s",
        (node_a,),
    )[0][0]
    assert death_to_restart is not None and death_to_restart <= 3000 + 10_000  # sleeper start + 3 s run

    # B's results from before it was presumed dead were fenced, not applied.
    fenced = query(pg_server, db, "SELECT count(*) FROM fastcron.runs WHERE node = %s AND message LIKE 'late result discarded%%'", (node_b,))
    assert fenced[0][0] > 0

    # Nothing recorded before the database restart was lost.
    after = dict(query(pg_server, db, "SELECT id, status FROM fastcron.runs"))
    assert all(after.get(run_id) == status for run_id, status in before_outage)

    # A fair share: each node that lived through the window ran at least a fifth of the runs.
    shares = dict(query(
        pg_server, db,
        "SELECT node, count(*) FROM fastcron.runs WHERE scheduled_ms BETWEEN %s AND %s AND status = 'succeeded' "
        "GROUP BY node", (first_s * 1000, last_s * 1000),
    ))
    total = sum(shares.values())
    node_c = query(pg_server, db, "SELECT node FROM fastcron.nodes WHERE pid = %s", (nodes["c"].pid,))[0][0]
    assert shares.get(node_c, 0) >= total / 5, shares
    assert shares.get(node_b, 0) >= total / 10, shares  # stopped for 15 s of the window


CLI_APP = '''
from fastcron import job

@job("0 0 1 1 *", name="yearly")
def yearly():
    return "done"

@job("manual", name="broken")
async def broken():
    raise RuntimeError("kaput")
'''


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "cli_app.py"
    if not app.exists():
        app.write_text(CLI_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    env["FASTCRON_APP"] = str(app)
    return subprocess.run([sys.executable, "-m", "fastcron", *args], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env)


def test_the_command_line_works_against_postgresql(pg_server: PgServer, pg_dsn: str, tmp_path: Path) -> None:
    import json

    url = f"postgresql://postgres@127.0.0.1:{pg_server.port}/{pg_dsn.split('dbname=')[1]}"
    ran = cli(tmp_path, "run", "--all", "--sequential", "--db", url, "--json")
    assert ran.returncode == 1, ran.stderr  # broken failed
    assert {d["job"]: d["status"] for d in json.loads(ran.stdout)["data"]} == {"yearly": "succeeded", "broken": "failed"}
    assert cli(tmp_path, "pause", "yearly", "--db", url).returncode == 0
    listed = {d["name"]: d for d in json.loads(cli(tmp_path, "list", "--db", url, "--json").stdout)["data"]}
    assert listed["yearly"]["state"] == "paused" and listed["yearly"]["run_count"] == 1
    assert listed["broken"]["last_status"] == "failed"
    history = json.loads(cli(tmp_path, "history", "--db", url, "--status", "failed", "--json").stdout)["data"]
    assert [(h["job"], h["error"]) for h in history] == [("broken", "RuntimeError: kaput")]
    nodes = cli(tmp_path, "nodes", "--db", url, "--json")
    assert nodes.returncode == 0 and json.loads(nodes.stdout)["data"] == []  # no scheduler started
    not_pg = cli(tmp_path, "nodes", "--db", str(tmp_path / "x.db"))
    assert not_pg.returncode == 2 and "only on a PostgreSQL store" in not_pg.stderr
    down = cli(tmp_path, "list", "--db", "postgresql://postgres@127.0.0.1:1/nothing")
    assert down.returncode == 2 and len(down.stderr.strip().splitlines()) == 1 and "Traceback" not in down.stderr


def test_a_node_rereads_the_store_after_losing_its_notifications(pg_server: PgServer, pg_dsn: str) -> None:
    import asyncio

    from fastcron import Registry, Scheduler
    from fastcron.abc import Command, DynamicTarget, JobDef
    from fastcron.stores.postgres import PostgresStore

    db = pg_dsn.split("dbname=")[1]

    async def main() -> None:
        registry = Registry()

        @registry.job("0 0 1 1 *", name="yearly")
        def yearly() -> None:
            pass

        scheduler = Scheduler(registry, store=PostgresStore(pg_dsn))
        async with scheduler:
            other = PostgresStore(pg_dsn)
            await other.open()
            # Written and notified while the node listens: it hears at once.
            await other.save_dynamic(JobDef("heard", kind="dynamic", target=DynamicTarget(command=["true"])))
            await other.post_command(Command("add", "heard"))
            await _until(lambda: "heard" in {j.name for j in scheduler.jobs}, "the notified job")
            # Written behind its back (no notification), then its listening connection is cut.
            query(pg_server, db, "UPDATE fastcron.jobs SET paused = true WHERE name = 'yearly'")
            await other.save_dynamic(JobDef("unheard", kind="dynamic", target=DynamicTarget(command=["true"])))
            assert pg_server.terminate_backends(db, "fastcron-heartbeat") >= 1
            await _until(lambda: "unheard" in {j.name for j in scheduler.jobs}, "the resync after reconnecting")
            await _until(lambda: scheduler.metrics("yearly").state == "paused", "the pause read back")
            await other.close()

    async def _until(check: Any, what: str) -> None:
        for _ in range(100):
            if check():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    asyncio.run(main())


def test_run_now_runs_once_in_the_cluster_and_retries_go_back_to_the_database(pg_dsn: str) -> None:
    import asyncio

    from fastcron import Registry, Scheduler
    from fastcron.abc import Command
    from fastcron.stores.postgres import PostgresStore

    calls: list[str] = []

    def node_registry(node: str) -> Registry:
        registry = Registry()

        @registry.job("manual", name="by_hand")
        async def by_hand() -> None:
            calls.append(f"by_hand@{node}")

        @registry.job("manual", name="flaky", retries=1, retry_delay="200ms", retry_jitter=0)
        def flaky() -> None:  # a thread job
            calls.append(f"flaky@{node}")
            raise RuntimeError("not yet")

        return registry

    async def main() -> None:
        a = Scheduler(node_registry("a"), store=PostgresStore(pg_dsn))
        b = Scheduler(node_registry("b"), store=PostgresStore(pg_dsn))
        async with a, b:
            cli_side = PostgresStore(pg_dsn)
            await cli_side.open()
            started = time.monotonic()
            await cli_side.post_command(Command("run", "by_hand"))
            await cli_side.post_command(Command("run", "flaky"))
            while (len([c for c in calls if c.startswith("flaky")]) < 2 or "by_hand" not in "".join(calls)) \
                    and time.monotonic() - started < 10:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a second run of by_hand, if there were one, would show now
            runs = await cli_side.history(limit=10)
            await cli_side.close()
        assert len([c for c in calls if c.startswith("by_hand")]) == 1, calls  # both nodes heard; one ran it
        assert len([c for c in calls if c.startswith("flaky")]) == 2, calls
        flaky_runs = sorted((r.attempt, r.status, r.trigger) for r in runs if r.job == "flaky")
        assert flaky_runs == [(1, "failed", "manual"), (2, "failed", "manual")], runs

    asyncio.run(main())
