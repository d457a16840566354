"""EventChunk bodies handed over as one buffer plus offsets (consumer.jobs.chunks): the string
column is exactly what the push receiver's default decoder makes of each body, malformed
UTF-8 included, and batches of such chunks give the same bodies and records as lists do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumer.flume.receivers import utf8_decoder
from consumer.jobs.chunks import (
    EventChunk,
    chunk_columns,
    chunk_records,
    pack_bodies,
    text_column,
)

# bytes that are often UTF-8 and often nearly so (surrogates, overlong forms, cut sequences)
_pieces = st.sampled_from([b"a", b"\n", b"\x00", "é".encode(), "€".encode(), "😀".encode(),
                           b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\xff", b"\x80",
                           b"\xf4\x90\x80\x80", b"\xef\xbf\xbd"])
_bodies = st.lists(st.one_of(st.binary(max_size=12),
                             st.lists(_pieces, max_size=6).map(b"".join)), max_size=20)


@given(_bodies)
def test_the_column_holds_what_utf8_decoder_makes_of_each_body(bodies: list[bytes]) -> None:
    column = text_column(*pack_bodies(bodies))
    assert column.to_list() == [utf8_decoder(b) for b in bodies]


@given(st.lists(_bodies, min_size=1, max_size=4))
def test_chunks_of_columns_read_as_chunks_of_lists(calls: list[list[bytes]]) -> None:
    texts = [[utf8_decoder(b) for b in bodies] for bodies in calls]
    packed = [EventChunk(text_column(*pack_bodies(bodies)), {"h": [None] * len(bodies)})
              for bodies in calls]
    listed = [EventChunk(t, {"h": [None] * len(t)}) for t in texts]
    bodies, headers = chunk_columns(packed, ["h"])
    assert list(bodies) == [b for t in texts for b in t]
    assert headers["h"].to_list() == [None] * len(bodies)
    assert chunk_records(packed) == chunk_records(listed)
