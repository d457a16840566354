"""The spooldir source's declaration (``SCHEMA``: Flume's keys, defaults and rules) and the
typed view the source runs on (``SpoolDirSettings``), built from validated settings only.

Validation (the config layer) is the only place that checks a value; ``from_settings`` just
reshapes what it produced (milliseconds to seconds, patterns compiled, codec names
normalised), so ``--validate`` and start cannot disagree.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.build import settings_from
from agent.config.converters import charset, choice, integer, regex, to_bool
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext, Schema

_PKG = "org.apache.flume"
_ERRORS = {"FAIL": "strict", "REPLACE": "replace", "IGNORE": "ignore"}
# Codecs in which the byte 0x0A can be something other than a whole "\n" character.
_NOT_LINE_SAFE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7"}


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    problems: list[Problem] = []
    line = settings["deserializer"] == "LINE"
    if line and codecs.lookup(settings["inputCharset"]).name in _NOT_LINE_SAFE:
        problems.append(
            Problem(
                IssueCode.BAD_VALUE,
                f"inputCharset {settings['inputCharset']!r} is not supported by the LINE "
                "deserializer (only charsets where byte 0x0A is always a newline, e.g. UTF-8, "
                "ISO-8859-*)",
                "inputCharset",
            )
        )
    # The deprecated key wins only when given explicitly and the LINE deserializer is used.
    if "bufferMaxLineLength" in ctx.present and line:
        settings["deserializer.maxLineLength"] = settings["bufferMaxLineLength"]
        problems.append(
            Problem(
                IssueCode.BAD_KEY,
                "bufferMaxLineLength is deprecated; it overrides deserializer.maxLineLength",
                "bufferMaxLineLength",
                warning=True,
            )
        )
    return problems


SCHEMA = Schema(
    keys=(
        Key("spoolDir", required=True),
        Key("fileSuffix", default=".COMPLETED"),
        Key("deletePolicy", choice("never", "immediate"), "never"),
        Key("fileHeader", to_bool, False),
        Key("fileHeaderKey", default="file"),
        Key("basenameHeader", to_bool, False),
        Key("basenameHeaderKey", default="basename"),
        Key("includePattern", regex, "^.*$"),
        Key("ignorePattern", regex, "^$"),
        Key("trackerDir", default=".flumespool"),
        Key("trackingPolicy", choice("rename", "tracker_dir"), "rename"),
        Key("consumeOrder", choice("oldest", "youngest", "random"), "oldest"),
        Key("pollDelay", integer(0), 500),
        Key("recursiveDirectorySearch", to_bool, False),
        Key("maxBackoff", integer(1), 4000),
        Key("batchSize", integer(1), 100),
        Key("inputCharset", charset, "UTF-8"),
        Key("decodeErrorPolicy", choice("FAIL", "REPLACE", "IGNORE", upper=True), "FAIL"),
        Key(
            "deserializer",
            choice(
                "LINE",
                "BLOB",
                upper=True,
                aliases={
                    f"{_PKG}.serialization.LineDeserializer$Builder": "LINE",
                    f"{_PKG}.sink.solr.morphline.BlobDeserializer$Builder": "BLOB",
                },
                unavailable=("AVRO", f"{_PKG}.serialization.AvroEventDeserializer$Builder"),
            ),
            "LINE",
        ),
        Key("deserializer.maxLineLength", integer(1), 2048),
        Key("deserializer.outputCharset", charset, "UTF-8"),
        Key("deserializer.maxBlobLength", integer(1), 100_000_000),
        Key(
            "bufferMaxLineLength",
            integer(1),
            None,
            ignored="deprecated: validation folds it into deserializer.maxLineLength",
        ),
        Key("bufferMaxLines", integer(), None, ignored="deprecated and unused, as in Flume"),
        Key("followSymlinks", to_bool, True),  # flumelet's (Flume always follows)
    ),
    rules=_rules,
    batch_key="batchSize",
)


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
    def from_settings(cls, s: Mapping[str, Any]) -> SpoolDirSettings:
        """The typed view of settings validated against ``SCHEMA``."""
        never_delete = s["deletePolicy"] == "never"
        file_key, basename_key = s["fileHeaderKey"], s["basenameHeaderKey"]
        return cls(
            spool_dir=s["spoolDir"],
            file_suffix=s["fileSuffix"],
            delete_immediately=not never_delete,
            file_header_key=file_key if s["fileHeader"] else None,
            basename_header_key=basename_key if s["basenameHeader"] else None,
            include=re.compile(s["includePattern"]),
            ignore=re.compile(s["ignorePattern"]),
            tracker_dir=s["trackerDir"],
            tracker_dir_policy=s["trackingPolicy"] == "tracker_dir" and never_delete,
            consume_order=s["consumeOrder"],
            poll_delay=s["pollDelay"] / 1000.0,
            recursive=s["recursiveDirectorySearch"],
            max_backoff=s["maxBackoff"] / 1000.0,
            batch_size=s["batchSize"],
            input_charset=codecs.lookup(s["inputCharset"]).name,
            errors=_ERRORS[s["decodeErrorPolicy"]],
            deserializer=s["deserializer"],
            max_line_length=s["deserializer.maxLineLength"],
            output_charset=codecs.lookup(s["deserializer.outputCharset"]).name,
            max_blob_length=s["deserializer.maxBlobLength"],
            follow_symlinks=s["followSymlinks"],
        )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> SpoolDirSettings:
        """From plain keys (``{"spoolDir": "/x", "batchSize": 5}``), validated exactly as a
        configuration file's are; ValueError names every problem."""
        return cls.from_settings(settings_from("source", "spooldir", raw))
