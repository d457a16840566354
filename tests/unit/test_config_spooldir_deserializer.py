"""spooldir's deserializer keys: LINE and BLOB (by alias or class name), AVRO refused."""

from __future__ import annotations

import pytest

from agent.config.loader import load_text

BASE = """a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = /tmp/spool
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


@pytest.mark.parametrize("value", ["BLOB", "blob",
                                   "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder"])
def test_blob_deserializer_is_accepted_with_its_length(value: str) -> None:
    text = BASE + f"a1.sources.r1.deserializer = {value}\n" \
                  "a1.sources.r1.deserializer.maxBlobLength = 1000\n"
    result = load_text(text, "a1")
    assert result.config is not None, [str(i) for i in result.issues]
    settings = result.config.sources["r1"].settings
    assert settings["deserializer"] == "BLOB"
    assert settings["deserializer.maxBlobLength"] == 1000


def test_avro_deserializer_is_refused_at_its_line() -> None:
    result = load_text(BASE + "a1.sources.r1.deserializer = AVRO\n", "a1")
    assert result.config is None  # Flume would run it: refuse rather than drop the source
    [issue] = result.errors
    assert (issue.code, issue.line) == ("UNAVAILABLE", 10)
