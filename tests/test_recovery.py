"""Real processes on a real SQLite file: a scheduler killed with SIGKILL mid-run and restarted
(interrupted rows, nothing committed lost, catch-up and missed rows by policy); two schedulers on
one database (one fires, the other stands by and takes over when the first is killed); changes
made from the CLI reach a running scheduler within a second or so."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals")

APP = '''
import asyncio
from fastcron import job

@job("* * * * * *", name="every", misfire_grace="1s", catchup="all")
async def every():
    return None

@job("* * * * * *", name="skipper", misfire_grace="1s", catchup="skip")
async def skipper():
    return None

@job("manual", name="on_demand")
async def on_demand():
    return "on demand"

@job("* * * * * *", name="slow", overlap="skip")
async def slow():
    await asyncio.sleep(3600)
'''


def start(tmp_path: Path, db: Path, **env: str) -> subprocess.Popen[str]:
    app = tmp_path / "crash_app.py"
    if not app.exists():
        app.write_text(APP)
    environ = {**os.environ, "FASTCRON_LOOP": "asyncio", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "fastcron", "start", "--app", str(app), "--db", str(db), "--grace", "0"],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_sigkill_mid_run_then_restart_interrupts_orphans_and_applies_catchup_policies(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    first = start(tmp_path, db)
    try:
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE job = 'slow' AND status = 'running'"), 15, "slow to be running")
        wait_for(lambda: len(rows(db, "SELECT 1 FROM runs WHERE job = 'every'")) >= 2, 10, "two runs of every")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    committed = dict(rows(db, "SELECT id, status FROM runs"))
    assert any(status == "running" for status in committed.values())
    time.sleep(3.5)  # fires missed while nothing runs: >= 2 of each per-second job are over 1 s late
    second = start(tmp_path, db)
    try:
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE job = 'every' AND trigger = 'catch-up'"), 15, "catch-up runs")
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE job = 'skipper' AND status = 'missed'"), 5, "missed rows")
    finally:
        out, err = stop(second)
    assert second.returncode == 0, err
    after = dict(rows(db, "SELECT id, status FROM runs"))
    assert set(committed) <= set(after), "a committed row was lost"
    for key, status in committed.items():
        assert after[key] == ("interrupted" if status == "running" else status)
    interrupted = rows(db, "SELECT job, error FROM runs WHERE status = 'interrupted'")
    assert ("slow", "interrupted: the process running it ended") in interrupted
    assert "run(s) were left running by a process that ended: marked interrupted" in err
    catch_up = rows(db, "SELECT status FROM runs WHERE job = 'every' AND trigger = 'catch-up'")
    assert len(catch_up) >= 2 and {s for (s,) in catch_up} == {"succeeded"}
    missed = rows(db, "SELECT message FROM runs WHERE job = 'skipper' AND status = 'missed'")
    assert len(missed) >= 2
    assert missed[0][0] == "late beyond misfire_grace 1s (catchup=skip)"
    assert not rows(db, "SELECT 1 FROM runs WHERE job = 'skipper' AND trigger = 'catch-up'")


def test_two_schedulers_on_one_database_only_one_fires_and_the_standby_takes_over(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    env = {"FASTCRON_LEASE_TTL": "1.5", "FASTCRON_POLL_INTERVAL": "0.2"}
    leader = start(tmp_path, db, **env)
    standby = None
    try:
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE pid = ?", (leader.pid,)), 15, "the leader's runs")
        standby = start(tmp_path, db, **env)
        time.sleep(2.5)
        assert standby.poll() is None
        assert rows(db, "SELECT count(*) FROM runs WHERE pid = ?", (standby.pid,)) == [(0,)]
        leader.send_signal(signal.SIGKILL)
        leader.communicate(timeout=10)
        killed_at = time.monotonic()
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE pid = ?", (standby.pid,)), 10, "the standby to take over")
        assert time.monotonic() - killed_at < 5
        assert rows(db, "SELECT count(*) FROM runs WHERE pid = ? AND status = 'running'", (leader.pid,)) == [(0,)]
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.communicate()
        if standby is not None:
            out, err = stop(standby)
            assert "standing by" in err
            assert "took over the scheduler lease" in err


def cli(*args: str, db: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastcron", args[0], "--db", str(db), *args[1:]], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_cli_changes_reach_the_running_scheduler_within_a_second(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    proc = start(tmp_path, db)
    try:
        wait_for(lambda: rows(db, "SELECT 1 FROM runs WHERE job = 'every'"), 15, "runs of every")
        assert cli("pause", "every", db=db, cwd=tmp_path).returncode == 0
        time.sleep(1.2)
        count = rows(db, "SELECT count(*) FROM runs WHERE job = 'every'")
        time.sleep(2.0)
        assert rows(db, "SELECT count(*) FROM runs WHERE job = 'every'") == count, "a paused job fired"
        assert cli("resume", "every", db=db, cwd=tmp_path).returncode == 0
        wait_for(lambda: rows(db, "SELECT count(*) FROM runs WHERE job = 'every'") != count, 3, "runs after resume")
        queued = cli("run", "on_demand", "--via-scheduler", db=db, cwd=tmp_path)
        assert queued.returncode == 0, queued.stderr
        wait_for(
            lambda: rows(db, "SELECT 1 FROM runs WHERE job = 'on_demand' AND trigger = 'manual' AND pid = ?", (proc.pid,)),
            2, "the scheduler to run on_demand",
        )
        added = cli("add", "echoer", "--schedule", "* * * * * *", "--", sys.executable, "-c", "print('hello from echoer')", db=db, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        message = wait_for(
            lambda: rows(db, "SELECT message FROM runs WHERE job = 'echoer' AND status = 'succeeded'"), 5, "the dynamic job"
        )
        assert message[0][0] == "hello from echoer"
        assert cli("remove", "echoer", db=db, cwd=tmp_path).returncode == 0
        time.sleep(1.5)
        assert "echoer" not in {name for (name,) in rows(db, "SELECT name FROM jobs")}
        assert rows(db, "SELECT count(*) FROM runs WHERE job = 'echoer'") == [(0,)]
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
