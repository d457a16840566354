"""The architecture's dependency rules (docs/architecture.md), checked on the source text.

Imports are read with ``ast`` from every module of the project's packages. An import inside a
function counts like any other (hiding a cycle there is what these rules exist to prevent);
one under ``if TYPE_CHECKING:`` counts for the layer rules but not for cycles or purity, since
it never runs (a DStream may name its StreamingContext in an annotation, a pure function may
take an ``os.stat_result``).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocol", "common", "agent", "consumer")
# What "no I/O, asyncio, threading or time" means for a pure module.
IO_MODULES = {
    "asyncio", "concurrent", "fcntl", "glob", "mmap", "multiprocessing", "os", "pathlib",
    "selectors", "shutil", "signal", "socket", "sqlite3", "ssl", "subprocess", "tempfile",
    "threading", "time",
}
# Modules that must stay pure (their docstring says so: it starts with "PURE" or "Pure").
MUST_BE_PURE = {
    "common.issues", "common.records",
    "consumer.engine.windows", "consumer.engine.state", "consumer.engine.checkpoint_format",
    "consumer.jobs.aggregations", "consumer.jobs.extract", "consumer.jobs.parsers",
    "consumer.flume.redelivery",
    "agent.sources.spooldir.decisions", "agent.sources.spooldir.selection",
    "agent.sources.spooldir.deserializers",
}
# The consumer's layers, bottom up: each may import only its own and lower layers.
CONSUMER_LAYERS = ["consumer.engine", "consumer.streaming", "consumer.flume", "consumer.jobs",
                   "consumer.ui"]
# Imports inside functions on purpose; do not add to this. agent.cli imports the runtime only
# once a config is valid: ``--validate`` must not pay for loading it (+0.4 to 0.8 s measured).
IMPORTS_IN_FUNCTIONS_ALLOWED = {"agent.cli"}


@dataclass(frozen=True)
class Import:
    target: str  # the project module imported (or the top-level name, outside the project)
    line: int
    in_function: bool
    type_checking_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str) -> str:
    """The most specific project module ``name`` refers to, else its top-level name."""
    probe = name
    while probe:
        if probe in modules():
            return probe
        probe = probe.rpartition(".")[0]
    return name.split(".")[0]


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.found: list[Import] = []
        self._function_depth = 0
        self._type_checking_depth = 0

    def _add(self, name: str, line: int) -> None:
        self.found.append(Import(_resolve(name), line, self._function_depth > 0,
                                 self._type_checking_depth > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _absolute(self.module, node, self.is_package)
        for alias in node.names:  # "from pkg import submodule" imports the submodule
            self._add(f"{base}.{alias.name}", node.lineno)

    def _function(self, node: ast.AST) -> None:
        self._function_depth += 1
        self.generic_visit(node)
        self._function_depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        guarded = "TYPE_CHECKING" in ast.unparse(node.test)
        self._type_checking_depth += guarded
        for child in node.body:
            self.visit(child)
        self._type_checking_depth -= guarded
        for child in node.orelse:
            self.visit(child)


@cache
def imports(module: str) -> tuple[Import, ...]:
    path = modules()[module]
    collector = _Collector(module, path.name == "__init__.py")
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return tuple(collector.found)


def project_imports(module: str, *, runtime_only: bool = False) -> set[str]:
    return {i.target for i in imports(module) if i.target in modules() and i.target != module
            and not (runtime_only and i.type_checking_only)}


def top_level_imports(module: str, *, runtime_only: bool = False) -> set[str]:
    return {i.target.split(".")[0] for i in imports(module)
            if not (runtime_only and i.type_checking_only)}


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_marked_pure(module: str) -> bool:
    doc = ast.get_docstring(ast.parse(modules()[module].read_text(encoding="utf-8"))) or ""
    return doc.split(" ", 1)[0].rstrip(":") in ("PURE", "Pure")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


# ---- the rules -----------------------------------------------------------------------------
def test_no_import_cycles() -> None:
    graph = {m: project_imports(m, runtime_only=True) for m in modules()}
    assert find_cycles(graph) == []


def test_pure_modules_import_no_io_asyncio_threading_or_time() -> None:
    pure = {m for m in modules() if _is_marked_pure(m)}
    assert pure >= MUST_BE_PURE, f"no longer marked pure: {sorted(MUST_BE_PURE - pure)}"
    problems = []
    for module in sorted(pure):
        seen, todo = {module}, [module]  # through the project modules it imports, too
        while todo:
            current = todo.pop()
            bad = top_level_imports(current, runtime_only=True) & IO_MODULES
            if bad:
                via = "" if current == module else f" through {current}"
                problems.append(f"{module} imports {sorted(bad)}{via}")
            for dep in project_imports(current, runtime_only=True) - seen:
                seen.add(dep)
                todo.append(dep)
    assert problems == []


def test_agent_and_consumer_never_import_each_other() -> None:
    for pkg, other in (("agent", "consumer"), ("consumer", "agent")):
        for module in modules():
            if _in(module, (pkg,)):
                assert other not in top_level_imports(module), f"{module} imports {other}"


def consumer_layer(module: str) -> int | None:
    """0 engine, 1 streaming, 2 flume, 3 jobs, 4 ui, 5 the rest of consumer (package, CLI)."""
    if not _in(module, ("consumer",)):
        return None
    return next((i for i, p in enumerate(CONSUMER_LAYERS) if _in(module, (p,))),
                len(CONSUMER_LAYERS))


def test_the_spark_data_source_stands_apart() -> None:
    """consumer/spark/ runs inside Spark's own driver and executors: it builds on protocol/
    only, never on the streaming engine the rest of consumer/ is."""
    problems = [f"{module}:{i.line} imports {i.target}"
                for module in modules() if _in(module, ("consumer.spark",))
                for i in imports(module)
                if _in(i.target, ("consumer",)) and not _in(i.target, ("consumer.spark",))]
    assert problems == []


def test_common_imports_only_the_standard_library() -> None:
    """agent/ and consumer/ both build on common/, so it can import neither (nor protocol/)."""
    for module in modules():
        if _in(module, ("common",)):
            project = top_level_imports(module) & set(PACKAGES)
            assert project <= {"common"}, f"{module} imports {sorted(project - {'common'})}"


def test_consumer_layers_import_only_downwards() -> None:
    problems = [f"{module}:{i.line} imports {i.target}"
                for module in modules() if (layer := consumer_layer(module)) is not None
                for i in imports(module) if (consumer_layer(i.target) or 0) > layer]
    assert problems == []


def test_imports_are_at_the_top_of_their_module() -> None:
    problems = [f"{module}:{i.line} imports {i.target} inside a function"
                for module in modules() if module not in IMPORTS_IN_FUNCTIONS_ALLOWED
                for i in imports(module) if i.in_function]
    assert problems == []


def test_protocol_is_pure_outside_transport() -> None:
    """I/O only in protocol.transport and its kin (protocol.transport_protocol)."""
    for module in modules():
        if _in(module, ("protocol",)) and module.split("_")[0] != "protocol.transport":
            bad = top_level_imports(module) & IO_MODULES
            assert not bad, f"{module} imports {bad}"


def test_protocol_imports_only_stdlib_and_avro_libraries() -> None:
    for module in modules():
        if _in(module, ("protocol",)):
            assert not top_level_imports(module) & {"agent", "consumer"}, module


def test_only_codec_imports_fastavro() -> None:
    users = [m for m in modules() if "fastavro" in top_level_imports(m)]
    assert users == ["protocol.codec"]


# ---- the checker itself ------------------------------------------------------------------------
def test_cycle_finder_reports_each_cycle_once() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("source, expected", [
    ("import os", [("os", False, False)]),
    ("def f():\n    import consumer.engine.rdd", [("consumer.engine.rdd", True, False)]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from consumer.engine import rdd",
     [("typing", False, False), ("consumer.engine.rdd", False, True)]),
])
def test_import_collector(source: str, expected: list[tuple[str, bool, bool]]) -> None:
    collector = _Collector("consumer.engine.windows", False)
    collector.visit(ast.parse(source))
    assert [(i.target, i.in_function, i.type_checking_only) for i in collector.found] == expected
