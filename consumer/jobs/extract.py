"""PURE per-batch record processing: Flume events -> parsed, filtered, keyed tuples.

One call per batch (not one engine call per record): ``process(events)`` runs parse, filters,
key/value extraction and (for event-time jobs) timestamp parsing in a single loop, and counts
every record it drops by reason. Dropping is never fatal: a malformed line, a missing field or
an unparseable number is counted in :class:`JobCounters` and reported by the periodic summary.

Rules (documented in docs/jobs.md):

* a field written ``header:NAME`` reads the Flume event header ``NAME``;
* a record without the key or value field is dropped (``missing_field``);
* a record without a filter's field fails that filter;
* ``eq``/``ne``/``in``/``not_in`` compare as strings when the types differ (``200`` matches
  ``"200"``), ``gt``/``ge``/``lt``/``le`` compare as numbers (non-numbers fail);
* sum/avg/min/max values must be numbers or numeric strings (else ``bad_value``);
* list/object values used as keys or values are JSON-encoded (sorted keys).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from consumer.jobs.aggregations import make_aggregation
from consumer.jobs.parsers import Parser, make_parser
from consumer.jobs.spec import EventTimeSpec, FilterSpec, JobSpec

__all__ = ["JobCounters", "RecordPipeline", "make_time_parser", "to_number"]

HEADER_PREFIX = "header:"
_MISSING = object()
Getter = Callable[[dict[str, Any], dict[str, Any]], Any]


@dataclass
class JobCounters:
    """Running totals since start (the summary reports differences)."""

    events: int = 0
    malformed: int = 0
    filtered: int = 0
    missing_field: int = 0
    bad_value: int = 0
    bad_time: int = 0

    def dropped(self) -> int:
        return self.malformed + self.missing_field + self.bad_value + self.bad_time

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def make_getter(ref: str) -> Getter:
    if ref.startswith(HEADER_PREFIX):
        name = ref[len(HEADER_PREFIX):]
        return lambda _rec, headers: headers.get(name, _MISSING)
    return lambda rec, _headers: rec.get(ref, _MISSING)


def hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def to_number(value: Any) -> int | float | None:
    """int/float as is, numeric strings converted; None for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _loose_eq(a: Any, b: Any) -> bool:
    return bool(a == b) or (type(a) is not type(b) and str(a) == str(b))


def make_filter(spec: FilterSpec) -> Callable[[Any], bool]:
    """A predicate over the field's value (the caller handles a missing field)."""
    op, target = spec.op, spec.value
    if op == "exists":
        return lambda _v: True
    if op in ("eq", "ne"):
        want = op == "eq"
        return lambda v: _loose_eq(v, target) is want
    if op in ("in", "not_in"):
        options = list(target)  # type: ignore[call-overload]
        as_str = {str(o) for o in options}
        want = op == "in"
        return lambda v: (v in options or str(v) in as_str) is want
    if op in ("regex", "not_regex"):
        search = re.compile(str(target)).search
        want = op == "regex"
        return lambda v: (search(str(v)) is not None) is want
    if op == "contains":
        needle = str(target)
        return lambda v: needle in str(v)
    compare = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}[op]
    bound: Any = target

    def numeric(v: Any) -> bool:
        n = to_number(v)
        return n is not None and bool(compare(n, bound))

    return numeric


def make_time_parser(fmt: str) -> Callable[[Any], float]:
    """Event time -> epoch seconds; raises ValueError/TypeError for a bad timestamp.

    Times without a zone are taken as UTC. Apache times repeat within a second, so the
    last conversion is cached (strptime is the slow part)."""
    if fmt == "epoch_ms":
        return lambda v: float(v) / 1000.0
    if fmt == "epoch_s":
        return float
    if fmt == "iso8601":
        def iso(v: Any) -> float:
            text = str(v)
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            return _epoch(datetime.fromisoformat(text))
        return iso
    pattern = "%d/%b/%Y:%H:%M:%S %z" if fmt == "apache" else fmt
    cache: dict[str, float] = {}

    def parse(v: Any) -> float:
        text = str(v)
        hit = cache.get(text)
        if hit is None:
            hit = _epoch(datetime.strptime(text, pattern))
            if len(cache) > 64:
                cache.clear()
            cache[text] = hit
        return hit

    return parse


def _epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class RecordPipeline:
    """Everything a job does to one record before the windowing starts."""

    def __init__(self, spec: JobSpec, counters: JobCounters | None = None) -> None:
        self.counters = counters or JobCounters()
        p = spec.parser
        self.parse: Parser = make_parser(p.kind, p.pattern, p.columns, p.delimiter)
        self.filters = [(make_getter(f.field), make_filter(f)) for f in spec.filters]
        self.key_getters = [make_getter(k) for k in spec.key]
        agg = make_aggregation(spec.aggregation, spec.k)
        self.value_getter = make_getter(spec.value) if spec.value else None
        self.numeric = agg.numeric
        et: EventTimeSpec | None = spec.event_time
        self.time_getter: Getter | None = None
        self.time_parser: Callable[[Any], float] | None = None
        if et is not None:
            ref = f"{HEADER_PREFIX}{et.header}" if et.header else str(et.field)
            self.time_getter = make_getter(ref)
            self.time_parser = make_time_parser(et.format)

    def process(self, events: Iterable[tuple[dict[str, Any], Any]]) -> list[tuple[Any, ...]]:
        """``(key, value)`` pairs, or ``(epoch_s, key, value)`` for event-time jobs (value is
        None when the aggregation has none)."""
        c = self.counters
        parse, filters, key_getters = self.parse, self.filters, self.key_getters
        single_key = len(key_getters) == 1
        value_getter, numeric = self.value_getter, self.numeric
        time_getter, time_parser = self.time_getter, self.time_parser
        out: list[tuple[Any, ...]] = []
        n = 0
        for headers, body in events:
            n += 1
            rec = parse(body) if isinstance(body, str) else None
            if rec is None:
                c.malformed += 1
                continue
            headers = headers or {}
            passed = True
            for getter, pred in filters:
                v = getter(rec, headers)
                if v is _MISSING or v is None or not pred(v):
                    passed = False
                    break
            if not passed:
                c.filtered += 1
                continue
            if single_key:
                key = key_getters[0](rec, headers)
                if key is _MISSING:
                    c.missing_field += 1
                    continue
                key = hashable(key)
            else:
                parts = tuple(hashable(g(rec, headers)) for g in key_getters)
                if _MISSING in parts:
                    c.missing_field += 1
                    continue
                key = parts
            value: Any = None
            if value_getter is not None:
                value = value_getter(rec, headers)
                if value is _MISSING:
                    c.missing_field += 1
                    continue
                value = to_number(value) if numeric else hashable(value)
                if value is None:
                    c.bad_value += 1
                    continue
            if time_getter is not None:
                assert time_parser is not None
                raw = time_getter(rec, headers)
                if raw is _MISSING:
                    c.missing_field += 1
                    continue
                try:
                    ts = time_parser(raw)
                    round(ts * 1000)  # inf and nan are no time (the windows need ms)
                except (ValueError, TypeError, OverflowError):
                    c.bad_time += 1
                    continue
                out.append((ts, key, value))
            else:
                out.append((key, value))
        c.events += n
        return out
