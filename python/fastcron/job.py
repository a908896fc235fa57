"""Jobs: the ``@job`` decorator, what a job is (``Job``, ``Schedule``), and what a run sees and
produces (``JobContext``, ``JobResult``, ``Run``).

A ``Job`` is an immutable definition, validated once when it is declared, so a typo in an option
fails at import time with the job's name in the message, not at 3 a.m. when it first fires.
A job holds only what is its own (function, name, schedules); its options live in a shared
``JobOptions`` (jobs declared alike hold one object) and what is known about its function in a
shared ``FuncInfo``. Runtime state (counters, running runs) is the scheduler's business. That
keeps a registered job small (the target is under 1 KB) and declaring 100k of them cheap.
"""

from __future__ import annotations

import asyncio
import dis
import functools
import inspect
import json
import logging
import operator
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, get_args

from fastcron import _core
from fastcron._clock import from_ms, resolve_tz, sleep_until, to_ms
from fastcron._durations import DurationLike, format_ms, parse_duration
from fastcron.errors import ConfigError
from fastcron.triggers import parse_schedule

if TYPE_CHECKING:
    from fastcron.registry import Registry

__all__ = [
    "Job",
    "JobContext",
    "JobResult",
    "Run",
    "Schedule",
    "job",
    "make_job",
    "make_jobs",
]

F = TypeVar("F", bound=Callable[..., Any])
Overlap = Literal["skip", "queue", "replace", "allow"]
Catchup = Literal["skip", "latest", "all"]
Trigger = Literal["schedule", "manual", "retry", "catch-up"]
RunStatus = Literal[
    "pending", "queued", "running", "retrying", "succeeded", "failed", "timed_out", "cancelled", "skipped", "missed"
]
ScheduleKind = _core.Trigger  # Cron, Interval or Once

OVERLAP_POLICIES: Final = ("skip", "queue", "replace", "allow")
CATCHUP_POLICIES: Final = ("skip", "latest", "all")
MANUAL: Final = "manual"
_EMPTY_ARGS: Final[tuple[Any, ...]] = ()
_EMPTY_KWARGS: Final[Mapping[str, Any]] = {}  # shared, never mutated
_NO_TAGS: Final[frozenset[str]] = frozenset()
UNLIMITED: Final = 1 << 62


class Schedule:
    """One schedule of a job plus the arguments its fires call the function with.

    ``Schedule("0 * * * *", "hourly", deep=True)`` fires hourly and calls ``fn("hourly", deep=True)``.
    ``when`` is a cron expression or other text the core parses (``parse_schedule``), a
    ``Cron``/``Interval``/``Once``, or an aware ``datetime`` (a one-off fire).
    """

    __slots__ = ("args", "kwargs", "when")

    def __init__(self, when: str | ScheduleKind | datetime, /, *args: Any, **kwargs: Any) -> None:
        self.when = when
        self.args = args or _EMPTY_ARGS
        self.kwargs = kwargs or _EMPTY_KWARGS

    def __repr__(self) -> str:
        extra = "".join(f", {a!r}" for a in self.args) + "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"Schedule({self.when!r}{extra})"


class BoundSchedule:
    """A resolved schedule of a registered job: the core object the wheel arms, and the call's arguments."""

    __slots__ = ("args", "kwargs", "trigger")

    def __init__(self, trigger: ScheduleKind, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self.trigger = trigger
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"BoundSchedule({self.trigger!r}, args={self.args!r}, kwargs={dict(self.kwargs)!r})"


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a job may return to report its work; stored with the run and shown in events."""

    message: str | None = None
    processed: int | None = None
    failed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "processed": self.processed, "failed": self.failed}


class JobOptions:
    """A job's validated options, shared: jobs declared with equal options hold one object.

    Durations are in ms; the zone is held both as the IANA name the core takes (``tz``) and as a
    tzinfo for rendering (``tzinfo``). ``eager`` is the option as given (None: decide per function).
    """

    __slots__ = (
        "catchup",
        "cooldown_after",
        "cooldown_ms",
        "eager",
        "enabled",
        "jitter_ms",
        "max_concurrency",
        "misfire_grace_ms",
        "overlap",
        "retries",
        "retry_backoff",
        "retry_delay_ms",
        "retry_jitter",
        "retry_max_delay_ms",
        "tags",
        "tenants",
        "timeout_ms",
        "tz",
        "tzinfo",
    )

    enabled: bool
    tz: str | None
    tzinfo: tzinfo | None
    retries: int
    retry_delay_ms: int
    retry_backoff: float
    retry_max_delay_ms: int
    retry_jitter: float
    timeout_ms: int | None
    overlap: Overlap
    max_concurrency: int
    misfire_grace_ms: int
    catchup: Catchup
    jitter_ms: int
    tags: frozenset[str]
    cooldown_after: int | None
    cooldown_ms: int
    tenants: Callable[[], Any] | None
    eager: bool | None

    def __init__(self, **fields: Any) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"job options are shared and immutable ({key!r})")


class FuncInfo:
    """What fastcron needs to know about a job function, worked out once per function."""

    __slots__ = ("args_checked", "ctx_param", "docstring", "is_async", "never_suspends", "signature", "site")

    def __init__(self, func: Callable[..., Any]) -> None:
        self.is_async = _is_async(func)
        self.never_suspends = never_suspends(func)
        self.ctx_param, self.signature = _ctx_parameter(func)
        self.docstring = _docstring(func)
        self.site = definition_site(func)
        self.args_checked = False  # the call with no schedule arguments was checked


_T = TypeVar("_T")
_SHARED_SIZE: Final = 4096
_CORE_STARTS: dict[tuple[Any, JobOptions, tuple[BoundSchedule, ...]], _core.EagerJob] = {}
_COMMONS: dict[tuple[Any, str | None, JobOptions], JobCommon] = {}
_TRIGGERS: dict[tuple[BoundSchedule, ...], tuple[ScheduleKind, ...]] = {}


def _shared(cache: dict[Any, _T], key: Any, make: Callable[..., _T], *args: Any) -> _T:
    """``cache[key]``, made by ``make(*args)`` the first time: immutable parts that equal jobs
    share, so that 100k jobs hold as many of each as there are distinct ones. A key that cannot
    be hashed (an unhashable callable object) is not cached; a full cache is emptied."""
    try:
        value = cache.get(key)
    except TypeError:
        return make(*args)
    if value is None:
        value = make(*args)
        if len(cache) >= _SHARED_SIZE:
            cache.clear()
        cache[key] = value
    return value


def _core_start(
    func: Callable[..., Any], schedules: tuple[BoundSchedule, ...], opts: JobOptions, info: FuncInfo, eager: bool
) -> _core.EagerJob | None:
    """The ``EagerJob`` the core starts this job's fires with (``Wheel.advance_eager``), or None
    when a fire needs Python: a lazy or sync job, a context, tenants or jitter. Shared by the
    jobs of one function, one set of options and one schedule tuple (parsed schedules are
    cached and shared)."""
    if not eager or info.ctx_param is not None or opts.tenants is not None or opts.jitter_ms:
        return None
    return _shared(_CORE_STARTS, (func, opts, schedules), _eager_job, func, schedules, opts)


def _eager_job(func: Callable[..., Any], schedules: tuple[BoundSchedule, ...], opts: JobOptions) -> _core.EagerJob:
    calls = [(func, bound.args, bound.kwargs) for bound in schedules]
    return _core.EagerJob(opts.misfire_grace_ms, opts.max_concurrency, calls)


def _triggers(schedules: tuple[BoundSchedule, ...]) -> tuple[ScheduleKind, ...]:
    """The core schedules of ``schedules`` in order, shared by jobs with the same schedules."""
    return _shared(_TRIGGERS, schedules, _triggers_of, schedules)


def _triggers_of(schedules: tuple[BoundSchedule, ...]) -> tuple[ScheduleKind, ...]:
    return tuple(bound.trigger for bound in schedules)


def _read_only(field: str, where: str = "") -> property:
    """A property reading ``self._<where>.<field>`` or ``self._<field>`` (in C), refusing writes."""

    def refuse(self: Any, value: Any) -> None:
        raise AttributeError(f"Job is immutable; use scheduler.reschedule() or make a new job ({field!r})")

    return property(operator.attrgetter(f"_{where}.{field}" if where else "_" + field), refuse)


class JobCommon:
    """What the jobs built by one ``make_job`` / ``make_jobs`` call share: the function, its
    ``FuncInfo``, the ``JobOptions``, the description and whether fires start eagerly. A job
    refers to it, so building each of 100k jobs stores five fields, not nine."""

    __slots__ = ("description", "eager", "func", "info", "opts")

    def __init__(
        self, func: Callable[..., Any], description: str | None, opts: JobOptions, info: FuncInfo, eager: bool
    ) -> None:
        self.func = func
        self.description = description
        self.opts = opts
        self.info = info
        self.eager = eager


class Job:
    """A validated job definition. Build one with ``@job`` or ``make_job``; it never changes.

    It holds what is particular to the job (name, schedules) and refers to a shared
    ``JobCommon`` (function, description, ``JobOptions`` as ``opts``, ``FuncInfo`` as ``info``);
    the fields of ``opts`` and ``info`` read as the job's own (``job.retries``, ``job.is_async``).
    ``schedules`` is empty for a manual job.
    """

    # Private slots behind read-only properties: plain stores in __init__ (a guarded
    # __setattr__ would make building a job, 100k of them at a time, four times slower).
    __slots__ = ("_common", "_core_start", "_name", "_schedules", "_triggers")

    if TYPE_CHECKING:

        @property
        def func(self) -> Callable[..., Any]: ...
        @property
        def name(self) -> str: ...
        @property
        def description(self) -> str | None: ...
        @property
        def schedules(self) -> tuple[BoundSchedule, ...]: ...
        @property
        def triggers(self) -> tuple[ScheduleKind, ...]: ...
        @property
        def opts(self) -> JobOptions: ...
        @property
        def info(self) -> FuncInfo: ...
        @property
        def eager(self) -> bool: ...
        @property
        def core_start(self) -> _core.EagerJob | None: ...

    else:
        func = _read_only("func", "common")
        name = _read_only("name")
        description = _read_only("description", "common")
        schedules = _read_only("schedules")
        # The core schedules of ``schedules``, in order: what the wheel arms for this job.
        triggers = _read_only("triggers")
        opts = _read_only("opts", "common")
        info = _read_only("info", "common")
        eager = _read_only("eager", "common")
        # What the core needs to start this job's fires itself (``Wheel.advance_eager``): set for
        # an eager job that needs no context, tenants or jitter (those need Python at each fire).
        core_start = _read_only("core_start")

    # Read through to the shared parts (declared for type checkers).
    if TYPE_CHECKING:
        enabled: bool
        tz: str | None
        tzinfo: tzinfo | None
        retries: int
        retry_delay_ms: int
        retry_backoff: float
        retry_max_delay_ms: int
        retry_jitter: float
        timeout_ms: int | None
        overlap: Overlap
        max_concurrency: int
        misfire_grace_ms: int
        catchup: Catchup
        jitter_ms: int
        tags: frozenset[str]
        cooldown_after: int | None
        cooldown_ms: int
        tenants: Callable[[], Any] | None
        is_async: bool
        ctx_param: str | None

    def __init__(
        self,
        common: JobCommon,
        name: str,
        schedules: tuple[BoundSchedule, ...],
        triggers: tuple[ScheduleKind, ...],
        core_start: _core.EagerJob | None,
    ) -> None:
        # Built only by make_job / make_jobs, which work out ``triggers`` and ``core_start``
        # once per distinct schedule rather than once per job.
        self._common = common
        self._name = name
        self._schedules = schedules
        self._triggers = triggers
        self._core_start = core_start

    def __getattr__(self, key: str) -> Any:
        if key in JobOptions.__slots__:
            return getattr(self.opts, key)
        if key in ("is_async", "ctx_param"):
            return getattr(self.info, key)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    @property
    def manual(self) -> bool:
        """True if the job never fires on its own (``schedule="manual"``)."""
        return not self.schedules

    @property
    def site(self) -> str:
        """Where the job's function is defined, as ``file:line`` (for error messages)."""
        return self.info.site

    def options(self) -> dict[str, Any]:
        """The options this job was made with, in ``make_job``'s terms (for rebuilding it)."""
        o = self.opts
        return {
            "name": self.name,
            "description": self.description,
            "enabled": o.enabled,
            "tz": o.tz,
            "retries": o.retries,
            "retry_delay": o.retry_delay_ms / 1000,
            "retry_backoff": o.retry_backoff,
            "retry_max_delay": o.retry_max_delay_ms / 1000,
            "retry_jitter": o.retry_jitter,
            "timeout": None if o.timeout_ms is None else o.timeout_ms / 1000,
            "overlap": o.overlap,
            "max_concurrency": None if o.overlap == "allow" else o.max_concurrency,
            "misfire_grace": o.misfire_grace_ms / 1000,
            "catchup": o.catchup,
            "jitter": o.jitter_ms / 1000,
            "tags": o.tags,
            "cooldown_after": o.cooldown_after,
            "cooldown": o.cooldown_ms / 1000 if o.cooldown_after else None,
            "tenants": o.tenants,
            "eager": o.eager,
        }

    def retry_delay_for(self, attempt: int) -> int:
        """Backoff before retry number ``attempt`` (1 for the first retry), in ms, before jitter."""
        o = self.opts
        delay = o.retry_delay_ms * o.retry_backoff ** (attempt - 1)
        return int(min(delay, o.retry_max_delay_ms))

    def __repr__(self) -> str:
        what = "manual" if not self.schedules else ", ".join(_describe(s.trigger) for s in self.schedules)
        return f"<Job {self.name!r} [{what}]>"


def _describe(trigger: Any) -> str:
    expr = getattr(trigger, "expr", None)
    return str(expr) if expr is not None else repr(trigger)


def definition_site(func: Callable[..., Any]) -> str:
    """``file:line`` of a function's definition, or its repr when it has no code object."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        return repr(func)
    return f"{code.co_filename}:{code.co_firstlineno}"


# ---------------------------------------------------------------------------------------------
# Declaring jobs


def job(
    schedule: Any,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    enabled: bool = True,
    tz: str | tzinfo | None = None,
    retries: int = 0,
    retry_delay: DurationLike = "1s",
    retry_backoff: float = 2.0,
    retry_max_delay: DurationLike = "1h",
    retry_jitter: float = 0.1,
    timeout: DurationLike | None = None,
    overlap: Overlap = "skip",
    max_concurrency: int | None = None,
    misfire_grace: DurationLike = "1m",
    catchup: Catchup = "latest",
    jitter: DurationLike = 0,
    tags: Iterable[str] = (),
    cooldown_after: int | None = None,
    cooldown: DurationLike | None = None,
    tenants: Callable[[], Any] | None = None,
    eager: bool | None = None,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Declare a job and register it (in ``registry``, else the module-level default registry).

    ``schedule`` is a cron expression, a ``Cron``/``Interval``/``Once``, an aware datetime, a
    ``Schedule`` (to pass arguments), a list of those, or ``"manual"`` for a job that only runs
    when asked. The decorated function is returned unchanged, so it can still be called directly.
    Options are validated now; a bad one raises ``ConfigError`` (a ``ValueError``) naming the job
    and the option, a bad cron expression ``CronError``. See ``make_job`` for each option.
    """
    if callable(schedule) and not isinstance(schedule, (str, Schedule)) and not _is_schedule_kind(schedule):
        raise ConfigError(
            f"@job needs a schedule: write @job('*/5 * * * *') or @job('manual'), not bare @job "
            f"(on {getattr(schedule, '__qualname__', schedule)!r})"
        )
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "enabled": enabled,
        "tz": tz,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_backoff": retry_backoff,
        "retry_max_delay": retry_max_delay,
        "retry_jitter": retry_jitter,
        "timeout": timeout,
        "overlap": overlap,
        "max_concurrency": max_concurrency,
        "misfire_grace": misfire_grace,
        "catchup": catchup,
        "jitter": jitter,
        "tags": tags,
        "cooldown_after": cooldown_after,
        "cooldown": cooldown,
        "tenants": tenants,
        "eager": eager,
    }

    def decorate(func: F) -> F:
        made = make_job(func, schedule, **options)
        if registry is None:
            from fastcron.registry import default_registry

            default_registry.add(made)
        else:
            registry.add(made)
        return func

    return decorate


def make_job(
    func: Callable[..., Any],
    schedule: Any,
    *,
    name: str | None = None,
    description: str | None = None,
    enabled: bool = True,
    tz: str | tzinfo | None = None,
    retries: int = 0,
    retry_delay: DurationLike = "1s",
    retry_backoff: float = 2.0,
    retry_max_delay: DurationLike = "1h",
    retry_jitter: float = 0.1,
    timeout: DurationLike | None = None,
    overlap: Overlap = "skip",
    max_concurrency: int | None = None,
    misfire_grace: DurationLike = "1m",
    catchup: Catchup = "latest",
    jitter: DurationLike = 0,
    tags: Iterable[str] = (),
    cooldown_after: int | None = None,
    cooldown: DurationLike | None = None,
    tenants: Callable[[], Any] | None = None,
    eager: bool | None = None,
) -> Job:
    """Validate options and build a ``Job`` (without registering it).

    - ``name``: unique in a registry; default ``module.qualname``. ``description``: default the docstring.
    - ``retries`` more attempts after a failure or timeout, waiting ``retry_delay`` x
      ``retry_backoff`` ** (n-1), at most ``retry_max_delay``, shortened by up to ``retry_jitter``
      (a fraction) at random so failing jobs do not retry in lockstep.
    - ``timeout``: an async run is cancelled; a thread cannot be killed, so it is abandoned (its
      ``ctx.cancelled`` event is set) and the run counts as timed out.
    - ``overlap``: what a fire does when the job already has ``max_concurrency`` (default 1) runs:
      ``skip`` it, ``queue`` it, ``replace`` (cancel the oldest running one), or ``allow`` (no limit).
    - ``misfire_grace``: a fire started later than this is *late*; ``catchup`` says what late fires
      do: ``skip`` (recorded as missed), ``latest`` (run the newest, the others are missed), ``all``
      (every one runs, one after another under ``overlap="skip"``: catch-up fires queue, not skip).
    - ``jitter``: each fire starts up to this much after its instant, at random.
    - ``cooldown_after`` N consecutive failed runs pause the job for ``cooldown``, then it resumes.
    - ``tenants``: a callable (sync or async) returning tenant ids; each fire runs once per tenant,
      the id in ``ctx.tenant`` (so the function must take a ``ctx`` parameter).
    - ``eager`` (async jobs): start the coroutine inside the dispatcher and make a Task only if it
      suspends. ``None`` decides per function: eager exactly when its body has no ``await``, ``async
      with`` or ``async for``, so it can never suspend. ``True`` forces it; then the part of the
      body before the first suspension runs outside any Task (``asyncio.current_task()`` is None
      there, so ``asyncio.timeout()`` or a TaskGroup must not be entered before the first await).
    """
    if not callable(func):
        raise ConfigError(f"@job must decorate a function, got {func!r}")
    info = _func_info(func)
    job_name = name if name is not None else _default_name(func)
    if not isinstance(job_name, str) or not job_name.strip():
        raise ConfigError(f"name: expected a non-empty string, got {job_name!r}")
    where = f"job {job_name!r}"

    raw = (enabled, tz, retries, retry_delay, retry_backoff, retry_max_delay, retry_jitter, timeout, overlap,
           max_concurrency, misfire_grace, catchup, jitter, tags if isinstance(tags, (tuple, frozenset, str)) else
           tuple(tags), cooldown_after, cooldown, tenants, eager)
    # Keyed by values and their types: 1 == True == 1.0, but only some of them are valid.
    key: Any = (raw, tuple(map(type, raw)))
    try:
        opts = _OPTIONS.get(key)
    except TypeError:  # an unhashable option value: validate without caching
        opts, key = None, None
    if opts is None:
        opts = _validate_options(where, *raw) if key is not None else _validate_options(
            where, enabled, tz, retries, retry_delay, retry_backoff, retry_max_delay, retry_jitter, timeout,
            overlap, max_concurrency, misfire_grace, catchup, jitter, tuple(tags), cooldown_after, cooldown,
            tenants, eager,
        )
        if key is not None:
            if len(_OPTIONS) >= _OPTIONS_CACHE_SIZE:
                _OPTIONS.clear()
            _OPTIONS[key] = opts
    if opts.tenants is not None and info.ctx_param is None:
        raise ConfigError(
            f"{where}: tenants= needs the function to take a 'ctx: JobContext' parameter to receive the tenant id"
        )

    schedules = _resolve_schedules(schedule, opts.tz, where)
    _check_schedule_arguments(info, schedules, where, func)
    eager = info.is_async and (info.never_suspends if opts.eager is None else opts.eager)
    text = description if description is not None else info.docstring
    common = _shared(_COMMONS, (func, text, opts), JobCommon, func, text, opts, info, eager)
    return Job(common, job_name, schedules, _triggers(schedules), _core_start(func, schedules, opts, info, eager))


def _check_schedule_arguments(
    info: FuncInfo, schedules: tuple[BoundSchedule, ...], where: str, func: Callable[..., Any]
) -> None:
    """Check that each schedule's arguments fit the function; the call without arguments is
    checked once per function."""
    for index, bound in enumerate(schedules):
        if bound.args or bound.kwargs:
            _check_arguments(info, bound, f"{where}: schedule {index}" if len(schedules) > 1 else where, func)
        elif not info.args_checked:
            _check_arguments(info, bound, where, func)
            info.args_checked = True


def make_jobs(func: Callable[..., Any], entries: Iterable[tuple[str, Any]], **options: Any) -> list[Job]:
    """Many jobs of one function with one set of options: ``entries`` is ``(name, schedule)``
    pairs. Equivalent to ``make_job`` per entry, with the per-function and per-option work done
    once (what makes registering 100k jobs cheap); errors name the entry's job."""
    if "name" in options:
        raise ConfigError("make_jobs: names come from the entries; do not pass name=")
    entries = list(entries)
    if not entries:
        return []
    first_name, first_schedule = entries[0]
    first = make_job(func, first_schedule, name=first_name, **options)
    jobs = [first]
    common = first._common
    opts, info, eager = common.opts, common.info, common.eager
    tz = opts.tz
    append = jobs.append
    # What a job needs of its expression (schedules, triggers, core start) is worked out once
    # per distinct expression; every other entry is one lookup and one Job.
    known: dict[str, tuple[tuple[BoundSchedule, ...], tuple[ScheduleKind, ...], _core.EagerJob | None]] = {}
    if type(first_schedule) is str:
        known[first_schedule] = (first.schedules, first.triggers, first.core_start)
    for job_name, schedule in entries[1:]:
        if type(job_name) is not str or not job_name:
            raise ConfigError(f"name: expected a non-empty string, got {job_name!r}")
        made = known.get(schedule) if type(schedule) is str else None
        if made is None:
            where = f"job {job_name!r}"
            schedules = _resolve_schedules(schedule, tz, where)
            _check_schedule_arguments(info, schedules, where, func)
            made = (schedules, _triggers(schedules), _core_start(func, schedules, opts, info, eager))
            if type(schedule) is str:
                known[schedule] = made
        schedules, triggers, core_start = made
        append(Job(common, job_name, schedules, triggers, core_start))
    return jobs


_SCHEDULES: dict[tuple[str, str | None], tuple[BoundSchedule, ...]] = {}
_FUNC_INFO: weakref.WeakKeyDictionary[Any, FuncInfo] = weakref.WeakKeyDictionary()
_INFO_ATTR: Final = "__fastcron_info__"


def _func_info(func: Callable[..., Any]) -> FuncInfo:
    """The cached ``FuncInfo`` of ``func``, worked out on first use.

    Kept on the function itself (an attribute lookup is what makes registering 100k jobs of one
    function cheap), paired with the function so a ``functools.wraps`` copy of the attribute onto
    a wrapper is not mistaken for the wrapper's own; objects without ``__dict__`` use a weak map.
    """
    cached = getattr(func, _INFO_ATTR, None)
    if cached is not None and cached[0] is func:
        return cached[1]  # type: ignore[no-any-return]
    info = _FUNC_INFO.get(func) if _weakrefable(func) else None
    if info is not None:
        return info
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ConfigError(f"job {getattr(func, '__qualname__', func)!r} is a generator; jobs must be def or async def")
    info = FuncInfo(func)
    try:
        setattr(func, _INFO_ATTR, (func, info))
    except (AttributeError, TypeError):  # bound methods, partials with slots, builtins
        if _weakrefable(func):
            _FUNC_INFO[func] = info
    return info


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True
_OPTIONS: dict[Any, JobOptions] = {}
_OPTIONS_CACHE_SIZE: Final = 4096


def _validate_options(
    where: str,
    enabled: Any,
    tz: Any,
    retries: Any,
    retry_delay: Any,
    retry_backoff: Any,
    retry_max_delay: Any,
    retry_jitter: Any,
    timeout: Any,
    overlap: Any,
    max_concurrency: Any,
    misfire_grace: Any,
    catchup: Any,
    jitter: Any,
    tags: Any,
    cooldown_after: Any,
    cooldown: Any,
    tenants: Any,
    eager: Any,
) -> JobOptions:
    tz_name, tz_info = resolve_tz(tz, field=f"{where}: tz")
    retries = _int_option(retries, f"{where}: retries", minimum=0)
    if isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float)) or not retry_backoff >= 1:
        raise ConfigError(f"{where}: retry_backoff: expected a number >= 1, got {retry_backoff!r}")
    if isinstance(retry_jitter, bool) or not isinstance(retry_jitter, (int, float)) or not 0 <= retry_jitter <= 1:
        raise ConfigError(f"{where}: retry_jitter: expected a fraction between 0 and 1, got {retry_jitter!r}")
    if overlap not in OVERLAP_POLICIES:
        raise ConfigError(f"{where}: overlap: expected one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}")
    if catchup not in CATCHUP_POLICIES:
        raise ConfigError(f"{where}: catchup: expected one of {', '.join(CATCHUP_POLICIES)}, got {catchup!r}")
    if max_concurrency is None:
        limit = UNLIMITED if overlap == "allow" else 1
    elif overlap == "allow":
        raise ConfigError(
            f"{where}: overlap='allow' sets no limit, so max_concurrency={max_concurrency!r} would be ignored; "
            "use overlap='queue' or 'skip' with max_concurrency"
        )
    else:
        limit = _int_option(max_concurrency, f"{where}: max_concurrency", minimum=1)
    if cooldown_after is not None:
        cooldown_after = _int_option(cooldown_after, f"{where}: cooldown_after", minimum=1)
        if cooldown is None:
            raise ConfigError(f"{where}: cooldown_after={cooldown_after} needs cooldown=<duration>, like cooldown='10m'")
        cooldown_ms = parse_duration(cooldown, field=f"{where}: cooldown")
        if cooldown_ms == 0:
            raise ConfigError(f"{where}: cooldown must be longer than 0s")
    elif cooldown is not None:
        raise ConfigError(f"{where}: cooldown={cooldown!r} has no effect without cooldown_after=N")
    else:
        cooldown_ms = 0
    if tenants is not None and not callable(tenants):
        raise ConfigError(f"{where}: tenants: expected a callable returning tenant ids, got {tenants!r}")
    if isinstance(tags, str):
        raise ConfigError(f"{where}: tags: expected a collection of strings, got the string {tags!r}")
    tag_set = frozenset(tags) if tags else _NO_TAGS
    if not all(isinstance(t, str) for t in tag_set):
        raise ConfigError(f"{where}: tags: expected strings, got {sorted(map(repr, tag_set))}")
    if eager is not None and not isinstance(eager, bool):
        raise ConfigError(f"{where}: eager: expected True, False or None, got {eager!r}")
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: enabled: expected True or False, got {enabled!r}")
    timeout_ms = None if timeout is None else parse_duration(timeout, field=f"{where}: timeout")
    if timeout_ms == 0:
        raise ConfigError(f"{where}: timeout must be longer than 0s (or None for no timeout)")
    return JobOptions(
        enabled=enabled,
        tz=tz_name,
        tzinfo=tz_info,
        retries=retries,
        retry_delay_ms=parse_duration(retry_delay, field=f"{where}: retry_delay"),
        retry_backoff=float(retry_backoff),
        retry_max_delay_ms=parse_duration(retry_max_delay, field=f"{where}: retry_max_delay"),
        retry_jitter=float(retry_jitter),
        timeout_ms=timeout_ms,
        overlap=overlap,
        max_concurrency=limit,
        misfire_grace_ms=parse_duration(misfire_grace, field=f"{where}: misfire_grace"),
        catchup=catchup,
        jitter_ms=parse_duration(jitter, field=f"{where}: jitter"),
        tags=tag_set,
        cooldown_after=cooldown_after,
        cooldown_ms=cooldown_ms,
        tenants=tenants,
        eager=eager,
    )


def _int_option(value: Any, field: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return value


def _default_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "<unknown>"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{qualname}"


def _docstring(func: Callable[..., Any]) -> str | None:
    doc = getattr(func, "__doc__", None)
    if not doc or (not inspect.isfunction(func) and doc == type(func).__doc__):
        return None
    return inspect.cleandoc(doc)


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - a callable object with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _is_schedule_kind(value: Any) -> bool:
    return isinstance(value, _core.Trigger)


# Opcodes through which a coroutine can suspend (3.11-3.13): await, async with, async for.
_SUSPEND_OPS: Final = frozenset(
    {"GET_AWAITABLE", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT", "SEND", "YIELD_VALUE", "END_ASYNC_FOR"}
)


@functools.lru_cache(maxsize=1024)
def _code_never_suspends(code: Any) -> bool:
    return not any(ins.opname in _SUSPEND_OPS for ins in dis.get_instructions(code))


def never_suspends(func: Callable[..., Any]) -> bool:
    """True if ``func`` is a plain ``async def`` whose body cannot suspend (no await of any kind).

    Such a coroutine finishes on its first ``send(None)``, so running it inline is exactly what a
    Task would do, minus the Task: the dispatcher uses that to start it without one.
    """
    code = getattr(func, "__code__", None)
    if code is None or not inspect.iscoroutinefunction(func):
        return False
    return _code_never_suspends(code)


_CTX_ANNOTATION: Final = re.compile(r"\bJobContext\b")


def _ctx_parameter(func: Callable[..., Any]) -> tuple[str | None, inspect.Signature | None]:
    """The name of the parameter that receives the JobContext, if the function declares one.

    A parameter counts if it is annotated ``JobContext`` (or the string) or is named ``ctx``.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None, None
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        annotation = param.annotation
        if (
            annotation is JobContext
            or JobContext in get_args(annotation)
            or (isinstance(annotation, str) and _CTX_ANNOTATION.search(annotation))
        ):
            return param.name, signature
    if "ctx" in signature.parameters and signature.parameters["ctx"].kind not in (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
        inspect.Parameter.POSITIONAL_ONLY,
    ):
        return "ctx", signature
    return None, signature


def _check_arguments(
    info: FuncInfo, bound: BoundSchedule, where: str, func: Callable[..., Any]
) -> None:
    """Fail now, not at the first fire, if a schedule's arguments do not fit the function."""
    signature = info.signature
    if signature is None:
        return
    kwargs = dict(bound.kwargs)
    if info.ctx_param is not None:
        if info.ctx_param in kwargs:
            raise ConfigError(f"{where}: {info.ctx_param!r} is filled in by fastcron with the JobContext; do not pass it")
        kwargs[info.ctx_param] = None
    try:
        signature.bind(*bound.args, **kwargs)
    except TypeError as exc:
        name = getattr(func, "__qualname__", repr(func))
        raise ConfigError(f"{where}: arguments do not fit {name}{signature}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str, tz: str | None) -> ScheduleKind:
    # Parsed schedules are immutable and shared: 100k jobs on "* * * * *" hold one Cron.
    return parse_schedule(text, tz)


def _resolve_one(when: Any, tz: str | None, where: str) -> ScheduleKind:
    if isinstance(when, str):
        if when.strip() == MANUAL:
            raise ConfigError(f"{where}: 'manual' must be the job's only schedule, not one of several")
        try:
            return _parse_text(when.strip(), tz)
        except ValueError as exc:
            # Keep the core's own exception (CronError names the field and token); add where.
            exc.add_note(f"in {where}")
            raise
    if _is_schedule_kind(when):
        return when  # type: ignore[no-any-return]
    if isinstance(when, datetime):
        to_ms(when, field=where)  # refuses a naive datetime with a clear message
        return _core.Once(when)
    if isinstance(when, timedelta):
        ms = parse_duration(when, field=where)
        if ms % 1000 or ms == 0:
            raise ConfigError(f"{where}: an interval must be a whole, positive number of seconds, got {when!r}")
        return _core.Interval(f"{ms // 1000}s")
    raise ConfigError(f"{where}: expected a cron expression, Cron, Interval, Once or datetime, got {when!r}")


def _resolve_schedules(schedule: Any, tz: str | None, where: str) -> tuple[BoundSchedule, ...]:
    if isinstance(schedule, str):
        if schedule.strip() == MANUAL:
            return ()
        cached = _SCHEDULES.get((schedule, tz))
        if cached is None:
            cached = (BoundSchedule(_resolve_one(schedule, tz, where), _EMPTY_ARGS, _EMPTY_KWARGS),)
            if len(_SCHEDULES) >= _OPTIONS_CACHE_SIZE:
                _SCHEDULES.clear()
            _SCHEDULES[(schedule, tz)] = cached
        return cached
    if schedule is None:
        raise ConfigError(f"{where}: schedule is required; use 'manual' for a job that only runs when asked")
    items = list(schedule) if isinstance(schedule, (list, tuple)) else [schedule]
    if not items:
        raise ConfigError(f"{where}: empty schedule list; use 'manual' for a job that only runs when asked")
    bound = []
    for index, item in enumerate(items):
        sub = f"{where}: schedule {index}" if len(items) > 1 else where
        if isinstance(item, Schedule):
            bound.append(BoundSchedule(_resolve_one(item.when, tz, sub), item.args, item.kwargs))
        else:
            bound.append(BoundSchedule(_resolve_one(item, tz, sub), _EMPTY_ARGS, _EMPTY_KWARGS))
    return tuple(bound)


# ---------------------------------------------------------------------------------------------
# Runs


class Run:
    """One run of a job: a fire (or a manual call) and, once over, its outcome.

    ``status`` moves pending -> (queued) -> running -> (retrying -> running)* -> succeeded |
    failed | timed_out | cancelled; a fire that never starts ends skipped (overlap) or missed
    (late). Instants are epoch ms (``scheduled_ms``, ``started_ms``, ``finished_ms``), with
    datetime properties in the job's zone.
    """

    # Defaults on the class, not __slots__: a run is made per fire, and most keep their defaults
    # (no timer, no task, no error); CPython 3.11 stores the attributes set per run inline.
    attempt = 1
    status: RunStatus = "pending"
    started_ms: int | None = None
    finished_ms: int | None = None
    result: Any = None
    error: BaseException | None = None
    store_id: int | None = None  # the run's row in a store that numbers runs (SQLite)
    fire_id: int | None = None  # the fire this run is an attempt of (a cluster store's claim)
    retry_at_ms: int | None = None  # a claimed attempt that failed: when its fire is due again
    _task: Any = None
    _timer: Any = None
    _waiter: asyncio.Future[Run] | None = None
    _timed_out = False
    _cancel_reason: str | None = None
    _cancel_event: threading.Event | None = None

    def __init__(
        self,
        state: Any,
        job: Job,
        seq: int,
        scheduled_ms: int,
        trigger: Trigger,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        tenant: Any = None,
    ) -> None:
        self._state = state
        self.job = job
        self.seq = seq
        self.scheduled_ms = scheduled_ms
        self.trigger = trigger
        self.args = args
        self.kwargs = kwargs
        self.tenant = tenant

    @property
    def name(self) -> str:
        """The job's name."""
        return self.job.name

    @property
    def run_id(self) -> str:
        """Identifier of the run, unique within the scheduler; kept across retries."""
        return f"{self.job.name}#{self.seq}"

    @property
    def scheduled(self) -> datetime:
        return from_ms(self.scheduled_ms, self.job.opts.tzinfo)

    @property
    def started(self) -> datetime | None:
        return None if self.started_ms is None else from_ms(self.started_ms, self.job.opts.tzinfo)

    @property
    def finished(self) -> datetime | None:
        return None if self.finished_ms is None else from_ms(self.finished_ms, self.job.opts.tzinfo)

    @property
    def duration(self) -> float | None:
        """Seconds from the last attempt's start to the end, or None if not over."""
        if self.started_ms is None or self.finished_ms is None:
            return None
        return (self.finished_ms - self.started_ms) / 1000

    @property
    def lateness_ms(self) -> int | None:
        """Start minus scheduled instant, in ms (None if it never started)."""
        return None if self.started_ms is None else self.started_ms - self.scheduled_ms

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def __repr__(self) -> str:
        tenant = f" tenant={self.tenant!r}" if self.tenant is not None else ""
        return (
            f"<Run {self.run_id} {self.status} scheduled={self.scheduled.isoformat()} "
            f"trigger={self.trigger} attempt={self.attempt}{tenant}>"
        )


class JobContext:
    """What a running job can know about its run, passed to a ``ctx`` parameter.

    A thin view over the run (built per run, so it costs one small object): ``job`` (name),
    ``run_id``, ``scheduled`` (aware datetime in the job's zone; ``scheduled_ms`` as epoch ms),
    ``attempt`` (1 for the first), ``trigger`` ("schedule", "manual", "retry", "catch-up"),
    ``tenant``, ``logger``, ``cancelled`` (set when the run is cancelled or timed out; threads
    should poll it) and ``sleep()`` on the scheduler's clock (virtual under ``FakeClock``).
    """

    __slots__ = ("_clock", "_run")

    def __init__(self, run: Run, clock: Any = None) -> None:
        self._run = run
        self._clock = clock

    @property
    def job(self) -> str:
        return self._run.job.name

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def scheduled(self) -> datetime:
        return self._run.scheduled

    @property
    def scheduled_ms(self) -> int:
        return self._run.scheduled_ms

    @property
    def attempt(self) -> int:
        return self._run.attempt

    @property
    def trigger(self) -> Trigger:
        return self._run.trigger

    @property
    def tenant(self) -> Any:
        return self._run.tenant

    @property
    def logger(self) -> logging.Logger:
        """The logger ``fastcron.job.<name>``."""
        return logging.getLogger(f"fastcron.job.{self._run.job.name}")

    @property
    def cancelled(self) -> threading.Event:
        """Set when this run is cancelled or times out; a thread job should stop when it is."""
        run = self._run
        if run._cancel_event is None:
            run._cancel_event = threading.Event()
            if run._cancel_reason is not None or run._timed_out:
                run._cancel_event.set()
        return run._cancel_event

    async def sleep(self, duration: DurationLike) -> None:
        """Sleep on the scheduler's clock: real time normally, virtual time under ``FakeClock``."""
        ms = parse_duration(duration, field="sleep")
        if self._clock is None:
            await asyncio.sleep(ms / 1000)
        else:
            await sleep_until(self._clock, self._clock.now_ms() + ms)

    def __repr__(self) -> str:
        return f"<JobContext {self.run_id} attempt={self.attempt} trigger={self.trigger}>"


_JSON_SCALARS: Final = (str, int, float, bool, type(None))


def check_result(value: Any, job_name: str) -> Any:
    """Return ``value`` if a job may return it (None, a JobResult, or JSON-serialisable); else raise TypeError."""
    if isinstance(value, _JSON_SCALARS) or isinstance(value, JobResult):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"job {job_name!r} returned {type(value).__name__}, which is not JSON-serialisable "
            f"({exc}); return a JobResult, a JSON value or None"
        ) from None
    return value


def describe_timeout(job: Job) -> str:
    return f"job {job.name!r} timed out after {format_ms(job.opts.timeout_ms or 0)}"
