"""``python -m fastcron``: the command line.

``main(argv)`` returns the exit code: 0 ok, 1 a job failed, 2 bad usage or bad input (unknown job,
bad expression, unreadable database; always one line on stderr and no traceback).

Every command takes ``--json`` and then prints ``{"data": ..., "artifact_type": "table|card|text",
"title": ...}``; otherwise tables (rich), in colour on a terminal. The database is ``--db``, else
``FASTCRON_DB``, else ``./fastcron.db``; the app (``start``, ``run``) is ``--app``, else
``FASTCRON_APP``, else ``[tool.fastcron] app`` in ``./pyproject.toml``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastcron.abc import Command, DynamicTarget, JobDef, JobRecord, RunRecord
from fastcron.errors import FastcronError
from fastcron.triggers import parse_schedule

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
STATUSES = ("running", "succeeded", "failed", "timed_out", "cancelled", "skipped", "missed", "interrupted")
CONTROL = {"enable": ("enabled", True), "disable": ("enabled", False), "pause": ("paused", True), "resume": ("paused", False)}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,199}$")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other bad input."""

    def error(self, message: str) -> Any:  # noqa: ANN401 - argparse's signature
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


# ---------------------------------------------------------------------------------- parser


def _build_parser() -> _Parser:
    parser = _Parser(prog="fastcron", description="Background jobs on cron schedules.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str, *, db: bool = True, app: bool = False) -> _Parser:
        sub: _Parser = commands.add_parser(name, help=help)
        if db:
            sub.add_argument("--db", default=None,
                             help="SQLite file or postgresql://... URL (default $FASTCRON_DB or ./fastcron.db)")
        if app:
            sub.add_argument("--app", default=None, help="module or file with the jobs (default $FASTCRON_APP)")
        sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    start = command("start", "run the scheduler in the foreground", app=True)
    start.add_argument("--grace", type=float, default=10.0, help="seconds to let runs finish on stop")
    command("list", "list jobs")
    show = command("show", "show one job")
    show.add_argument("name")
    nxt = command("next", "list the next fire times")
    nxt.add_argument("--count", type=int, default=10)
    nxt.add_argument("--job", default=None)
    run = command("run", "run jobs now, in this process", app=True)
    run.add_argument("names", nargs="*")
    run.add_argument("--all", action="store_true", help="every job")
    run.add_argument("--sequential", action="store_true", help="one after another")
    run.add_argument("--via-scheduler", action="store_true", help="ask the running scheduler to run them (within a second)")
    history = command("history", "list past runs")
    history.add_argument("--job", default=None)
    history.add_argument("--status", default=None, choices=STATUSES)
    history.add_argument("-n", type=int, default=20, dest="limit")
    for name in CONTROL:
        command(name, f"{name} a job").add_argument("name")
    add = command("add", "add a dynamic job: --call pkg.mod:func, or a command after --")
    add.add_argument("name")
    add.add_argument("--schedule", action="append", default=None, help="cron, interval, ... (repeatable; none: manual)")
    add.add_argument("--tz", default=None)
    add.add_argument("--call", default=None, help="pkg.module:function")
    add.add_argument("--args", default="[]", help="JSON list of positional arguments")
    add.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    add.add_argument("--shell", action="store_true", help="run the command through the shell")
    add.add_argument("--timeout", type=float, default=None, help="seconds")
    add.add_argument("--description", default=None)
    command("remove", "remove a dynamic (or orphaned) job").add_argument("name")
    explain = command("explain", "describe a schedule and list its next fire times", db=False)
    explain.add_argument("expr", help="a cron expression, macro, interval or ISO-8601 datetime")
    explain.add_argument("--tz", default=None, help="IANA time zone (default UTC)")
    explain.add_argument("--count", type=int, default=5, help="how many fire times (default 5)")
    explain.add_argument("--after", default=None, help="list fire times after this ISO-8601 instant")
    cleanup = command("cleanup", "delete old run history")
    cleanup.add_argument("--days", type=float, default=30.0)
    cleanup.add_argument("--per-job", type=int, default=None, help="also keep at most this many runs per job")
    cleanup.add_argument("--dry-run", action="store_true")
    command("nodes", "list the scheduler nodes of a PostgreSQL cluster: heartbeats, running counts")
    new = command("new", "write a job module from a template", db=False)
    new.add_argument("name")
    new.add_argument("--dir", default=".")
    return parser


# ---------------------------------------------------------------------------------- output


class _Out:
    def __init__(self, as_json: bool) -> None:
        self.json = as_json
        self._console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
        return self._console

    def emit(self, data: Any, artifact_type: str, title: str, render: Callable[[], None]) -> None:
        if self.json:
            print(json.dumps({"data": data, "artifact_type": artifact_type, "title": title}, default=str))
        else:
            render()

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.console.print(table)


def _iso(ms: int | None, tz: str | None = None) -> str | None:
    if ms is None:
        return None
    from fastcron._clock import from_ms, resolve_tz

    try:
        zone = (resolve_tz(tz)[1] or timezone.utc) if tz else timezone.utc
    except Exception:  # noqa: BLE001 - a stored zone this host lacks: show UTC
        zone = timezone.utc
    return from_ms(ms, zone).isoformat(timespec="seconds")


def _short(ms: int | None, tz: str | None = None) -> str:
    text = _iso(ms, tz)
    return "" if text is None else text.replace("T", " ")[:19]


def _status(status: str | None) -> str:
    colour = {"succeeded": "green", "failed": "red", "timed_out": "red", "interrupted": "magenta",
              "missed": "yellow", "skipped": "yellow", "running": "cyan", "cancelled": "yellow"}
    if status is None:
        return ""
    return f"[{colour[status]}]{status}[/]" if status in colour else status


# ---------------------------------------------------------------------------------- store, app


def _db_target(args: argparse.Namespace) -> str:
    return str(args.db or os.environ.get("FASTCRON_DB") or "fastcron.db")


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def _open_store(args: argparse.Namespace, *, create: bool = False) -> Any:
    from fastcron.stores.sqlite import SQLiteStore

    target = _db_target(args)
    if _is_postgres(target):
        try:
            from fastcron.stores.postgres import PostgresStore
        except ImportError:
            raise _UsageError("fastcron: a postgresql:// database needs psycopg: pip install 'fastcron[postgres]'") from None
        return PostgresStore(target)
    path = Path(target)
    if not create and not path.exists():
        raise _UsageError(f"fastcron: database {path} does not exist (start the scheduler first, or pass --db)")
    return SQLiteStore(path)


async def _with_store(args: argparse.Namespace, body: Callable[[Any], Any], *, create: bool = False) -> Any:
    store = _open_store(args, create=create)
    await store.open()
    try:
        return await body(store)
    finally:
        await store.close()


def _app_target(args: argparse.Namespace) -> str:
    target = getattr(args, "app", None) or os.environ.get("FASTCRON_APP")
    if not target and Path("pyproject.toml").is_file():
        try:
            config = tomllib.loads(Path("pyproject.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise _UsageError(f"fastcron: pyproject.toml: {exc}") from None
        target = config.get("tool", {}).get("fastcron", {}).get("app")
    if not target:
        raise _UsageError("fastcron: no app: pass --app MODULE|FILE, set FASTCRON_APP, or [tool.fastcron] app")
    return str(target)


def _load_app(args: argparse.Namespace) -> Any:
    from fastcron.registry import load_app

    target = _app_target(args)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_app(target)
    except FastcronError:
        raise
    except Exception as exc:  # the app itself failed to import: one line, no traceback
        raise _UsageError(f"fastcron: app {target!r} failed to import: {type(exc).__name__}: {exc}") from None


def _lookup(jobs: Sequence[JobRecord], name: str) -> JobRecord:
    for record in jobs:
        if record.name == name:
            return record
    import difflib

    close = difflib.get_close_matches(name, [j.name for j in jobs], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise _UsageError(f"fastcron: no job named {name!r}{hint}")


def _next_fires(record: JobRecord, count: int, after_ms: int) -> list[int]:
    fires: set[int] = set()
    for text in record.schedules:
        try:
            trigger = parse_schedule(text, record.tz)
        except Exception:  # noqa: BLE001 - a stored schedule this version cannot parse: no fires
            continue
        at = after_ms // 1000
        for _ in range(count):
            nxt = trigger.next_after_ts(at)
            if nxt is None:
                break
            fires.add(nxt * 1000)
            at = nxt
    return sorted(fires)[:count]


def _describe(record: JobRecord) -> str:
    if not record.schedules:
        return "manual (runs only when asked)"
    parts = []
    for text in record.schedules:
        try:
            parts.append(parse_schedule(text, record.tz).describe())
        except Exception:  # noqa: BLE001
            parts.append(text)
    return "; ".join(parts)


def _state(record: JobRecord) -> str:
    if record.orphaned:
        return "orphaned"
    if not record.enabled:
        return "disabled"
    return "paused" if record.paused else "active"


def _job_dict(record: JobRecord, now_ms: int, count: int = 0) -> dict[str, Any]:
    active = _state(record) == "active"
    next_runs = _next_fires(record, max(count, 1), now_ms) if active else []
    data: dict[str, Any] = {
        "name": record.name,
        "kind": record.kind,
        "schedules": record.schedules,
        "tz": record.tz or "UTC",
        "description": record.description,
        "schedule_description": _describe(record),
        "state": _state(record),
        "enabled": record.enabled,
        "paused": record.paused,
        "run_count": record.run_count,
        "failure_count": record.failure_count,
        "last_run": _iso(record.last_run_ms, record.tz),
        "last_status": record.last_status,
        "last_error": record.last_error,
        "last_duration": None if record.last_duration_ms is None else record.last_duration_ms / 1000,
        "next_run": _iso(next_runs[0], record.tz) if next_runs else None,
    }
    if count:
        data["next_runs"] = [_iso(ms, record.tz) for ms in next_runs[:count]]
    if record.target is not None:
        from dataclasses import asdict

        data["target"] = asdict(record.target)
    return data


def _run_dict(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "status": run.status,
        "trigger": run.trigger,
        "attempt": run.attempt,
        "schedule_index": run.schedule_index,
        "scheduled_at": _iso(run.scheduled_ms),
        "started_at": _iso(run.started_ms),
        "finished_at": _iso(run.finished_ms),
        "duration": None if run.duration_ms is None else run.duration_ms / 1000,
        "error": run.error,
        "traceback": run.traceback,
        "message": run.message,
        "stats": run.stats,
        "node": run.node,
        "pid": run.pid,
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace, out: _Out) -> int:
    jobs = asyncio.run(_with_store(args, lambda s: s.list_jobs()))
    now = _now_ms()
    data = [_job_dict(j, now) for j in jobs]

    def render() -> None:
        out.table(
            "Jobs",
            ["name", "schedule", "state", "last run", "status", "runs", "failures", "next run"],
            [
                [d["name"], ", ".join(d["schedules"]) or "manual", d["state"], (d["last_run"] or "").replace("T", " ")[:19],
                 _status(d["last_status"]), d["run_count"], d["failure_count"], (d["next_run"] or "").replace("T", " ")[:19]]
                for d in data
            ],
        )

    out.emit(data, "table", "Jobs", render)
    return EXIT_OK


def _cmd_show(args: argparse.Namespace, out: _Out) -> int:
    async def body(store: Any) -> tuple[JobRecord, list[RunRecord]]:
        record = _lookup(await store.list_jobs(), args.name)
        return record, await store.history(job=args.name, limit=5)

    record, runs = asyncio.run(_with_store(args, body))
    data = _job_dict(record, _now_ms(), count=5)
    data["recent_runs"] = [_run_dict(r) for r in runs]

    def render() -> None:
        c = out.console
        c.print(f"[bold]{record.name}[/]  ({record.kind}, {_state(record)})")
        if record.description:
            c.print(record.description)
        c.print(f"schedule: {', '.join(record.schedules) or 'manual'}  ({data['tz']})")
        c.print(f"          {data['schedule_description']}")
        c.print(f"runs: {record.run_count}  failures: {record.failure_count}")
        c.print(f"last run: {_short(record.last_run_ms, record.tz)} {_status(record.last_status)}")
        if record.last_error:
            c.print(f"last error: {record.last_error}", markup=False)
        c.print("next runs:")
        for at in data["next_runs"]:
            c.print(f"  {at}")

    out.emit(data, "card", f"Job {record.name}", render)
    return EXIT_OK


def _cmd_next(args: argparse.Namespace, out: _Out) -> int:
    if not 0 < args.count <= 10_000:
        raise _UsageError(f"fastcron next: --count must be 1-10000, not {args.count}")
    jobs = asyncio.run(_with_store(args, lambda s: s.list_jobs()))
    if args.job is not None:
        jobs = [_lookup(jobs, args.job)]
    now = _now_ms()
    fires = sorted(
        (at, j.name, j.tz) for j in jobs if _state(j) == "active" for at in _next_fires(j, args.count, now)
    )[: args.count]
    data = [{"job": name, "at": _iso(at, tz)} for at, name, tz in fires]
    out.emit(data, "table", "Next runs", lambda: out.table("Next runs", ["at", "job"], [[d["at"], d["job"]] for d in data]))
    return EXIT_OK


def _cmd_history(args: argparse.Namespace, out: _Out) -> int:
    if args.limit < 1:
        raise _UsageError(f"fastcron history: -n must be at least 1, not {args.limit}")

    async def body(store: Any) -> list[RunRecord]:
        if args.job is not None:
            _lookup(await store.list_jobs(), args.job)
        return await store.history(job=args.job, status=args.status, limit=args.limit)

    runs = asyncio.run(_with_store(args, body))
    data = [_run_dict(r) for r in runs]

    def render() -> None:
        out.table(
            "History",
            ["job", "status", "trigger", "scheduled", "started", "duration", "error / message"],
            [
                [r.job, _status(r.status), r.trigger, _short(r.scheduled_ms), _short(r.started_ms),
                 "" if r.duration_ms is None else f"{r.duration_ms / 1000:.3f}s", r.error or r.message or ""]
                for r in runs
            ],
        )

    out.emit(data, "table", "History", render)
    return EXIT_OK


def _cmd_control(args: argparse.Namespace, out: _Out) -> int:
    field, value = CONTROL[args.command]

    async def body(store: Any) -> None:
        if not await store.set_control(args.name, **{field: value}):
            _lookup(await store.list_jobs(), args.name)  # raises with a suggestion
        await store.post_command(Command(args.command, args.name))

    asyncio.run(_with_store(args, body))
    done = {"enable": "enabled", "disable": "disabled", "pause": "paused", "resume": "resumed"}[args.command]
    out.emit({"job": args.name, "action": args.command}, "text", f"{args.name} {done}",
             lambda: out.console.print(f"{args.name}: {done}"))
    return EXIT_OK


def _cmd_add(args: argparse.Namespace, out: _Out) -> int:
    from fastcron._dynamic import make_dynamic_job

    if not NAME_RE.match(args.name):
        raise _UsageError(f"fastcron add: {args.name!r} is not a valid job name")
    if bool(args.call) == bool(args.argv):
        raise _UsageError("fastcron add: give either --call pkg.mod:func or a command after --")
    try:
        call_args, call_kwargs = json.loads(args.args), json.loads(args.kwargs)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"fastcron add: --args/--kwargs must be JSON: {exc}") from None
    if not isinstance(call_args, list) or not isinstance(call_kwargs, dict):
        raise _UsageError("fastcron add: --args must be a JSON list and --kwargs a JSON object")
    schedules = [s for s in (args.schedule or []) if s != "manual"]
    for text in schedules:
        parse_schedule(text, args.tz)  # CronError: exit 2 with the column
    target = DynamicTarget(
        call=args.call, args=call_args, kwargs=call_kwargs, command=args.argv or None, shell=args.shell, timeout=args.timeout
    )
    definition = JobDef(name=args.name, kind="dynamic", schedules=schedules, tz=args.tz, description=args.description, target=target)
    if args.call:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
    make_dynamic_job(definition)  # validates the target (imports it) and the options

    async def body(store: Any) -> None:
        await store.save_dynamic(definition)
        await store.post_command(Command("add", args.name))

    asyncio.run(_with_store(args, body, create=True))
    out.emit({"job": args.name, "schedules": schedules, "target": args.call or args.argv}, "text",
             f"added {args.name}", lambda: out.console.print(f"added {args.name}"))
    return EXIT_OK


def _cmd_remove(args: argparse.Namespace, out: _Out) -> int:
    async def body(store: Any) -> None:
        jobs = await store.list_jobs()
        record = _lookup(jobs, args.name)
        if record.kind == "code" and not record.orphaned:
            raise _UsageError(f"fastcron remove: {args.name!r} is defined in code; remove it from the code instead")
        await store.delete_job(args.name)
        await store.post_command(Command("remove", args.name))

    asyncio.run(_with_store(args, body))
    out.emit({"job": args.name}, "text", f"removed {args.name}", lambda: out.console.print(f"removed {args.name}"))
    return EXIT_OK


def _cmd_cleanup(args: argparse.Namespace, out: _Out) -> int:
    if args.days < 0:
        raise _UsageError(f"fastcron cleanup: --days must be >= 0, not {args.days}")
    cutoff = _now_ms() - round(args.days * 86_400_000)
    count = asyncio.run(_with_store(args, lambda s: s.prune(cutoff, args.per_job, dry_run=args.dry_run)))
    verb = "would delete" if args.dry_run else "deleted"
    out.emit({"deleted": count, "dry_run": args.dry_run}, "text", "Cleanup",
             lambda: out.console.print(f"{verb} {count} run(s)"))
    return EXIT_OK


TEMPLATE = '''"""Jobs of {name}: run them with ``python -m fastcron start --app {file}``."""

from fastcron import JobContext, JobResult, job


@job("*/5 * * * *", name="{name}", retries=1, timeout="1m")
async def {func}(ctx: JobContext) -> JobResult:
    ctx.logger.info("run %s scheduled at %s", ctx.run_id, ctx.scheduled)
    return JobResult(message="done")
'''


def _cmd_new(args: argparse.Namespace, out: _Out) -> int:
    func = re.sub(r"\W", "_", args.name)
    if not func.isidentifier() or not NAME_RE.match(args.name):
        raise _UsageError(f"fastcron new: {args.name!r} is not a valid job name")
    path = Path(args.dir) / f"{func}.py"
    if path.exists():
        raise _UsageError(f"fastcron new: {path} already exists")
    try:
        path.write_text(TEMPLATE.format(name=args.name, func=func, file=path))
    except OSError as exc:
        raise _UsageError(f"fastcron new: cannot write {path}: {exc.strerror}") from None
    out.emit({"path": str(path), "job": args.name}, "text", f"wrote {path}", lambda: out.console.print(f"wrote {path}"))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, out: _Out) -> int:
    if bool(args.names) == bool(args.all):
        raise _UsageError("fastcron run: name the jobs to run, or pass --all")
    if args.via_scheduler:
        return _queue_runs(args, out)
    registry = _load_app(args)
    return asyncio.run(_run_jobs(args, out, registry))


def _queue_runs(args: argparse.Namespace, out: _Out) -> int:
    async def body(store: Any) -> list[str]:
        jobs = await store.list_jobs()
        names = list(args.names) if args.names else [j.name for j in jobs if not j.orphaned]
        for name in names:
            _lookup(jobs, name)
        for name in names:
            await store.post_command(Command("run", name))
        return names

    names = asyncio.run(_with_store(args, body))
    out.emit({"queued": names}, "text", "Runs queued", lambda: out.console.print(f"queued: {', '.join(names)}"))
    return EXIT_OK


async def _run_jobs(args: argparse.Namespace, out: _Out, registry: Any) -> int:
    from fastcron.errors import JobTimeoutError
    from fastcron.scheduler import Scheduler

    store = _open_store(args, create=True)
    await store.open()
    try:
        scheduler = Scheduler(registry, store=store)
        await scheduler._prepare_store()  # dynamic jobs loaded, code jobs reconciled
        names = list(args.names) if args.names else [job.name for job in scheduler.jobs]
        for name in names:
            if name not in registry:
                raise _UsageError(f"fastcron: {registry._missing_message(name)}")
        results: dict[str, dict[str, Any]] = {}

        async def one(name: str) -> None:
            t0 = time.perf_counter()
            status, error = "succeeded", None
            try:
                await scheduler.run_job(name)
            except JobTimeoutError as exc:
                status, error = "timed_out", str(exc)
            except Exception as exc:  # noqa: BLE001 - the job's failure, reported
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            results[name] = {"job": name, "status": status, "duration": round(time.perf_counter() - t0, 3), "error": error}

        progress = None
        if args.all and not out.json and sys.stdout.isatty():
            from rich.progress import Progress

            progress = Progress(console=out.console)
            progress.start()
            task = progress.add_task("running", total=len(names))

        async def tracked(name: str) -> None:
            await one(name)
            if progress is not None:
                progress.advance(task)

        if args.sequential:
            for name in names:
                await tracked(name)
        else:
            await asyncio.gather(*(tracked(name) for name in names))
        if progress is not None:
            progress.stop()
        await scheduler.stop()
    finally:
        await store.close()
    data = [results[name] for name in names]

    def render() -> None:
        out.table("Runs", ["job", "status", "duration", "error"],
                  [[d["job"], _status(d["status"]), f"{d['duration']:.3f}s", d["error"] or ""] for d in data])

    out.emit(data, "table", "Runs", render)
    return EXIT_JOB_FAILED if any(d["status"] != "succeeded" for d in data) else EXIT_OK


def _cmd_start(args: argparse.Namespace, out: _Out) -> int:
    from fastcron.events import Event
    from fastcron.scheduler import Scheduler

    registry = _load_app(args)
    store = _open_store(args, create=True)

    async def check() -> None:  # an unreadable database is one line and exit 2, before any output
        await store.open()
        await store.close()

    asyncio.run(check())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    scheduler = Scheduler(registry, store=store)

    def log_run(event: Event) -> None:
        line = event.summary()
        if out.json:
            print(json.dumps({"data": {"job": event.job, "kind": str(event.kind), "summary": line}, "artifact_type": "text",
                              "title": "run"}), flush=True)
        else:
            print(line, flush=True)

    scheduler.on(["succeeded", "failed", "timed_out", "missed", "skipped"], log_run)
    print(f"fastcron: {len(registry)} job(s) from {_app_target(args)}, database {store!r}", file=sys.stderr, flush=True)
    scheduler.run_forever(grace=args.grace)
    return EXIT_OK


def _cmd_nodes(args: argparse.Namespace, out: _Out) -> int:
    if not _is_postgres(_db_target(args)):
        raise _UsageError("fastcron nodes: nodes exist only on a PostgreSQL store (--db postgresql://...)")
    nodes = asyncio.run(_with_store(args, lambda s: s.nodes()))
    data = [
        {"node": n.node, "host": n.host, "pid": n.pid, "state": n.state, "heartbeat_age_s": n.heartbeat_age_ms / 1000,
         "running": n.running, "started": _iso(n.started_ms)}
        for n in nodes
    ]

    def render() -> None:
        out.table("Nodes", ["node", "state", "heartbeat", "running", "started"],
                  [[d["node"], d["state"], f"{d['heartbeat_age_s']:.1f}s ago", d["running"], (d["started"] or "")[:19]]
                   for d in data])

    out.emit(data, "table", "Nodes", render)
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace, out: _Out) -> int:
    if args.count < 0 or args.count > 10_000:
        raise _UsageError(f"fastcron explain: --count must be 0-10000, not {args.count}")
    trigger = parse_schedule(args.expr, args.tz)
    if args.after is None:
        start = datetime.now(timezone.utc)
    else:
        try:
            start = datetime.fromisoformat(args.after)
        except ValueError:
            raise _UsageError(f"fastcron explain: --after {args.after!r} is not an ISO-8601 datetime") from None
    fires = trigger.next_n(start, args.count)
    description = trigger.describe()
    if args.json:
        data = {"expr": args.expr, "tz": trigger.tz, "description": description, "next": [f.isoformat() for f in fires]}
        print(json.dumps({"data": data, "artifact_type": "card", "title": f"Schedule {args.expr}"}))
        return EXIT_OK
    print(f"{args.expr}  ({trigger.tz})")
    print(description)
    for fire in fires:
        print(f"  {fire.isoformat()}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, _Out], int]] = {
    "start": _cmd_start,
    "list": _cmd_list,
    "show": _cmd_show,
    "next": _cmd_next,
    "run": _cmd_run,
    "history": _cmd_history,
    "add": _cmd_add,
    "remove": _cmd_remove,
    "explain": _cmd_explain,
    "cleanup": _cmd_cleanup,
    "new": _cmd_new,
    "nodes": _cmd_nodes,
    **{name: _cmd_control for name in CONTROL},
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] = []
    if "--" in argv:  # `fastcron add NAME ... -- cmd args`: the command is everything after --
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1 :]
    try:
        args = parser.parse_args(argv)
        if tail and args.command != "add":
            raise _UsageError(f"fastcron {args.command}: unexpected arguments after --")
        args.argv = tail
        return COMMANDS[args.command](args, _Out(getattr(args, "json", False)))
    except _UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except (FastcronError, TypeError) as error:
        print(f"fastcron: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
