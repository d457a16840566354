"""The agent process shares one glibc malloc arena between its threads (RSS that does not
depend on which worker thread read a spool file)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

GLIBC = platform.libc_ver()[0] == "glibc"


def _run(code: str, **env: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/bin:/bin", **env}).stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_one_arena_is_set_in_a_fresh_process() -> None:
    code = "from agent.runtime.gc_tuning import one_malloc_arena as f; print(f())"
    assert _run(code, PYTHONPATH=".") == "True"


def test_an_operators_malloc_arena_max_wins() -> None:
    code = "from agent.runtime.gc_tuning import one_malloc_arena as f; print(f())"
    assert _run(code, PYTHONPATH=".", MALLOC_ARENA_MAX="4") == "False"
