"""PURE vectorised evaluation of a declarative job over a whole batch (polars).

:class:`BatchEvaluator` does what :class:`~consumer.jobs.extract.RecordPipeline` does to each
record (parse, filters, key, value, event time, with the same drop counters) for a whole
batch at once, and aggregates what is left per group before anything reaches the window
state, so windows merge one partial per distinct key, never one per record:

* processing-time jobs: one partial per key, keys in order of first appearance (the order
  ``Counter`` or ``agg.batch`` gives on the record path);
* event-time jobs: one ``Pane`` per stretch of event time that falls into the same set
  of windows (``gcd(window, slide)`` long), holding the newest timestamp, the record count and
  one partial per key. Whether a record is too late only depends on its pane, so the window
  state can decide per pane (see ``EventTimeWindows.add_pane``).

Anything that is a pure function of one field value (filters, number conversion, timestamp
parsing) runs in Python once per *distinct* value with the record path's own functions, so
the two paths cannot disagree on it. The arithmetic is exact (counts, integer sums, min/max of
integers, value counters), so grouping changes no result. When a batch holds something the
columns cannot carry exactly (a body that is not a string, an integer beyond 64 bits, a float
value, whose sums depend on the order of additions), ``evaluate`` returns None and the caller
runs the record path on that batch; both feed the same window state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from consumer.engine.windows import Pane, pane_ms
from consumer.jobs.aggregations import make_aggregation
from consumer.jobs.chunks import EventChunk, chunk_columns, chunk_records
from consumer.jobs.columns import Columns, make_column_parser
from consumer.jobs.extract import (
    HEADER_PREFIX,
    JobCounters,
    RecordPipeline,
    make_filter,
    make_time_parser,
    to_number,
)
from consumer.jobs.spec import JobSpec

__all__ = ["BatchEvaluator", "BatchStep", "header_refs"]

_INT64 = 2**63
_SUPPORTED_AGGREGATIONS = frozenset(
    {"count", "sum", "avg", "min", "max", "distinct_count", "top_k"})


def header_refs(spec: JobSpec) -> tuple[str, ...]:
    """The event headers a job reads (filters, key, value, event time)."""
    refs = [f.field for f in spec.filters] + list(spec.key)
    if spec.value:
        refs.append(spec.value)
    names = [r[len(HEADER_PREFIX):] for r in refs if r.startswith(HEADER_PREFIX)]
    if spec.event_time is not None and spec.event_time.header:
        names.append(spec.event_time.header)
    return tuple(dict.fromkeys(names))


def _counter(pairs: Iterable[tuple[Any, int]]) -> Counter[Any]:
    """A Counter of distinct values' counts, filled at dict speed (``Counter(mapping)`` adds
    value by value in Python)."""
    c: Counter[Any] = Counter.__new__(Counter)  # (Counter.__init__ is Python too)
    dict.update(c, pairs)
    return c


def _as_bool(pred: Callable[[Any], Any]) -> Callable[[Any], bool]:
    return lambda v: bool(pred(v))


def _ref(ref: str) -> tuple[bool, str]:
    return (True, ref[len(HEADER_PREFIX):]) if ref.startswith(HEADER_PREFIX) else (False, ref)


class BatchEvaluator:
    """``evaluate(records)`` -> per-key partials (processing time) or panes (event time), or
    None when the record path must take this batch. Counts drops in ``counters`` exactly as
    ``RecordPipeline.process`` does (only when it returns a result)."""

    def __init__(self, spec: JobSpec, counters: JobCounters, window_ms: int, slide_ms: int,
                 ) -> None:
        self.counters = counters
        self.aggregation = spec.aggregation
        self.numeric = spec.aggregation in ("sum", "avg", "min", "max")
        self.filters = [(_ref(f.field), make_filter(f)) for f in spec.filters]
        self.keys = [_ref(k) for k in spec.key]
        self.value = _ref(spec.value) if spec.value else None
        et = spec.event_time
        self.time: tuple[bool, str] | None = None
        self.time_parser: Callable[[Any], float] | None = None
        if et is not None:
            self.time = (True, et.header) if et.header else (False, str(et.field))
            self.time_parser = make_time_parser(et.format)
        self.pane_ms = pane_ms(window_ms, slide_ms)
        refs = [r for (r, _) in self.filters] + self.keys
        refs += [r for r in (self.value, self.time) if r is not None]
        self.body_fields = tuple(dict.fromkeys(name for is_header, name in refs
                                               if not is_header))
        self.header_fields = tuple(dict.fromkeys(name for is_header, name in refs
                                                 if is_header))
        self.parse_columns = make_column_parser(spec.parser, self.body_fields)

    @classmethod
    def supports(cls, spec: JobSpec) -> bool:
        """Whether jobs like ``spec`` have a columnar form at all (json bodies do not)."""
        if spec.aggregation not in _SUPPORTED_AGGREGATIONS:
            return False
        return make_column_parser(spec.parser, ()) is not None

    # ---- one batch ---------------------------------------------------------------------
    def evaluate(self, records: Sequence[tuple[Any, Any]]) -> list[Any] | list[Pane] | None:
        if self.parse_columns is None:
            return None
        columns = self.parse_columns([body for _, body in records])
        if columns is None:
            return None
        frame = self._frame(columns, records)
        if frame is None:
            return None
        return self._finish(frame, columns.n)

    def evaluate_chunks(self, chunks: Sequence[EventChunk]) -> list[Any] | list[Pane] | None:
        """The same for a batch of columnar chunks (``consumer.jobs.intake``)."""
        if self.parse_columns is None:
            return None
        bodies, headers = chunk_columns(chunks, self.header_fields)
        columns = self.parse_columns(bodies)  # (chunks hold no other objects than text)
        frame = None if columns is None else self._frame(columns, headers)
        if frame is None:
            return None
        return self._finish(frame, frame.height)

    def _frame(self, columns: Columns, headers: Sequence[tuple[Any, Any]] | dict[str, pl.Series],
               ) -> pl.DataFrame | None:
        """The batch as a frame: ``valid`` and one column per field and header read
        (``headers``: the records, or the header columns already)."""
        data: dict[str, pl.Series] = {"valid": columns.valid.alias("valid")}
        for name, col in columns.fields.items():
            data[f"f:{name}"] = col.alias(f"f:{name}")
        for name in self.header_fields:
            if isinstance(headers, dict):
                data[f"h:{name}"] = headers[name].alias(f"h:{name}")
                continue
            values = []
            for h, _ in headers:
                v = h.get(name) if h else None
                if v is not None and type(v) is not str:
                    return None  # the record path may compare it as it is
                values.append(v)
            data[f"h:{name}"] = pl.Series(f"h:{name}", values, dtype=pl.String)
        return pl.DataFrame(data)

    @staticmethod
    def _col(ref: tuple[bool, str]) -> str:
        return f"h:{ref[1]}" if ref[0] else f"f:{ref[1]}"

    def _mapped(self, frame: pl.DataFrame, mask: pl.Series, column: str,
                func: Callable[[Any], Any], dtype: Any) -> pl.Series | None:
        """``func`` of each row's value (None where ``mask`` is False), computed once per
        distinct value; None if a result does not fit ``dtype`` (int64 or bool)."""
        col = frame[column]
        distinct = col.filter(mask).unique().to_list()
        results = [func(v) for v in distinct]
        if dtype == pl.Int64 and any(r is not None and not (type(r) is int
                                                            and -_INT64 <= r < _INT64)
                                     for r in results):
            return None
        if not distinct:
            return pl.Series(column, [None] * len(col), dtype=dtype)
        mapped = col.replace_strict(distinct, results, default=None, return_dtype=dtype)
        return mapped.zip_with(mask, pl.Series([None], dtype=dtype))

    def _finish(self, frame: pl.DataFrame, n: int) -> list[Any] | list[Pane] | None:
        c = self.counters
        valid = frame["valid"]
        ok = valid
        for ref, pred in self.filters:
            col = self._col(ref)
            passed = self._mapped(frame, ok & frame[col].is_not_null(), col,
                                  _as_bool(pred), pl.Boolean)
            assert passed is not None
            ok = ok & passed.fill_null(False)
        n_valid, n_passed = int(valid.sum()), int(ok.sum())
        missing = 0
        for ref in self.keys:
            if ref[0]:  # a header key may be absent; a body field is there (maybe None)
                absent = ok & frame[self._col(ref)].is_null()
                missing += int(absent.sum())
                ok = ok & ~absent
        bad_value = bad_time = 0
        value: pl.Series | None = None
        if self.value is not None:
            col = self._col(self.value)
            if self.value[0]:
                absent = ok & frame[col].is_null()
                missing += int(absent.sum())
                ok = ok & ~absent
            value = self._value(frame, ok, col)
            if value is None:
                return None
            bad = ok & value.is_null()
            bad_value = int(bad.sum())
            ok = ok & ~bad
        ts: pl.Series | None = None
        if self.time is not None:
            col = self._col(self.time)
            if self.time[0]:
                absent = ok & frame[col].is_null()
                missing += int(absent.sum())
                ok = ok & ~absent
            ts = self._mapped(frame, ok & frame[col].is_not_null(), col, self._epoch_ms,
                              pl.Int64)  # None (a missing group) is a bad time
            if ts is None:
                return None
            bad = ok & ts.is_null()
            bad_time = int(bad.sum())
            ok = ok & ~bad
        groups = self._groups(frame, ok, value, ts)
        if groups is None:
            return None
        c.events += n
        c.malformed += n - n_valid
        c.filtered += n_valid - n_passed
        c.missing_field += missing
        c.bad_value += bad_value
        c.bad_time += bad_time
        return groups

    def _value(self, frame: pl.DataFrame, ok: pl.Series, col: str) -> pl.Series | None:
        """The value column (None rows are bad values), or None if this batch cannot be
        aggregated exactly here (a float value)."""
        raw = frame[col]
        if not self.numeric:
            return raw  # str/int values are their own hashable form
        if raw.dtype == pl.Int64:
            return raw
        return self._mapped(frame, ok & raw.is_not_null(), col, to_number, pl.Int64)

    def _epoch_ms(self, raw: Any) -> int | None:
        assert self.time_parser is not None
        try:
            seconds = self.time_parser(raw)
            return round(seconds * 1000)
        except (ValueError, TypeError, OverflowError):
            return None

    # ---- grouping ----------------------------------------------------------------------
    def _groups(self, frame: pl.DataFrame, ok: pl.Series, value: pl.Series | None,
                ts: pl.Series | None) -> list[Any] | list[Pane] | None:
        cols: dict[str, pl.Series] = {}
        key_names = []
        for i, ref in enumerate(self.keys):
            cols[f"k{i}"] = frame[self._col(ref)]
            key_names.append(f"k{i}")
        if value is not None:
            cols["v"] = value
        if ts is not None:
            cols["ts"] = ts
        data = pl.DataFrame(cols).filter(ok)
        if self.aggregation in ("sum", "avg") and data.height:
            biggest = data["v"].abs().max()
            if biggest is not None and int(biggest) * data.height >= _INT64:  # type: ignore[arg-type]
                return None  # a sum could overflow 64 bits: Python's integers take it
        if ts is None:
            return self._partials(data, key_names)
        data = data.with_columns(pane=(pl.col("ts") // self.pane_ms) * self.pane_ms)
        info = data.group_by("pane").agg(max=pl.col("ts").max(), records=pl.len()).sort("pane")
        per_key = self._aggregate(data, ["pane", *key_names]).sort("pane", maintain_order=True)
        panes = []
        keys = self._key_values(per_key, key_names)
        accs = self._accs(per_key, ["pane", *key_names])
        bounds = per_key["pane"].to_list()
        i = 0
        for start, newest, records in info.iter_rows():
            j = i
            while j < len(bounds) and bounds[j] == start:
                j += 1
            panes.append(Pane(start, newest, records, keys[i:j], accs[i:j]))
            i = j
        return panes

    def _partials(self, data: pl.DataFrame, key_names: list[str]) -> list[Any]:
        grouped = self._aggregate(data, key_names)
        return list(zip(self._key_values(grouped, key_names),
                        self._accs(grouped, key_names), strict=True))

    def _aggregate(self, data: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        """One row per group (groups in order of first appearance), with what the
        accumulators are built from."""
        agg = self.aggregation
        if agg == "count":
            return data.group_by(by, maintain_order=True).agg(n=pl.len())
        if agg in ("sum", "avg"):
            return data.group_by(by, maintain_order=True).agg(s=pl.col("v").sum(), n=pl.len())
        if agg in ("min", "max"):
            pick = pl.col("v").min() if agg == "min" else pl.col("v").max()
            return data.group_by(by, maintain_order=True).agg(x=pick)
        # distinct_count, top_k: value counts per group, values in order of appearance
        counted = data.group_by([*by, "v"], maintain_order=True).agg(n=pl.len())
        return counted.group_by(by, maintain_order=True).agg(pl.col("v"), pl.col("n"))

    def _accs(self, grouped: pl.DataFrame, by: list[str]) -> list[Any]:
        agg = self.aggregation
        if agg == "count":
            return grouped["n"].to_list()
        if agg in ("sum", "avg"):
            return list(zip(grouped["s"].to_list(), grouped["n"].to_list(), strict=True))
        if agg in ("min", "max"):
            return grouped["x"].to_list()
        sizes = grouped["v"].list.len().to_list()
        flat = grouped.select(pl.col("v").explode(), pl.col("n").explode())
        vs, ns = flat["v"].to_list(), flat["n"].to_list()  # flat lists: no list per group
        out: list[Any] = []
        i = 0
        bag = self.time is not None  # event-time windows keep bags of counters
        for size in sizes:
            j = i + size
            counter = _counter(zip(vs[i:j], ns[i:j], strict=True))
            out.append([counter] if bag else counter)
            i = j
        return out

    @staticmethod
    def _key_values(grouped: pl.DataFrame, key_names: list[str]) -> list[Any]:
        if len(key_names) == 1:
            return grouped[key_names[0]].to_list()
        return list(zip(*(grouped[k].to_list() for k in key_names), strict=True))


class BatchStep:
    """A job's per-batch step: the vectorised evaluator where it applies, the record path
    (``RecordPipeline``) for the batches it declines; both produce the same shapes, so the
    windows downstream never know which one ran. ``fallbacks`` counts record-path batches."""

    def __init__(self, spec: JobSpec, counters: JobCounters, window_ms: int, slide_ms: int,
                 vectorised: bool = True) -> None:
        self.agg = make_aggregation(spec.aggregation, spec.k, spec.event_time is not None)
        self.pipeline = RecordPipeline(spec, counters)
        self.evaluator = (BatchEvaluator(spec, counters, window_ms, slide_ms)
                          if vectorised and BatchEvaluator.supports(spec) else None)
        if self.evaluator is not None:
            # polars sets up its threads and arenas on first use: at start-up, not in the
            # middle of the first busy batch
            BatchEvaluator(spec, JobCounters(), window_ms, slide_ms).evaluate([({}, "-")])
        self.pane_ms = pane_ms(window_ms, slide_ms)
        self.batches = 0
        self.fallbacks = 0

    def _vectorised(self, records: list[Any]) -> tuple[list[Any] | list[Pane] | None,
                                                        list[Any]]:
        """The vectorised result (None: declined) and the batch as records (events arrive as
        ``(headers, body)`` tuples, or as ``EventChunk``s from the receiver process)."""
        self.batches += 1
        chunks = bool(records) and isinstance(records[0], EventChunk)
        out = None
        if self.evaluator is not None and records:
            out = (self.evaluator.evaluate_chunks(records) if chunks
                   else self.evaluator.evaluate(records))
        if out is None:
            self.fallbacks += 1
            if chunks:
                records = chunk_records(records)
        return out, records

    def partials(self, records: Iterable[Any]) -> list[tuple[Any, Any]]:
        """``(key, accumulator)`` per key of the batch, keys in order of first appearance."""
        out, batch = self._vectorised(list(records))
        if out is not None:
            return out  # type: ignore[return-value]
        return list(self.agg.batch(self.pipeline.process(batch)).items())

    def panes(self, records: Iterable[Any]) -> list[Pane]:
        """The batch grouped into panes (event-time jobs); the record path makes one pane
        per record, in record order, which adds exactly as the record would."""
        out, batch = self._vectorised(list(records))
        if out is not None:
            return out
        lift, size = self.agg.lift, self.pane_ms
        panes = []
        for ts, key, value in self.pipeline.process(batch):
            ms = round(ts * 1000)
            panes.append(Pane(ms - ms % size, ms, 1, [key], [lift(value)]))
        return panes
