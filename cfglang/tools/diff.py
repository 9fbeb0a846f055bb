"""Semantic diff of two compiled configurations: what changed, path by path.

`diff(a, b)` is a pure function on plain data (dicts, lists, scalars, `Duration`, `Size`,
`Secret`), so `cflc diff`, and later history and watch, share it. The algorithm walks both
values together:

- two objects: every key is compared; a key only in ``a`` is a removal, only in ``b`` an
  addition, in both a recursive comparison. Key order alone is not a difference.
- two lists: compared index by index (``tags[2]``); extra items in ``b`` are additions and
  missing ones removals. An insertion at the front therefore shows as a change of every
  later item: simple and predictable, and exact about which index holds what.
- anything else: equal or one ``change`` of the whole value, including a change of kind
  (object to list, int to string). ``1`` and ``1.0`` differ (the JSON text differs), as do
  ``true`` and ``1``.

Values compare as they would be emitted: a duration equals its canonical string (``"1h30m"``),
and a secret equals a plain string with the same text, so a `.cfl` file compares cleanly with
its own JSON build output.

Order of changes: the order of a merged key list in which ``a``'s keys keep ``a``'s order
and each key only in ``b`` follows the key that precedes it in ``b`` (at the front if none).
Removals and changes thus appear where they were in ``a``, additions where they are in ``b``.

Secrets never leave this module in clear: a change whose either side is a secret renders
both sides as ``<secret>`` (the plain side may be a build output holding the same secret).
Secrets compiled without an identity are compared by their ciphertext (`Secret.sealed`,
and the placeholder text derived from it that values computed from them carry), never by
a plain text nobody has: ``~ db.password: <secret> -> <secret>`` after an edit or a
rotation.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import attrs

from cfglang.values import REDACTED, Duration, Secret, Size, redact

__all__ = ["Change", "diff", "format_path", "render_human", "to_json"]

Path = tuple[str | int, ...]
Op = Literal["add", "remove", "change"]

_SYMBOL: dict[str, str] = {"add": "+", "remove": "-", "change": "~"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words that cannot follow a `.` in a CFL path (the eight keyword field names can).
_RESERVED = frozenset(
    "else then in if for let final hidden unset where true false null self super".split()
)


@attrs.frozen
class Change:
    """One difference.

    ``op`` is ``add`` (only ``new`` is meaningful), ``remove`` (only ``old``) or ``change``
    (both). ``path`` is the data path, keys and list indices. ``secret`` is true when either
    side is a secret, and tells renderers to hide both sides.
    """

    op: Op
    path: Path
    old: Any = None
    new: Any = None
    secret: bool = False

    @property
    def path_text(self) -> str:
        return format_path(self.path)


def diff(a: Any, b: Any) -> list[Change]:
    """The changes that turn ``a`` into ``b``, in document order (see the module docstring)."""
    out: list[Change] = []
    _walk(a, b, (), out)
    return out


def _walk(a: Any, b: Any, path: Path, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in _merged_keys(a, b):
            p = (*path, key)
            if key not in b:
                out.append(Change("remove", p, old=a[key], secret=_has_secret(a[key])))
            elif key not in a:
                out.append(Change("add", p, new=b[key], secret=_has_secret(b[key])))
            else:
                _walk(a[key], b[key], p, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        common = min(len(a), len(b))
        for i in range(common):
            _walk(a[i], b[i], (*path, i), out)
        for i in range(common, len(a)):
            out.append(Change("remove", (*path, i), old=a[i], secret=_has_secret(a[i])))
        for i in range(common, len(b)):
            out.append(Change("add", (*path, i), new=b[i], secret=_has_secret(b[i])))
        return
    if not _same(a, b):
        out.append(
            Change(
                "change", path, old=a, new=b, secret=isinstance(a, Secret) or isinstance(b, Secret)
            )
        )


def _merged_keys(a: dict[Any, Any], b: dict[Any, Any]) -> list[Any]:
    # Keys only in `b` are anchored to the nearest preceding key of `b` that `a` has too.
    start: list[Any] = []
    after: dict[Any, list[Any]] = {}
    anchor: list[Any] = start
    for k in b:
        if k in a:
            anchor = after.setdefault(k, [])
        else:
            anchor.append(k)
    merged = list(start)
    for k in a:
        merged.append(k)
        merged.extend(after.get(k, ()))
    return merged


def _same(a: Any, b: Any) -> bool:
    """Equality as emitted: kinds must match, except text forms of durations, sizes, secrets.

    Two secrets that were not decrypted are the same when their ciphertexts are (their
    fingerprints, `Secret.sealed`): a changed ciphertext is a changed value."""
    if isinstance(a, Secret) and isinstance(b, Secret) and a.sealed and b.sealed:
        return a.sealed == b.sealed
    a, b = _as_emitted(a), _as_emitted(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _as_emitted(v: Any) -> Any:
    if isinstance(v, (Duration, Size)):
        return v.canonical()
    if isinstance(v, Secret):
        return v.value
    return v


def _has_secret(v: Any) -> bool:
    if isinstance(v, Secret):
        return True
    if isinstance(v, dict):
        return any(_has_secret(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_secret(x) for x in v)
    return False


def format_path(path: Path) -> str:
    """``services.billing.replicas``, ``tags[2]``, ``labels["app/name"]``; the root is
    ``<root>``. Keys that are not identifiers (or are reserved words) are subscripts, as in
    CFL, so a path can be pasted into `cflc eval`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part) and part not in _RESERVED:
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out or "<root>"


def show(value: Any, *, secret: bool = False) -> str:
    """A value as compact one-line JSON; a secret (or the plain string it is compared with)
    as a bare ``<secret>``, so that it cannot be mistaken for the string "<secret>"."""
    if isinstance(value, Secret) or (secret and isinstance(value, str)):
        return REDACTED
    return json.dumps(_jsonable(redact(value)), ensure_ascii=False, allow_nan=True)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, (Duration, Size)):
        return v.canonical()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)  # anything a YAML file may hold that JSON cannot (never a Secret: redacted)


def render_human(changes: list[Change], *, color: bool = False) -> str:
    """One line per change: ``+ path: new``, ``- path: old``, ``~ path: old -> new``."""
    colors = {"add": "\x1b[32m", "remove": "\x1b[31m", "change": "\x1b[33m"}
    lines = []
    for c in changes:
        head = f"{_SYMBOL[c.op]} {c.path_text}: "
        if c.op == "add":
            text = head + show(c.new, secret=c.secret)
        elif c.op == "remove":
            text = head + show(c.old, secret=c.secret)
        else:
            text = f"{head}{show(c.old, secret=c.secret)} -> {show(c.new, secret=c.secret)}"
        lines.append(f"{colors[c.op]}{text}\x1b[0m" if color else text)
    return "".join(line + "\n" for line in lines)


def to_json(changes: list[Change]) -> list[dict[str, Any]]:
    """``[{op, path, old, new}]`` with redacted, JSON-ready values; the side an operation
    does not have (``old`` of an addition, ``new`` of a removal) is null."""

    def value(v: Any, secret: bool) -> Any:
        if isinstance(v, Secret) or (secret and isinstance(v, str)):
            return REDACTED
        return _jsonable(redact(v))

    out = []
    for c in changes:
        old = value(c.old, c.secret) if c.op != "add" else None
        new = value(c.new, c.secret) if c.op != "remove" else None
        out.append({"op": c.op, "path": c.path_text, "old": old, "new": new})
    return out
