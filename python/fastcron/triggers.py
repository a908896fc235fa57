"""When jobs fire: the schedule kinds of the core and :func:`parse_schedule`.

``Cron``, ``Interval`` and ``Once`` are implemented in Rust (``fastcron._core``); they share the
base class ``Trigger`` and its methods (``next_after``, ``prev_before``, ``next_after_ts``, ...).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from fastcron._core import Cron, Interval, Once, Trigger
from fastcron.errors import CronError

__all__ = ["Cron", "Interval", "Once", "Trigger", "parse_schedule"]

# Digits and units only, no blanks: "90s", "1h30m". A cron expression always has blanks.
_INTERVAL = re.compile(r"^\s*(\d+[smhdwSMHDW])+\s*$")


def parse_schedule(text: str, tz: str | tzinfo | None = None) -> Trigger:
    """The schedule ``text`` describes: a cron expression or macro (``Cron``), a duration such as
    ``"90s"`` or ``"1h30m"`` (``Interval``), or an ISO-8601 datetime (``Once``; a naive one is a
    wall time in ``tz``). Raises :class:`CronError` naming what is wrong otherwise.
    """
    if not isinstance(text, str):
        raise TypeError(f"a schedule is written as a str, not {type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith("@") or len(stripped.split()) > 1:
        return Cron(stripped, tz)
    if _INTERVAL.match(stripped):
        return Interval(stripped, tz=tz)
    try:
        # Python 3.11's fromisoformat reads "Z" itself; nothing to rewrite.
        when = datetime.fromisoformat(stripped)
    except ValueError:
        raise CronError(
            f"{text!r} is not a schedule: expected a cron expression (5 or 6 fields), a macro such "
            "as @daily, a duration such as 90s or 1h30m, or an ISO-8601 datetime"
        ) from None
    return Once(when, tz)
