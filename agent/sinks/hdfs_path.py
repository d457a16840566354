"""Flume's BucketPath escapes, pure: ``hdfs.path`` and ``hdfs.filePrefix`` per event.

``%{header}`` is the header's value ("" when absent); ``%[localhost]``, ``%[IP]``, ``%[FQDN]``
the agent's host; ``%t`` the timestamp header as written; ``%s`` epoch seconds; ``%%`` a
percent; every other ``%x`` a field of the event's time (``%Y %m %d %H %M %S %y %b %B %a %A
%c %D %e %I %j %k %l %n %p %z``) in ``hdfs.timeZone`` (local time by default), with English
names as a JVM in an English locale writes them. With ``hdfs.round`` the time is first rounded
down to a multiple of ``roundValue`` ``roundUnit``s (every escape but ``%t``).

The time is the ``timestamp`` header (epoch millis), or now with ``hdfs.useLocalTimeStamp``.
An event whose timestamp header is missing or not a number makes Flume's sink fail the batch
forever; here it is written with the local time instead and counted (``missing_timestamp``).
Templates are compiled once; unknown ``%[...]`` names are configuration errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

TAG = re.compile(r"%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]", re.ASCII)
ROUND_UNITS = {"second": 1, "minute": 60, "hour": 3600}
_MAX_ROUND = {"second": 60, "minute": 60, "hour": 24}

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class HostNames:
    """The agent's host for ``%[localhost]``, ``%[IP]`` and ``%[FQDN]``."""

    localhost: str = "localhost"
    ip: str = "127.0.0.1"
    fqdn: str = "localhost"


@dataclass(frozen=True)
class Rounding:
    unit: str = "second"  # second | minute | hour
    value: int = 1

    def __post_init__(self) -> None:
        if self.unit not in ROUND_UNITS:
            raise ValueError(f"roundUnit must be second, minute or hour, not {self.unit!r}")
        if not 0 < self.value <= _MAX_ROUND[self.unit]:
            raise ValueError(f"roundValue must be > 0 and <= {_MAX_ROUND[self.unit]} for "
                             f"{self.unit}s, got {self.value}")


def _offset(dt: datetime) -> str:
    delta = dt.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _hour12(dt: datetime) -> int:
    return dt.hour % 12 or 12


_FIELDS = {
    "a": lambda dt: _DAYS[dt.weekday()][:3],
    "A": lambda dt: _DAYS[dt.weekday()],
    "b": lambda dt: _MONTHS[dt.month - 1][:3],
    "B": lambda dt: _MONTHS[dt.month - 1],
    "c": lambda dt: (f"{_DAYS[dt.weekday()][:3]} {_MONTHS[dt.month - 1][:3]} {dt.day} "
                     f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {dt.year}"),
    "d": lambda dt: f"{dt.day:02d}",
    "e": lambda dt: str(dt.day),
    "D": lambda dt: f"{dt.month:02d}/{dt.day:02d}/{dt.year % 100:02d}",
    "H": lambda dt: f"{dt.hour:02d}",
    "I": lambda dt: f"{_hour12(dt):02d}",
    "j": lambda dt: f"{dt.timetuple().tm_yday:03d}",
    "k": lambda dt: str(dt.hour),
    "l": lambda dt: str(_hour12(dt)),
    "m": lambda dt: f"{dt.month:02d}",
    "M": lambda dt: f"{dt.minute:02d}",
    "n": lambda dt: str(dt.month),
    "p": lambda dt: "AM" if dt.hour < 12 else "PM",
    "S": lambda dt: f"{dt.second:02d}",
    "y": lambda dt: f"{dt.year % 100:02d}",
    "Y": lambda dt: f"{dt.year:04d}",
    "z": _offset,
}


def _local(seconds: int, zone: tzinfo | None) -> datetime:
    """An aware datetime in ``zone``, or in the local time zone when None."""
    if zone is not None:
        return datetime.fromtimestamp(seconds, zone)
    return datetime.fromtimestamp(seconds).astimezone()


def round_down(millis: int, rounding: Rounding, zone: tzinfo | None) -> int:
    """Flume's TimestampRoundDownUtil: the unit's field down to a multiple of the value, the
    smaller fields zeroed, in the time zone."""
    dt = datetime.fromtimestamp(millis // 1000, zone)
    if rounding.unit == "second":
        dt = dt.replace(second=dt.second - dt.second % rounding.value)
    elif rounding.unit == "minute":
        dt = dt.replace(minute=dt.minute - dt.minute % rounding.value, second=0)
    else:
        dt = dt.replace(hour=dt.hour - dt.hour % rounding.value, minute=0, second=0)
    return int(dt.timestamp()) * 1000


class BucketTemplate:
    """A compiled path or name template."""

    def __init__(self, template: str, hosts: HostNames = HostNames()) -> None:
        self.template = template
        parts: list[tuple[str, str]] = []  # (kind, value): text | header | time
        pos = 0
        for m in TAG.finditer(template):
            if m.start() > pos:
                parts.append(("text", template[pos:m.start()]))
            char, header, static = m.groups()
            if header is not None:
                parts.append(("header", header))
            elif static is not None:
                value = {"localhost": hosts.localhost, "ip": hosts.ip,
                         "fqdn": hosts.fqdn}.get(static.lower())
                if value is None:
                    raise ValueError(f"%[{static}] in {template!r} is none of %[localhost], "
                                     "%[IP], %[FQDN]")
                parts.append(("text", value))
            elif char == "%":
                parts.append(("text", "%"))
            elif char in _FIELDS or char in "st":
                parts.append(("time", char))
            else:
                parts.append(("text", ""))  # Flume renders unknown escapes as nothing
            pos = m.end()
        if pos < len(template):
            parts.append(("text", template[pos:]))
        self.parts = _merge_text(parts)
        self.uses_time = any(kind == "time" for kind, _ in self.parts)
        texts_only = all(kind == "text" for kind, _ in self.parts)
        self.static = "".join(v for _, v in self.parts) if texts_only else None
        self.header_names = [value for kind, value in self.parts if kind == "header"]
        self._last_key: tuple[object, ...] = ()
        self._last_value = ""

    def render(self, headers: Mapping[str, str], clock: TimeSource) -> str:
        if self.static is not None:
            return self.static
        stamp: EventTime | None = clock.for_event(headers) if self.uses_time else None
        key = (stamp, *[headers.get(name, "") for name in self.header_names])
        if key == self._last_key:  # consecutive events mostly land in the same bucket
            return self._last_value
        out = []
        for kind, value in self.parts:
            if kind == "text":
                out.append(value)
            elif kind == "header":
                out.append(headers.get(value, ""))
            else:
                assert stamp is not None
                out.append(stamp.field(value))
        self._last_key, self._last_value = key, "".join(out)
        return self._last_value


def _merge_text(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


class EventTime:
    """One event's time, formatted field by field on demand (cached per rounded second)."""

    __slots__ = ("_cache", "_dt", "_zone", "header", "millis")

    def __init__(self, millis: int, header: str, zone: tzinfo | None,
                 cache: dict[str, str]) -> None:
        self.millis = millis
        self.header = header
        self._cache = cache
        self._dt: datetime | None = None
        self._zone = zone

    def field(self, char: str) -> str:
        if char == "t":
            return self.header
        if char == "s":
            return str(self.millis // 1000)
        value = self._cache.get(char)
        if value is None:
            if self._dt is None:
                self._dt = _local(self.millis // 1000, self._zone)
            value = self._cache[char] = _FIELDS[char](self._dt)
        return value


class TimeSource:
    """Picks each event's time: the ``timestamp`` header or now, rounded if asked."""

    def __init__(self, zone: tzinfo | None = None, rounding: Rounding | None = None,
                 use_local_time: bool = False) -> None:
        self.zone = zone
        self.rounding = rounding
        self.use_local_time = use_local_time
        self.now_ms = 0  # set by the sink before rendering a batch
        self.missing_timestamp = 0
        self._fields: dict[int, dict[str, str]] = {}
        self._last: tuple[str | None, int, EventTime] | None = None

    def for_event(self, headers: Mapping[str, str]) -> EventTime:
        header = None if self.use_local_time else headers.get("timestamp")
        last = self._last
        if last is not None and last[0] == header and last[1] == self.now_ms:
            return last[2]  # a batch's events mostly share their time stamp
        event_time = self._for_event(header)
        if header is not None or self.use_local_time:
            self._last = (header, self.now_ms, event_time)
        return event_time

    def _for_event(self, header: str | None) -> EventTime:
        millis = None
        if header is not None:
            try:
                millis = int(header)
            except ValueError:
                millis = None
        if millis is None or header is None:
            if not self.use_local_time:
                self.missing_timestamp += 1
            millis = self.now_ms
            header = str(millis)
        if self.rounding is not None:
            millis = round_down(millis, self.rounding, self.zone)
        second = millis // 1000
        cache = self._fields.get(second)
        if cache is None:
            if len(self._fields) > 4096:
                self._fields.clear()
            cache = self._fields[second] = {}
        return EventTime(millis, header, self.zone, cache)
