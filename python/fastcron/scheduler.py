"""The scheduler: arms jobs in the core's timing wheel and runs what it reports due.

How a fire travels (the hot path, kept free of per-fire allocation that nobody needs):

1. One loop timer waits for the wheel's ``next_deadline()``; when it fires, ``advance(now_ms)``
   returns every due (job id, schedule index, scheduled ms) oldest first, already re-armed in Rust.
2. ``_dispatch`` applies ``misfire_grace``/``catchup`` to late fires, then each fire is admitted
   (per-job overlap policy, then the global ``max_concurrency``) and started.
3. A ``def`` job goes to a bounded thread pool; an ``async def`` job is started eagerly when that
   is safe (see ``job.make_job``'s ``eager``), else as a Task. Only runs that outlive their tick
   get a done-callback, a timeout timer, and a place in ``_active``.
4. Outcomes update the job's counters, are buffered for the store (one batch per tick) and become
   events only if someone listens for that kind.

Everything runs on the loop thread; the only cross-thread hand-off is a thread job's result,
delivered by ``run_in_executor``'s future. The timer callback runs outside any Task, so a job's
first step never sees the scheduler's task as its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import itertools
import logging
import operator
import os
import random
import signal
import socket
import sys
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final, Literal, overload

from fastcron import _core
from fastcron._clock import Clock, RealClock, from_ms, to_ms
from fastcron._durations import DurationLike, format_ms, parse_duration
from fastcron._executor import ThreadRunner, resume_in_task
from fastcron.errors import (
    ConfigError,
    DuplicateJobError,
    JobCancelledError,
    JobLookupError,
    JobTimeoutError,
    SchedulerStateError,
    StoreError,
)
from fastcron.abc import Command, JobState, Store
from fastcron.events import Event, EventBus, EventKind, Receiver
from fastcron.job import Job, JobContext, Run, Trigger, check_result, describe_timeout, make_job, make_jobs
from fastcron.registry import Change, Registry, default_registry
from fastcron.stores.memory import MemoryStore

__all__ = ["JobMetrics", "Scheduler", "run_loop"]

log = logging.getLogger("fastcron")

JobStateName = Literal["idle", "running", "paused", "cooldown", "disabled"]
FINAL: Final = frozenset({"succeeded", "failed", "timed_out", "cancelled", "skipped", "missed"})
MAX_QUEUED_PER_JOB: Final = 1000  # overlap="queue": beyond this a fire is skipped, not hoarded
DEFAULT_MAX_CONCURRENCY: Final = 10_000
DEFAULT_GRACE_S: Final = 10.0
DEFAULT_LEASE_TTL_S: Final = 10.0  # a standby takes over within this after the leader dies
DEFAULT_POLL_S: Final = 0.5  # how often a shared store is polled for outside changes and the lease renewed
DEFAULT_RETENTION_DAYS: Final = 30.0
DEFAULT_HISTORY_PER_JOB: Final = 10_000
PRUNE_EVERY_S: Final = 600.0
CLUSTER_POLL_S: Final = 1.0  # a cluster node asks the store at least this often what is due
CLUSTER_AGAIN_S: Final = 0.02  # after claiming: other nodes take their share, then this one looks again
CLUSTER_UNKNOWN_RETRY_MS: Final = 2000
STORE_RETRY_S: Final = 1.0  # a failed write of finished runs is tried again after this
STOP_WRITE_ATTEMPTS: Final = 5
FINISH_CHUNK: Final = 5000  # finished runs per store write; starts waiting are written between chunks
_JSON_FAST: Final = (type(None), str, int, float, bool)
_KEEP: Final[Any] = object()  # "argument not given", where None is a meaningful value
_job_core_start: Final = operator.attrgetter("core_start")  # C-level, read per job in _add_slots
_NEW, _STARTING, _RUNNING, _STOPPING, _STOPPED = "new", "starting", "running", "stopping", "stopped"


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """A snapshot of one job's counters. ``runs`` counts finished runs (not skipped or missed);
    ``last_duration`` is in seconds; ``next_run`` is None when nothing is armed."""

    name: str
    runs: int
    failures: int
    consecutive_failures: int
    last_run: datetime | None
    last_status: str | None
    last_duration: float | None
    state: JobStateName
    next_run: datetime | None
    running: int


class _Slot:
    """The scheduler's per-job runtime state. ``armed`` is true when the job's schedules are in
    the wheel: enabled, not paused, not cooling down, not removed, and not manual.

    Every slot sets the fields in ``__slots__``; the others default on the class and land in the
    instance's ``__dict__`` when first written (a job's first run, pause, ...). So registering
    100k jobs writes five fields per slot and allocates no dict, and a job that has never run
    stays one small object.
    """

    __slots__ = ("__dict__", "_running", "armed", "enabled", "id", "job")

    paused = False
    removed = False
    cooldown_until_ms: int | None = None
    cooldown_timer: Any = None
    tenant_running: dict[Any, int] | None = None
    queue: deque[Run] | None = None
    active: list[Run] | None = None  # runs of this job that outlived their tick
    runs = 0
    failures = 0
    consecutive = 0
    last_run_ms: int | None = None
    last_status: str | None = None
    last_duration_ms: int | None = None
    last_scheduled_ms: int | None = None

    def __init__(self, slot_id: int, job: Job, running: list[int]) -> None:
        self.id = slot_id
        self.job = job
        self._running = running
        self.armed = False
        self.enabled = job.opts.enabled

    @property
    def running(self) -> int:
        """Runs of this job in progress (untenanted). Kept in the scheduler's ``_running`` list,
        indexed by slot id, which the core reads for every fire without touching the slot."""
        return self._running[self.id]

    def should_be_armed(self) -> bool:
        return (
            self.enabled
            and not self.paused
            and not self.removed
            and self.cooldown_until_ms is None
            and bool(self.job.schedules)
        )

    def busy(self, tenant: Any) -> int:
        if tenant is None:
            return self.running
        return self.tenant_running.get(tenant, 0) if self.tenant_running else 0

    def state_name(self) -> JobStateName:
        if not self.enabled:
            return "disabled"
        if self.cooldown_until_ms is not None:
            return "cooldown"
        if self.paused:
            return "paused"
        if self.running or self.tenant_running:
            return "running"
        return "idle"


class Scheduler:
    """Runs a registry's jobs on their schedules.

    ``registry`` defaults to the module-level default registry; ``store`` to a ``MemoryStore``;
    ``clock`` to the real clock (pass ``fastcron.testing.FakeClock`` for virtual time).
    ``max_concurrency`` bounds runs in progress across all jobs (further fires wait their turn);
    ``max_threads`` bounds the pool for ``def`` jobs.

    ``await start()`` runs until ``stop()``; ``async with Scheduler(...)`` starts it in the
    background and stops it on exit; ``run_forever()`` does both for scripts, stopping gracefully
    on SIGINT/SIGTERM.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        store: Store | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_threads: int | None = None,
        clock: Clock | None = None,
        lease_ttl: float | None = None,
        poll_interval: float | None = None,
        history_retention_days: float = DEFAULT_RETENTION_DAYS,
        history_per_job: int | None = DEFAULT_HISTORY_PER_JOB,
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency: expected an integer >= 1, got {max_concurrency!r}")
        if max_threads is not None and (not isinstance(max_threads, int) or max_threads < 1):
            raise ConfigError(f"max_threads: expected an integer >= 1, got {max_threads!r}")
        self.registry = registry if registry is not None else default_registry
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.max_concurrency = max_concurrency
        self._threads = ThreadRunner(max_threads)
        self._bus = EventBus()
        self._receivers: list[Receiver] = []
        self._state = _NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wheel: Any = None
        self._timer: Any = None
        self._timer_deadline: int | None = None
        self._last_now = 0
        self._in_tick = False
        self._slots: list[_Slot | None] = []
        # By slot id, beside ``_slots``: what the core reads of each due fire (``advance_eager``),
        # each a plain pointer array it walks without opening a slot. ``_starts[id]`` is the
        # job's EagerJob (None: the general path, or no job), ``_running[id]`` its runs in progress.
        self._starts: list[_core.EagerJob | None] = []
        self._running: list[int] = []
        self._by_name: dict[str, _Slot] = {}
        self._seq = itertools.count(1)
        self._total = 0
        self._global_queue: deque[Run] = deque()
        self._drain_slots: list[_Slot] = []
        self._draining = False
        self._active: set[Run] = set()
        self._pending_timers: set[Any] = set()  # jitter delays, so stop() can cancel them
        self._started_buf: list[Run] = []
        # A durable store sees each run committed as running before its function is called:
        # started runs wait here for their batch's commit (see _flush_store).
        self._commit_first = self.store.durable
        self._launch_buf: list[Run] = []
        self._flush_lock: asyncio.Lock | None = None
        self._flush_spawned = False
        self._store_failing = False
        self._new_defs: dict[str, Job] = {}  # jobs added at run time, not yet written to the store
        self._finished_buf: list[Run] = []
        self._dirty: dict[str, _Slot] = {}
        self._store_pending = False
        self._store_wakeup: asyncio.Event | None = None
        self._store_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._done: asyncio.Future[None] | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        # A shared store (SQLite, PostgreSQL): one scheduler per store holds the lease and fires;
        # others wait as standbys. Outside changes (the CLI) are polled every poll_interval.
        self.node = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.lease_ttl_ms = round(1000 * (lease_ttl if lease_ttl is not None else _env_float("FASTCRON_LEASE_TTL", DEFAULT_LEASE_TTL_S)))
        self.poll_s = poll_interval if poll_interval is not None else _env_float("FASTCRON_POLL_INTERVAL", DEFAULT_POLL_S)
        self.history_retention_days = history_retention_days
        self.history_per_job = history_per_job
        self.is_leader = False
        self._dynamic: set[str] = set()
        self._control_task: asyncio.Task[None] | None = None
        # A cluster store (PostgreSQL): every node fires; fires come from the store (see _cluster_loop).
        self._cluster = self.store.cluster
        self._cluster_task: asyncio.Task[None] | None = None
        self._cluster_wakeup: asyncio.Event | None = None
        self._db_offset_ms = 0  # the store's clock minus ours, from the last claim
        self._add_slots({job.name: job for job in self.registry})
        self._unsubscribe = _subscribe_weakly(self.registry, self)
        attach = getattr(self.clock, "_attach", None)
        if attach is not None:
            attach(self)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True between ``start()`` arming the jobs and ``stop()`` beginning."""
        return self._state == _RUNNING

    async def start(self) -> None:
        """Open the store, arm every job, and dispatch fires until ``stop()`` is called.

        Jobs armed from the store's ``last_scheduled_ms`` report fires missed while the process
        was down; their ``catchup`` policy decides. Raises ``SchedulerStateError`` if called twice.
        """
        if self._state != _NEW:
            raise SchedulerStateError(f"start() called on a scheduler that is {self._state}; make a new Scheduler")
        loop = self._ensure_loop()
        self._state = _STARTING
        try:
            await self.store.open()
            if not await self._wait_for_lease():
                return  # stop() was called while standing by
            saved = await self._prepare_store()
        except BaseException:
            if self._state == _STARTING:
                self._state = _NEW
            raise
        if self._state != _STARTING:  # stop() was called while the store was opening
            return
        now = self.clock.now_ms()
        self._last_now = now
        self._wheel = _core.Wheel(now)
        self._state = _RUNNING
        self._in_tick = True  # arm the loop timer once, after every job is in the wheel
        try:
            for slot in self._slots:
                if slot is not None:
                    self._restore(slot, saved.get(slot.job.name), now)
        finally:
            self._in_tick = False
        self._store_wakeup = asyncio.Event()
        self._store_task = loop.create_task(self._store_loop(), name="fastcron-store")
        if self.store.shared:
            self._control_task = loop.create_task(self._control_loop(), name="fastcron-control")
        if self._cluster:
            await self._join_cluster(loop)
        self._done = loop.create_future()
        self._arm_timer()
        assert self._ready is not None
        self._ready.set()
        try:
            await asyncio.shield(self._done)
        except asyncio.CancelledError:
            # The task running start() was cancelled (e.g. asyncio.run interrupted): stop hard.
            if self._state == _RUNNING:
                await asyncio.shield(self.stop(grace=0))
            raise

    async def stop(self, grace: DurationLike | None = DEFAULT_GRACE_S) -> None:
        """Stop taking fires; wait up to ``grace`` for running jobs, then cancel them.

        Queued fires are dropped (recorded as skipped), pending retries cancelled. Async runs still
        going after ``grace`` are cancelled; threads cannot be, so their ``ctx.cancelled`` is set
        and they are abandoned. Pending events and store batches are written before returning.
        Calling it again waits for the first call to finish. ``grace=None`` waits without limit.
        """
        grace_s = None if grace is None else parse_duration(grace, field="grace") / 1000
        if self._state == _NEW:
            self._state = _STOPPED
            self._unsubscribe()
            return
        if self._state in (_STOPPING, _STOPPED):
            if self._done is not None:
                await asyncio.shield(self._done)
            return
        self._state = _STOPPING
        self._cancel_timers()
        self._drop_queued()
        if self._cluster_task is not None and self._cluster_task is not asyncio.current_task():
            self._cluster_task.cancel()  # no more claims
            await asyncio.gather(self._cluster_task, return_exceptions=True)
        await self._flush_store()  # runs admitted before stop() are committed and started
        waiters = [self._waiter(run) for run in list(self._active) if run._task is not None]
        if waiters:
            run_until = getattr(self.clock, "run_until", None)
            if run_until is not None:
                # A virtual clock: grace is virtual time, spent only while something is due in it.
                limit = None if grace_s is None else self.clock.now_ms() + round(grace_s * 1000)
                await run_until(waiters, limit)
            else:
                await asyncio.wait(waiters, timeout=grace_s)
        leftovers = [run for run in list(self._active) if run.status not in FINAL]
        cancelled: list[asyncio.Future[Any]] = []
        for run in leftovers:
            task = run._task
            if isinstance(task, asyncio.Task) and not task.done():
                run._cancel_reason = "stopped"
                task.cancel()
                cancelled.append(self._waiter(run))
            else:
                self._abandon(run, "stopped")
        if cancelled:
            # Give cancelled tasks a moment to run their cleanup; a task that ignores
            # cancellation is abandoned rather than holding up shutdown.
            await asyncio.wait(cancelled, timeout=1.0)
        for run in [run for run in list(self._active) if run.status not in FINAL]:
            self._abandon(run, "stopped")
        self._threads.shutdown()
        self._unsubscribe()
        self._bus.flush()
        if self._store_task is not None:
            # Cancelled only between writes: a batch cancelled mid-write would be lost, or be
            # written twice.
            if self._flush_lock is None:
                self._flush_lock = asyncio.Lock()
            async with self._flush_lock:
                self._store_task.cancel()
            await asyncio.gather(self._store_task, return_exceptions=True)
        if self._control_task is not None and self._control_task is not asyncio.current_task():
            self._control_task.cancel()
            await asyncio.gather(self._control_task, return_exceptions=True)
        await self._flush_store()
        for _ in range(STOP_WRITE_ATTEMPTS):  # the store may be back in a moment (a restart)
            if not self._finished_buf:
                break
            await asyncio.sleep(STORE_RETRY_S)
            await self._flush_store()
        if self._finished_buf:
            log.error("store %r: %d finished runs could not be recorded before stopping", self.store, len(self._finished_buf))
        if self._cluster_task is not None:
            try:
                await self.store.unregister_node(self.node)  # type: ignore[attr-defined]
            except Exception:
                log.exception("store %r failed to unregister node %s", self.store, self.node)
        if self.is_leader:
            self.is_leader = False
            try:
                await self.store.release_lease(self.node)
            except Exception:
                log.exception("store %r failed to release the lease", self.store)
        try:
            await self.store.close()
        except Exception:
            log.exception("store %r failed to close", self.store)
        for receiver in self._receivers:
            await asyncio.to_thread(receiver.close)
        self._state = _STOPPED
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    destroy = stop

    async def __aenter__(self) -> Scheduler:
        """Start in the background; returns once every job is armed."""
        self._ensure_loop()
        assert self._ready is not None
        self._main_task = asyncio.get_running_loop().create_task(self.start(), name="fastcron-scheduler")
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([ready, self._main_task], return_when=asyncio.FIRST_COMPLETED)
        if self._main_task.done():
            ready.cancel()
            self._main_task.result()  # re-raise what start() failed with
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._main_task is not None:
            await self._main_task

    def run_forever(self, *, grace: DurationLike | None = DEFAULT_GRACE_S) -> None:
        """Run until SIGINT or SIGTERM, then ``stop(grace)``; a second signal cancels running jobs.

        Uses uvloop where it is installed (Linux, macOS) unless ``FASTCRON_LOOP=asyncio``.
        """

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stopping: list[asyncio.Task[None]] = []

            def on_signal(name: str) -> None:
                if not stopping:
                    log.info("%s received: stopping (grace %s)", name, grace)
                    stopping.append(loop.create_task(self.stop(grace)))
                else:
                    log.warning("%s received again: cancelling running jobs", name)
                    stopping.append(loop.create_task(self._hard_stop()))

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, on_signal, sig.name)
                except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                    pass
            await self.start()
            if stopping:
                await asyncio.gather(*stopping)

        run_loop(main())

    async def _hard_stop(self) -> None:
        for run in list(self._active):
            if isinstance(run._task, asyncio.Task):
                run._cancel_reason = "stopped"
                run._task.cancel()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._ready = asyncio.Event()
        elif self._loop is not loop:
            raise SchedulerStateError("a Scheduler is bound to the event loop it was first used on")
        return loop

    # ------------------------------------------------------------------ store wiring

    async def _wait_for_lease(self) -> bool:
        """Stand by until this scheduler holds the store's lease; False if stopped meanwhile."""
        store = self.store
        announced = False
        while self._state == _STARTING:
            try:
                got = await store.acquire_lease(self.node, self.lease_ttl_ms)
            except Exception as exc:  # stopped meanwhile (store closed), or a passing lock: retry
                if self._state != _STARTING:
                    return False
                log.warning("fastcron: cannot take the lease on %r yet: %s", store, exc)
                got = False
            if got:
                self.is_leader = True
                if announced:
                    log.info("fastcron: took over the scheduler lease on %r", store)
                return self._state == _STARTING
            if not announced:
                log.info("fastcron: another scheduler holds %r; standing by", store)
                announced = True
            await asyncio.sleep(min(self.poll_s, self.lease_ttl_ms / 3000))
        return False

    async def _prepare_store(self) -> dict[str, JobState]:
        """Load dynamic jobs, reconcile code jobs, mark orphaned runs interrupted, load job states."""
        from fastcron.stores.base import job_def

        store = self.store
        for record in await store.list_jobs():
            if record.kind == "dynamic" and record.name not in self._by_name:
                self._add_dynamic(record)
        now = self.clock.now_ms()
        code = [job_def(slot.job, now) for slot in self._by_name.values() if slot.job.name not in self._dynamic]
        await store.sync_jobs(code)
        interrupted = await store.recover_interrupted()
        if interrupted:
            log.warning("fastcron: %d run(s) were left running by a process that ended: marked interrupted", interrupted)
        return dict(await store.load_job_states())

    def _add_dynamic(self, record: Any) -> None:
        from fastcron._dynamic import make_dynamic_job

        try:
            job = make_dynamic_job(record)
        except Exception as exc:  # a stored target that no longer imports must not stop the rest
            log.error("fastcron: dynamic job %r cannot be loaded: %s", record.name, exc)
            return
        self._dynamic.add(job.name)
        if job.name in self.registry:
            self.registry.replace(job)
        else:
            self.registry.add(job)

    async def _control_loop(self) -> None:
        """Renew the lease, apply changes made from outside (the CLI), prune old history."""
        store = self.store
        next_prune = 0.0
        while self._state == _RUNNING:
            await asyncio.sleep(self.poll_s)
            try:
                if not await store.acquire_lease(self.node, self.lease_ttl_ms):
                    log.error("fastcron: another scheduler took the lease on %r; stopping", store)
                    self.is_leader = False
                    assert self._loop is not None
                    self._loop.create_task(self.stop())
                    return
                for command in await store.take_commands():
                    await self._apply_command(command)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                    await self.prune_history()
            except Exception:
                log.exception("fastcron: polling %r failed; retrying", store)

    async def prune_history(self, *, dry_run: bool = False) -> int:
        """Delete runs older than ``history_retention_days`` or beyond ``history_per_job`` per job."""
        cutoff = time.time_ns() // 1_000_000 - round(self.history_retention_days * 86_400_000)
        return await self.store.prune(cutoff, self.history_per_job, dry_run=dry_run)

    async def _apply_command(self, command: Command) -> None:
        action, name = command.action, command.job
        try:
            if action in ("pause", "resume", "enable", "disable"):
                getattr(self, action)(name)
            elif action == "run":
                if not self._cluster:  # in a cluster the command made a fire, which one node claims
                    assert self._loop is not None
                    self._loop.create_task(self._run_quietly(name))
            elif action == "add":
                for record in await self.store.list_jobs():
                    if record.name == name and record.kind == "dynamic":
                        self._add_dynamic(record)
            elif action == "resync":  # the store lost its notifications for a while: reread
                await self._resync()
            elif action == "remove":
                if name in self._dynamic and self._cluster:
                    self._dynamic.discard(name)  # every node hears it; the store is already clean
                    self.remove(name)
                elif name in self._dynamic:
                    await self.remove_dynamic(name)  # also drops runs recorded since the CLI deleted it
            else:
                log.warning("fastcron: unknown command %r for job %r", action, name)
        except JobLookupError:
            log.warning("fastcron: command %r: no job named %r in this scheduler", action, name)

    # ------------------------------------------------------------------ cluster (PostgreSQL)

    async def _join_cluster(self, loop: asyncio.AbstractEventLoop) -> None:
        store: Any = self.store
        wakeup = self._cluster_wakeup = asyncio.Event()

        def heard(_command: Any) -> None:  # from the store's listener thread
            loop.call_soon_threadsafe(wakeup.set)

        store.on_notify = heard
        await store.register_node(self.node, os.getpid())
        self._cluster_task = loop.create_task(self._cluster_loop(), name="fastcron-cluster")

    async def _cluster_loop(self) -> None:
        """Make and take fires through the store, on the store's clock.

        Each round: claim due fires up to this node's free capacity (at most a fair share; the
        claim commits the attempt as running) and start them, then generate the fires of the
        coming second (every node may; the store's unique fire key makes each exist once), then
        sleep until the store says the next thing is due, at most CLUSTER_POLL_S, or until a
        notification (run now, pause...). A node that was reaped re-registers before claiming.
        """
        store: Any = self.store
        wakeup = self._cluster_wakeup
        assert wakeup is not None
        failing = False
        while self._state == _RUNNING:
            delay = CLUSTER_POLL_S
            try:
                if store.reaped:
                    log.warning("fastcron: node %s was reaped (presumed dead); registering again", self.node)
                    await store.register_node(self.node, os.getpid())
                # Claim before generating: what is due now starts first; fires are generated a
                # second ahead of their instant, so the generation that follows is for later.
                store.set_running(self._total)
                claims = await store.claim(self.node, self.max_concurrency - self._total)
                if claims:
                    self._db_offset_ms = claims[0].started_ms - self.clock.now_ms()
                    for claim in claims:
                        self._start_claim(claim)
                generated = await store.generate_fires(self._fire_rule)
                if claims or generated:
                    delay = CLUSTER_AGAIN_S  # more may be due than this node's share: look again soon
                else:
                    now, earliest = await store.next_due()
                    if earliest is not None:
                        delay = min(CLUSTER_POLL_S, max(CLUSTER_AGAIN_S, (earliest - now) / 1000))
                if failing:
                    log.info("fastcron: the store %r is reachable again", store)
                    failing = False
            except Exception as exc:  # the database restarting, a network blip: keep trying
                if not failing:
                    log.error("fastcron: cluster round on %r failed (%s); retrying", store, exc)
                    failing = True
                delay = CLUSTER_POLL_S
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), delay)
            except TimeoutError:
                pass

    def _fire_rule(self, name: str, index: int) -> Any:
        """What the store needs to turn a schedule's instants into fires, from this node's code."""
        slot = self._by_name.get(name)
        if slot is None or not 0 <= index < len(slot.job.schedules):
            return None
        opts = slot.job.opts
        return _FireRule(slot.job.schedules[index].trigger, opts.misfire_grace_ms, opts.catchup, opts.retries + 1)

    def _start_claim(self, claim: Any) -> None:
        slot = self._by_name.get(claim.job)
        index = claim.schedule_index
        if slot is None or (index is not None and not 0 <= index < len(slot.job.schedules)):
            # Another node's code has this job; hand the fire back for one of them.
            job_name = claim.job
            run = Run(slot, self._unknown_job(job_name), next(self._seq), claim.scheduled_ms, claim.trigger, (), {})
            run.fire_id, run.attempt = claim.fire_id, claim.attempt
            run.retry_at_ms = self.clock.now_ms() + self._db_offset_ms + CLUSTER_UNKNOWN_RETRY_MS
            run.started_ms = run.finished_ms = self.clock.now_ms()
            run.status = "failed"
            run.error = JobLookupError(f"node {self.node} has no job {job_name!r} (schedule {index}) in its code")
            self._finished_buf.append(run)
            self._wake_store()
            return
        job = slot.job
        args, kwargs = ((), {}) if index is None else (job.schedules[index].args, job.schedules[index].kwargs)
        trigger: Trigger = "retry" if claim.attempt > 1 else claim.trigger
        run = Run(slot, job, next(self._seq), claim.scheduled_ms, trigger, args, kwargs)
        run.fire_id, run.attempt = claim.fire_id, claim.attempt
        if index is not None:
            slot.last_scheduled_ms = max(slot.last_scheduled_ms or 0, claim.scheduled_ms)
        self._start(run, True)

    def _unknown_job(self, name: str) -> Job:
        return make_job(_not_here, "manual", name=name)

    async def _resync(self) -> None:
        """Bring dynamic jobs and control state (pause, enable) in line with the store."""
        records = {record.name: record for record in await self.store.list_jobs()}
        for name in list(self._dynamic):
            if name not in records:
                self._dynamic.discard(name)
                self.remove(name)
        for record in records.values():
            if record.kind == "dynamic" and record.name not in self._by_name:
                self._add_dynamic(record)
        for name, state in (await self.store.load_job_states()).items():
            slot = self._by_name.get(name)
            if slot is None:
                continue
            enabled = slot.job.opts.enabled if state.enabled is None else state.enabled
            if (slot.paused, slot.enabled) != (state.paused, enabled):
                slot.paused, slot.enabled = state.paused, enabled
                self._update_armed(slot)

    async def _run_quietly(self, name: str) -> None:
        try:
            await self.run_job(name)
        except Exception:  # noqa: BLE001 - recorded with the run
            pass

    def _restore(self, slot: _Slot, saved: JobState | None, now: int) -> None:
        after = now
        if saved is not None:
            slot.paused = saved.paused
            if saved.enabled is not None:
                slot.enabled = saved.enabled
            slot.consecutive = saved.consecutive_failures
            if saved.cooldown_until_ms is not None and saved.cooldown_until_ms > now:
                self._start_cooldown_timer(slot, saved.cooldown_until_ms)
            if saved.last_scheduled_ms is not None and saved.last_scheduled_ms < now:
                after = saved.last_scheduled_ms
        self._update_armed(slot, after)

    # ------------------------------------------------------------------ the hot path

    def _arm_timer(self) -> None:
        if self._state != _RUNNING or self._cluster:  # a cluster's fires come from its store
            return
        deadline = self._wheel.next_deadline()
        cap = self.clock.max_sleep_ms
        if cap is not None:
            limit = self._last_now + cap
            if deadline is None or deadline > limit:
                deadline = limit
        if self._timer is not None:
            if deadline == self._timer_deadline:
                return
            self._timer.cancel()
        self._timer_deadline = deadline
        self._timer = None if deadline is None else self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        if self._state != _RUNNING:
            return
        now = self.clock.now_ms()
        if now < self._last_now:  # the wall clock stepped back; the wheel's time never does
            now = self._last_now
        self._last_now = now
        try:
            if self._bus.wanted or self._commit_first:
                # Listeners get their events from the general path; a durable store needs each
                # run committed before its function starts, which the core's eager start skips.
                fires = self._wheel.advance(now)
            else:
                budget = max(0, self.max_concurrency - self._total)
                # A tick of 10k fires makes 10k coroutines; a collection in the middle of
                # starting them would delay every later fire by a full-heap traversal.
                collecting = gc.isenabled()
                gc.disable()
                try:
                    done, suspended, failed, fires = self._wheel.advance_eager(
                        now, self._starts, self._running, self._slots, budget
                    )
                finally:
                    if collecting:
                        gc.enable()
                if done or suspended or failed:
                    self._in_tick = True
                    self._finish_eager(done, suspended, failed, now)
            if fires:
                self._in_tick = True
                self._dispatch(fires, now)
        except Exception:  # a bug of ours must not stop every later fire
            log.exception("fastcron: internal error while dispatching; continuing")
        finally:
            self._in_tick = False
            self._arm_timer()

    def _finish_eager(self, done: list[Any], suspended: list[Any], failed: list[Any], now: int) -> None:
        """Bookkeeping for the fires the core started itself (``Wheel.advance_eager``): every
        start of the tick came first, so the last fire of a big tick starts as early as it can;
        the runs are recorded here, with the tick's instant as their start."""
        eager_run = self._eager_run
        returned = self._settle_returned(done, now) if done else []
        if returned or suspended or failed:
            self._settle_started(
                [(eager_run(job_id, index, at, now), value) for job_id, index, at, value in returned],
                [(eager_run(job_id, index, at, now), coro, first) for job_id, index, at, coro, first in suspended],
                [(eager_run(job_id, index, at, now), error) for job_id, index, at, error in failed],
                now,
            )
        if not self._store_pending:
            self._wake_store()

    def _settle_returned(self, done: list[tuple[int, int, int, Any]], now: int) -> list[tuple[int, int, int, Any]]:
        """Record, in one pass, the runs the core started that returned a plain value at their
        first step: what ``_eager_run`` then ``_succeeded_now`` do, without counting each one in
        and out of ``running`` (it never ran beside anything). At 100k fires a second this loop
        is most of the scheduler's own work. Returns the fires whose value needs the general
        path (a value ``check_result`` must look at).

        Such a run started at ``now`` (the tick) and finished before the clock read here: its
        duration is measured to the end of the tick's starts, an upper bound.
        """
        finished_ms = self.clock.now_ms()
        slots = self._slots
        core_run = self._core_run
        count_success = self._count_success
        finished = self._finished_buf
        general: list[tuple[int, int, int, Any]] = []
        drain = False
        for fire in done:
            job_id, index, at, value = fire
            slot = slots[job_id]
            if slot is None:  # removed by a job that ran before it in this tick: nothing to file under
                continue
            if type(value) not in _JSON_FAST:
                general.append(fire)
                continue
            run = core_run(slot, index, at, now)
            run.finished_ms = finished_ms
            run.status = "succeeded"
            run.result = value
            finished.append(run)
            count_success(slot, now, finished_ms)
            if slot.queue:
                self._drain_slots.append(slot)
                drain = True
        if drain or self._global_queue:
            self._drain()
        return general

    def _settle_started(
        self,
        done: list[tuple[Run, Any]],
        suspended: list[tuple[Run, Any, Any]],
        failed: list[tuple[Run, BaseException]],
        now: int,
    ) -> None:
        """File what became of runs the core started (``advance_eager``, ``start_coroutines``):
        finished, failed, or suspended (then a Task resumes them)."""
        interrupt: BaseException | None = None
        for run, value in done:
            if type(value) in _JSON_FAST:
                self._succeeded_now(run, value)
            else:
                self._attempt_done(run, value, None)
        for run, error in failed:
            self._attempt_done(run, None, error)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                interrupt = error
        loop = self._loop
        assert loop is not None, "runs start only on a scheduler's loop"
        for run, coro, first in suspended:
            self._track(run, resume_in_task(loop, coro, first, contextvars.copy_context()), now)
        if interrupt is not None:
            raise interrupt

    def _eager_run(self, job_id: int, index: int, scheduled_ms: int, now: int) -> Run:
        """The run of a fire the core started: counted as running until its outcome is filed."""
        slot = self._slots[job_id]
        assert slot is not None, f"the core started job {job_id}, which has no slot"
        run = self._core_run(slot, index, scheduled_ms, now)
        run.status = "running"
        self._running[job_id] += 1
        self._total += 1
        return run

    def _core_run(self, slot: _Slot, index: int, scheduled_ms: int, now: int) -> Run:
        """The run of a fire the core started at ``now``, recorded as started."""
        slot.last_scheduled_ms = scheduled_ms
        job = slot.job
        bound = job.schedules[index]
        run = Run(slot, job, next(self._seq), scheduled_ms, "schedule", bound.args, bound.kwargs)
        run.started_ms = now
        self._started_buf.append(run)
        return run

    def _dispatch(self, fires: list[tuple[int, int, int, bool]], now: int) -> None:
        """Run the fires the core left for Python: those of jobs that are not simple async jobs,
        or that are late, over a concurrency limit, or watched by event listeners."""
        slots = self._slots
        fire = self._fire
        started = self._started_buf
        late: dict[tuple[int, int], list[Any]] | None = None
        for job_id, index, scheduled_ms, truncated in fires:
            slot = slots[job_id]
            if slot is None or not slot.armed:
                continue
            job = slot.job
            opts = job.opts
            slot.last_scheduled_ms = scheduled_ms
            if now - scheduled_ms <= opts.misfire_grace_ms:
                if late is not None and (job_id, index) in late:
                    late[(job_id, index)][1] = True
                if opts.jitter_ms:
                    self._fire_jittered(slot, index, scheduled_ms, now)
                else:
                    fire(slot, index, scheduled_ms, "schedule", None)
            elif opts.catchup == "all":
                fire(slot, index, scheduled_ms, "catch-up", None)
            else:
                if late is None:
                    late = {}
                entry = late.get((job_id, index))
                if entry is None:
                    late[(job_id, index)] = entry = [[], False, False]
                entry[0].append(scheduled_ms)
                entry[2] = entry[2] or truncated
        if started and not self._store_pending:
            self._wake_store()
        if late:
            self._handle_late(late)

    def _handle_late(self, late: dict[tuple[int, int], list[Any]]) -> None:
        """Late fires of one (job, schedule): ``latest`` runs the newest unless an on-time fire
        of the same schedule ran in this tick; everything not run is recorded as missed."""
        for (job_id, index), (instants, on_time_ran, truncated) in late.items():
            slot = self._slots[job_id]
            if slot is None:
                continue
            missed = instants
            if slot.job.opts.catchup == "latest" and not on_time_ran:
                missed = instants[:-1]
                self._fire(slot, index, instants[-1], "catch-up", None)
            for scheduled_ms in missed:
                run = self._new_run(slot, index, scheduled_ms, "schedule", None)
                detail: dict[str, Any] = {
                    "misfire_grace": format_ms(slot.job.opts.misfire_grace_ms),
                    "catchup": slot.job.opts.catchup,
                }
                if truncated:
                    detail["truncated"] = True
                self._end_unstarted(run, "missed", detail)

    def _fire_jittered(self, slot: _Slot, index: int, scheduled_ms: int, now: int) -> None:
        delay = self._rng.randint(0, slot.job.opts.jitter_ms)
        holder: list[Any] = []

        def go() -> None:
            self._pending_timers.discard(holder[0])
            if self._state == _RUNNING and slot.armed:
                self._fire(slot, index, scheduled_ms, "schedule", None)

        holder.append(self.clock.call_at(now + delay, go))
        self._pending_timers.add(holder[0])

    def _new_run(self, slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, tenant: Any) -> Run:
        bound = slot.job.schedules[index]
        return Run(slot, slot.job, next(self._seq), scheduled_ms, trigger, bound.args, bound.kwargs, tenant)

    def _fire(self, slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, sink: list[Any] | None) -> None:
        """Turn one fire into run(s) and admit them; ``sink`` (run_due) collects what was made."""
        job = slot.job
        if job.opts.tenants is not None:
            self._fire_tenants(slot, index, scheduled_ms, trigger, sink)
            return
        bound = job.schedules[index]
        run = Run(slot, job, next(self._seq), scheduled_ms, trigger, bound.args, bound.kwargs)
        if sink is not None:
            sink.append(run)
        if slot.running < job.opts.max_concurrency and self._total < self.max_concurrency:
            self._start(run, True)  # the common case, without _admit's policy checks
        else:
            self._admit(run)

    def _fire_tenants(
        self, slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, sink: list[Any] | None
    ) -> None:
        try:
            ids = slot.job.opts.tenants()  # type: ignore[misc]
        except Exception as exc:
            self._tenants_failed(slot, index, scheduled_ms, trigger, exc, sink)
            return
        if inspect.isawaitable(ids):
            task = asyncio.ensure_future(self._await_tenants(ids, slot, index, scheduled_ms, trigger, sink))
            if sink is not None:
                sink.append(task)
            return
        self._fire_for_tenants(slot, index, scheduled_ms, trigger, ids, sink)

    async def _await_tenants(
        self, ids: Awaitable[Any], slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, sink: list[Any] | None
    ) -> None:
        try:
            resolved = await ids
        except Exception as exc:
            self._tenants_failed(slot, index, scheduled_ms, trigger, exc, sink)
            return
        self._fire_for_tenants(slot, index, scheduled_ms, trigger, resolved, sink)

    def _fire_for_tenants(
        self, slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, ids: Any, sink: list[Any] | None
    ) -> None:
        try:
            tenants = list(dict.fromkeys(ids))  # dedupe, keep order; ids must be hashable
        except TypeError as exc:
            self._tenants_failed(slot, index, scheduled_ms, trigger, exc, sink)
            return
        for tenant in tenants:
            run = self._new_run(slot, index, scheduled_ms, trigger, tenant)
            if sink is not None:
                sink.append(run)
            self._admit(run)

    def _tenants_failed(
        self, slot: _Slot, index: int, scheduled_ms: int, trigger: Trigger, exc: BaseException, sink: list[Any] | None
    ) -> None:
        run = self._new_run(slot, index, scheduled_ms, trigger, None)
        if sink is not None:
            sink.append(run)
        error = RuntimeError(f"job {slot.job.name!r}: tenants() failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        run.started_ms = self.clock.now_ms()
        self._count_outcome(slot, run, "failed")
        self._end_unstarted(run, "failed", None, error)

    def _admit(self, run: Run) -> None:
        """Start ``run`` unless its job (overlap policy) or the scheduler (max_concurrency) is full."""
        slot: _Slot = run._state
        job = run.job
        if slot.busy(run.tenant) >= job.opts.max_concurrency:
            policy = job.opts.overlap
            if policy == "skip" and run.trigger == "catch-up":
                policy = "queue"  # catchup="all" asked for every late fire: they wait their turn
            if policy == "skip":
                self._end_unstarted(run, "skipped", {"overlap": "skip", "running": slot.busy(run.tenant)})
                return
            if policy == "queue":
                queue = slot.queue
                if queue is None:
                    queue = slot.queue = deque()
                if len(queue) >= MAX_QUEUED_PER_JOB:
                    self._end_unstarted(run, "skipped", {"overlap": "queue", "queued": len(queue)})
                    return
                run.status = "queued"
                queue.append(run)
                return
            # "replace": cancel the oldest run holding this key's slot, then start this one.
            self._replace_oldest(slot, run.tenant)
        if self._total >= self.max_concurrency:
            run.status = "queued"
            self._global_queue.append(run)
            return
        self._start(run, True)

    def _replace_oldest(self, slot: _Slot, tenant: Any) -> None:
        for old in list(slot.active or ()):
            if old.tenant == tenant and old.status in ("running", "retrying"):
                old._cancel_reason = "replaced"
                task = old._task
                self._abandon(old, "replaced")
                if isinstance(task, asyncio.Task):
                    task.cancel()
                return

    def _start(self, run: Run, acquire: bool) -> None:
        slot: _Slot = run._state
        job = run.job
        if acquire:
            if run.tenant is None:
                self._running[slot.id] += 1
            else:
                counts = slot.tenant_running
                if counts is None:
                    counts = slot.tenant_running = {}
                counts[run.tenant] = counts.get(run.tenant, 0) + 1
            self._total += 1
        now = self.clock.now_ms()
        run.started_ms = now
        run.status = "running"
        if run.fire_id is not None:  # the claim committed it as running
            if "started" in self._bus.wanted:
                self._emit_run("started", run)
            self._launch(run, now)
            return
        self._started_buf.append(run)
        if "started" in self._bus.wanted:
            self._emit_run("started", run)
        if self._commit_first:
            self._launch_buf.append(run)
            if not self._store_pending:
                self._wake_store()
            return
        if not self._store_pending:
            self._wake_store()
        self._launch(run, now)

    def _launch(self, run: Run, now: int) -> None:
        """Call the run's function: on the loop (async) or in the thread pool (def)."""
        job = run.job
        kwargs = run.kwargs
        info = job.info
        if info.ctx_param is not None:
            kwargs = {**kwargs, info.ctx_param: JobContext(run, self.clock)}
        if info.is_async:
            self._start_async(run, job, kwargs, now)
        else:
            self._start_thread(run, job, kwargs, now)

    def _start_async(self, run: Run, job: Job, kwargs: Any, now: int) -> None:
        try:
            coro = job.func(*run.args, **kwargs)
        except Exception as exc:  # the call itself failed (bad arguments...)
            self._attempt_done(run, None, exc)
            return
        loop = self._loop
        assert loop is not None
        if job.eager:
            context = contextvars.copy_context()
            try:
                first = context.run(coro.send, None)
            except StopIteration as stop:
                value = stop.value
                if type(value) in _JSON_FAST and run.tenant is None:
                    self._succeeded_now(run, value)
                else:
                    self._attempt_done(run, value, None)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - includes a job raising CancelledError itself
                self._attempt_done(run, None, exc)
                return
            task = resume_in_task(loop, coro, first, context)
        else:
            task = loop.create_task(coro)
        self._track(run, task, now)

    def _start_thread(self, run: Run, job: Job, kwargs: Any, now: int) -> None:
        assert self._loop is not None
        future = self._threads.submit(self._loop, job.func, run.args, kwargs)
        self._track(run, future, now)

    def _track(self, run: Run, task: asyncio.Future[Any], now: int) -> None:
        """Bookkeeping for a run that outlives its tick: done-callback, timeout, active sets."""
        run._task = task
        self._active.add(run)
        slot: _Slot = run._state
        if slot.active is None:
            slot.active = []
        slot.active.append(run)
        task.add_done_callback(functools.partial(self._task_done, run))
        timeout = run.job.opts.timeout_ms
        if timeout is not None:
            run._timer = self.clock.call_at(now + timeout, functools.partial(self._timed_out, run, task))

    def _untrack(self, run: Run) -> None:
        run._task = None
        self._active.discard(run)
        active = run._state.active
        if active is not None and run in active:
            active.remove(run)

    def _task_done(self, run: Run, task: asyncio.Future[Any]) -> None:
        if run._task is not task:
            return  # this attempt was already settled (timed-out thread, replaced, stopped)
        self._untrack(run)
        if task.cancelled():
            self._attempt_done(run, None, asyncio.CancelledError())
            return
        exc = task.exception()
        self._attempt_done(run, None if exc is not None else task.result(), exc)

    def _timed_out(self, run: Run, task: asyncio.Future[Any]) -> None:
        run._timer = None
        if run._task is not task:
            return
        run._timed_out = True
        if run._cancel_event is not None:
            run._cancel_event.set()
        if isinstance(task, asyncio.Task):
            task.cancel()  # settles through _task_done
        else:
            # A thread cannot be stopped: abandon it; its eventual result is ignored.
            self._untrack(run)
            self._attempt_done(run, None, None)

    def _abandon(self, run: Run, reason: str) -> None:
        """Settle a run as cancelled now, whatever its task still does."""
        run._cancel_reason = reason
        if run._cancel_event is not None:
            run._cancel_event.set()
        if run._timer is not None:
            run._timer.cancel()
            run._timer = None
        held = run.status == "retrying" or run._task is not None
        self._untrack(run)
        error = JobCancelledError(f"run {run.run_id} was cancelled ({reason})")
        if held:
            self._final(run, "cancelled", None, error)

    def _attempt_done(self, run: Run, result: Any, exc: BaseException | None) -> None:
        """One attempt ended: retry it, or settle the run."""
        if run._timer is not None:
            run._timer.cancel()
            run._timer = None
        job = run.job
        if run._timed_out:
            status = "timed_out"
            error: BaseException | None = JobTimeoutError(describe_timeout(job))
        elif run._cancel_reason is not None:
            status, error = "cancelled", JobCancelledError(f"run {run.run_id} was cancelled ({run._cancel_reason})")
        elif exc is None:
            status, error = "succeeded", None
            if type(result) not in _JSON_FAST:
                try:
                    result = check_result(result, job.name)
                except TypeError as bad:
                    status, error, result = "failed", bad, None
        else:
            status, error = "failed", exc
        if status in ("failed", "timed_out") and run.attempt <= job.opts.retries and self._state in (_RUNNING, _NEW):
            if run.fire_id is not None:  # the fire goes back to the store, for any node to retry
                run.retry_at_ms = self.clock.now_ms() + self._db_offset_ms + job.retry_delay_for(run.attempt)
            else:
                self._schedule_retry(run, error)
                return
        self._final(run, status, result, error)

    def _schedule_retry(self, run: Run, error: BaseException | None) -> None:
        job = run.job
        delay = job.retry_delay_for(run.attempt)
        if job.opts.retry_jitter:
            delay = int(delay * (1 - self._rng.random() * job.opts.retry_jitter))
        run.status = "retrying"
        run.error = error
        if "retrying" in self._bus.wanted:
            self._emit_run("retrying", run, error=error, detail={"delay": format_ms(delay), "next_attempt": run.attempt + 1})
        run.attempt += 1
        run.trigger = "retry"
        run._timed_out = False
        self._active.add(run)
        slot: _Slot = run._state
        if slot.active is None:
            slot.active = []
        slot.active.append(run)
        run._timer = self.clock.call_at(self.clock.now_ms() + delay, functools.partial(self._retry_now, run))

    def _retry_now(self, run: Run) -> None:
        run._timer = None
        if run.status != "retrying":
            return
        self._untrack(run)
        self._start(run, False)  # the slot was held through the wait

    def _final(self, run: Run, status: str, result: Any, error: BaseException | None) -> None:
        now = self.clock.now_ms()
        run.finished_ms = now
        run.status = status  # type: ignore[assignment]
        run.result = result
        run.error = error
        slot: _Slot = run._state
        self._count_outcome(slot, run, status)
        self._finished_buf.append(run)
        if not self._store_pending:
            self._wake_store()
        kind = "succeeded" if status == "succeeded" else ("timed_out" if status == "timed_out" else "failed")
        if kind in self._bus.wanted:
            self._emit_run(kind, run, error=error, result=result)
        if error is not None and log.isEnabledFor(logging.WARNING):
            log.warning("job %r run %s %s: %s: %s", run.job.name, run.run_id, status, type(error).__name__, error)
        waiter = run._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(run)
        self._release(run)
        if status in ("failed", "timed_out"):
            job = run.job
            if job.opts.cooldown_after and slot.consecutive % job.opts.cooldown_after == 0 and not slot.removed:
                self._enter_cooldown(slot, now)

    def _succeeded_now(self, run: Run, result: Any) -> None:
        """``_final`` for the hot case: an untenanted run that succeeded within its tick (no timer,
        no task, no retry). Same effects, fewer calls: this is most of a no-op job's cost."""
        now = self.clock.now_ms()
        run.finished_ms = now
        run.status = "succeeded"
        run.result = result
        slot: _Slot = run._state
        self._count_success(slot, run.started_ms, now)  # type: ignore[arg-type]
        self._finished_buf.append(run)
        if "succeeded" in self._bus.wanted:
            self._emit_run("succeeded", run, result=result)
        if run._waiter is not None and not run._waiter.done():
            run._waiter.set_result(run)
        self._running[slot.id] -= 1
        self._total -= 1
        if slot.queue or self._global_queue:
            if slot.queue:
                self._drain_slots.append(slot)
            self._drain()

    def _count_success(self, slot: _Slot, started_ms: int, finished_ms: int) -> None:
        slot.runs += 1
        if slot.consecutive:
            slot.consecutive = 0
            self._dirty[slot.job.name] = slot
        slot.last_run_ms = started_ms
        slot.last_status = "succeeded"
        slot.last_duration_ms = finished_ms - started_ms

    def _count_outcome(self, slot: _Slot, run: Run, status: str) -> None:
        slot.runs += 1
        if status == "succeeded":
            if slot.consecutive:
                slot.consecutive = 0
                self._dirty[slot.job.name] = slot
        elif status != "cancelled":  # replaced or stopped: not the job's failure
            slot.failures += 1
            slot.consecutive += 1
            self._dirty[slot.job.name] = slot
        slot.last_run_ms = run.started_ms
        slot.last_status = status
        if run.started_ms is not None and run.finished_ms is not None:
            slot.last_duration_ms = run.finished_ms - run.started_ms

    def _end_unstarted(
        self, run: Run, status: str, detail: dict[str, Any] | None, error: BaseException | None = None
    ) -> None:
        """Settle a run that never ran: skipped, missed, or failed before calling the job."""
        run.status = status  # type: ignore[assignment]
        run.finished_ms = self.clock.now_ms()
        run.error = error
        self._finished_buf.append(run)
        if not self._store_pending:
            self._wake_store()
        if status in self._bus.wanted:
            self._emit_run(status, run, error=error, detail=detail)
        waiter = run._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(run)

    def _release(self, run: Run) -> None:
        slot: _Slot = run._state
        if run.tenant is None:
            self._running[slot.id] -= 1
        else:
            counts = slot.tenant_running
            assert counts is not None
            left = counts[run.tenant] - 1
            if left:
                counts[run.tenant] = left
            else:
                del counts[run.tenant]
                if not counts:
                    slot.tenant_running = None
        self._total -= 1
        if slot.queue or self._global_queue:
            if slot.queue:
                self._drain_slots.append(slot)
            self._drain()

    def _drain(self) -> None:
        """Start queued runs that now fit. Iterative (not recursive): a queue of instant jobs
        would otherwise nest one call per run."""
        if self._draining or self._state not in (_RUNNING, _NEW):
            return
        self._draining = True
        try:
            while True:
                while self._drain_slots:
                    slot = self._drain_slots.pop()
                    run = self._next_queued(slot)
                    if run is not None:
                        self._admit(run)
                queue = self._global_queue
                while queue and self._total < self.max_concurrency:
                    self._admit(queue.popleft())
                if not self._drain_slots:
                    return
        finally:
            self._draining = False

    @staticmethod
    def _next_queued(slot: _Slot) -> Run | None:
        queue = slot.queue
        if not queue:
            return None
        limit = slot.job.opts.max_concurrency
        for i, run in enumerate(queue):
            if slot.busy(run.tenant) < limit:
                del queue[i]
                return run
        return None

    # ------------------------------------------------------------------ cooldown, arming

    def _enter_cooldown(self, slot: _Slot, now: int) -> None:
        until = now + slot.job.opts.cooldown_ms
        self._start_cooldown_timer(slot, until)
        self._dirty[slot.job.name] = slot
        if "cooldown" in self._bus.wanted:
            self._emit_job(
                "cooldown",
                slot,
                {"until": from_ms(until, slot.job.opts.tzinfo).isoformat(), "consecutive_failures": slot.consecutive},
            )
        log.warning(
            "job %r failed %d times in a row: cooling down for %s",
            slot.job.name,
            slot.consecutive,
            format_ms(slot.job.opts.cooldown_ms),
        )

    def _start_cooldown_timer(self, slot: _Slot, until: int) -> None:
        slot.cooldown_until_ms = until
        if slot.cooldown_timer is not None:
            slot.cooldown_timer.cancel()
        slot.cooldown_timer = self.clock.call_at(until, functools.partial(self._end_cooldown, slot))
        self._update_armed(slot)

    def _end_cooldown(self, slot: _Slot) -> None:
        slot.cooldown_timer = None
        if slot.cooldown_until_ms is None:
            return
        slot.cooldown_until_ms = None
        self._dirty[slot.job.name] = slot
        self._update_armed(slot)
        if "resumed" in self._bus.wanted:
            self._emit_job("resumed", slot, {"after": "cooldown"})

    def _update_armed(self, slot: _Slot, after_ms: int | None = None) -> None:
        """Put the job's schedules in the wheel or take them out, to match its state."""
        want = self._state == _RUNNING and slot.should_be_armed()
        if want == slot.armed:
            return
        if not want:
            slot.armed = False
            if self._wheel is not None:
                self._wheel.remove_job(slot.id)
            return
        after = max(self.clock.now_ms(), self._last_now) if after_ms is None else after_ms
        slot.armed = True
        self._timer_for(self._wheel.insert_jobs(slot.id, [slot.job.triggers], after))

    def _arm_new(self, slots: list[_Slot], after: int) -> int | None:
        """Arm new consecutive slots that are enabled and scheduled (a new slot is not paused,
        removed or cooling down), with one wheel call; return the earliest deadline armed."""
        triggers = [slot.job.triggers if slot.enabled else () for slot in slots]
        for slot, armed in zip(slots, triggers):
            if armed:
                slot.armed = True
        return self._wheel.insert_jobs(slots[0].id, triggers, after)

    def _timer_for(self, earliest: int | None) -> None:
        """Re-arm the loop timer if a new deadline comes before it (not mid-tick: the tick does)."""
        timer_at = self._timer_deadline
        if earliest is not None and not self._in_tick and (timer_at is None or earliest < timer_at):
            self._arm_timer()

    def _rearm(self, slot: _Slot) -> None:
        if slot.armed and self._wheel is not None:
            self._wheel.remove_job(slot.id)
            slot.armed = False
        self._update_armed(slot)

    # ------------------------------------------------------------------ registry sync

    def _add_slot(self, job: Job) -> _Slot:
        """``_add_slots`` for one job (``add`` at run time), without building batch lists."""
        slot = _Slot(len(self._slots), job, self._running)
        self._slots.append(slot)
        self._starts.append(job.core_start)
        self._running.append(0)
        self._by_name[job.name] = slot
        return slot

    def _add_slots(self, jobs: dict[str, Job]) -> list[_Slot]:
        """New slots, unarmed, for jobs by name (one add or a batch of 100k: this is most of it)."""
        running = self._running
        new = [_Slot(slot_id, job, running) for slot_id, job in enumerate(jobs.values(), len(self._slots))]
        self._slots.extend(new)
        self._starts.extend(map(_job_core_start, jobs.values()))
        running.extend(itertools.repeat(0, len(new)))
        self._by_name.update(zip(jobs, new))
        return new

    def _on_registry_added_many(self, jobs: dict[str, Job]) -> None:
        """``_on_registry_change("added", job)`` for a batch: the slots made and armed in one
        pass each, the wheel armed by one call, the timer re-armed once."""
        if self._state == _RUNNING and self.store.shared:
            self._new_defs.update((name, job) for name, job in jobs.items() if name not in self._dynamic)
            self._wake_store()
        new = self._add_slots(jobs)
        if self._state != _RUNNING:
            return
        self._timer_for(self._arm_new(new, max(self.clock.now_ms(), self._last_now)))

    def _on_registry_change(self, change: Change, job: Job) -> None:
        if change != "removed" and self._state == _RUNNING and self.store.shared and job.name not in self._dynamic:
            self._new_defs[job.name] = job  # a job added or redefined at run time gets its row
            self._wake_store()
        if change == "added":
            self._update_armed(self._add_slot(job))
            return
        slot = self._by_name.get(job.name)
        if slot is None:
            return
        if change == "replaced":
            slot.job = job
            self._starts[slot.id] = job.core_start
            self._rearm(slot)
            return
        del self._by_name[job.name]
        self._slots[slot.id] = None
        self._starts[slot.id] = None
        slot.removed = True
        if slot.cooldown_timer is not None:
            slot.cooldown_timer.cancel()
        self._update_armed(slot)
        for run in list(slot.queue or ()):
            self._end_unstarted(run, "skipped", {"reason": "job removed"})
        slot.queue = None

    def _slot(self, name: str) -> _Slot:
        slot = self._by_name.get(name)
        if slot is None:
            raise JobLookupError(self.registry._missing_message(name))
        return slot

    # ------------------------------------------------------------------ events and store

    def _emit_run(
        self,
        kind: str,
        run: Run,
        *,
        error: BaseException | None = None,
        result: Any = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        duration = None
        if run.finished_ms is not None and run.started_ms is not None and kind not in ("started", "retrying"):
            duration = run.finished_ms - run.started_ms
        self._bus.emit(
            Event(
                kind,
                run.job.name,
                self.clock.now_ms(),
                run_id=run.run_id,
                scheduled_ms=run.scheduled_ms,
                attempt=run.attempt,
                trigger=run.trigger,
                tenant=run.tenant,
                error=error,
                result=result,
                duration_ms=duration,
                detail=detail,
                tz=run.job.opts.tzinfo,
            )
        )

    def _emit_job(self, kind: str, slot: _Slot, detail: dict[str, Any] | None = None) -> None:
        self._bus.emit(Event(kind, slot.job.name, self.clock.now_ms(), detail=detail, tz=slot.job.opts.tzinfo))

    def _wake_store(self) -> None:
        self._store_pending = True
        if self._store_wakeup is not None:
            self._store_wakeup.set()
        elif self._launch_buf and not self._flush_spawned and self._loop is not None:
            # Not started (run_job, run_due, the CLI's run): no store loop to commit and launch.
            self._flush_spawned = True
            self._loop.create_task(self._flush_store())

    async def _store_loop(self) -> None:
        wakeup = self._store_wakeup
        assert wakeup is not None
        while True:
            await wakeup.wait()
            wakeup.clear()
            await self._flush_store()

    async def _flush_store(self) -> None:
        """Write what is buffered: started runs, finished runs, dirty job states, new job rows.

        Runs waiting for their commit (a durable store) are started once their batch is written,
        from a loop callback, outside this task. If that write fails they start anyway (the error
        is logged; their finish is still recorded): a broken disk must not stop jobs. Finishes go
        in chunks, and starts that arrive meanwhile are written first: a big tick's finishes must
        not hold up the next tick's starts.
        """
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            self._flush_spawned = False
            self._store_pending = False
            store = self.store
            await self._write_starts()
            finished = self._finished_buf
            while finished:
                chunk = finished[:FINISH_CHUNK]
                del finished[:FINISH_CHUNK]
                try:
                    await self._record_finished(chunk)
                except Exception as exc:
                    # Kept and retried: an outcome that is never written leaves its run (or, in a
                    # cluster, its fire) running in the store forever.
                    finished[:0] = chunk
                    self._store_failed(exc, f"{len(finished)} finished runs wait to be recorded")
                    break
                if self._store_failing:
                    log.info("store %r is writable again; pending runs recorded", store)
                    self._store_failing = False
                if self._started_buf:
                    await self._write_starts()
            dirty, self._dirty = self._dirty, {}
            new_defs, self._new_defs = self._new_defs, {}
            try:
                if dirty:
                    await store.save_job_states([self._job_state(slot) for slot in dirty.values()])
                if new_defs:
                    await self._save_new_defs(list(new_defs.values()))
            except Exception:
                log.exception("store %r failed to save job states", store)

    def _store_failed(self, exc: Exception, what: str) -> None:
        """Log a store failure once per outage (a StoreError is one line) and retry in a second."""
        if not self._store_failing:
            self._store_failing = True
            if isinstance(exc, StoreError):
                log.error("store %r failed: %s; %s, retrying", self.store, exc, what)
            else:
                log.exception("store %r failed; %s, retrying", self.store, what)
        if self._loop is not None and self._state != _STOPPED:
            self._loop.call_later(STORE_RETRY_S, self._wake_store)

    async def _record_finished(self, runs: list[Run]) -> None:
        claimed = [run for run in runs if run.fire_id is not None] if self._cluster else []
        if claimed:
            from fastcron.stores.postgres import outcome_of

            outcomes = [outcome_of(run, run.fire_id, run.attempt, run.retry_at_ms) for run in claimed]  # type: ignore[arg-type]
            fenced = await self.store.complete(self.node, outcomes)  # type: ignore[attr-defined]
            if fenced:
                log.warning(
                    "fastcron: %d result(s) discarded: their fires were reaped from this node "
                    "(it was presumed dead) and handed to another: fire ids %s",
                    len(fenced), ", ".join(map(str, fenced[:10])),
                )
            runs = [run for run in runs if run.fire_id is None]
        if runs:
            await self.store.record_finished(runs)

    async def _write_starts(self) -> None:
        started, self._started_buf = self._started_buf, []
        launch, self._launch_buf = self._launch_buf, []
        if started:
            try:
                await self.store.record_started(started)
            except StoreError as exc:  # they start anyway; their finishes are still written
                log.error("store %r failed: %s; %d runs start without a running row", self.store, exc, len(started))
            except Exception:
                log.exception("store %r failed; %d runs start without a running row", self.store, len(started))
        if launch:
            await self._launch_batch(launch)

    async def _launch_batch(self, runs: list[Run]) -> None:
        """Start committed runs from one loop callback (not from the store task: a job's first
        step must not run inside the scheduler's task) and return once all have been called."""
        loop = self._loop
        assert loop is not None
        called: asyncio.Future[None] = loop.create_future()

        def launch_all() -> None:
            try:
                now = self.clock.now_ms()  # timeouts count from the call, after the commit
                simple: list[Run] = []
                calls: list[tuple[Any, ...]] = []
                for run in runs:
                    if run.status != "running":
                        continue
                    job = run.job
                    if job.eager and job.info.ctx_param is None and run.tenant is None:
                        simple.append(run)
                        calls.append((job.func, run.args, run.kwargs))
                    else:
                        self._launch(run, now)
                if calls:  # the core calls and first-steps simple async jobs, as advance_eager does
                    done, suspended, failed = _core.start_coroutines(calls)
                    self._settle_started(
                        [(simple[i], value) for i, value in done],
                        [(simple[i], coro, first) for i, coro, first in suspended],
                        [(simple[i], error) for i, error in failed],
                        now,
                    )
            finally:
                called.set_result(None)

        loop.call_soon(launch_all)
        await called

    async def _save_new_defs(self, jobs: list[Job]) -> None:
        from fastcron.stores.base import job_def

        now = self.clock.now_ms()
        await self.store.sync_jobs([job_def(job, now) for job in jobs], partial=True)

    def _job_state(self, slot: _Slot) -> JobState:
        return JobState(
            name=slot.job.name,
            paused=slot.paused,
            enabled=None if slot.enabled == slot.job.opts.enabled else slot.enabled,
            consecutive_failures=slot.consecutive,
            cooldown_until_ms=slot.cooldown_until_ms,
            last_scheduled_ms=slot.last_scheduled_ms,
        )

    # ------------------------------------------------------------------ stopping helpers

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in list(self._pending_timers):
            handle.cancel()
        self._pending_timers.clear()
        for slot in self._slots:
            if slot is not None and slot.cooldown_timer is not None:
                slot.cooldown_timer.cancel()
                slot.cooldown_timer = None
        for run in list(self._active):
            if run.status == "retrying":
                self._abandon(run, "stopped")

    def _drop_queued(self) -> None:
        queued = list(self._global_queue)
        self._global_queue.clear()
        for slot in self._slots:
            if slot is not None and slot.queue:
                queued.extend(slot.queue)
                slot.queue = None
        for run in queued:
            self._end_unstarted(run, "skipped", {"reason": "scheduler stopped"})

    def _waiter(self, run: Run) -> asyncio.Future[Run]:
        if run._waiter is None:
            assert self._loop is not None
            run._waiter = self._loop.create_future()
            if run.status in FINAL:
                run._waiter.set_result(run)
        return run._waiter

    # ------------------------------------------------------------------ public control

    def on(
        self,
        kind: str | EventKind | Iterable[str | EventKind] | None,
        callback: Callable[[Event], Any],
        job: str | Iterable[str] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of ``kind`` (a kind, several, or "*"), only for
        ``job`` if given. Listener errors are logged, never raised. Returns an unsubscribe function."""
        return self._bus.on(kind, callback, job)

    def add_receiver(self, receiver: Receiver) -> Callable[[], None]:
        """Subscribe a receiver with its own kind/job filter; it is closed when the scheduler stops."""
        self._receivers.append(receiver)
        return self._bus.on(receiver.kinds, receiver, receiver.jobs)

    def add(self, func: Callable[..., Any] | Job, schedule: Any = None, /, **options: Any) -> Job:
        """Add a job at run time (``add(fn, "*/5 * * * *", retries=2)`` or ``add(job)``); it is armed at once."""
        job = func if isinstance(func, Job) else make_job(func, schedule, **options)
        self.registry.add(job)
        return job

    def add_many(self, func: Callable[..., Any], entries: Iterable[tuple[str, Any]], /, **options: Any) -> list[Job]:
        """Add many jobs of one function and one set of options at once: ``entries`` is
        ``(name, schedule)`` pairs. All or none are added (a bad entry or a duplicate name raises
        first). The fast way to register thousands of jobs (per-function and per-option work is
        done once, the loop timer re-armed once)."""
        # The cyclic GC is paused while the batch is built: the objects made hold no cycles, and
        # full collections over a heap growing by 100k jobs would otherwise cost about a third.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        self._in_tick, was = True, self._in_tick  # one timer re-arm at the end, not one per job
        try:
            jobs = make_jobs(func, entries, **options)
            self.registry.add_many(jobs)
        finally:
            self._in_tick = was
            if gc_was_enabled:
                gc.enable()
        if not was:
            self._arm_timer()
        return jobs

    async def add_dynamic(
        self,
        name: str,
        schedule: str | Iterable[str] | None = None,
        *,
        call: str | None = None,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        command: Iterable[str] | None = None,
        shell: bool = False,
        timeout: float | None = None,
        tz: str | None = None,
        description: str | None = None,
    ) -> Job:
        """Create a job that lives in the store (as ``fastcron add`` does): it runs ``call``
        ("pkg.mod:func" with JSON ``args``/``kwargs``) or ``command`` (an argv list, no shell unless
        ``shell=True``, killed after ``timeout`` seconds) on ``schedule`` (None: manual only).
        It is saved before it is armed, so it survives restarts and every process on the store
        sees it. ``ConfigError`` for a bad target or arguments, ``DuplicateJobError`` for a taken name."""
        import json

        from fastcron._dynamic import make_dynamic_job
        from fastcron.abc import DynamicTarget, JobDef

        if (call is None) == (command is None):
            raise ConfigError(f"dynamic job {name!r}: give exactly one of call= or command=")
        schedules = [schedule] if isinstance(schedule, str) else list(schedule or ())
        target = DynamicTarget(
            call=call, args=list(args), kwargs=dict(kwargs or {}),
            command=None if command is None else [str(part) for part in command], shell=shell, timeout=timeout,
        )
        try:
            json.dumps([target.args, target.kwargs])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"dynamic job {name!r}: args and kwargs must be JSON: {exc}") from None
        definition = JobDef(name=name, kind="dynamic", schedules=[s for s in schedules if s != "manual"],
                            tz=tz, description=description, target=target)
        job = make_dynamic_job(definition)  # validates before anything is stored
        if name in self._by_name:
            raise DuplicateJobError(f"job name {name!r} is taken (by {self._by_name[name].job.site}); remove it first")
        await self.store.save_dynamic(definition)
        self._dynamic.add(name)
        self.registry.add(job)
        return job

    async def remove_dynamic(self, name: str) -> None:
        """Delete a dynamic job from the store (with its history) and stop firing it."""
        if name not in self._dynamic:
            raise JobLookupError(f"no dynamic job named {name!r} in this scheduler")
        self._dynamic.discard(name)
        self.remove(name)
        await self._flush_store()  # its last runs are written before the job and history go
        await self.store.delete_job(name)

    def remove(self, name: str) -> Job:
        """Remove a job: it fires no more (running runs finish), queued fires are skipped."""
        self._slot(name)
        return self.registry.remove(name)

    def pause(self, name: str) -> None:
        """Stop firing ``name`` until ``resume()``; fires in between are not made up for."""
        slot = self._slot(name)
        if slot.paused:
            return
        slot.paused = True
        self._dirty[name] = slot
        self._update_armed(slot)
        if "paused" in self._bus.wanted:
            self._emit_job("paused", slot)

    def resume(self, name: str) -> None:
        """Undo ``pause()`` and end a cooldown early; the job fires from its next instant after now."""
        slot = self._slot(name)
        if not slot.paused and slot.cooldown_until_ms is None:
            return
        slot.paused = False
        if slot.cooldown_until_ms is not None:
            slot.cooldown_until_ms = None
            if slot.cooldown_timer is not None:
                slot.cooldown_timer.cancel()
                slot.cooldown_timer = None
        self._dirty[name] = slot
        self._update_armed(slot)
        if "resumed" in self._bus.wanted:
            self._emit_job("resumed", slot)

    def enable(self, name: str) -> None:
        """Let a disabled job fire again."""
        slot = self._slot(name)
        slot.enabled = True
        self._dirty[name] = slot
        self._update_armed(slot)

    def disable(self, name: str) -> None:
        """Stop a job from firing (its state reads "disabled") until ``enable()``."""
        slot = self._slot(name)
        slot.enabled = False
        self._dirty[name] = slot
        self._update_armed(slot)

    def reschedule(self, name: str, schedule: Any, *, tz: Any = _KEEP) -> Job:
        """Replace a job's schedules (same forms as ``@job``), and its zone if ``tz`` is given;
        it is re-armed from now. Other options stay as they were."""
        old = self._slot(name).job
        options = old.options()
        if tz is not _KEEP:
            options["tz"] = tz
        job = make_job(old.func, schedule, **options)
        self.registry.replace(job)
        return job

    def job(self, name: str) -> Job:
        """The current definition of ``name``."""
        return self._slot(name).job

    @property
    def jobs(self) -> list[Job]:
        return [slot.job for slot in self._by_name.values()]

    def next_runs(self, name: str, n: int = 5, *, after: datetime | float | None = None) -> list[datetime]:
        """The next ``n`` fire instants of ``name`` after ``after`` (default: now), merged across its
        schedules, as datetimes in the job's zone. Ignores pause and cooldown; empty for manual jobs."""
        slot = self._slot(name)
        start_ms = self.clock.now_ms() if after is None else to_ms(after, field="after")
        tz = slot.job.opts.tzinfo
        heads: list[tuple[int, int]] = []
        for index, bound in enumerate(slot.job.schedules):
            nxt = _next_ms(bound.trigger, start_ms)
            if nxt is not None:
                heads.append((nxt, index))
        out: list[datetime] = []
        while heads and len(out) < n:
            heads.sort()
            at, index = heads[0]
            if not out or out[-1] != from_ms(at, tz):
                out.append(from_ms(at, tz))
            nxt = _next_ms(slot.job.schedules[index].trigger, at)
            if nxt is None:
                heads.pop(0)
            else:
                heads[0] = (nxt, index)
        return out

    @overload
    def metrics(self) -> dict[str, JobMetrics]: ...

    @overload
    def metrics(self, name: str) -> JobMetrics: ...

    def metrics(self, name: str | None = None) -> JobMetrics | dict[str, JobMetrics]:
        """``JobMetrics`` for ``name``, or a dict of them for every job."""
        if name is not None:
            return self._metrics(self._slot(name))
        return {slot.job.name: self._metrics(slot) for slot in self._by_name.values()}

    def _metrics(self, slot: _Slot) -> JobMetrics:
        tz = slot.job.opts.tzinfo
        next_ms = None
        if slot.armed and self._wheel is not None:
            deadlines = [self._wheel.deadline_of(slot.id, i) for i in range(len(slot.job.schedules))]
            live = [d for d in deadlines if d is not None]
            next_ms = min(live) if live else None
        return JobMetrics(
            name=slot.job.name,
            runs=slot.runs,
            failures=slot.failures,
            consecutive_failures=slot.consecutive,
            last_run=None if slot.last_run_ms is None else from_ms(slot.last_run_ms, tz),
            last_status=slot.last_status,
            last_duration=None if slot.last_duration_ms is None else slot.last_duration_ms / 1000,
            state=slot.state_name(),
            next_run=None if next_ms is None else from_ms(next_ms, tz),
            running=slot.running + sum((slot.tenant_running or {}).values()),
        )

    # ------------------------------------------------------------------ running on demand

    async def run_due(self, at: datetime | float) -> list[Run]:
        """Run every fire due at instant ``at`` (aware datetime or Unix seconds) as the scheduler
        would (overlap, concurrency, tenants, retries, timeouts; not jitter) and return the runs
        once all are over. Works whether or not the scheduler was started."""
        at_ms = to_ms(at)
        self._check_usable()
        sink: list[Any] = []

        def fire_all() -> None:
            for slot in list(self._by_name.values()):
                if not slot.should_be_armed():
                    continue
                for index, bound in enumerate(slot.job.schedules):
                    if _next_ms(bound.trigger, at_ms - 1) == at_ms:
                        slot.last_scheduled_ms = at_ms
                        self._fire(slot, index, at_ms, "schedule", sink)

        await self._on_loop(fire_all)
        return await self._collect(sink)

    async def run_job(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run ``name`` once now, with these arguments (none given: the function's defaults), and
        return what it returned; raise what it raised (``JobTimeoutError`` on timeout). Retries
        and timeout apply; overlap does not. A tenant job runs once per tenant and returns
        ``{tenant: result}``."""
        slot = self._slot(name)
        self._check_usable()
        sink: list[Any] = []
        now = self.clock.now_ms()

        def start() -> None:
            if slot.job.opts.tenants is not None:
                # Reuse tenant resolution, then start each run directly (bypassing overlap).
                self._fire_manual_tenants(slot, now, args, kwargs, sink)
                return
            run = Run(slot, slot.job, next(self._seq), now, "manual", args, kwargs)
            sink.append(run)
            self._start(run, True)

        await self._on_loop(start)
        runs = await self._collect(sink)
        if slot.job.opts.tenants is not None:
            for run in runs:
                if run.status != "succeeded":
                    raise run.error or RuntimeError(f"run {run.run_id} {run.status}")
            return {run.tenant: run.result for run in runs}
        run = runs[0]
        if run.status != "succeeded":
            raise run.error or RuntimeError(f"run {run.run_id} {run.status}")
        return run.result

    def _fire_manual_tenants(
        self, slot: _Slot, now: int, args: tuple[Any, ...], kwargs: dict[str, Any], sink: list[Any]
    ) -> None:
        ids = slot.job.opts.tenants()  # type: ignore[misc]  # its error is run_job's error
        if inspect.isawaitable(ids):

            async def later() -> None:
                for tenant in list(dict.fromkeys(await ids)):
                    run = Run(slot, slot.job, next(self._seq), now, "manual", args, kwargs, tenant)
                    sink.append(run)
                    self._start(run, True)

            sink.append(asyncio.ensure_future(later()))
            return
        for tenant in list(dict.fromkeys(ids)):
            run = Run(slot, slot.job, next(self._seq), now, "manual", args, kwargs, tenant)
            sink.append(run)
            self._start(run, True)

    def _check_usable(self) -> None:
        if self._state in (_STOPPING, _STOPPED):
            raise SchedulerStateError(f"the scheduler is {self._state}")
        self._ensure_loop()

    async def _on_loop(self, func: Callable[[], None]) -> None:
        """Run ``func`` from a loop callback, outside any Task, as timer-driven dispatch does."""
        assert self._loop is not None
        done: asyncio.Future[None] = self._loop.create_future()

        def call() -> None:
            try:
                func()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                done.set_exception(exc)
            else:
                done.set_result(None)

        self._loop.call_soon(call)
        await done

    async def _collect(self, sink: list[Any]) -> list[Run]:
        """Wait until every run in ``sink`` (which may grow while tenants resolve) is over."""
        seen = 0
        while seen < len(sink):
            item = sink[seen]
            seen += 1
            if isinstance(item, Run):
                if item.status not in FINAL:
                    await self._waiter(item)
            else:
                await item
        self._bus.flush()
        if self._store_task is None:
            await self._flush_store()
        return [item for item in sink if isinstance(item, Run)]



@dataclass(frozen=True, slots=True)
class _FireRule:
    trigger: Any
    misfire_grace_ms: int
    catchup: str
    max_attempts: int


def _not_here() -> None:
    """Stands in for a job this node's code does not have (its claimed fire is handed back)."""


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {text!r}") from None


def _subscribe_weakly(registry: Registry, scheduler: Scheduler) -> Callable[[], None]:
    """Follow the registry without keeping the scheduler alive: a scheduler that was dropped
    without ``stop()`` (say, one used only for ``run_due`` in a test) unsubscribes itself."""
    ref = weakref.ref(scheduler)
    handle: list[Callable[[], None]] = []

    def observer(change: Change, job: Job) -> None:
        target = ref()
        if target is None:
            handle[0]()
        else:
            target._on_registry_change(change, job)

    def added_many(jobs: dict[str, Job]) -> None:
        target = ref()
        if target is None:
            handle[0]()
        else:
            target._on_registry_added_many(jobs)

    observer.added_many = added_many  # type: ignore[attr-defined]  # see Registry.add_many
    handle.append(registry.subscribe(observer))
    return handle[0]


def _next_ms(trigger: Any, after_ms: int) -> int | None:
    """The trigger's first instant strictly after ``after_ms`` (epoch ms). Triggers have second
    resolution, so that is the first fire after the whole second ``after_ms`` falls in."""
    nxt = trigger.next_after_ts(after_ms // 1000)
    return None if nxt is None else nxt * 1000


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` to completion on uvloop when available (unless ``FASTCRON_LOOP=asyncio``),
    else on the default asyncio loop."""
    if os.environ.get("FASTCRON_LOOP", "").lower() != "asyncio" and sys.platform != "win32":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)
    return asyncio.run(main)
