"""Fuzzing the cron parser from Python: any text gives a Cron or a CronError, quickly.

For every string hypothesis makes up (arbitrary text; near-valid cron built from the dialect's own
characters, names and numbers; huge numbers; non-ASCII and odd blanks; strings of 10,000
characters), `Cron(text)` either returns a Cron or raises `fastcron.CronError`, and nothing else.
What parses is then searched from instants at and beyond the supported range: `next_after_ts`
and `prev_before_ts` return an int or None for every i64 and raise a clean OverflowError beyond.
Each parse plus searches must finish well inside a second: no input may make the engine hang.

A table of bad inputs pins the error messages: which field, which token, which column.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastcron import Cron, CronError

# When a hypothesis test fails, its pytest plugin imports hypothesis.extra._patching (libcst),
# which triggers a DeprecationWarning from mypy_extensions; with filterwarnings=error that turns
# the failure report into an INTERNALERROR that hides the failing example. Import it here once,
# quietly, so that failures are reported. (Better: ignore that warning in pyproject.)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

MIN_INSTANT = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_INSTANT = 253_402_300_799  # 9999-12-31T23:59:59Z
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
INSTANTS = [0, MIN_INSTANT, MAX_INSTANT, 1_700_000_000, 2**62, -(2**62), I64_MAX, I64_MIN, MIN_INSTANT - 1, MAX_INSTANT + 1]
ZONES = [None, "UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham", "America/Havana"]
# Generous: a parse plus ~20 searches takes microseconds; this only catches a hang or a
# pathological (per-second, per-year) loop even on a loaded 2-core machine.
BUDGET_SECONDS = 2.0

FUZZ = settings(
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(text: str, tz: str | None = None) -> Cron | None:
    """Parse and search; return the Cron, or None if it was rejected with a CronError. Any other
    exception propagates and fails the test."""
    started = time.perf_counter()
    try:
        cron = Cron(text, tz)
    except CronError as error:
        message = str(error)
        assert message and len(message) < 400, f"{text[:80]!r}: unhelpful or unbounded message {message[:500]!r}"
        assert time.perf_counter() - started < BUDGET_SECONDS, f"{text[:80]!r}: slow rejection"
        return None
    for instant in INSTANTS:
        following = cron.next_after_ts(instant)
        preceding = cron.prev_before_ts(instant)
        for result in (following, preceding):
            assert result is None or (type(result) is int and MIN_INSTANT <= result <= MAX_INSTANT), (text, instant, result)
        assert following is None or following > instant, (text, instant, following)
        assert preceding is None or preceding < instant, (text, instant, preceding)
    # The datetime API on the same input, at the two ends of the supported range.
    first = cron.next_after(datetime(1, 1, 1, tzinfo=timezone.utc))
    last = cron.prev_before(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc))
    if first is not None and last is not None:
        assert first <= last
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET_SECONDS, f"{text[:80]!r} in {tz}: parse and search took {elapsed:.2f}s"
    return cron


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

NAMES = ["JAN", "feb", "Mar", "DEC", "SUN", "mon", "Fri", "sat", "THU", "JUNE", "MONDAY", "L", "W", "LW", "l", "w"]
SYMBOLS = list("*/,-#LW?") + ["*/", "/", "-", ",", "#", "L", "W", "?", "@"]
BLANKS = [" ", " ", " ", "  ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\x0b", "\x00"]
ODD_CHARS = ["é", "٣", "１", "²", "½", "Ⅻ", "𝟘", "🕐", "\u200b", "\ufeff", "İ", "ß", "ǅ", "\u0301"]

numbers = st.one_of(
    st.integers(0, 70).map(str),
    st.integers(0, 10**40).map(str),
    st.sampled_from(["0", "00", "007", "7", "31", "59", "60", "24", "32", "13", "8", "18446744073709551616",
                     "4294967296", "-1", "+1", "1e3", "0x10"]),
)
token = st.one_of(numbers, st.sampled_from(NAMES), st.sampled_from(SYMBOLS), st.sampled_from(ODD_CHARS))
cron_field = st.lists(token, min_size=1, max_size=8).map("".join)
near_valid = st.builds(
    lambda fields, blanks, lead, trail: lead + "".join(f + b for f, b in zip(fields, blanks)).rstrip() + trail,
    st.lists(cron_field, min_size=0, max_size=8),
    st.lists(st.sampled_from(BLANKS), min_size=8, max_size=8),
    st.sampled_from(["", " ", "\t", "@"]),
    st.sampled_from(["", " ", "\t", "\n"]),
)
# Valid fields, to reach the search code with exotic but parseable expressions.
valid_field = st.one_of(
    st.just("*"),
    st.just("?"),
    st.sampled_from(["*/7", "5/15", "22-2", "FRI-MON", "nov-feb", "L", "LW", "15W", "1W", "5L", "MON#5", "0-7",
                     "7", "1-5/2", "30", "31", "29", "2", "0"]),
    st.integers(0, 31).map(str),
)
valid_ish = st.builds(
    lambda fields, six: " ".join(fields[: 6 if six else 5]),
    st.lists(valid_field, min_size=6, max_size=6),
    st.booleans(),
)
huge = st.builds(
    lambda piece, count, prefix: prefix + piece * count,
    st.sampled_from(["9", "1,", "*/", "1-", "L", "#", " ", "\t", "* ", "1-2/3,", "MON,", "é", "𝟘", "@", ",", "-"]),
    st.integers(1, 10_000),
    st.sampled_from(["", "* * * * ", "0 0 ", "*/"]),
).map(lambda s: s[:10_000])
macros = st.builds(lambda name, tail: "@" + name + tail,
                   st.sampled_from(["yearly", "ANNUALLY", "Monthly", "weekly", "daily", "midnight", "hourly",
                                    "reboot", "", "every", "daily@", "hourly "]),
                   st.sampled_from(["", " ", "\t", " * * * * *", "x"]))
surrogate_free_text = st.text()  # hypothesis' default alphabet: every code point but surrogates


# ---------------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(surrogate_free_text)
@example("")
@example("* * * * *")
@example("\x00")
@example("*\x00* * * *")
def test_arbitrary_text_parses_or_raises_cron_error(text: str) -> None:
    check(text)


@FUZZ
@given(near_valid, st.sampled_from(ZONES))
def test_near_valid_text_parses_or_raises_cron_error(text: str, tz: str | None) -> None:
    check(text, tz)


@FUZZ
@given(valid_ish, st.sampled_from(ZONES))
@example("0 0 30 2 */2", None)
@example("0 0 29 2 1#5", "America/Havana")
@example("59 59 23 L 12 SAT#5", "Pacific/Chatham")
@example("0 0 * 2 MON#5", "Australia/Lord_Howe")
def test_parseable_expressions_search_the_whole_range(text: str, tz: str | None) -> None:
    check(text, tz)


@settings(FUZZ, max_examples=60)
@given(huge)
@example("9" * 10_000)
@example("* * * * " + "1," * 4_999 + "1")
@example("\t".join(["*"] * 5_000))
@example("*/" + "9" * 9_998)
def test_ten_thousand_characters(text: str) -> None:
    check(text)


@FUZZ
@given(macros)
def test_macros(text: str) -> None:
    check(text)


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(["* * * * *", "0 0 29 2 *", "*/13 2 * * *", "0 0 L 2 SUN#5"]), st.sampled_from(ZONES),
       st.one_of(st.integers(I64_MIN, I64_MAX), st.integers(MIN_INSTANT - 10**6, MAX_INSTANT + 10**6)))
def test_timestamps_anywhere_in_i64(text: str, tz: str | None, instant: int) -> None:
    cron = Cron(text, tz)
    following, preceding = cron.next_after_ts(instant), cron.prev_before_ts(instant)
    assert following is None or (type(following) is int and instant < following <= MAX_INSTANT)
    assert preceding is None or (type(preceding) is int and MIN_INSTANT <= preceding < instant)


@pytest.mark.parametrize("instant", [2**63, -(2**63) - 1, 2**64, 2**100, -(2**100)])
def test_timestamps_beyond_i64_raise_overflow_error(instant: int) -> None:
    cron = Cron("* * * * *")
    for method in (cron.next_after_ts, cron.prev_before_ts):
        with pytest.raises(OverflowError):
            method(instant)


@pytest.mark.parametrize("instant", [0, MIN_INSTANT, MAX_INSTANT, 2**62, -(2**62), I64_MAX, I64_MIN])
def test_timestamps_at_the_edges(instant: int) -> None:
    cron = Cron("* * * * *")
    expected_next = None if instant >= MAX_INSTANT - 59 else max(MIN_INSTANT, instant - instant % 60 + 60)
    expected_prev = None if instant <= MIN_INSTANT else min(MAX_INSTANT - 59, (instant - 1) - (instant - 1) % 60)
    assert cron.next_after_ts(instant) == expected_next
    assert cron.prev_before_ts(instant) == expected_prev


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Pacific/Chatham", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("instant", [I64_MAX, I64_MAX - 1, I64_MAX - 4000, I64_MIN, I64_MIN + 1, I64_MIN + 20_000])
def test_searches_from_the_ends_of_i64_find_nothing(tz: str, instant: int) -> None:
    """Nothing fires after an instant beyond year 9999 or before one ahead of year 1. (Found by
    test_timestamps_anywhere_in_i64: `instant + offset` wrapped around i64 when the search
    started outside the supported range, e.g. Berlin next_after_ts(2**63 - 2) answered year 0.)"""
    cron = Cron("* * * * *", tz)
    if instant > 0:
        assert cron.next_after_ts(instant) is None
        assert cron.prev_before_ts(instant) == cron.prev_before_ts(MAX_INSTANT + 1)
    else:
        assert cron.prev_before_ts(instant) is None
        assert cron.next_after_ts(instant) == cron.next_after_ts(MIN_INSTANT - 1)


def test_lone_surrogates_are_a_cron_error() -> None:
    """A str may hold lone surrogates (os.fsdecode, JSON "\\ud800"); it is still just bad input."""
    for text in ("\ud800 * * * *", "* * * * \udfff", "@\udc80"):
        with pytest.raises(CronError):
            Cron(text)


# ---------------------------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------------------------

BAD = [
    ("", r"^empty cron expression: expected 5 or 6 fields$"),
    (" \t ", r"^empty cron expression"),
    ("* * * *", r"^expected 5 fields \(minute hour day-of-month month day-of-week\) or 6 with seconds first, found 4$"),
    ("* * * * * * *", r"found 7$"),
    ("0 0 1 1 * 2024 x", r"found 7$"),
    # Out of range, per field, with the 1-based column of the token.
    ("60 * * * * *", r"^second: 60 is out of range 0-59 \(column 1\)$"),
    ("0 60 * * * *", r"^minute: 60 is out of range 0-59 \(column 3\)$"),
    ("60 * * * *", r"^minute: 60 is out of range 0-59 \(column 1\)$"),
    ("0 24 * * *", r"^hour: 24 is out of range 0-23 \(column 3\)$"),
    ("0 0 0 * *", r"^day-of-month: 0 is out of range 1-31 \(column 5\)$"),
    ("0 0 1,2,32 * *", r"^day-of-month: 32 is out of range 1-31 \(column 9\)$"),
    ("0\t0  32 * *", r"^day-of-month: 32 is out of range 1-31 \(column 6\)$"),
    ("0 0 * 0 *", r"^month: 0 is out of range 1-12 \(column 7\)$"),
    ("0 0 * 13 *", r"^month: 13 is out of range 1-12 \(column 7\)$"),
    ("0 0 * * 8", r"^day-of-week: 8 is out of range 0-7 \(column 9\)$"),
    ("0 0 * * 1-8", r"^day-of-week: 8 is out of range 0-7 \(column 11\)$"),
    ("0 0 0W * *", r"^day-of-month: 0 is out of range 1-31 \(column 5\)$"),
    ("0 0 * * 8L", r"^day-of-week: 8 is out of range 0-7 \(column 9\)$"),
    ("0 0 * * " + "9" * 40, r"^day-of-week: 9{24}\.\.\. is out of range 0-7 \(column 9\)$"),
    # Unknown names, and names in a field that has none.
    ("0 0 * FOO *", r'^month: "FOO" is not valid here: expected a number 1-12 or a name JAN\.\.DEC \(column 7\)$'),
    ("0 0 * JANUARY *", r'^month: "JANUARY" is not valid here'),
    ("0 0 * * FUN", r'^day-of-week: "FUN" is not valid here: expected a number 0-7 or a name SUN\.\.SAT \(column 9\)$'),
    ("0 0 MON * *", r'^day-of-month: "MON" is not valid here: expected a number 1-31 \(column 5\)$'),
    ("0 JAN * * *", r'^hour: "JAN" is not valid here: expected a number 0-23 \(column 3\)$'),
    ("é * * * *", r'^minute: "é" is not valid here: expected a number 0-59 \(column 1\)$'),
    # Macros.
    ("@reboot", r"^@reboot is not a time schedule"),
    ("@REBOOT", r"^@reboot is not a time schedule"),
    ("@fortnightly", r'^unknown macro "@fortnightly": expected one of @yearly @annually @monthly @weekly @daily @midnight @hourly$'),
    ("@", r'^unknown macro "@"'),
    ("@daily 0", r'^unknown macro "@daily 0"'),
    # Never fires.
    ("0 0 30 2 *", r'^"0 0 30 2 \*" can never fire: no month it allows has the day-of-month it asks for$'),
    ("0 0 31 4 *", r'^"0 0 31 4 \*" can never fire'),
    ("0 0 31 2,4,6,9,11 ?", r"can never fire"),
    ("0 0 0 30,31 2 *", r"can never fire"),
    # Steps.
    ("*/0 * * * *", r"^minute: step 0 is out of range 1-60 \(column 3\)$"),
    ("0 0 1-10/0 * *", r"^day-of-month: step 0 is out of range 1-31 \(column 10\)$"),
    ("0 0 * * */8", r"^day-of-week: step 8 is out of range 1-7 \(column 11\)$"),
    ("*/61 * * * *", r"^minute: step 61 is out of range 1-60 \(column 3\)$"),
    ("*/ * * * *", r'^minute: missing step after "/" \(column 3\)$'),
    ("*/x * * * *", r'^minute: step "x" is not a number \(column 3\)$'),
    # ? outside the day fields.
    ("? * * * *", r'^minute: "\?" is only allowed in the day fields, not in the minute field \(column 1\)$'),
    ("0 ? * * *", r'^hour: "\?" is only allowed in the day fields'),
    ("? 0 0 * * *", r'^second: "\?" is only allowed in the day fields'),
    # Lists and ranges.
    ("1,,2 * * * *", r"^minute: empty list item \(column 3\)$"),
    ("1, * * * *", r"^minute: empty list item \(column 3\)$"),
    ("1- * * * *", r"^minute: missing value \(column 3\)$"),
    # Day specials.
    ("0 0 * * MON#6", r'^day-of-week: "6" after # must be 1-5 \(column 13\)$'),
    ("0 0 * * 1#0", r'after # must be 1-5 \(column 11\)$'),
    ("0 0 * * L", r'^day-of-week: "L" in day-of-week needs a weekday before it'),
    ("0 0 5L * *", r'^day-of-month: "5L" is not valid here'),
    ("0 0 1-5W * *", r"W takes a single day"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_error_messages(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Cron(text)
