"""Writing a file so that a reader sees its old content or its new content, never a mix.

Every file cflc writes goes through `write_atomic`: edited sources (`cflc secrets`),
cache entries and the parser's stored tables. The data goes to a temporary file in the
same directory (named ``.cflc-*.tmp``, which `cflc watch` ignores), which then replaces
the target in one rename; on any failure the temporary file is removed and the target
is untouched.

A build's outputs go through `write_set`, which makes the whole set one commit in an
output directory that may hold the user's own files (so it cannot be swapped whole):

1. Lock the output directory (`flock` on the directory itself; the lock dies with the
   process, so a killed build never leaves it held).
2. Recover: finish the renames of a commit a killed build left (`.cflc-commit.json`),
   then remove stale ``.cflc-*.tmp`` files.
3. Stage every output as ``.cflc-set-*.tmp`` beside its target, flushed to disk. A kill
   here leaves the old set whole (and temporaries the next build removes).
4. Commit: write the journal ``.cflc-commit.json`` (staged name -> target, for every
   output) atomically. From here the new set is the build's result.
5. Rename each staged file over its target, then delete the journal.

A build killed during step 5 leaves the journal; the next `cflc build` into that
directory (or `recover`) completes the renames before anything else, so the directory
always ends as the whole old set or the whole new set. A reader that must never see a
mix takes a shared `flock` on the directory and calls `recover` first (or reads only
when no journal is present).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

from cfglang.paths import resolves_inside

JOURNAL = ".cflc-commit.json"
_SET_PREFIX = ".cflc-set-"
# `write_atomic` temporaries of other writers (a `cflc secrets` edit, the cache) may be
# in flight in the same directory; only ones this old are taken as abandoned.
_STALE_SECONDS = 60.0


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


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (released when the process dies)."""
    if sys.platform == "win32":  # no flock on a directory there: builds do not take turns
        yield
        return
    import fcntl  # only when writing a set of outputs: a build to stdout does not lock

    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(root: str, dirs: Sequence[str] = ()) -> None:
    """Finish a commit a killed `write_set` left in ``root`` and remove stale
    temporaries there and in ``dirs``. The caller holds the directory lock."""
    journal = os.path.join(root, JOURNAL)
    scan = {os.path.abspath(root), *(os.path.abspath(d) for d in dirs)}
    try:
        with open(journal, encoding="utf-8") as f:
            pairs = json.load(f)
    except FileNotFoundError:
        pairs = None
    except (OSError, ValueError):
        pairs = []  # torn journal: it was never committed (written atomically)
    if pairs is not None:
        for tmp, target in pairs if isinstance(pairs, list) else []:
            src, dst = os.path.join(root, str(tmp)), os.path.join(root, str(target))
            scan.add(os.path.dirname(os.path.abspath(dst)))
            # Only names inside the directory: the journal is data on disk, not trusted.
            if resolves_inside(src, root) and resolves_inside(dst, root) and os.path.isfile(src):
                os.replace(src, dst)
        _fsync_dir(root)
        os.unlink(journal)
    now = time.time()
    for d in sorted(scan):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if not (name.startswith(".cflc-") and name.endswith(".tmp")):
                continue
            p = os.path.join(d, name)
            with contextlib.suppress(OSError):
                if name.startswith(_SET_PREFIX) or now - os.lstat(p).st_mtime > _STALE_SECONDS:
                    os.unlink(p)


def write_set(root: str, files: Sequence[tuple[str, bytes | str, int | None]]) -> None:
    """Write ``files`` (path, data, mode) — every path inside ``root`` — as one set:
    afterwards the directory holds all of them or, if this fails or is killed before
    the commit point, none (see the module docstring)."""
    os.makedirs(root, exist_ok=True)
    dirs = sorted({os.path.dirname(os.path.abspath(p)) for p, _, _ in files})
    with _locked(root):
        recover(root, dirs)
        staged: list[tuple[str, str]] = []
        try:
            for path, data, mode in files:
                directory = os.path.dirname(os.path.abspath(path))
                os.makedirs(directory, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=directory, prefix=_SET_PREFIX, suffix=".tmp")
                staged.append((tmp, os.path.abspath(path)))
                if mode is not None:
                    os.fchmod(fd, mode)
                with os.fdopen(fd, "wb") as f:
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
                    f.flush()
                    os.fsync(f.fileno())
            pairs = [[os.path.relpath(t, root), os.path.relpath(p, root)] for t, p in staged]
            write_atomic(os.path.join(root, JOURNAL), json.dumps(pairs), mode=0o600)
            _fsync_dir(root)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        # Committed: a failure from here on leaves the journal for the next build.
        for tmp, path in staged:
            os.replace(tmp, path)
        for d in dirs:
            _fsync_dir(d)
        os.unlink(os.path.join(root, JOURNAL))
