"""Contracts between the scheduler and what it plugs into.

``Store`` is what the scheduler calls to persist runs and job state. The scheduler batches: one
``record_started`` per tick with every run that started in it, ``record_finished`` with runs that
ended since the last call, ``save_job_states`` when a job's control state changes. Calls are
awaited one at a time from a single background task, never from the dispatch path, so a slow
store delays persistence, not fires. An exception from a store method is logged and the batch is
dropped; the scheduler keeps running.

Besides the run path, a store is shared with other processes: the command line reads jobs and
history and writes control changes (``set_control``, ``post_command``) while a scheduler runs, and
several schedulers on one store elect one (``acquire_lease``). Stores that live in one process
(``MemoryStore``) implement these trivially. Instants are epoch milliseconds throughout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from fastcron.job import Run

__all__ = ["Command", "DynamicTarget", "JobDef", "JobRecord", "JobState", "RunRecord", "Store"]


@dataclass(slots=True)
class JobState:
    """What survives a restart about one job (besides its run history).

    ``last_scheduled_ms`` is the newest scheduled instant that was handled (run, skipped or
    missed); on start the scheduler arms the job after it, so fires due while the process was down
    are reported late and the job's ``catchup`` policy decides about them.
    """

    name: str
    paused: bool = False
    enabled: bool | None = None  # None: as declared in code
    consecutive_failures: int = 0
    cooldown_until_ms: int | None = None
    last_scheduled_ms: int | None = None


@dataclass(slots=True)
class JobDef:
    """What the store keeps about a job's definition: from code (``kind="code"``, reconciled on
    start) or created at run time (``kind="dynamic"``, with its ``target``)."""

    name: str
    kind: str = "code"
    schedules: list[str] = field(default_factory=list)
    tz: str | None = None
    description: str | None = None
    enabled: bool = True
    next_run_ms: int | None = None
    target: DynamicTarget | None = None


@dataclass(slots=True)
class DynamicTarget:
    """What a dynamic job runs: ``call`` ("pkg.mod:func" with JSON ``args``/``kwargs``) or
    ``command`` (an argv list, run without a shell unless ``shell``), with a ``timeout`` in seconds."""

    call: str | None = None
    args: list[object] = field(default_factory=list)
    kwargs: dict[str, object] = field(default_factory=dict)
    command: list[str] | None = None
    shell: bool = False
    timeout: float | None = None


@dataclass(slots=True)
class JobRecord:
    """One job as the store sees it (for the command line): definition, control state, counters."""

    name: str
    kind: str
    schedules: list[str]
    tz: str | None
    description: str | None
    enabled: bool
    paused: bool
    orphaned: bool
    run_count: int
    failure_count: int
    last_run_ms: int | None
    last_status: str | None
    last_error: str | None
    last_duration_ms: int | None
    next_run_ms: int | None
    last_scheduled_ms: int | None
    target: DynamicTarget | None = None


@dataclass(slots=True)
class RunRecord:
    """One stored run. ``error`` is "Type: message", ``traceback`` the formatted traceback;
    ``message`` is the result's message (or why a run was skipped/missed), ``stats`` its counts."""

    id: str
    job: str
    schedule_index: int | None
    scheduled_ms: int | None
    started_ms: int | None
    finished_ms: int | None
    duration_ms: int | None
    status: str
    attempt: int
    trigger: str
    error: str | None
    traceback: str | None
    message: str | None
    stats: dict[str, object] | None
    node: str | None
    pid: int | None


@dataclass(slots=True)
class Command:
    """A change asked for from outside the scheduler process: ``action`` is pause, resume, enable,
    disable, run, add or remove, for job ``job``."""

    action: str
    job: str


class Store(ABC):
    """Persistence for runs and job state. Implementations: ``stores.memory.MemoryStore`` (the
    default), later SQLite and PostgreSQL.

    Each implementation keeps a ``schema_version``; ``open`` must refuse data written by a newer
    schema with a clear error rather than misread it.
    """

    schema_version: ClassVar[int] = 1
    shared: ClassVar[bool] = False
    """True if other processes may use the same data (the scheduler then polls it and keeps a lease)."""
    cluster: ClassVar[bool] = False
    """True if every scheduler on the store fires (no lease): fires are generated into the store
    and claimed from it (the PostgreSQL store's protocol: ``generate_fires``, ``claim``, ``complete``)."""
    durable: ClassVar[bool] = False
    """True if runs outlive the process: the scheduler then commits each run as running
    (``record_started``) before calling its function, so a crash never hides a run that began."""

    async def open(self) -> None:
        """Prepare for use (connect, create or check the schema). Called once by ``start()``."""

    async def close(self) -> None:
        """Release resources. Called once by ``stop()``, after the last batch was written."""

    @abstractmethod
    async def load_job_states(self) -> Mapping[str, JobState]:
        """Return the saved state of every job, by name (jobs that no longer exist are ignored)."""

    @abstractmethod
    async def save_job_states(self, states: Sequence[JobState]) -> None:
        """Insert or replace the state of each job in ``states``."""

    @abstractmethod
    async def record_started(self, runs: Sequence[Run]) -> None:
        """Record runs that started (or started another attempt) in one tick.

        A run may already have finished by the time this is called (fast jobs finish within
        their tick), and may appear again for a retry attempt: insert or update by ``run_id``.
        Read the fields you need before awaiting; the objects keep changing.
        """

    @abstractmethod
    async def record_finished(self, runs: Sequence[Run]) -> None:
        """Record runs that reached a final status (succeeded, failed, timed_out, cancelled,
        skipped, missed), with ``finished_ms``, ``result`` and ``error``; insert or update by ``run_id``."""

    # ---------------------------------------------------------------- start-up and election

    @abstractmethod
    async def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        """Take or renew the single scheduler lease for ``ttl_ms`` (from the store's own clock) and
        return True, unless another ``holder`` holds an unexpired lease: then return False. Atomic
        across processes sharing the store."""

    @abstractmethod
    async def release_lease(self, holder: str) -> None:
        """Give the lease up if ``holder`` holds it, so a standby takes over at once."""

    @abstractmethod
    async def sync_jobs(self, jobs: Sequence[JobDef], *, partial: bool = False) -> None:
        """Reconcile the code-defined jobs: insert new ones; update schedules, zone and description
        (a changed schedule or zone forgets the last scheduled instant, so nothing is caught up
        from the old schedule); mark stored code jobs absent from ``jobs`` orphaned (history kept)
        unless ``partial`` (jobs added at run time: only these are written). Control state
        (enabled override, paused) and counters are kept; dynamic jobs untouched."""

    @abstractmethod
    async def recover_interrupted(self) -> int:
        """Mark runs left ``running`` by a process that is gone as ``interrupted`` (finished now)
        and return how many. Runs of live processes (a CLI ``run`` in progress) are left alone."""

    # ---------------------------------------------------------------- the command line side

    @abstractmethod
    async def list_jobs(self) -> list[JobRecord]:
        """Every stored job (code, dynamic, orphaned), by name."""

    @abstractmethod
    async def history(self, job: str | None = None, status: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first, optionally of one job and/or one status."""

    @abstractmethod
    async def set_control(self, name: str, *, enabled: bool | None = None, paused: bool | None = None) -> bool:
        """Persist an enable/disable or pause/resume of ``name``; False if no such job is stored."""

    @abstractmethod
    async def post_command(self, command: Command) -> None:
        """Queue ``command`` for the running scheduler (it polls ``take_commands``)."""

    @abstractmethod
    async def take_commands(self) -> list[Command]:
        """Return queued commands, oldest first, and remove them (each is delivered once)."""

    @abstractmethod
    async def save_dynamic(self, job: JobDef) -> None:
        """Create or replace the dynamic job ``job`` (``kind="dynamic"``, ``target`` set)."""

    @abstractmethod
    async def delete_job(self, name: str) -> bool:
        """Delete a dynamic or orphaned job and its history; False if there is none such."""

    @abstractmethod
    async def prune(self, older_than_ms: int, per_job: int | None, *, dry_run: bool = False) -> int:
        """Delete finished runs that finished before ``older_than_ms`` or are beyond the newest
        ``per_job`` of their job; return how many were (or, with ``dry_run``, would be) deleted."""
