"""Garbage-collector settings for a running agent.

An agent keeps up to a channel's capacity of events alive, and everything it built at
start-up (modules, classes, the component graph) stays alive for good: ``gc.freeze()`` once
the agent has started moves the latter to the permanent generation, so full collections no
longer walk them.

The young generation keeps CPython's default (700 objects). A larger one (10,000) made
collections rarer but let cyclic garbage pile up: 300 handshakes carrying new 100 KB
protocols grew the agent by 33 MiB instead of under 15 (tests/hostile/test_net_avro.py).
"""

from __future__ import annotations

import gc


def tune_for_throughput() -> None:
    gc.collect()
    gc.freeze()
