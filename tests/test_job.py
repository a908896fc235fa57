"""Declaring jobs: the @job decorator, Schedule arguments, option validation, durations, JobContext
detection, eager start, results."""

from __future__ import annotations

import asyncio
import functools
import tracemalloc
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fastcron import Cron, CronError, Interval, Once
from fastcron._durations import format_ms, parse_duration
from fastcron.errors import ConfigError
from fastcron.job import Job, JobContext, JobResult, Schedule, check_result, job, make_job, never_suspends
from fastcron.registry import Registry, default_registry
from fastcron.scheduler import Scheduler
from fastcron.testing import FakeClock

UTC = timezone.utc


def test_job_registers_and_returns_the_function_unchanged() -> None:
    reg = Registry()

    async def sync_prices() -> None:
        """Fetch prices.

        More detail."""

    decorated = job("*/5 * * * *", registry=reg)(sync_prices)
    assert decorated is sync_prices
    made = reg.get(f"{__name__}.test_job_registers_and_returns_the_function_unchanged.<locals>.sync_prices")
    assert made.func is sync_prices
    assert made.description == "Fetch prices.\n\nMore detail."
    assert isinstance(made.schedules[0].trigger, Cron)
    assert made.schedules[0].trigger.expr == "*/5 * * * *"
    assert made.is_async and made.opts.enabled


def test_default_registry_is_used_without_registry_argument() -> None:
    @job("manual", name="test_job.default-registry")
    def in_default() -> None: ...

    try:
        assert default_registry.get("test_job.default-registry").func is in_default
    finally:
        default_registry.remove("test_job.default-registry")


def test_the_issue_example_declares_two_schedules_with_arguments_and_every_option() -> None:
    reg = Registry()

    @job(
        [Schedule("0 0 * * *"), Schedule("0 * * * *", "hourly-cleanup", deep=True)],
        tz="Europe/Berlin",
        retries=3,
        retry_delay="10s",
        timeout="5m",
        overlap="skip",
        misfire_grace="1m",
        catchup="latest",
        jitter="5s",
        registry=reg,
        name="cleanup",
        tags=["maintenance"],
        cooldown_after=5,
        cooldown="30m",
    )
    def cleanup(mode: str = "daily", deep: bool = False, ctx: JobContext | None = None) -> JobResult:
        return JobResult(message=mode)

    made = reg.get("cleanup")
    assert [(s.args, dict(s.kwargs)) for s in made.schedules] == [((), {}), (("hourly-cleanup",), {"deep": True})]
    assert made.schedules[1].trigger.tz == "Europe/Berlin"
    o = made.opts
    assert (o.retries, o.retry_delay_ms, o.timeout_ms, o.misfire_grace_ms, o.jitter_ms) == (3, 10_000, 300_000, 60_000, 5_000)
    assert (o.overlap, o.catchup, o.max_concurrency, o.tags) == ("skip", "latest", 1, frozenset({"maintenance"}))
    assert (o.cooldown_after, o.cooldown_ms) == (5, 1_800_000)
    assert made.ctx_param == "ctx" and not made.is_async and made.eager is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"overlap": "sometimes"}, "job 'j': overlap: expected one of skip, queue, replace, allow, got 'sometimes'"),
        ({"catchup": "most"}, "job 'j': catchup: expected one of skip, latest, all, got 'most'"),
        ({"retries": -1}, "job 'j': retries: expected an integer >= 0, got -1"),
        ({"retries": True}, "job 'j': retries: expected an integer >= 0, got True"),
        ({"retry_delay": "10x"}, "job 'j': retry_delay: cannot read duration '10x'"),
        ({"timeout": "0s"}, "job 'j': timeout must be longer than 0s"),
        ({"timeout": -5}, "job 'j': timeout: duration must be finite and not negative, got -5"),
        ({"retry_backoff": 0.5}, "job 'j': retry_backoff: expected a number >= 1, got 0.5"),
        ({"retry_jitter": 2}, "job 'j': retry_jitter: expected a fraction between 0 and 1, got 2"),
        ({"max_concurrency": 0}, "job 'j': max_concurrency: expected an integer >= 1, got 0"),
        ({"overlap": "allow", "max_concurrency": 3}, "overlap='allow' sets no limit, so max_concurrency=3 would be ignored"),
        ({"cooldown_after": 3}, "job 'j': cooldown_after=3 needs cooldown=<duration>"),
        ({"cooldown": "5m"}, "job 'j': cooldown='5m' has no effect without cooldown_after=N"),
        ({"tz": "Mars/Olympus"}, "job 'j': tz: unknown time zone 'Mars/Olympus'"),
        ({"tags": "nightly"}, "job 'j': tags: expected a collection of strings, got the string 'nightly'"),
        ({"tags": [1]}, "job 'j': tags: expected strings"),
        ({"tenants": ["a"]}, "job 'j': tenants: expected a callable"),
        ({"eager": "yes"}, "job 'j': eager: expected True, False or None"),
        ({"enabled": 1}, "job 'j': enabled: expected True or False"),
        ({"name": ""}, "name: expected a non-empty string"),
    ],
)
def test_bad_options_fail_at_declaration_naming_job_and_option(options: dict[str, Any], message: str) -> None:
    async def fn() -> None: ...

    options = {"name": "j", **options}
    with pytest.raises(ConfigError, match=_literal(message)):
        make_job(fn, "* * * * *", **options)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_bad_cron_raises_cron_error_with_a_note_naming_the_job() -> None:
    async def fn() -> None: ...

    with pytest.raises(CronError, match="out of range") as info:
        make_job(fn, "0 0 32 * *", name="bad-cron")
    assert info.value.__notes__ == ["in job 'bad-cron'"]


def test_schedule_arguments_must_fit_the_function() -> None:
    def fn(mode: str, deep: bool = False, ctx: JobContext | None = None) -> None: ...

    with pytest.raises(ConfigError, match="job 'j': schedule 1: arguments do not fit .*unexpected keyword argument 'deeep'"):
        make_job(fn, [Schedule("0 * * * *", "a"), Schedule("0 0 * * *", "b", deeep=True)], name="j")
    with pytest.raises(ConfigError, match="job 'j': arguments do not fit .*missing a required argument: 'mode'"):
        make_job(fn, "0 * * * *", name="j")
    with pytest.raises(ConfigError, match="'ctx' is filled in by fastcron"):
        make_job(fn, Schedule("0 * * * *", "a", ctx=1), name="j")
    assert make_job(fn, "manual", name="j").manual  # a manual job gets its arguments from run_job


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (None, "job 'j': schedule is required; use 'manual'"),
        ([], "job 'j': empty schedule list"),
        (["manual", "* * * * *"], "'manual' must be the job's only schedule"),
        (42, "job 'j': expected a cron expression, Cron, Interval, Once or datetime, got 42"),
        (datetime(2030, 1, 1), "job 'j': naive datetime 2030-01-01T00:00:00"),
        (timedelta(milliseconds=1500), "an interval must be a whole, positive number of seconds"),
    ],
)
def test_bad_schedules(schedule: Any, message: str) -> None:
    async def fn() -> None: ...

    with pytest.raises(ConfigError, match=_literal(message)):
        make_job(fn, schedule, name="j")


def test_schedule_forms() -> None:
    async def fn() -> None: ...

    when = datetime(2030, 1, 1, tzinfo=UTC)
    kinds = make_job(fn, [Cron("0 * * * *"), Interval("90s"), Once(when), when, timedelta(minutes=5), "1h30m"], name="j")
    assert [type(s.trigger).__name__ for s in kinds.schedules] == ["Cron", "Interval", "Once", "Once", "Interval", "Interval"]


def test_bare_decorator_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"@job needs a schedule: write @job\('\*/5 \* \* \* \*'\) or @job\('manual'\)"):

        @job  # type: ignore[arg-type]
        async def oops() -> None: ...


def test_generators_are_refused() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(ConfigError, match="is a generator; jobs must be def or async def"):
        make_job(gen, "manual", name="g")


def test_tenants_need_a_ctx_parameter() -> None:
    async def fn() -> None: ...

    with pytest.raises(ConfigError, match="tenants= needs the function to take a 'ctx: JobContext' parameter"):
        make_job(fn, "manual", name="t", tenants=lambda: ["a"])


def test_ctx_parameter_is_found_by_name_or_annotation() -> None:
    def by_name(ctx) -> None: ...  # type: ignore[no-untyped-def]

    def by_annotation(context: JobContext) -> None: ...

    def by_string_annotation(c: "JobContext | None" = None) -> None: ...

    def none_of_them(x: int = 0) -> None: ...

    assert make_job(by_name, "manual", name="a").ctx_param == "ctx"
    assert make_job(by_annotation, "manual", name="b").ctx_param == "context"
    assert make_job(by_string_annotation, "manual", name="c").ctx_param == "c"
    assert make_job(none_of_them, "manual", name="d").ctx_param is None


def test_eager_is_chosen_for_async_functions_that_cannot_suspend() -> None:
    async def no_await() -> int:
        return 1

    async def awaits() -> None:
        await asyncio.sleep(0)

    async def async_with() -> None:
        async with asyncio.Lock():
            pass

    def sync() -> None: ...

    assert never_suspends(no_await) and not never_suspends(awaits) and not never_suspends(async_with)
    assert make_job(no_await, "manual", name="a").eager is True
    assert make_job(awaits, "manual", name="b").eager is False
    assert make_job(awaits, "manual", name="c", eager=True).eager is True
    assert make_job(no_await, "manual", name="d", eager=False).eager is False
    assert make_job(sync, "manual", name="e", eager=True).eager is False


def test_wrapped_functions_are_analysed_separately() -> None:
    async def inner() -> None:
        await asyncio.sleep(0)

    make_job(inner, "manual", name="inner")

    @functools.wraps(inner)
    def wrapper() -> Any:  # a sync wrapper that copied inner's __dict__
        return inner()

    assert make_job(wrapper, "manual", name="w").is_async is False


def test_jobs_share_options_and_parsed_schedules() -> None:
    async def fn() -> None: ...

    a = make_job(fn, "*/5 * * * *", name="a", retries=2)
    b = make_job(fn, "*/5 * * * *", name="b", retries=2)
    c = make_job(fn, "*/5 * * * *", name="c", retries=3)
    assert a.opts is b.opts and a.opts is not c.opts
    assert a.schedules is b.schedules
    assert a.info is b.info


def test_job_is_immutable_and_reads_options_through() -> None:
    async def fn() -> None: ...

    made = make_job(fn, "manual", name="m", retries=2, timeout="1m")
    assert (made.retries, made.timeout_ms) == (2, 60_000)
    with pytest.raises(AttributeError, match="Job is immutable"):
        made.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        made.nope  # noqa: B018
    rebuilt = make_job(fn, "manual", **made.options())
    assert rebuilt.opts.retries == 2 and rebuilt.opts.timeout_ms == 60_000 and rebuilt.name == "m"
    assert repr(made) == "<Job 'm' [manual]>"


def test_retry_delay_grows_exponentially_up_to_the_cap() -> None:
    async def fn() -> None: ...

    made = make_job(fn, "manual", name="r", retry_delay="10s", retry_backoff=3, retry_max_delay="2m")
    assert [made.retry_delay_for(n) for n in (1, 2, 3, 4)] == [10_000, 30_000, 90_000, 120_000]


@pytest.mark.parametrize(
    ("text", "ms"),
    [("10s", 10_000), ("5m", 300_000), ("1h30m", 5_400_000), ("250ms", 250), ("1.5s", 1_500), ("2d", 172_800_000),
     ("1w", 604_800_000), ("1h 30m", 5_400_000), (90, 90_000), (0.25, 250), (timedelta(minutes=2), 120_000)],
)
def test_durations(text: Any, ms: int) -> None:
    assert parse_duration(text, field="x") == ms


@pytest.mark.parametrize("bad", ["", "10", "s", "10 parsecs", "-5s", True, None, [1]])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ConfigError, match="^x: "):
        parse_duration(bad, field="x")


def test_format_ms_round_trips() -> None:
    for ms in (0, 250, 10_000, 5_400_000, 90_061_001):
        assert parse_duration(format_ms(ms), field="x") == ms


def test_job_results() -> None:
    assert JobResult(message="m", processed=3, failed=1).to_dict() == {"message": "m", "processed": 3, "failed": 1}
    assert check_result({"a": [1, 2]}, "j") == {"a": [1, 2]}
    assert check_result(None, "j") is None
    with pytest.raises(TypeError, match="job 'j' returned set, which is not JSON-serialisable"):
        check_result({1, 2}, "j")


def test_registered_job_stays_under_one_kilobyte_of_python_memory() -> None:
    """The benchmark target: <= 1 KB per registered cron job (Python side, armed in the wheel)."""

    async def noop() -> None: ...

    async def main() -> int:
        reg = Registry()
        async with Scheduler(reg, clock=FakeClock()) as scheduler:
            scheduler.add(noop, "* * * * *", name="warm-up")
            names = [f"job-{i:05d}" for i in range(5000)]
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            for name in names:
                scheduler.add(noop, "* * * * *", name=name)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            return sum(stat.size_diff for stat in after.compare_to(before, "filename")) // len(names)

    per_job = asyncio.run(main())
    assert 0 < per_job <= 1024, per_job


def test_core_start_is_shared_by_jobs_that_start_alike() -> None:
    hits: list[int] = []

    async def tick() -> None:
        hits.append(1)

    async def with_ctx(ctx: JobContext) -> None: ...

    def sync() -> None: ...

    a = make_job(tick, "*/5 * * * *", name="a")
    b = make_job(tick, "*/5 * * * *", name="b")
    c = make_job(tick, "*/7 * * * *", name="c")
    assert a.core_start is not None and a.core_start is b.core_start, "one EagerJob for equal jobs"
    assert c.core_start is not None and c.core_start is not a.core_start
    assert make_job(tick, "*/5 * * * *", name="d", retries=3).core_start is not a.core_start, "options differ"
    # What needs Python at each fire is never started by the core.
    assert make_job(with_ctx, "* * * * *", name="e").core_start is None
    assert make_job(sync, "* * * * *", name="f").core_start is None
    assert make_job(tick, "* * * * *", name="g", jitter="5s").core_start is None
    assert make_job(tick, "* * * * *", name="h", eager=False).core_start is None
    with pytest.raises(AttributeError, match="Job is immutable"):
        a.core_start = None  # type: ignore[misc]
