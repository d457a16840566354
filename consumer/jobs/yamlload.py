"""YAML with line numbers: mappings and sequences remember where each of their entries is.

PyYAML's plain ``safe_load`` forgets positions, so a validation error could only say *what* is
wrong, not *where*. This loader builds :class:`MarkedDict`/:class:`MarkedList` (ordinary
``dict``/``list`` subclasses) that carry the 1-based line of the node itself and of each entry,
and it reports duplicate keys (which PyYAML silently lets the last one win) instead of
dropping one of them.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MarkedDict", "MarkedList", "YamlProblem", "line_of", "load_marked"]


class MarkedDict(dict[Any, Any]):
    line: int | None = None
    key_lines: dict[Any, int]


class MarkedList(list[Any]):
    line: int | None = None
    item_lines: list[int]


class YamlProblem(ValueError):
    """Unparseable YAML; ``line`` is 1-based (or None when YAML gave no position)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def line_of(container: Any, key: Any = None) -> int | None:
    """The line of ``container[key]`` (or of the container when ``key`` is None/unknown)."""
    if key is not None:
        if isinstance(container, MarkedDict) and key in container.key_lines:
            return container.key_lines[key]
        if isinstance(container, MarkedList) and isinstance(key, int) \
                and 0 <= key < len(container.item_lines):
            return container.item_lines[key]
    return getattr(container, "line", None)


class _MarkedLoader(yaml.SafeLoader):
    duplicates: list[tuple[int, str]]


def _construct_map(loader: _MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)  # resolve '<<' merge keys as SafeLoader does
    out = MarkedDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise YamlProblem(key_node.start_mark.line + 1,
                              "a mapping key must be a plain value, not a list or mapping"
                              ) from None
        line = key_node.start_mark.line + 1
        if key in out:
            loader.duplicates.append(
                (line, f"duplicate key {key!r} (first defined on line {out.key_lines[key]})"))
            continue
        value = loader.construct_object(value_node, deep=True)
        if isinstance(value, MarkedDict | MarkedList):
            value.line = line  # a section's own problems point at its "name:" line
        out[key] = value
        out.key_lines[key] = line
    return out


def _construct_seq(loader: _MarkedLoader, node: yaml.SequenceNode) -> MarkedList:
    out = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_marked(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """Parse one YAML document; returns (data, duplicate-key problems as (line, message)).

    Raises :class:`YamlProblem` for syntax errors (with the line YAML points at)."""
    loader = _MarkedLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlProblem(line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, loader.duplicates
