"""`cfglang.atomic.write_atomic`: the one way cflc writes files."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from cfglang.atomic import write_atomic


def test_text_bytes_and_writer_functions_are_written(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_atomic(target, "héllo\r\n")
    assert target.read_bytes() == "héllo\r\n".encode()
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_atomic(target, lambda f: f.write(b"streamed"))
    assert target.read_bytes() == b"streamed"


def test_mode_is_applied(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_atomic(target, "x", mode=0o640)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("old", encoding="utf-8")

    def fail(f: BinaryIO) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
