"""The Store contract (``fastcron.abc.Store``), run against every store: memory and SQLite (a real
file in tmp_path). SQLite-only tests at the bottom: schema version, WAL, corrupt and newer files,
persistence across reopening, interrupted runs of a dead process."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from fastcron import JobResult, Registry, Scheduler
from fastcron.abc import Command, DynamicTarget, JobDef, JobState, Store
from fastcron.errors import DuplicateJobError, StoreError
from fastcron.stores.memory import MemoryStore
from fastcron.stores.sqlite import SCHEMA_VERSION, SQLiteStore


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: shared
    return lambda: SQLiteStore(tmp_path / "jobs.db")


async def opened(store: Store) -> Store:
    await store.open()
    return store


def app() -> Registry:
    registry = Registry()

    @registry.job("*/5 * * * *", name="ok")
    async def ok() -> JobResult:
        return JobResult(message="fine", processed=7)

    @registry.job("manual", name="boom")
    def boom() -> None:
        raise ValueError("no luck")

    return registry


def test_runs_are_recorded_with_status_error_traceback_message_and_stats(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        scheduler = Scheduler(app(), store=store)
        await scheduler._prepare_store()
        assert await scheduler.run_job("ok") == JobResult(message="fine", processed=7)
        with pytest.raises(ValueError, match="no luck"):
            await scheduler.run_job("boom")
        runs = await store.history()
        assert [(r.job, r.status, r.trigger) for r in runs] == [("boom", "failed", "manual"), ("ok", "succeeded", "manual")]
        failed, succeeded = runs
        assert failed.error == "ValueError: no luck"
        assert failed.traceback is not None and "raise ValueError" in failed.traceback
        assert succeeded.message == "fine" and succeeded.stats == {"processed": 7}
        assert succeeded.duration_ms is not None and succeeded.duration_ms >= 0
        assert (await store.history(job="ok", limit=5))[0].job == "ok"
        assert [r.job for r in await store.history(status="failed")] == ["boom"]
        jobs = {j.name: j for j in await store.list_jobs()}
        assert (jobs["ok"].run_count, jobs["ok"].failure_count, jobs["ok"].last_status) == (1, 0, "succeeded")
        assert (jobs["boom"].run_count, jobs["boom"].failure_count, jobs["boom"].last_error) == (1, 1, "ValueError: no luck")
        assert jobs["ok"].schedules == ["*/5 * * * *"] and jobs["boom"].schedules == []
        await scheduler.stop()
        await store.close()

    run(main())


def test_lease_is_held_by_one_holder_until_released_or_expired(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        assert await store.acquire_lease("a", 60_000)
        assert not await store.acquire_lease("b", 60_000)
        assert await store.acquire_lease("a", 60_000)  # renewal
        await store.release_lease("a")
        assert await store.acquire_lease("b", 60_000)
        assert not await store.acquire_lease("a", 60_000)
        await store.close()

    run(main())


def test_sync_jobs_reconciles_schedules_and_marks_missing_jobs_orphaned(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        await store.sync_jobs([JobDef("a", schedules=["* * * * *"]), JobDef("b", schedules=["0 * * * *"])])
        await store.save_job_states([JobState("a", last_scheduled_ms=60_000), JobState("b", paused=True, last_scheduled_ms=3_600_000)])
        await store.sync_jobs([JobDef("a", schedules=["*/2 * * * *"])])  # a changed, b gone
        states = await store.load_job_states()
        assert states["a"].last_scheduled_ms is None  # nothing is caught up from the old schedule
        assert states["b"].paused and states["b"].last_scheduled_ms == 3_600_000
        jobs = {j.name: j for j in await store.list_jobs()}
        assert jobs["a"].schedules == ["*/2 * * * *"] and not jobs["a"].orphaned
        assert jobs["b"].orphaned
        await store.sync_jobs([JobDef("a", schedules=["*/2 * * * *"]), JobDef("b", schedules=["0 * * * *"])])
        assert not {j.name: j for j in await store.list_jobs()}["b"].orphaned
        await store.close()

    run(main())


def test_control_changes_and_commands(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        await store.sync_jobs([JobDef("a", schedules=["* * * * *"])])
        assert await store.set_control("a", paused=True)
        assert await store.set_control("a", enabled=False)
        assert not await store.set_control("nope", paused=True)
        state = (await store.load_job_states())["a"]
        assert state.paused and state.enabled is False
        await store.post_command(Command("pause", "a"))
        await store.post_command(Command("run", "a"))
        assert await store.take_commands() == [Command("pause", "a"), Command("run", "a")]
        assert await store.take_commands() == []
        await store.close()

    run(main())


def test_dynamic_jobs_are_saved_and_deleted_but_code_jobs_are_not(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        await store.sync_jobs([JobDef("code_job", schedules=["* * * * *"])])
        target = DynamicTarget(command=["echo", "hi"], timeout=5)
        await store.save_dynamic(JobDef("dyn", kind="dynamic", schedules=["*/5 * * * *"], target=target))
        with pytest.raises(StoreError, match="'code_job' is defined in code"):
            await store.save_dynamic(JobDef("code_job", kind="dynamic", target=target))
        jobs = {j.name: j for j in await store.list_jobs()}
        assert jobs["dyn"].kind == "dynamic" and jobs["dyn"].target == target
        assert not await store.delete_job("code_job")
        assert await store.delete_job("dyn")
        assert "dyn" not in {j.name for j in await store.list_jobs()}
        await store.close()

    run(main())


def test_prune_by_age_and_per_job_cap(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        store = await opened(make_store())
        scheduler = Scheduler(app(), store=store)
        await scheduler._prepare_store()
        for _ in range(5):
            await scheduler.run_job("ok")
        assert await store.prune(0, 2, dry_run=True) == 3
        assert len(await store.history(limit=100)) == 5
        assert await store.prune(0, 2) == 3
        assert len(await store.history(limit=100)) == 2
        assert await store.prune(time.time_ns() // 1_000_000 + 1000, None) == 2
        assert await store.history(limit=100) == []
        await scheduler.stop()
        await store.close()

    run(main())


# ---------------------------------------------------------------------------------- SQLite only


def test_sqlite_file_is_wal_versioned_and_keeps_runs_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    async def write() -> None:
        store = await opened(SQLiteStore(path))
        scheduler = Scheduler(app(), store=store)
        await scheduler._prepare_store()
        await scheduler.run_job("ok")
        await scheduler.stop()
        await store.close()

    async def read() -> list[Any]:
        store = await opened(SQLiteStore(path))
        try:
            return await store.history()
        finally:
            await store.close()

    run(write())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [(r.job, r.status) for r in run(read())] == [("ok", "succeeded")]


def test_sqlite_refuses_a_newer_schema_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1} is newer than this fastcron understands"):
        run(SQLiteStore(path).open())
    assert path.read_bytes() == before


def test_sqlite_refuses_a_corrupt_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a fastcron database or corrupt"):
        run(SQLiteStore(path).open())
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_sqlite_marks_running_rows_of_a_dead_process_interrupted_but_not_of_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)

    async def main() -> None:
        store = await opened(SQLiteStore(path))
        assert store._db is not None
        from fastcron.stores.base import NODE

        for key, pid in ((1, dead_pid), (2, os.getpid())):
            store._db.execute(
                "INSERT INTO runs (id, job, status, trigger, node, pid, started_ms) VALUES (?, 'j', 'running', 'schedule', ?, ?, 1)",
                (key, NODE, pid),
            )
        assert await store.recover_interrupted() == 1
        statuses = {r.id: r.status for r in await store.history()}
        assert statuses == {"1": "interrupted", "2": "running"}
        await store.close()

    run(main())


def _own_row_status(path: Path, job: str) -> str | None:
    """What another connection sees of ``job``'s newest run: what a crash right now would leave."""
    with sqlite3.connect(path, timeout=5) as conn:
        row = conn.execute("SELECT status FROM runs WHERE job = ? ORDER BY rowid DESC LIMIT 1", (job,)).fetchone()
    return None if row is None else str(row[0])


def test_a_run_is_committed_as_running_before_its_function_starts(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    seen: dict[str, list[str | None]] = {"instant": [], "thread": [], "manual": []}
    registry = Registry()

    # An async job with no await is started by the core's eager path when no store needs a commit.
    @registry.job("* * * * * *", name="instant")
    async def instant() -> None:
        seen["instant"].append(_own_row_status(path, "instant"))

    @registry.job("* * * * * *", name="thread")
    def thread() -> None:
        seen["thread"].append(_own_row_status(path, "thread"))

    @registry.job("manual", name="manual")
    async def manual() -> None:
        seen["manual"].append(_own_row_status(path, "manual"))

    async def main() -> None:
        scheduler = Scheduler(registry, store=SQLiteStore(path))
        async with scheduler:
            await scheduler.run_job("manual")
            deadline = time.monotonic() + 10
            while (len(seen["instant"]) < 2 or len(seen["thread"]) < 2) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    run(main())
    assert len(seen["instant"]) >= 2 and len(seen["thread"]) >= 2
    assert {status for statuses in seen.values() for status in statuses} == {"running"}, seen
    assert _own_row_status(path, "instant") == "succeeded"


def test_jobs_added_at_run_time_are_stored_and_dynamic_ones_come_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    def late() -> None:
        pass

    async def first() -> None:
        scheduler = Scheduler(Registry(), store=SQLiteStore(path))
        async with scheduler:
            scheduler.add(late, "0 0 1 1 *", name="added_late")
            await scheduler.add_dynamic("echo", "0 0 1 1 *", command=[sys.executable, "-c", "print('hi')"])
            with pytest.raises(DuplicateJobError, match="echo"):
                await scheduler.add_dynamic("echo", None, command=["true"])
            for _ in range(40):  # written by the store loop within one flush
                jobs = {j.name: j.kind for j in await _listed(path)}
                if "added_late" in jobs:
                    break
                await asyncio.sleep(0.05)
            assert jobs == {"added_late": "code", "echo": "dynamic"}

    async def second() -> None:
        scheduler = Scheduler(Registry(), store=SQLiteStore(path))
        async with scheduler:
            assert [job.name for job in scheduler.jobs] == ["echo"]
            result = await scheduler.run_job("echo")
            assert result.message == "hi"
            await scheduler.remove_dynamic("echo")
        jobs = {j.name: (j.kind, j.orphaned) for j in await _listed(path)}
        assert jobs == {"added_late": ("code", True)}  # not in this run's code: orphaned, history kept

    run(first())
    run(second())


async def _listed(path: Path) -> list[Any]:
    store = await opened(SQLiteStore(path))
    try:
        return await store.list_jobs()
    finally:
        await store.close()


def test_sqlite_migrates_a_version_1_file_keeping_every_run(tmp_path: Path) -> None:
    from fastcron.stores.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.executemany(
            "INSERT INTO runs (id, job, scheduled_ms, status, trigger) VALUES (?, 'j', ?, ?, 'schedule')",
            [("1f.abc.1", 1000, "succeeded"), ("1f.abc.2", 2000, "failed")],
        )
        conn.execute("PRAGMA user_version = 1")

    async def main() -> None:
        store = await opened(SQLiteStore(path))
        runs = await store.history(limit=10)
        assert [(r.id, r.scheduled_ms, r.status) for r in runs] == [("2", 2000, "failed"), ("1", 1000, "succeeded")]
        await store.close()

    run(main())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "runs_by_job" in indexes and "runs_running" not in indexes


def test_a_retried_run_keeps_one_row_through_its_attempts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "jobs.db"
    registry = Registry()
    attempts: list[str | None] = []

    @registry.job("manual", name="flaky", retries=1, retry_delay="10ms", retry_jitter=0)
    def flaky() -> str:
        attempts.append(_own_row_status(path, "flaky"))
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return "second time"

    async def main() -> None:
        scheduler = Scheduler(registry, store=SQLiteStore(path))
        async with scheduler:
            assert await scheduler.run_job("flaky") == "second time"

    run(main())
    assert attempts == ["running", "running"]  # each attempt committed as running before it ran
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT status, attempt, trigger, message FROM runs WHERE job = 'flaky'").fetchall()
    assert rows == [("succeeded", 2, "retry", "second time")]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
