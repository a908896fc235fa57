"""Contracts between the scheduler and what it plugs into.

``Store`` is what the scheduler calls to persist runs and job state. The scheduler batches: one
``record_started`` per tick with every run that started in it, ``record_finished`` with runs that
ended since the last call, ``save_job_states`` when a job's control state changes. Calls are
awaited one at a time from a single background task, never from the dispatch path, so a slow
store delays persistence, not fires. An exception from a store method is logged and the batch is
dropped; the scheduler keeps running.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from fastcron.job import Run

__all__ = ["JobState", "Store"]


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


class Store(ABC):
    """Persistence for runs and job state. Implementations: ``stores.memory.MemoryStore`` (the
    default), later SQLite and PostgreSQL.

    Each implementation keeps a ``schema_version``; ``open`` must refuse data written by a newer
    schema with a clear error rather than misread it.
    """

    schema_version: ClassVar[int] = 1

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
