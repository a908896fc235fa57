"""The PostgreSQL store (``fastcron.stores.postgres``) against a real server (``tests/pgserver.py``,
one per session, a fresh database per test): the schema and its version, a real standby refused,
the Store contract's round trips, and the cluster protocol: fires generated once however many nodes
race, fair and disjoint claims, fencing of a reaped node's late results, retries, catch-up
policies, heartbeats that outlive lost connections, notifications between nodes.

Time in these tests is the database's: due instants are arranged by writing ``next_fire_ms``
relative to ``db_now_ms()``, never by sleeping until a wall-clock instant.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from pgserver import PgServer
from test_store import app  # the same two jobs the SQLite and memory stores are tested with

from fastcron import JobResult, Scheduler
from fastcron.abc import Command, DynamicTarget, JobDef, JobState
from fastcron.errors import StoreError
from fastcron.job import Run
from fastcron.stores.postgres import SCHEMA_VERSION, Claim, Outcome, PostgresStore, outcome_of
from fastcron.triggers import Cron


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def sql(dsn: str, query: str, params: Any = None) -> list[Any]:
    """Run ``query`` on its own autocommit connection (arranging or inspecting the database)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


async def opened(dsn: str, **options: Any) -> PostgresStore:
    store = PostgresStore(dsn, **options)
    await store.open()
    return store


@dataclass(frozen=True)
class Rule:
    trigger: Any
    misfire_grace_ms: int = 60_000
    catchup: str = "skip"
    max_attempts: int = 1


def rules_for(table: dict[str, Rule]) -> Callable[[str, int], Rule | None]:
    return lambda job, index: table.get(job)


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def due_fires(store: PostgresStore, dsn: str, job: str, count: int, *, max_attempts: int = 1) -> list[int]:
    """``count`` pending fires of ``job`` due now (one per past second), through generate_fires."""
    await store.sync_jobs([JobDef(job, schedules=["* * * * * *"])], partial=True)
    now = await store.db_now_ms()
    sql(dsn, "UPDATE fastcron.schedules SET next_fire_ms = %s WHERE job = %s", [(now // 1000 - count) * 1000 + 1000, job])
    rule = Rule(Cron("* * * * * *"), misfire_grace_ms=3_600_000, max_attempts=max_attempts)
    created = await store.generate_fires(rules_for({job: rule}))
    assert created >= count
    # Fires are also made for the coming second (GENERATE_AHEAD_MS): keep only the due ones.
    sql(dsn, "DELETE FROM fastcron.fires WHERE job = %s AND scheduled_ms >= %s", [job, (now // 1000 + 1) * 1000])
    return [row[0] for row in sql(dsn, "SELECT id FROM fastcron.fires WHERE job = %s ORDER BY id", [job])]


# ---------------------------------------------------------------- schema, connection, standby


def test_open_creates_the_versioned_schema_once_even_when_nodes_start_together(pg_dsn: str) -> None:
    async def main() -> None:
        stores = [PostgresStore(pg_dsn) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        for store in stores:
            await store.close()
            await store.close()  # idempotent

    run(main())
    tables = {r[0] for r in sql(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'fastcron'")}
    assert tables == {"meta", "jobs", "schedules", "fires", "runs", "nodes"}
    assert sql(pg_dsn, "SELECT version FROM fastcron.meta") == [(SCHEMA_VERSION,)]
    assert not sql(pg_dsn, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'")


def test_a_newer_schema_is_refused_and_left_untouched(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef("a", schedules=["* * * * *"])])
        await store.close()
        sql(pg_dsn, "UPDATE fastcron.meta SET version = 99")
        with pytest.raises(StoreError, match=r"schema version 99 is newer than this fastcron understands \(1\); upgrade"):
            await opened(pg_dsn)

    run(main())
    assert sql(pg_dsn, "SELECT version FROM fastcron.meta") == [(99,)]
    assert sql(pg_dsn, "SELECT name FROM fastcron.jobs") == [("a",)]


def test_a_standby_is_refused(pg_server: PgServer, pg_dsn: str) -> None:
    # A real streaming replica (pg_basebackup -R), not a read-only setting on the primary.
    sql(pg_dsn, "CREATE TABLE marker (x int)")  # the database exists on the replica too
    standby = PgServer(standby_of=pg_server)
    try:
        standby.start()
        dbname = pg_dsn.rsplit("dbname=", 1)[1]
        with pytest.raises(StoreError, match=r"is a standby \(read-only replica\); point --db at the primary"):
            run(opened(standby.dsn(dbname)))
        assert sql(standby.dsn(dbname), "SELECT to_regnamespace('fastcron')") == [(None,)]
    finally:
        standby.cleanup()


def test_an_unreachable_server_is_one_line_naming_it_without_the_password() -> None:
    with socket_port() as port:
        dsn = f"postgresql://fastcron:s3cret@127.0.0.1:{port}/jobs"
        with pytest.raises(StoreError) as info:
            run(opened(dsn))
    text = str(info.value)
    assert text.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}/jobs: ")
    assert "s3cret" not in text and "\n" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


class socket_port:
    """A port nothing listens on (bound, never listening, for the duration)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_statements_on_a_closed_store_fail_clearly(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    with pytest.raises(StoreError, match="the store is not open"):
        run(store.list_jobs())


# ---------------------------------------------------------------- the Store contract


def test_runs_outside_fires_are_recorded_with_error_traceback_message_and_stats(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        scheduler = Scheduler(app(), store=store)
        await scheduler._prepare_store()
        assert await scheduler.run_job("ok") == JobResult(message="fine", processed=7)
        with pytest.raises(ValueError, match="no luck"):
            await scheduler.run_job("boom")
        await scheduler.stop()
        runs = await store.history()
        assert [(r.job, r.status, r.trigger) for r in runs] == [("boom", "failed", "manual"), ("ok", "succeeded", "manual")]
        failed, succeeded = runs
        assert failed.error == "ValueError: no luck"
        assert failed.traceback is not None and "raise ValueError" in failed.traceback
        assert succeeded.message == "fine" and succeeded.stats == {"processed": 7}
        assert [r.job for r in await store.history(status="failed")] == ["boom"]
        assert [r.job for r in await store.history(job="ok")] == ["ok"]
        jobs = {j.name: j for j in await store.list_jobs()}
        assert (jobs["ok"].run_count, jobs["ok"].failure_count, jobs["ok"].last_status) == (1, 0, "succeeded")
        assert (jobs["boom"].failure_count, jobs["boom"].last_error) == (1, "ValueError: no luck")
        await store.close()

    run(main())
    assert sql(pg_dsn, "SELECT count(*) FROM fastcron.runs WHERE fire_id IS NULL") == [(2,)]


def test_sync_jobs_reconciles_jobs_and_schedules_without_rewriting_unchanged_rows(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        code = [JobDef("a", schedules=["* * * * *", "0 * * * *"]), JobDef("b", schedules=["0 * * * *"])]
        await store.sync_jobs(code)
        sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = 123000")
        await store.save_job_states([JobState("a", last_scheduled_ms=60_000), JobState("b", paused=True, last_scheduled_ms=7)])
        before = sql(pg_dsn, "SELECT job, schedule_index, xmin::text FROM fastcron.schedules ORDER BY 1, 2")
        jobs_before = sql(pg_dsn, "SELECT name, xmin::text FROM fastcron.jobs ORDER BY 1")
        await store.sync_jobs(code)  # another node with the same code: nothing is written
        assert sql(pg_dsn, "SELECT job, schedule_index, xmin::text FROM fastcron.schedules ORDER BY 1, 2") == before
        assert sql(pg_dsn, "SELECT name, xmin::text FROM fastcron.jobs ORDER BY 1") == jobs_before

        await store.sync_jobs([JobDef("a", schedules=["*/2 * * * *"])])  # a: one schedule, changed; b gone
        assert sql(pg_dsn, "SELECT job, schedule_index, spec, next_fire_ms FROM fastcron.schedules ORDER BY 1, 2") == [
            ("a", 0, "*/2 * * * *", None),
            ("b", 0, "0 * * * *", 123000),
        ]
        states = await store.load_job_states()
        assert states["a"].last_scheduled_ms is None  # nothing is caught up from the old schedule
        assert states["b"].paused and states["b"].last_scheduled_ms == 7
        jobs = {j.name: j for j in await store.list_jobs()}
        assert jobs["a"].schedules == ["*/2 * * * *"] and jobs["b"].orphaned
        await store.sync_jobs([JobDef("c", schedules=["@daily"])], partial=True)
        assert not {j.name: j for j in await store.list_jobs()}["a"].orphaned
        await store.close()

    run(main())


def test_control_changes_persist_and_reach_other_nodes(pg_dsn: str) -> None:
    async def main() -> None:
        cli, node = await opened(pg_dsn), await opened(pg_dsn)
        await cli.sync_jobs([JobDef("a", schedules=["* * * * *"])])
        seen: list[Command] = []
        node.on_notify = seen.append
        await node.register_node("n1", 1)
        assert await node.take_commands() == []
        assert await cli.set_control("a", paused=True)
        assert await cli.set_control("a", enabled=False)
        assert not await cli.set_control("nope", paused=True)
        await cli.post_command(Command("resume", "a"))
        want = [Command("pause", "a"), Command("disable", "a"), Command("resume", "a")]
        await wait_until(lambda: len(seen) == 3, what="three notifications")
        assert seen == want
        assert await node.take_commands() == want
        assert await node.take_commands() == []
        state = (await cli.load_job_states())["a"]
        assert state.paused and state.enabled is False
        assert await cli.take_commands() == []  # not registered: no listener
        await node.unregister_node("n1")
        await cli.close()
        await node.close()

    run(main())


def test_a_manual_run_is_a_pending_fire_one_node_claims(pg_dsn: str) -> None:
    async def main() -> None:
        a, b = await opened(pg_dsn), await opened(pg_dsn)
        await a.sync_jobs([JobDef("a", schedules=["@yearly"])])
        await a.register_node("A", 1)
        await b.register_node("B", 2)
        await a.post_command(Command("run", "a"))
        claims = [*await a.claim("A", 10), *await b.claim("B", 10)]
        assert [(c.job, c.schedule_index, c.trigger, c.attempt) for c in claims] == [("a", None, "manual", 1)]
        await wait_until(lambda: b._commands.qsize() == 1, what="the run notification")
        assert await b.take_commands() == [Command("run", "a")]
        for store, node in ((a, "A"), (b, "B")):
            await store.unregister_node(node)
            await store.close()

    run(main())


def test_dynamic_jobs_are_saved_notified_and_deleted_with_their_history(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef("code", schedules=["* * * * *"])])
        target = DynamicTarget(command=["echo", "hi"], timeout=5.0)
        await store.save_dynamic(JobDef("dyn", kind="dynamic", schedules=["@hourly", "@daily"], target=target))
        with pytest.raises(StoreError, match="job 'code' is defined in code; pick another name"):
            await store.save_dynamic(JobDef("code", kind="dynamic", schedules=["@hourly"], target=target))
        record = {j.name: j for j in await store.list_jobs()}["dyn"]
        assert record.kind == "dynamic" and record.target == target and record.schedules == ["@hourly", "@daily"]
        await store.save_dynamic(JobDef("dyn", kind="dynamic", schedules=["@daily"], target=target))
        assert sql(pg_dsn, "SELECT schedule_index, spec FROM fastcron.schedules WHERE job = 'dyn'") == [(0, "@daily")]
        await store.post_command(Command("run", "dyn"))
        assert sql(pg_dsn, "SELECT trigger, state FROM fastcron.fires WHERE job = 'dyn'") == [("manual", "pending")]
        assert not await store.delete_job("code")
        assert await store.delete_job("dyn")
        assert not await store.delete_job("dyn")
        assert sql(pg_dsn, "SELECT count(*) FROM fastcron.fires WHERE job = 'dyn'") == [(0,)]
        assert sql(pg_dsn, "SELECT count(*) FROM fastcron.schedules WHERE job = 'dyn'") == [(0,)]
        await store.close()

    run(main())


def test_prune_deletes_old_runs_and_fires_in_batches(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        store.prune_batch = 4
        await store.sync_jobs([JobDef("a", schedules=["* * * * * *"]), JobDef("b", schedules=["* * * * * *"])])
        rows = [(f"old{i}", "a", 1000 + i, "succeeded") for i in range(11)]
        rows += [(f"new{i}", "a", 10**9 + i, "failed") for i in range(5)]
        rows += [("running", "a", 10, "running"), ("b-old", "b", 5, "missed")]
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.cursor().executemany(
                "INSERT INTO fastcron.runs (id, job, started_ms, finished_ms, status, trigger) VALUES (%s, %s, %s, %s, %s, 'schedule')",
                [(id_, job, at, None if status == "running" else at, status) for id_, job, at, status in rows],
            )
            conn.cursor().executemany(
                "INSERT INTO fastcron.fires (job, scheduled_ms, due_ms, trigger, state, finished_ms, created_ms) "
                "VALUES ('a', %s, %s, 'schedule', %s, %s, 0)",
                [(at, at, state, None if state == "pending" else at) for at, state in
                 [*((100 + i, "succeeded") for i in range(9)), (200, "pending"), (10**9, "failed")]],
            )
        assert await store.prune(10**6, None, dry_run=True) == 12
        assert sql(pg_dsn, "SELECT count(*) FROM fastcron.runs") == [(18,)]
        assert await store.prune(10**6, None) == 12
        assert sorted(r[0] for r in sql(pg_dsn, "SELECT id FROM fastcron.runs")) == ["new0", "new1", "new2", "new3", "new4", "running"]
        assert sorted(r[0] for r in sql(pg_dsn, "SELECT state FROM fastcron.fires")) == ["failed", "pending"]
        # Beyond the newest 2 of job a (the running one, inserted last, is one of them and is kept).
        assert await store.prune(0, 2) == 4
        assert sorted(r[0] for r in sql(pg_dsn, "SELECT id FROM fastcron.runs")) == ["new4", "running"]
        await store.close()

    run(main())


# ---------------------------------------------------------------- generating fires


def test_concurrent_generators_create_each_fire_once_and_the_key_is_enforced_by_the_database(pg_dsn: str) -> None:
    jobs = [f"j{i}" for i in range(6)]
    table = {job: Rule(Cron("* * * * * *"), misfire_grace_ms=3_600_000, catchup="all") for job in jobs}

    async def arrange() -> int:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef(job, schedules=["* * * * * *"]) for job in jobs])
        now = await store.db_now_ms()
        start = (now // 1000 - 40) * 1000
        sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = %s", [start])
        await store.close()
        return start

    async def generate_all(n: int) -> list[int]:
        stores = [await opened(pg_dsn) for _ in range(n)]
        try:
            return list(await asyncio.gather(*(s.generate_fires(rules_for(table), limit=2) for s in stores for _ in range(3))))
        finally:
            for s in stores:
                await s.close()

    start = run(arrange())
    created = run(generate_all(4))
    keys = sql(pg_dsn, "SELECT job, scheduled_ms FROM fastcron.fires")
    assert len(keys) == len(set(keys)) == sum(created)
    per_job = {job: sorted(at for j, at in keys if j == job) for job in jobs}
    for job in jobs:  # each job's instants from start, contiguous, once
        assert per_job[job][0] == start
        assert per_job[job] == list(range(start, start + 1000 * len(per_job[job]), 1000))

    # Threads, each with its own store and event loop, released together; and the schedules
    # rewound behind the generators' back: the unique key alone must keep each fire single.
    sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = %s", [start])
    barrier = threading.Barrier(4)
    results: list[int] = []

    def worker() -> None:
        async def body() -> None:
            store = await opened(pg_dsn)
            barrier.wait(10)
            results.append(await store.generate_fires(rules_for(table)))
            await store.close()

        asyncio.run(body())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = sql(pg_dsn, "SELECT job, scheduled_ms FROM fastcron.fires")
    assert len(after) == len(set(after))
    assert sum(results) == len(after) - len(keys)  # only instants that came due since
    assert sum(results) <= 6 * 5


def test_a_new_schedule_is_armed_without_fires_and_unknown_jobs_are_left_alone(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef("known", schedules=["0 0 1 1 *"]), JobDef("other", schedules=["* * * * *"])])
        assert await store.generate_fires(rules_for({"known": Rule(Cron("0 0 1 1 *"))})) == 0
        rows = dict(sql(pg_dsn, "SELECT job, next_fire_ms FROM fastcron.schedules"))
        now = await store.db_now_ms()
        assert rows["other"] is None
        assert now < rows["known"] <= now + 366 * 86_400_000 and rows["known"] % 1000 == 0
        assert {j.name: j.next_run_ms for j in await store.list_jobs()}["known"] == rows["known"]
        await store.set_control("known", paused=True)
        sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = 0")
        assert await store.generate_fires(rules_for({"known": Rule(Cron("* * * * *"))})) == 0
        assert sql(pg_dsn, "SELECT count(*) FROM fastcron.fires") == [(0,)]  # paused: nothing generated
        await store.close()

    run(main())


@pytest.mark.parametrize(
    ("catchup", "caught"),
    [("skip", 0), ("latest", 1), ("all", 9)],
)
def test_late_instants_follow_the_catchup_policy(pg_dsn: str, catchup: str, caught: int) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef("a", schedules=["* * * * *"])])
        now = await store.db_now_ms()
        if now % 60_000 > 55_000:  # fires are made up to a second ahead: keep the next minute out of it
            await asyncio.sleep((60_000 - now % 60_000) / 1000 + 0.1)
            now = await store.db_now_ms()
        # Ten minutes of per-minute instants; a one-minute grace leaves only the newest on time,
        # unless 'latest' is tested without an on-time instant (a grace of 0 makes all late).
        grace = 0 if catchup == "latest" else 60_000
        first = (now // 60_000 - 9) * 60_000
        sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = %s", [first])
        rule = Rule(Cron("* * * * *"), misfire_grace_ms=grace, catchup=catchup)
        created = await store.generate_fires(rules_for({"a": rule}))
        fires = sql(pg_dsn, "SELECT scheduled_ms, state, trigger, due_ms FROM fastcron.fires ORDER BY scheduled_ms")
        assert [f[0] for f in fires] == [first + 60_000 * i for i in range(10)]
        on_time = [f for f in fires if f[2] == "schedule" and f[1] == "pending"]
        catch_up = [f for f in fires if f[2] == "catch-up"]
        missed = [f for f in fires if f[1] == "missed"]
        assert len(catch_up) == caught and all(f[1] == "pending" and f[3] >= now for f in catch_up)
        assert len(on_time) == (0 if grace == 0 else 1)
        assert created == len(on_time) + len(catch_up) == 10 - len(missed)
        if catchup == "latest":
            assert catch_up[0][0] == fires[-1][0]  # the newest late instant
        history = await store.history(status="missed", limit=100)
        assert len(history) == len(missed)
        assert all(r.message == f"late beyond misfire_grace {'0s' if grace == 0 else '1m'} (catchup={catchup})" for r in history)
        job = {j.name: j for j in await store.list_jobs()}["a"]
        assert job.last_scheduled_ms == fires[-1][0] and job.next_run_ms == fires[-1][0] + 60_000
        await store.close()

    run(main())


def test_latest_catchup_yields_to_an_on_time_fire_and_late_instants_are_capped(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.sync_jobs([JobDef("a", schedules=["* * * * * *"])])
        now = await store.db_now_ms()
        sql(pg_dsn, "UPDATE fastcron.schedules SET next_fire_ms = %s", [(now // 1000 - 300) * 1000])
        rule = Rule(Cron("* * * * * *"), misfire_grace_ms=5_000, catchup="latest")
        created = await store.generate_fires(rules_for({"a": rule}))
        states = sql(pg_dsn, "SELECT state, trigger, count(*) FROM fastcron.fires GROUP BY 1, 2 ORDER BY 1")
        counts = {(s, t): n for s, t, n in states}
        assert counts[("missed", "schedule")] == 100  # capped; the rest of the late ones skipped
        assert ("pending", "catch-up") not in counts  # an on-time fire exists: no catch-up
        assert 5 <= counts[("pending", "schedule")] == created <= 7
        last_missed = (await store.history(status="missed", limit=1))[0]
        assert last_missed.message is not None and "truncated" in last_missed.message
        (next_fire,) = sql(pg_dsn, "SELECT next_fire_ms FROM fastcron.schedules")[0]
        assert next_fire > now
        await store.close()

    run(main())


# ---------------------------------------------------------------- claiming, fencing, retries


def test_concurrent_claims_are_disjoint_and_each_node_takes_its_fair_share(pg_dsn: str) -> None:
    async def main() -> None:
        stores = [await opened(pg_dsn) for _ in range(3)]
        for i, store in enumerate(stores):
            await store.register_node(f"n{i}", 100 + i)
        await due_fires(stores[0], pg_dsn, "a", 30)
        due = sql(pg_dsn, "SELECT count(*) FROM fastcron.fires WHERE state = 'pending'")[0][0]
        first = await stores[0].claim("n0", 1000)
        assert len(first) == -(-due // 3)  # a node waking first does not take everything
        claims = await asyncio.gather(*(s.claim(f"n{i}", 1000) for i, s in enumerate(stores)))
        ids = [c.fire_id for batch in [first, *claims] for c in batch]
        assert len(ids) == len(set(ids))
        left = due - len(first)
        assert all(len(batch) <= -(-left // 3) for batch in claims)
        running = sql(pg_dsn, "SELECT id, node, attempt FROM fastcron.fires WHERE state = 'running' ORDER BY id")
        by_node = {c.fire_id: f"n{i}" for i, batch in enumerate([first]) for c in batch}
        by_node.update({c.fire_id: f"n{i}" for i, batch in enumerate(claims) for c in batch})
        assert running == sorted((fid, node, 1) for fid, node in by_node.items())
        runs = sql(pg_dsn, "SELECT id, status, node, pid FROM fastcron.runs WHERE fire_id IS NOT NULL ORDER BY 1")
        assert len(runs) == len(ids) and all(r[1] == "running" and r[3] == 100 + int(r[2][1]) for r in runs)
        assert await stores[1].claim("n1", 0) == []
        for i, store in enumerate(stores):
            await store.unregister_node(f"n{i}")
            await store.close()

    run(main())


def test_a_reaped_nodes_late_result_is_fenced_and_another_node_runs_the_next_attempt(pg_dsn: str) -> None:
    async def main() -> None:
        a, b = await opened(pg_dsn), await opened(pg_dsn)
        reaper = await opened(pg_dsn, node_ttl=0.002, heartbeat=0.001)  # never registered: no thread
        await a.register_node("A", 1)
        await b.register_node("B", 2)
        await due_fires(a, pg_dsn, "a", 1, max_attempts=3)
        (claim,) = await a.claim("A", 10)
        assert claim.attempt == 1 and claim.max_attempts == 3
        # A goes silent: its heartbeat is made old on the database side.
        sql(pg_dsn, "UPDATE fastcron.nodes SET heartbeat_ms = heartbeat_ms - 600000 WHERE node = 'A'")
        assert await b.reap() == 1
        assert sql(pg_dsn, "SELECT state FROM fastcron.nodes ORDER BY node") == [("reaped",), ("alive",)]
        assert sql(pg_dsn, "SELECT state, attempt FROM fastcron.fires") == [("pending", 1)]
        fenced = await a.complete("A", [Outcome(claim.fire_id, 1, "succeeded", 0, 10)])
        assert fenced == [claim.fire_id]
        (row,) = sql(pg_dsn, "SELECT status, message, error FROM fastcron.runs WHERE id = %s", [f"{claim.fire_id}.1"])
        assert row[0] == "interrupted"
        assert row[1] == "late result discarded: succeeded after the fire was reaped"
        assert row[2] == "interrupted: node A stopped heartbeating"
        assert await a.claim("A", 10) == []  # reaped: no claims
        (again,) = await b.claim("B", 10)
        assert (again.fire_id, again.attempt) == (claim.fire_id, 2)
        assert await b.complete("B", [Outcome(again.fire_id, 2, "succeeded", 0, 7, message="done", stats={"n": 1})]) == []
        assert sql(pg_dsn, "SELECT state, attempt, node FROM fastcron.fires") == [("succeeded", 2, "B")]
        runs = await a.history(job="a")
        assert [(r.id, r.status, r.node) for r in runs[:2]] == [
            (f"{claim.fire_id}.2", "succeeded", "B"), (f"{claim.fire_id}.1", "interrupted", "A")
        ]
        assert runs[0].message == "done" and runs[0].stats == {"n": 1} and runs[0].duration_ms == 7
        job = {j.name: j for j in await a.list_jobs()}["a"]
        assert (job.run_count, job.failure_count, job.last_status) == (1, 0, "succeeded")
        # A late duplicate of B's result changes nothing either.
        assert await b.complete("B", [Outcome(again.fire_id, 2, "failed", 0, 7)]) == [again.fire_id]
        assert sql(pg_dsn, "SELECT state FROM fastcron.fires") == [("succeeded",)]
        assert await reaper.reap() == 0  # B, silent for over 2 ms, may be reaped too: it runs nothing to reset
        for store, node in ((a, "A"), (b, "B")):
            await store.unregister_node(node)
            await store.close()
        await reaper.close()

    run(main())


def test_a_reaped_node_sees_it_stops_claiming_and_registers_again(pg_dsn: str) -> None:
    async def main() -> None:
        a = await opened(pg_dsn, node_ttl=5.0, heartbeat=0.1)
        reaper = await opened(pg_dsn, node_ttl=0.002, heartbeat=0.001)
        await a.register_node("A", 1)
        await due_fires(a, pg_dsn, "a", 3)
        assert not a.reaped
        async def reaped() -> bool:  # A's heartbeat is more than 2 ms old most of the time
            await reaper.reap()
            return sql(pg_dsn, "SELECT state FROM fastcron.nodes") == [("reaped",)]

        await wait_until(reaped, what="A reaped")
        await wait_until(lambda: a.reaped, what="A noticing")
        assert await a.claim("A", 10) == []
        await a.register_node("A", 1)
        assert not a.reaped
        assert len(await a.claim("A", 10)) >= 3
        await a.unregister_node("A")
        assert sql(pg_dsn, "SELECT state FROM fastcron.nodes") == [("stopped",)]
        await a.close()
        await reaper.close()

    run(main())


def test_retry_at_puts_the_fire_back_pending_until_attempts_run_out(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn)
        await store.register_node("A", 1)
        (fire,) = await due_fires(store, pg_dsn, "a", 1, max_attempts=2)
        (claim,) = await store.claim("A", 10)
        retry_at = await store.db_now_ms() + 400
        assert await store.complete("A", [Outcome(fire, 1, "failed", 0, 3, error="E: x", retry_at_ms=retry_at)]) == []
        assert sql(pg_dsn, "SELECT state, attempt, due_ms FROM fastcron.fires") == [("pending", 1, retry_at)]
        assert await store.claim("A", 10) == []  # not due yet
        await asyncio.sleep(0.45)
        (second,) = await store.claim("A", 10)
        assert second.attempt == 2
        assert await store.complete("A", [Outcome(fire, 2, "timed_out", 0, 3, retry_at_ms=retry_at)]) == []
        assert sql(pg_dsn, "SELECT state, attempt FROM fastcron.fires") == [("timed_out", 2)]
        assert [r.status for r in await store.history(job="a")] == ["timed_out", "failed"]
        job = {j.name: j for j in await store.list_jobs()}["a"]
        assert (job.run_count, job.failure_count, job.last_status) == (1, 1, "timed_out")
        await store.unregister_node("A")
        await store.close()

    run(main())


def test_a_fire_whose_nodes_keep_dying_is_retried_twice_beyond_its_attempts_then_fails(pg_dsn: str) -> None:
    async def main() -> None:
        b = await opened(pg_dsn)
        await due_fires(b, pg_dsn, "a", 1)  # max_attempts 1: no retries of its own
        for round_, expected in enumerate([("pending", 1), ("pending", 2), ("failed", 3)]):
            a = await opened(pg_dsn)
            node = f"A{round_}"
            await a.register_node(node, 1)
            (claim,) = await a.claim(node, 10)
            assert claim.attempt == round_ + 1
            a.set_running(1)
            await a.unregister_node(node)  # a stop that did not finish its fire
            await a.close()
            sql(pg_dsn, "UPDATE fastcron.nodes SET heartbeat_ms = heartbeat_ms - 60000")
            assert await b.recover_interrupted() == 1
            assert sql(pg_dsn, "SELECT state, attempt FROM fastcron.fires") == [expected]
        runs = await b.history(job="a")
        assert [r.status for r in runs] == ["interrupted"] * 3 and all(r.finished_ms is not None for r in runs)
        assert runs[0].message is not None and runs[0].message.startswith("node A2 was reaped after ")
        assert await b.recover_interrupted() == 0
        await b.close()

    run(main())


def test_outcome_of_a_run_carries_error_traceback_message_and_stats() -> None:
    registry = app()

    def make(name: str) -> Run:
        return Run(None, registry.get(name), 1, 0, "schedule", (), {})

    failed = make("boom")
    try:
        raise ValueError("no luck")
    except ValueError as exc:
        failed.error = exc
    failed.status, failed.started_ms, failed.finished_ms = "failed", 10, 25
    outcome = outcome_of(failed, 7, 2, retry_at_ms=99)
    assert (outcome.fire_id, outcome.attempt, outcome.status, outcome.retry_at_ms) == (7, 2, "failed", 99)
    assert outcome.error == "ValueError: no luck" and outcome.traceback is not None and "no luck" in outcome.traceback
    ok = make("ok")
    ok.status, ok.result = "succeeded", JobResult(message="fine", processed=7)
    assert (outcome_of(ok, 1, 1).message, outcome_of(ok, 1, 1).stats) == ("fine", {"processed": 7})
    with pytest.raises(ValueError, match="an outcome's status is one of"):
        Outcome(1, 1, "running")


# ---------------------------------------------------------------- the background thread


def test_heartbeats_outlive_a_terminated_connection_and_a_server_restart(pg_server: PgServer, pg_dsn: str) -> None:
    dbname = pg_dsn.rsplit("dbname=", 1)[1]

    async def beat_after(store: PostgresStore, since: int) -> None:
        async def fresh() -> bool:
            try:
                rows = await store.nodes()
            except StoreError:
                return False
            return rows[0].heartbeat_ms > since and rows[0].state == "alive"

        await wait_until(fresh, timeout=15, what="a new heartbeat")

    async def main() -> None:
        a = await opened(pg_dsn, node_ttl=30.0, heartbeat=0.1)
        cli = await opened(pg_dsn)
        await a.sync_jobs([JobDef("a", schedules=["* * * * *"])])
        await a.register_node("A", 1)
        a.set_running(3)

        async def reported() -> bool:
            return (await a.nodes())[0].running == 3

        await wait_until(reported, what="the running count in a heartbeat")

        assert pg_server.terminate_backends(dbname, "fastcron-heartbeat") == 1
        now = await a.db_now_ms()
        await beat_after(a, now)

        now = await a.db_now_ms()
        pg_server.stop()
        await asyncio.sleep(2.0)
        with pytest.raises(StoreError, match=r"PostgreSQL at 127\.0\.0\.1:\d+/\w+: listing jobs failed"):
            await cli.list_jobs()
        pg_server.start()
        await beat_after(a, now)
        (node,) = await a.nodes()
        assert node.heartbeat_age_ms < 5000

        async def notified() -> bool:  # the listener is back too (LISTEN was re-issued)
            await cli.set_control("a", paused=True)
            await asyncio.sleep(0.3)
            return bool(await a.take_commands())

        await wait_until(notified, timeout=10, what="a notification after the restart")
        assert a._thread is not None and a._thread.is_alive()
        await a.unregister_node("A")
        await a.close()
        await cli.close()

    run(main())


def test_node_records_measure_heartbeat_age_on_the_database_clock(pg_dsn: str) -> None:
    async def main() -> None:
        store = await opened(pg_dsn, node_ttl=60.0, heartbeat=30.0)
        await store.register_node("A", 4242)
        sql(pg_dsn, "UPDATE fastcron.nodes SET heartbeat_ms = heartbeat_ms - 20000")
        (node,) = await store.nodes()
        assert (node.node, node.pid, node.state) == ("A", 4242, "alive")
        assert 20_000 <= node.heartbeat_age_ms < 30_000
        assert await store.reap() == 0  # younger than the 60 s ttl
        await store.unregister_node("A")
        await store.close()

    run(main())

