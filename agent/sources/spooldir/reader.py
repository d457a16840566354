"""Reading one spool file, a batch per call: blocking, meant for ``asyncio.to_thread``.

A ``FileReader`` owns the open descriptor and the (pure) deserializer. ``read_batch`` reads
blocks until it holds ``n`` bodies or the file ends; ``mark`` is the offset just after the
last body handed out, which the source commits to the position file once the channel has
accepted those bodies. ``finished`` says the file has nothing more to give, so the source can
retire it right after delivering its last batch instead of reading once more to find out.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from agent.sources.spooldir.deserializers import BlobDeserializer, DecodeFailure, LineDeserializer
from agent.sources.spooldir.reasons import Delivered, FileFailure, Kind
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
        opened_at: float | None = None,
    ) -> None:
        self.rel_path = rel_path
        self.abs_path = abs_path
        self.identity = identity
        self.headers = headers
        self.start = start
        self.mark = start  # file offset after the last body handed out
        self.tracked = False  # the position file holds this file (see SpoolDirectory.track)
        self.opened_at = opened_at  # wall-clock time reading began, for the reason texts
        self.delivered_to = start  # bytes [0, delivered_to) reached the channel
        self.events_delivered = 0  # by this run
        self._handle = handle
        self._des = deserializer
        self._input_charset = input_charset
        self._block_size = block_size
        self._first_read = True
        self._lines_taken = 0
        self._offset = start  # bytes of the file read so far
        self._cut_reported = False

    @classmethod
    def open(
        cls,
        spool_dir: str,
        rel_path: str,
        offset: int,
        settings: SpoolDirSettings,
        headers: dict[str, str],
        block_size: int = BLOCK_SIZE,
        opened_at: float | None = None,
    ) -> FileReader:
        """Open ``rel_path`` at ``offset`` (bytes delivered before a restart).
        FileNotFoundError if it vanished; FileFailure if it cannot be opened or is shorter
        than ``offset``."""
        abs_path = os.path.join(spool_dir, rel_path)
        before = Delivered(end=offset, resumed_at=offset)
        try:
            handle: BinaryIO = open(abs_path, "rb", buffering=0)  # noqa: SIM115 (kept open)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileFailure(rel_path, f"it cannot be opened ({exc})", "EventReadFail",
                              delivered=before) from exc
        try:
            st = os.fstat(handle.fileno())
            if offset > st.st_size:
                raise FileFailure(
                    rel_path, f"it was truncated to {st.st_size:,} bytes, below the "
                    f"{offset:,} bytes already delivered before a restart",
                    kind=Kind.CHANGED, delivered=before, size_now=st.st_size)
            if offset:
                handle.seek(offset)
        except BaseException:
            handle.close()
            raise
        return cls(rel_path, abs_path, handle, FileIdentity.of(rel_path, st),
                   make_deserializer(settings, offset), headers, start=offset,
                   input_charset=settings.input_charset, block_size=block_size,
                   opened_at=opened_at)

    def read_batch(self, n: int) -> list[bytes]:
        """Up to ``n`` bodies; [] once the file is exhausted. FileFailure on a read error or
        undecodable input (after the bodies before it were handed out)."""
        des = self._des
        size = self.identity.size
        try:
            # read until n bodies wait; past the size seen at open, read on to see the end,
            # so the last batch is known as the last (the file is then retired at once)
            while not des.input_ended and not des.exhausted and (
                des.ready() < n or self._offset >= size
            ):
                data = self._handle.read(self._block_size)
                if data:
                    self._offset += len(data)
                    des.feed(data)
                else:
                    des.end_input()
            bodies = des.take(n)
        except DecodeFailure as exc:
            raise FileFailure(
                self.rel_path,
                f"{exc} (line {self._lines_taken + 1} counting from offset {self.start}, "
                f"decodeErrorPolicy=FAIL, inputCharset={self._input_charset})",
                "EventReadFail", kind=Kind.UNDECODABLE, delivered=self.delivered(),
                size_now=self.identity.size,
            ) from exc
        except OSError as exc:
            raise FileFailure(self.rel_path, f"reading it failed ({exc})", "EventReadFail",
                              delivered=self.delivered(), size_now=self.identity.size) from exc
        if self._first_read:
            self._first_read = False
            if not bodies and self.start == 0:
                bodies = [b""]  # Flume: an empty file still yields one (empty) event
        self._lines_taken += len(bodies)
        self.mark = des.mark
        return bodies

    def new_cut(self) -> int | None:
        """The offset of the file's first over-long line, once, when it was just read."""
        cut = self._des.first_cut
        if cut is None or self._cut_reported:
            return None
        self._cut_reported = True
        return cut

    def commit(self, events: int) -> None:
        """The bodies handed out so far (``events`` of them since the last commit) reached
        the channel."""
        self.delivered_to = self.mark
        self.events_delivered += events

    def delivered(self, *, whole: bool = False) -> Delivered:
        return Delivered(self.delivered_to, self.events_delivered, self.start, whole)

    def buffered(self, n: int) -> bool:
        """``read_batch(n)`` needs no I/O: n bodies wait decoded, or the input has ended."""
        des = self._des
        return des.input_ended or (des.ready() >= n and self._offset < self.identity.size)

    @property
    def finished(self) -> bool:
        """Every body was handed out: the file can be retired once they are delivered."""
        return self._des.finished

    def close(self) -> None:
        self._handle.close()
