"""The SQLite store: one file (default ``./fastcron.db``), stdlib ``sqlite3`` in WAL mode. All of
fastcron's SQL lives here.

Every statement runs on one dedicated writer thread with one connection, so the event loop never
waits on disk; a batch (the runs of one wheel tick, or the finishes since the last batch) is one
``executemany`` in one transaction. WAL lets the command line read while the scheduler writes;
``busy_timeout`` makes writers from several processes wait for each other instead of failing.

The schema version is ``PRAGMA user_version``: an older file is migrated on open, a newer one is
refused (``StoreError``) without being touched, as is a file that is not a database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from fastcron.abc import Command, JobDef, JobRecord, JobState, RunRecord, Store
from fastcron.errors import StoreError
from fastcron.stores.base import (
    COUNTED,
    FAILED,
    FINAL,
    job_record,
    outcome_fields,
    pid_alive,
    started_fields,
    target_to_json,
)

if TYPE_CHECKING:
    from fastcron.job import Run

__all__ = ["DEFAULT_PATH", "SQLiteStore"]

DEFAULT_PATH: Final = "fastcron.db"
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
TOUCH_EVERY_MS: Final = 2000
T = TypeVar("T")

# Each entry migrates from version i to i + 1; the schema version is len(MIGRATIONS).
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'code',          -- code | dynamic
        schedules TEXT NOT NULL DEFAULT '[]',       -- JSON list of schedule texts
        tz TEXT,
        enabled_code INTEGER NOT NULL DEFAULT 1,    -- as declared
        enabled INTEGER,                            -- override from enable or disable, NULL means as declared
        paused INTEGER NOT NULL DEFAULT 0,
        description TEXT,
        target TEXT,                                -- dynamic jobs: JSON DynamicTarget
        orphaned INTEGER NOT NULL DEFAULT 0,        -- a code job no longer in the code
        run_count INTEGER NOT NULL DEFAULT 0,
        failure_count INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        cooldown_until_ms INTEGER,
        last_scheduled_ms INTEGER,
        last_run_ms INTEGER,
        last_status TEXT,
        last_error TEXT,
        last_duration_ms INTEGER,
        next_run_ms INTEGER,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        schedule_index INTEGER,
        scheduled_ms INTEGER,
        started_ms INTEGER,
        finished_ms INTEGER,
        duration_ms INTEGER,
        status TEXT NOT NULL,   -- running succeeded failed timed_out cancelled skipped missed interrupted
        attempt INTEGER NOT NULL DEFAULT 1,
        trigger TEXT NOT NULL,  -- schedule manual retry catch-up
        error TEXT,
        traceback TEXT,
        message TEXT,
        stats TEXT,
        node TEXT,
        pid INTEGER
    );
    CREATE INDEX runs_by_job ON runs (job);
    CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        action TEXT NOT NULL,
        job TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    """,
    # Runs are numbered by the store (INTEGER PRIMARY KEY, the rowid) instead of a text key with
    # its own index, and lose the index on running rows that only start-up recovery read (it
    # scans once): together half of the store's cost per fire. Old rows keep their rowid as id.
    # (job, scheduled_ms) gives start-up each job's newest scheduled instant in one index probe.
    """
    DROP INDEX IF EXISTS runs_running;
    DROP INDEX IF EXISTS runs_by_job;
    ALTER TABLE runs RENAME TO runs_v1;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        schedule_index INTEGER,
        scheduled_ms INTEGER,
        started_ms INTEGER,
        finished_ms INTEGER,
        duration_ms INTEGER,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        trigger TEXT NOT NULL,
        error TEXT,
        traceback TEXT,
        message TEXT,
        stats TEXT,
        node TEXT,
        pid INTEGER
    );
    INSERT INTO runs SELECT rowid, job, schedule_index, scheduled_ms, started_ms, finished_ms, duration_ms, status,
        attempt, trigger, error, traceback, message, stats, node, pid FROM runs_v1;
    DROP TABLE runs_v1;
    CREATE INDEX runs_by_job ON runs (job, scheduled_ms);
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_INSERT_STARTED: Final = """
    INSERT INTO runs (id, job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid, status)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')
"""
_RESTARTED: Final = """
    UPDATE runs SET started_ms = ?2, attempt = ?3, trigger = ?4, status = 'running' WHERE id = ?1
"""
_INSERT_FINISHED: Final = """
    INSERT INTO runs (id, job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid,
        finished_ms, duration_ms, status, error, traceback, message, stats)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPDATE_FINISHED: Final = """
    UPDATE runs SET started_ms = ?2, attempt = ?3, trigger = ?4, finished_ms = ?5, duration_ms = ?6,
        status = ?7, error = ?8, traceback = ?9, message = ?10, stats = ?11
    WHERE id = ?1
"""
# Per-job bookkeeping from finishes: the newest scheduled instant (what start-up recovery arms
# after), counters and the last outcome. Starts do not touch jobs: a run still running when the
# process died gives its instant to its job in recover_interrupted.
# Only jobs the store knows (reconciled on start, or dynamic) are updated: a run that ends after
# its job was removed must not bring the job back.
_TOUCH_FINISHED: Final = """
    UPDATE jobs SET
        last_scheduled_ms = max(coalesce(last_scheduled_ms, 0), coalesce(?2, 0)),
        run_count = run_count + ?3,
        failure_count = failure_count + ?4,
        last_run_ms = coalesce(?5, last_run_ms),
        last_status = coalesce(?6, last_status),
        last_error = CASE WHEN ?6 IS NULL THEN last_error ELSE ?7 END,
        last_duration_ms = coalesce(?8, last_duration_ms),
        updated_ms = ?9
    WHERE name = ?1
"""
_JOB_COLUMNS: Final = (
    "name, kind, schedules, tz, coalesce(enabled, enabled_code), paused, description, orphaned, run_count, "
    "failure_count, last_run_ms, last_status, last_error, last_duration_ms, next_run_ms, last_scheduled_ms, target"
)
_RUN_COLUMNS: Final = (
    "id, job, schedule_index, scheduled_ms, started_ms, finished_ms, duration_ms, status, attempt, trigger, "
    "error, traceback, message, stats, node, pid"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SQLiteStore(Store):
    """A store in the SQLite file ``path`` (created if missing). ``busy_timeout_ms`` is how long a
    statement waits for another process's write lock before failing (``FASTCRON_BUSY_TIMEOUT_MS``)."""

    schema_version = SCHEMA_VERSION
    shared = True
    durable = True

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, busy_timeout_ms: int | None = None) -> None:
        self.path = Path(path)
        if busy_timeout_ms is None:
            busy_timeout_ms = int(os.environ.get("FASTCRON_BUSY_TIMEOUT_MS", DEFAULT_BUSY_TIMEOUT_MS))
        self.busy_timeout_ms = busy_timeout_ms
        self.pid = os.getpid()
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._touches: dict[str, list[Any]] = {}  # job counters not yet written (see _due_touches)
        self._touched_ms = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # ---------------------------------------------------------------- plumbing

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise StoreError(f"database {self.path}: the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, func, *args)

    def _tx(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(db)`` in one write transaction (BEGIN IMMEDIATE ... COMMIT)."""
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = func(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._db is not None
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Open (or create) the file, check the schema version, migrate, switch to WAL."""
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastcron-sqlite")
        try:
            await self._call(self._open)
        except BaseException:
            self._thread.shutdown(wait=False)
            self._thread = None
            raise

    def _open(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"database {self.path}: is a directory")
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # Read before writing anything: a corrupt or foreign file fails here, untouched.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.path}: schema version {version} is newer than this fastcron "
                    f"understands ({SCHEMA_VERSION}); upgrade fastcron"
                )
            if version < SCHEMA_VERSION:
                self._db = db
                self._migrate(version)
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            # Each finish updates its run's row by id: with the default 2 MB cache a busy file's
            # index pages are read back from the OS for every batch.
            db.execute("PRAGMA cache_size = -65536")  # 64 MiB
            db.execute("PRAGMA mmap_size = 268435456")
        except sqlite3.Error as exc:
            db.close()
            self._db = None
            raise _store_error(self.path, exc) from None
        except BaseException:
            db.close()
            self._db = None
            raise
        self._db = db

    def _migrate(self, version: int) -> None:
        def apply(db: sqlite3.Connection) -> None:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        self._tx(apply)

    async def close(self) -> None:
        if self._thread is None:
            return
        try:
            await self._write_touches()
            await self._call(self._close)
        finally:
            self._thread.shutdown(wait=True)
            self._thread = None

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---------------------------------------------------------------- the run path

    async def load_job_states(self) -> Mapping[str, JobState]:
        rows = await self._call(
            self._read,
            "SELECT name, paused, enabled, consecutive_failures, cooldown_until_ms, last_scheduled_ms FROM jobs",
        )
        return {
            name: JobState(name, bool(paused), None if enabled is None else bool(enabled), consec, cooldown, last)
            for name, paused, enabled, consec, cooldown, last in rows
        }

    async def save_job_states(self, states: Sequence[JobState]) -> None:
        now = _now_ms()
        rows = [
            (
                s.name,
                int(s.paused),
                None if s.enabled is None else int(s.enabled),
                s.consecutive_failures,
                s.cooldown_until_ms,
                s.last_scheduled_ms,
                now,
            )
            for s in states
        ]
        sql = """
            INSERT INTO jobs (name, paused, enabled, consecutive_failures, cooldown_until_ms,
                last_scheduled_ms, created_ms, updated_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
            ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, enabled = excluded.enabled,
                consecutive_failures = excluded.consecutive_failures,
                cooldown_until_ms = excluded.cooldown_until_ms,
                last_scheduled_ms = max(coalesce(last_scheduled_ms, 0), coalesce(excluded.last_scheduled_ms, 0)),
                updated_ms = excluded.updated_ms
        """
        await self._call(self._tx, lambda db: db.executemany(sql, rows))

    async def record_started(self, runs: Sequence[Run]) -> None:
        # Snapshot now, on the loop thread: the runs keep changing. A run already final here is
        # also in the next record_finished (the scheduler swaps both buffers together), which
        # writes it whole; writing it as running first would be wasted work.
        pid = self.pid
        live = [run for run in runs if run.status not in FINAL]
        if not live:
            return
        rows = [(run.store_id, *started_fields(pid, run)) for run in live]
        ids = await self._call(self._tx, lambda db: _write_started(db, rows))
        for run, run_id in zip(live, ids, strict=True):
            run.store_id = run_id  # set here, on the loop, and only once the rows are committed

    async def record_finished(self, runs: Sequence[Run]) -> None:
        pid, now = self.pid, _now_ms()
        updates: list[tuple[Any, ...]] = []  # runs whose start is stored
        inserts: list[tuple[Any, ...]] = []  # runs that never started (skipped, missed) or were not stored
        per_job: dict[str, list[Any]] = {}
        for run in runs:
            outcome = outcome_fields(run)
            if run.store_id is not None:
                updates.append((run.store_id, run.started_ms, run.attempt, run.trigger, *outcome))
            else:
                inserts.append((*started_fields(pid, run), *outcome))
            name = run.job.name
            entry = per_job.get(name)
            if entry is None:
                per_job[name] = entry = [name, None, 0, 0, None, None, None, None, now]
            if run.trigger != "manual" and (entry[1] is None or run.scheduled_ms > entry[1]):
                entry[1] = run.scheduled_ms
            status = run.status
            if status in COUNTED:
                entry[2] += 1
                if status in FAILED:
                    entry[3] += 1
                # last run, status, error, duration
                entry[4], entry[5], entry[6], entry[7] = run.started_ms, status, outcome[3], outcome[1]
        self._merge_touches(per_job)
        touched = self._due_touches(now)

        def write(db: sqlite3.Connection) -> None:
            if updates:
                db.executemany(_UPDATE_FINISHED, updates)  # a row deleted meanwhile (job removed) stays gone
            if inserts:
                next_id = _next_run_id(db)
                db.executemany(_INSERT_FINISHED, [(next_id + i, *row) for i, row in enumerate(inserts)])
            if touched:
                db.executemany(_TOUCH_FINISHED, touched)

        await self._call(self._tx, write)

    def _merge_touches(self, per_job: dict[str, list[Any]]) -> None:
        pending = self._touches
        for name, entry in per_job.items():
            old = pending.get(name)
            if old is None:
                pending[name] = entry
                continue
            if entry[1] is not None and (old[1] is None or entry[1] > old[1]):
                old[1] = entry[1]
            old[2] += entry[2]
            old[3] += entry[3]
            if entry[5] is not None:  # a newer counted outcome
                old[4:8] = entry[4:8]
            old[8] = entry[8]

    async def _write_touches(self) -> None:
        if self._touches:
            touched, self._touches = list(self._touches.values()), {}
            await self._call(self._tx, lambda db: db.executemany(_TOUCH_FINISHED, touched))

    def _due_touches(self, now: int) -> list[list[Any]]:
        """Job counters are written at most every TOUCH_EVERY_MS, merged per job: a job firing
        every second costs one row update per interval, not one per run."""
        if not self._touches or now - self._touched_ms < TOUCH_EVERY_MS:
            return []
        self._touched_ms = now
        touched, self._touches = list(self._touches.values()), {}
        return touched

    # ---------------------------------------------------------------- start-up and election

    async def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        def take(db: sqlite3.Connection) -> bool:
            now = _now_ms()
            row = db.execute("SELECT holder, expires_ms FROM lease WHERE name = 'scheduler'").fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            db.execute(
                "INSERT INTO lease (name, holder, expires_ms) VALUES ('scheduler', ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms",
                (holder, now + ttl_ms),
            )
            return True

        return await self._call(self._tx, take)

    async def release_lease(self, holder: str) -> None:
        await self._call(
            self._tx, lambda db: db.execute("DELETE FROM lease WHERE name = 'scheduler' AND holder = ?", (holder,))
        )

    async def sync_jobs(self, jobs: Sequence[JobDef], *, partial: bool = False) -> None:
        now = _now_ms()
        rows = [(j.name, json.dumps(j.schedules), j.tz, int(j.enabled), j.description, j.next_run_ms, now) for j in jobs]
        names = [j.name for j in jobs]

        def sync(db: sqlite3.Connection) -> None:
            db.executemany(
                """
                INSERT INTO jobs (name, kind, schedules, tz, enabled_code, description, next_run_ms,
                    created_ms, updated_ms)
                VALUES (?1, 'code', ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                ON CONFLICT (name) DO UPDATE SET
                    last_scheduled_ms = CASE WHEN schedules IS excluded.schedules AND tz IS excluded.tz
                        THEN last_scheduled_ms ELSE NULL END,
                    kind = 'code', schedules = excluded.schedules, tz = excluded.tz,
                    enabled_code = excluded.enabled_code, description = excluded.description,
                    next_run_ms = excluded.next_run_ms, orphaned = 0, target = NULL,
                    updated_ms = excluded.updated_ms
                """,
                rows,
            )
            if partial:
                return
            db.execute("CREATE TEMP TABLE IF NOT EXISTS code_names (name TEXT PRIMARY KEY)")
            db.execute("DELETE FROM code_names")
            db.executemany("INSERT OR IGNORE INTO code_names VALUES (?)", [(n,) for n in names])
            db.execute(
                "UPDATE jobs SET orphaned = 1, next_run_ms = NULL, updated_ms = ? "
                "WHERE kind = 'code' AND orphaned = 0 AND name NOT IN (SELECT name FROM code_names)",
                (now,),
            )

        await self._call(self._tx, sync)

    async def recover_interrupted(self) -> int:
        def recover(db: sqlite3.Connection) -> int:
            now = _now_ms()
            owners = db.execute("SELECT DISTINCT node, pid FROM runs WHERE status = 'running'").fetchall()
            from fastcron.stores.base import NODE

            gone = [(node, pid) for node, pid in owners if node != NODE or pid is None or not pid_alive(pid)]
            total = 0
            for node, pid in gone:
                total += db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_ms = ?1, "
                    "duration_ms = ?1 - started_ms, error = 'interrupted: the process running it ended' "
                    "WHERE status = 'running' AND node IS ?2 AND pid IS ?3",
                    (now, node, pid),
                ).rowcount
            # The runs are the truth about what was scheduled (job counters are written lazily):
            # a run that started or finished just before a crash must not be caught up again.
            newest = "(SELECT max(r.scheduled_ms) FROM runs r WHERE r.job = jobs.name AND r.trigger != 'manual')"
            db.execute(f"UPDATE jobs SET last_scheduled_ms = {newest} WHERE {newest} > coalesce(last_scheduled_ms, -1)")
            return total

        return await self._call(self._tx, recover)

    # ---------------------------------------------------------------- the command line side

    async def list_jobs(self) -> list[JobRecord]:
        await self._write_touches()  # this process's own runs are counted in what it reads
        rows = await self._call(self._read, f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY name")
        return [job_record(row) for row in rows]

    async def history(self, job: str | None = None, status: str | None = None, limit: int = 20) -> list[RunRecord]:
        where, params = [], []
        if job is not None:
            where.append("job = ?")
            params.append(job)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY rowid DESC LIMIT ?"
        rows = await self._call(self._read, sql, [*params, limit])
        return [_run_record(row) for row in rows]

    async def set_control(self, name: str, *, enabled: bool | None = None, paused: bool | None = None) -> bool:
        def change(db: sqlite3.Connection) -> bool:
            now = _now_ms()
            found = False
            if enabled is not None:
                found = db.execute(
                    "UPDATE jobs SET enabled = ?, updated_ms = ? WHERE name = ?", (int(enabled), now, name)
                ).rowcount > 0
            if paused is not None:
                found = db.execute(
                    "UPDATE jobs SET paused = ?, updated_ms = ? WHERE name = ?", (int(paused), now, name)
                ).rowcount > 0
            return found

        return await self._call(self._tx, change)

    async def post_command(self, command: Command) -> None:
        await self._call(
            self._tx,
            lambda db: db.execute(
                "INSERT INTO commands (action, job, created_ms) VALUES (?, ?, ?)",
                (command.action, command.job, _now_ms()),
            ),
        )

    async def take_commands(self) -> list[Command]:
        def take(db: sqlite3.Connection) -> list[Command]:
            rows = db.execute("SELECT id, action, job FROM commands ORDER BY id").fetchall()
            if rows:
                db.execute("DELETE FROM commands WHERE id <= ?", (rows[-1][0],))
            return [Command(action, job) for _, action, job in rows]

        # A cheap read first: most polls find nothing and need no write lock.
        if not await self._call(self._read, "SELECT 1 FROM commands LIMIT 1"):
            return []
        return await self._call(self._tx, take)

    async def save_dynamic(self, job: JobDef) -> None:
        now = _now_ms()
        row = (job.name, json.dumps(job.schedules), job.tz, int(job.enabled), job.description, target_to_json(job.target), job.next_run_ms, now)

        def save(db: sqlite3.Connection) -> None:
            kind = db.execute("SELECT kind FROM jobs WHERE name = ?", (job.name,)).fetchone()
            if kind is not None and kind[0] == "code":
                raise StoreError(f"job {job.name!r} is defined in code; pick another name for a dynamic job")
            db.execute(
                """
                INSERT INTO jobs (name, kind, schedules, tz, enabled_code, description, target, next_run_ms,
                    created_ms, updated_ms)
                VALUES (?1, 'dynamic', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                ON CONFLICT (name) DO UPDATE SET schedules = excluded.schedules, tz = excluded.tz,
                    enabled_code = excluded.enabled_code, description = excluded.description,
                    target = excluded.target, next_run_ms = excluded.next_run_ms, last_scheduled_ms = NULL,
                    updated_ms = excluded.updated_ms
                """,
                row,
            )

        await self._call(self._tx, save)

    async def delete_job(self, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            gone = db.execute(
                "DELETE FROM jobs WHERE name = ? AND (kind = 'dynamic' OR orphaned = 1)", (name,)
            ).rowcount
            if gone:
                db.execute("DELETE FROM runs WHERE job = ? AND status != 'running'", (name,))
            return gone > 0

        return await self._call(self._tx, delete)

    async def prune(self, older_than_ms: int, per_job: int | None, *, dry_run: bool = False) -> int:
        old = "status != 'running' AND coalesce(finished_ms, started_ms, scheduled_ms) < ?"
        capped = (
            "id IN (SELECT id FROM (SELECT id, status, row_number() OVER (PARTITION BY job ORDER BY rowid DESC) AS n "
            "FROM runs) WHERE n > ? AND status != 'running')"
        )
        where = f"({old})" + (f" OR {capped}" if per_job is not None else "")
        params: list[Any] = [older_than_ms] + ([per_job] if per_job is not None else [])
        if dry_run:
            rows = await self._call(self._read, f"SELECT count(*) FROM runs WHERE {where}", params)
            return int(rows[0][0])
        return await self._call(self._tx, lambda db: db.execute(f"DELETE FROM runs WHERE {where}", params).rowcount)


def _write_started(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert first attempts under fresh ids (numbered inside the write lock, so processes sharing
    the file never collide), update rows of later attempts; return each row's id."""
    next_id = _next_run_id(db)
    ids: list[int] = []
    fresh: list[tuple[Any, ...]] = []
    again: list[tuple[Any, ...]] = []
    for row in rows:
        if row[0] is None:
            ids.append(next_id)
            fresh.append((next_id, *row[1:]))
            next_id += 1
        else:  # a retry: the row of its first attempt gets this attempt's start
            ids.append(row[0])
            again.append((row[0], row[4], row[5], row[6]))
    db.executemany(_INSERT_STARTED, fresh)
    if again:
        db.executemany(_RESTARTED, again)
    return ids


def _next_run_id(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0])


def _run_record(row: Sequence[Any]) -> RunRecord:
    values = list(row)
    values[0] = str(values[0])
    values[13] = None if values[13] is None else json.loads(values[13])
    return RunRecord(*values)


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return StoreError(f"database {path}: not a fastcron database or corrupt ({text}); the file was left as it was")
    if "locked" in text or "busy" in text:
        return StoreError(f"database {path}: locked by another process ({text}); try again")
    if "unable to open" in text:
        return StoreError(f"database {path}: cannot open it ({text})")
    return StoreError(f"database {path}: {text}")
