"""Registries: names, duplicates naming both definition sites, lookups, observers, loading apps."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from fastcron.errors import ConfigError, DuplicateJobError, JobLookupError
from fastcron.job import Job, make_job
from fastcron.registry import Registry, default_registry, load_app


async def one() -> None: ...


async def two() -> None: ...


def test_add_get_remove_iterate() -> None:
    reg = Registry()
    a = reg.add(make_job(one, "* * * * *", name="a"))
    b = reg.add(make_job(two, "manual", name="b"))
    assert reg.get("a") is a and "b" in reg and len(reg) == 2
    assert [j.name for j in reg] == ["a", "b"] and reg.names() == ["a", "b"]
    assert reg.remove("a") is a
    assert "a" not in reg and list(reg) == [b]
    assert repr(reg) == "<Registry 1 jobs>"


def test_unknown_name_suggests_a_close_one() -> None:
    reg = Registry()
    reg.add(make_job(one, "manual", name="sync-prices"))
    with pytest.raises(JobLookupError, match=r"no job named 'sync-price' \(1 registered\); did you mean 'sync-prices'\?"):
        reg.get("sync-price")
    with pytest.raises(JobLookupError, match=r"no job named 'zzz' \(1 registered\)$"):
        reg.remove("zzz")
    with pytest.raises(LookupError):  # a JobLookupError is a LookupError
        reg.get("nope")


def test_duplicate_names_are_an_error_naming_both_sites() -> None:
    reg = Registry()
    reg.add(make_job(one, "manual", name="dup"))
    here = Path(__file__).resolve()
    with pytest.raises(DuplicateJobError) as info:
        reg.add(make_job(two, "manual", name="dup"))
    message = str(info.value)
    first = f"{here}:{one.__code__.co_firstlineno}"
    second = f"{here}:{two.__code__.co_firstlineno}"
    assert message == (
        f"job name 'dup' is used twice: first at {first}, again at {second}; give one of them another name=..."
    )
    assert isinstance(info.value, ValueError)


def test_the_same_function_registered_twice_under_one_name_is_a_duplicate() -> None:
    reg = Registry()
    reg.add(make_job(one, "manual", name="dup"))
    with pytest.raises(DuplicateJobError, match="job name 'dup' is used twice"):
        reg.add(make_job(one, "* * * * *", name="dup"))


def test_reimporting_a_module_replaces_its_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reloadable_jobs.py").write_text(
        textwrap.dedent(
            """
            from fastcron.registry import Registry
            from fastcron.job import job
            import builtins
            registry = getattr(builtins, "_fastcron_test_registry")

            @job("0 * * * *", registry=registry, name="hourly")
            async def hourly():
                pass
            """
        )
    )
    import builtins

    reg = Registry()
    monkeypatch.setattr(builtins, "_fastcron_test_registry", reg, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("reloadable_jobs")
    first = reg.get("hourly")
    changes: list[str] = []
    reg.subscribe(lambda change, job: changes.append(change))
    importlib.reload(module)  # same file:line, new function object
    assert reg.get("hourly") is not first and len(reg) == 1
    assert changes == ["replaced"]
    sys.modules.pop("reloadable_jobs", None)


def test_observers_hear_of_changes_until_unsubscribed() -> None:
    reg = Registry()
    heard: list[tuple[str, str]] = []
    unsubscribe = reg.subscribe(lambda change, job: heard.append((change, job.name)))
    reg.add(make_job(one, "manual", name="a"))
    reg.replace(make_job(two, "manual", name="a"))
    reg.remove("a")
    unsubscribe()
    reg.add(make_job(one, "manual", name="b"))
    assert heard == [("added", "a"), ("replaced", "a"), ("removed", "a")]
    with pytest.raises(TypeError, match="Registry.add expects a Job"):
        reg.add(one)  # type: ignore[arg-type]


def test_add_many_tells_a_plain_observer_job_by_job_and_a_batch_observer_once() -> None:
    reg = Registry()
    heard: list[tuple[str, str]] = []
    batches: list[list[tuple[str, str]]] = []

    def batch_observer(change: str, job: Job) -> None:
        heard.append(("batch observer, one by one", job.name))

    def batch(jobs: dict[str, Job]) -> None:
        batches.append([(name, job.name) for name, job in jobs.items()])

    batch_observer.added_many = batch  # type: ignore[attr-defined]
    reg.subscribe(lambda change, job: heard.append((change, job.name)))
    reg.subscribe(batch_observer)
    reg.add_many([make_job(one, "manual", name="a"), make_job(two, "manual", name="b")])
    assert heard == [("added", "a"), ("added", "b")]
    assert batches == [[("a", "a"), ("b", "b")]]


def test_registry_job_decorator() -> None:
    reg = Registry()

    @reg.job("*/5 * * * *", name="five", retries=1)
    async def five() -> None: ...

    assert reg.get("five").func is five and reg.get("five").opts.retries == 1


def _write_app(root: Path, package: str = "myapp") -> Path:
    pkg = root / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "jobs.py").write_text(
        textwrap.dedent(
            """
            from fastcron.registry import Registry
            registry = Registry()
            other = Registry()

            @registry.job("*/5 * * * *", name="five")
            async def five():
                pass

            @other.job("manual", name="by-hand")
            def by_hand():
                pass

            not_a_registry = 42
            """
        )
    )
    return pkg / "jobs.py"


def test_load_app_by_import_path_file_path_and_attribute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_app(tmp_path, "loadapp_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = load_app("loadapp_pkg.jobs")
    assert by_module.names() == ["five"]
    assert load_app("loadapp_pkg.jobs:other").names() == ["by-hand"]
    assert load_app(str(path)) is by_module  # the file is that module: not imported twice
    with pytest.raises(ConfigError, match="app 'loadapp_pkg.jobs:not_a_registry': 'not_a_registry' is not a Registry"):
        load_app("loadapp_pkg.jobs:not_a_registry")
    for name in [n for n in sys.modules if n.startswith("loadapp_pkg")]:
        del sys.modules[name]


def test_load_app_by_file_path_alone(tmp_path: Path) -> None:
    app = tmp_path / "standalone_jobs_app.py"
    app.write_text(
        textwrap.dedent(
            """
            from fastcron.job import job

            @job("0 0 * * *", name="test_registry.standalone")
            async def nightly():
                pass
            """
        )
    )
    try:
        reg = load_app(str(app))
        assert reg is default_registry  # no module-level registry: the jobs are in the default one
        assert "test_registry.standalone" in reg
    finally:
        if "test_registry.standalone" in default_registry:
            default_registry.remove("test_registry.standalone")
        sys.modules.pop("standalone_jobs_app", None)


def test_load_app_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="app 'no_such_pkg_xyz.jobs': cannot import it: No module named 'no_such_pkg_xyz'"):
        load_app("no_such_pkg_xyz.jobs")
    with pytest.raises(ConfigError, match="app file 'missing/jobs.py' does not exist"):
        load_app("missing/jobs.py")
    with pytest.raises(ConfigError, match="expected 'pkg.module' or 'path/to/file.py'"):
        load_app(":registry")
    # A missing import *inside* the app is the app's bug, reported as is.
    (tmp_path / "broken_app_xyz.py").write_text("import definitely_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="definitely_not_installed_xyz"):
        load_app("broken_app_xyz")
