"""Helpers for tests that drive real file events (watch, live).

Waits poll a condition up to a generous deadline (never a sleep used as an assertion), and
saves go through a rename with the modification time moved on, as editors save.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEADLINE = 45.0


def wait_until(cond: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def write(path: Path, text: str) -> None:
    """Save the way most editors do: a temporary file renamed over the old one, so no
    half-written file is ever read. The modification time moves at least a second on:
    stat polling compares whole seconds, and a test saves faster than a person does."""
    before = path.stat().st_mtime if path.exists() else 0.0
    tmp = path.with_name(f".{path.name}.swp-tmp")
    tmp.write_text(text)
    stamp = max(time.time(), before + 1.5)
    os.utime(tmp, (stamp, stamp))
    os.replace(tmp, path)
