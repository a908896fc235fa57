"""fastcron: background jobs on cron schedules, with a Rust core.

The public API is flat: ``from fastcron import Cron, CronError, parse_schedule``.
"""

from __future__ import annotations

from fastcron._core import __version__
from fastcron.errors import CronError, FastcronError
from fastcron.triggers import Cron, Interval, Once, Trigger, parse_schedule

__all__ = [
    "Cron",
    "CronError",
    "FastcronError",
    "Interval",
    "Once",
    "Trigger",
    "__version__",
    "parse_schedule",
]
