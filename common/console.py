"""Whole blocks of console output.

``print(text)`` writes the text and its newline separately; with an unbuffered stdout
(``PYTHONUNBUFFERED``, common in containers) and stderr on the same pipe, a log line
from another thread can land between them, inside a result block. One write per block
keeps each block whole.
"""

from __future__ import annotations

import sys
from typing import IO


def write_block(text: str, stream: IO[str] | None = None) -> None:
    """Write ``text`` and its newline in one call, then flush."""
    out = stream if stream is not None else sys.stdout
    out.write(text + "\n")
    out.flush()
