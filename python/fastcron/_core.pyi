"""Type stubs for the Rust core, ``fastcron._core``."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Self, final

from typing_extensions import disjoint_base

__all__ = ["Cron", "EagerJob", "FireIterator", "Interval", "Once", "Trigger", "Wheel", "__version__", "start_coroutines"]

__version__: str

_Instant = datetime | int | float
_Zone = str | tzinfo | None

@disjoint_base
class Trigger:
    """A schedule: when it fires. The base of ``Cron``, ``Interval`` and ``Once``.

    Instants given as datetimes may be aware in any zone; a naive datetime is a wall time in the
    schedule's zone (a repeated wall time is read per its ``fold``). Ints and floats are Unix
    seconds. Results are aware datetimes in the schedule's zone, with ``fold=1`` on the second
    pass of a repeated hour.
    """

    @property
    def tz(self) -> str:
        """The IANA name of the zone results are given in ("UTC" by default)."""
    @property
    def tzinfo(self) -> tzinfo:
        """The tzinfo results carry."""
    def next_after(self, dt: _Instant) -> datetime | None:
        """The first fire time strictly after ``dt``, or None if the schedule never fires again."""
    def prev_before(self, dt: _Instant) -> datetime | None:
        """The last fire time strictly before ``dt``, or None if there is none."""
    def matches(self, dt: _Instant) -> bool:
        """Whether the second that ``dt`` falls in is a fire time."""
    def next_n(self, dt: _Instant, n: int) -> list[datetime]:
        """The next ``n`` fire times after ``dt`` (fewer if the schedule ends)."""
    def iter_after(self, dt: _Instant) -> FireIterator:
        """Every fire time after ``dt``, lazily."""
    def next_after_ts(self, ts: int) -> int | None:
        """The first fire strictly after Unix second ``ts``, as Unix seconds, or None."""
    def prev_before_ts(self, ts: int) -> int | None:
        """The last fire strictly before Unix second ``ts``, as Unix seconds, or None."""
    def describe(self) -> str:
        """The schedule in plain English."""

@final
class FireIterator(Iterator[datetime]):
    def __iter__(self) -> FireIterator: ...
    def __next__(self) -> datetime: ...

@final
class Cron(Trigger):
    """A cron expression (5 fields, or 6 with seconds first) in an IANA time zone.

    Raises ``fastcron.CronError`` naming the field, token and column of any mistake, and for an
    expression that can never fire. See docs/cron.md for the dialect and the DST rule.
    """

    def __new__(cls, expr: str, tz: _Zone = None) -> Self: ...
    @property
    def expr(self) -> str:
        """The expression as given."""
    @property
    def has_seconds(self) -> bool:
        """Whether the expression has a seconds field."""
    def describe(self) -> str:
        """Plain English, e.g. "At 09:00, Monday through Friday"."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Interval(Trigger):
    """Every ``every`` ("90s", "5m", "2h", "1d", "1w", "1h30m"), on the grid ``start + k * period``.

    ``start`` defaults to the Unix epoch, so intervals keep their phase across restarts.
    """

    def __new__(cls, every: str, start: _Instant | None = None, tz: _Zone = None) -> Self: ...
    @property
    def period(self) -> int:
        """The period in seconds."""
    @property
    def anchor(self) -> int:
        """The grid's anchor, Unix seconds."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Once(Trigger):
    """A single instant (a naive datetime is a wall time in ``tz``)."""

    def __new__(cls, when: _Instant, tz: _Zone = None) -> Self: ...
    @property
    def at_ts(self) -> int:
        """The instant, Unix seconds."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Wheel:
    """A hierarchical timing wheel of armed schedules, millisecond resolution.

    It re-arms schedules itself, so ``advance`` costs Python work only for the fires it returns.
    """

    def __new__(cls, now_ms: int, catchup_limit: int = ...) -> Self:
        """Start the wheel at ``now_ms``; ``catchup_limit`` (default 1024) caps the missed
        instants one entry reports in one ``advance``."""
    def insert(self, job_id: int, schedule_index: int, schedule: Trigger, after_ms: int) -> int | None:
        """Arm at the schedule's first fire strictly after ``after_ms``; returns that deadline
        (ms), or None (and nothing is armed) if it never fires again. Replaces an existing entry."""
    def insert_jobs(self, first_job_id: int, schedules: list[Sequence[Trigger]], after_ms: int) -> int | None:
        """``insert`` for consecutive jobs, all after ``after_ms``: ``schedules[k]`` holds the
        schedules of job ``first_job_id + k``, each armed with its position as schedule index
        (empty: nothing armed). A rule shared by many jobs is evaluated once. Returns the earliest
        deadline armed, or None. All or nothing: an item that is not a schedule raises before any
        is armed."""
    def insert_at(self, job_id: int, schedule_index: int, schedule: Trigger, deadline_ms: int) -> None:
        """Arm at an explicit deadline; later re-arms follow the schedule."""
    def remove(self, job_id: int, schedule_index: int) -> bool:
        """Disarm one schedule; whether it was armed."""
    def remove_job(self, job_id: int) -> int:
        """Disarm every schedule of a job; how many were armed."""
    def reschedule(self, job_id: int, schedule_index: int, deadline_ms: int) -> bool:
        """Move an armed entry to a new deadline; whether it was armed."""
    def deadline_of(self, job_id: int, schedule_index: int) -> int | None:
        """The armed deadline (ms), or None."""
    def next_deadline(self) -> int | None:
        """The earliest armed deadline (ms), or None when empty."""
    def advance(self, now_ms: int) -> list[tuple[int, int, int, bool]]:
        """Every fire due at or before ``now_ms`` as ``(job_id, schedule_index, scheduled_ms,
        truncated)``, oldest first, each entry re-armed from the instant it fired. ``truncated``
        marks the last fire of an entry whose missed instants exceeded the catch-up limit."""
    def advance_eager(
        self, now_ms: int, starts: list[Any], running: list[int], slots: list[Any], budget: int
    ) -> tuple[
        list[tuple[int, int, int, Any]],
        list[tuple[int, int, int, Any, Any]],
        list[tuple[int, int, int, BaseException]],
        list[tuple[int, int, int, bool]],
    ]:
        """``advance``, starting the due fires of simple async jobs in the core. By job id:
        ``starts[id]`` is the job's ``EagerJob`` (None: the general path), ``running[id]`` its runs
        in progress, ``slots[id]`` an object whose ``armed`` is read only if the wheel changed
        during the call. A fire whose job is armed, has room (``running < max_concurrency``) and is
        on time gets its ``calls[index]`` called and None sent into the coroutine once. Returns
        ``(done, suspended, failed, rest)``: returned values, suspended coroutines with what they
        yielded, raised exceptions, and the fires left for the caller. At most ``budget`` fires
        may suspend."""
    def __len__(self) -> int: ...

@final
class EagerJob:
    """What ``Wheel.advance_eager`` needs to start a job's fires itself: the misfire grace (ms),
    the job's concurrency limit, and ``calls[schedule_index] = (coroutine_function, args,
    kwargs)``. Immutable; built once per job definition."""

    def __new__(
        cls,
        misfire_grace_ms: int,
        max_concurrency: int,
        calls: list[tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any]]],
    ) -> Self: ...

def start_coroutines(
    calls: list[tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any]]],
) -> tuple[list[tuple[int, Any]], list[tuple[int, Any, Any]], list[tuple[int, BaseException]]]:
    """Call each coroutine function and send None into its coroutine once, in order (as
    ``Wheel.advance_eager`` does for due fires). Returns ``(done, suspended, failed)``:
    ``(i, value)`` for coroutines that returned, ``(i, coroutine, yielded)`` for ones that
    suspended, ``(i, exception)`` for ones that raised; ``i`` is the call's position."""
