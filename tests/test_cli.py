"""The command line: `main([...])` in process for speed, and subprocesses for the real thing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest

from fastcron.cli import main
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastcron", *args], capture_output=True, text=True, timeout=60)


def test_explain_prints_the_description_and_next_fires() -> None:
    result = run("explain", "0 9 * * MON-FRI", "--tz", "Europe/Berlin", "--count", "3", "--after", "2024-01-05T12:00:00+00:00")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0 9 * * MON-FRI  (Europe/Berlin)"
    assert lines[1] == "At 09:00, Monday through Friday"
    assert [line.strip() for line in lines[2:]] == [
        "2024-01-08T09:00:00+01:00",
        "2024-01-09T09:00:00+01:00",
        "2024-01-10T09:00:00+01:00",
    ]


def test_explain_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "*/15 * * * *", "--count", "2", "--after", "2024-01-01T00:00:00+00:00", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["artifact_type"] == "card"
    assert payload["data"]["next"] == ["2024-01-01T00:15:00+00:00", "2024-01-01T00:30:00+00:00"]
    assert payload["data"]["tz"] == "UTC"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "0 0 32 * *"], "fastcron: day-of-month: 32 is out of range 1-31 (column 5)"),
        (["explain", "* * * * *", "--tz", "Nowhere/City"], 'fastcron: unknown time zone "Nowhere/City"'),
        (["explain", "* * * * *", "--count", "-1"], "--count must be 0-10000"),
        (["explain", "* * * * *", "--after", "yesterday"], "--after 'yesterday' is not an ISO-8601 datetime"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------- the database commands


APP = '''
from fastcron import JobResult, job

@job("*/5 * * * *", name="ok", description="Says fine.")
def ok():
    return JobResult(message="fine", processed=2)

@job("0 9 * * MON-FRI", name="boom", tz="Europe/Berlin")
async def boom():
    raise RuntimeError("kaput")

@job("manual", name="by_hand")
def by_hand():
    return "done"
'''


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    if not app.exists():
        app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    env["FASTCRON_DB"] = str(tmp_path / "jobs.db")
    env["FASTCRON_APP"] = str(app)
    env["FASTCRON_BUSY_TIMEOUT_MS"] = "300"
    return subprocess.run([sys.executable, "-m", "fastcron", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"data", "artifact_type", "title"}
    return payload


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A database with one run of each job: ok succeeded, boom failed, by_hand succeeded."""
    result = cli(tmp_path, "run", "--all", "--sequential")
    assert result.returncode == 1, result.stderr  # boom failed
    return tmp_path


def test_run_records_runs_and_exits_1_when_one_failed(populated: Path) -> None:
    payload = as_json(cli(populated, "run", "ok", "by_hand", "--json"))
    assert payload["artifact_type"] == "table"
    assert [(d["job"], d["status"]) for d in payload["data"]] == [("ok", "succeeded"), ("by_hand", "succeeded")]
    failed = cli(populated, "run", "boom", "--json")
    assert failed.returncode == 1
    [entry] = json.loads(failed.stdout)["data"]
    assert (entry["job"], entry["status"], entry["error"]) == ("boom", "failed", "RuntimeError: kaput")
    human = cli(populated, "run", "boom")
    assert human.returncode == 1 and "kaput" in human.stdout


def test_run_all_on_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    import pty

    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    env.update(FASTCRON_DB=str(tmp_path / "jobs.db"), FASTCRON_APP=str(app), COLUMNS="100", TERM="xterm")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastcron", "run", "--all"], stdin=terminal, stdout=terminal, stderr=terminal,
        cwd=tmp_path, env=env,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert proc.wait(timeout=60) == 1  # boom failed
    text = output.decode(errors="replace")
    assert "running" in text and "━" in text and "100%" in text, text
    assert "\x1b[" in text  # drawn with terminal escapes, not printed as plain lines


def test_list_show_next_and_history_as_json(populated: Path) -> None:
    jobs = {d["name"]: d for d in as_json(cli(populated, "list", "--json"))["data"]}
    assert set(jobs) == {"ok", "boom", "by_hand"}
    assert (jobs["boom"]["last_status"], jobs["boom"]["failure_count"], jobs["boom"]["last_error"]) == ("failed", 1, "RuntimeError: kaput")
    assert jobs["ok"]["run_count"] == 1 and jobs["ok"]["next_run"] is not None and jobs["by_hand"]["next_run"] is None

    card = as_json(cli(populated, "show", "boom", "--json"))
    assert card["artifact_type"] == "card"
    data = card["data"]
    assert data["schedule_description"] == "At 09:00, Monday through Friday"
    assert data["tz"] == "Europe/Berlin" and len(data["next_runs"]) == 5
    assert all(at.endswith(("+01:00", "+02:00")) and "T09:00:00" in at for at in data["next_runs"])
    assert data["recent_runs"][0]["status"] == "failed" and "RuntimeError: kaput" in data["recent_runs"][0]["traceback"]

    fires = as_json(cli(populated, "next", "--count", "3", "--job", "ok", "--json"))["data"]
    assert [f["job"] for f in fires] == ["ok"] * 3
    assert all(f["at"][14:16] in {f"{m:02d}" for m in range(0, 60, 5)} for f in fires)

    history = as_json(cli(populated, "history", "--json", "-n", "2"))["data"]
    assert len(history) == 2 and history[0]["job"] == "by_hand"  # newest first
    failed = as_json(cli(populated, "history", "--status", "failed", "--json"))["data"]
    assert [(r["job"], r["trigger"], r["error"]) for r in failed] == [("boom", "manual", "RuntimeError: kaput")]
    ok = as_json(cli(populated, "history", "--job", "ok", "--json"))["data"]
    assert ok[0]["message"] == "fine" and ok[0]["stats"] == {"processed": 2}


def test_human_output_is_a_table(populated: Path) -> None:
    result = cli(populated, "list")
    assert result.returncode == 0
    assert "Jobs" in result.stdout and "boom" in result.stdout and "0 9 * * MON-FRI" in result.stdout
    shown = cli(populated, "show", "ok")
    assert "Every 5 minutes" in shown.stdout and "Says fine." in shown.stdout, shown.stdout


def test_enable_disable_pause_resume_persist(populated: Path) -> None:
    def state() -> str:
        return {d["name"]: d for d in as_json(cli(populated, "list", "--json"))["data"]}["ok"]["state"]

    assert cli(populated, "pause", "ok").returncode == 0
    assert state() == "paused"
    assert as_json(cli(populated, "resume", "ok", "--json"))["data"] == {"job": "ok", "action": "resume"}
    assert state() == "active"
    assert cli(populated, "disable", "ok").returncode == 0
    assert state() == "disabled"
    assert as_json(cli(populated, "next", "--json"))["data"] and all(
        f["job"] != "ok" for f in as_json(cli(populated, "next", "--json"))["data"]
    )
    assert cli(populated, "enable", "ok").returncode == 0
    assert state() == "active"


def test_add_and_remove_a_dynamic_command_job(populated: Path) -> None:
    added = cli(populated, "add", "echo_job", "--schedule", "*/10 * * * *", "--timeout", "5", "--", sys.executable, "-c", "print('hi there')")
    assert added.returncode == 0, added.stderr
    jobs = {d["name"]: d for d in as_json(cli(populated, "list", "--json"))["data"]}
    assert jobs["echo_job"]["kind"] == "dynamic" and jobs["echo_job"]["schedules"] == ["*/10 * * * *"]
    ran = as_json(cli(populated, "run", "echo_job", "--json"))
    assert ran["data"][0]["status"] == "succeeded"
    assert as_json(cli(populated, "history", "--job", "echo_job", "--json"))["data"][0]["message"] == "hi there"
    assert cli(populated, "remove", "echo_job").returncode == 0
    assert "echo_job" not in {d["name"] for d in as_json(cli(populated, "list", "--json"))["data"]}
    assert_usage_error(cli(populated, "remove", "ok"), "'ok' is defined in code")


def test_cleanup_deletes_old_runs_and_dry_run_only_counts(populated: Path) -> None:
    assert as_json(cli(populated, "cleanup", "--days", "0", "--dry-run", "--json"))["data"] == {"deleted": 3, "dry_run": True}
    assert len(as_json(cli(populated, "history", "--json"))["data"]) == 3
    assert as_json(cli(populated, "cleanup", "--days", "0", "--json"))["data"] == {"deleted": 3, "dry_run": False}
    assert as_json(cli(populated, "history", "--json"))["data"] == []


def test_new_writes_a_job_module_that_loads(tmp_path: Path) -> None:
    payload = as_json(cli(tmp_path, "new", "nightly_export", "--json"))
    path = tmp_path / "nightly_export.py"
    assert payload["data"]["path"] == "nightly_export.py" and path.is_file()
    listed = cli(tmp_path, "run", "nightly_export", "--app", str(path), "--json")
    assert json.loads(listed.stdout)["data"][0]["status"] == "succeeded", listed.stderr
    assert_usage_error(cli(tmp_path, "new", "nightly_export"), "already exists")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "okk"], "no job named 'okk'; did you mean 'ok'?"),
        (["pause", "nope"], "no job named 'nope'"),
        (["history", "--job", "nope"], "no job named 'nope'"),
        (["run", "nope"], "no job named 'nope'"),
        (["run"], "name the jobs to run, or pass --all"),
        (["add", "x", "--schedule", "0 0 32 * *", "--call", "json:dumps"], "day-of-month: 32 is out of range 1-31"),
        (["add", "x", "--call", "no_such_module_here:f"], "cannot import it"),
        (["add", "x", "--schedule", "* * * * *"], "give either --call pkg.mod:func or a command after --"),
        (["add", "x", "--call", "json:dumps", "--args", "{bad"], "--args/--kwargs must be JSON"),
        (["next", "--count", "0"], "--count must be 1-10000"),
        (["history", "--status", "weird"], "invalid choice: 'weird'"),
    ],
)
def test_bad_input_on_database_commands_exits_2(populated: Path, args: list[str], message: str) -> None:
    assert_usage_error(cli(populated, *args), message)


def test_a_missing_database_is_exit_2(tmp_path: Path) -> None:
    assert_usage_error(cli(tmp_path, "list"), "jobs.db does not exist")
    assert not (tmp_path / "jobs.db").exists()


def test_a_corrupt_database_is_exit_2_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(b"\x00garbage, not SQLite\x00" * 64)
    before = db.read_bytes()
    for args in (["list"], ["history"], ["pause", "ok"], ["run", "ok"], ["start"]):
        assert_usage_error(cli(tmp_path, *args), "not a fastcron database or corrupt")
    assert db.read_bytes() == before


def test_a_locked_database_is_exit_2_for_writes_and_still_readable(populated: Path) -> None:
    """Another process holds the write lock (past our 300 ms busy timeout): a write command fails
    with one line and changes nothing; reads go on (WAL)."""
    db = populated / "jobs.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE jobs SET description = 'held' WHERE name = 'boom'")
        before = db.read_bytes()
        assert_usage_error(cli(populated, "pause", "ok"), "locked by another process")
        assert db.read_bytes() == before
        listed = {d["name"]: d for d in as_json(cli(populated, "list", "--json"))["data"]}
        assert listed["ok"]["state"] == "active" and listed["boom"]["description"] is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cli(populated, "pause", "ok").returncode == 0


def test_the_app_comes_from_pyproject_when_not_given(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pyproject.toml").write_text('[tool.fastcron]\napp = "app.py"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    result = subprocess.run([sys.executable, "-m", "fastcron", "run", "by_hand", "--json"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert as_json(result)["data"][0]["status"] == "succeeded"
    assert (tmp_path / "fastcron.db").exists()  # the default database, in the working directory


def test_missing_app_is_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    result = subprocess.run([sys.executable, "-m", "fastcron", "start", "--db", str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert_usage_error(result, "no app: pass --app MODULE|FILE")
    bad = cli(tmp_path, "start", "--app", str(tmp_path / "nope.py"))
    assert_usage_error(bad, "nope.py' does not exist")


def test_start_runs_the_demo_writes_the_default_database_and_stops_on_sigterm(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCRON_")}
    proc = subprocess.Popen([sys.executable, "-m", "fastcron", "start", "--app", str(demo)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (tmp_path / "fastcron.db").exists():
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "SIGTERM received: stopping" in err
    jobs = {d["name"] for d in as_json(cli(tmp_path, "list", "--json", "--db", str(tmp_path / "fastcron.db")))["data"]}
    assert jobs == {"heartbeat", "tidy_tmp", "flaky", "report"}
