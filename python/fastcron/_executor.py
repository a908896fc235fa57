"""Running job functions: async ones on the loop (eagerly when safe), sync ones in a bounded pool.

Eager start is Python 3.12's eager task factory in miniature, for 3.11: the coroutine's first
step runs inside the dispatcher (``coro.send(None)``); only if it suspends is a Task created to
drive the rest. A no-op job then costs a function call instead of a Task (~0.3 us vs ~5 us).
``resume_in_task`` hands the suspended coroutine and the future it yielded to a Task, which picks
up exactly where the first step stopped (sends, throws and cancellation pass straight through).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any

__all__ = ["ThreadRunner", "resume_in_task"]


class _Continue:
    """An awaitable that first re-yields what the coroutine yielded, then keeps driving it."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._first
        self._first = None
        send, throw = coro.send, coro.throw
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and anything else thrown in by the Task
                try:
                    yielded = throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = send(sent)
            except StopIteration as stop:
                return stop.value


async def _drive(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _Continue(coro, first)


def resume_in_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    first: Any,
    context: contextvars.Context,
) -> asyncio.Task[Any]:
    """A Task that continues ``coro``, which already ran to its first suspension and yielded ``first``.

    ``first`` is what asyncio's machinery expects a Task to receive (a blocking future, or None
    for a bare yield); the Task sees it on its first step as if it had run that step itself.
    """
    return loop.create_task(_drive(coro, first), context=context)


def _default_threads() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


_STOP: Any = None


class ThreadRunner:
    """A bounded pool of *daemon* threads for sync jobs, started lazily, one per concurrent call up
    to ``max_threads``.

    Not ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, so one hung job
    would keep a stopped scheduler's process alive forever. A thread cannot be killed; after
    ``stop(grace)`` a hung one is abandoned and dies with the process. When every thread is busy,
    calls wait in a FIFO queue; they count as running for overlap and concurrency purposes.
    """

    __slots__ = ("_idle", "_lock", "_queue", "_threads", "max_threads", "pending")

    def __init__(self, max_threads: int | None = None) -> None:
        self.max_threads = max_threads or _default_threads()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self.pending: set[asyncio.Future[Any]] = set()

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> asyncio.Future[Any]:
        """Run ``func(*args, **kwargs)`` in a worker, in a copy of the caller's context; the
        returned future settles on ``loop``."""
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()
        self._queue.put((future, loop, functools.partial(context.run, func, *args, **kwargs)))
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # that worker will take it
            elif self._threads < self.max_threads:
                self._threads += 1
                threading.Thread(target=self._work, name=f"fastcron-job-{self._threads}", daemon=True).start()
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, loop, call = item
            if future.cancelled():
                self._went_idle()
                continue
            try:
                result = call()
            except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting side
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)
            self._went_idle()

    def _went_idle(self) -> None:
        with self._lock:
            self._idle += 1

    def shutdown(self) -> None:
        """Stop taking work: queued calls are cancelled, idle workers exit, busy ones exit when
        their call returns (or with the process)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[1].call_soon_threadsafe(item[0].cancel)
        with self._lock:
            for _ in range(self._threads):
                self._queue.put(_STOP)
            self._threads = 0
            self._idle = 0


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
