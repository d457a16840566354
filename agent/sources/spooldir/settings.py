"""Typed spooldir settings read from Flume's own property keys.

The config layer normally applies defaults and converts values; this module applies them
again (cheaply) so the source also works when built from a bare mapping in tests, and it
checks the cross-field rules Flume checks in ``configure()``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULTS: dict[str, Any] = {
    "fileSuffix": ".COMPLETED",
    "deletePolicy": "never",
    "fileHeader": False,
    "fileHeaderKey": "file",
    "basenameHeader": False,
    "basenameHeaderKey": "basename",
    "includePattern": "^.*$",
    "ignorePattern": "^$",
    "trackerDir": ".flumespool",
    "trackingPolicy": "rename",
    "consumeOrder": "oldest",
    "pollDelay": 500,
    "recursiveDirectorySearch": False,
    "followSymlinks": True,
    "maxBackoff": 4000,
    "batchSize": 100,
    "inputCharset": "UTF-8",
    "decodeErrorPolicy": "FAIL",
    "deserializer": "LINE",
    "deserializer.maxLineLength": 2048,
    "deserializer.outputCharset": "UTF-8",
    "deserializer.maxBlobLength": 100_000_000,
    "bufferMaxLineLength": None,
}

_LINE_NAMES = {"line", "org.apache.flume.serialization.linedeserializer$builder"}
_BLOB_NAMES = {"blob", "org.apache.flume.sink.solr.morphline.blobdeserializer$builder"}
_ERRORS = {"FAIL": "strict", "REPLACE": "replace", "IGNORE": "ignore"}
# Codecs in which the byte 0x0A can be something other than a whole "\n" character.
_NOT_LINE_SAFE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7"}


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _int(key: str, value: Any, minimum: int) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"{key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {number}")
    return number


def _codec(key: str, name: Any) -> str:
    try:
        return codecs.lookup(str(name)).name
    except LookupError:
        raise ValueError(f"{key}: unknown charset {name!r}") from None


def _pattern(key: str, text: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(text))
    except re.error as exc:
        raise ValueError(f"{key}: invalid regular expression {text!r}: {exc}") from None


@dataclass(frozen=True)
class SpoolDirSettings:
    spool_dir: str
    file_suffix: str
    delete_immediately: bool
    file_header_key: str | None  # None: no header
    basename_header_key: str | None
    include: re.Pattern[str]
    ignore: re.Pattern[str]
    tracker_dir: str  # as configured; relative means inside spool_dir
    tracker_dir_policy: bool  # trackingPolicy=tracker_dir (only with deletePolicy=never)
    consume_order: str  # oldest | youngest | random
    poll_delay: float  # seconds
    recursive: bool
    max_backoff: float  # seconds
    batch_size: int
    input_charset: str  # Python codec name
    errors: str  # strict | replace | ignore
    deserializer: str  # LINE | BLOB
    max_line_length: int
    output_charset: str
    max_blob_length: int
    follow_symlinks: bool = True  # flumelet's followSymlinks: read files through links

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SpoolDirSettings:
        """Raise ValueError naming the offending key for anything Flume would reject."""
        s = dict(DEFAULTS)
        s.update({k: v for k, v in raw.items() if v is not None or k == "bufferMaxLineLength"})
        spool_dir = s.get("spoolDir")
        if not spool_dir or not str(spool_dir).strip():
            raise ValueError("spoolDir is required")
        delete_policy = str(s["deletePolicy"]).strip().lower()
        if delete_policy not in ("never", "immediate"):
            raise ValueError(f"deletePolicy must be never or immediate, got {s['deletePolicy']!r}")
        tracking = str(s["trackingPolicy"]).strip().lower()
        if tracking not in ("rename", "tracker_dir"):
            raise ValueError(
                f"trackingPolicy must be rename or tracker_dir, got {s['trackingPolicy']!r}"
            )
        order = str(s["consumeOrder"]).strip().lower()
        if order not in ("oldest", "youngest", "random"):
            raise ValueError(
                f"consumeOrder must be oldest, youngest or random, got {s['consumeOrder']!r}"
            )
        policy = str(s["decodeErrorPolicy"]).strip().upper()
        if policy not in _ERRORS:
            raise ValueError(
                f"decodeErrorPolicy must be FAIL, REPLACE or IGNORE, got {s['decodeErrorPolicy']!r}"
            )
        kind = str(s["deserializer"]).strip().lower()
        if kind in _LINE_NAMES:
            deserializer = "LINE"
        elif kind in _BLOB_NAMES:
            deserializer = "BLOB"
        else:
            raise ValueError(
                f"deserializer {s['deserializer']!r} is not supported (LINE or BLOB)"
            )
        input_charset = _codec("inputCharset", s["inputCharset"])
        if deserializer == "LINE" and input_charset in _NOT_LINE_SAFE:
            raise ValueError(
                f"inputCharset {s['inputCharset']!r} is not supported by the LINE deserializer "
                "(only charsets where byte 0x0A is always a newline, e.g. UTF-8, ISO-8859-*)"
            )
        max_line = _int("deserializer.maxLineLength", s["deserializer.maxLineLength"], 1)
        if s.get("bufferMaxLineLength") is not None and deserializer == "LINE":
            max_line = _int("bufferMaxLineLength", s["bufferMaxLineLength"], 1)
        suffix = str(s["fileSuffix"])
        if not suffix:
            raise ValueError("fileSuffix must not be empty")
        tracker_dir = str(s["trackerDir"])
        if not tracker_dir.strip():
            raise ValueError("trackerDir must not be empty")
        return cls(
            spool_dir=str(spool_dir),
            file_suffix=suffix,
            delete_immediately=delete_policy == "immediate",
            file_header_key=str(s["fileHeaderKey"]) if _bool("fileHeader", s["fileHeader"])
            else None,
            basename_header_key=str(s["basenameHeaderKey"])
            if _bool("basenameHeader", s["basenameHeader"]) else None,
            include=_pattern("includePattern", s["includePattern"]),
            ignore=_pattern("ignorePattern", s["ignorePattern"]),
            tracker_dir=tracker_dir,
            tracker_dir_policy=tracking == "tracker_dir" and delete_policy == "never",
            consume_order=order,
            poll_delay=_int("pollDelay", s["pollDelay"], 0) / 1000.0,
            recursive=_bool("recursiveDirectorySearch", s["recursiveDirectorySearch"]),
            max_backoff=_int("maxBackoff", s["maxBackoff"], 1) / 1000.0,
            batch_size=_int("batchSize", s["batchSize"], 1),
            input_charset=input_charset,
            errors=_ERRORS[policy],
            deserializer=deserializer,
            max_line_length=max_line,
            output_charset=_codec("deserializer.outputCharset", s["deserializer.outputCharset"]),
            max_blob_length=_int("deserializer.maxBlobLength", s["deserializer.maxBlobLength"], 1),
            follow_symlinks=_bool("followSymlinks", s["followSymlinks"]),
        )
