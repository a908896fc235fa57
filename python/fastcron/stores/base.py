"""What every store shares: turning a ``Run`` into a row's values, a ``Job`` into a ``JobDef``,
and who this process is (node, pid). Stores differ only in where the values go."""

from __future__ import annotations

import json
import os
import socket
import traceback
from dataclasses import asdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from fastcron._durations import format_ms
from fastcron.abc import DynamicTarget, JobDef, JobRecord

if TYPE_CHECKING:
    from fastcron.job import Job, Run

__all__ = ["FINAL", "NODE", "finished_values", "job_def", "outcome_fields", "run_key", "started_fields", "started_values"]

NODE: Final = socket.gethostname()
FINAL: Final = frozenset({"succeeded", "failed", "timed_out", "cancelled", "skipped", "missed", "interrupted"})
COUNTED: Final = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
FAILED: Final = frozenset({"failed", "timed_out"})
TRACEBACK_LIMIT: Final = 20_000


def run_key(prefix: str, run: Run) -> str:
    """A run's id in the store: the writing process's prefix and the scheduler's sequence number."""
    return f"{prefix}{run.seq}"


def schedule_index(run: Run) -> int | None:
    """Which of its job's schedules a run came from (the first that fires at its instant)."""
    schedules = run.job.schedules
    if run.trigger == "manual" or not schedules:
        return None
    if len(schedules) == 1:
        return 0
    at_s = run.scheduled_ms // 1000
    for index, bound in enumerate(schedules):
        if bound.trigger.next_after_ts(at_s - 1) == at_s:
            return index
    return None


def started_values(prefix: str, pid: int, run: Run) -> tuple[Any, ...]:
    """(id, job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid)."""
    return (f"{prefix}{run.seq}", *started_fields(pid, run))


def started_fields(pid: int, run: Run) -> tuple[Any, ...]:
    """(job, schedule_index, scheduled_ms, started_ms, attempt, trigger, node, pid): a run's row
    without its id, for stores that number runs themselves."""
    return (
        run.job.name,
        schedule_index(run),
        run.scheduled_ms,
        run.started_ms,
        run.attempt,
        run.trigger,
        NODE,
        pid,
    )


def finished_values(prefix: str, pid: int, run: Run) -> tuple[Any, ...]:
    """``started_values`` + ``outcome_fields``."""
    return (*started_values(prefix, pid, run), *outcome_fields(run))


def outcome_fields(run: Run) -> tuple[Any, ...]:
    """(finished_ms, duration_ms, status, error, traceback, message, stats) of a finished run."""
    error = run.error
    error_text = tb = None
    if error is not None:
        error_text = f"{type(error).__name__}: {error}"
        if error.__traceback__ is not None:
            tb = "".join(traceback.format_exception(error))[-TRACEBACK_LIMIT:]
    message, stats = _result_parts(run)
    duration = None
    if run.started_ms is not None and run.finished_ms is not None:
        duration = run.finished_ms - run.started_ms
    return (run.finished_ms, duration, run.status, error_text, tb, message, stats)


def _result_parts(run: Run) -> tuple[str | None, str | None]:
    status = run.status
    if status == "missed":
        opts = run.job.opts
        return (f"late beyond misfire_grace {format_ms(opts.misfire_grace_ms)} (catchup={opts.catchup})", None)
    if status == "skipped":
        return (f"not started (overlap={run.job.opts.overlap}, or the scheduler was stopping)", None)
    result = run.result
    if result is None:
        return None, None
    to_dict = getattr(result, "to_dict", None)
    if to_dict is not None:  # JobResult
        data = to_dict()
        message = data.pop("message", None)
        stats = {k: v for k, v in data.items() if v is not None}
        return message, json.dumps(stats) if stats else None
    if isinstance(result, str):
        return result, None
    try:
        return None, json.dumps(result, default=repr)
    except (TypeError, ValueError):
        return repr(result), None


def job_def(job: Job, now_ms: int) -> JobDef:
    """The stored definition of a code-defined job, with its next fire after ``now_ms``."""
    schedules = [_describe(bound.trigger) for bound in job.schedules]
    next_run = None
    for bound in job.schedules:
        nxt = bound.trigger.next_after_ts(now_ms // 1000)
        if nxt is not None and (next_run is None or nxt * 1000 < next_run):
            next_run = nxt * 1000
    return JobDef(
        name=job.name,
        kind="code",
        schedules=schedules,
        tz=job.opts.tz,
        description=job.description,
        enabled=job.opts.enabled,
        next_run_ms=next_run,
    )


def _describe(trigger: Any) -> str:
    expr = getattr(trigger, "expr", None)
    return str(expr) if expr is not None else repr(trigger)


def target_to_json(target: DynamicTarget | None) -> str | None:
    return None if target is None else json.dumps(asdict(target))


def job_record(row: Sequence[Any]) -> JobRecord:
    """A ``JobRecord`` from a stored row in ``list_jobs`` column order; ``schedules`` may be JSON
    text (SQLite) or already a list (PostgreSQL's jsonb)."""
    (name, kind, schedules, tz, enabled, paused, description, orphaned, runs, failures, last_run, last_status,
     last_error, last_duration, next_run, last_scheduled, target) = row
    return JobRecord(
        name=name,
        kind=kind,
        schedules=json.loads(schedules) if isinstance(schedules, str) else list(schedules),
        tz=tz,
        description=description,
        enabled=bool(enabled),
        paused=bool(paused),
        orphaned=bool(orphaned),
        run_count=runs,
        failure_count=failures,
        last_run_ms=last_run,
        last_status=last_status,
        last_error=last_error,
        last_duration_ms=last_duration,
        next_run_ms=next_run,
        last_scheduled_ms=last_scheduled,
        target=target_from_json(target),
    )


def target_from_json(text: str | None) -> DynamicTarget | None:
    return None if not text else DynamicTarget(**json.loads(text))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
