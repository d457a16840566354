"""Reading one spool file, a batch per call: blocking, meant for ``asyncio.to_thread``.

A ``FileReader`` owns the open descriptor and the (pure) deserializer. ``read_batch`` reads
blocks until it holds ``n`` bodies or the file ends; ``mark`` is the offset just after the
last body handed out, which the source commits to the position file once the channel has
accepted those bodies.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from agent.sources.spooldir.decisions import FileFailure
from agent.sources.spooldir.deserializers import BlobDeserializer, DecodeFailure, LineDeserializer
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.tracker import FileIdentity

BLOCK_SIZE = 1 << 20


def make_deserializer(s: SpoolDirSettings, start: int) -> LineDeserializer | BlobDeserializer:
    if s.deserializer == "BLOB":
        return BlobDeserializer(max_blob_length=s.max_blob_length, start=start)
    return LineDeserializer(
        max_line_length=s.max_line_length, input_charset=s.input_charset,
        output_charset=s.output_charset, errors=s.errors, start=start,
    )


class FileReader:
    """The file being read: descriptor, deserializer and the identity captured at open."""

    def __init__(
        self,
        rel_path: str,
        abs_path: str,
        handle: BinaryIO,
        identity: FileIdentity,
        deserializer: LineDeserializer | BlobDeserializer,
        headers: dict[str, str],
        *,
        start: int,
        input_charset: str,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.rel_path = rel_path
        self.abs_path = abs_path
        self.identity = identity
        self.headers = headers
        self.start = start
        self.mark = start  # file offset after the last body handed out
        self._handle = handle
        self._des = deserializer
        self._input_charset = input_charset
        self._block_size = block_size
        self._first_read = True
        self._lines_taken = 0

    @classmethod
    def open(
        cls,
        spool_dir: str,
        rel_path: str,
        offset: int,
        settings: SpoolDirSettings,
        headers: dict[str, str],
        block_size: int = BLOCK_SIZE,
    ) -> FileReader:
        """Open ``rel_path`` at ``offset``. FileNotFoundError if it vanished; FileFailure if
        it cannot be opened or is shorter than ``offset``."""
        abs_path = os.path.join(spool_dir, rel_path)
        try:
            handle: BinaryIO = open(abs_path, "rb", buffering=0)  # noqa: SIM115 (kept open)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileFailure(rel_path, f"cannot open: {exc}", "EventReadFail") from exc
        try:
            st = os.fstat(handle.fileno())
            if offset > st.st_size:
                raise FileFailure(rel_path,
                                  f"file shrank to {st.st_size} bytes below the committed offset "
                                  f"{offset} (truncated after reading began)")
            if offset:
                handle.seek(offset)
        except BaseException:
            handle.close()
            raise
        return cls(rel_path, abs_path, handle, FileIdentity.of(rel_path, st),
                   make_deserializer(settings, offset), headers, start=offset,
                   input_charset=settings.input_charset, block_size=block_size)

    def read_batch(self, n: int) -> list[bytes]:
        """Up to ``n`` bodies; [] once the file is exhausted. FileFailure on a read error or
        undecodable input (after the bodies before it were handed out)."""
        des = self._des
        try:
            while des.ready() < n and not des.input_ended and not des.exhausted:
                data = self._handle.read(self._block_size)
                if data:
                    des.feed(data)
                else:
                    des.end_input()
            bodies = des.take(n)
        except DecodeFailure as exc:
            raise FileFailure(
                self.rel_path,
                f"{exc} (line {self._lines_taken + 1} counting from offset {self.start}, "
                f"decodeErrorPolicy=FAIL, inputCharset={self._input_charset})",
                "EventReadFail",
            ) from exc
        except OSError as exc:
            raise FileFailure(self.rel_path, f"read failed: {exc}", "EventReadFail") from exc
        if self._first_read:
            self._first_read = False
            if not bodies and self.start == 0:
                bodies = [b""]  # Flume: an empty file still yields one (empty) event
        self._lines_taken += len(bodies)
        self.mark = des.mark
        return bodies

    def close(self) -> None:
        self._handle.close()
