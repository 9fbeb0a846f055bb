"""Writing a file so that a reader sees its old content or its new content, never a mix.

Every file cflc writes goes through `write_atomic`: build outputs, edited sources
(`cflc secrets`), cache entries and the parser's stored tables. The data goes to a
temporary file in the same directory (named ``.cflc-*.tmp``, which `cflc watch` ignores),
which then replaces the target in one rename; on any failure the temporary file is
removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str | Callable[[BinaryIO], object],
    *,
    mode: int | None = None,
) -> None:
    """Write ``data`` (bytes, text as UTF-8, or a function writing to the open binary
    file) to ``path``. ``mode`` sets the permissions (else `mkstemp`'s 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cflc-", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
