"""The text format of secrets in a `.cfl` file (versions 1 and 2), and source paths.

A file with secrets starts with a header of ordinary comments (never ``##``: that would be
a doc comment)::

    # cfl-secrets: v1 key=8f3a2c1d
    # cfl-secrets: recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p YWdl...

and every secret value is one call on one line::

    password = secret("cfl:v1:8f3a2c1d:mW1u...")

The *source path* of a value names where it is written, so that it can be bound to the
ciphertext: field keys joined by ``.`` (a key that is not an identifier is written as a
JSON string in brackets, a list item as ``[i]``), below a declaration scope when the value
is not in the document (``schema:Db``, ``template:Svc``, ``let:name``, ``input:name``,
``output:"app.json"``). ``if`` and ``for`` bodies add nothing; a key computed at run time
is ``*``. The walk is syntactic, so `edit`, `encrypt` and the builtin agree on paths
without evaluating anything.

Version 2 binds each value to its *binding*: the source path and ``#k``, ``k`` counting the
sites of the file with that same path in source order (``db.password#0``,
``db.password#1``). Version 1 bound only the path, and the path deliberately ignores ``if``
branches and computed keys, so the values of one field in the two branches of an ``if``
(or in two computed-key blocks) could be swapped and still authenticate: a dev build
emitting the prod password. Every two sites of a file differ in their binding. The count
is over *sites*, which `encrypt` and `decrypt` keep (a plain field becomes a call, a call
keeps being one), so rewriting a file never shifts a binding. Version 1 values are still
read; everything written is version 2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterator

import attrs

from cfglang.secrets import SecretError
from cfglang.syntax import ast

VERSION = "v2"
PREFIX = "cfl:v2:"
# Every version this cflc reads, oldest first; `str.startswith` takes the tuple.
VERSIONS = ("v1", "v2")
PREFIXES = ("cfl:v1:", "cfl:v2:")
HEADER_TAG = "# cfl-secrets:"
_HEADER_LINE = re.compile(r"^# cfl-secrets:[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@attrs.frozen
class Wrapped:
    """The data key wrapped (age-encrypted) for one recipient."""

    recipient: str
    blob: bytes  # a binary age file holding the 32-byte data key


@attrs.frozen
class Header:
    """The parsed ``# cfl-secrets:`` header: format version, key id and wrapped keys.

    ``lines`` are the (start, end) offsets of every header line, newline included, so a
    rewrite can drop or replace them.
    """

    version: str
    key_id: str
    wrapped: tuple[Wrapped, ...]
    lines: tuple[tuple[int, int], ...] = attrs.field(eq=False, default=())

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(w.recipient for w in self.wrapped)


def parse_header(text: str) -> Header | None:
    """The header of ``text``, None when it has none; raises `SecretError` if malformed."""
    version: str | None = None
    key_id = ""
    wrapped: list[Wrapped] = []
    lines: list[tuple[int, int]] = []
    for m in _HEADER_LINE.finditer(text):
        end = m.end() + 1 if m.end() < len(text) and text[m.end()] == "\n" else m.end()
        lines.append((m.start(), end))
        words = m.group(1).split()
        if not words:
            raise SecretError("empty `# cfl-secrets:` header line", code="E1102")
        if words[0] == "recipient":
            if len(words) != 3:
                raise SecretError(
                    "a `# cfl-secrets: recipient` line needs a recipient and its wrapped key",
                    code="E1102",
                )
            try:
                blob = base64.b64decode(words[2], validate=True)
            except (binascii.Error, ValueError):
                raise SecretError(
                    f"the wrapped key for `{words[1]}` is not base64", code="E1102"
                ) from None
            wrapped.append(Wrapped(words[1], blob))
        elif re.fullmatch(r"v\d+", words[0]):
            if words[0] not in VERSIONS:
                raise SecretError(
                    f"secrets format `{words[0]}` is not known to this cflc",
                    help="upgrade cflc",
                    code="E1102",
                )
            version = words[0]
            for w in words[1:]:
                name, _, value = w.partition("=")
                if name == "key":
                    key_id = value
        else:
            raise SecretError(f"unknown `# cfl-secrets:` header line `{words[0]}`", code="E1102")
    if not lines:
        return None
    if version is None or not _KEY_ID.fullmatch(key_id):
        raise SecretError(
            "the `# cfl-secrets:` header has no `v2 key=<8 hex digits>` line", code="E1102"
        )
    return Header(version, key_id, tuple(wrapped), tuple(lines))


def render_header(key_id: str, wrapped: list[Wrapped] | tuple[Wrapped, ...]) -> str:
    """The header lines for a data key, recipients in the given order."""
    out = [f"{HEADER_TAG} {VERSION} key={key_id}\n"]
    for w in wrapped:
        out.append(
            f"{HEADER_TAG} recipient {w.recipient} {base64.b64encode(w.blob).decode('ascii')}\n"
        )
    return "".join(out)


def strip_header(text: str, header: Header) -> str:
    """``text`` without its header lines."""
    out, pos = [], 0
    for start, end in header.lines:
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def replace_header(text: str, header: Header | None, new: str) -> str:
    """``text`` with the header replaced by ``new`` (at the top when there was none)."""
    if header is None:
        return new + text
    first = header.lines[0][0]
    rest = strip_header(text, header)
    return rest[:first] + new + rest[first:]


@attrs.frozen
class Token:
    """A parsed ``cfl:v2:<key id>:<base64url>`` value: version, key id, nonce and
    ciphertext+tag."""

    key_id: str
    nonce: bytes
    sealed: bytes
    version: str = VERSION


def parse_token(text: str) -> Token:
    """Split a value token; raises `SecretError` (E1102) when it is malformed."""
    if not text.startswith(PREFIXES):
        raise SecretError("an encrypted secret must start with `cfl:v2:`", code="E1102")
    version = text[4:6]
    key_id, sep, body = text[len(PREFIX) :].partition(":")
    if not sep or not _KEY_ID.fullmatch(key_id):
        raise SecretError("an encrypted secret must read `cfl:v2:<key id>:<data>`", code="E1102")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SecretError("the encrypted secret is not valid base64url", code="E1102") from None
    if not re.fullmatch(r"[A-Za-z0-9_-]*", body) or len(raw) < 12 + 16:
        raise SecretError("the encrypted secret is truncated or altered", code="E1102")
    return Token(key_id, raw[:12], raw[12:], version)


def fingerprint(token: str) -> str:
    """A stable name of one encrypted value, from its ciphertext token alone (never from
    its plain text, which it cannot reveal): what read-only commands without an identity
    compare (docs/secrets.md, Comparing without a key). Editing a value, `rotate`, or any
    re-encryption changes it; `cflc secrets edit` keeps the token of an unchanged value."""
    return hashlib.sha256(b"cfl-fingerprint:" + token.encode("utf-8")).hexdigest()[:16]


def placeholder(token: str, length: int) -> str:
    """The text an undecrypted secret stands in with: ``length`` characters (the plain
    text's byte length, so `len` constraints hold) derived from the ciphertext, so values
    computed from two different ciphertexts differ as well (`url = "…$<password>…"`)."""
    if length <= 0:
        return ""
    digest = hashlib.shake_256(b"cfl-placeholder:" + token.encode("utf-8")).digest(length)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest)


def render_token(key_id: str, nonce: bytes, sealed: bytes) -> str:
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{PREFIX}{key_id}:{body}"


def associated_data(key_id: str, path: str, version: str = VERSION) -> bytes:
    """What AES-GCM authenticates beside the value: format version, key id and where the
    value is (the source path in v1, the binding in v2). The version is authenticated, so
    a v2 value relabelled ``cfl:v1:`` does not open under its weaker v1 path."""
    return f"cfl:{version}:{key_id}:{path}".encode()


# ---- source paths ---------------------------------------------------------------------------


@attrs.frozen
class Site:
    """A place in a module where a secret is, or should be, written.

    ``kind`` is ``call`` (a ``secret(...)`` call; ``literal`` is its argument when that is
    a plain string) or ``field`` (a field whose value is a plain string literal;
    ``declared`` when its own type annotation says ``secret``). ``data_path`` is the path
    in the document when the site is in it (no scope segment, no computed key).
    """

    kind: str
    path: str
    node: ast.Call | ast.Str
    literal: ast.Str | None
    data_path: tuple[str | int, ...] | None
    declared: bool = False
    binding: str = ""  # what a v2 value is bound to: ``path#k`` (see the module docstring)

    def bound(self, version: str) -> str:
        """The text a value of format ``version`` at this site is bound to."""
        return self.path if version == "v1" else self.binding


def render_path(segments: tuple[str | int, ...], scope: str = "") -> str:
    out = scope
    for s in segments:
        if isinstance(s, int):
            out += f"[{s}]"
        elif _IDENT.fullmatch(s):
            out += f".{s}" if out else s
        else:
            out += f"[{json.dumps(s, ensure_ascii=False)}]"
    return out


def sites(module: ast.Module) -> list[Site]:
    """Every secret call and every plain-string field of ``module``, in source order,
    each with its v2 binding."""
    found = sorted(_Walker().module(module), key=lambda s: s.node.span.start)
    seen: dict[str, int] = {}
    out = []
    for s in found:
        k = seen.get(s.path, 0)
        seen[s.path] = k + 1
        out.append(attrs.evolve(s, binding=f"{s.path}#{k}"))
    return out


class _Walker:
    def module(self, m: ast.Module) -> Iterator[Site]:
        yield from self.stmts(m.body.stmts, (), "")

    def stmts(
        self, stmts: tuple[ast.Stmt, ...], path: tuple[str | int, ...], scope: str
    ) -> Iterator[Site]:
        for st in stmts:
            yield from self.stmt(st, path, scope)

    def stmt(self, st: ast.Stmt, path: tuple[str | int, ...], scope: str) -> Iterator[Site]:
        if isinstance(st, ast.Field):
            keys = tuple(k.static if k.static is not None else "*" for k in st.path)
            p = path + keys
            if st.value is not None:
                if isinstance(st.value, ast.Str) and st.value.is_plain:
                    dynamic = scope or "*" in p
                    yield Site(
                        "field",
                        render_path(p, scope),
                        st.value,
                        st.value,
                        None if dynamic else p,
                        declared=_is_secret_type(st.type),
                    )
                else:
                    yield from self.expr(st.value, p, scope)
            if st.body is not None:
                yield from self.stmts(st.body.stmts, p, scope)
        elif isinstance(st, ast.LetDecl):
            yield from self.expr(st.value, (), _scope(scope, path, f"let:{st.name}"))
        elif isinstance(st, ast.IfStmt):
            yield from self.stmts(st.then.stmts, path, scope)
            if isinstance(st.orelse, ast.Body):
                yield from self.stmts(st.orelse.stmts, path, scope)
            elif st.orelse is not None:
                yield from self.stmt(st.orelse, path, scope)
        elif isinstance(st, ast.ForStmt):
            yield from self.stmts(st.body.stmts, path, scope)
        elif isinstance(st, ast.InputDecl) and st.default is not None:
            if isinstance(st.default, ast.Str) and st.default.is_plain:
                # A plain default of a secret input is a secret in the source, as a field's
                # (`input pw: secret = "change-me"`): encrypted by `encrypt`, W1104 else.
                yield Site(
                    "field",
                    f"input:{st.name}",
                    st.default,
                    st.default,
                    None,
                    declared=_is_secret_type(st.type),
                )
            else:
                yield from self.expr(st.default, (), f"input:{st.name}")
        elif isinstance(st, ast.SchemaDecl):
            yield from self.stmts(st.body.stmts, (), f"schema:{st.name}")
        elif isinstance(st, ast.TemplateDecl):
            s = f"template:{st.name}"
            for param in st.params:
                if param.default is not None:
                    yield from self.expr(param.default, (param.name,), s)
            yield from self.stmts(st.body.stmts, (), s)
        elif isinstance(st, ast.OutputDecl):
            yield from self.expr(st.value, (), f"output:{json.dumps(st.label)}")

    def expr(self, e: ast.Expr, path: tuple[str | int, ...], scope: str) -> Iterator[Site]:
        if isinstance(e, ast.Call):
            if isinstance(e.func, ast.Name) and e.func.name == "secret":
                arg = e.args[0].value if len(e.args) == 1 else None
                lit = arg if isinstance(arg, ast.Str) and arg.is_plain else None
                yield Site("call", render_path(path, scope), e, lit, None)
            for a in e.args:
                yield from self.expr(a.value, path, scope)
            yield from self.expr(e.func, path, scope)
        elif isinstance(e, ast.ListLit):
            for i, item in enumerate(e.items):
                yield from self.expr(item, (*path, i), scope)
        elif isinstance(e, ast.ObjectLit):
            yield from self.stmts(e.body.stmts, path, scope)
        elif isinstance(e, ast.Refine):
            yield from self.expr(e.base, path, scope)
            yield from self.stmts(e.body.stmts, path, scope)
        elif isinstance(e, ast.Str):
            for part in e.parts:
                if not isinstance(part, str):
                    yield from self.expr(part, path, scope)
        elif isinstance(e, ast.Binary):
            yield from self.expr(e.left, path, scope)
            yield from self.expr(e.right, path, scope)
        elif isinstance(e, ast.Unary):
            yield from self.expr(e.operand, path, scope)
        elif isinstance(e, ast.IfExpr):
            for sub in (e.cond, e.then, e.orelse):
                yield from self.expr(sub, path, scope)
        elif isinstance(e, ast.Comprehension):
            yield from self.expr(e.elem, path, scope)
        elif isinstance(e, (ast.GetAttr, ast.GetItem)):
            yield from self.expr(e.obj, path, scope)


def _scope(scope: str, path: tuple[str | int, ...], name: str) -> str:
    where = render_path(path, scope)
    return f"{where}.{name}" if where else name


def _is_secret_type(t: ast.TypeExpr | None) -> bool:
    if isinstance(t, ast.OptionalType):
        return _is_secret_type(t.inner)
    return isinstance(t, ast.NamedType) and t.path == ("secret",) and not t.args
