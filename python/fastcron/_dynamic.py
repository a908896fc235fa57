"""Dynamic jobs: jobs created at run time (``fastcron add``, ``Scheduler.add_dynamic``) and kept in
the store, so every process that opens the store can rebuild them. A target is either a function
by import path with JSON arguments, or a command (an argv list, no shell unless asked for)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
from typing import Any, Final

from fastcron.abc import DynamicTarget, JobDef, JobRecord
from fastcron.errors import ConfigError
from fastcron.job import Job, JobResult, Schedule, make_job

__all__ = ["make_dynamic_job", "resolve_call"]

TAIL_CHARS: Final = 2000
DEFAULT_COMMAND_TIMEOUT_S: Final = 3600.0


def resolve_call(path: str) -> Any:
    """Import ``pkg.mod:func`` and return the function (``ConfigError`` if that fails)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"target {path!r}: expected 'pkg.module:function'")
    try:
        func: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            func = getattr(func, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"target {path!r}: cannot import it: {exc}") from None
    if not callable(func):
        raise ConfigError(f"target {path!r} is not callable")
    return func


def make_dynamic_job(record: JobDef | JobRecord) -> Job:
    """Build the ``Job`` a stored dynamic job describes."""
    target = record.target
    if target is None:
        raise ConfigError(f"dynamic job {record.name!r} has no target")
    func = _call_func(target) if target.call else _command_func(target)
    schedule: Any = [Schedule(s) for s in record.schedules] if record.schedules else "manual"
    if target.call and record.schedules:
        schedule = [Schedule(s, *target.args, **target.kwargs) for s in record.schedules]
    return make_job(
        func,
        schedule,
        name=record.name,
        tz=record.tz,
        description=record.description,
        timeout=target.timeout,
    )


def _call_func(target: DynamicTarget) -> Any:
    func = resolve_call(target.call or "")
    # Manual runs have no schedule to carry the arguments: bind them into the wrapper.
    args, kwargs = tuple(target.args), dict(target.kwargs)
    if inspect.iscoroutinefunction(func):

        async def call_async(*a: Any, **k: Any) -> Any:
            return await func(*(a or args), **(k or kwargs))

        return call_async

    def call(*a: Any, **k: Any) -> Any:
        return func(*(a or args), **(k or kwargs))

    return call


def _command_func(target: DynamicTarget) -> Any:
    argv = list(target.command or [])
    if not argv:
        raise ConfigError("command target: empty argv")
    timeout = target.timeout if target.timeout is not None else DEFAULT_COMMAND_TIMEOUT_S

    def run_command() -> JobResult:
        command: Any = " ".join(argv) if target.shell and len(argv) > 1 else (argv[0] if target.shell else argv)
        try:
            done = subprocess.run(
                command, shell=target.shell, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"command timed out after {timeout}s: {_tail(exc.stdout, exc.stderr)}") from None
        tail = _tail(done.stdout, done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"command exited with {done.returncode}: {tail}")
        return JobResult(message=tail or None)

    return run_command


def _tail(stdout: Any, stderr: Any) -> str:
    def text(value: Any) -> str:
        if value is None:
            return ""
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    out, err = text(stdout).strip(), text(stderr).strip()
    joined = out if not err else (f"{out}\n[stderr] {err}" if out else f"[stderr] {err}")
    return joined[-TAIL_CHARS:]
