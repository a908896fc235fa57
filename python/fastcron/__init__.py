"""fastcron: background jobs on cron schedules, with a Rust core.

The public API is flat::

    from fastcron import job, Scheduler, Cron, CronError

Schedules (``Cron``, ``Interval``, ``Once``) come from the Rust core; jobs, the registry, the
scheduler, events and stores are Python.
"""

from __future__ import annotations

from fastcron._core import __version__
from fastcron.abc import JobState, Store
from fastcron.errors import (
    ConfigError,
    CronError,
    DuplicateJobError,
    FastcronError,
    JobCancelledError,
    JobLookupError,
    JobTimeoutError,
    SchedulerStateError,
    StoreError,
)
from fastcron.events import Event, EventKind, LoggingReceiver, Receiver, WebhookReceiver
from fastcron.job import Job, JobContext, JobResult, Run, Schedule, job, make_job, make_jobs
from fastcron.registry import Registry, default_registry, load_app
from fastcron.scheduler import JobMetrics, Scheduler
from fastcron.stores.memory import MemoryStore
from fastcron.stores.sqlite import SQLiteStore
from fastcron.triggers import Cron, Interval, Once, Trigger, parse_schedule

__all__ = [
    "ConfigError",
    "Cron",
    "CronError",
    "DuplicateJobError",
    "Event",
    "EventKind",
    "FastcronError",
    "Interval",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobLookupError",
    "JobMetrics",
    "JobResult",
    "JobState",
    "JobTimeoutError",
    "LoggingReceiver",
    "MemoryStore",
    "Once",
    "Receiver",
    "Registry",
    "Run",
    "SQLiteStore",
    "Schedule",
    "Scheduler",
    "SchedulerStateError",
    "Store",
    "StoreError",
    "Trigger",
    "WebhookReceiver",
    "__version__",
    "default_registry",
    "job",
    "load_app",
    "make_job",
    "make_jobs",
    "parse_schedule",
]
