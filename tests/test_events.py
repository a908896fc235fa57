"""Events: subscriptions and filters, contained listener errors, the logging receiver, and webhooks
posted to a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fastcron.errors import ConfigError
from fastcron.events import Event, EventBus, EventKind, LoggingReceiver, WebhookReceiver
from fastcron.job import JobContext, JobResult
from fastcron.registry import Registry
from fastcron.scheduler import Scheduler
from fastcron.testing import FakeClock

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)


class Hook:
    """A loopback HTTP server that records POSTed JSON bodies; ``delay`` slows every answer."""

    def __init__(self, delay: float = 0.0) -> None:
        self.bodies: list[Any] = []
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if delay:
                    time.sleep(delay)
                hook.bodies.append({"body": body, "type": self.headers["Content-Type"], "path": self.path})
                hook.received.set()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def _registry() -> Registry:
    reg = Registry()

    @reg.job("*/10 * * * *", name="ok")
    async def ok() -> JobResult:
        return JobResult(message="synced", processed=3)

    @reg.job("*/10 * * * *", name="bad")
    async def bad(ctx: JobContext) -> None:
        raise ValueError(f"bad at {ctx.scheduled:%H:%M}")

    return reg


def _run_for(reg: Registry, duration: str, setup: Any) -> Scheduler:
    async def main() -> Scheduler:
        clock = FakeClock(START)
        async with Scheduler(reg, clock=clock) as scheduler:
            setup(scheduler)
            await clock.advance(duration)
        return scheduler

    return asyncio.run(main())


def test_on_filters_by_kind_and_job_and_unsubscribes() -> None:
    got: dict[str, list[str]] = {"all": [], "failed": [], "ok-only": [], "two-kinds": [], "gone": []}

    def setup(s: Scheduler) -> None:
        s.on("*", lambda e: got["all"].append(f"{e.job}:{e.kind}"))
        s.on(EventKind.FAILED, lambda e: got["failed"].append(e.job))
        s.on(None, lambda e: got["ok-only"].append(str(e.kind)), job="ok")
        s.on(["started", "succeeded"], lambda e: got["two-kinds"].append(str(e.kind)), job=["bad"])
        s.on("started", lambda e: got["gone"].append(e.job))()  # unsubscribed at once

    _run_for(_registry(), "10m", setup)
    assert got["all"] == ["ok:started", "ok:succeeded", "bad:started", "bad:failed"]
    assert got["failed"] == ["bad"]
    assert got["ok-only"] == ["started", "succeeded"]
    assert got["two-kinds"] == ["started"]
    assert got["gone"] == []


def test_event_fields_and_json_form() -> None:
    events: list[Event] = []
    _run_for(_registry(), "10m", lambda s: s.on(["succeeded", "failed"], events.append))
    ok, bad = events
    assert (ok.kind, ok.job, ok.run_id, ok.attempt, ok.trigger) == ("succeeded", "ok", "ok#1", 1, "schedule")
    assert ok.scheduled == datetime(2024, 1, 1, 0, 10, tzinfo=UTC) and ok.duration_ms == 0
    assert isinstance(bad.error, ValueError)
    data = json.loads(json.dumps(bad.to_dict()))
    assert data["error"] == {"type": "ValueError", "message": "bad at 00:10"}
    assert data["scheduled"] == "2024-01-01T00:10:00+00:00"
    assert json.loads(json.dumps(ok.to_dict()))["result"] == {"message": "synced", "processed": 3, "failed": None}
    assert ok.summary() == "job 'ok' succeeded - scheduled 2024-01-01T00:10:00+00:00 - in 0.000s - synced"


def test_async_listeners_and_contained_errors(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    async def async_listener(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"async {event.job}")

    async def async_broken(event: Event) -> None:
        raise RuntimeError("async listener broke")

    def setup(s: Scheduler) -> None:
        s.on("succeeded", async_listener)
        s.on("succeeded", async_broken)

    with caplog.at_level(logging.ERROR, logger="fastcron.events"):
        _run_for(_registry(), "10m", setup)
    assert seen == ["async ok"]
    assert "async event listener failed" in caplog.text


def test_unknown_kind_and_non_callable_are_refused() -> None:
    bus = EventBus()
    with pytest.raises(ConfigError, match="unknown event kind 'finished'; expected one of cooldown, failed"):
        bus.on("finished", print)
    with pytest.raises(ConfigError, match="event callback must be callable"):
        bus.on("failed", "print")  # type: ignore[arg-type]


def test_bus_builds_nothing_when_nobody_listens() -> None:
    bus = EventBus()
    assert bus.wanted == set()
    off = bus.on("failed", print)
    assert bus.wanted == {"failed"}
    off()
    assert bus.wanted == set()


def test_logging_receiver_levels(caplog: pytest.LogCaptureFixture) -> None:
    receiver = LoggingReceiver("fastcron.test", kinds=["succeeded", "failed"])
    with caplog.at_level(logging.INFO, logger="fastcron.test"):
        _run_for(_registry(), "10m", lambda s: s.add_receiver(receiver))
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "fastcron.test"]
    assert records == [
        ("INFO", "job 'ok' succeeded - scheduled 2024-01-01T00:10:00+00:00 - in 0.000s - synced"),
        ("ERROR", "job 'bad' failed - scheduled 2024-01-01T00:10:00+00:00 - in 0.000s - ValueError: bad at 00:10"),
    ]
    assert caplog.records[-1].exc_info is not None


def test_webhook_posts_json_filtered_by_kind_and_job(hook: Hook) -> None:
    receiver = WebhookReceiver(hook.url, kinds=["failed", "succeeded"], jobs=["bad"], timeout=5)
    _run_for(_registry(), "20m", lambda s: s.add_receiver(receiver))  # stop() closes and flushes it
    assert receiver.sent == 2 and receiver.failed == 0
    bodies = [b["body"] for b in hook.bodies]
    assert [(b["kind"], b["job"], b["scheduled"]) for b in bodies] == [
        ("failed", "bad", "2024-01-01T00:10:00+00:00"),
        ("failed", "bad", "2024-01-01T00:20:00+00:00"),
    ]
    assert bodies[0]["error"] == {"type": "ValueError", "message": "bad at 00:10"}
    assert {b["type"] for b in hook.bodies} == {"application/json"}
    assert {b["path"] for b in hook.bodies} == {"/hook"}


def test_webhook_slack_form(hook: Hook) -> None:
    receiver = WebhookReceiver(hook.url, format="slack", kinds="failed")
    _run_for(_registry(), "10m", lambda s: s.add_receiver(receiver))
    assert [b["body"] for b in hook.bodies] == [
        {"text": "[fastcron] job 'bad' failed - scheduled 2024-01-01T00:10:00+00:00 - in 0.000s - ValueError: bad at 00:10"}
    ]


def test_a_slow_webhook_never_blocks_runs_and_times_out() -> None:
    slow = Hook(delay=1.0)
    try:
        receiver = WebhookReceiver(slow.url, kinds="*", timeout=0.2)
        reg = Registry()
        done: list[float] = []

        @reg.job("* * * * *", name="fast")
        async def fast() -> None:
            done.append(time.monotonic())

        async def main() -> None:
            clock = FakeClock(START)
            async with Scheduler(reg, clock=clock) as s:
                s.add_receiver(receiver)
                began = time.monotonic()
                await clock.advance("5m")
                # 10 events: posting them on the loop would take >= 2 s (0.2 s timeout each).
                assert time.monotonic() - began < 1.0
                assert len(done) == 5
            # stop() flushed the receiver: every POST ended, by timing out.
            assert receiver.sent + receiver.failed == 10
            assert receiver.failed >= 1

        asyncio.run(main())
    finally:
        slow.close()


def test_webhook_to_a_closed_port_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    server = Hook()
    url = server.url
    server.close()  # nothing listens there any more
    receiver = WebhookReceiver(url, kinds="failed", timeout=1)
    with caplog.at_level(logging.WARNING, logger="fastcron.events"):
        _run_for(_registry(), "10m", lambda s: s.add_receiver(receiver))
    assert receiver.failed == 1 and receiver.sent == 0
    assert f"webhook {url} failed" in caplog.text


def test_webhook_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="webhook url must start with http:// or https://, got 'ftp://x'"):
        WebhookReceiver("ftp://x")
    with pytest.raises(ConfigError, match="webhook format must be 'json' or 'slack', got 'xml'"):
        WebhookReceiver("http://127.0.0.1:1/", format="xml")  # type: ignore[arg-type]


def test_webhook_drops_beyond_max_pending(caplog: pytest.LogCaptureFixture) -> None:
    slow = Hook(delay=0.3)
    try:
        receiver = WebhookReceiver(slow.url, max_pending=1, timeout=2)
        event = Event("failed", "j", 0)
        with caplog.at_level(logging.WARNING, logger="fastcron.events"):
            for _ in range(5):
                receiver(event)
        assert receiver.dropped >= 2
        assert "dropping failed" in caplog.text
        receiver.close(timeout=5)
        assert receiver.sent == 5 - receiver.dropped
    finally:
        slow.close()
