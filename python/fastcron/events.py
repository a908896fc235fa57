"""Events: what happened to which run, who listens, and the receivers shipped with fastcron.

The scheduler asks ``EventBus.wants(kind)`` before building an event, so with nobody listening a
fire costs no event object. Events are queued and delivered together on the next loop iteration
(one callback per batch, in order), so listeners never run in the middle of a dispatch.
Listener errors are logged and contained. Receivers that do I/O (webhooks) hand the event to a
worker thread and return at once: a slow or dead endpoint never delays a run.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final, Literal

from fastcron._clock import from_ms
from fastcron.errors import ConfigError
from fastcron.job import JobResult

__all__ = [
    "Event",
    "EventBus",
    "EventKind",
    "LoggingReceiver",
    "Receiver",
    "WebhookReceiver",
]

log = logging.getLogger("fastcron.events")


class EventKind(str, enum.Enum):
    """Kinds of events; each compares equal to its string value (``EventKind.FAILED == "failed"``)."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    MISSED = "missed"
    COOLDOWN = "cooldown"
    PAUSED = "paused"
    RESUMED = "resumed"

    def __str__(self) -> str:
        return self.value


KINDS: Final = frozenset(k.value for k in EventKind)
ALL: Final = "*"


class Event:
    """One thing that happened. Built only when someone listens for its kind.

    ``at_ms``/``scheduled_ms`` are epoch ms (``at``/``scheduled`` as datetimes in the job's zone);
    ``run_id``, ``attempt``, ``trigger``, ``tenant`` describe the run (None for job-level events
    such as paused); ``error`` is the exception of a failed/timed-out/retrying run; ``result`` what
    a run returned; ``detail`` extra facts (retry delay, cooldown end, how many fires were missed).
    """

    __slots__ = (
        "_tz",
        "at_ms",
        "attempt",
        "detail",
        "duration_ms",
        "error",
        "job",
        "kind",
        "result",
        "run_id",
        "scheduled_ms",
        "tenant",
        "trigger",
    )

    def __init__(
        self,
        kind: str,
        job: str,
        at_ms: int,
        *,
        run_id: str | None = None,
        scheduled_ms: int | None = None,
        attempt: int | None = None,
        trigger: str | None = None,
        tenant: Any = None,
        error: BaseException | None = None,
        result: Any = None,
        duration_ms: int | None = None,
        detail: dict[str, Any] | None = None,
        tz: Any = None,
    ) -> None:
        self.kind = kind
        self.job = job
        self.at_ms = at_ms
        self.run_id = run_id
        self.scheduled_ms = scheduled_ms
        self.attempt = attempt
        self.trigger = trigger
        self.tenant = tenant
        self.error = error
        self.result = result
        self.duration_ms = duration_ms
        self.detail = detail
        self._tz = tz

    @property
    def at(self) -> datetime:
        return from_ms(self.at_ms, self._tz)

    @property
    def scheduled(self) -> datetime | None:
        return None if self.scheduled_ms is None else from_ms(self.scheduled_ms, self._tz)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO strings, the error as type and message)."""
        result = self.result.to_dict() if isinstance(self.result, JobResult) else self.result
        return {
            "kind": str(self.kind),
            "job": self.job,
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "scheduled": None if self.scheduled is None else self.scheduled.isoformat(),
            "attempt": self.attempt,
            "trigger": self.trigger,
            "tenant": self.tenant,
            "error": None if self.error is None else {"type": type(self.error).__name__, "message": str(self.error)},
            "result": result,
            "duration_ms": self.duration_ms,
            "detail": self.detail,
        }

    def summary(self) -> str:
        """One line for humans (logs, chat)."""
        parts = [f"job {self.job!r} {self.kind}"]
        if self.tenant is not None:
            parts.append(f"tenant={self.tenant}")
        if self.scheduled_ms is not None:
            parts.append(f"scheduled {self.scheduled.isoformat()}")  # type: ignore[union-attr]
        if self.attempt is not None and self.attempt > 1:
            parts.append(f"attempt {self.attempt}")
        if self.duration_ms is not None:
            parts.append(f"in {self.duration_ms / 1000:.3f}s")
        if self.error is not None:
            parts.append(f"{type(self.error).__name__}: {self.error}")
        if isinstance(self.result, JobResult) and self.result.message:
            parts.append(self.result.message)
        if self.detail:
            parts.append(", ".join(f"{k}={v}" for k, v in self.detail.items()))
        return " - ".join(parts)

    def __repr__(self) -> str:
        return f"<Event {self.summary()}>"


Callback = Callable[[Event], Any]


def _kinds(kind: str | EventKind | Iterable[str | EventKind] | None) -> frozenset[str]:
    if kind is None or kind == ALL:
        return KINDS
    items = [kind] if isinstance(kind, (str, EventKind)) else list(kind)
    out = set()
    for item in items:
        value = item.value if isinstance(item, EventKind) else item
        if value == ALL:
            return KINDS
        if value not in KINDS:
            raise ConfigError(f"unknown event kind {item!r}; expected one of {', '.join(sorted(KINDS))} or '*'")
        out.add(value)
    return frozenset(out)


def _jobs(job: str | Iterable[str] | None) -> frozenset[str] | None:
    if job is None:
        return None
    return frozenset([job]) if isinstance(job, str) else frozenset(job)


class EventBus:
    """Subscriptions and delivery. ``wanted`` is the set of kinds someone listens for."""

    __slots__ = ("_loop", "_pending", "_subs", "wanted")

    def __init__(self) -> None:
        self._subs: dict[str, list[tuple[Callback, frozenset[str] | None]]] = {}
        self._pending: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wanted: set[str] = set()

    def on(
        self,
        kind: str | EventKind | Iterable[str | EventKind] | None,
        callback: Callback,
        job: str | Iterable[str] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for events of ``kind`` ("*" for all), of ``job`` if given.

        The callback may be sync or async (an awaitable it returns is run as a task). Returns a
        function that unsubscribes.
        """
        if not callable(callback):
            raise ConfigError(f"event callback must be callable, got {callback!r}")
        kinds = _kinds(kind)
        entry = (callback, _jobs(job))
        for k in kinds:
            self._subs.setdefault(k, []).append(entry)
        self.wanted.update(kinds)

        def unsubscribe() -> None:
            for k in kinds:
                subs = self._subs.get(k, [])
                if entry in subs:
                    subs.remove(entry)
                if not subs:
                    self._subs.pop(k, None)
                    self.wanted.discard(k)

        return unsubscribe

    def callbacks(self) -> list[Callback]:
        """Every subscribed callback, once each."""
        seen: dict[int, Callback] = {}
        for subs in self._subs.values():
            for callback, _ in subs:
                seen.setdefault(id(callback), callback)
        return list(seen.values())

    def emit(self, event: Event) -> None:
        """Queue ``event`` for delivery on the next loop iteration (or now, with no loop running)."""
        pending = self._pending
        pending.append(event)
        if len(pending) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Deliver every queued event now, in order."""
        while self._pending:
            batch, self._pending = self._pending, []
            for event in batch:
                for callback, jobs in self._subs.get(event.kind, ()):
                    if jobs is None or event.job in jobs:
                        _call(callback, event)


def _call(callback: Callback, event: Event) -> None:
    try:
        outcome = callback(event)
    except Exception:
        log.exception("event listener %r failed on %r", callback, event)
        return
    if inspect.isawaitable(outcome):
        task = asyncio.ensure_future(outcome)
        task.add_done_callback(_log_listener_task)


def _log_listener_task(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("async event listener failed", exc_info=task.exception())


class Receiver:
    """A callback with its own filter: ``kinds`` (None = all) and ``jobs`` (None = all).

    ``scheduler.add_receiver(r)`` subscribes it; the scheduler calls ``close()`` when it stops.
    """

    kinds: frozenset[str]
    jobs: frozenset[str] | None

    def __init__(self, *, kinds: Iterable[str | EventKind] | str | None = None, jobs: Iterable[str] | str | None = None):
        self.kinds = _kinds(kinds)
        self.jobs = _jobs(jobs)

    def __call__(self, event: Event) -> None:
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is pending (waiting at most ``timeout`` seconds) and release resources."""


class LoggingReceiver(Receiver):
    """Logs each event as one line: failures and time-outs at ERROR (with traceback), missed and
    cooldown at WARNING, the rest at ``level`` (INFO)."""

    _LEVELS: Final = {
        "failed": logging.ERROR,
        "timed_out": logging.ERROR,
        "missed": logging.WARNING,
        "cooldown": logging.WARNING,
        "retrying": logging.WARNING,
    }

    def __init__(
        self,
        logger: logging.Logger | str = "fastcron",
        *,
        kinds: Iterable[str | EventKind] | str | None = None,
        jobs: Iterable[str] | str | None = None,
        level: int = logging.INFO,
    ) -> None:
        super().__init__(kinds=kinds, jobs=jobs)
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def __call__(self, event: Event) -> None:
        level = self._LEVELS.get(str(event.kind), self.level)
        exc_info = event.error if level >= logging.ERROR and event.error is not None else None
        self.logger.log(level, "%s", event.summary(), exc_info=exc_info)


WebhookFormat = Literal["json", "slack"]
_STOP: Final = object()


class WebhookReceiver(Receiver):
    """POSTs events to ``url`` from a worker thread, each request bounded by ``timeout`` seconds.

    ``format="json"`` sends ``Event.to_dict()``; ``format="slack"`` sends ``{"text": summary}``,
    which Slack (and Mattermost, Discord's /slack endpoint) accept. At most ``max_pending``
    events wait; beyond that new ones are dropped with a warning rather than growing without bound.
    Failures are logged and counted (``sent``, ``failed``, ``dropped``); nothing is retried.
    """

    def __init__(
        self,
        url: str,
        *,
        format: WebhookFormat = "json",
        kinds: Iterable[str | EventKind] | str | None = None,
        jobs: Iterable[str] | str | None = None,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
        max_pending: int = 1000,
    ) -> None:
        super().__init__(kinds=kinds, jobs=jobs)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url must start with http:// or https://, got {url!r}")
        if format not in ("json", "slack"):
            raise ConfigError(f"webhook format must be 'json' or 'slack', got {format!r}")
        self.url = url
        self.format = format
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": "fastcron", **(headers or {})}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def payload(self, event: Event) -> dict[str, Any]:
        """The JSON body sent for ``event``."""
        if self.format == "slack":
            return {"text": f"[fastcron] {event.summary()}"}
        return event.to_dict()

    def __call__(self, event: Event) -> None:
        # Serialise on the loop (cheap, and the event's fields may change later); send elsewhere.
        body = json.dumps(self.payload(event), default=str).encode()
        self._ensure_thread()
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1
            log.warning("webhook %s: %d events pending, dropping %s", self.url, self._queue.maxsize, event.kind)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name="fastcron-webhook", daemon=True)
                    self._thread.start()

    def _work(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is _STOP:
                    return
                self._post(body)
            finally:
                self._queue.task_done()

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) checked
                response.read()
            self.sent += 1
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.failed += 1
            log.warning("webhook %s failed: %s", self.url, exc)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was sent or failed; False if ``timeout`` ran out first."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        if self._thread is None:
            return True
        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            return
        self._thread.join(timeout)
        self._thread = None
