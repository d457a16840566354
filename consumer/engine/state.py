"""PURE per-key state for ``updateStateByKey`` and the ``mapWithState``-style API.

``updateStateByKey(updateFunc)`` is PySpark's: each batch, ``updateFunc(new_values, old)`` runs
for every key that has new values *or* existing state (``new_values`` is a list, possibly
empty; ``old`` is ``None`` for a new key); returning ``None`` deletes the key.

PySpark has no ``mapWithState``; this mirrors Scala's ``StateSpec``/``State`` so Scala-style
jobs port directly::

    def track(key, value, state):          # value is None when the key is timing out
        total = (state.get() if state.exists() else 0) + (value or 0)
        if not state.isTimingOut():
            state.update(total)
        return (key, total)

    spec = StateSpec.function(track).timeout(60).initialState([("a", 5)])
    mapped = pairs.mapWithState(spec)       # a DStream of track's return values
    snapshots = mapped.stateSnapshots()     # a DStream of (key, state) after each batch

The function is called once per record (not per key) in arrival order; a 4-argument
function receives the batch time (a ``datetime``) first, as Scala's ``(time, key, value,
state)`` form does. With ``.timeout(seconds)``, a key that received no record for that long is
called once with ``value=None`` and ``state.isTimingOut()`` true, then dropped; its return
value is emitted. Spark only checks timeouts on its checkpoint interval (so they fire late);
here they are checked every batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MapWithStateStore", "State", "StateSpec", "UpdateStateStore"]


class UpdateStateStore:
    """State of one ``updateStateByKey`` stream: a dict, updated once per batch."""

    def __init__(self, update_func: Callable[[list[Any], Any], Any],
                 initial: Iterable[tuple[Any, Any]] | None = None) -> None:
        self.update_func = update_func
        self.state: dict[Any, Any] = dict(initial or ())

    def step(self, pairs: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        new_values: dict[Any, list[Any]] = {}
        for k, v in pairs:
            vs = new_values.get(k)
            if vs is None:
                new_values[k] = [v]
            else:
                vs.append(v)
        update = self.update_func
        nxt: dict[Any, Any] = {}
        for k, old in self.state.items():
            value = update(new_values.pop(k, []), old)
            if value is not None:
                nxt[k] = value
        for k, vs in new_values.items():
            value = update(vs, None)
            if value is not None:
                nxt[k] = value
        self.state = nxt
        return list(nxt.items())

    def snapshot(self) -> list[tuple[Any, Any]]:
        return list(self.state.items())

    def restore(self, data: list[tuple[Any, Any]]) -> None:
        self.state = dict(data)


class StateError(ValueError):
    """Misuse of :class:`State` (Scala raises IllegalArgumentException / NoSuchElement)."""


class State:
    """Scala's ``State[S]``: the state of one key while the mapping function runs."""

    __slots__ = ("_exists", "_removed", "_timing_out", "_updated", "_value")

    def __init__(self, exists: bool, value: Any = None, timing_out: bool = False) -> None:
        self._exists = exists
        self._value = value
        self._timing_out = timing_out
        self._updated = False
        self._removed = False

    def exists(self) -> bool:
        return self._exists

    def get(self) -> Any:
        if not self._exists:
            raise StateError("State is not set")
        return self._value

    def getOption(self) -> Any:
        return self._value if self._exists else None

    def update(self, newState: Any) -> None:
        if self._removed:
            raise StateError("Cannot update the state after it has been removed")
        if self._timing_out:
            raise StateError("Cannot update the state that is timing out")
        self._value, self._exists, self._updated = newState, True, True

    def remove(self) -> None:
        if self._timing_out:
            raise StateError("Cannot remove the state that is timing out")
        if self._removed:
            raise StateError("Cannot remove the state that has already been removed")
        self._exists, self._removed, self._value = False, True, None

    def isTimingOut(self) -> bool:
        return self._timing_out

    def isRemoved(self) -> bool:
        return self._removed

    def isUpdated(self) -> bool:
        return self._updated


class StateSpec:
    """Scala's ``StateSpec``: ``StateSpec.function(f).timeout(s).initialState(pairs)``."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.timeout_ms: int | None = None
        self.initial: list[tuple[Any, Any]] = []
        self.partitions: int | None = None

    @staticmethod
    def function(mappingFunction: Callable[..., Any]) -> StateSpec:
        return StateSpec(mappingFunction)

    def timeout(self, idleDuration: float) -> StateSpec:
        self.timeout_ms = int(idleDuration * 1000)
        return self

    def initialState(self, rdd: Any) -> StateSpec:
        self.initial = list(rdd.collect() if hasattr(rdd, "collect") else rdd)
        return self

    def numPartitions(self, numPartitions: int) -> StateSpec:
        self.partitions = numPartitions
        return self


def _positional_arity(func: Callable[..., Any]) -> int:
    code = getattr(func, "__code__", None)
    if code is not None and not inspect.ismethod(func):
        return int(code.co_argcount)
    params = inspect.signature(func).parameters.values()
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class MapWithStateStore:
    """State of one ``mapWithState`` stream: key -> (state value, last batch time with data)."""

    def __init__(self, spec: StateSpec) -> None:
        self.spec = spec
        self.with_time = _positional_arity(spec.func) == 4
        # initial state counts as seen at the first batch (Scala stamps it with that time)
        self.state: dict[Any, tuple[Any, int]] = {k: (v, -1) for k, v in spec.initial}
        self._unstamped = bool(self.state)

    def step(self, t_ms: int, when: Any, pairs: Iterable[tuple[Any, Any]]) -> list[Any]:
        """Apply the batch at ``t_ms`` (``when`` is the datetime handed to 4-arg functions)."""
        f = self.spec.func
        timeout = self.spec.timeout_ms
        out: list[Any] = []
        states = self.state
        if self._unstamped:
            self._unstamped = False
            for k, (value, seen) in list(states.items()):
                if seen < 0:
                    states[k] = (value, t_ms)
        for k, v in pairs:
            cur = states.get(k)
            st = State(cur is not None, cur[0] if cur is not None else None)
            out.append(f(when, k, v, st) if self.with_time else f(k, v, st))
            if st._removed:
                states.pop(k, None)
            elif st._updated or (st._exists and timeout is not None):
                states[k] = (st._value, t_ms)
        if timeout is not None:
            threshold = t_ms - timeout
            for k in [k for k, (_, seen) in states.items() if seen < threshold]:
                st = State(True, states[k][0], timing_out=True)
                out.append(f(when, k, None, st) if self.with_time else f(k, None, st))
                del states[k]
        return out

    def snapshots(self) -> list[tuple[Any, Any]]:
        return [(k, v) for k, (v, _) in self.state.items()]

    def snapshot(self) -> list[tuple[Any, Any, int]]:
        return [(k, v, seen) for k, (v, seen) in self.state.items()]

    def restore(self, data: list[tuple[Any, Any, int]]) -> None:
        self.state = {k: (v, seen) for k, v, seen in data}
        self._unstamped = any(seen < 0 for _, _, seen in data)
