"""The three-way merge of `.cfl` sources: `merge(base, ours, theirs, path=...)`.

A line-based merge (git's default) conflicts whenever two edits touch neighbouring lines,
and merges cleanly two edits that set one key in two different spellings (`db.pool = 6` and
`db { pool = 7 }`). This one works on CFL statements and key paths instead:

1. **Parse and cut into units.** Each version is parsed (a syntax error is a diagnostic,
   and nothing is merged). A body (the module, or the inside of a `key { … }` block, a
   refinement `key = T(…) { … }`, an object literal, a schema or a template) is cut into
   units, one per statement, each the statement's own lines: the comment lines right
   above it (its doc comment included), the statement, and the comment that ends its last
   line. The blank lines and detached comments before a unit are its *gap*. A unit has an
   identity within its body: the key path of a field (`db.pool`), the name of a `let`,
   `input`, `type`, `schema`, `template`, `output` or import alias, the text of a `check`
   or of the head of an `if`/`for` (those two are merged as single units), numbered by
   occurrence when a body repeats one. In the module, statements sharing a line form one
   unit; a nested body written that way (`db { a = 1; b = 2 }`) is merged as one unit
   with its statement.

2. **Merge each body by identity.** A unit that one side left as in the base takes the
   other side's version (an edit, an addition or a deletion); one that both sides changed
   in the same way takes that version. One that both changed differently keeps both
   changes when one changed only the comment lines above the statement and the other
   only the statement; else it is merged inside when it has a body on every side (its
   head, the text up to `{`, and its tail, from `}`, as three-way scalars; its body
   recursively); else it is a `Conflict` (a deletion against an edit, or two additions
   of one key with different text, always are). The order is ours, unless only theirs
   reordered the units common with the base; a unit added by the other side goes after
   the unit it followed there, and when both added units at one place, ours come first.

3. **Key paths across units.** `db.pool = 6` and `db { pool = 7 }` are different units of
   one body, and `services.billing.replicas = 3` at the top of the module is a different
   unit from the `replicas` inside `services { billing { … } }`. Every change taken from
   one side records the key paths it touches (a block, the paths of its fields; a field
   set whole, its own path); a change of ours and a change of theirs in different units
   whose paths are equal or one inside the other (`db` and `db.pool`) are a conflict too.

4. **Splice.** The result is the concatenation of the chosen units' source text, so every
   untouched part keeps its bytes, comments and layout; nothing is reformatted. A
   conflicting unit is written between git-style markers (`<<<<<<< ours`, `=======`,
   `>>>>>>> theirs`) holding each side's version, so a user can resolve the file by hand.
   A clean result that does not parse (which would be a bug here) is reported as one
   conflict on the whole file rather than returned.

With an unchanged side the result is the other side, byte for byte; with two identical
sides, that text. None stands for an absent file (added on both sides, or deleted on
one). The decisions are described for users in docs/merge.md.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence

import attrs

from cfglang import datapath
from cfglang.diagnostics import Diagnostic
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast
from cfglang.syntax.parser import parse_module

__all__ = ["Conflict", "MergeResult", "merge", "render_markers"]

OURS_MARKER = "<<<<<<< ours"
SEP_MARKER = "======="
THEIRS_MARKER = ">>>>>>> theirs"


@attrs.frozen
class Conflict:
    """Two edits of one statement or key path that cannot both be kept.

    ``path`` is the key path (`services.billing.db.pool`) or the statement's name
    (`let domain`, `import net`, `schema Service.port`); ``base``, ``theirs`` and ``yours``
    are each version's source text, None where the statement is absent (added, or
    deleted). In `cflc merge`, yours is OURS (the current branch) and theirs is THEIRS.
    """

    path: str
    base: str | None
    theirs: str | None
    yours: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"path": self.path, "base": self.base, "theirs": self.theirs, "yours": self.yours}


@attrs.frozen
class MergeResult:
    """The outcome of `merge`.

    ``text`` is the merged source (with conflict markers around the conflicting units when
    there are ``conflicts``), or None when an input does not parse (``diagnostics``) or
    when the merge deletes the file (``deleted``: one side deleted it, the other left it).
    """

    text: str | None
    conflicts: tuple[Conflict, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    deleted: bool = False

    @property
    def clean(self) -> bool:
        """Merged without conflicts: ``text`` is the result (None if ``deleted``)."""
        return (self.text is not None or self.deleted) and not self.conflicts


# ---- units ------------------------------------------------------------------------------------

Ident = tuple[object, ...]
KeyPath = tuple[str, ...]

# The rest of a statement's last line that still belongs to it: a `;`, a comment.
_REST = re.compile(r"[ \t]*;?[ \t]*(#[^\n]*)?\r?\n?")
_LABEL = "\x00"  # marks a path segment that names a statement, not a key


@attrs.frozen(eq=False)
class _Nested:
    """A unit with a body merged inside: ``head`` (up to the `{` line's end), the body,
    ``tail`` (from the `}` line's start)."""

    head: str
    body: _Body
    tail: str
    code: str  # the statement's text up to `{`: what a change of the head changes


@attrs.frozen(eq=False)
class _Unit:
    ident: Ident
    keys: KeyPath  # the path segments this unit adds to its body's prefix
    gap: str  # blank lines and detached comments before it
    text: str  # its own lines: attached comments, the statement, a trailing comment
    touched: frozenset[KeyPath]
    nested: _Nested | None
    lead: int  # how much of ``text`` is the comment lines above the statement

    @property
    def full(self) -> str:
        return self.gap + self.text

    @property
    def comments(self) -> str:
        return self.text[: self.lead]

    @property
    def stmt(self) -> str:
        return self.text[self.lead :]


@attrs.frozen(eq=False)
class _Body:
    units: tuple[_Unit, ...]
    suffix: str  # what follows the last unit up to the `}` line (or the end of the file)


class _Cutter:
    """Cuts one parsed version into units."""

    def __init__(self, text: str) -> None:
        self.text = text

    def line_start(self, off: int) -> int:
        return self.text.rfind("\n", 0, off) + 1

    def line_end(self, off: int) -> int:
        """The offset after the newline of the line holding ``off`` (or the text's end)."""
        nl = self.text.find("\n", off)
        return len(self.text) if nl < 0 else nl + 1

    def seg(self, span: Span) -> str:
        return self.text[span.start : span.end]

    # -- identities --

    def key_segment(self, key: ast.Key) -> str:
        static = key.static
        return static if static is not None else self.seg(key.span)

    def describe(self, stmt: ast.Stmt) -> tuple[Ident, KeyPath]:
        """The identity of a statement in its body and the path segments it names."""
        if isinstance(stmt, ast.Field):
            keys = tuple(self.key_segment(k) for k in stmt.path)
            return ("field", keys), keys
        label: str
        if isinstance(stmt, ast.Unset):
            label = "unset " + _render_keys(tuple(self.key_segment(k) for k in stmt.path))
        elif isinstance(stmt, ast.LetDecl):
            label = f"let {stmt.name}"
        elif isinstance(stmt, ast.InputDecl):
            label = f"input {stmt.name}"
        elif isinstance(stmt, ast.TypeDecl):
            label = f"type {stmt.name}"
        elif isinstance(stmt, ast.SchemaDecl):
            label = f"schema {stmt.name}"
        elif isinstance(stmt, ast.TemplateDecl):
            label = f"template {stmt.name}"
        elif isinstance(stmt, ast.OutputDecl):
            label = "output " + json.dumps(stmt.label, ensure_ascii=False)
        elif isinstance(stmt, ast.Import):
            label = f"import {stmt.alias}"
        elif isinstance(stmt, ast.ExtendsDecl):
            label = "extends"
        elif isinstance(stmt, ast.CheckStmt):
            label = "check " + _squash(self.seg(stmt.expr.span))
        elif isinstance(stmt, ast.IfStmt):
            label = "if " + _squash(self.seg(stmt.cond.span))
        else:
            head = f"{stmt.key_var}, {stmt.var}" if stmt.key_var else stmt.var
            label = f"for {head} in " + _squash(self.seg(stmt.iterable.span))
        return (label,), (_LABEL + label,)

    def touched(self, stmt: ast.Stmt, prefix: KeyPath, keys: KeyPath) -> frozenset[KeyPath]:
        """The key paths a statement defines (below ``prefix``, the body's path)."""
        if isinstance(stmt, ast.Field):
            if stmt.op == "merge" and stmt.body is not None and stmt.body.stmts:
                return self.field_paths(stmt.body.stmts, prefix + keys)
            return frozenset([prefix + keys])
        paths = {prefix + keys}
        if isinstance(stmt, ast.IfStmt):
            branch: ast.Body | ast.IfStmt | None = stmt
            while isinstance(branch, ast.IfStmt):
                paths |= self.field_paths(branch.then.stmts, prefix)
                branch = branch.orelse
            if branch is not None:
                paths |= self.field_paths(branch.stmts, prefix)
        elif isinstance(stmt, ast.ForStmt):
            paths |= self.field_paths(stmt.body.stmts, prefix)
        return frozenset(paths)

    def field_paths(self, stmts: Sequence[ast.Stmt], prefix: KeyPath) -> frozenset[KeyPath]:
        out: set[KeyPath] = set()
        for s in stmts:
            _, keys = self.describe(s)
            out |= self.touched(s, prefix, keys)
        return frozenset(out)

    # -- cutting --

    def body(
        self, stmts: Sequence[ast.Stmt], lo: int, hi: int, prefix: KeyPath, *, module: bool
    ) -> _Body | None:
        """The units of the statements between offsets ``lo`` and ``hi``; None for a nested
        body whose statements do not each start a line of their own."""
        text = self.text
        groups: list[list[ast.Stmt]] = []
        prev_end = lo
        for s in stmts:
            # On a line after the previous statement's end (or the body's first line),
            # with only indentation before it.
            ls = self.line_start(s.span.start)
            own_line = ls >= prev_end and not text[ls : s.span.start].strip()
            if not own_line and groups:
                if not module:
                    return None
                groups[-1].append(s)
            elif not own_line and not module:
                return None
            else:
                groups.append([s])
            prev_end = s.span.end
        units: list[_Unit] = []
        seen: dict[Ident, int] = {}
        pos = lo
        for group in groups:
            first, last = group[0], group[-1]
            start = stmt_start = self.line_start(first.span.start)
            # Comment lines right above (no blank line between) belong to the statement.
            while start > pos:
                above = self.line_start(start - 1)
                if above < pos or not text[above:start].lstrip().startswith("#"):
                    break
                start = above
            rest = _REST.match(text, last.span.end, hi)
            end = last.span.end
            if rest is not None and (rest.end() == hi or text[rest.end() - 1] == "\n"):
                end = rest.end()
            described = [self.describe(s) for s in group]
            ident: Ident = tuple(d[0] for d in described) if len(group) > 1 else described[0][0]
            keys: KeyPath = described[0][1]
            if len(group) > 1:
                keys = (_LABEL + "; ".join(_display(k) for _, k in described),)
            n = seen.get(ident, 0)
            seen[ident] = n + 1
            nested = self.nested(first, start, end, prefix + keys) if len(group) == 1 else None
            touched: frozenset[KeyPath]
            if nested is not None and isinstance(first, ast.Field) and first.op == "merge":
                touched = frozenset().union(*(u.touched for u in nested.body.units))
            else:
                touched = frozenset().union(
                    *(
                        self.touched(s, prefix, k)
                        for s, (_, k) in zip(group, described, strict=True)
                    )
                )
            units.append(
                _Unit(
                    (*ident, n),
                    keys,
                    text[pos:start],
                    text[start:end],
                    touched,
                    nested,
                    stmt_start - start,
                )
            )
            pos = end
        return _Body(tuple(units), text[pos:hi])

    def nested(self, stmt: ast.Stmt, start: int, end: int, path: KeyPath) -> _Nested | None:
        body: ast.Body | None = None
        if isinstance(stmt, ast.Field):
            body = stmt.body
            if body is None and isinstance(stmt.value, (ast.Refine, ast.ObjectLit)):
                body = stmt.value.body
        elif isinstance(stmt, (ast.SchemaDecl, ast.TemplateDecl)):
            body = stmt.body
        if body is None or not body.stmts:
            return None
        text = self.text
        open_, close = body.span.start, body.span.end - 1
        after_open = _REST.match(text, open_ + 1)
        if after_open is None or not after_open.group(0).endswith("\n"):
            return None  # something follows `{` on its line
        inner_lo, inner_hi = after_open.end(), self.line_start(close)
        if text[inner_hi:close].strip() or inner_hi < inner_lo:
            return None  # `}` does not start its line
        inner = self.body(body.stmts, inner_lo, inner_hi, path, module=False)
        if inner is None:
            return None
        return _Nested(
            text[start:inner_lo], inner, text[inner_hi:end], text[stmt.span.start : open_]
        )


def _squash(text: str) -> str:
    return " ".join(text.split())


def _render_keys(keys: KeyPath) -> str:
    return _display(keys)


def _display(path: KeyPath) -> str:
    """A key path as users read it: `services.billing.db.pool`, `template Svc.labels`."""
    out = ""
    for seg in path:
        piece = seg[1:] if seg.startswith(_LABEL) else datapath.render([seg])
        if out and not piece.startswith("["):
            out += "."
        out += piece
    return out


# ---- merging ----------------------------------------------------------------------------------


@attrs.frozen
class _Region:
    """A conflicting unit in the output: each side's version between markers."""

    ours: str
    theirs: str


_Piece = str | _Region
UnitPath = tuple[Ident, ...]


@attrs.frozen
class _Change:
    """A change taken from one side: where, and the key paths it touches."""

    upath: UnitPath
    touched: frozenset[KeyPath]
    base: _Unit | None
    new: _Unit | None
    agreed: bool = False  # both sides made it


_CONFLICT = object()  # a scalar both sides changed differently


def _scalar(b: str | None, o: str, t: str) -> object:
    if o == t or t == b:
        return o
    if o == b:
        return t
    return _CONFLICT


class _Merger:
    def __init__(self, forced: frozenset[UnitPath] = frozenset()) -> None:
        self.forced = forced
        # The units holding a forced one: merged inside even when one side kept them.
        self.above = frozenset(p[:n] for p in forced for n in range(1, len(p)))
        self.conflicts: list[Conflict] = []
        self.ours: list[_Change] = []
        self.theirs: list[_Change] = []

    def body(
        self,
        b: _Body | None,
        o: _Body,
        t: _Body,
        upath: UnitPath,
        prefix: KeyPath,
    ) -> list[_Piece]:
        bunits = b.units if b is not None else ()
        bmap = {u.ident: u for u in bunits}
        omap = {u.ident: u for u in o.units}
        tmap = {u.ident: u for u in t.units}
        border = [u.ident for u in bunits]
        oorder = [u.ident for u in o.units]
        torder = [u.ident for u in t.units]
        skeleton_ours = not (_reordered(border, torder) and not _reordered(border, oorder))
        skel, other = (oorder, torder) if skeleton_ours else (torder, oorder)
        order = _interleave(skel, other, set(bmap), skeleton_ours)
        pieces: list[_Piece] = []
        for ident in order:
            pieces += self.unit(
                bmap.get(ident), omap.get(ident), tmap.get(ident), (*upath, ident), prefix
            )
        for ident in border:
            if ident not in omap and ident not in tmap:
                self.unit(bmap[ident], None, None, (*upath, ident), prefix)  # noted, not kept
        return pieces

    def unit(
        self,
        b: _Unit | None,
        o: _Unit | None,
        t: _Unit | None,
        upath: UnitPath,
        prefix: KeyPath,
    ) -> list[_Piece]:
        bf, of, tf = (u.full if u is not None else None for u in (b, o, t))
        if upath in self.forced:
            return [_Region(of or "", tf or "")]
        if upath in self.above and o is not None and t is not None:
            merged = self.nested(b, o, t, upath, prefix)
            if merged is not None:
                return merged
        if of == tf:
            if of != bf:
                # Agreed, but noted on both sides: a unit of the same keys changed
                # elsewhere by one side still meets it (a block both deleted, and one
                # side's `db.pool = 5` that moved a key of it out).
                self.record(self.ours, upath, b, o, prefix, agreed=True)
                self.record(self.theirs, upath, b, t, prefix, agreed=True)
            return [of] if of else []
        if of == bf:
            self.record(self.theirs, upath, b, t, prefix)
            return [tf] if tf else []
        if tf == bf:
            self.record(self.ours, upath, b, o, prefix)
            return [of] if of else []
        if o is not None and t is not None:
            gap = _scalar(b.gap if b else None, o.gap, t.gap)
            lead = _scalar(b.comments if b else None, o.comments, t.comments)
            stmt = _scalar(b.stmt if b else None, o.stmt, t.stmt)
            if isinstance(lead, str) and isinstance(stmt, str):
                # One side changed the comments above, the other the statement (or only
                # the blank lines before it differ): both are kept.
                if b is None or o.stmt != b.stmt:
                    self.record(self.ours, upath, b, o, prefix, agreed=o.stmt == t.stmt)
                if b is None or t.stmt != b.stmt:
                    self.record(self.theirs, upath, b, t, prefix, agreed=o.stmt == t.stmt)
                return [(gap if isinstance(gap, str) else o.gap) + lead + stmt]
            merged = self.nested(b, o, t, upath, prefix)
            if merged is not None:
                return merged
        unit = o or t or b
        assert unit is not None
        self.conflicts.append(Conflict(_display(prefix + unit.keys), _core(b), _core(t), _core(o)))
        return [_Region(of or "", tf or "")]

    def nested(
        self, b: _Unit | None, o: _Unit, t: _Unit, upath: UnitPath, prefix: KeyPath
    ) -> list[_Piece] | None:
        on, tn = o.nested, t.nested
        if on is None or tn is None or (b is not None and b.nested is None):
            return None
        bn = b.nested if b is not None else None
        head = _scalar(bn.head if bn else None, on.head, tn.head)
        tail = _scalar(bn.tail if bn else None, on.tail, tn.tail)
        suffix = _scalar(bn.body.suffix if bn else None, on.body.suffix, tn.body.suffix)
        if not (isinstance(head, str) and isinstance(tail, str) and isinstance(suffix, str)):
            return None
        for side, unit in ((self.ours, o), (self.theirs, t)):
            new = unit.nested
            assert new is not None
            if bn is not None and new.code != bn.code and head == new.head:
                # A changed head (say `db {` to `db = {`) may change the whole block.
                side.append(_Change(upath, frozenset([prefix + o.keys]), b, unit))
        gap = _scalar(b.gap if b else None, o.gap, t.gap)
        inner = self.body(bn.body if bn else None, on.body, tn.body, upath, prefix + o.keys)
        return [(gap if isinstance(gap, str) else o.gap) + head, *inner, suffix, tail]

    def record(
        self,
        side: list[_Change],
        upath: UnitPath,
        b: _Unit | None,
        new: _Unit | None,
        prefix: KeyPath,
        *,
        agreed: bool = False,
    ) -> None:
        """Note a change taken from one side, at the innermost units it changed."""
        if b is not None and new is not None and b.text == new.text:
            return  # only the gap before it changed
        bn, nn = (b.nested, new.nested) if b is not None and new is not None else (None, None)
        if b is not None and bn is not None and nn is not None:
            if bn.code != nn.code:
                # A changed head (say `db {` to `db = {`) may change the whole block.
                side.append(_Change(upath, frozenset([prefix + b.keys]), b, new, agreed))
            bmap = {u.ident: u for u in bn.body.units}
            nmap = {u.ident: u for u in nn.body.units}
            for ident in dict.fromkeys([*bmap, *nmap]):
                inner = (*upath, ident)
                self.record(
                    side, inner, bmap.get(ident), nmap.get(ident), prefix + b.keys, agreed=agreed
                )
            return
        touched = (b.touched if b else frozenset()) | (new.touched if new else frozenset())
        side.append(_Change(upath, touched, b, new, agreed))

    def crossed(self) -> list[tuple[_Change, _Change, KeyPath]]:
        """Pairs of changes, one per side, in different units touching one key path."""
        exact: dict[KeyPath, list[int]] = {}
        below: dict[KeyPath, list[int]] = {}
        for i, c in enumerate(self.theirs):
            for p in c.touched:
                exact.setdefault(p, []).append(i)
                for n in range(1, len(p)):
                    below.setdefault(p[:n], []).append(i)
        out: list[tuple[_Change, _Change, KeyPath]] = []
        seen: set[tuple[UnitPath, UnitPath]] = set()
        for c in self.ours:
            for p in sorted(c.touched):
                hits = [(j, p[:n]) for n in range(1, len(p) + 1) for j in exact.get(p[:n], [])]
                hits += [(j, p) for j in below.get(p, [])]
                for j, where in hits:
                    d = self.theirs[j]
                    if (c.agreed and d.agreed) or _related(c.upath, d.upath):
                        continue
                    if (c.upath, d.upath) in seen:
                        continue
                    seen.add((c.upath, d.upath))
                    out.append((c, d, where))
        return out


def _related(a: UnitPath, b: UnitPath) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _core(u: _Unit | None) -> str | None:
    """A unit's own text as a conflict shows it: dedented, without the final newline."""
    return None if u is None else textwrap.dedent(u.text).rstrip("\r\n")


def _reordered(base: list[Ident], side: list[Ident]) -> bool:
    bset, sset = set(base), set(side)
    return [i for i in side if i in bset] != [i for i in base if i in sset]


def _interleave(skel: list[Ident], other: list[Ident], base: set[Ident], ours: bool) -> list[Ident]:
    """The skeleton's order with the other side's units inserted, each after the unit it
    followed on its side; ours come first among units added at one place."""
    result = list(skel)
    present = set(result)
    other_set = set(other)
    skel_added = {i for i in skel if i not in base and i not in other_set}
    prev: Ident | None = None
    for ident in other:
        if ident not in present:
            pos = result.index(prev) + 1 if prev is not None else 0
            if ours:
                while pos < len(result) and result[pos] in skel_added:
                    pos += 1
            result.insert(pos, ident)
            present.add(ident)
        prev = ident
    return result


def render_markers(pieces: Sequence[_Piece]) -> str:
    """The merged text: plain pieces as they are, conflicts between git-style markers."""
    out: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        if isinstance(piece, str):
            out.append(piece)
            continue
        out.append(OURS_MARKER + "\n")
        out.append(_line(piece.ours))
        out.append(SEP_MARKER + "\n")
        out.append(_line(piece.theirs))
        out.append(THEIRS_MARKER + "\n")
    return "".join(out)


def _line(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


# ---- the entry point --------------------------------------------------------------------------


def merge(
    base: str | None,
    ours: str | None,
    theirs: str | None,
    *,
    path: str,
    names: tuple[str, str, str] | None = None,
) -> MergeResult:
    """Merge two edits (``ours``, ``theirs``) of the `.cfl` source ``base``.

    None stands for an absent file: a base of None (the file added on both sides) merges
    as an empty one; a side of None deleted the file, which is the result when the other
    side left it as in the base, and a conflict (`(file)`) when the other changed it.
    ``path`` is the file's name, used in conflicts and, suffixed `@base`, `@ours` and
    `@theirs`, in the diagnostics of a version that does not parse (``names`` gives other
    names to show, such as the paths of the three files `cflc merge` read).
    """
    shown = names or (f"{path}@base", f"{path}@ours", f"{path}@theirs")
    modules: list[ast.Module] = []
    diags: list[Diagnostic] = []
    for name, text in zip(shown, (base, ours, theirs), strict=True):
        module, found = parse_module(SourceFile(name, text or ""))
        errors = [d for d in found if d.is_error]
        if module is None or errors:
            diags += errors or found
        else:
            modules.append(module)
    if diags:
        return MergeResult(None, (), tuple(diags))
    if ours == theirs or theirs == base:
        return MergeResult(ours, deleted=ours is None)
    if ours == base:
        return MergeResult(theirs, deleted=theirs is None)
    if ours is None or theirs is None:
        whole = Conflict("(file)", base, theirs, ours)
        return MergeResult(render_markers([_Region(ours or "", theirs or "")]), (whole,))
    base = base or ""
    try:
        bodies = [
            _Cutter(text).body(m.body.stmts, 0, len(text), (), module=True)
            for m, text in zip(modules, (base, ours, theirs), strict=True)
        ]
        b, o, t = (x for x in bodies if x is not None)
        merger = _Merger()
        pieces = _module(merger, b, o, t)
        conflicts = list(merger.conflicts)
        crossed = merger.crossed()
        if crossed:
            for c, d, where in crossed:
                bases = [u.text for u in (c.base, d.base) if u is not None]
                # Sorted: swapping the two sides gives the same conflict.
                based = "\n".join(sorted({textwrap.dedent(x).rstrip() for x in bases}))
                conflicts.append(
                    Conflict(_display(where), based or None, _core(d.new), _core(c.new))
                )
            forced = frozenset(x for c, d, _ in crossed for x in (c.upath, d.upath))
            pieces = _module(_Merger(forced), b, o, t)
    except RecursionError:
        return MergeResult(
            None,
            (),
            (
                Diagnostic(
                    "E0502",
                    "the file is nested too deeply to merge",
                    Span(SourceFile(path, ""), 0, 0),
                ),
            ),
        )
    text = render_markers(pieces)
    if not conflicts:
        module, found = parse_module(SourceFile(path, text))
        if module is None or any(d.is_error for d in found):
            whole = Conflict("(file)", base, theirs, ours)
            return MergeResult(render_markers([_Region(ours, theirs)]), (whole,))
    return MergeResult(text, tuple(conflicts))


def _module(merger: _Merger, b: _Body, o: _Body, t: _Body) -> list[_Piece]:
    pieces = merger.body(b, o, t, (), ())
    suffix = _scalar(b.suffix, o.suffix, t.suffix)
    if isinstance(suffix, str):
        pieces.append(suffix)
    else:
        merger.conflicts.append(Conflict("(end of file)", b.suffix, t.suffix, o.suffix))
        pieces.append(_Region(o.suffix, t.suffix))
    return pieces
