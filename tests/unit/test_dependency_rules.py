"""The architecture's dependency rules, checked on the source text."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = {"socket", "asyncio", "threading", "time", "selectors", "ssl", "subprocess"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_is_pure_outside_transport() -> None:
    for path in (ROOT / "protocol").glob("*.py"):
        if path.name == "transport.py":
            continue
        bad = _imports(path) & IO_MODULES
        assert not bad, f"{path.name} imports {bad}"


def test_protocol_imports_only_stdlib_and_avro_libraries() -> None:
    for path in (ROOT / "protocol").glob("*.py"):
        assert not _imports(path) & {"agent", "consumer"}, path.name


def test_agent_and_consumer_never_import_each_other() -> None:
    for pkg, other in (("agent", "consumer"), ("consumer", "agent")):
        for path in (ROOT / pkg).rglob("*.py"):
            assert other not in _imports(path), f"{path} imports {other}"


def test_only_codec_imports_fastavro() -> None:
    users = [p.name for p in (ROOT / "protocol").glob("*.py") if "fastavro" in _imports(p)]
    assert users == ["codec.py"]
