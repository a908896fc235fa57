"""The PostgreSQL store: many nodes, one schedule. Every node runs the same code against one
database; each fire of each schedule runs once, on whichever node claims it first.

Fires are rows. A fire's key (job, schedule, scheduled instant) is unique in the database, so nodes
that generate the same due instants concurrently insert each one once (``ON CONFLICT DO NOTHING``),
and a fire is run by the node whose ``claim`` moved it from pending to running (``FOR UPDATE SKIP
LOCKED``). Nodes heartbeat; a node silent for ``node_ttl`` is reaped by any other: its running
attempts become ``interrupted`` and their fires pending again (or failed when out of attempts). A
reaped node's late results are fenced out: ``complete`` applies an outcome only while the fire is
still running on that node in that attempt. There is no leader and no lease.

Time: every instant that decides something (what is due, heartbeat ages) comes from the database's
clock (``NOW_MS``), never from a node's, so nodes with skewed clocks agree. Instants are epoch ms.

Connections: the event loop awaits a ``psycopg_pool.AsyncConnectionPool``; one background thread
with its own connection heartbeats, reaps and LISTENs for control changes (``pg_notify`` on channel
``fastcron``, sent in the transaction that makes the change). Connections use TCP keepalives and
``idle_in_transaction_session_timeout`` so a dead host cannot hold row locks for long.

Everything lives in the PostgreSQL schema ``fastcron``, versioned in ``fastcron.meta``: an older
schema is migrated on open (under an advisory lock, so nodes starting together migrate once), a
newer one is refused untouched (``StoreError``), as is a standby. Every database failure surfaces
as a one-line ``StoreError`` naming the server and what failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fastcron._durations import format_ms
from fastcron.abc import Command, JobDef, JobRecord, JobState, RunRecord, Store
from fastcron.errors import StoreError
from fastcron.stores.base import (
    COUNTED,
    FAILED,
    FINAL,
    NODE,
    finished_values,
    job_record,
    outcome_fields,
    pid_alive,
    started_values,
    target_to_json,
)

if TYPE_CHECKING:
    from fastcron.job import Run

__all__ = [
    "NOW_MS",
    "SCHEMA_VERSION",
    "Claim",
    "FireRule",
    "NodeRecord",
    "Outcome",
    "PostgresStore",
    "outcome_of",
]

log = logging.getLogger("fastcron.store")
T = TypeVar("T")

NOW_MS: Final = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
"""The one clock: the database server's, in epoch ms."""
CHANNEL: Final = "fastcron"
NEVER_MS: Final = 2**63 - 1
"""``schedules.next_fire_ms`` of a schedule that will not fire again (a past ``Once``)."""
LATE_LIMIT: Final = 100
# Fires are made this far ahead of their instant (pending, claimable once due), so that at the
# instant itself the only work left between a fire and its start is the claim. A pause or a
# disable stops fires not yet made: those already made, at most this far ahead, still run.
GENERATE_AHEAD_MS: Final = 1000
"""Late instants enumerated per schedule per ``generate_fires`` call; older ones are skipped."""
PRUNE_BATCH: Final = 5000
MANUAL_MAX_ATTEMPTS: Final = 1
POOL_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 5
DEADLOCK_RETRIES: Final = 3
MIGRATION_LOCK: Final = 0x66617374_63726F6E  # "fastcron"
OUTCOME_STATUSES: Final = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
KEEPALIVES: Final = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
IDLE_IN_TX_OPTION: Final = "-c idle_in_transaction_session_timeout=10000"

# Each entry migrates from version i to i + 1; the schema version is len(MIGRATIONS).
# A dead node's fires are reaped within this (plus one heartbeat) and then claimed elsewhere at
# once: the cluster's promise is a restart within 10 s of a node's death.
DEFAULT_NODE_TTL_S: Final = 6.0
INTERRUPTED_EXTRA: Final = 2  # attempts beyond max_attempts for fires interrupted by a node's death

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE SCHEMA IF NOT EXISTS fastcron;
    CREATE TABLE fastcron.meta (
        version int NOT NULL
    );
    CREATE TABLE fastcron.jobs (
        name text PRIMARY KEY,
        kind text NOT NULL DEFAULT 'code' CHECK (kind IN ('code', 'dynamic')),
        schedules jsonb NOT NULL DEFAULT '[]',      -- list of schedule texts, as in fastcron.schedules
        tz text,
        enabled_code boolean NOT NULL DEFAULT true, -- as declared
        enabled boolean,                            -- override from enable or disable, NULL means as declared
        paused boolean NOT NULL DEFAULT false,
        description text,
        target text,                                -- dynamic jobs: JSON DynamicTarget
        orphaned boolean NOT NULL DEFAULT false,    -- a code job no longer in the code
        run_count bigint NOT NULL DEFAULT 0,
        failure_count bigint NOT NULL DEFAULT 0,
        consecutive_failures int NOT NULL DEFAULT 0,
        cooldown_until_ms bigint,
        last_scheduled_ms bigint,
        last_run_ms bigint,
        last_status text,
        last_error text,
        last_duration_ms bigint,
        next_run_ms bigint,
        created_ms bigint NOT NULL,
        updated_ms bigint NOT NULL
    );
    -- One row per schedule of a job; next_fire_ms is the next instant not yet turned into a fire:
    -- NULL when not computed yet (new or changed spec or zone), NEVER_MS when exhausted.
    CREATE TABLE fastcron.schedules (
        job text NOT NULL REFERENCES fastcron.jobs (name) ON DELETE CASCADE,
        schedule_index int NOT NULL,
        spec text NOT NULL,
        tz text,
        next_fire_ms bigint,
        PRIMARY KEY (job, schedule_index)
    );
    CREATE INDEX schedules_due ON fastcron.schedules (next_fire_ms);
    -- One row per fire: a scheduled instant of a schedule, or a manual run (schedule_index NULL).
    CREATE TABLE fastcron.fires (
        id bigserial PRIMARY KEY,
        job text NOT NULL,
        schedule_index int,
        scheduled_ms bigint NOT NULL,
        due_ms bigint NOT NULL,                     -- claimable from; a retry sets it later
        trigger text NOT NULL,                      -- schedule | catch-up | manual
        state text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'timed_out',
            'cancelled', 'skipped', 'missed')),
        attempt int NOT NULL DEFAULT 0,             -- attempts claimed so far
        max_attempts int NOT NULL DEFAULT 1,
        node text,                                  -- the node running (or that last ran) it
        claimed_ms bigint,
        finished_ms bigint,
        created_ms bigint NOT NULL
    );
    -- The guarantee: each fire key exists once, whoever generates it.
    CREATE UNIQUE INDEX fires_key ON fastcron.fires (job, coalesce(schedule_index, -1), scheduled_ms);
    CREATE INDEX fires_pending ON fastcron.fires (due_ms) WHERE state = 'pending';
    CREATE INDEX fires_running ON fastcron.fires (node) WHERE state = 'running';
    -- One row per attempt (id "<fire id>.<attempt>"), per missed fire ("<fire id>.0"), or per run
    -- recorded outside fires (record_started/record_finished: fire_id NULL). seq orders history.
    CREATE TABLE fastcron.runs (
        seq bigint GENERATED ALWAYS AS IDENTITY,
        id text PRIMARY KEY,
        fire_id bigint,
        job text NOT NULL,
        schedule_index int,
        scheduled_ms bigint,
        started_ms bigint,
        finished_ms bigint,
        duration_ms bigint,
        status text NOT NULL,   -- running succeeded failed timed_out cancelled skipped missed interrupted
        attempt int NOT NULL DEFAULT 1,
        trigger text NOT NULL,  -- schedule manual retry catch-up
        error text,
        traceback text,
        message text,
        stats jsonb,
        node text,
        pid int
    ) WITH (fillfactor = 85);  -- room for the outcome's update on the same page (HOT: no index touched)
    CREATE INDEX runs_by_seq ON fastcron.runs (seq);
    CREATE INDEX runs_by_job ON fastcron.runs (job, seq);
    CREATE INDEX runs_by_started ON fastcron.runs (started_ms);
    CREATE TABLE fastcron.nodes (
        node text PRIMARY KEY,
        host text NOT NULL,
        pid int NOT NULL,
        started_ms bigint NOT NULL,
        heartbeat_ms bigint NOT NULL,
        state text NOT NULL CHECK (state IN ('alive', 'reaped', 'stopped')),
        running int NOT NULL DEFAULT 0
    );
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# ---------------------------------------------------------------- statements

# Generating fires touches schedules and fires only, never the wide jobs rows (updating those for
# every fire was most of a round's cost): a job's next and last scheduled instants are read from
# its schedules and fires here.
_JOB_COLUMNS: Final = f"""
    name, kind, schedules, tz, coalesce(enabled, enabled_code), paused, description, orphaned, run_count,
    failure_count, last_run_ms, last_status, last_error, last_duration_ms,
    CASE WHEN orphaned THEN NULL ELSE coalesce(
        (SELECT nullif(min(s.next_fire_ms), {NEVER_MS}) FROM fastcron.schedules s WHERE s.job = name), next_run_ms) END,
    greatest(last_scheduled_ms,
        (SELECT max(f.scheduled_ms) FROM fastcron.fires f WHERE f.job = name AND f.schedule_index IS NOT NULL)),
    target
"""
_RUN_COLUMNS: Final = (
    "id, job, schedule_index, scheduled_ms, started_ms, finished_ms, duration_ms, status, attempt, trigger, "
    "error, traceback, message, stats, node, pid"
)
_INSERT_STARTED: Final = """
    INSERT INTO fastcron.runs (id, job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid, status)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'running')
    ON CONFLICT (id) DO UPDATE SET started_ms = excluded.started_ms, attempt = excluded.attempt,
        trigger = excluded.trigger, status = 'running'
"""
_UPSERT_FINISHED: Final = """
    INSERT INTO fastcron.runs (id, job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid,
        finished_ms, duration_ms, status, error, traceback, message, stats)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
    ON CONFLICT (id) DO UPDATE SET started_ms = excluded.started_ms, attempt = excluded.attempt,
        trigger = excluded.trigger, finished_ms = excluded.finished_ms, duration_ms = excluded.duration_ms,
        status = excluded.status, error = excluded.error, traceback = excluded.traceback,
        message = excluded.message, stats = excluded.stats
"""
_TOUCH_SCHEDULED: Final = f"""
    UPDATE fastcron.jobs SET last_scheduled_ms = greatest(last_scheduled_ms, %s), updated_ms = {NOW_MS}
    WHERE name = %s
"""
# Only jobs the store knows are updated: a run that ends after its job was removed must not
# bring the job back.
_TOUCH_FINISHED: Final = f"""
    UPDATE fastcron.jobs SET
        last_scheduled_ms = greatest(last_scheduled_ms, %(scheduled)s),
        run_count = run_count + %(runs)s,
        failure_count = failure_count + %(failures)s,
        last_run_ms = coalesce(%(started)s, last_run_ms),
        last_status = coalesce(%(status)s, last_status),
        last_error = CASE WHEN %(status)s::text IS NULL THEN last_error ELSE %(error)s END,
        last_duration_ms = coalesce(%(duration)s, last_duration_ms),
        updated_ms = {NOW_MS}
    WHERE name = %(name)s
"""
# Schedules of the given jobs: a new or changed spec (or zone) is (re)computed by the next
# generate_fires; unchanged rows are not written, so nodes syncing the same code do not fight.
_UPSERT_SCHEDULES: Final = """
    INSERT INTO fastcron.schedules (job, schedule_index, spec, tz)
    SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[]) ORDER BY 1, 2
    ON CONFLICT (job, schedule_index) DO UPDATE SET spec = excluded.spec, tz = excluded.tz, next_fire_ms = NULL
    WHERE schedules.spec IS DISTINCT FROM excluded.spec OR schedules.tz IS DISTINCT FROM excluded.tz
"""
_TRIM_SCHEDULES: Final = """
    DELETE FROM fastcron.schedules s USING unnest(%s::text[], %s::int[]) AS c(job, n)
    WHERE s.job = c.job AND s.schedule_index >= c.n
"""
_NOTIFY: Final = f"SELECT pg_notify('{CHANNEL}', %s)"

_DUE_SCHEDULES: Final = """
    SELECT s.job, s.schedule_index, s.next_fire_ms
    FROM fastcron.schedules s JOIN fastcron.jobs j ON j.name = s.job
    WHERE (s.next_fire_ms IS NULL OR s.next_fire_ms <= %(now)s)
        AND coalesce(j.enabled, j.enabled_code) AND NOT j.paused AND NOT j.orphaned
    ORDER BY s.next_fire_ms NULLS FIRST, s.job, s.schedule_index
    LIMIT %(limit)s
    FOR UPDATE OF s SKIP LOCKED
"""
_INSERT_FIRES: Final = """
    WITH input AS (
        SELECT * FROM unnest(%(job)s::text[], %(idx)s::int[], %(at)s::bigint[], %(due)s::bigint[],
            %(trigger)s::text[], %(state)s::text[], %(max)s::int[], %(message)s::text[])
            AS i(job, schedule_index, scheduled_ms, due_ms, trigger, state, max_attempts, message)
    ), ins AS (
        INSERT INTO fastcron.fires (job, schedule_index, scheduled_ms, due_ms, trigger, state, max_attempts,
            finished_ms, created_ms)
        SELECT job, schedule_index, scheduled_ms, due_ms, trigger, state, max_attempts,
            CASE WHEN state = 'missed' THEN %(now)s END, %(now)s
        FROM input ORDER BY job, schedule_index, scheduled_ms
        ON CONFLICT (job, coalesce(schedule_index, -1), scheduled_ms) DO NOTHING
        RETURNING id, job, schedule_index, scheduled_ms, state, trigger
    ), missed AS (
        INSERT INTO fastcron.runs (id, fire_id, job, schedule_index, scheduled_ms, finished_ms, status, attempt,
            trigger, message)
        SELECT ins.id || '.0', ins.id, ins.job, ins.schedule_index, ins.scheduled_ms, %(now)s, 'missed', 0,
            ins.trigger, i.message
        FROM ins JOIN input i
            ON i.job = ins.job AND i.schedule_index = ins.schedule_index AND i.scheduled_ms = ins.scheduled_ms
        WHERE ins.state = 'missed'
        ON CONFLICT (id) DO NOTHING
    )
    SELECT count(*) FILTER (WHERE state = 'pending') FROM ins
"""
_ADVANCE_SCHEDULES: Final = """
    UPDATE fastcron.schedules s SET next_fire_ms = u.next
    FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS u(job, idx, next)
    WHERE s.job = u.job AND s.schedule_index = u.idx
"""
# A node claims at most its fair share of what is due, and only while its row says alive: the
# KEY SHARE lock on that row makes a concurrent reaper skip the node until this claim committed
# (so the reaper sees the fires it took), or makes this claim wait for the reaper and find the
# node reaped.
_CLAIM: Final = f"""
    WITH clock AS (SELECT {NOW_MS} AS now),
    me AS (SELECT node FROM fastcron.nodes WHERE node = %(node)s AND state = 'alive' FOR KEY SHARE),
    picked AS (
        SELECT f.id FROM fastcron.fires f
        WHERE f.state = 'pending' AND f.due_ms <= (SELECT now FROM clock) AND EXISTS (SELECT 1 FROM me)
        ORDER BY f.due_ms, f.id
        LIMIT least(%(limit)s, (
            SELECT ceil(count(*)::numeric / greatest(1, (SELECT count(*) FROM fastcron.nodes WHERE state = 'alive')))
            FROM fastcron.fires WHERE state = 'pending' AND due_ms <= (SELECT now FROM clock))::bigint)
        FOR UPDATE OF f SKIP LOCKED
    ), claimed AS (
        UPDATE fastcron.fires f SET state = 'running', attempt = f.attempt + 1, node = %(node)s,
            claimed_ms = clock.now, finished_ms = NULL
        FROM picked, clock WHERE f.id = picked.id
        RETURNING f.id, f.job, f.schedule_index, f.scheduled_ms, f.attempt, f.max_attempts, f.trigger, clock.now
    ), started AS (
        INSERT INTO fastcron.runs (id, fire_id, job, schedule_index, scheduled_ms, started_ms, status, attempt,
            trigger, node, pid)
        SELECT id || '.' || attempt, id, job, schedule_index, scheduled_ms, now, 'running', attempt, trigger,
            %(node)s, %(pid)s
        FROM claimed
        ON CONFLICT (id) DO NOTHING
    )
    SELECT id, job, schedule_index, scheduled_ms, attempt, max_attempts, trigger, now FROM claimed
    ORDER BY scheduled_ms, id
"""
# Outcomes apply only to fires still running on this node in this attempt (the fence). A fenced
# outcome's attempt was already marked interrupted by the reaper; it keeps that status.
_COMPLETE: Final = f"""
    WITH clock AS (SELECT {NOW_MS} AS now),
    input AS (
        SELECT * FROM unnest(%(fire)s::bigint[], %(attempt)s::int[], %(status)s::text[], %(duration)s::bigint[],
            %(error)s::text[], %(traceback)s::text[], %(message)s::text[], %(stats)s::text[], %(retry)s::bigint[],
            %(max)s::int[])
            AS i(fire_id, attempt, status, duration_ms, error, traceback, message, stats, retry_at_ms, max_attempts)
    ), applied AS (
        -- The node running the job knows its retries (a run-now fire is made without them).
        UPDATE fastcron.fires f SET
            max_attempts = greatest(f.max_attempts, i.max_attempts),
            state = CASE WHEN i.retry_at_ms IS NOT NULL AND f.attempt < greatest(f.max_attempts, i.max_attempts)
                THEN 'pending' ELSE i.status END,
            due_ms = CASE WHEN i.retry_at_ms IS NOT NULL AND f.attempt < greatest(f.max_attempts, i.max_attempts)
                THEN i.retry_at_ms ELSE f.due_ms END,
            finished_ms = CASE WHEN i.retry_at_ms IS NOT NULL AND f.attempt < greatest(f.max_attempts, i.max_attempts)
                THEN NULL ELSE clock.now END
        FROM input i, clock
        WHERE f.id = i.fire_id AND f.attempt = i.attempt AND f.node = %(node)s AND f.state = 'running'
        RETURNING f.id, f.job, f.trigger, f.scheduled_ms, f.state
    ), runs_applied AS (
        UPDATE fastcron.runs r SET status = i.status, finished_ms = clock.now, duration_ms = i.duration_ms,
            error = i.error, traceback = i.traceback, message = i.message, stats = i.stats::jsonb
        FROM input i JOIN applied a ON a.id = i.fire_id, clock
        WHERE r.id = i.fire_id || '.' || i.attempt
        RETURNING r.job, r.started_ms, r.status, r.error, r.duration_ms, a.trigger, a.scheduled_ms, a.state
    ), runs_fenced AS (
        UPDATE fastcron.runs r SET
            status = CASE WHEN r.status = 'running' THEN 'interrupted' ELSE r.status END,
            finished_ms = coalesce(r.finished_ms, clock.now),
            message = 'late result discarded: ' || i.status || ' after the fire was reaped'
        FROM input i, clock
        WHERE r.id = i.fire_id || '.' || i.attempt AND NOT EXISTS (SELECT 1 FROM applied a WHERE a.id = i.fire_id)
    ), counted AS (
        SELECT job,
            count(*) AS runs,
            count(*) FILTER (WHERE status IN ('failed', 'timed_out')) AS failures,
            max(scheduled_ms) FILTER (WHERE trigger <> 'manual') AS scheduled,
            (array_agg(started_ms ORDER BY started_ms DESC NULLS LAST))[1] AS started,
            (array_agg(status ORDER BY started_ms DESC NULLS LAST))[1] AS status,
            (array_agg(error ORDER BY started_ms DESC NULLS LAST))[1] AS error,
            (array_agg(duration_ms ORDER BY started_ms DESC NULLS LAST))[1] AS duration
        FROM runs_applied WHERE state <> 'pending' GROUP BY job
    ), jobs_touched AS (
        UPDATE fastcron.jobs j SET run_count = j.run_count + c.runs, failure_count = j.failure_count + c.failures,
            last_scheduled_ms = greatest(j.last_scheduled_ms, c.scheduled), last_run_ms = coalesce(c.started, j.last_run_ms),
            last_status = c.status, last_error = c.error, last_duration_ms = coalesce(c.duration, j.last_duration_ms),
            updated_ms = clock.now
        FROM counted c, clock WHERE j.name = c.job
    )
    SELECT i.fire_id FROM input i WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.id = i.fire_id) ORDER BY 1
"""
# The reaper: which nodes are dead is the only difference between the two forms below. Their
# running attempts are interrupted and the fires made pending again (due now) or, out of
# attempts, failed. A node's death is not the job's failure: it does not use up one of the job's
# retries, but a fire whose attempts keep dying (a job that kills its process) gets only
# INTERRUPTED_EXTRA attempts more.
_REAP_TAIL: Final = f"""
    marked AS (
        UPDATE fastcron.nodes n SET state = 'reaped', running = 0 FROM dead WHERE n.node = dead.node
        RETURNING n.node, n.heartbeat_ms
    ), reset AS (
        UPDATE fastcron.fires f SET
            state = CASE WHEN f.attempt < f.max_attempts + {INTERRUPTED_EXTRA} THEN 'pending' ELSE 'failed' END,
            due_ms = CASE WHEN f.attempt < f.max_attempts + {INTERRUPTED_EXTRA} THEN clock.now ELSE f.due_ms END,
            finished_ms = CASE WHEN f.attempt < f.max_attempts + {INTERRUPTED_EXTRA} THEN NULL ELSE clock.now END
        FROM marked, clock WHERE f.node = marked.node AND f.state = 'running'
        RETURNING f.id, f.attempt, f.node, clock.now - marked.heartbeat_ms AS silent_ms
    ), interrupted AS (
        UPDATE fastcron.runs r SET status = 'interrupted', finished_ms = clock.now,
            duration_ms = clock.now - r.started_ms,
            error = 'interrupted: node ' || reset.node || ' stopped heartbeating',
            message = 'node ' || reset.node || ' was reaped after ' || reset.silent_ms || ' ms without a heartbeat'
        FROM reset, clock WHERE r.id = reset.id || '.' || reset.attempt AND r.status = 'running'
    )
    SELECT count(*) FROM reset
"""
# Alive nodes silent for longer than the ttl, and stopped ones that left running fires behind.
_REAP_DEAD: Final = f"""
    WITH clock AS (SELECT {NOW_MS} AS now),
    dead AS (
        SELECT n.node FROM fastcron.nodes n
        WHERE n.heartbeat_ms < (SELECT now FROM clock) - %(ttl_ms)s
            AND (n.state = 'alive' OR (n.state = 'stopped'
                AND EXISTS (SELECT 1 FROM fastcron.fires f WHERE f.node = n.node AND f.state = 'running')))
        FOR UPDATE OF n SKIP LOCKED
    ),
    {_REAP_TAIL}
"""
# One node by name, whatever its heartbeat: a (re-)registering node's earlier incarnation.
_REAP_NODE: Final = f"""
    WITH clock AS (SELECT {NOW_MS} AS now),
    dead AS (SELECT node FROM fastcron.nodes WHERE node = %(node)s FOR UPDATE),
    {_REAP_TAIL}
"""
_REGISTER: Final = f"""
    INSERT INTO fastcron.nodes (node, host, pid, started_ms, heartbeat_ms, state, running)
    VALUES (%(node)s, %(host)s, %(pid)s, {NOW_MS}, {NOW_MS}, 'alive', 0)
    ON CONFLICT (node) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_ms = excluded.started_ms,
        heartbeat_ms = excluded.heartbeat_ms, state = 'alive', running = 0
"""
_HEARTBEAT: Final = f"""
    UPDATE fastcron.nodes SET heartbeat_ms = {NOW_MS}, running = %s WHERE node = %s AND state = 'alive'
    RETURNING 1
"""


# ---------------------------------------------------------------- the cluster protocol's values


class TriggerLike(Protocol):
    def next_after_ts(self, ts: int, /) -> int | None: ...


class FireRule(Protocol):
    """What ``generate_fires`` needs to know about one schedule of a job (from the node's code)."""

    @property
    def trigger(self) -> TriggerLike: ...
    @property
    def misfire_grace_ms(self) -> int: ...
    @property
    def catchup(self) -> str: ...  # skip | latest | all
    @property
    def max_attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """A fire this node now runs, as attempt ``attempt`` of ``max_attempts``. ``started_ms`` is the
    claim instant on the database clock (the attempt's runs row has it as ``started_ms``)."""

    fire_id: int
    job: str
    schedule_index: int | None
    scheduled_ms: int
    attempt: int
    max_attempts: int
    trigger: str
    started_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed attempt ended, for ``complete``.

    ``status`` is the attempt's: succeeded, failed, timed_out or cancelled. ``started_ms`` and
    ``finished_ms`` (the node's clock) give the stored duration. With ``retry_at_ms`` set and
    attempts left, the fire goes back to pending, due at ``retry_at_ms`` (database clock).
    """

    fire_id: int
    attempt: int
    status: str
    started_ms: int | None = None
    finished_ms: int | None = None
    error: str | None = None
    traceback: str | None = None
    message: str | None = None
    stats: dict[str, Any] | None = None
    retry_at_ms: int | None = None
    max_attempts: int | None = None  # the job's retries + 1, from the code of the node that ran it

    def __post_init__(self) -> None:
        if self.status not in OUTCOME_STATUSES:
            raise ValueError(f"an outcome's status is one of {sorted(OUTCOME_STATUSES)}, not {self.status!r}")


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node as the database sees it; ``heartbeat_age_ms`` is measured on the database clock."""

    node: str
    host: str
    pid: int
    state: str
    started_ms: int
    heartbeat_ms: int
    heartbeat_age_ms: int
    running: int


def outcome_of(run: Run, fire_id: int, attempt: int, retry_at_ms: int | None = None) -> Outcome:
    """The ``Outcome`` of ``run``'s attempt of fire ``fire_id``: status, error ("Type: message"),
    traceback, message and stats derived as every store derives them (``base.outcome_fields``)."""
    _finished, _duration, _status, error, tb, message, stats = outcome_fields(run)
    return Outcome(
        fire_id=fire_id,
        attempt=attempt,
        status=run.status,
        started_ms=run.started_ms,
        finished_ms=run.finished_ms,
        error=error,
        traceback=tb,
        message=message,
        stats=None if stats is None else json.loads(stats),
        retry_at_ms=retry_at_ms,
        max_attempts=run.job.opts.retries + 1,
    )


# ---------------------------------------------------------------- the store


class PostgresStore(Store):
    """A store in the PostgreSQL database ``dsn`` (a libpq connection string or URL), shared by
    every node of a cluster.

    ``node_ttl`` is how long (seconds) a node may go without a heartbeat before another node
    reaps it; ``heartbeat`` how often (seconds) this node's background thread beats, reaps and
    polls; ``max_pool`` the size of the connection pool the event loop uses.

    Cluster attributes: ``on_notify`` (set by the scheduler) is called from the background thread
    with each ``Command`` received by LISTEN; ``reaped`` tells that this node was reaped by another
    (stop claiming, call ``register_node`` again); ``set_running(n)`` sets the running count the
    heartbeat reports.
    """

    schema_version = SCHEMA_VERSION
    shared = True
    durable = True
    cluster: ClassVar[bool] = True
    """Every node fires (claims fires from the database); no lease, no leader."""

    prune_batch: int = PRUNE_BATCH

    def __init__(
        self, dsn: str, *, node_ttl: float | None = None, heartbeat: float = 1.0, max_pool: int = 4
    ) -> None:
        if node_ttl is None:
            node_ttl = float(os.environ.get("FASTCRON_NODE_TTL", DEFAULT_NODE_TTL_S))
        if node_ttl <= heartbeat:
            raise ValueError(f"node_ttl ({node_ttl} s) must be longer than heartbeat ({heartbeat} s)")
        self.node_ttl = node_ttl
        self.heartbeat = heartbeat
        self.max_pool = max_pool
        self.pid = os.getpid()
        self.prefix = f"{self.pid:x}.{time.time_ns() // 1_000_000:x}."  # ids of runs recorded outside fires
        self._conninfo = _conninfo(dsn, "fastcron")
        self._beat_conninfo = _conninfo(dsn, "fastcron-heartbeat")
        self.where = _describe(dsn)
        self._pool: AsyncConnectionPool[Any] | None = None
        # The background thread and what it shares with the loop (under _lock).
        self.on_notify: Callable[[Command], None] | None = None
        self._lock = threading.Lock()
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._node: str | None = None
        self._node_pid = self.pid
        self._generation = 0
        self._reaped = False
        self._running = 0

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # ---------------------------------------------------------------- plumbing

    async def _tx(self, what: str, func: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``func(conn)`` in one transaction on a pooled connection; a deadlock (two nodes
        locking rows in different orders) is retried, any other failure becomes a StoreError."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"PostgreSQL at {self.where}: the store is not open")
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                async with pool.connection(timeout=POOL_TIMEOUT_S) as conn, conn.transaction():
                    return await func(conn)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                if attempt == DEADLOCK_RETRIES:
                    raise self._error(what, exc) from None
                await asyncio.sleep(0.01 * (attempt + 1))
            except PoolTimeout:
                raise StoreError(
                    f"PostgreSQL at {self.where}: {what} failed: no connection within {POOL_TIMEOUT_S:g} s "
                    "(is the server up?)"
                ) from None
            except psycopg.Error as exc:
                raise self._error(what, exc) from None
        raise AssertionError("unreachable")

    async def _fetch(self, what: str, sql: str, params: Any = None) -> list[Any]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

        return await self._tx(what, read)

    def _error(self, what: str, exc: psycopg.Error) -> StoreError:
        return StoreError(f"PostgreSQL at {self.where}: {what} failed: {_one_line(exc)}")

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Connect, refuse a standby or a newer schema, create or migrate the schema, open the pool."""
        if self._pool is not None:
            return
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.where}: {_one_line(exc)}") from None
        try:
            async with conn:
                await self._prepare_schema(conn)
        except psycopg.Error as exc:
            raise self._error("opening the store", exc) from None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self.max_pool,
            open=False,
            timeout=POOL_TIMEOUT_S,
            check=AsyncConnectionPool.check_connection,
            name="fastcron",
        )
        try:
            await pool.open(wait=True, timeout=POOL_TIMEOUT_S)
        except PoolTimeout:
            await pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self.where}: the pool got no connection") from None
        self._pool = pool

    async def _prepare_schema(self, conn: psycopg.AsyncConnection[Any]) -> None:
        row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
        if row is not None and row[0]:
            raise StoreError(
                f"PostgreSQL at {self.where} is a standby (read-only replica); point --db at the primary"
            )
        version = await self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        self._refuse_newer(version)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
            version = await self._schema_version(conn)  # another node may have migrated meanwhile
            self._refuse_newer(version)
            for step in range(version, SCHEMA_VERSION):
                log.info("fastcron: migrating the schema at %s to version %d", self.where, step + 1)
                await conn.execute(MIGRATIONS[step])
            await conn.execute("DELETE FROM fastcron.meta")
            await conn.execute("INSERT INTO fastcron.meta (version) VALUES (%s)", [SCHEMA_VERSION])

    @staticmethod
    async def _schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
        # A catalog scan, not to_regclass: name lookups may use a cache that has not yet seen the
        # schema another node created while this one waited for the migration lock.
        row = await (await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = 'fastcron' AND tablename = 'meta')"
        )).fetchone()
        if row is None or not row[0]:
            return 0
        row = await (await conn.execute("SELECT max(version) FROM fastcron.meta")).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"PostgreSQL at {self.where}: schema version {version} is newer than this fastcron "
                f"understands ({SCHEMA_VERSION}); upgrade fastcron"
            )

    async def close(self) -> None:
        """Stop the background thread and close the pool. Idempotent."""
        await asyncio.get_running_loop().run_in_executor(None, self._stop_thread)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # ---------------------------------------------------------------- the run path

    async def load_job_states(self) -> Mapping[str, JobState]:
        rows = await self._fetch(
            "loading job states",
            "SELECT name, paused, enabled, consecutive_failures, cooldown_until_ms, last_scheduled_ms FROM fastcron.jobs",
        )
        return {row[0]: JobState(*row) for row in rows}

    async def save_job_states(self, states: Sequence[JobState]) -> None:
        ordered = sorted(states, key=lambda s: s.name)  # one lock order across nodes
        sql = f"""
            INSERT INTO fastcron.jobs (name, paused, enabled, consecutive_failures, cooldown_until_ms,
                last_scheduled_ms, created_ms, updated_ms)
            SELECT *, {NOW_MS}, {NOW_MS}
            FROM unnest(%s::text[], %s::boolean[], %s::boolean[], %s::int[], %s::bigint[], %s::bigint[])
            ORDER BY 1
            ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, enabled = excluded.enabled,
                consecutive_failures = excluded.consecutive_failures,
                cooldown_until_ms = excluded.cooldown_until_ms,
                last_scheduled_ms = greatest(jobs.last_scheduled_ms, excluded.last_scheduled_ms),
                updated_ms = excluded.updated_ms
        """
        params = [
            [s.name for s in ordered],
            [s.paused for s in ordered],
            [s.enabled for s in ordered],
            [s.consecutive_failures for s in ordered],
            [s.cooldown_until_ms for s in ordered],
            [s.last_scheduled_ms for s in ordered],
        ]

        async def save(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(sql, params)

        if ordered:
            await self._tx("saving job states", save)

    async def record_started(self, runs: Sequence[Run]) -> None:
        """Record runs that do not come from claimed fires (a manual run in the command line's
        process): rows with ``fire_id`` NULL, ids from this process's prefix."""
        prefix, pid = self.prefix, self.pid
        rows = [started_values(prefix, pid, run) for run in runs if run.status not in FINAL]
        if not rows:
            return
        newest: dict[str, int] = {}
        for run in runs:
            if run.trigger != "manual":
                newest[run.job.name] = max(run.scheduled_ms, newest.get(run.job.name, run.scheduled_ms))
        touched = [(at, name) for name, at in sorted(newest.items())]

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(_INSERT_STARTED, rows)
                if touched:
                    await cur.executemany(_TOUCH_SCHEDULED, touched)

        await self._tx("recording started runs", write)

    async def record_finished(self, runs: Sequence[Run]) -> None:
        """Record final runs that do not come from claimed fires (see ``record_started``)."""
        prefix, pid = self.prefix, self.pid
        rows = [finished_values(prefix, pid, run) for run in runs]
        per_job: dict[str, dict[str, Any]] = {}
        for run, row in zip(runs, rows, strict=True):
            entry = per_job.setdefault(row[1], {
                "name": row[1], "scheduled": None, "runs": 0, "failures": 0,
                "started": None, "status": None, "error": None, "duration": None,
            })
            if run.trigger != "manual" and (entry["scheduled"] is None or run.scheduled_ms > entry["scheduled"]):
                entry["scheduled"] = run.scheduled_ms
            if run.status in COUNTED:
                entry["runs"] += 1
                entry["failures"] += run.status in FAILED
                entry.update(started=row[4], status=run.status, error=row[12], duration=row[10])
        touched = [per_job[name] for name in sorted(per_job)]

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(_UPSERT_FINISHED, rows)
                await cur.executemany(_TOUCH_FINISHED, touched)

        if rows:
            await self._tx("recording finished runs", write)

    # ---------------------------------------------------------------- start-up and election

    async def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        """Always True: in a cluster every node fires, and a fire runs once because it is claimed."""
        return True

    async def release_lease(self, holder: str) -> None:
        """Nothing to release (see ``acquire_lease``)."""

    async def sync_jobs(self, jobs: Sequence[JobDef], *, partial: bool = False) -> None:
        """As the contract says, plus one ``schedules`` row per schedule text: a new or changed
        spec (or zone) is armed afresh by the next ``generate_fires`` (NULL ``next_fire_ms``);
        rows beyond a job's schedule count are deleted; unchanged rows are not written."""
        ordered = sorted(jobs, key=lambda j: j.name)
        names = [j.name for j in ordered]
        new_jobs = f"""
            INSERT INTO fastcron.jobs (name, kind, schedules, tz, enabled_code, description, next_run_ms,
                created_ms, updated_ms)
            SELECT name, 'code', schedules, tz, enabled, description, next_run, {NOW_MS}, {NOW_MS}
            FROM unnest(%s::text[], %s::jsonb[], %s::text[], %s::boolean[], %s::text[], %s::bigint[])
                AS u(name, schedules, tz, enabled, description, next_run)
            ORDER BY name
            ON CONFLICT (name) DO NOTHING
        """
        # Existing rows are updated only where something changed (locked in name order).
        changed_jobs = f"""
            UPDATE fastcron.jobs j SET
                last_scheduled_ms = CASE WHEN j.schedules = u.schedules AND j.tz IS NOT DISTINCT FROM u.tz
                    THEN j.last_scheduled_ms END,
                next_run_ms = CASE WHEN j.schedules = u.schedules AND j.tz IS NOT DISTINCT FROM u.tz
                    AND j.kind = 'code' AND NOT j.orphaned THEN j.next_run_ms ELSE u.next_run END,
                kind = 'code', schedules = u.schedules, tz = u.tz, enabled_code = u.enabled,
                description = u.description, orphaned = false, target = NULL, updated_ms = {NOW_MS}
            FROM unnest(%s::text[], %s::jsonb[], %s::text[], %s::boolean[], %s::text[], %s::bigint[])
                AS u(name, schedules, tz, enabled, description, next_run)
            WHERE j.name = u.name AND (j.kind <> 'code' OR j.orphaned OR j.target IS NOT NULL
                OR j.schedules <> u.schedules OR j.tz IS DISTINCT FROM u.tz OR j.enabled_code <> u.enabled
                OR j.description IS DISTINCT FROM u.description)
        """
        params = [
            names,
            [json.dumps(j.schedules) for j in ordered],
            [j.tz for j in ordered],
            [j.enabled for j in ordered],
            [j.description for j in ordered],
            [j.next_run_ms for j in ordered],
        ]
        orphan = f"""
            UPDATE fastcron.jobs SET orphaned = true, next_run_ms = NULL, updated_ms = {NOW_MS}
            WHERE kind = 'code' AND NOT orphaned AND name <> ALL(%s::text[])
        """

        async def sync(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(new_jobs, params)
            await conn.execute(changed_jobs, params)
            await self._write_schedules(conn, ordered)
            if not partial:
                await conn.execute(orphan, [names])

        await self._tx("syncing jobs", sync)

    @staticmethod
    async def _write_schedules(conn: psycopg.AsyncConnection[Any], jobs: Sequence[JobDef]) -> None:
        rows = [(j.name, i, spec, j.tz) for j in jobs for i, spec in enumerate(j.schedules)]
        await conn.execute(_UPSERT_SCHEDULES, [list(col) for col in zip(*rows, strict=True)] if rows else [[]] * 4)
        await conn.execute(_TRIM_SCHEDULES, [[j.name for j in jobs], [len(j.schedules) for j in jobs]])

    async def recover_interrupted(self) -> int:
        """Reap dead nodes now (their running attempts become interrupted, fires pending or
        failed), and mark runs recorded outside fires by dead processes on this host interrupted;
        return how many attempts were interrupted."""
        ttl_ms = int(self.node_ttl * 1000)

        async def recover(conn: psycopg.AsyncConnection[Any]) -> int:
            row = await (await conn.execute(_REAP_DEAD, {"ttl_ms": ttl_ms})).fetchone()
            total = int(row[0]) if row else 0
            cur = await conn.execute(
                "SELECT DISTINCT pid FROM fastcron.runs WHERE status = 'running' AND fire_id IS NULL AND node = %s",
                [NODE],
            )
            gone = [pid for (pid,) in await cur.fetchall() if pid is None or not pid_alive(pid)]
            if gone:
                cur = await conn.execute(
                    f"""UPDATE fastcron.runs SET status = 'interrupted', finished_ms = {NOW_MS},
                        duration_ms = {NOW_MS} - started_ms, error = 'interrupted: the process running it ended'
                    WHERE status = 'running' AND fire_id IS NULL AND node = %s
                        AND (pid = ANY(%s::int[]) OR (pid IS NULL AND %s))""",
                    [NODE, [p for p in gone if p is not None], None in gone],
                )
                total += cur.rowcount
            return total

        return await self._tx("recovering interrupted runs", recover)

    # ---------------------------------------------------------------- the command line side

    async def list_jobs(self) -> list[JobRecord]:
        rows = await self._fetch("listing jobs", f"SELECT {_JOB_COLUMNS} FROM fastcron.jobs ORDER BY name")
        return [job_record(row) for row in rows]

    async def history(self, job: str | None = None, status: str | None = None, limit: int = 20) -> list[RunRecord]:
        sql = f"""
            SELECT {_RUN_COLUMNS} FROM fastcron.runs
            WHERE (%(job)s::text IS NULL OR job = %(job)s) AND (%(status)s::text IS NULL OR status = %(status)s)
            ORDER BY seq DESC LIMIT %(limit)s
        """
        rows = await self._fetch("reading history", sql, {"job": job, "status": status, "limit": limit})
        return [RunRecord(*row) for row in rows]

    async def set_control(self, name: str, *, enabled: bool | None = None, paused: bool | None = None) -> bool:
        """Persist the change and notify every node (``pg_notify``) in the same transaction."""
        actions = []
        if enabled is not None:
            actions.append("enable" if enabled else "disable")
        if paused is not None:
            actions.append("pause" if paused else "resume")

        async def change(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(
                f"""UPDATE fastcron.jobs SET enabled = coalesce(%s, enabled), paused = coalesce(%s, paused),
                    updated_ms = {NOW_MS} WHERE name = %s""",
                [enabled, paused, name],
            )
            if cur.rowcount == 0:
                return False
            for action in actions:
                await conn.execute(_NOTIFY, [_payload(action, name)])
            return True

        return await self._tx(f"changing job {name!r}", change)

    async def post_command(self, command: Command) -> None:
        """Notify every node of ``command``. A ``run`` also inserts a pending manual fire of the job
        (due now, one attempt) that one node claims: the fire, not the notification, is the work."""

        async def post(conn: psycopg.AsyncConnection[Any]) -> None:
            if command.action == "run":
                await conn.execute(
                    f"""INSERT INTO fastcron.fires (job, schedule_index, scheduled_ms, due_ms, trigger, state,
                            max_attempts, created_ms)
                        SELECT %s, NULL, now, now, 'manual', 'pending', %s, now FROM (SELECT {NOW_MS} AS now) c
                        ON CONFLICT (job, coalesce(schedule_index, -1), scheduled_ms) DO NOTHING""",
                    [command.job, MANUAL_MAX_ATTEMPTS],
                )
            await conn.execute(_NOTIFY, [_payload(command.action, command.job)])

        await self._tx(f"posting {command.action} {command.job!r}", post)

    async def take_commands(self) -> list[Command]:
        """The commands the background thread received (LISTEN) since the last call, oldest first.
        Nothing arrives before ``register_node`` started the thread."""
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    async def save_dynamic(self, job: JobDef) -> None:
        """Create or replace the dynamic job (and its schedules rows) and notify every node."""
        sql = f"""
            INSERT INTO fastcron.jobs (name, kind, schedules, tz, enabled_code, description, target, next_run_ms,
                created_ms, updated_ms)
            VALUES (%s, 'dynamic', %s::jsonb, %s, %s, %s, %s, %s, {NOW_MS}, {NOW_MS})
            ON CONFLICT (name) DO UPDATE SET schedules = excluded.schedules, tz = excluded.tz,
                enabled_code = excluded.enabled_code, description = excluded.description,
                target = excluded.target, next_run_ms = excluded.next_run_ms, last_scheduled_ms = NULL,
                updated_ms = excluded.updated_ms
        """
        row = (job.name, json.dumps(job.schedules), job.tz, job.enabled, job.description,
               target_to_json(job.target), job.next_run_ms)

        async def save(conn: psycopg.AsyncConnection[Any]) -> None:
            cur = await conn.execute("SELECT kind FROM fastcron.jobs WHERE name = %s FOR UPDATE", [job.name])
            kind = await cur.fetchone()
            if kind is not None and kind[0] == "code":
                raise StoreError(f"job {job.name!r} is defined in code; pick another name for a dynamic job")
            await conn.execute(sql, row)
            await self._write_schedules(conn, [job])
            await conn.execute(_NOTIFY, [_payload("add", job.name)])

        await self._tx(f"saving job {job.name!r}", save)

    async def delete_job(self, name: str) -> bool:
        """Delete a dynamic or orphaned job, its schedules, its fires and runs that are not running,
        and notify every node."""

        async def delete(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(
                "DELETE FROM fastcron.jobs WHERE name = %s AND (kind = 'dynamic' OR orphaned)", [name]
            )
            if cur.rowcount == 0:
                return False
            await conn.execute("DELETE FROM fastcron.fires WHERE job = %s AND state <> 'running'", [name])
            await conn.execute("DELETE FROM fastcron.runs WHERE job = %s AND status <> 'running'", [name])
            await conn.execute(_NOTIFY, [_payload("remove", name)])
            return True

        return await self._tx(f"deleting job {name!r}", delete)

    async def prune(self, older_than_ms: int, per_job: int | None, *, dry_run: bool = False) -> int:
        """As the contract says, deleting in batches of ``prune_batch`` rows per transaction (never
        one huge DELETE); final fires that finished before ``older_than_ms`` go too. Returns the
        number of runs (fires are bookkeeping, not history)."""
        old = "status <> 'running' AND coalesce(finished_ms, started_ms, scheduled_ms) < %(cutoff)s"
        capped = (
            "id IN (SELECT id FROM (SELECT id, status, row_number() OVER (PARTITION BY job ORDER BY seq DESC) AS n "
            "FROM fastcron.runs) AS ranked WHERE n > %(per_job)s AND status <> 'running')"
        )
        where = f"({old})" + (f" OR {capped}" if per_job is not None else "")
        params = {"cutoff": older_than_ms, "per_job": per_job, "batch": self.prune_batch}
        if dry_run:
            rows = await self._fetch("counting runs to prune", f"SELECT count(*) FROM fastcron.runs WHERE {where}", params)
            return int(rows[0][0])
        runs_sql = f"DELETE FROM fastcron.runs WHERE id IN (SELECT id FROM fastcron.runs WHERE {where} LIMIT %(batch)s)"
        fires_sql = """
            DELETE FROM fastcron.fires WHERE id IN (SELECT id FROM fastcron.fires
                WHERE state NOT IN ('pending', 'running') AND coalesce(finished_ms, scheduled_ms) < %(cutoff)s
                LIMIT %(batch)s)
        """
        total = await self._delete_batches("pruning runs", runs_sql, params)
        await self._delete_batches("pruning fires", fires_sql, params)
        return total

    async def _delete_batches(self, what: str, sql: str, params: Mapping[str, Any]) -> int:
        async def batch(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(sql, params)).rowcount

        total = 0
        while True:
            deleted = await self._tx(what, batch)
            total += deleted
            if deleted < self.prune_batch:
                return total

    # ---------------------------------------------------------------- the cluster protocol

    async def register_node(self, node: str, pid: int) -> None:
        """Mark ``node`` alive (heartbeat now, by the database clock) and start the background
        thread if it is not running (returning once it LISTENs, so no later notification is
        missed). Fires still running under this name (a previous process
        that used it) are reset as the reaper would. Clears ``reaped``."""

        async def register(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(_REAP_NODE, {"node": node})
            await conn.execute(_REGISTER, {"node": node, "host": NODE, "pid": pid})

        await self._tx(f"registering node {node!r}", register)
        with self._lock:
            self._node, self._node_pid = node, pid
            self._generation += 1
            self._reaped = False
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._listening.clear()
            self._thread = threading.Thread(target=self._beat_loop, name="fastcron-heartbeat", daemon=True)
            self._thread.start()
            # Control changes made after this returns must reach take_commands: wait for LISTEN
            # (not forever: if the thread cannot connect yet, it keeps trying on its own).
            await asyncio.get_running_loop().run_in_executor(None, self._listening.wait, CONNECT_TIMEOUT_S + 1)

    async def unregister_node(self, node: str) -> None:
        """Stop the background thread (heartbeats, reaping, LISTEN) and mark ``node`` stopped. Fires
        it still runs are reset by the reaper once its last heartbeat is older than ``node_ttl``;
        on a clean stop the scheduler completes them first."""
        await asyncio.get_running_loop().run_in_executor(None, self._stop_thread)
        with self._lock:
            if self._node == node:
                self._node = None

        async def unregister(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                f"UPDATE fastcron.nodes SET state = 'stopped', heartbeat_ms = {NOW_MS} WHERE node = %s AND state = 'alive'",
                [node],
            )

        await self._tx(f"unregistering node {node!r}", unregister)

    async def db_now_ms(self) -> int:
        """The database clock, epoch ms."""
        rows = await self._fetch("reading the clock", f"SELECT {NOW_MS}")
        return int(rows[0][0])

    async def generate_fires(self, rules: Callable[[str, int], FireRule | None], *, limit: int = 10000) -> int:
        """Turn due schedule instants into fires, in one short transaction; return how many pending
        fires were created.

        Due schedule rows of enabled, unpaused, not orphaned jobs are locked (``SKIP LOCKED``: nodes
        generating concurrently take disjoint rows; the unique fire key covers the rest). For each,
        ``rules(job, schedule_index)`` gives the node's ``FireRule`` (None: this node does not know
        the job; the row is left alone). A row never armed (NULL) is armed after now, without
        fires. Otherwise each instant up to now + ``GENERATE_AHEAD_MS`` becomes a fire: on time (late by at most
        ``misfire_grace_ms``) pending with trigger ``schedule``; late ones by ``catchup``: ``all``
        pending ``catch-up`` (due now), ``latest`` only the newest (unless one is on time in this
        batch), ``skip`` none; the others are inserted ``missed`` with a missed runs row saying why.
        At most ``LATE_LIMIT`` late instants per schedule are enumerated; beyond, the schedule skips
        ahead (the last missed row says "truncated").
        """

        async def generate(conn: psycopg.AsyncConnection[Any]) -> int:
            now = int((await (await conn.execute(f"SELECT {NOW_MS}")).fetchone() or [0])[0])
            cur = await conn.execute(_DUE_SCHEDULES, {"now": now + GENERATE_AHEAD_MS, "limit": limit})
            fires: dict[str, list[Any]] = {k: [] for k in ("job", "idx", "at", "due", "trigger", "state", "max", "message")}
            advance: list[tuple[str, int, int]] = []
            for job, index, next_ms in await cur.fetchall():
                rule = rules(job, index)
                if rule is None:
                    continue
                advance.append((job, index, _plan(fires, job, index, next_ms, now, rule)))
            if not advance:
                return 0
            created = 0
            if fires["job"]:
                row = await (await conn.execute(_INSERT_FIRES, {**fires, "now": now})).fetchone()
                created = int(row[0]) if row else 0
            await conn.execute(_ADVANCE_SCHEDULES, [list(col) for col in zip(*advance, strict=True)])
            return created

        return await self._tx("generating fires", generate)

    async def next_due(self) -> tuple[int, int | None]:
        """``(now, earliest)`` on the database clock: ``earliest`` is the first instant at which a
        schedule is due or a pending fire becomes claimable (None: nothing anywhere), so a node
        sizes its sleep without reading its own clock."""
        rows = await self._fetch(
            "reading the next due instant",
            f"""SELECT {NOW_MS},
                    (SELECT min(next_fire_ms) - {GENERATE_AHEAD_MS} FROM fastcron.schedules),
                    (SELECT min(due_ms) FROM fastcron.fires WHERE state = 'pending')""",
        )
        now, schedule_ms, fire_ms = rows[0]
        due = [int(v) for v in (schedule_ms, fire_ms) if v is not None]
        return int(now), (min(due) if due else None)

    async def claim(self, node: str, limit: int) -> list[Claim]:
        """Claim up to ``limit`` due pending fires for ``node`` (at most its fair share: due fires
        divided by alive nodes, rounded up), oldest due first, in one statement: each becomes
        running as its next attempt, with a runs row (status running, started now on the database
        clock). Nothing if ``node`` is not alive (reaped, stopped or unknown)."""
        if limit <= 0:
            return []
        with self._lock:
            pid = self._node_pid if self._node == node else self.pid
        rows = await self._fetch("claiming fires", _CLAIM, {"node": node, "limit": limit, "pid": pid})
        return [Claim(*row) for row in rows]

    async def complete(self, node: str, outcomes: Sequence[Outcome]) -> list[int]:
        """Write the outcomes of attempts ``node`` ran, in one statement, fenced: an outcome applies
        only while its fire is still running on ``node`` in that attempt. Applied: the runs row
        gets the status, duration, error, message and stats; the fire becomes final, or pending
        again due at ``retry_at_ms`` if set and attempts are left; final outcomes count in the
        job's counters. Fenced out (the fire was reaped meanwhile): the fire is left alone, the
        runs row stays interrupted with message "late result discarded: ...". Returns the fenced
        fire ids."""
        if not outcomes:
            return []
        params = {
            "node": node,
            "fire": [o.fire_id for o in outcomes],
            "attempt": [o.attempt for o in outcomes],
            "status": [o.status for o in outcomes],
            "duration": [
                None if o.started_ms is None or o.finished_ms is None else o.finished_ms - o.started_ms
                for o in outcomes
            ],
            "error": [o.error for o in outcomes],
            "traceback": [o.traceback for o in outcomes],
            "message": [o.message for o in outcomes],
            "stats": [None if o.stats is None else json.dumps(o.stats, default=repr) for o in outcomes],
            "retry": [o.retry_at_ms for o in outcomes],
            "max": [o.max_attempts for o in outcomes],
        }
        rows = await self._fetch("completing fires", _COMPLETE, params)
        return [int(row[0]) for row in rows]

    async def reap(self) -> int:
        """Reap nodes silent for longer than ``node_ttl`` (database clock; also done by the
        background thread every heartbeat): mark them reaped, their running attempts interrupted,
        their fires pending again (due now) or failed when out of attempts. Returns the number of
        fires reset. Nodes locked by a concurrent claim or reaper are left for the next call."""
        rows = await self._fetch("reaping nodes", _REAP_DEAD, {"ttl_ms": int(self.node_ttl * 1000)})
        return int(rows[0][0])

    async def nodes(self) -> list[NodeRecord]:
        """Every node that registered, by name, with its heartbeat age on the database clock."""
        rows = await self._fetch(
            "listing nodes",
            f"""SELECT node, host, pid, state, started_ms, heartbeat_ms, {NOW_MS} - heartbeat_ms, running
                FROM fastcron.nodes ORDER BY node""",
        )
        return [NodeRecord(*row) for row in rows]

    def set_running(self, n: int) -> None:
        """The number of attempts this node is running, reported with the next heartbeat."""
        self._running = n

    @property
    def reaped(self) -> bool:
        """True once the heartbeat found this node reaped (or gone): stop claiming and call
        ``register_node`` again."""
        return self._reaped

    # ---------------------------------------------------------------- the background thread

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join()
            self._thread = None

    def _beat_loop(self) -> None:
        """Heartbeat, reap and LISTEN until stopped; reconnect with backoff (logged once per
        outage) on any failure, never give up."""
        conn: psycopg.Connection[Any] | None = None
        backoff = 0.1
        outage = False
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self._beat_conninfo, autocommit=True)
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if outage:
                        log.warning("fastcron: reconnected to PostgreSQL at %s", self.where)
                        outage = False
                        # Notifications sent while we were away are lost: the node rereads.
                        self._deliver(_payload("resync", "*"))
                    backoff = 0.1
                self._beat(conn)
                self._listen(conn, time.monotonic() + self.heartbeat)
            except Exception as exc:  # the thread must outlive any failure
                if not outage:
                    log.warning("fastcron: lost PostgreSQL at %s (%s); reconnecting", self.where, _one_line(exc))
                    outage = True
                if conn is not None:
                    _close_quietly(conn)
                    conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, max(self.heartbeat, 1.0))
        if conn is not None:
            _close_quietly(conn)

    def _beat(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            node, generation = self._node, self._generation
        if node is not None:
            alive = conn.execute(_HEARTBEAT, [self._running, node]).fetchone()
            if alive is None:
                with self._lock:
                    if generation == self._generation and not self._reaped:
                        self._reaped = True
                        log.warning("fastcron: node %s was reaped by another node; it stops claiming", node)
        conn.execute(_REAP_DEAD, {"ttl_ms": int(self.node_ttl * 1000)})

    def _listen(self, conn: psycopg.Connection[Any], until: float) -> None:
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            for notify in conn.notifies(timeout=min(left, 0.2)):
                self._deliver(notify.payload)

    def _deliver(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            command = Command(str(data["action"]), str(data["job"]))
        except (ValueError, KeyError, TypeError):
            log.warning("fastcron: ignored a malformed notification on %r: %.200s", CHANNEL, payload)
            return
        self._commands.put(command)
        callback = self.on_notify
        if callback is not None:
            try:
                callback(command)
            except Exception:
                log.exception("fastcron: the notification callback failed")


# ---------------------------------------------------------------- helpers


def _plan(fires: dict[str, list[Any]], job: str, index: int, next_ms: int | None, now: int, rule: FireRule) -> int:
    """Append the fires of one schedule row due by ``now`` to ``fires`` (column lists) and return
    the row's next ``next_fire_ms``."""
    trigger = rule.trigger
    if next_ms is None:
        return _ms(trigger.next_after_ts(now // 1000))
    grace = rule.misfire_grace_ms
    on_time: list[int] = []
    late: list[int] = []
    truncated = False
    t: int | None = next_ms // 1000
    while t is not None and t * 1000 <= now + GENERATE_AHEAD_MS:
        at = t * 1000
        if now - at <= grace:
            on_time.append(at)
        elif len(late) >= LATE_LIMIT:
            truncated = True
            t = trigger.next_after_ts(-(-(now - grace) // 1000) - 1)  # the first on-time instant
            continue
        else:
            late.append(at)
        t = trigger.next_after_ts(t)
    catchup = rule.catchup
    caught = late if catchup == "all" else late[-1:] if catchup == "latest" and not on_time else []
    missed = late[: len(late) - len(caught)] if caught else late
    reason = f"late beyond misfire_grace {format_ms(grace)} (catchup={catchup})"

    def add(at: int, due: int, trig: str, state: str, message: str | None) -> None:
        for key, value in zip(("job", "idx", "at", "due", "trigger", "state", "max", "message"),
                              (job, index, at, due, trig, state, rule.max_attempts, message), strict=True):
            fires[key].append(value)

    for i, at in enumerate(missed):
        note = "; truncated: more late instants were skipped unrecorded" if truncated and i == len(missed) - 1 else ""
        add(at, now, "schedule", "missed", reason + note)
    for at in caught:
        add(at, now, "catch-up", "pending", None)
    for at in on_time:
        add(at, at, "schedule", "pending", None)
    return _ms(t)


def _ms(seconds: int | None) -> int:
    return NEVER_MS if seconds is None else seconds * 1000


def _payload(action: str, job: str) -> str:
    return json.dumps({"action": action, "job": job})


def _conninfo(dsn: str, application_name: str) -> str:
    """``dsn`` with keepalives, the idle-in-transaction timeout (so a dead host cannot hold row
    locks) and a connect timeout; the caller's own settings win except the appended option."""
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"invalid PostgreSQL connection string: {_one_line(exc)}") from None
    options = " ".join(filter(None, [str(given.get("options") or ""), IDLE_IN_TX_OPTION]))
    extra: dict[str, Any] = {**KEEPALIVES, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": application_name}
    extra = {k: v for k, v in extra.items() if k not in given}
    return make_conninfo(dsn, options=options, **extra)


def _describe(dsn: str) -> str:
    """host:port/dbname of ``dsn`` (never the password), for messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(invalid connection string)"
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or 5432)
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "")
    return f"{host}:{port}/{dbname}"


def _one_line(exc: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


def _close_quietly(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection may fail again; nothing to do about it
        pass


