"""Exceptions raised by the runtime (jobs, registry, scheduler).

They subclass the built-in that a caller would catch anyway (``LookupError`` for an unknown job,
``ValueError`` for bad options, ``TimeoutError`` for a timed-out run), and ``FastcronError`` so
``except FastcronError`` catches everything the library raises on purpose.
"""

from __future__ import annotations

from fastcron.errors import FastcronError

__all__ = [
    "ConfigError",
    "DuplicateJobError",
    "JobCancelledError",
    "JobLookupError",
    "JobTimeoutError",
    "SchedulerStateError",
]


class ConfigError(FastcronError, ValueError):
    """A job option, duration, time zone or app path is invalid; the message names the field."""


class DuplicateJobError(FastcronError, ValueError):
    """Two jobs were registered under one name; the message names both definition sites."""


class JobLookupError(FastcronError, LookupError):
    """No job has the given name."""


class JobTimeoutError(FastcronError, TimeoutError):
    """A run exceeded its job's ``timeout`` and was cancelled (async) or abandoned (thread)."""


class JobCancelledError(FastcronError, RuntimeError):
    """A run was cancelled: replaced by a newer fire (``overlap="replace"``) or by ``stop()``."""


class SchedulerStateError(FastcronError, RuntimeError):
    """The scheduler was used in a state that does not allow it (started twice, used after stop)."""
