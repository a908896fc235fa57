"""Registries of jobs: the module-level default one, explicit ``Registry()`` objects, and finding
an app's registry by import path or file path.

A registry maps unique names to ``Job`` definitions and tells its observers (a running
``Scheduler``) about additions and removals, so a job declared or added while the scheduler runs
is armed at once.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import operator
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, Literal

from fastcron.errors import ConfigError, DuplicateJobError, JobLookupError
from fastcron.job import Job, make_job

__all__ = ["Registry", "default_registry", "load_app"]

Change = Literal["added", "removed", "replaced"]
Observer = Callable[[Change, Job], None]
_job_name: Final = operator.attrgetter("name")  # C-level, read per job in add_many


def _duplicate(first: Job, again: Job) -> DuplicateJobError:
    return DuplicateJobError(
        f"job name {again.name!r} is used twice: first at {first.site}, again at {again.site}; "
        "give one of them another name=..."
    )


class Registry:
    """Jobs by name, in the order they were added.

    Names are unique: adding a second job under a taken name raises ``DuplicateJobError`` naming
    both definition sites, unless both come from the same ``file:line`` (a module imported twice,
    or reloaded), in which case the newer definition replaces the older one.
    """

    __slots__ = ("_jobs", "_observers")

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._observers: list[Observer] = []

    def job(self, schedule: Any, /, **options: Any) -> Callable[[Any], Any]:
        """Decorator: ``@registry.job("*/5 * * * *", retries=2)``, like ``fastcron.job`` for this registry."""

        def decorate(func: Any) -> Any:
            self.add(make_job(func, schedule, **options))
            return func

        return decorate

    def add(self, job: Job) -> Job:
        """Register ``job``; raise ``DuplicateJobError`` if its name is taken by another definition."""
        if not isinstance(job, Job):
            raise TypeError(f"Registry.add expects a Job (use make_job or @job), got {job!r}")
        existing = self._jobs.get(job.name)
        if existing is not None:
            if existing.site != job.site or existing.func is job.func:
                raise _duplicate(existing, job)
            self._jobs[job.name] = job
            self._notify("replaced", job)
            return job
        self._jobs[job.name] = job
        self._notify("added", job)
        return job

    def add_many(self, jobs: Iterable[Job]) -> None:
        """Register several jobs; all or none: a duplicate name (in the registry or among ``jobs``)
        raises ``DuplicateJobError`` before any is added. An observer with an ``added_many``
        attribute gets the batch in one call, as a ``{name: job}`` dict in order."""
        jobs = list(jobs)
        if not set(map(type, jobs)) <= {Job}:
            bad = next((job for job in jobs if not isinstance(job, Job)), None)
            if bad is not None:
                raise TypeError(f"Registry.add_many expects Jobs, got {bad!r}")
        # The checks run in C over the whole batch (registering 100k jobs at once is the point);
        # only a batch that fails them is walked job by job to name the duplicate.
        batch = dict(zip(map(_job_name, jobs), jobs))
        existing = self._jobs
        if len(batch) != len(jobs) or not existing.keys().isdisjoint(batch):
            self._refuse_duplicate(jobs)
        existing.update(batch)
        for observer in list(self._observers):
            many = getattr(observer, "added_many", None)
            if many is not None:
                many(batch)
            else:
                for job in jobs:
                    observer("added", job)

    def _refuse_duplicate(self, jobs: list[Job]) -> None:
        seen: dict[str, Job] = {}
        for job in jobs:
            other = self._jobs.get(job.name) or seen.get(job.name)
            if other is not None:
                raise _duplicate(other, job)
            seen[job.name] = job

    def replace(self, job: Job) -> Job:
        """Swap in a new definition for an existing name (how a reschedule is recorded)."""
        self.get(job.name)
        self._jobs[job.name] = job
        self._notify("replaced", job)
        return job

    def remove(self, name: str) -> Job:
        """Unregister and return the job called ``name``; ``JobLookupError`` if there is none."""
        job = self.get(name)
        del self._jobs[name]
        self._notify("removed", job)
        return job

    def get(self, name: str) -> Job:
        """The job called ``name``; ``JobLookupError`` (with a close match, if any) if there is none."""
        try:
            return self._jobs[name]
        except KeyError:
            raise JobLookupError(self._missing_message(name)) from None

    def _missing_message(self, name: str) -> str:
        # difflib is quadratic-ish; only consult a bounded sample on huge registries.
        candidates = list(self._jobs)[:5000]
        close = difflib.get_close_matches(str(name), candidates, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"no job named {name!r} ({len(self._jobs)} registered){hint}"

    def names(self) -> list[str]:
        return list(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __repr__(self) -> str:
        return f"<Registry {len(self._jobs)} jobs>"

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(change, job)`` on every later add/remove/replace; returns the unsubscribe function."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def _notify(self, change: Change, job: Job) -> None:
        for observer in list(self._observers):
            observer(change, job)


default_registry = Registry()
"""Where ``@job`` registers when no ``registry=`` is given."""


def load_app(target: str) -> Registry:
    """Import an app and return its registry.

    ``target`` is an import path (``"pkg.jobs"``), a file (``"path/to/jobs.py"``), either followed
    by ``:attribute`` naming the registry. Without an attribute, a module-level ``registry`` that
    is a ``Registry`` is used, else the default registry (where ``@job`` put the jobs). A file's
    directory is put on ``sys.path`` first, as ``python path/to/jobs.py`` would.
    """
    module_part, _, attribute = target.partition(":")
    if os.name == "nt" and len(module_part) == 1 and attribute:  # "C:\\path\\jobs.py"
        module_part, _, attribute = target[2:].partition(":")
        module_part = target[:2] + module_part
    if not module_part:
        raise ConfigError(f"app {target!r}: expected 'pkg.module' or 'path/to/file.py', optionally ':registry'")
    is_file = module_part.endswith(".py") or os.sep in module_part or "/" in module_part
    module = _import_file(module_part) if is_file else _import_module(module_part)
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Registry):
            raise ConfigError(f"app {target!r}: {attribute!r} is not a Registry (got {type(found).__name__})")
        return found
    found = getattr(module, "registry", None)
    return found if isinstance(found, Registry) else default_registry


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only a missing *app* is a config error; a missing import inside the app propagates as is.
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise ConfigError(f"app {name!r}: cannot import it: {exc}") from exc
        raise


def _import_file(path_text: str) -> Any:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"app file {path_text!r} does not exist")
    if path.suffix != ".py":
        raise ConfigError(f"app file {path_text!r} is not a .py file")
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file is not None and Path(file).resolve() == path:
            return module  # already imported (e.g. as part of its package): do not run it twice
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = path.stem if path.stem not in sys.modules else f"_fastcron_app_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"app file {path_text!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
