"""The in-memory store: the default when ``Scheduler(store=None)``. Nothing survives the process.

It keeps job states and a bounded history of finished runs (``history`` runs across all jobs, the
oldest dropped first), enough for tests and for ``Scheduler.metrics()``-style inspection.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from fastcron.abc import Command, JobDef, JobRecord, JobState, RunRecord, Store
from fastcron.stores.base import COUNTED, FAILED, finished_values

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
        self._jobs: dict[str, JobRecord] = {}
        self._commands: list[Command] = []
        self._lease: str | None = None

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
        for run in runs:
            record = self._jobs.get(run.job.name)
            if record is None or run.status not in COUNTED:
                continue
            record.run_count += 1
            record.failure_count += run.status in FAILED
            record.last_run_ms, record.last_status = run.started_ms, run.status
            record.last_error = None if run.error is None else f"{type(run.error).__name__}: {run.error}"
            if run.started_ms is not None and run.finished_ms is not None:
                record.last_duration_ms = run.finished_ms - run.started_ms

    def runs(self, job: str | None = None) -> list[Run]:
        """Finished runs kept in history, oldest first, optionally of one job."""
        if job is None:
            return list(self._finished)
        return [run for run in self._finished if run.job.name == job]

    # One process holds a memory store, so there is no one to elect, recover from or hear from
    # but itself: the lease is always granted, commands come from ``post_command`` in-process.

    async def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        if self._lease is None:
            self._lease = holder
        return self._lease == holder

    async def release_lease(self, holder: str) -> None:
        if self._lease == holder:
            self._lease = None

    async def sync_jobs(self, jobs: Sequence[JobDef], *, partial: bool = False) -> None:
        names = {job.name for job in jobs}
        for job in jobs:
            old = self._jobs.get(job.name)
            record = JobRecord(
                job.name, "code", list(job.schedules), job.tz, job.description, job.enabled, False, False,
                0, 0, None, None, None, None, job.next_run_ms, None,
            )
            if old is not None:
                state = self._states.get(job.name)
                if state is not None and (old.schedules != job.schedules or old.tz != job.tz):
                    state.last_scheduled_ms = None
                for attr in ("run_count", "failure_count", "last_run_ms", "last_status", "last_error", "last_duration_ms"):
                    setattr(record, attr, getattr(old, attr))
            self._jobs[job.name] = record
        for record in self._jobs.values():
            if not partial and record.kind == "code" and record.name not in names:
                record.orphaned = True

    async def recover_interrupted(self) -> int:
        return 0

    async def list_jobs(self) -> list[JobRecord]:
        out = []
        for name in sorted(self._jobs):
            record = replace(self._jobs[name])
            state = self._states.get(name)
            if state is not None:
                record.paused = state.paused
                record.enabled = record.enabled if state.enabled is None else state.enabled
                record.last_scheduled_ms = state.last_scheduled_ms
            out.append(record)
        return out

    async def history(self, job: str | None = None, status: str | None = None, limit: int = 20) -> list[RunRecord]:
        out: list[RunRecord] = []
        for run in reversed(self._finished):
            if (job is None or run.job.name == job) and (status is None or run.status == status):
                values = list(finished_values("", 0, run))
                (key, name, index, scheduled, started, attempt, trigger, node, pid,
                 finished, duration, run_status, error, tb, message, stats) = values
                out.append(RunRecord(
                    key, name, index, scheduled, started, finished, duration, run_status, attempt, trigger,
                    error, tb, message, None if stats is None else json.loads(stats), node, pid,
                ))
                if len(out) >= limit:
                    break
        return out

    async def set_control(self, name: str, *, enabled: bool | None = None, paused: bool | None = None) -> bool:
        if name not in self._jobs and name not in self._states:
            return False
        state = self._states.setdefault(name, JobState(name))
        if enabled is not None:
            state.enabled = enabled
        if paused is not None:
            state.paused = paused
        return True

    async def post_command(self, command: Command) -> None:
        self._commands.append(command)

    async def take_commands(self) -> list[Command]:
        out, self._commands = self._commands, []
        return out

    async def save_dynamic(self, job: JobDef) -> None:
        old = self._jobs.get(job.name)
        if old is not None and old.kind == "code":
            from fastcron.errors import StoreError

            raise StoreError(f"job {job.name!r} is defined in code; pick another name for a dynamic job")
        self._jobs[job.name] = JobRecord(
            job.name, "dynamic", list(job.schedules), job.tz, job.description, job.enabled, False, False,
            0, 0, None, None, None, None, job.next_run_ms, None, job.target,
        )

    async def delete_job(self, name: str) -> bool:
        record = self._jobs.get(name)
        if record is None or not (record.kind == "dynamic" or record.orphaned):
            return False
        del self._jobs[name]
        self._states.pop(name, None)
        self._finished = deque((r for r in self._finished if r.job.name != name), maxlen=self._finished.maxlen)
        return True

    async def prune(self, older_than_ms: int, per_job: int | None, *, dry_run: bool = False) -> int:
        keep: list[Run] = []
        seen: dict[str, int] = {}
        for run in reversed(self._finished):
            n = seen[run.job.name] = seen.get(run.job.name, 0) + 1
            at = run.finished_ms if run.finished_ms is not None else run.scheduled_ms
            if at >= older_than_ms and (per_job is None or n <= per_job):
                keep.append(run)
        dropped = len(self._finished) - len(keep)
        if not dry_run:
            self._finished = deque(reversed(keep), maxlen=self._finished.maxlen)
        return dropped
