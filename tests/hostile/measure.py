"""Run the network attacks against the processes of a source tree and print what each cost.

    python -m tests.hostile.measure [--root DIR] [--only NAME ...]

``--root`` is the tree whose ``flume-agent``/``flume-consumer`` are attacked (default: this
one), so the same attacks measure a tree before a change and after it. Each row: the
target's RSS peak growth during the attack, and the well-behaved client's rate during it
against its rate just before.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.hostile import attacks
from tests.hostile.net_targets import (
    ROOT,
    AgentPorts,
    GoodSender,
    Outcome,
    Target,
    attack,
    avro_agent,
    free_port,
    push_consumer,
    running,
)

MiB = 2**20

Attack = Callable[[int, int], object]  # (port, deflate port)

ATTACKS: dict[str, Attack] = {
    "2: 8 MiB frame of empty events": lambda p, d: attacks.tiny_events_frame(p),
    "2: the same, deflated (8 KB)": lambda p, d: attacks.deflate_bomb(d),
    "3: 16 unfinished 63 MiB frames": lambda p, d: attacks.unfinished_frames(p),
    "3: the same, deflated (63 KB each)": lambda p, d: attacks.unfinished_frames(d,
                                                                                 deflate=True),
    "4: 500 handshakes, new 60 KB protocols": lambda p, d: attacks.new_protocols(p),
    "5: pipelining, never reading replies (3 s)": lambda p, d: attacks.pipelining_never_reading(p),
}


def run(root: Path, only: list[str]) -> list[tuple[str, Outcome]]:
    rows: list[tuple[str, Outcome]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ports = AgentPorts()
        agent = avro_agent(tmp, ports, root)
        push, push_deflate = free_port(), free_port()
        consumer = push_consumer(tmp, push, tmp / "out.jsonl", root)
        consumer_d = push_consumer(tmp, push_deflate, tmp / "out-d.jsonl", root, deflate=True)
        targets: list[tuple[str, Target, int, int]] = [
            ("agent", agent, ports.avro, ports.deflate),
            ("consumer", consumer, push, push_deflate),
        ]
        try:
            for tname, target, port, dport in targets:
                sender = GoodSender(port)
                with running(sender):
                    for name, fn in ATTACKS.items():
                        if only and not any(o in name for o in only):
                            continue
                        if not target.alive():
                            break
                        out = attack(target, sender.record, name,
                                     lambda fn=fn, p=port, d=dport: fn(p, d))  # type: ignore[misc]
                        rows.append((tname, out))
                        print(f"{tname:9s} {out}", flush=True)
        finally:
            for t in (agent, consumer, consumer_d):
                t.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    run(args.root.resolve(), args.only)


if __name__ == "__main__":
    main()
