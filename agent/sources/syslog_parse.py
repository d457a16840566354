"""Syslog messages into Flume events, pure: framing, RFC 3164 / RFC 5424 headers, keepFields.

Flume has two parsers and both are kept, because their headers differ:

- ``parse_syslog`` is Flume's ``SyslogUtils`` (syslogtcp, syslogudp): headers ``Facility``,
  ``Severity``, ``priority``, ``version``, ``timestamp``, ``host``. A message whose priority is
  malformed gets ``flume.syslog.status = Invalid`` and its raw bytes as body; one that matches
  neither RFC keeps its raw bytes with only ``Facility``/``Severity``.
- ``parse_multiport`` is Flume's ``SyslogParser`` (multiport_syslogtcp): headers ``Priority``,
  ``Facility``, ``Severity``, ``Version``, ``timestamp``, ``host``; anything it cannot parse
  becomes an ``Invalid`` event with the message as body.

``SyslogFramer`` splits a TCP byte stream at ``\\n`` (a ``\\r`` before it is dropped) and cuts
messages that reach ``eventSize`` bytes, marking them ``Incomplete`` as Flume does.

Where Flume is wrong, this is right, and the README says so: RFC 5424 fractions and offsets
are both honoured (Flume's SyslogUtils ignores the offset when a fraction is present and reads
``.5`` as 5 ms); headers never leak from one message into the next; a malformed message is
an ``Invalid`` event instead of an exception that loses the rest of the read.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from protocol.event import Event

FACILITY = "Facility"
SEVERITY = "Severity"
STATUS = "flume.syslog.status"
INVALID = "Invalid"
INCOMPLETE = "Incomplete"

KEEP_ALL = "--all--"
KEEPABLE = ("priority", "version", "timestamp", "hostname")
MIN_EVENT_SIZE = 10  # SyslogUtils raises smaller eventSize values to this
DEFAULT_EVENT_SIZE = 2500

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}


def fields_to_keep(value: str | None) -> frozenset[str] | None:
    """Flume's ``keepFields``: none/false -> None, all/true -> everything, else the listed
    field names found in the text (Flume matches them as substrings, so do we)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("none", "false"):
        return None
    if text in ("all", "true"):
        return frozenset([KEEP_ALL])
    return frozenset(name for name in KEEPABLE if name in text)


def _add_fields_to_body(keep: frozenset[str] | None, body: str, priority: str,
                        version: str | None, stamp: str | None, host: str | None) -> str:
    """Prepend the kept fields: ``<pri>version timestamp hostname body`` (Flume's order)."""
    if not keep:
        return body
    if "hostname" in keep:
        body = f"{host or '-'} {body}"
    if "timestamp" in keep:
        body = f"{stamp or '-'} {body}"
    if "version" in keep and version:
        body = f"{version} {body}"
    if "priority" in keep:
        body = f"<{priority}>{body}"
    return body


# --- framing -------------------------------------------------------------------------------


@dataclass
class SyslogFramer:
    """One TCP connection's bytes -> ``(message, incomplete)`` pairs.

    Empty lines are skipped. A message reaching ``max_size`` bytes without a newline is cut
    there and flagged incomplete; the rest of that line starts the next message.
    """

    max_size: int = DEFAULT_EVENT_SIZE
    _buffer: bytes = field(default=b"", repr=False)

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        buf = self._buffer + data if self._buffer else data
        out: list[tuple[bytes, bool]] = []
        start, limit, size = 0, len(buf), self.max_size
        while start < limit:
            nl = buf.find(b"\n", start)
            end = nl if nl >= 0 else limit
            if end - start >= size:
                out.append((buf[start:start + size], True))
                start += size
                continue
            if nl < 0:
                break
            if nl > start:
                line = buf[start:nl]
                if line[-1:] == b"\r":
                    line = line[:-1]
                if line:
                    out.append((line, False))
            start = nl + 1
        self._buffer = buf[start:]
        return out

    def finish(self) -> list[tuple[bytes, bool]]:
        """What is left when the connection ends: a last message without its newline."""
        rest, self._buffer = self._buffer.rstrip(b"\r"), b""
        return [(rest, False)] if rest else []

    @property
    def buffered(self) -> int:
        return len(self._buffer)


def datagram_message(data: bytes) -> bytes:
    """A UDP datagram is one message; a trailing newline (and CR) is not part of it."""
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    return data


# --- time ----------------------------------------------------------------------------------

_RFC5424_STAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


def _millis(dt: datetime) -> int:
    return int(dt.replace(microsecond=0).timestamp()) * 1000 + dt.microsecond // 1000


def _fraction_ms(digits: str | None) -> int:
    if not digits:
        return 0
    return int((digits + "00")[:3])


_SECONDS_CACHE: dict[tuple[str, str | None, tzinfo | None], int | None] = {}


def rfc5424_millis(stamp: str, zone: tzinfo | None) -> int | None:
    """Epoch millis of an RFC 5424 time stamp; no offset -> ``zone`` (None: local time)."""
    rest = stamp[19:]  # after YYYY-MM-DDTHH:MM:SS: an optional fraction, an optional offset
    fraction = ""
    if rest[:1] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction, rest = rest[1:end], rest[end:]
    key = (stamp[:19], rest, zone)  # messages of one second share the expensive part
    seconds = _SECONDS_CACHE.get(key, -1)
    if seconds == -1:
        m = _RFC5424_STAMP.fullmatch(stamp)
        seconds = None if m is None else _stamp_seconds(m, m.group(8), zone)
        _SECONDS_CACHE[key] = seconds
        if len(_SECONDS_CACHE) > 4096:
            _SECONDS_CACHE.clear()
    if seconds is None or (fraction and not fraction.isascii()):
        return None
    return seconds * 1000 + _fraction_ms(fraction)


def _stamp_seconds(m: re.Match[str], offset: str | None, zone: tzinfo | None) -> int | None:
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if offset == "Z":
        tz: tzinfo | None = UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    else:
        tz = zone
    try:
        dt = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    dt = dt.replace(tzinfo=tz) if tz is not None else dt.astimezone()
    return int(dt.timestamp())


def _add_months(dt: datetime, months: int) -> datetime:
    """Calendar month arithmetic with day clamping (Java's Calendar.add(MONTH, n))."""
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


_RFC3164_STAMP = re.compile(r"([A-Z][a-z][a-z]) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)


def rfc3164_millis(stamp: str, now_ms: int, zone: tzinfo | None) -> int | None:
    """Epoch millis of ``Mmm d HH:MM:SS``; the year is guessed as Flume does: the current
    year, unless that puts the time more than a month ahead (then last year) or more than
    eleven months behind (then next year)."""
    m = _RFC3164_STAMP.fullmatch(stamp)
    if m is None or m.group(1) not in _MONTHS:
        return None
    # wall-clock arithmetic in the zone (naive datetimes), converted once at the end
    now = datetime.fromtimestamp(now_ms / 1000, tz=zone).replace(tzinfo=None)
    month, day = _MONTHS[m.group(1)], int(m.group(2))
    hour, minute, second = int(m.group(3)), int(m.group(4)), int(m.group(5))
    for year in (now.year, now.year - 1, now.year + 1):
        try:
            guess: datetime | None = datetime(year, month, day, hour, minute, second)
        except ValueError:
            continue  # 29 Feb outside a leap year: try the neighbouring years
        assert guess is not None
        if guess > now and _add_months(guess, -1) > now:
            guess = _replace_year(guess, guess.year - 1)
        elif guess < now and _add_months(guess, 11) < now:
            guess = _replace_year(guess, guess.year + 1)
        if guess is not None:
            aware = guess.replace(tzinfo=zone) if zone is not None else guess.astimezone()
            return _millis(aware)
    return None


def _replace_year(dt: datetime, year: int) -> datetime | None:
    try:
        return dt.replace(year=year)
    except ValueError:
        return None


# --- SyslogUtils (syslogtcp, syslogudp) ------------------------------------------------------

# Flume's two patterns, with Java's ASCII \w and \d, on the bytes: the header fields are ASCII,
# and the body is kept byte for byte. The body may hold any byte.
_RFC5424 = re.compile(
    rb"<(\d{1,3})>(\d?)\s?"
    rb"(?:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)?)|-)"
    rb"\s(?:(\w[\w.@\-]*)|-)\s",
)
_RFC3164 = re.compile(
    rb"<(\d{1,3})>(\d)?\s?([A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2})"
    rb"\s(\w[\w.@-]*)\s",
)
_PRIORITY = re.compile(rb"<(\d{1,3})>")


@dataclass(frozen=True)
class SyslogOptions:
    keep: frozenset[str] | None = None
    zone: tzinfo | None = None  # for time stamps without an offset; None: local time


_PRI_HEADERS = {pri: (str(pri // 8), str(pri % 8)) for pri in range(1000)}


def parse_syslog(raw: bytes, incomplete: bool, now_ms: int,
                 options: SyslogOptions = SyslogOptions()) -> Event:
    """One message as Flume's SyslogUtils builds it."""
    match = _RFC5424.match(raw)
    rfc5424 = match is not None
    if match is None:
        match = _RFC3164.match(raw)
        if match is None:
            prio = _PRIORITY.match(raw)
            if prio is None:
                return Event({FACILITY: "0", SEVERITY: "0", STATUS: INVALID}, raw)
            facility, severity = _PRI_HEADERS[int(prio.group(1))]
            headers = {FACILITY: facility, SEVERITY: severity}
            if incomplete:
                headers[STATUS] = INCOMPLETE
            return Event(headers, raw)
    raw_priority, raw_version, raw_stamp, raw_host = match.group(1, 2, 3, 4)
    priority = raw_priority.decode()
    facility, severity = _PRI_HEADERS[int(priority)]
    headers = {FACILITY: facility, SEVERITY: severity, "priority": priority}
    version = raw_version.decode() if raw_version else None
    if version:
        headers["version"] = version
    stamp = None
    if raw_stamp is not None:
        stamp = raw_stamp.decode()
        millis = (rfc5424_millis(stamp, options.zone) if rfc5424
                  else rfc3164_millis(" ".join(stamp.split()), now_ms, options.zone))
        if millis is not None:
            headers["timestamp"] = str(millis)
    host = raw_host.decode() if raw_host else None
    if host:
        headers["host"] = host
    body = raw
    keep = options.keep
    if keep is None or KEEP_ALL not in keep:
        message = raw[match.end():]
        if keep:
            text = message.decode("utf-8", "surrogateescape")
            message = _add_fields_to_body(keep, text, priority, version, stamp,
                                          host).encode("utf-8", "surrogateescape")
        if message:
            body = message
    if incomplete:
        headers[STATUS] = INCOMPLETE
    return Event(headers, body)


# --- SyslogParser (multiport_syslogtcp) --------------------------------------------------------


class SyslogParseError(ValueError):
    """The message is not syslog; the caller makes it an ``Invalid`` event."""


def parse_multiport(msg: str, now_ms: int, keep: frozenset[str] | None) -> tuple[dict[str, str],
                                                                                 str]:
    """Headers and body text of one message as Flume's SyslogParser reads it."""
    if not msg.startswith("<"):
        raise SyslogParseError("invalid priority: no '<'")
    end = msg.find(">")
    if not 0 < end <= 6:
        raise SyslogParseError("invalid priority: no '>'")
    priority = msg[1:end]
    if not priority.isascii() or not priority.isdigit():
        raise SyslogParseError(f"invalid priority {priority!r}")
    pri = int(priority)
    headers = {"Priority": priority, FACILITY: str(pri // 8), SEVERITY: str(pri % 8)}
    size = len(msg)
    if size <= end + 1:
        raise SyslogParseError("no data after the priority")
    pos = end + 1
    version = None
    if size > pos + 2 and msg[pos:pos + 2] == "1 ":
        version = "1"
        headers["Version"] = version
        pos += 2
    first = msg[pos]
    if first == "-":
        stamp, millis = "-", now_ms
        if size <= pos + 2:
            raise SyslogParseError("missing hostname")
        pos += 2
    elif "A" <= first <= "Z":
        if size <= pos + 15:
            raise SyslogParseError("bad RFC 3164 time stamp")
        stamp = msg[pos:pos + 15]
        parsed = rfc3164_millis(stamp.replace("  ", " ", 1), now_ms, UTC)
        millis = 0 if parsed is None else parsed  # Flume's SyslogParser answers 0
        pos += 16
    else:
        space = msg.find(" ", pos)
        if space < 0:
            raise SyslogParseError("bad time stamp")
        stamp = msg[pos:space]
        millis = _multiport_5424(stamp)
        pos = space + 1
    headers["timestamp"] = str(millis)
    space = msg.find(" ", pos)
    if space < 0:
        raise SyslogParseError("missing hostname")
    host = msg[pos:space]
    headers["host"] = host
    if size > space + 1 and not (keep and KEEP_ALL in keep):
        body = _add_fields_to_body(keep, msg[space + 1:], priority, version, stamp, host)
    else:
        body = msg
    return headers, body


_MULTIPORT_PREFIX = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", re.ASCII)


_PREFIX_CACHE: dict[str, int] = {}


def _multiport_5424(stamp: str) -> int:
    """SyslogParser's RFC 5424 reading: UTC prefix, optional fraction, optional offset."""
    if len(stamp) <= 19:
        raise SyslogParseError(f"not an RFC 5424 time stamp: {stamp!r}")
    prefix = stamp[:19]
    seconds = _PREFIX_CACHE.get(prefix)  # Flume's SyslogParser caches these too
    if seconds is None:
        m = _MULTIPORT_PREFIX.fullmatch(prefix)
        if m is None:
            raise SyslogParseError(f"not an RFC 5424 time stamp: {stamp!r}")
        try:
            year, month, day, hour, minute, second = (int(g) for g in m.groups())
            dt = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise SyslogParseError(f"bad time stamp {stamp!r}: {exc}") from None
        seconds = _PREFIX_CACHE[prefix] = int(dt.timestamp())
        if len(_PREFIX_CACHE) > 4096:
            _PREFIX_CACHE.clear()
    millis = seconds * 1000
    pos = 19
    if stamp[pos] == ".":
        digits_end = pos + 1
        while digits_end < len(stamp) and stamp[digits_end].isdigit():
            digits_end += 1
        if digits_end == pos + 1:
            raise SyslogParseError(f"bad fraction in {stamp!r}")
        millis += _fraction_ms(stamp[pos + 1:digits_end])
        pos = digits_end
    if pos < len(stamp) and stamp[pos] in "+-":
        zone = stamp[pos + 1:pos + 6]
        if not re.fullmatch(r"\d{2}:\d{2}", zone, re.ASCII):
            raise SyslogParseError(f"bad time zone in {stamp!r}")
        sign = 1 if stamp[pos] == "+" else -1
        millis -= sign * (int(zone[:2]) * 60 + int(zone[3:])) * 60_000
    return millis


def multiport_event(raw: bytes, incomplete: bool, now_ms: int, keep: frozenset[str] | None,
                    charset: str = "utf-8") -> tuple[Event, bool]:
    """One multiport message as an event, and whether it failed to parse (EventReadFail)."""
    try:
        msg = raw.decode(charset)
    except UnicodeDecodeError:
        return Event({STATUS: INVALID}, raw), True
    try:
        headers, body = parse_multiport(msg, now_ms, keep)
    except SyslogParseError:
        return Event({STATUS: INVALID}, raw), True
    if incomplete:
        headers[STATUS] = INCOMPLETE
    return Event(headers, body.encode(charset, "surrogateescape")), False
