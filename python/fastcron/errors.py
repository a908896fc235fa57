"""Every exception fastcron raises on purpose, rooted at :class:`FastcronError`.

Each class also subclasses the built-in exception a caller would reach for without knowing
fastcron (``ValueError`` for bad input, ``LookupError`` for unknown names), so ``except
ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["FastcronError", "CronError"]


class FastcronError(Exception):
    """The root of fastcron's exceptions."""


class CronError(FastcronError, ValueError):
    """A schedule that cannot be parsed or can never fire.

    The message names the field, the offending token and its 1-based column, e.g.
    ``day-of-month: 32 is out of range 1-31 (column 9)``.
    """
