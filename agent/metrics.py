"""Per-component counters with Flume's names, and the JSON shape Flume's HTTP monitoring serves.

Counters are plain ints in a dict: hot paths add whole batches at once (a channel adds its
put count at commit, not per event), so instrumentation costs almost nothing.
``MetricsRegistry.snapshot()`` returns ``{"CHANNEL.c1": {"ChannelSize": "3", ...}}`` with every
value a string, exactly as Flume's ``/metrics`` endpoint renders Java longs and doubles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

SOURCE_KEYS = (
    "EventReceivedCount",
    "EventAcceptedCount",
    "AppendReceivedCount",
    "AppendAcceptedCount",
    "AppendBatchReceivedCount",
    "AppendBatchAcceptedCount",
    "OpenConnectionCount",
    "EventReadFail",
    "ChannelWriteFail",
    "GenericProcessingFail",
)
CHANNEL_KEYS = (
    "ChannelSize",
    "ChannelCapacity",
    "EventPutAttemptCount",
    "EventPutSuccessCount",
    "EventTakeAttemptCount",
    "EventTakeSuccessCount",
)
SINK_KEYS = (
    "ConnectionCreatedCount",
    "ConnectionClosedCount",
    "ConnectionFailedCount",
    "BatchEmptyCount",
    "BatchUnderflowCount",
    "BatchCompleteCount",
    "EventDrainAttemptCount",
    "EventDrainSuccessCount",
    "EventWriteFail",
    "ChannelReadFail",
)
KEYS_BY_TYPE = {"SOURCE": SOURCE_KEYS, "CHANNEL": CHANNEL_KEYS, "SINK": SINK_KEYS}


def java_double(value: float) -> str:
    """Render a float as Java's ``Double.toString`` does (``5.0``, ``1.0E-4``, ``1.0E7``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    # shortest round-trip digits (what both Python and modern Java pick), in E notation
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    power = len(digits) + exponent - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


class CounterGroup:
    """One component's counters; ``counters`` is public so hot code can add to it directly."""

    def __init__(self, type_: str, name: str, keys: tuple[str, ...] = ()) -> None:
        self.type = type_
        self.name = name
        self.counters: dict[str, int] = dict.fromkeys(keys or KEYS_BY_TYPE.get(type_, ()), 0)
        self.start_time = 0
        self.stop_time = 0

    def increment(self, key: str, amount: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + amount

    def get(self, key: str) -> int:
        return self.counters.get(key, 0)

    def set(self, key: str, value: int) -> None:
        self.counters[key] = value

    def start(self, now_ms: int) -> None:
        """Flume zeroes a group's counters when its component starts."""
        for key in self.counters:
            self.counters[key] = 0
        self.start_time = now_ms
        self.stop_time = 0

    def stop(self, now_ms: int) -> None:
        self.stop_time = now_ms

    def attributes(self) -> dict[str, str]:
        out = {key: str(value) for key, value in self.counters.items()}
        out["Type"] = self.type
        out["StartTime"] = str(self.start_time)
        out["StopTime"] = str(self.stop_time)
        return out


class ChannelCounter(CounterGroup):
    """Adds the derived ``ChannelFillPercentage``; size and capacity come from a live probe."""

    def __init__(self, name: str) -> None:
        super().__init__("CHANNEL", name)
        self.size_probe: Callable[[], int] | None = None

    def fill_percentage(self) -> float:
        capacity = self.counters["ChannelCapacity"]
        if capacity == 0:
            return 1.7976931348623157e308  # Flume reports Double.MAX_VALUE for a 0 capacity
        return self.channel_size() / capacity * 100.0

    def channel_size(self) -> int:
        if self.size_probe is not None:
            return self.size_probe()
        return self.counters["ChannelSize"]

    def start(self, now_ms: int) -> None:
        capacity = self.counters["ChannelCapacity"]
        super().start(now_ms)
        self.counters["ChannelCapacity"] = capacity  # configuration, not a running count

    def attributes(self) -> dict[str, str]:
        self.counters["ChannelSize"] = self.channel_size()
        out = super().attributes()
        out["ChannelFillPercentage"] = java_double(self.fill_percentage())
        return out


class MetricsRegistry:
    """All counter groups of one agent, keyed ``"<TYPE>.<name>"`` like Flume's JSON."""

    def __init__(self) -> None:
        self.groups: dict[str, CounterGroup] = {}

    def _get(self, key: str, factory: Callable[[], CounterGroup]) -> CounterGroup:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = factory()
        return group

    def source(self, name: str) -> CounterGroup:
        return self._get(f"SOURCE.{name}", lambda: CounterGroup("SOURCE", name))

    def sink(self, name: str) -> CounterGroup:
        return self._get(f"SINK.{name}", lambda: CounterGroup("SINK", name))

    def channel(self, name: str) -> ChannelCounter:
        group = self._get(f"CHANNEL.{name}", lambda: ChannelCounter(name))
        assert isinstance(group, ChannelCounter)
        return group

    def other(self, type_: str, name: str, keys: tuple[str, ...]) -> CounterGroup:
        """Custom groups (SINK_PROCESSOR, INTERCEPTOR, OTHER ...) with their own keys."""
        return self._get(f"{type_}.{name}", lambda: CounterGroup(type_, name, keys))

    def mark_started(self, type_: str, name: str, now_ms: int) -> None:
        """Zero the component's counters and stamp ``StartTime`` (called by the runtime)."""
        group = self.groups.get(f"{type_}.{name}")
        if group is not None:
            group.start(now_ms)

    def mark_stopped(self, type_: str, name: str, now_ms: int) -> None:
        group = self.groups.get(f"{type_}.{name}")
        if group is not None:
            group.stop(now_ms)

    def snapshot(self) -> dict[str, dict[str, str]]:
        return {key: group.attributes() for key, group in sorted(self.groups.items())}
