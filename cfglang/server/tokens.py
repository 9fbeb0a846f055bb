"""Tokens and roles: `<state>/tokens.toml`, never holding a token in plain text.

A token is ``cfl_`` and 43 characters of `secrets.token_urlsafe` (256 random bits), shown
once by `cflc serve token add`. The file keeps its SHA-256: a token is not a password a
person chose, so a slow hash buys nothing against guessing 256 bits, and a fast one keeps
each request cheap. A presented token is hashed and compared with every stored hash by
`hmac.compare_digest` (all of them, so the time taken says nothing about which or whether
one matched).

```toml
[tokens.deploy]
sha256 = "…"            # hex digest of the token
role = "editor"         # reader | editor | admin
scopes = ["target:env/*", "path:payments/"]
created = 1796299501.4
expires = 1798891501.4  # optional, Unix time
```

Roles: a reader may use the GET routes, an editor also writes and rolls back, an admin
also reads the audit log, the clients and usage (and manages rollouts). Scopes narrow a
token to some targets (``target:PATTERN``, a glob: ``env/*``) and some source paths
(``path:PREFIX``, a prefix such as ``payments/``, or a glob when it holds ``*``); a token
with scopes of one kind only is not narrowed in the other kind; one without scopes reaches
everything its role allows.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
import secrets
import time
import tomllib
from collections.abc import Sequence
from typing import Any

import attrs

TOKENS_FILE = "tokens.toml"
ROLES = ("reader", "editor", "admin")
# What each action needs, as an index into ROLES.
NEEDS = {"read": 0, "write": 1, "admin": 2}


class TokenError(Exception):
    """tokens.toml cannot be read, or a command on it is wrong."""


@attrs.frozen
class Token:
    name: str
    sha256: str
    role: str
    scopes: tuple[str, ...] = ()
    created: float = 0.0
    expires: float | None = None

    def reaches(self, resource: str) -> bool:
        """Whether the scopes let this token reach ``resource`` (``target:NAME``,
        ``path:PATH``; anything else is not scoped)."""
        kind, sep, name = resource.partition(":")
        if not sep or kind not in ("target", "path"):
            return True
        mine = [s.partition(":")[2] for s in self.scopes if s.startswith(kind + ":")]
        if not mine:
            return True
        if name == "":
            return True  # a listing: filtered item by item
        for s in mine:
            if kind == "target" or any(c in s for c in "*?["):
                if fnmatch.fnmatchcase(name, s):
                    return True
            elif name.startswith(s):
                return True
        return False

    def may(self, action: str) -> bool:
        return ROLES.index(self.role) >= NEEDS[action]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def path_of(state_dir: str) -> str:
    return os.path.join(state_dir, TOKENS_FILE)


def read(state_dir: str) -> list[Token] | None:
    """The tokens, or None when there is no tokens file (development: no access control)."""
    path = path_of(state_dir)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TokenError(f"cannot read {path}: {e}") from e
    out = []
    table = data.get("tokens", {})
    if not isinstance(table, dict):
        raise TokenError(f"{path}: `tokens` must be a table")
    for name, t in table.items():
        if (
            not isinstance(t, dict)
            or t.get("role") not in ROLES
            or not isinstance(t.get("sha256"), str)
        ):
            raise TokenError(
                f"{path}: token `{name}` needs `sha256` and a `role` ({', '.join(ROLES)})"
            )
        scopes = t.get("scopes", [])
        if not isinstance(scopes, list) or not all(
            isinstance(s, str) and s.startswith(("target:", "path:")) for s in scopes
        ):
            raise TokenError(f"{path}: scopes of `{name}` must be `target:…` or `path:…` strings")
        expires = t.get("expires")
        out.append(
            Token(
                name,
                t["sha256"],
                t["role"],
                tuple(scopes),
                float(t.get("created", 0.0)),
                float(expires) if isinstance(expires, (int, float)) else None,
            )
        )
    return out


def _write(state_dir: str, tokens: Sequence[Token]) -> None:
    import tomli_w  # only when tokens change

    table: dict[str, Any] = {}
    for t in tokens:
        entry: dict[str, Any] = {
            "sha256": t.sha256,
            "role": t.role,
            "scopes": list(t.scopes),
            "created": t.created,
        }
        if t.expires is not None:
            entry["expires"] = t.expires
        table[t.name] = entry
    os.makedirs(state_dir, exist_ok=True)
    path = path_of(state_dir)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"# Hashed tokens of `cflc serve` (docs/server.md); never plain text.\n")
        f.write(tomli_w.dumps({"tokens": table}).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add(
    state_dir: str,
    name: str,
    role: str,
    scopes: Sequence[str] = (),
    expires_in: float | None = None,
) -> str:
    """Add token ``name``; returns the token (the only time it exists in plain text)."""
    if role not in ROLES:
        raise TokenError(f"unknown role `{role}` (known: {', '.join(ROLES)})")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise TokenError(f"`{name}` is not a token name (letters, digits, `-`, `_`, `.`)")
    for s in scopes:
        kind, sep, rest = s.partition(":")
        if not sep or kind not in ("target", "path") or not rest:
            raise TokenError(f"scope `{s}` must be `target:PATTERN` or `path:PREFIX`")
    tokens = read(state_dir) or []
    if any(t.name == name for t in tokens):
        raise TokenError(f"a token `{name}` exists already (revoke it first)")
    token = "cfl_" + secrets.token_urlsafe(32)
    now = time.time()
    expires = now + expires_in if expires_in is not None else None
    tokens.append(Token(name, digest(token), role, tuple(scopes), now, expires))
    _write(state_dir, tokens)
    return token


def revoke(state_dir: str, name: str) -> None:
    tokens = read(state_dir) or []
    if not any(t.name == name for t in tokens):
        raise TokenError(f"no token `{name}`")
    _write(state_dir, [t for t in tokens if t.name != name])


class Tokens:
    """The tokens of a running server, read again when the file changes (a token added
    or revoked takes effect at the next request)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self._stamp: tuple[float, int] | None = None
        self._tokens: list[Token] | None = None
        self.refresh()

    def refresh(self) -> list[Token] | None:
        try:
            st = os.stat(path_of(self.state_dir))
            stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or (stamp is not None and self._tokens is None):
            self._tokens = read(self.state_dir) if stamp is not None else None
            self._stamp = stamp
        return self._tokens

    @property
    def enabled(self) -> bool:
        return self.refresh() is not None

    def find(self, presented: str) -> Token | None:
        """The token ``presented`` is, compared in constant time against every one."""
        tokens = self.refresh() or []
        want = digest(presented)
        found = None
        for t in tokens:
            if hmac.compare_digest(want, t.sha256):
                found = t
        return found
