"""Durations in job options ("10s", "5m", "1h30m", "250ms", numbers of seconds, timedeltas) as ms.

Everything the runtime times is held as an int of milliseconds; this is the one parser, so every
option reports a bad value the same way, naming the option.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from fastcron.errors import ConfigError

__all__ = ["DurationLike", "format_ms", "parse_duration"]

DurationLike = str | int | float | timedelta

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# One "<number><unit>" term; a duration is one or more terms, largest unit first by convention
# (not enforced: "90s" and "1m30s" mean the same).
_TERM = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(value: DurationLike, *, field: str) -> int:
    """Return ``value`` as a non-negative number of milliseconds.

    Strings take units ms, s, m, h, d, w ("1h30m", "1.5s"); bare numbers are seconds.
    Raises ``ConfigError`` naming ``field`` for anything else.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{field}: expected a duration like '10s' or '1h30m', got {value!r}")
    if isinstance(value, timedelta):
        ms = value / timedelta(milliseconds=1)
    elif isinstance(value, (int, float)):
        ms = value * 1000
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not _WHOLE.fullmatch(text):
            raise ConfigError(
                f"{field}: cannot read duration {value!r}: expected numbers with units "
                "ms, s, m, h, d or w, like '10s', '5m' or '1h30m'"
            )
        ms = sum(float(n) * _UNIT_MS[unit] for n, unit in _TERM.findall(text))
    else:
        raise ConfigError(f"{field}: expected a duration like '10s' or '1h30m', got {value!r}")
    if math.isnan(ms) or math.isinf(ms) or ms < 0:
        raise ConfigError(f"{field}: duration must be finite and not negative, got {value!r}")
    return round(ms)


def format_ms(ms: int) -> str:
    """Render milliseconds the way options are written ("1h30m", "250ms"), for messages."""
    if ms == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = _UNIT_MS[unit]
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)
