"""The timing wheel from Python (``fastcron._core.Wheel``): against a brute-force reference on
random workloads, and ``advance_eager``'s rules for which fires the core starts itself."""

from __future__ import annotations

import asyncio
import random
from types import MappingProxyType
from typing import Any

import pytest

from fastcron import _core

T0 = 1_700_000_000_000  # epoch ms, a whole second


# ------------------------------------------------------------------ against a brute-force reference


def _next_ms(trigger: Any, after_ms: int) -> int | None:
    """What the wheel asks a schedule: its first fire strictly after the second ``after_ms`` is in."""
    nxt = trigger.next_after_ts(after_ms // 1000)
    return None if nxt is None else nxt * 1000


class Reference:
    """Every armed entry in a dict; an advance walks all of them."""

    def __init__(self) -> None:
        self.armed: dict[tuple[int, int], tuple[Any, int]] = {}

    def insert(self, job: int, index: int, trigger: Any, after_ms: int) -> int | None:
        deadline = _next_ms(trigger, after_ms)
        if deadline is None:
            self.armed.pop((job, index), None)
        else:
            self.armed[(job, index)] = (trigger, deadline)
        return deadline

    def remove(self, job: int, index: int) -> bool:
        return self.armed.pop((job, index), None) is not None

    def remove_job(self, job: int) -> int:
        keys = [key for key in self.armed if key[0] == job]
        for key in keys:
            del self.armed[key]
        return len(keys)

    def reschedule(self, job: int, index: int, deadline_ms: int) -> bool:
        if (job, index) not in self.armed:
            return False
        self.armed[(job, index)] = (self.armed[(job, index)][0], deadline_ms)
        return True

    def next_deadline(self) -> int | None:
        return min((deadline for _, deadline in self.armed.values()), default=None)

    def advance(self, now_ms: int) -> list[tuple[int, int, int, bool]]:
        fires = []
        for key, (trigger, deadline) in list(self.armed.items()):
            while deadline is not None and deadline <= now_ms:
                fires.append((key[0], key[1], deadline, False))
                deadline = _next_ms(trigger, deadline)
            if deadline is None:
                del self.armed[key]
            else:
                self.armed[key] = (trigger, deadline)
        return fires


def _random_trigger(rng: random.Random, shared: list[Any]) -> Any:
    kind = rng.randrange(4)
    if kind == 0:  # one parsed rule held by many entries, as the scheduler's parse cache does
        return rng.choice(shared)
    if kind == 1:
        return _core.Cron(rng.choice(["*/2 * * * * *", "*/7 * * * * *", "* * * * *", "30 * * * * *"]), "Europe/Berlin")
    if kind == 2:
        return _core.Interval(rng.choice(["1s", "3s", "90s"]), start=T0 // 1000 + rng.randrange(10))
    return _core.Once(T0 // 1000 + rng.randrange(0, 400))


@pytest.mark.parametrize("seed", range(12))
def test_wheel_matches_a_brute_force_reference(seed: int) -> None:
    rng = random.Random(seed)
    shared = [_core.Cron("*/3 * * * * *"), _core.Cron("*/5 * * * * *", "America/New_York")]
    wheel, ref = _core.Wheel(T0), Reference()
    now = T0
    fired = 0
    for _ in range(400):
        op = rng.randrange(10)
        job, index = rng.randrange(30), rng.randrange(2)
        if op < 4:
            trigger = _random_trigger(rng, shared)
            after = now + rng.randrange(-2_000, 2_000)
            assert wheel.insert(job, index, trigger, after) == ref.insert(job, index, trigger, after)
        elif op == 4:
            assert wheel.remove(job, index) == ref.remove(job, index)
        elif op == 5:
            assert wheel.remove_job(job) == ref.remove_job(job)
        elif op == 6:
            deadline = now + rng.randrange(-1_500, 5_000)  # past deadlines fire at the next advance
            assert wheel.reschedule(job, index, deadline) == ref.reschedule(job, index, deadline)
        else:
            now += rng.choice([0, 1, 999, 1_000, 1_001, 2_500, 30_000, 120_000])
            got, want = wheel.advance(now), ref.advance(now)
            assert sorted(got) == sorted(want)
            assert [fire[2] for fire in got] == sorted(fire[2] for fire in got), "oldest first"
            fired += len(got)
        assert wheel.next_deadline() == ref.next_deadline()
        assert len(wheel) == len(ref.armed)
    assert fired > 200, "the workload must actually fire"


def test_insert_jobs_arms_like_insert_and_is_all_or_nothing() -> None:
    triggers = [_core.Cron("*/3 * * * * *"), _core.Interval("5s"), _core.Once(T0 // 1000 - 10), _core.Cron("0 * * * *")]
    per_job = [tuple(triggers[(job + i) % 4] for i in range(job % 3)) for job in range(40)]  # 0, 1 or 2 each
    one, many = _core.Wheel(T0), _core.Wheel(T0)
    deadlines = {
        (100 + job, index): one.insert(100 + job, index, trigger, T0)
        for job, schedules in enumerate(per_job)
        for index, trigger in enumerate(schedules)
    }
    earliest = many.insert_jobs(100, per_job, T0)
    assert earliest == min(d for d in deadlines.values() if d is not None)
    assert {key: many.deadline_of(*key) for key in deadlines} == deadlines
    assert len(many) == len(one) and many.deadline_of(100, 0) is None, "job 100 has no schedules"
    with pytest.raises(TypeError):
        many.insert_jobs(500, [(triggers[0],), (triggers[1], "* * * * *")], T0)
    assert many.deadline_of(500, 0) is None and many.deadline_of(501, 0) is None, "nothing of a failed batch is armed"
    assert many.insert_jobs(600, [], T0) is None
    with pytest.raises(OverflowError):
        many.insert_jobs(2**64 - 1, [(), (triggers[0],)], T0)


def test_time_must_not_go_backwards() -> None:
    wheel = _core.Wheel(T0)
    wheel.advance(T0 + 5_000)
    with pytest.raises(ValueError, match="before the wheel's time"):
        wheel.advance(T0 + 4_999)


# ------------------------------------------------------------------ advance_eager


class Slot:
    """A job as ``advance_eager`` sees it: its EagerJob, runs in progress, and ``armed``."""

    def __init__(self, fast: Any, *, armed: bool = True, running: int = 0) -> None:
        self.fast = fast
        self.armed = armed
        self.running = running


def advance_eager(wheel: Any, now_ms: int, slots: list[Slot], budget: int) -> Any:
    """The scheduler's call: the per-job lists are built from the slots."""
    return wheel.advance_eager(now_ms, [s.fast for s in slots], [s.running for s in slots], slots, budget)


EVERY_SECOND = _core.Cron("* * * * * *")


def _eager(*calls: tuple[Any, tuple[Any, ...], dict[str, Any]], grace_ms: int = 60_000, limit: int = 1) -> Any:
    return _core.EagerJob(grace_ms, limit, list(calls))


def _armed(slots: list[Slot], wheel: Any, schedules: int = 1) -> None:
    for job in range(len(slots)):
        for index in range(schedules):
            wheel.insert(job, index, EVERY_SECOND, T0)


def test_advance_eager_starts_simple_jobs_and_leaves_the_rest() -> None:
    calls: list[Any] = []

    async def hello(name: str, *, punct: str = "!") -> str:
        calls.append(name)
        return name + punct

    async def boom() -> None:
        raise RuntimeError("boom")

    slots = [
        Slot(_eager((hello, ("a",), {}))),
        Slot(None),  # not a simple job: the general path
        Slot(_eager((hello, ("c",), {"punct": "?"}))),
        Slot(_eager((boom, (), {}))),
        Slot(_eager((hello, ("e",), {})), running=1),  # at its limit
        Slot(_eager((hello, ("f",), {}), limit=2), running=1),  # room for one more
    ]
    wheel = _core.Wheel(T0)
    _armed(slots, wheel)
    done, suspended, failed, rest = advance_eager(wheel, T0 + 1_000, slots, 100)
    assert sorted(done) == [(0, 0, T0 + 1_000, "a!"), (2, 0, T0 + 1_000, "c?"), (5, 0, T0 + 1_000, "f!")]
    assert suspended == []
    assert [(job, index, at) for job, index, at, _ in failed] == [(3, 0, T0 + 1_000)]
    assert isinstance(failed[0][3], RuntimeError)
    assert sorted(rest) == [(1, 0, T0 + 1_000, False), (4, 0, T0 + 1_000, False)]
    assert sorted(calls) == ["a", "c", "f"]
    assert wheel.deadline_of(0, 0) == T0 + 2_000, "re-armed like advance"


def test_advance_eager_second_schedule_uses_its_own_call() -> None:
    async def which(n: int) -> int:
        return n

    slots = [Slot(_eager((which, (0,), {}), (which, (1,), {}), (which, (2,), {}), limit=5))]
    wheel = _core.Wheel(T0)
    _armed(slots, wheel, schedules=3)
    done, _, _, rest = advance_eager(wheel, T0 + 1_000, slots, 100)
    assert sorted((index, value) for _, index, _, value in done) == [(0, 0), (1, 1), (2, 2)]
    assert rest == []


def test_advance_eager_keeps_order_after_a_late_fire() -> None:
    async def noop() -> None:
        return None

    slots = [Slot(_eager((noop, (), {}), grace_ms=500)), Slot(_eager((noop, (), {})))]
    wheel = _core.Wheel(T0)
    wheel.insert(0, 0, EVERY_SECOND, T0)
    wheel.insert(1, 0, _core.Cron("*/2 * * * * *"), T0)
    # At T0+2.6 s: job 0's fire of T0+1 s is past its 500 ms grace; every later fire of the tick
    # takes the general path too, even job 1's on-time ones, so the tick keeps its order.
    done, _, _, rest = advance_eager(wheel, T0 + 2_600, slots, 100)
    assert done == []
    assert sorted(rest) == [(0, 0, T0 + 1_000, False), (0, 0, T0 + 2_000, False), (1, 0, T0 + 2_000, False)]


def test_advance_eager_starts_no_second_fire_of_a_suspended_job() -> None:
    async def waits() -> None:
        await asyncio.sleep(0)

    slots = [Slot(_eager((waits, (), {}), (waits, (), {}), limit=5)), Slot(_eager((waits, (), {})))]
    wheel = _core.Wheel(T0)
    _armed(slots, wheel, schedules=2)
    wheel.remove(1, 1)
    done, suspended, failed, rest = advance_eager(wheel, T0 + 1_000, slots, 100)
    assert done == [] and failed == []
    assert sorted((job, index) for job, index, *_ in suspended) == [(0, 0), (1, 0)]
    assert rest == [(0, 1, T0 + 1_000, False)]
    for *_, coroutine, _yielded in suspended:
        coroutine.close()


def test_advance_eager_respects_the_suspension_budget() -> None:
    async def waits() -> None:
        await asyncio.sleep(0)

    async def noop() -> None:
        return None

    slots = [Slot(_eager((waits, (), {}))) for _ in range(5)]
    wheel = _core.Wheel(T0)
    _armed(slots, wheel)
    _, suspended, _, rest = advance_eager(wheel, T0 + 1_000, slots, 2)
    assert len(suspended) == 2 and len(rest) == 3
    for *_, coroutine, _yielded in suspended:
        coroutine.close()
    # No room at all (the scheduler's max_concurrency is reached): nothing starts in the core.
    done, suspended, _, rest = advance_eager(wheel, T0 + 2_000, [Slot(_eager((noop, (), {}))) for _ in range(5)], 0)
    assert done == [] and suspended == [] and len(rest) == 5


def test_advance_eager_sees_a_job_disarmed_earlier_in_the_same_tick() -> None:
    """A job run by the core may pause another whose fire is due in the same tick: the
    scheduler takes the other's entries out of the wheel and clears ``armed``. Its fire, already
    taken out by the advance, must not start."""
    wheel = _core.Wheel(T0)
    started: list[int] = []

    def job(n: int) -> Any:
        async def run() -> None:
            started.append(n)
            if n == 0:
                for other in (1, 2):
                    wheel.remove_job(other)
                    slots[other].armed = False

        return run

    slots = [Slot(_eager((job(n), (), {}))) for n in range(3)]
    _armed(slots, wheel)
    done, _, _, rest = advance_eager(wheel, T0 + 1_000, slots, 100)
    # The order within one millisecond is unspecified: job 0 may run first or last.
    assert 0 in started
    first = started.index(0)
    assert all(n == 0 or started.index(n) < first for n in started), "nothing started after the pause"
    assert len(done) + len(rest) == 3
    assert wheel.deadline_of(1, 0) is None and wheel.deadline_of(0, 0) == T0 + 2_000


def test_eager_job_takes_any_mapping_of_keywords() -> None:
    async def echo(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    slots = [Slot(_eager((echo, (), MappingProxyType({"a": 1}))))]  # type: ignore[arg-type]
    wheel = _core.Wheel(T0)
    _armed(slots, wheel)
    done, *_ = advance_eager(wheel, T0 + 1_000, slots, 100)
    assert [value for *_, value in done] == [{"a": 1}]


def test_eager_job_refuses_what_it_cannot_call() -> None:
    async def noop() -> None:
        return None

    with pytest.raises(TypeError):
        _core.EagerJob(0, 1, [(noop, [], {})])  # args must be a tuple
    with pytest.raises(TypeError, match="Mapping"):
        _core.EagerJob(0, 1, [(noop, (), 5)])  # type: ignore[list-item]
    assert "calls=2" in repr(_core.EagerJob(0, 1, [(noop, (), {}), (noop, (), {})]))
