"""Garbage-collector and allocator settings for a running agent.

An agent keeps up to a channel's capacity of events alive, and everything it built at
start-up (modules, classes, the component graph) stays alive for good: ``gc.freeze()`` once
the agent has started moves the latter to the permanent generation, so full collections no
longer walk them.

The young generation keeps CPython's default (700 objects). A larger one (10,000) made
collections rarer but let cyclic garbage pile up: 300 handshakes carrying new 100 KB
protocols grew the agent by 33 MiB instead of under 15 (tests/hostile/test_net_avro.py).
"""

from __future__ import annotations

import ctypes
import gc
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter


def tune_for_throughput() -> None:
    gc.collect()
    gc.freeze()


def one_malloc_arena() -> bool:
    """Let every thread share glibc's one malloc arena; whether it was set.

    glibc gives each thread that mallocs an arena of its own (up to 8 per core) and seldom
    returns what is freed in one: the worker threads that read spool files (1 MiB blocks)
    left 0 to 3 MiB more resident from one run to the next. With one arena, a full
    100,000-event memory channel measured 1.86-1.87x the body bytes held in three runs
    instead of 1.80-2.02x (bench/agent_throughput.py, shared machine). Python's small
    objects never come from these arenas (pymalloc, under the GIL), so the threads hardly
    contend for it.
    Called before any thread starts; an operator's ``MALLOC_ARENA_MAX`` wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_ARENA_MAX, 1))
