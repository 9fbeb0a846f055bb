"""The formatter: `format_source` prints a module in the one canonical CFL style.

The algorithm has three steps.

1. **Parse and lex.** The text is parsed to the syntax tree; a syntax error raises
   `FormatError` with the diagnostics. The text is also lexed once more, keeping the
   tokens the grammar ignores: the comments (with their offsets) and, for a few
   constructs whose tree keeps only a decoded value (`from env "X"`, a check's message),
   the spelling of the token.

2. **Build a layout document.** A printer walks the tree and builds a small Wadler/Prettier
   style document: text, soft line breaks (a space or nothing when their group fits on one
   line, a new line otherwise), hard line breaks, groups, indentation and trailing-comment
   suffixes. Literals (numbers, durations, sizes, strings of every kind, quoted keys) are
   printed from their source text, so the user's spelling survives. Parentheses are
   printed where the user wrote them or where precedence needs them.

   Comments are placed by position. Every bracketed sequence (a `{ … }` body, the module,
   a list, call arguments, template parameters) looks at the gaps between its elements:
   a comment on the same line as the end of the previous element (or as the opening
   bracket) stays a trailing comment; any other is an own-line comment before the next
   element (or before the closing bracket). A comment inside an element that no inner
   sequence claimed (say, between an operator and its operand) is moved to its own line
   before the statement, above its `##` doc comments so the doc still attaches. A run of
   blank lines between two elements becomes one blank line.

3. **Render.** Groups are laid out greedily: a group is printed flat when it fits in the
   remaining width (up to the next forced line break), otherwise broken. A group the user
   wrote with a line break after its opening bracket, or holding a comment, is always
   broken, so the user's choice of one-line or multi-line containers is kept and the
   output formats to itself. A `( … )` or `[ … ]` written on one line is never broken.
   Last, trailing comments of consecutive one-line elements are aligned (as gofmt does).

A `##` comment documents the statement that follows it. Moving comments could change
that, so a `##` comment that documented nothing in the source but would document a
statement after formatting (hoisted, or separated by a `;` the output drops) is printed
with one `#`; the tests check that trees, doc strings included, never change.

The style is described in docs/style.md.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from functools import partial

import attrs

from cfglang.diagnostics import Diagnostic
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast
from cfglang.syntax.build import INT_MIN, PRECEDENCE
from cfglang.syntax.parser import continues_after, lex_tokens, parse_module

WIDTH = 100
INDENT = 2

__all__ = ["INDENT", "WIDTH", "FormatError", "format_source"]


class FormatError(Exception):
    """The text cannot be formatted: it has syntax errors (``diagnostics`` says which)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "cannot format")
        self.diagnostics = tuple(diagnostics)


def format_source(text: str, filename: str = "<stdin>") -> str:
    """Return ``text`` in canonical style; raise `FormatError` on a syntax error."""
    source = SourceFile(filename, text)
    module, diags = parse_module(source)
    errors = [d for d in diags if d.is_error]
    if module is None or errors:
        raise FormatError(errors or diags)
    try:
        doc = _Printer(source, lex_tokens(source)).module(module)
        out = _render(doc, WIDTH)
    except RecursionError:
        raise FormatError(
            [Diagnostic("E0502", "the file is nested too deeply to format", Span(source, 0, 0))]
        ) from None
    return out + "\n" if out else ""


# ---- the layout document ------------------------------------------------------------------


@attrs.frozen
class _Line:
    """A line break. Soft ones print ``flat`` when their group fits on one line."""

    flat: str = " "
    hard: bool = False
    blank: bool = False  # a hard break that also leaves one empty line


@attrs.frozen
class _Group:
    parts: Doc
    broken: bool  # forced: the user broke it, or it holds a comment or a hard break
    flat: bool = False  # forced flat: a one-line sequence the user kept on one line


@attrs.frozen
class _Nest:
    parts: Doc


@attrs.frozen
class _IfBreak:
    broken: str
    flat: str


@attrs.define(eq=False)
class _Start:
    """Marks where an element starts; the renderer notes the line (see `_align`)."""

    line: int = -1


@attrs.frozen
class _Suffix:
    """A trailing comment: printed in place, but takes no room when measuring a fit.

    ``start`` marks the start of the element it trails (None after an opening bracket).
    """

    text: str
    start: _Start | None = None


Doc = str | _Line | _Group | _Nest | _IfBreak | _Suffix | _Start | list["Doc"]

_SOFT = _Line(" ")
_SOFT_EMPTY = _Line("")
_HARD = _Line("", hard=True)
_BLANK = _Line("", hard=True, blank=True)


def _has_hard(doc: Doc) -> bool:
    if isinstance(doc, _Line):
        return doc.hard
    if isinstance(doc, list):
        return any(_has_hard(d) for d in doc)
    if isinstance(doc, _Nest):
        return _has_hard(doc.parts)
    if isinstance(doc, _Group):
        return doc.broken and _has_hard(doc.parts)
    return False


def _group(parts: Doc, broken: bool, flat: bool = False) -> _Group:
    # A hard break inside a group breaks every group around it; a group broken only by
    # the user's choice does not (so `f({` … `})` can keep its call on one line).
    broken = broken or _has_hard(parts)
    return _Group(parts, broken, flat and not broken)


_Cmd = tuple[int, bool, Doc]  # (indent, flat?, doc)


def _fits(doc: Doc, rest: list[_Cmd], width: int) -> bool:
    """Whether ``doc`` printed flat, plus what follows up to the next line break, fits."""
    cmds: list[tuple[bool, Doc]] = [(True, doc)]
    ri = len(rest)
    while width >= 0:
        if not cmds:
            if ri == 0:
                return True
            ri -= 1
            cmds.append((rest[ri][1], rest[ri][2]))
            continue
        flat, d = cmds.pop()
        if isinstance(d, str):
            nl = d.find("\n")
            if nl >= 0:
                return width - nl >= 0
            width -= len(d)
        elif isinstance(d, list):
            cmds.extend((flat, x) for x in reversed(d))
        elif isinstance(d, _Nest):
            cmds.append((flat, d.parts))
        elif isinstance(d, _Group):
            cmds.append((flat and not d.broken, d.parts))
        elif isinstance(d, _Line):
            if not flat or d.hard:
                return True
            width -= len(d.flat)
        elif isinstance(d, _IfBreak):
            width -= len(d.flat if flat else d.broken)
    return False


def _render(doc: Doc, width: int) -> str:
    out: list[str] = []
    col = line = line_indent = 0
    # Indentation is written lazily, before the next text, so no line ends in spaces.
    pending: int | None = None
    # (line, its indentation, column) of each trailing comment that may be aligned
    suffixes: list[tuple[int, int, int]] = []
    stack: list[_Cmd] = [(0, False, doc)]

    def write(text: str) -> None:
        nonlocal col, line, pending
        if not text:
            return
        if pending is not None:
            out.append(" " * pending)
            col, pending = pending, None
        out.append(text)
        nl = text.rfind("\n")
        if nl >= 0:
            line += text.count("\n")
            col = len(text) - nl - 1
        else:
            col += len(text)

    while stack:
        ind, flat, d = stack.pop()
        if isinstance(d, str):
            write(d)
        elif isinstance(d, list):
            stack.extend((ind, flat, x) for x in reversed(d))
        elif isinstance(d, _Nest):
            # A flat group adds no indentation: a broken group inside it (`f({` … `})`)
            # indents from the line it starts on.
            stack.append((ind if flat else ind + INDENT, flat, d.parts))
        elif isinstance(d, _Group):
            if d.broken:
                mode = False
            elif flat or d.flat:
                mode = True
            else:
                here = pending if pending is not None else col
                mode = _fits(d.parts, stack, width - here)
            stack.append((ind, mode, d.parts))
        elif isinstance(d, _Line):
            if flat and not d.hard:
                write(d.flat)
            else:
                out.append("\n\n" if d.blank else "\n")
                line += 2 if d.blank else 1
                col, pending, line_indent = 0, ind, ind
        elif isinstance(d, _IfBreak):
            write(d.flat if flat else d.broken)
        elif isinstance(d, _Start):
            d.line = line
        else:
            if d.start is not None and d.start.line == line:
                suffixes.append((line, line_indent, col))
            write(d.text)
    return _align(("".join(out)), suffixes)


def _align(text: str, suffixes: list[tuple[int, int, int]]) -> str:
    """Align the trailing comments of consecutive one-line elements at one indentation,
    two spaces after the longest code (as gofmt does), so that a column of comments the
    author lined up stays lined up."""
    lines = text.split("\n")
    run: list[tuple[int, int, int]] = []
    for i, cur in enumerate(suffixes):
        run.append(cur)
        nxt = suffixes[i + 1] if i + 1 < len(suffixes) else None
        if nxt is not None and nxt[0] == cur[0] + 1 and nxt[1] == cur[1]:
            continue
        target = max(c for _, _, c in run)
        for ln, _, c in run:
            lines[ln] = lines[ln][:c] + " " * (target - c) + lines[ln][c:]
        run = []
    return "\n".join(lines)


# ---- the printer ---------------------------------------------------------------------------

_UNARY_PREC = 6
_POSTFIX_PREC = 7


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.Literal) and type(e.value) is int and e.value == INT_MIN:
        return _UNARY_PREC  # printed `-9223372036854775808`: a minus and a literal
    if isinstance(e, ast.IfExpr):
        return 0
    if isinstance(e, ast.Binary):
        return PRECEDENCE[e.op]
    if isinstance(e, ast.Unary):
        return _UNARY_PREC
    return _POSTFIX_PREC


def _undoc(comment: str) -> str:
    return comment[1:] if comment.startswith("##") else comment


@attrs.define
class _Entry:
    """One line-level item of a sequence: an element, or an own-line comment."""

    start: int
    end: int
    doc: Doc | None  # None for a comment
    comment: str = ""
    trailing: str | None = None
    is_doc: bool = False  # a `##` comment
    glue: bool = False  # ends in a token a line break does not end (`a.extends`): needs `;`


@attrs.frozen
class _Elem:
    start: int
    end: int
    build: Callable[[], Doc]


class _Printer:
    def __init__(self, source: SourceFile, tokens: list[tuple[str, int, int]]) -> None:
        self.text = source.text
        self.comments = [(s, e) for t, s, e in tokens if t == "COMMENT"]
        self.comment_starts = [s for s, _ in self.comments]
        self.comment_start_set = set(self.comment_starts)
        self.used = [False] * len(self.comments)
        code = [(t, s, e) for t, s, e in tokens if t not in ("COMMENT", "_NL")]
        self.code_starts = [s for _, s, _ in code]
        self.code = code
        self.token_by_end = {e: s for _, s, e in code}
        # Matching closer of every bracket, by the opener's offset: tells a pair of
        # parentheses the user wrote around an expression from `(a) + (b)`.
        self.closer: dict[int, int] = {}
        stack: list[int] = []
        for t, s, e in code:
            if t in ("LPAR", "LSQB", "LBRACE"):
                stack.append(s)
            elif t in ("RPAR", "RSQB", "RBRACE") and stack:
                self.closer[stack.pop()] = e

    # -- comments and sequences ------------------------------------------------------------

    def _take_comments(self, start: int, end: int) -> list[tuple[int, int]]:
        """The unclaimed comments starting in [start, end); they are claimed."""
        out = []
        i = bisect.bisect_left(self.comment_starts, start)
        while i < len(self.comments) and self.comments[i][0] < end:
            if not self.used[i]:
                self.used[i] = True
                out.append(self.comments[i])
            i += 1
        return out

    def _comment_text(self, c: tuple[int, int]) -> str:
        return self.text[c[0] : c[1]].rstrip()

    def _entries(
        self, start: int, end: int, elems: Sequence[_Elem], bracketed: bool = True
    ) -> tuple[str | None, list[_Entry]]:
        """Elements and comments of the region [start, end), in order.

        Returns the comment on the opening bracket's line (if any) and the entries.
        """
        opener: str | None = None
        entries: list[_Entry] = []
        prev_end = start

        def gap(upto: int) -> None:
            nonlocal opener, prev_end
            for c in self._take_comments(prev_end, upto):
                text = self._comment_text(c)
                if text.startswith("##") and self._detached(c[1], upto):
                    text = _undoc(text)
                same_line = "\n" not in self.text[prev_end : c[0]]
                if same_line and bracketed and not entries and opener is None:
                    opener = text
                elif same_line and entries and entries[-1].trailing is None:
                    entries[-1].trailing = text
                    entries[-1].end = c[1]
                else:
                    entries.append(_Entry(c[0], c[1], None, text, is_doc=text.startswith("##")))
                prev_end = c[1]

        for i, el in enumerate(elems):
            gap(el.start)
            doc = el.build()
            el_end = self._true_end(el.end, elems[i + 1].start if i + 1 < len(elems) else end)
            inner = self._take_comments(el.start, el_end)
            if inner:
                # Comments no inner sequence could place: put them on their own lines
                # before the element, but above its doc comments, which must stay
                # directly above it to remain attached.
                at = len(entries)
                while at > 0 and entries[at - 1].is_doc and entries[at - 1].trailing is None:
                    at -= 1
                if (
                    at > 0
                    and (entries[at - 1].trailing or "").startswith("##")
                    and not entries[at - 1].is_doc
                ):
                    # `a = 1  ## doc` documents the next statement (with the `##` lines
                    # below it); the hoisted comments would come between them, so the doc
                    # moves to its own line below.
                    prev = entries[at - 1]
                    to = entries[at].start if at < len(entries) else el.start
                    entries.insert(at, _Entry(to, to, None, prev.trailing or "", is_doc=True))
                    prev.trailing = None
                pos = entries[at].start if at < len(entries) else el.start
                # A `##` here documented nothing (no statement follows it inside an
                # expression); above the statement it would document it, so it loses a `#`.
                entries[at:at] = [
                    _Entry(pos, pos, None, _undoc(self._comment_text(c))) for c in inner
                ]
            last = self.code[bisect.bisect_left(self.code_starts, el_end) - 1]
            glue = continues_after(last[0], self.text[last[1] : last[2]])
            entries.append(_Entry(el.start, el_end, doc, glue=glue))
            prev_end = el_end
        gap(end)
        return opener, entries

    def _detached(self, pos: int, upto: int) -> bool:
        """Whether a `##` comment ending at ``pos`` documents nothing because a separator
        (`;`, `,`) stands between it and the next element. The output drops or moves the
        separator, which would attach the comment; it is printed with one `#` less."""
        n = len(self.text)
        while pos < n and self.text[pos] in " \t\r\n":
            pos += 1
        return pos < upto and pos not in self.comment_start_set

    def _true_end(self, end: int, limit: int) -> int:
        """Where an element really ends: the tree drops a type's parentheses, so the span
        of `x: (int | string)` stops before the `)`."""
        i = bisect.bisect_left(self.code_starts, end)
        while i < len(self.code) and self.code[i][0] == "RPAR" and self.code[i][1] < limit:
            end = self.code[i][2]
            i += 1
        return end

    def _blank_before(self, prev: _Entry, cur: _Entry) -> bool:
        return self.text[prev.end : cur.start].count("\n") >= 2

    def _sequence(
        self,
        open_: str,
        close: str,
        start: int,
        end: int,
        elems: Sequence[_Elem],
        sep: str,
        pad: str,
    ) -> Doc:
        """A bracketed sequence: ``open_`` at ``start - 1``, ``close`` at ``end``.

        ``sep`` separates elements when flat (``;`` in bodies, ``,`` in lists, where it
        also ends every element, and the last one, when broken).

        Bodies written on one line are broken when too long. Lists, arguments and
        parameters written on one line stay on one line: breaking an expression
        rarely reads better than the author's long line (think of a long regex).
        """
        opener, entries = self._entries(start, end, elems)
        if not entries and opener is None:
            return open_ + close
        has_comments = opener is not None or any(
            e.doc is None or e.trailing is not None for e in entries
        )
        first = entries[0].start if entries else end
        user_broken = "\n" in self.text[start:first]
        broken = user_broken or has_comments
        comma = sep == ","
        # For a ( or [ sequence: whether the user wrapped it somewhere between elements.
        bounds = [start, *(p for e in entries for p in (e.start, e.end)), end]
        wrapped = not comma or any(
            "\n" in self.text[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True)
        )
        last_elem = max((i for i, e in enumerate(entries) if e.doc is not None), default=-1)
        inner: list[Doc] = []
        for i, e in enumerate(entries):
            if i > 0:
                blank = broken and self._blank_before(entries[i - 1], e)
                inner.append(_BLANK if blank else _SOFT)
            if e.doc is None:
                inner.append(e.comment)
                continue
            mark = _Start()
            inner += [mark, e.doc]
            if i != last_elem:
                inner.append(sep if comma or e.glue else _IfBreak("", sep))
            elif comma:
                inner.append(_IfBreak(",", ""))
            if e.trailing is not None:
                inner.append(_Suffix("  " + e.trailing, mark))
        head: list[Doc] = [open_]
        if opener is not None:
            head.append(_Suffix("  " + opener))
        soft = _Line(pad)
        return _group([*head, _Nest([soft, inner]), soft, close], broken, flat=not wrapped)

    def module(self, module: ast.Module) -> Doc:
        elems = [self._stmt_elem(s) for s in module.body.stmts]
        _, entries = self._entries(0, len(self.text), elems, bracketed=False)
        out: list[Doc] = []
        last_elem = max((i for i, e in enumerate(entries) if e.doc is not None), default=-1)
        for i, e in enumerate(entries):
            if i > 0:
                out.append(_BLANK if self._blank_before(entries[i - 1], e) else _HARD)
            if e.doc is None:
                out.append(e.comment)
            else:
                start = _Start()
                out += [start, e.doc, ";" if e.glue and i < last_elem else ""]
                if e.trailing is not None:
                    out.append(_Suffix("  " + e.trailing, start))
        return out

    def _stmt_elem(self, s: ast.Stmt) -> _Elem:
        return _Elem(s.span.start, s.span.end, partial(self.stmt, s))

    def body(self, body: ast.Body) -> Doc:
        elems = [self._stmt_elem(s) for s in body.stmts]
        return self._sequence("{", "}", body.span.start + 1, body.span.end - 1, elems, ";", " ")

    def _bracketed(
        self, open_: str, close: str, after: int, items: Sequence[tuple[Span, Callable[[], Doc]]]
    ) -> Doc:
        """A ``(…)`` or ``[…]`` sequence whose opener is the first ``open_`` at/after ``after``
        (a list the user put in parentheses starts with those)."""
        i = bisect.bisect_left(self.code_starts, after)
        while self.text[self.code[i][1]] != open_:
            i += 1
        start = self.code[i][2]
        end = self.closer[self.code[i][1]] - 1
        elems = [_Elem(sp.start, sp.end, build) for sp, build in items]
        return self._sequence(open_, close, start, end, elems, ",", "")

    def _token_ending_at(self, end: int) -> str:
        return self.text[self.token_by_end[end] : end]

    # -- statements ------------------------------------------------------------------------

    def stmt(self, s: ast.Stmt) -> Doc:
        if isinstance(s, ast.Field):
            return self.field(s)
        if isinstance(s, ast.Unset):
            return "unset " + self.path(s.path)
        if isinstance(s, ast.LetDecl):
            return ["let ", s.name, self.annotation(s.type), " = ", self.expr(s.value)]
        if isinstance(s, ast.IfStmt):
            return self.if_stmt(s)
        if isinstance(s, ast.ForStmt):
            names = s.var if s.key_var is None else f"{s.key_var}, {s.var}"
            return [f"for {names} in ", self.expr(s.iterable), " ", self.body(s.body)]
        if isinstance(s, ast.CheckStmt):
            msg: Doc = [] if s.message is None else " : " + self._token_ending_at(s.span.end)
            return ["check ", self.expr(s.expr), msg]
        if isinstance(s, ast.Import):
            alias = f" as {s.alias}" if s.span.end > s.path_span.end else ""
            return f"import {s.path_span.text()}{alias}"
        if isinstance(s, ast.ExtendsDecl):
            return f"extends {s.path_span.text()}"
        if isinstance(s, ast.InputDecl):
            default: Doc = [] if s.default is None else [" = ", self.expr(s.default)]
            env = "" if s.env is None else " from env " + self._token_ending_at(s.span.end)
            return ["input ", s.name, self.annotation(s.type), default, env]
        if isinstance(s, ast.TypeDecl):
            return [f"type {s.name} = {self.type(s.type)}", self.where(s.where)]
        if isinstance(s, ast.SchemaDecl):
            parent = "" if s.parent is None else " extends " + ".".join(s.parent)
            return [f"schema {s.name}{parent} ", self.body(s.body)]
        if isinstance(s, ast.TemplateDecl):
            params = self._bracketed(
                "(", ")", s.name_span.end, [(p.span, partial(self.param, p)) for p in s.params]
            )
            return ["template ", s.name, params, self.annotation(s.type), " ", self.body(s.body)]
        assert isinstance(s, ast.OutputDecl)
        fmt = "" if s.format is None else f": {s.format}"
        return [f"output {s.name_span.text()}{fmt} = ", self.expr(s.value)]

    def field(self, f: ast.Field) -> Doc:
        mods = ("final " if f.final else "") + ("hidden " if f.hidden else "")
        value: Doc
        if f.op == "set":
            assert f.value is not None
            value = [" = ", self.expr(f.value)]
        elif f.op == "append":
            assert f.value is not None
            value = [" += ", self.expr(f.value)]
        elif f.op == "extends":
            assert f.value is not None
            value = [" extends ", self.expr(f.value)]
        elif f.op == "merge":
            assert f.body is not None
            value = [" ", self.body(f.body)]
        else:
            value = []
        return [mods, self.path(f.path), self.annotation(f.type), value, self.where(f.where)]

    def if_stmt(self, s: ast.IfStmt) -> Doc:
        out: list[Doc] = ["if ", self.expr(s.cond), " ", self.body(s.then)]
        if isinstance(s.orelse, ast.IfStmt):
            out += [" else ", self.if_stmt(s.orelse)]
        elif s.orelse is not None:
            out += [" else ", self.body(s.orelse)]
        return out

    def param(self, p: ast.Param) -> Doc:
        default: Doc = [] if p.default is None else [" = ", self.expr(p.default)]
        return [p.name, self.annotation(p.type), default]

    def where(self, e: ast.Expr | None) -> Doc:
        return [] if e is None else [" where ", self.expr(e)]

    def annotation(self, t: ast.TypeExpr | None) -> str:
        return "" if t is None else ": " + self.type(t)

    def path(self, keys: Sequence[ast.Key]) -> str:
        return ".".join(k.name if k.name is not None else k.span.text() for k in keys)

    # -- types -----------------------------------------------------------------------------

    def type(self, t: ast.TypeExpr) -> str:
        # The tree drops a type's parentheses; they are needed exactly where a union
        # (or an optional) sits inside a union option or under `?`.
        if isinstance(t, ast.NamedType):
            args = "" if not t.args else "[" + ", ".join(self.type(a) for a in t.args) + "]"
            return ".".join(t.path) + args
        if isinstance(t, ast.LiteralType):
            # `- 1` is two tokens (maybe with a comment between): print them joined.
            i = bisect.bisect_left(self.code_starts, t.span.start)
            j = bisect.bisect_left(self.code_starts, t.span.end)
            return "".join(self.text[s:e] for _, s, e in self.code[i:j])
        if isinstance(t, ast.NullType):
            return "null"
        if isinstance(t, ast.OptionalType):
            inner = self.type(t.inner)
            if isinstance(t.inner, ast.UnionType | ast.OptionalType):
                inner = f"({inner})"
            return inner + "?"
        return " | ".join(
            f"({self.type(o)})" if isinstance(o, ast.UnionType) else self.type(o) for o in t.options
        )

    # -- expressions -----------------------------------------------------------------------

    def expr(self, e: ast.Expr, need: bool = False) -> Doc:
        """``e``, in parentheses when ``need`` says precedence requires them or the user
        wrote them (the tree keeps those in the span only)."""
        doc = self._expr(e)
        user = self.closer.get(e.span.start) == e.span.end and self.text[e.span.start] == "("
        if need or user:
            return ["(", doc, ")"]
        return doc

    def _expr(self, e: ast.Expr) -> Doc:
        if isinstance(e, ast.Literal | ast.Str):
            # The user's spelling: `0x1F`, `1_000`, `90m`, raw and multi-line strings.
            # A parenthesised literal's span takes in the parentheses: print its token.
            i = bisect.bisect_left(self.code_starts, e.span.start)
            while self.code[i][0] == "LPAR":
                i += 1
            if self.code[i][0] != "ADD_OP":
                return self.text[self.code[i][1] : self.code[i][2]]
            # -9223372036854775808 is one literal (its digits alone are out of range)
            # spelled with two tokens, maybe with parentheses between: print them joined.
            i += 1
            while self.code[i][0] == "LPAR":
                i += 1
            return "-" + self.text[self.code[i][1] : self.code[i][2]]
        if isinstance(e, ast.OuterName):
            return f"outer.{e.name}"  # before `Name`: a subclass of it
        if isinstance(e, ast.Name):
            return e.name
        if isinstance(e, ast.SelfRef):
            return "self"
        if isinstance(e, ast.SuperRef):
            return "super"
        if isinstance(e, ast.Binary):
            p = PRECEDENCE[e.op]
            lp = _prec(e.left)
            # Left-associative; comparisons do not chain, so one under another needs
            # parentheses on either side.
            left = self.expr(e.left, lp < p or (lp == p == 3))
            right = self.expr(e.right, _prec(e.right) <= p)
            return [left, f" {e.op} ", right]
        if isinstance(e, ast.Unary):
            # `- -1`, not `--1`, which reads like a decrement.
            operand = self.expr(e.operand, _prec(e.operand) < _UNARY_PREC)
            space = " " if e.op in "+-" and self._starts_with_sign(operand) else ""
            return [e.op, space, operand]
        if isinstance(e, ast.IfExpr):
            return [
                "if ",
                self.expr(e.cond),
                " then ",
                self.expr(e.then),
                " else ",
                self.expr(e.orelse),
            ]
        if isinstance(e, ast.GetAttr):
            return [self.postfix_obj(e.obj), ".", e.name]
        if isinstance(e, ast.GetItem):
            return [self.postfix_obj(e.obj), "[", self.expr(e.index), "]"]
        if isinstance(e, ast.Call):
            args = self._bracketed(
                "(", ")", e.func.span.end, [(a.span, partial(self.arg, a)) for a in e.args]
            )
            return [self.postfix_obj(e.func), args]
        if isinstance(e, ast.ListLit):
            return self._bracketed(
                "[", "]", e.span.start, [(x.span, partial(self.expr, x)) for x in e.items]
            )
        if isinstance(e, ast.Comprehension):
            names = e.var if e.key_var is None else f"{e.key_var}, {e.var}"
            cond: Doc = [] if e.cond is None else [" if ", self.expr(e.cond)]
            return ["[", self.expr(e.elem), f" for {names} in ", self.expr(e.iterable), cond, "]"]
        if isinstance(e, ast.ObjectLit):
            return self.body(e.body)
        assert isinstance(e, ast.Refine)
        return [self.postfix_obj(e.base), " ", self.body(e.body)]

    def _starts_with_sign(self, doc: Doc) -> bool:
        while isinstance(doc, list) and doc:
            doc = doc[0]
        return isinstance(doc, str) and doc[:1] in ("+", "-")

    def postfix_obj(self, e: ast.Expr) -> Doc:
        return self.expr(e, _prec(e) < _POSTFIX_PREC)

    def arg(self, a: ast.Arg) -> Doc:
        value = self.expr(a.value)
        return value if a.name is None else [a.name, " = ", value]
