"""In-place rewrites of a `.cfl` file's secrets, and the plain-text scan of a build.

Every rewrite replaces only the text of the string literals concerned (found by their
spans in the syntax tree) and the header lines, so comments, layout and every other byte
stay as they were:

* `encrypt_text`: a plain string literal becomes ``secret("cfl:v2:...")`` when it is the
  argument of ``secret(...)``, the value of a field declared ``: secret``, or the value of a
  field whose compiled value is a secret (its schema says so). Needs the data key: a new
  one for a file without a header, else unwrapped with an identity.
* `decrypt_text`: every ``secret("cfl:v1:...")`` (or ``v2``) becomes
  ``secret("<plain text>")`` and the header goes; the ``secret(...)`` call stays, so
  re-encrypting finds every value again.
* `rotate_text`: decrypt, then encrypt under a new data key for the current recipients;
  this is what upgrades a version 1 file to version 2.
* `rewrap_text`: the same data key wrapped for another list of recipients; only the
  header changes (`cflc secrets recipients add`).

`report_plaintext` is the check a compilation runs: plain string literals that end up in
secret values are reported (warning, or error with ``--strict``), without their text.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from cfglang.atomic import write_atomic
from cfglang.diagnostics import Diagnostic
from cfglang.secrets import SecretError
from cfglang.secrets.format import (
    PREFIXES,
    VERSION,
    Header,
    Site,
    parse_header,
    render_header,
    replace_header,
    sites,
    strip_header,
)
from cfglang.source import SourceFile
from cfglang.syntax.literals import quote
from cfglang.syntax.parser import parse_module
from cfglang.values import Secret

#: (module path, text) -> (data paths that hold secrets, whether the module compiled)
SecretPaths = Callable[[str, str], tuple[set[tuple[str | int, ...]], bool]]


@attrs.define
class DataKey:
    """An open data key: its id, the key, and the header lines that wrap it."""

    key_id: str
    key: bytes
    header_text: str


@attrs.define
class Decrypted:
    """The result of `decrypt_text`: the plain text, the key it was under, and a map from
    (binding, plain text) to the original token, so unchanged values can keep their
    ciphertext (and their line in a diff) when re-encrypted."""

    text: str
    key: DataKey | None
    tokens: dict[tuple[str, str], str]
    count: int


@attrs.define
class Encrypted:
    """The result of `encrypt_text`: the new text, how many values were encrypted, and
    remarks for the user (never containing a value)."""

    text: str
    count: int
    remarks: list[str] = attrs.Factory(list)


def _parse(path: str, text: str) -> list[Site]:
    tree, diags = parse_module(SourceFile(path, text))
    if tree is None or any(d.is_error for d in diags):
        raise SecretError(f"`{path}` has syntax errors; run `cflc check {path}`", code="E1102")
    return sites(tree)


def open_key(path: str, header: Header, identities: Sequence[Any], text: str) -> DataKey:
    from cfglang.secrets.keys import unwrap  # lazy: a build's plain-text scan needs no keys

    key = unwrap(header, identities, path)
    block = "".join(text[s:e] for s, e in header.lines)
    return DataKey(header.key_id, key, block if block.endswith("\n") else block + "\n")


def new_key(recipients: Sequence[str]) -> DataKey:
    # lazy: a build's plain-text scan needs no keys
    from cfglang.secrets.crypto import new_data_key
    from cfglang.secrets.keys import wrap

    key_id, key = new_data_key()
    return DataKey(key_id, key, render_header(key_id, wrap(key, recipients)))


def decrypt_text(path: str, text: str, identities: Sequence[Any]) -> Decrypted:
    """``text`` with every encrypted literal replaced by its plain text, header removed."""
    from cfglang.secrets.crypto import open_token  # lazy: as in `open_key`

    header = parse_header(text)
    targets = [
        s
        for s in _parse(path, text)
        if s.kind == "call" and s.literal is not None and s.literal.text.startswith(PREFIXES)
    ]
    if header is None:
        if targets:
            raise SecretError(
                f"`{path}` has encrypted values but no `# cfl-secrets:` header", code="E1102"
            )
        return Decrypted(text, None, {}, 0)
    key = open_key(path, header, identities, text)
    tokens: dict[tuple[str, str], str] = {}
    out = text
    for s in reversed(targets):
        assert s.literal is not None
        token = s.literal.text
        plain = open_token(key.key, key.key_id, s, token)
        tokens[(s.binding, plain)] = token
        out = out[: s.literal.span.start] + quote(plain) + out[s.literal.span.end :]
    return Decrypted(strip_header(out, header), key, tokens, len(targets))


def encrypt_text(
    path: str,
    text: str,
    *,
    recipients: Sequence[str] = (),
    identities: Sequence[Any] = (),
    key: DataKey | None = None,
    reuse: Mapping[tuple[str, str], str] | None = None,
    secret_paths: SecretPaths | None = None,
) -> Encrypted:
    """Encrypt every plain secret literal of ``text`` (module ``path``) in place.

    The key is ``key`` when given (`edit` keeps the file's key), else the file's own
    (opened with ``identities``), else a new one wrapped for ``recipients``. With
    ``secret_paths`` (`cfglang.tools.secrets.typed_secret_paths`: it compiles the module,
    decrypting nothing), fields that are secret by their schema are found too. It is
    passed in because this package sits below the compiler and never calls it.
    """
    from cfglang.secrets.crypto import seal  # lazy: as in `open_key`

    header = parse_header(text)
    found = _parse(path, text)
    remarks: list[str] = []
    typed: set[tuple[str | int, ...]] = set()
    if secret_paths is not None and any(
        s.kind == "field" and not s.declared and s.data_path is not None for s in found
    ):
        typed, ok = secret_paths(path, text)
        if not ok:
            remarks.append(
                f"`{path}` does not compile on its own, so only values written "
                '`secret("...")` or declared `: secret` were considered'
            )
    targets = [
        s
        for s in found
        if s.literal is not None
        and (
            (s.kind == "call" and not s.literal.text.startswith(PREFIXES))
            or (s.kind == "field" and (s.declared or s.data_path in typed))
        )
    ]
    if not targets:
        return Encrypted(text, 0, remarks)
    if key is None:
        if header is not None:
            key = open_key(path, header, identities, text)
            if recipients and set(recipients) != set(header.recipients):
                remarks.append(
                    "the configured recipients differ from the file's; run "
                    "`cflc secrets recipients sync` to re-wrap its key (or "
                    f"`cflc secrets rotate {path}` for a new one)"
                )
        else:
            key = new_key(recipients)
    out = text
    for s in reversed(targets):
        assert s.literal is not None
        plain = s.literal.text
        token = (reuse or {}).get((s.binding, plain)) or seal(key.key, key.key_id, s.binding, plain)
        lit = quote(token)
        if s.kind == "field":
            lit = f"secret({lit})"
        out = out[: s.literal.span.start] + lit + out[s.literal.span.end :]
    if header is None:
        out = key.header_text + out
    elif header.version != VERSION:
        # The header names the newest format written into the file; its key stays.
        out = replace_header(out, header, render_header(header.key_id, header.wrapped))
    return Encrypted(out, len(targets), remarks)


def rotate_text(
    path: str, text: str, identities: Sequence[Any], recipients: Sequence[str]
) -> Encrypted:
    """Re-encrypt every value of ``text`` under a new data key wrapped for ``recipients``."""
    header = parse_header(text)
    if header is None:
        return Encrypted(text, 0, [f"`{path}` has no secrets header; nothing to rotate"])
    plain = decrypt_text(path, text, identities)
    fresh = new_key(recipients)
    result = encrypt_text(path, plain.text, key=fresh)
    body = result.text
    if not body.startswith(fresh.header_text):
        body = fresh.header_text + body
    return Encrypted(body, result.count, result.remarks)


def rewrap_text(path: str, text: str, identities: Sequence[Any], recipients: Sequence[str]) -> str:
    """``text`` with its data key wrapped for exactly ``recipients``: the key and every
    value stay, so only header lines change (a recipient that stays keeps its line byte
    for byte). This *adds* access; removing access needs `rotate_text` (a removed
    recipient may have kept the data key)."""
    from cfglang.secrets.keys import wrap  # lazy: as in `open_key`

    header = parse_header(text)
    if header is None:
        return text
    kept = {w.recipient: w for w in header.wrapped}
    missing = [r for r in recipients if r not in kept]
    fresh = {}
    if missing:
        key = open_key(path, header, identities, text)
        fresh = {w.recipient: w for w in wrap(key.key, missing)}
    wrapped = [kept.get(r) or fresh[r] for r in recipients]
    return replace_header(text, header, render_header(header.key_id, wrapped))


def report_plaintext(found: list[tuple[Any, Site]], diags: Any, *, strict: bool) -> None:
    """Report plain-text literals that become secrets: ``found`` is `plaintext_sites` of
    the entry module and the compiled data.

    The diagnostic has no span on purpose: a caret snippet would print the source line,
    and with it the secret, into build logs. The location is in the message instead.
    """
    for m, s in found:
        assert s.literal is not None
        code, severity = ("E1105", "error") if strict else ("W1104", "warning")
        # The span locates the value (file:line:col) but the diagnostic is marked
        # sensitive, so no rendering prints the source line that holds the secret.
        diags.add(
            Diagnostic(
                code,
                f"secret `{s.path}` is written in plain text",
                s.literal.span,
                severity=severity,
                data_path=s.path,
                sensitive=True,
                help=f"run `cflc secrets encrypt {m.source.path}`, or pass "
                "--allow-plaintext-secrets",
            )
        )


def secret_data_paths(data: Any) -> set[tuple[str | int, ...]]:
    """The data path of every `Secret` in compiled ``data``."""
    paths: set[tuple[str | int, ...]] = set()

    def walk(v: Any, p: tuple[str | int, ...]) -> None:
        if isinstance(v, Secret):
            paths.add(p)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*p, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, (*p, i))

    walk(data, ())
    return paths


def plaintext_sites(entry: Any, data: Any) -> list[tuple[Any, Site]]:
    """(module, site) of every plain-text literal that is a secret in ``data``."""
    paths = secret_data_paths(data)
    out = []
    for m in entry.chain():
        for s in sites(m.tree):
            if s.literal is None:
                continue
            if s.kind == "call" and s.literal.text.startswith(PREFIXES):
                continue
            if s.kind == "field" and not (s.declared or s.data_path in paths):
                continue
            out.append((m, s))
    return out


def write_in_place(path: str, text: str) -> None:
    """Replace ``path`` atomically, keeping its permission bits."""
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o644
    write_atomic(path, text, mode=mode)


def shred(path: str) -> None:
    """Overwrite a file with zeros, flush it to disk, and remove it."""
    try:
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
