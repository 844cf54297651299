"""The house rules: no import circles, jobs named by a path that resolves, modules kept small.

import-linter (`lint-imports`, run by `make test`) checks the layering contracts in
pyproject.toml; these tests check what a contract cannot say.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue, SimpleWorker
from rq.utils import import_attribute

from alerts import jobs
from core.app import PROJECT_ROOT
from core.queue import AliasedJob, job_aliases, register_job_aliases

PACKAGES = ("core", "alerts", "ivr", "prompts", "simulator")
MAX_LINES = 500
# A job name in the code: a string literal naming a function of the registry.
JOB_NAME = re.compile(r"""["'](alerts\.jobs\.\w+|core\.heartbeat\.\w+)["']""")


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


MODULES = dict(_modules())


def _resolve(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(name: str, path: Path) -> set[str]:
    """Return the first-party modules `name` imports, at module level or in a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            resolved = _resolve(target)
            if resolved and resolved != name:
                found.add(resolved)
    return found


def import_cycles() -> list[list[str]]:
    """Return the strongly connected groups of modules that import each other (Tarjan)."""
    edges = {name: _imports(name, path) for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in MODULES:
        if module not in index:
            visit(module)
    return cycles


def test_no_first_party_module_is_part_of_an_import_circle():
    """No group of modules imports each other, counting imports inside functions."""
    assert import_cycles() == []


def test_the_cycle_finder_sees_a_circle_made_by_a_function_level_import(tmp_path, monkeypatch):
    """The finder is not blind: two modules importing each other, one lazily, are a circle."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    monkeypatch.setattr(
        "tests.test_architecture.MODULES", {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    )
    assert import_cycles() == [["a", "b"]]


def _job_names_in_code() -> set[str]:
    names: set[str] = set()
    for _name, path in MODULES.items():
        names.update(JOB_NAME.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_job_name_in_the_code_resolves_to_a_registered_callable():
    """Each dotted job name enqueued anywhere names a function RQ can import."""
    names = _job_names_in_code()
    assert len(names) >= 12  # the cascade, level 1, e-mail, speech, recordings, heartbeat
    for name in names:
        func = import_attribute(name)
        assert callable(func), name
        if name.startswith("alerts.jobs."):
            assert name.rpartition(".")[2] in jobs.__all__, f"{name} is not in alerts.jobs.__all__"


def test_the_registry_exports_only_callables_and_each_legacy_path_points_into_it():
    """`alerts.jobs.__all__` are functions; every old path maps to one of them."""
    for name in jobs.__all__:
        assert callable(getattr(jobs, name)), name
    for old, new in jobs.LEGACY_PATHS.items():
        assert old != new
        assert callable(import_attribute(new)), new


def test_a_job_enqueued_under_an_old_path_still_runs(app, redis_conn):
    """A job Redis held from before the move (its function's old path) runs the new one."""
    register_job_aliases(
        {"alerts.removed_module.record_heartbeat": "core.heartbeat.record_heartbeat"}
    )
    assert (
        job_aliases()["alerts.removed_module.record_heartbeat"] == "core.heartbeat.record_heartbeat"
    )
    queue = Queue("default", connection=redis_conn, job_class=AliasedJob)
    job = queue.enqueue("alerts.removed_module.record_heartbeat")
    worker = SimpleWorker([queue], connection=redis_conn, job_class=AliasedJob)
    worker.work(burst=True)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value()["partnerships"] == 0


def test_a_job_under_an_unknown_path_fails_loudly(app, redis_conn):
    """No alias, no module: the job fails (RQ keeps it in the failed registry)."""
    queue = Queue("default", connection=redis_conn, job_class=AliasedJob)
    job = queue.enqueue("alerts.nowhere.nothing")
    SimpleWorker([queue], connection=redis_conn, job_class=AliasedJob).work(burst=True)
    job.refresh()
    assert job.get_status() == "failed"


def _opening_docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_over_500_lines_says_why_in_its_opening_docstring(name):
    """Modules stay small; one that is longer says so, and why, where a reader starts."""
    path = MODULES[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines > MAX_LINES:
        assert "500 lines" in _opening_docstring(path), f"{name}: {lines} lines, no reason given"
