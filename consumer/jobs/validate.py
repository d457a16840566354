"""Declarative job validation: raw YAML data -> :class:`JobSpec`, or EVERY problem at once.

Each problem names the file, the line and the dotted path of the offending setting, e.g.
``job.yaml:14: aggregation.type: unknown 'median' (expected one of count, sum, ...)``, so a
user fixes a job in one round instead of one error per run. Validation never opens a port or
a file: ``flume-consumer validate`` is safe to run anywhere.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from typing import Any

from consumer.engine.windows import to_ms
from consumer.jobs.aggregations import AGGREGATIONS, make_aggregation
from consumer.jobs.parsers import PARSER_TYPES
from consumer.jobs.spec import (
    EventTimeSpec,
    FilterSpec,
    Issue,
    JobInvalid,
    JobSpec,
    OutputSpec,
    ParserSpec,
    ReceiverSpec,
    UiSpec,
)
from consumer.jobs.yamlload import MarkedDict, YamlProblem, line_of, load_marked
from protocol.limits import ListenerLimits

__all__ = ["FILTER_OPS", "TIME_FORMATS", "known_fields", "load_job_file", "validate_job"]

TOP_KEYS = ("name", "receiver", "parser", "filters", "key", "value", "aggregation", "batch",
            "window", "slide", "event_time", "checkpoint", "outputs", "ui")
FILTER_OPS = ("eq", "ne", "in", "not_in", "regex", "not_regex", "contains", "gt", "ge", "lt",
              "le", "exists")
TIME_FORMATS = ("epoch_ms", "epoch_s", "iso8601", "apache")
OUTPUT_TYPES = ("console", "jsonl", "csv", "sqlite")
HEADER_PREFIX = "header:"
_APACHE_COMMON_FIELDS = ("host", "ident", "user", "time", "method", "url", "protocol",
                         "status", "bytes")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


def known_fields(parser: ParserSpec) -> tuple[str, ...] | None:
    """The fields a parser produces, or None when any name may appear (json)."""
    if parser.kind == "apache_common":
        return _APACHE_COMMON_FIELDS
    if parser.kind == "apache_combined":
        return (*_APACHE_COMMON_FIELDS, "referrer", "agent")
    if parser.kind == "raw":
        return ("body",)
    if parser.kind == "csv":
        return parser.columns
    if parser.kind == "regex" and parser.pattern is not None:
        try:
            return tuple(re.compile(parser.pattern).groupindex)
        except re.error:
            return None
    return None


def _type_name(value: Any) -> str:
    for kind, name in ((type(None), "nothing"), (dict, "a mapping"), (list, "a list"),
                       (str, "a string"), (bool, "a boolean"), (int, "an integer"),
                       (float, "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Checker:
    """Collects issues; every getter returns a usable default after reporting a problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[Issue] = []

    def err(self, container: Any, key: Any, path: str, message: str) -> None:
        self.issues.append(Issue(self.source, line_of(container, key), path, message))

    def mapping(self, parent: Any, key: str, path: str, required: bool = False) -> Any:
        value = parent.get(key, _MISSING) if isinstance(parent, dict) else _MISSING
        if value is _MISSING:
            if required:
                self.err(parent, None, path, "required setting is missing")
            return None
        if not isinstance(value, dict):
            self.err(parent, key, path, f"expected a mapping, got {_type_name(value)}")
            return None
        return value

    def unknown_keys(self, m: dict[Any, Any], allowed: tuple[str, ...], path: str,
                     hint: Callable[[str], str] | None = None) -> None:
        for key in m:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                extra = hint(str(key)) if hint else ""
                self.err(m, key, where, f"unknown setting{extra or _suggest(str(key), allowed)}"
                         f" (allowed: {', '.join(allowed)})")

    def string(self, m: dict[Any, Any], key: str, path: str, default: Any = None,
               required: bool = False) -> Any:
        value = m.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.err(m, key if value is None else None, path, "required setting is missing")
            return default
        if not isinstance(value, str) or not value:
            self.err(m, key, path, f"expected a non-empty string, got {value!r}")
            return default
        return value

    def integer(self, m: dict[Any, Any], key: str, path: str, default: int, low: int,
                high: int | None = None) -> int:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(m, key, path, f"expected an integer, got {value!r}")
            return default
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            self.err(m, key, path, f"must be {bound}, got {value}")
            return default
        return value

    def number(self, m: dict[Any, Any], key: str, path: str, default: float,
               positive: bool = True) -> float:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(m, key, path, f"expected a number of seconds, got {value!r}")
            return default
        if (positive and value <= 0) or value < 0:
            self.err(m, key, path, f"must be {'> 0' if positive else '>= 0'}, got {value}")
            return default
        return float(value)

    def boolean(self, m: dict[Any, Any], key: str, path: str, default: bool) -> bool:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.err(m, key, path, f"expected true or false, got {value!r}")
            return default
        return value

    def kind(self, m: Any, parent: Any, key: Any, path: str, choices: tuple[str, ...],
             default: str | None) -> tuple[str | None, dict[Any, Any]]:
        """``type`` of a section written as a word (``parser: json``) or a mapping."""
        name: Any
        body: dict[Any, Any]
        if isinstance(m, str):
            body = MarkedDict()  # problems of an implied body point at the section's line
            body.line, body.key_lines = line_of(parent, key), {}
            name, where, holder, hkey = m, path, parent, key
        elif isinstance(m, dict):
            name = m.get("type", default)
            body, where, holder, hkey = m, f"{path}.type", m, "type"
            if name is None:
                self.err(m, None, where, f"required setting is missing (one of "
                         f"{', '.join(choices)})")
                return None, m
        else:
            self.err(parent, key, path, f"expected a name or a mapping, got {_type_name(m)}")
            return None, {}
        if name not in choices:
            self.err(holder, hkey, where, f"unknown {name!r} (expected one of "
                     f"{', '.join(choices)}){_suggest(str(name), choices)}")
            return None, body
        return str(name), body


# ---- sections --------------------------------------------------------------------------
def _listener_limits(c: _Checker, m: dict[Any, Any]) -> tuple[tuple[str, int], ...]:
    """``receiver.limits``: the push listener's limits, with the agent's key names."""
    limits = c.mapping(m, "limits", "receiver.limits")
    if limits is None:
        return ()
    keys = tuple(ListenerLimits.KEYS)
    c.unknown_keys(limits, keys, "receiver.limits")
    found = tuple((k, c.integer(limits, k, f"receiver.limits.{k}", 0,
                                0 if k.endswith("timeout") else 1))
                  for k in keys if k in limits)
    try:
        ListenerLimits().with_settings(dict(found))
    except ValueError as exc:
        c.err(m, "limits", "receiver.limits", str(exc))
        return ()
    return found


def _receiver(c: _Checker, data: dict[Any, Any]) -> ReceiverSpec:
    raw = data.get("receiver", _MISSING)
    if raw is _MISSING:
        return ReceiverSpec()
    kind, m = c.kind(raw, data, "receiver", "receiver", ("push", "pull"), None)
    if kind == "push":
        c.unknown_keys(m, ("type", "host", "port", "deflate", "limits"), "receiver",
                       lambda k: "; only for pull receivers"
                       if k in ("addresses", "max_batch_size", "parallelism") else "")
        return ReceiverSpec("push", c.string(m, "host", "receiver.host", ReceiverSpec.host),
                            c.integer(m, "port", "receiver.port", ReceiverSpec.port, 1, 65535),
                            c.boolean(m, "deflate", "receiver.deflate", ReceiverSpec.deflate),
                            limits=_listener_limits(c, m))
    if kind == "pull":
        c.unknown_keys(m, ("type", "addresses", "max_batch_size", "parallelism"), "receiver",
                       lambda k: "; only for push receivers"
                       if k in ("host", "port", "deflate") else "")
        addresses: list[tuple[str, int]] = []
        raw_addr = m.get("addresses")
        if not isinstance(raw_addr, list) or not raw_addr:
            c.err(m, "addresses" if "addresses" in m else None, "receiver.addresses",
                  "expected a non-empty list of host:port")
        else:
            for i, item in enumerate(raw_addr):
                parsed = parse_address(item)
                if isinstance(parsed, str):
                    c.err(raw_addr, i, f"receiver.addresses[{i}]", parsed)
                else:
                    addresses.append(parsed)
        return ReceiverSpec("pull", addresses=tuple(addresses),
                            max_batch_size=c.integer(m, "max_batch_size",
                                                     "receiver.max_batch_size",
                                                     ReceiverSpec.max_batch_size, 1),
                            parallelism=c.integer(m, "parallelism", "receiver.parallelism",
                                                  ReceiverSpec.parallelism, 1))
    return ReceiverSpec()


def parse_address(item: Any) -> tuple[str, int] | str:
    """``"host:port"`` -> (host, port), or an error message."""
    if not isinstance(item, str) or ":" not in item:
        return f"expected host:port, got {item!r}"
    host, _, port = item.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"expected host:port with a port between 1 and 65535, got {item!r}"
    return host.strip("[]"), int(port)


def _parser(c: _Checker, data: dict[Any, Any]) -> ParserSpec:
    raw = data.get("parser", _MISSING)
    if raw is _MISSING:
        return ParserSpec()
    kind, m = c.kind(raw, data, "parser", "parser", PARSER_TYPES, None)
    if kind is None:
        return ParserSpec("json")  # any field name then passes; the kind error is reported
    allowed: dict[str, tuple[str, ...]] = {"regex": ("type", "pattern"),
                                           "csv": ("type", "columns", "delimiter")}
    c.unknown_keys(m, allowed.get(kind, ("type",)), "parser")
    if kind == "regex":
        pattern = c.string(m, "pattern", "parser.pattern", required=True)
        if pattern is not None:
            try:
                groups = re.compile(pattern).groupindex
            except re.error as exc:
                c.err(m, "pattern", "parser.pattern", f"invalid regular expression: {exc}")
                return ParserSpec("json")
            if not groups:
                c.err(m, "pattern", "parser.pattern",
                      "needs at least one named group, e.g. (?P<url>\\S+)")
        return ParserSpec("regex", pattern=pattern)
    if kind == "csv":
        columns = m.get("columns")
        names: tuple[str, ...] = ()
        if not isinstance(columns, list) or not columns \
                or not all(isinstance(x, str) and x for x in columns):
            c.err(m, "columns" if "columns" in m else None, "parser.columns",
                  "expected a non-empty list of column names")
        elif len(set(columns)) != len(columns):
            c.err(m, "columns", "parser.columns", "column names must be unique")
        else:
            names = tuple(columns)
        delimiter = c.string(m, "delimiter", "parser.delimiter", ParserSpec.delimiter)
        if len(delimiter) != 1:
            c.err(m, "delimiter", "parser.delimiter",
                  f"expected one character, got {delimiter!r}")
            delimiter = ","
        if not names:
            return ParserSpec("json")  # unknown columns: do not flag every field reference
        return ParserSpec("csv", columns=names, delimiter=delimiter)
    return ParserSpec(kind)


def _field_ref(c: _Checker, container: Any, key: Any, path: str, value: Any,
               fields: tuple[str, ...] | None, parser: ParserSpec) -> str | None:
    if not isinstance(value, str) or not value:
        c.err(container, key, path, f"expected a field name, got {value!r}")
        return None
    if value.startswith(HEADER_PREFIX):
        if not value[len(HEADER_PREFIX):]:
            c.err(container, key, path, "header: needs a header name, e.g. header:host")
            return None
        return value
    if fields is not None and value not in fields:
        c.err(container, key, path, f"unknown field {value!r} for parser {parser.kind} "
              f"(fields: {', '.join(fields)}; Flume headers as header:NAME)"
              f"{_suggest(value, fields)}")
        return None
    return value


def _filters(c: _Checker, data: dict[Any, Any], fields: tuple[str, ...] | None,
             parser: ParserSpec) -> tuple[FilterSpec, ...]:
    raw = data.get("filters", _MISSING)
    if raw is _MISSING or raw is None:
        return ()
    if not isinstance(raw, list):
        c.err(data, "filters", "filters", f"expected a list, got {_type_name(raw)}")
        return ()
    out: list[FilterSpec] = []
    for i, item in enumerate(raw):
        path = f"filters[{i}]"
        if not isinstance(item, dict):
            c.err(raw, i, path, f"expected a mapping with field, op, value, got "
                  f"{_type_name(item)}")
            continue
        c.unknown_keys(item, ("field", "op", "value"), path)
        field = _field_ref(c, item, "field", f"{path}.field", item.get("field"), fields, parser)
        op = item.get("op")
        if op not in FILTER_OPS:
            c.err(item, "op" if "op" in item else None, f"{path}.op",
                  f"unknown {op!r} (expected one of {', '.join(FILTER_OPS)})"
                  f"{_suggest(str(op), FILTER_OPS)}")
            continue
        value = item.get("value", _MISSING)
        problem = _filter_value_problem(op, value)
        if problem:
            c.err(item, "value" if value is not _MISSING else None, f"{path}.value", problem)
            continue
        if field is not None:
            out.append(FilterSpec(field, op, None if value is _MISSING else value))
    return tuple(out)


def _filter_value_problem(op: str, value: Any) -> str | None:
    if op == "exists":
        return None if value is _MISSING else "exists takes no value"
    if value is _MISSING:
        return f"{op} needs a value"
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and all(isinstance(v, str | int | float) for v in value)
        return None if ok else f"{op} needs a list of values, got {value!r}"
    if op in ("regex", "not_regex"):
        if not isinstance(value, str):
            return f"{op} needs a regular expression string, got {value!r}"
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression: {exc}"
        return None
    if op in ("gt", "ge", "lt", "le"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{op} needs a number, got {value!r}"
    if not isinstance(value, str | int | float | bool):
        return f"{op} needs a single value, got {_type_name(value)}"
    return None


def _aggregation(c: _Checker, data: dict[Any, Any]) -> tuple[str, int]:
    raw = data.get("aggregation", "count")
    kind, m = c.kind(raw, data, "aggregation", "aggregation", AGGREGATIONS, None)
    k = 10
    if isinstance(raw, dict):
        c.unknown_keys(m, ("type", "k") if kind == "top_k" else ("type",), "aggregation",
                       lambda key: "; k is only for top_k" if key == "k" else "")
        if kind == "top_k":
            k = c.integer(m, "k", "aggregation.k", JobSpec.k, 1)
    return kind or "count", k


def _durations(c: _Checker, data: dict[Any, Any], event_time: bool,
               ) -> tuple[float, float, float]:
    """batch (default 1 s), window (default: one batch) and slide (default: one batch, as
    Spark's; for event-time windows the window itself, i.e. tumbling windows)."""
    batch = c.number(data, "batch", "batch", JobSpec.batch)
    if to_ms(batch) <= 0:
        c.err(data, "batch", "batch", f"must be at least 0.001 s, got {batch}")
        batch = JobSpec.batch
    window = c.number(data, "window", "window", batch)
    slide = c.number(data, "slide", "slide", window if event_time else batch)
    if not event_time:
        b = to_ms(batch)
        for name, value in (("window", window), ("slide", slide)):
            if to_ms(value) % b:
                c.err(data, name if name in data else "batch", name,
                      f"{value:g} s is not a multiple of batch ({batch:g} s); Spark requires "
                      "window and slide to be multiples of the batch interval")
    return batch, window, slide


def _event_time(c: _Checker, data: dict[Any, Any], fields: tuple[str, ...] | None,
                parser: ParserSpec) -> EventTimeSpec | None:
    m = c.mapping(data, "event_time", "event_time")
    if m is None:
        return None
    c.unknown_keys(m, ("header", "field", "format", "allowed_lateness"), "event_time")
    header = c.string(m, "header", "event_time.header")
    field = None
    if "field" in m:
        field = _field_ref(c, m, "field", "event_time.field", m["field"], fields, parser)
    if ("header" in m) == ("field" in m):
        c.err(m, None, "event_time", "set exactly one of header (a Flume header such as "
              "timestamp) or field (a parsed field)")
    if header is not None:
        default_format = "epoch_ms"  # what Flume's timestamp interceptor writes
    elif parser.kind.startswith("apache") and field == "time":
        default_format = "apache"
    else:
        default_format = "iso8601"
    fmt = c.string(m, "format", "event_time.format", default_format)
    if fmt not in TIME_FORMATS and "%" not in fmt:
        c.err(m, "format", "event_time.format", f"unknown {fmt!r} (expected one of "
              f"{', '.join(TIME_FORMATS)}, or a strptime pattern such as %Y-%m-%d %H:%M:%S)")
    lateness = c.number(m, "allowed_lateness", "event_time.allowed_lateness",
                        EventTimeSpec.allowed_lateness, positive=False)
    return EventTimeSpec(header, field, fmt, lateness)


def _outputs(c: _Checker, data: dict[Any, Any], name: str) -> tuple[OutputSpec, ...]:
    raw = data.get("outputs", _MISSING)
    if raw is _MISSING:
        return (OutputSpec("console"),)
    if not isinstance(raw, list) or not raw:
        c.err(data, "outputs", "outputs", "expected a non-empty list of outputs")
        return ()
    out: list[OutputSpec] = []
    paths: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = f"outputs[{i}]"
        kind, m = c.kind(item, raw, i, path, OUTPUT_TYPES, None)
        if kind is None:
            continue
        allowed = {"console": ("type", "top"), "sqlite": ("type", "path", "table")}
        c.unknown_keys(m, allowed.get(kind, ("type", "path")), path)
        if kind == "console":
            top = c.integer(m, "top", f"{path}.top", OutputSpec.top, 1)
            out.append(OutputSpec("console", top=top))
            continue
        file_path = c.string(m, "path", f"{path}.path", required=True)
        if file_path is not None:
            key = os.path.abspath(file_path)
            if key in paths:
                c.err(m, "path", f"{path}.path", f"{file_path!r} is already written by "
                      f"outputs[{paths[key]}]")
            paths[key] = i
        table = None
        if kind == "sqlite":
            table = c.string(m, "table", f"{path}.table", default_table(name))
            if not _IDENTIFIER.match(table):
                c.err(m, "table", f"{path}.table", f"{table!r} is not a valid table name "
                      "(letters, digits, _; not starting with a digit)")
        out.append(OutputSpec(kind, path=file_path, table=table))
    return tuple(out)


def default_table(name: str) -> str:
    """A job name made into an SQL identifier (one table per job)."""
    table = re.sub(r"\W", "_", name) or "job"
    return f"job_{table}" if table[0].isdigit() else table


def _ui(c: _Checker, data: dict[Any, Any]) -> UiSpec:
    """``ui: 4040`` (a port; 0 turns the UI off), ``ui: false``, or a mapping with
    ``host``, ``port`` and ``top``."""
    raw = data.get("ui", _MISSING)
    if raw is _MISSING or raw is None:
        return UiSpec()
    if raw is False:
        return UiSpec(port=0)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return UiSpec(port=c.integer(data, "ui", "ui", UiSpec.port, 0, 65535))
    if not isinstance(raw, dict):
        c.err(data, "ui", "ui", f"expected a port, false, or a mapping with host, port and "
              f"top, got {_type_name(raw)}")
        return UiSpec()
    c.unknown_keys(raw, ("host", "port", "top"), "ui")
    top = c.integer(raw, "top", "ui.top", 0, 1) if "top" in raw else None
    return UiSpec(host=c.string(raw, "host", "ui.host", UiSpec.host),
                  port=c.integer(raw, "port", "ui.port", UiSpec.port, 0, 65535),
                  top=top or None)


# ---- the whole job ---------------------------------------------------------------------
def validate_job(data: Any, source: str, default_name: str = "job",
                 ) -> tuple[JobSpec | None, list[Issue]]:
    """Check everything; return (spec, []) or (None, every issue in line order)."""
    c = _Checker(source)
    if not isinstance(data, dict):
        c.err(data, None, "", f"a job is a YAML mapping of settings, got {_type_name(data)}")
        return None, c.issues
    c.unknown_keys(data, TOP_KEYS, "")
    name = c.string(data, "name", "name", default_name)
    receiver = _receiver(c, data)
    parser = _parser(c, data)
    fields = known_fields(parser)
    filters = _filters(c, data, fields, parser)
    agg_name, k = _aggregation(c, data)
    aggregation = make_aggregation(agg_name, k)

    raw_key = data.get("key", _MISSING)
    key: list[str] = []
    if raw_key is _MISSING or raw_key is None:
        c.err(data, "key" if raw_key is None else None, "key",
              "required setting is missing (a field name or a list of them)")
    elif isinstance(raw_key, list) and raw_key:
        for i, item in enumerate(raw_key):
            ref = _field_ref(c, raw_key, i, f"key[{i}]", item, fields, parser)
            if ref is not None:
                key.append(ref)
    else:
        ref = _field_ref(c, data, "key", "key", raw_key, fields, parser)
        if ref is not None:
            key.append(ref)

    value = None
    if "value" in data:
        if not aggregation.needs_value:
            c.err(data, "value", "value", f"{agg_name} counts records and uses no value; "
                  "remove it or choose sum, avg, min, max, distinct_count or top_k")
        else:
            value = _field_ref(c, data, "value", "value", data["value"], fields, parser)
    elif aggregation.needs_value:
        c.err(data.get("aggregation") if isinstance(data.get("aggregation"), dict) else data,
              "aggregation" if not isinstance(data.get("aggregation"), dict) else "type",
              "value", f"{agg_name} needs 'value': the field to aggregate")

    event_time = _event_time(c, data, fields, parser)
    batch, window, slide = _durations(c, data, event_time is not None)
    checkpoint = c.string(data, "checkpoint", "checkpoint")
    outputs = _outputs(c, data, name)
    ui = _ui(c, data)

    for dup_line, message in getattr(data, "duplicates", ()):
        c.issues.append(Issue(source, dup_line, "", message))
    if c.issues:
        c.issues.sort(key=lambda i: (i.line is None, i.line or 0))
        return None, c.issues
    return JobSpec(name=name, receiver=receiver, parser=parser, filters=filters,
                   key=tuple(key), value=value, aggregation=agg_name, k=k, batch=batch,
                   window=window, slide=slide, event_time=event_time, checkpoint=checkpoint,
                   outputs=outputs, ui=ui, source=source), []


def load_job_file(path: str) -> JobSpec:
    """Read, parse and validate a YAML job; raises :class:`JobInvalid` with every issue."""
    source = path
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise JobInvalid([Issue(source, None, "", f"cannot read job: {exc.strerror}")]) from None
    try:
        data, duplicates = load_marked(text)
    except YamlProblem as exc:
        raise JobInvalid([Issue(source, exc.line, "", exc.message)]) from None
    if isinstance(data, dict):
        data.duplicates = duplicates  # type: ignore[attr-defined]
    stem = os.path.splitext(os.path.basename(path))[0]
    spec, issues = validate_job(data, source, default_name=stem)
    if spec is None:
        raise JobInvalid(issues)
    return spec
