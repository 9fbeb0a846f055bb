"""What the parser keeps in the user cache directory, and why it can trust what it reads.

Two files, both derived from the installed grammar and lark alone (nothing of the user's,
so they are kept whatever ``CFLC_NO_CACHE`` says):

- ``fastlalr-<key>.tables``: the fast driver's tables (`fastlalr.Tables`), marshalled
  plain data. A new process that finds them parses valid files without importing lark.
- ``lark-<key>.pickle``: the `lark.Lark` instance (``Lark.save``), for the fallback and
  error path; building it from the grammar costs several times more.

Both live in ``parser/`` under the cache directory (`cfglang.paths.cache_dir`).

Trust. A pickle runs code when it is loaded, and the tables decide what a file parses
to, so neither may come from another user. The choice made here is to *verify* rather
than to keep everything in memory (deriving the tables needs lark and costs a new
process more than parsing a small project):

- the ``parser/`` directory is created with mode 0700, whatever the umask;
- a file is read only through a descriptor of that directory (`read_private`), after
  checking with ``fstat`` on the open descriptors that the directory and the file are
  owned by the current user and writable by no one else (no group or world write bit),
  and that the file is a regular file (a symbolic link is not followed). What is
  checked is what is read: a rename or a new link between the check and the read
  cannot swap in another file, and only the owner (or root) can write to a file and a
  directory that pass;
- the tables hold no code at all: the driver's reducers are generated in memory from
  numbers and flags that are checked one by one (`fastlalr._shape`), so even tables
  that passed the check but were damaged cannot make cflc run anything;
- a file that fails the check is not read: the process derives what it needs in memory
  (slower, same result), and stores it afresh only into a directory that passes (so a
  loose file in a private directory is replaced). On a system without POSIX owners (Windows),
  the cache directory under the user's profile is private by its access list, and the
  files are read as they are.

docs/security.md says the same for users.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import marshal
import os
import re
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfglang import paths
from cfglang.atomic import write_atomic
from cfglang.syntax.fastlalr import FORMAT, NewlineRules, Tables

if TYPE_CHECKING:
    from lark import Lark

__all__ = [
    "load_lark",
    "load_tables",
    "parser_dir",
    "read_private",
    "store_lark",
    "store_tables",
    "tables_path",
]

_DIR = "parser"
_POSIX = hasattr(os, "geteuid") and os.open in os.supports_dir_fd


def parser_dir() -> Path | None:
    """``parser/`` in the cache directory, made private if new; None without a cache
    directory, or if it cannot be made."""
    base = paths.cache_dir()
    if base is None:
        return None
    path = base / _DIR
    try:
        path.mkdir(mode=0o700)  # the umask can only take bits away from 0700
    except FileExistsError:
        pass
    except OSError:
        return None
    return path


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_private(path: Path) -> bytes | None:
    """The content of ``path``, or None if it is missing, unreadable, or could have been
    written by another user (see the module docstring)."""
    if not _POSIX:
        try:
            return path.read_bytes()
        except OSError:
            return None
    try:
        dfd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        dst = os.fstat(dfd)
        if not stat.S_ISDIR(dst.st_mode) or not _private(dst):
            return None
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _private(st):
                return None
            return f.read()
    except OSError:
        return None
    finally:
        os.close(dfd)


def _writable(directory: Path) -> bool:
    """Whether to store into ``directory``: only a private one (else no reader trusts it)."""
    if not _POSIX:
        return True
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _private(st)


def _store(path: Path, data: Any) -> None:
    if not _writable(path.parent):
        return
    try:
        write_atomic(path, data)  # a temporary file of mode 0600, renamed into place
    except (OSError, ValueError):
        pass  # an optimisation: a full or read-only disk must not fail a parse


# ---- the fast driver's tables -----------------------------------------------------------------


def lark_version() -> str | None:
    """The installed lark's version, read from its source without importing it."""
    try:
        spec = importlib.util.find_spec("lark")
        if spec is None or spec.origin is None:
            return None
        head = Path(spec.origin).read_text(encoding="utf-8")
    except (ImportError, OSError, ValueError):
        return None
    m = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", head, re.M)
    return m.group(1) if m else None


def imported_lark_version() -> str | None:
    import lark  # lazy: only once lark is needed anyway

    return lark.__version__


def tables_path(grammar: str, newlines: NewlineRules) -> Path | None:
    """Where the fast driver's tables for this grammar, lark, Python and driver live.

    None without a cache directory, or if lark's version cannot be read without
    importing it.
    """
    version = lark_version()
    if version is None:
        return None
    directory = parser_dir()
    if directory is None:
        return None
    key = "\0".join([str(FORMAT), version, sys.version, newlines.key(), grammar])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return directory / f"fastlalr-{digest}.tables"


def load_tables(path: Path) -> Tables | None:
    """The tables stored at ``path``, or None if missing, untrusted or unreadable."""
    data = read_private(path)
    if data is None:
        return None
    try:
        stored = marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(stored, dict) or stored.get("file") != path.name:
        return None  # another key's file, renamed
    tables = stored.get("tables")
    return tables if isinstance(tables, dict) else None


def store_tables(path: Path, tables: Tables) -> None:
    """Store ``tables`` atomically (a reader sees the old file or the new, never half)."""
    _store(path, marshal.dumps({"file": path.name, "tables": tables}))


# ---- Lark ---------------------------------------------------------------------------------------

# What `Lark.save` leaves out and `Lark._load` takes again: the live objects.
_LIVE_OPTIONS = frozenset({"transformer", "postlex", "lexer_callbacks"})


def lark_path(grammar: str, options: dict[str, Any]) -> Path | None:
    """Where the Lark instance for this grammar, these options, lark and Python lives."""
    version = lark_version()
    directory = parser_dir()
    if version is None or directory is None:
        return None
    plain = sorted((k, repr(v)) for k, v in options.items() if k not in _LIVE_OPTIONS)
    key = "\0".join([version, sys.version, repr(plain), grammar])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return directory / f"lark-{digest}.pickle"


def load_lark(path: Path, live: dict[str, Any]) -> Lark | None:
    """The Lark instance stored at ``path`` with the ``live`` options (transformer,
    post-lexer, lexer callbacks) put back; None if missing, untrusted or unreadable."""
    import lark  # start-up: only when Lark is needed (a fallback, or tables to derive)

    data = read_private(path)
    if data is None:
        return None
    try:
        inst = lark.Lark.__new__(lark.Lark)
        return inst._load(io.BytesIO(data), **live)  # what `Lark(cache=...)` does
    except Exception:  # damaged, or from another lark: built again
        return None


def store_lark(path: Path, inst: Lark) -> None:
    import lark.lark  # lazy: only after Lark was built (so it is loaded)

    exclude = set(getattr(lark.lark, "_LOAD_ALLOWED_OPTIONS", ())) | _LIVE_OPTIONS
    _store(path, lambda f: inst.save(f, exclude))
