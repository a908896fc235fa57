"""The in-memory store: the default when ``Scheduler(store=None)``. Nothing survives the process.

It keeps job states and a bounded history of finished runs (``history`` runs across all jobs, the
oldest dropped first), enough for tests and for ``Scheduler.metrics()``-style inspection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from fastcron.abc import JobState, Store

if TYPE_CHECKING:
    from fastcron.job import Run

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Job states in a dict, the last ``history`` finished runs in a deque."""

    schema_version = 1

    def __init__(self, history: int = 1000) -> None:
        self._states: dict[str, JobState] = {}
        self._finished: deque[Run] = deque(maxlen=history)
        self.started_count = 0
        self.finished_count = 0
        self.batches = 0

    async def load_job_states(self) -> Mapping[str, JobState]:
        return {name: replace(state) for name, state in self._states.items()}

    async def save_job_states(self, states: Sequence[JobState]) -> None:
        for state in states:
            self._states[state.name] = replace(state)

    async def record_started(self, runs: Sequence[Run]) -> None:
        self.started_count += len(runs)
        self.batches += 1

    async def record_finished(self, runs: Sequence[Run]) -> None:
        self.finished_count += len(runs)
        self._finished.extend(runs)

    def runs(self, job: str | None = None) -> list[Run]:
        """Finished runs kept in history, oldest first, optionally of one job."""
        if job is None:
            return list(self._finished)
        return [run for run in self._finished if run.job.name == job]
