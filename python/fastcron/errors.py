"""Every exception fastcron raises on purpose, rooted at :class:`FastcronError`.

Each class also subclasses the built-in exception a caller would reach for without knowing
fastcron (``ValueError`` for bad input, ``LookupError`` for unknown names), so ``except
ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CronError",
    "DuplicateJobError",
    "FastcronError",
    "JobCancelledError",
    "JobLookupError",
    "JobTimeoutError",
    "SchedulerStateError",
    "StoreError",
]


class FastcronError(Exception):
    """The root of fastcron's exceptions."""


class CronError(FastcronError, ValueError):
    """A schedule that cannot be parsed or can never fire.

    The message names the field, the offending token and its 1-based column, e.g.
    ``day-of-month: 32 is out of range 1-31 (column 9)``.
    """


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


class StoreError(FastcronError, RuntimeError):
    """The store cannot be used: the database is unreadable, locked, corrupt, or written by a newer
    fastcron. The message names the file and what to do."""
