"""The hdfs sink's settings, pure: Flume's ``hdfs.*`` keys checked and turned into one value.

Every combination Flume refuses at configure time is refused here, with the key at fault
named (a codec with DataStream, none with CompressedStream, an unknown time zone, a rounding
out of range), so ``--validate`` catches what the sink would refuse at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.sinks.hdfs_bucket import RollPolicy
from agent.sinks.hdfs_format import Codec, SequenceFileEncoder, codec, serializer
from agent.sinks.hdfs_path import BucketTemplate, Rounding

FILE_TYPES = {"sequencefile": "SequenceFile", "datastream": "DataStream",
              "compressedstream": "CompressedStream"}


@dataclass(frozen=True)
class HdfsSettings:
    path: str
    file_prefix: str = "FlumeData"
    file_suffix: str = ""
    in_use_prefix: str = ""
    in_use_suffix: str = ".tmp"
    roll: RollPolicy = field(default_factory=RollPolicy)
    batch_size: int = 100
    file_type: str = "SequenceFile"
    codec: Codec | None = None
    write_format: str = "Writable"
    serializer: str = "TEXT"
    append_newline: bool = True
    max_open_files: int = 5000
    call_timeout: float = 30.0  # seconds
    retry_interval: float = 180.0  # seconds between rename attempts
    close_tries: int = 0  # 0: until it works
    zone: Any = None  # tzinfo or None (local time)
    rounding: Rounding | None = None
    use_local_time: bool = False
    journal: str = ""


def settings_from(name: str, s: Mapping[str, Any]) -> HdfsSettings:
    """Flume's keys -> settings; raises ValueError naming the key at fault."""
    path = str(s.get("hdfs.path") or "")
    if not path:
        raise ValueError("hdfs.path is required")
    file_type = FILE_TYPES.get(str(s.get("hdfs.fileType") or "SequenceFile").lower())
    if file_type is None:
        raise ValueError(f"hdfs.fileType must be SequenceFile, DataStream or CompressedStream, "
                         f"not {s.get('hdfs.fileType')!r}")
    codec_name = s.get("hdfs.codeC")
    chosen = codec(str(codec_name)) if codec_name else None
    if file_type == "DataStream" and chosen is not None:
        raise ValueError("hdfs.fileType DataStream does not compress; remove hdfs.codeC or use "
                         "CompressedStream")
    if file_type == "CompressedStream" and chosen is None:
        raise ValueError("hdfs.fileType CompressedStream needs hdfs.codeC (gzip, bzip2, ...)")
    if file_type == "SequenceFile" and chosen is not None:
        raise ValueError("compressed SequenceFiles are not supported; use CompressedStream "
                         "with hdfs.codeC, or drop hdfs.codeC")
    zone_name = s.get("hdfs.timeZone")
    try:
        zone = ZoneInfo(str(zone_name)) if zone_name else None
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"hdfs.timeZone: unknown time zone {zone_name!r}") from None
    unit, value = str(s.get("hdfs.roundUnit") or "second").lower(), s.get("hdfs.roundValue", 1)
    rounding = Rounding(unit, int(value)) if _flag(s.get("hdfs.round", False)) else None
    in_use_suffix = str(s.get("hdfs.inUseSuffix", ".tmp") or "")
    if _flag(s.get("hdfs.emptyInUseSuffix", False)):
        in_use_suffix = ""
    batch_size = int(s.get("hdfs.batchSize", 100))
    if batch_size <= 0:
        raise ValueError("hdfs.batchSize must be greater than 0")
    journal = str(s.get("hdfs.inUseJournal") or f"~/.flume/hdfs-inuse-{name}.json")
    for key in ("hdfs.path", "hdfs.filePrefix"):  # unknown %[...] names fail here, not later
        try:
            BucketTemplate(str(s.get(key) or ""))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    serializer(str(s.get("serializer") or "TEXT"))  # an unsupported serializer fails here
    if file_type == "SequenceFile":
        SequenceFileEncoder(str(s.get("hdfs.writeFormat") or "Writable"))
    return HdfsSettings(
        path=path, file_prefix=str(s.get("hdfs.filePrefix", "FlumeData")),
        file_suffix=str(s.get("hdfs.fileSuffix") or ""),
        in_use_prefix=str(s.get("hdfs.inUsePrefix") or ""), in_use_suffix=in_use_suffix,
        roll=RollPolicy(float(s.get("hdfs.rollInterval", 30)), int(s.get("hdfs.rollSize", 1024)),
                        int(s.get("hdfs.rollCount", 10)), float(s.get("hdfs.idleTimeout", 0))),
        batch_size=batch_size, file_type=file_type, codec=chosen,
        write_format=str(s.get("hdfs.writeFormat") or "Writable"),
        serializer=str(s.get("serializer") or "TEXT"),
        append_newline=_flag(s.get("serializer.appendNewline", True)),
        max_open_files=max(int(s.get("hdfs.maxOpenFiles", 5000)), 1),
        call_timeout=int(s.get("hdfs.callTimeout", 30000)) / 1000,
        retry_interval=float(s.get("hdfs.retryInterval", 180)),
        close_tries=int(s.get("hdfs.closeTries", 0)),
        zone=zone, rounding=rounding, use_local_time=_flag(s.get("hdfs.useLocalTimeStamp", False)),
        journal=os.path.expanduser(journal))


def _flag(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"
