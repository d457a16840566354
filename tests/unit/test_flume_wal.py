"""The push receiver's write-ahead log: durability, replay after ack, torn tails, trimming."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from consumer.flume.wal import WriteAheadLog


def _batch(i: int) -> list[tuple[dict[str, str], bytes]]:
    return [({"seq": str(i)}, f"line {i}".encode())]


def test_replays_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    async def write() -> list[int]:
        wal = WriteAheadLog(tmp_path)
        assert wal.open() == []
        ends = [await wal.append(_batch(i)) for i in range(5)]
        wal.close()
        return ends

    ends = asyncio.run(write())
    assert ends == sorted(ends) and len(set(ends)) == 5
    wal = WriteAheadLog(tmp_path)
    replay = wal.open(acked=ends[1])
    assert [r for _, r in replay] == [_batch(i) for i in (2, 3, 4)]
    assert [e for e, _ in replay] == ends[2:]
    wal.close()


def test_concurrent_appends_share_fsyncs_and_keep_order(tmp_path: Path) -> None:
    async def main() -> list[int]:
        wal = WriteAheadLog(tmp_path)
        wal.open()
        ends = await asyncio.gather(*(wal.append(_batch(i)) for i in range(50)))
        wal.close()
        return list(ends)

    ends = asyncio.run(main())
    assert ends == sorted(ends)
    replay = WriteAheadLog(tmp_path).open()
    assert [r for _, r in replay] == [_batch(i) for i in range(50)]


def test_torn_tail_is_cut_and_later_appends_continue(tmp_path: Path) -> None:
    async def write(wal: WriteAheadLog, items: range) -> None:
        for i in items:
            await wal.append(_batch(i))

    wal = WriteAheadLog(tmp_path)
    wal.open()
    asyncio.run(write(wal, range(3)))
    wal.close()
    [segment] = list(tmp_path.glob("wal-*.log"))
    data = segment.read_bytes()
    segment.write_bytes(data + b"\x00\x00\x01\x00garbage")  # a crash mid-append
    wal = WriteAheadLog(tmp_path)
    assert [r for _, r in wal.open()] == [_batch(i) for i in range(3)]
    asyncio.run(write(wal, range(3, 5)))
    wal.close()
    assert [r for _, r in WriteAheadLog(tmp_path).open()] == [_batch(i) for i in range(5)]


def test_acknowledged_segments_are_deleted_when_the_log_rolls(tmp_path: Path) -> None:
    async def main() -> None:
        wal = WriteAheadLog(tmp_path, segment_bytes=64)
        wal.open()
        ends = [await wal.append(_batch(i)) for i in range(10)]
        wal.acknowledge(ends[7])
        await wal.append(_batch(10))
        await wal.append(_batch(11))
        wal.close()
        replay = WriteAheadLog(tmp_path, segment_bytes=64).open(acked=ends[7])
        assert [r for _, r in replay] == [_batch(i) for i in (8, 9, 10, 11)]

    asyncio.run(main())
    assert len(list(tmp_path.glob("wal-*.log"))) < 10


def test_a_failed_append_is_cut_back_so_later_entries_survive(tmp_path: Path) -> None:
    """Found in review: a half-written entry used to hide every later entry on replay."""

    class FailOnce:
        def __init__(self, real: Any) -> None:
            self.real, self.failed = real, False

        def write(self, data: bytes) -> int:
            if not self.failed and len(data) > 8:
                self.failed = True
                self.real.write(data[: len(data) // 2])
                raise OSError(28, "No space left on device")
            return int(self.real.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    async def main() -> list[str]:
        wal = WriteAheadLog(tmp_path)
        wal.open()
        outcome = [str(await wal.append(_batch(1)) > 0)]
        wal._file = FailOnce(wal._file)
        try:
            await wal.append(_batch(2))
        except OSError:
            outcome.append("FAILED")
        outcome.append(str(await wal.append(_batch(3)) > 0))
        wal.close()
        return outcome

    assert asyncio.run(main()) == ["True", "FAILED", "True"]
    replay = WriteAheadLog(tmp_path).open()
    assert [r for _, r in replay] == [_batch(1), _batch(3)]


def test_a_fresh_open_skips_everything_and_reports_what_no_run_acknowledged(
        tmp_path: Path) -> None:
    async def write() -> list[int]:
        wal = WriteAheadLog(tmp_path)
        wal.open()
        ends = [await wal.append(_batch(i)) for i in range(4)]
        wal.acknowledge(ends[1])
        wal.close()
        return ends

    ends = asyncio.run(write())
    fresh = WriteAheadLog(tmp_path)
    assert [r for _, r in fresh.open_fresh()] == [_batch(2), _batch(3)]
    assert fresh.acked == ends[3]
    fresh.close()
    assert WriteAheadLog(tmp_path).open_fresh() == []  # reported once
    assert WriteAheadLog(tmp_path).open(acked=ends[3]) == []
