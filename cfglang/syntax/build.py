"""Parse-tree callbacks that build the AST during the LALR parse.

This is the only module that knows grammar rule names. The parser (the fast driver, or
Lark) calls one method per rule as it reduces, so no intermediate parse tree is ever
built. `AstBuilder` is a plain object, not a `lark.Transformer` (Lark only looks its
methods up by name), so that the fast path never imports lark. Strings are decoded here:
escapes, `$$<`, multi-line indentation stripping, and `$<expr>` substitutions, which are
parsed with the same parser (start symbol ``expr_start``) at their offset in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast
from cfglang.syntax.tokens import Tok as Token
from cfglang.values import DURATION_UNIT_MS, SIZE_UNITS, Duration, Size

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

# What a token is: the fast driver's `Tok`, and `lark.Token` once Lark has been built (the
# fallback path). The annotations say `Token` (`Tok`), whose attributes both have.
_TOKENS: tuple[type[Token], ...] = (Token,)


def accept_lark_tokens() -> None:
    """Count `lark.Token` as a token from now on; the parser calls it when it builds Lark."""
    global _TOKENS
    from lark import Token as LarkToken  # start-up: called only when Lark is built

    _TOKENS = (Token, LarkToken)  # type: ignore[assignment]  # duck-typed alike


def _direct(cls: Any) -> Any:
    """A constructor for the frozen attrs class ``cls`` that sets its slots directly.

    attrs' generated ``__init__`` for a frozen class goes through ``object.__setattr__``
    once per field; a parse builds a node or a span for nearly every token, and setting
    the slot descriptors directly is about twice as fast. Every field is a positional
    argument. Falls back to the class itself if ``__init__`` would do anything else
    (defaults aside): validators, converters, hooks, init=False fields, no slots.
    """
    fields = attrs.fields(cls)
    if (
        hasattr(cls, "__attrs_post_init__")
        or hasattr(cls, "__attrs_pre_init__")
        or any(
            not f.init
            or f.validator
            or f.converter
            or f.alias != f.name
            or f.on_setattr not in (None, attrs.setters.NO_OP)
            or not hasattr(cls.__dict__.get(f.name), "__set__")
            for f in fields
        )
    ):
        return cls
    names = [f.name for f in fields]
    # Field names never start with `_` (their init alias would differ), so these don't clash.
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    source = (
        f"def make({', '.join(names)}):\n    _obj = _new(_cls)\n"
        + "".join(f"    _set_{n}(_obj, {n})\n" for n in names)
        + "    return _obj\n"
    )
    exec(compile(source, f"<direct {cls.__name__}>", "exec"), namespace)
    return namespace["make"]


_span: Callable[[SourceFile, int, int], Span] = _direct(Span)
# The nodes a parse makes most of.
_Field: Callable[..., ast.Field] = _direct(ast.Field)
_Key: Callable[..., ast.Key] = _direct(ast.Key)
_Str: Callable[..., ast.Str] = _direct(ast.Str)
_Name: Callable[..., ast.Name] = _direct(ast.Name)
_Literal: Callable[..., ast.Literal] = _direct(ast.Literal)
_Body: Callable[..., ast.Body] = _direct(ast.Body)
_ListLit: Callable[..., ast.ListLit] = _direct(ast.ListLit)
_Refine: Callable[..., ast.Refine] = _direct(ast.Refine)
_GetAttr: Callable[..., ast.GetAttr] = _direct(ast.GetAttr)
_Binary: Callable[..., ast.Binary] = _direct(ast.Binary)
_Call: Callable[..., ast.Call] = _direct(ast.Call)
_Arg: Callable[..., ast.Arg] = _direct(ast.Arg)
_ObjectLit: Callable[..., ast.ObjectLit] = _direct(ast.ObjectLit)
_DUR_RE = re.compile(r"(\d+)(ms|d|h|m|s)")


def _int_value(text: str) -> int:
    """The value of decimal or ``0x`` digits (no ``_``), or INT_MAX + 2 if it is larger.

    Python refuses to convert more than 4,300 decimal digits; any literal that long is far
    out of the 64-bit range, so it is never converted.
    """
    if text[:2] in ("0x", "0X"):
        digits = text[2:].lstrip("0")
        return int(digits or "0", 16) if len(digits) <= 16 else INT_MAX + 2
    digits = text.lstrip("0")
    return int(digits or "0") if len(digits) <= 19 else INT_MAX + 2


def _abbrev(text: str) -> str:
    """A literal as quoted in a message: a very long one shortened."""
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"


_SIZE_RE = re.compile(r"(\d+)(\D+)")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$", "0": "\0"}


class SubstitutionError(Exception):
    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


class Where:
    """The result of the ``where`` rule, so callers can tell it from other children."""

    __slots__ = ("expr",)

    def __init__(self, expr: ast.Expr) -> None:
        self.expr = expr


class Seq(list[Any]):
    """Nodes that remember the character range they came from (never in the tree)."""

    __slots__ = ("end", "start")
    start: int
    end: int


PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
COMPARISON = 3

# `outer.name` names the binding a field of the current object hides; `outer` stays an
# ordinary name everywhere else (a field `outer` is still read as `outer` or `self.outer`).
OUTER = "outer"

RESERVED = frozenset(
    {
        "else",
        "then",
        "in",
        "if",
        "for",
        "let",
        "final",
        "hidden",
        "unset",
        "where",
        "true",
        "false",
        "null",
        "self",
        "super",
    }
)


def _slots(ch: list[Any]) -> dict[str, Any]:
    """Map each non-token child to the value of the token just before it (its keyword)."""
    out: dict[str, Any] = {}
    last = ""
    for c in ch:
        if isinstance(c, _TOKENS):
            last = c.value
        elif isinstance(c, Where):
            out["where"] = c.expr
        else:
            out.setdefault(last, c)
            last = ""
    return out


def _find_seq(ch: list[Any]) -> Seq | tuple[()]:
    """The first `Seq` among the children, or an empty tuple."""
    for c in ch:
        if isinstance(c, Seq):
            return c
    return ()


def _names(ch: list[Any]) -> list[Token]:
    return [c for c in ch if isinstance(c, _TOKENS) and c.type == "NAME"]


# Parses the text of a substitution at its offset in the file, with the same builder.
ParseExpr = Callable[["AstBuilder", str, int], ast.Expr]


class AstBuilder:
    """Turns rule reductions into `ast` nodes, and holds all of one parse's state.

    The parser makes one per parse (it costs a few attribute stores), so parses never
    share mutable state; the substitutions of a string are parsed with the builder of the
    file they are in, at their offset. The parser keeps all tokens (``keep_all_tokens``)
    so that every node's span runs from its first token to its last, keywords and braces
    included; callbacks pick their parts out by kind and by the keyword before them,
    never by position alone.
    """

    __slots__ = (
        "brackets",
        "diags",
        "docs",
        "docs_pending",
        "fast",
        "offset",
        "parens",
        "parse_expr",
        "pending",
        "source",
    )

    def __init__(
        self, source: SourceFile, parse_expr: ParseExpr | None = None, *, fast: bool = False
    ) -> None:
        self.source = source
        self.offset = 0  # of the text being parsed (a substitution's) in the file
        self.diags: list[Diagnostic] = []
        # Errors held until the parse ends because a later reduction may withdraw them.
        self.pending: dict[int, Diagnostic] = {}
        self.docs: dict[int, str] = {}  # doc comments by where the next token starts
        self.docs_pending: dict[int, str] = {}  # the doc being gathered, line by line
        self.parse_expr = parse_expr
        self.fast = fast  # parsed by the fast driver (its substitutions too), else by Lark
        # Lark's path: the post-lexer's open brackets, for the syntax error messages.
        self.brackets: list[Any] = []
        # Parenthesised expressions, by (start, end): (parentheses directly around the
        # expression, the key of the one inside or None). Brackets nest in the tree; these
        # leave no trace there, so `bounds.check_nesting` counts them from here.
        self.parens: dict[tuple[int, int], tuple[int, tuple[int, int] | None]] = {}

    def comment(self, tok: Token) -> Token:
        """The lexer callback for comments: gathers the lines of ``##`` doc comments."""
        text: str = tok.value
        if text.startswith("##"):
            src = self.source.text
            start = (tok.start_pos or 0) + self.offset
            # Key the doc by where the next token starts, so the statement there finds it.
            # Trailing blanks (and the `\r` of a CRLF file) are not part of the doc: the
            # formatter drops them, and a doc must not change with the line endings.
            line = text[2:].rstrip()
            line = line[1:] if line.startswith(" ") else line
            prev = self.docs_pending.pop(start, None)
            doc = line if prev is None else prev + "\n" + line
            end = start + len(text)
            n = len(src)
            while end < n and src[end] in " \t\r\n":
                end += 1
            self.docs_pending[end] = doc
            self.docs[end] = doc
        return tok

    # -- helpers ------------------------------------------------------------------------------

    def _bounds(self, c: Any, first: bool) -> int | None:
        if isinstance(c, _TOKENS):
            if c.start_pos is None:
                return None
            return c.start_pos + self.offset if first else (c.end_pos or 0) + self.offset
        if isinstance(c, Seq):
            return c.start if first else c.end
        if isinstance(c, Where):
            return self._bounds(c.expr, first)
        if isinstance(c, tuple):  # a field_value: (op, value, body)
            for x in c if first else reversed(c):
                b = self._bounds(x, first) if x is not None and not isinstance(x, str) else None
                if b is not None:
                    return b
            return None
        span = getattr(c, "span", None)
        if isinstance(span, Span):
            return span.start if first else span.end
        return None

    def sp(self, ch: list[Any]) -> Span:
        """The span from the first child's start to the last child's end."""
        # Fast paths for the usual edges (a token, or a node with a span); `_bounds`
        # handles the rest (sequences, `where`, field values) and empty rules.
        if ch:
            c = ch[0]
            if isinstance(c, _TOKENS) and c.start_pos is not None:
                start: int | None = c.start_pos + self.offset
            else:
                span = getattr(c, "span", None)
                start = span.start if isinstance(span, Span) else self._edge(ch, True)
            c = ch[-1]
            if isinstance(c, _TOKENS) and c.start_pos is not None:
                end: int | None = (c.end_pos or 0) + self.offset
            else:
                span = getattr(c, "span", None)
                end = span.end if isinstance(span, Span) else self._edge(ch, False)
            if start is not None and end is not None:
                return _span(self.source, start, end)
        return _span(self.source, self.offset, self.offset)

    def _edge(self, ch: list[Any], first: bool) -> int | None:
        for c in ch if first else reversed(ch):
            b = self._bounds(c, first)
            if b is not None:
                return b
        return None

    def tsp(self, tok: Token) -> Span:
        start = (tok.start_pos or 0) + self.offset
        return _span(self.source, start, start + len(tok.value))

    def doc_for(self, span: Span) -> str | None:
        return self.docs.get(span.start)

    def error(self, code: str, message: str, span: Span, **kw: Any) -> None:
        self.diags.append(Diagnostic(code, message, span, **kw))

    def _reserved(self, tok: Token) -> None:
        if tok.type == "NAME" and tok.value in RESERVED:
            if tok.value == "else":
                self.error(
                    "E0001",
                    "`else` must follow the `}` of its `if` on the same line",
                    self.tsp(tok),
                    help="write `} else {`",
                )
            else:
                self.error(
                    "E0001",
                    f"`{tok.value}` is a keyword and cannot be used here",
                    self.tsp(tok),
                    help=f'quote it to use it as a key: `"{tok.value}"`',
                )

    def seq(self, ch: list[Any], items: list[Any]) -> Seq:
        out = Seq(items)
        span = self.sp(ch)
        out.start, out.end = span.start, span.end
        return out

    # -- module and statements ----------------------------------------------------------------

    def start(self, ch: list[Any]) -> ast.Module:
        stmts = _find_seq(ch)
        span = Span(self.source, 0, len(self.source.text))
        return ast.Module(_Body(tuple(stmts), span), None, span)

    def stmt_list(self, ch: list[Any]) -> Seq:
        return self.seq(ch, [c for c in ch if not isinstance(c, _TOKENS)])

    def expr_start(self, ch: list[Any]) -> Any:
        return next(c for c in ch if not isinstance(c, _TOKENS))

    def body(self, ch: list[Any]) -> ast.Body:
        stmts = _find_seq(ch)
        return _Body(tuple(stmts), self.sp(ch))

    def import_as(self, ch: list[Any]) -> ast.Import:
        path = next(c for c in ch if isinstance(c, ast.Str))
        alias = _names(ch)[-1]
        return ast.Import(path.text, str(alias), path.span, self.sp(ch))

    def import_plain(self, ch: list[Any]) -> ast.Import:
        path = next(c for c in ch if isinstance(c, ast.Str))
        stem = path.text.rstrip("/").rsplit("/", 1)[-1]
        if stem.endswith(".cfl"):
            stem = stem[:-4]
        return ast.Import(path.text, stem.replace("-", "_"), path.span, self.sp(ch))

    def extends_stmt(self, ch: list[Any]) -> ast.ExtendsDecl:
        path = next(c for c in ch if isinstance(c, ast.Str))
        return ast.ExtendsDecl(path.text, path.span, self.sp(ch))

    def input_decl(self, ch: list[Any]) -> ast.InputDecl:
        name = _names(ch)[0]
        s = _slots(ch)
        env = s.get("env")
        span = self.sp(ch)
        return ast.InputDecl(
            str(name),
            s.get(":"),
            s.get("="),
            env.text if env is not None else None,
            self.doc_for(span),
            self.tsp(name),
            span,
        )

    def let_decl(self, ch: list[Any]) -> ast.LetDecl:
        name = _names(ch)[0]
        s = _slots(ch)
        span = self.sp(ch)
        return ast.LetDecl(str(name), s.get(":"), s["="], self.doc_for(span), self.tsp(name), span)

    def type_decl(self, ch: list[Any]) -> ast.TypeDecl:
        name = _names(ch)[0]
        s = _slots(ch)
        span = self.sp(ch)
        return ast.TypeDecl(
            str(name), s["="], s.get("where"), self.doc_for(span), self.tsp(name), span
        )

    def schema_decl(self, ch: list[Any]) -> ast.SchemaDecl:
        name = _names(ch)[0]
        s = _slots(ch)
        parent = s.get("extends")
        body = next(c for c in ch if isinstance(c, ast.Body))
        span = self.sp(ch)
        parent_span = Span(self.source, parent.start, parent.end) if parent else None
        return ast.SchemaDecl(
            str(name),
            tuple(parent) if parent else None,
            body,
            self.doc_for(span),
            self.tsp(name),
            parent_span,
            span,
        )

    def template_decl(self, ch: list[Any]) -> ast.TemplateDecl:
        name = _names(ch)[0]
        s = _slots(ch)
        params = s.get("(", ())
        body = next(c for c in ch if isinstance(c, ast.Body))
        span = self.sp(ch)
        return ast.TemplateDecl(
            str(name), tuple(params), s.get(":"), body, self.doc_for(span), self.tsp(name), span
        )

    def params(self, ch: list[Any]) -> Seq:
        return self.seq(ch, [c for c in ch if isinstance(c, ast.Param)])

    def param(self, ch: list[Any]) -> ast.Param:
        s = _slots(ch)
        return ast.Param(str(_names(ch)[0]), s.get(":"), s.get("="), self.sp(ch))

    def output_decl(self, ch: list[Any]) -> ast.OutputDecl:
        s = _slots(ch)
        name = s["output"]
        names = _names(ch)
        return ast.OutputDecl(
            name, str(names[0]) if names else None, s["="], name.span, self.sp(ch)
        )

    def check_stmt(self, ch: list[Any]) -> ast.CheckStmt | ast.Field:
        s = _slots(ch)
        msg = s.get(":")
        expr = s["check"]
        if isinstance(expr, ast.ObjectLit) and msg is None:
            # `check { … }` is a merge block for a field named `check` (keywords may name
            # fields); an object can never be a check's condition anyway.
            key = _Key("check", None, self.tsp(ch[0]))
            return _Field(
                (key,),
                "merge",
                None,
                None,
                expr.body,
                None,
                False,
                False,
                self.doc_for(self.sp(ch)),
                self.sp(ch),
            )
        return ast.CheckStmt(expr, msg.text if msg is not None else None, self.sp(ch))

    def unset_stmt(self, ch: list[Any]) -> ast.Unset:
        return ast.Unset(ch[-1], self.sp(ch))

    def if_stmt(self, ch: list[Any]) -> ast.IfStmt:
        s = _slots(ch)
        bodies = [c for c in ch if isinstance(c, ast.Body)]
        return ast.IfStmt(s["if"], bodies[0], s.get("else"), self.sp(ch))

    def for_stmt(self, ch: list[Any]) -> ast.ForStmt:
        names = _names(ch)
        s = _slots(ch)
        body = next(c for c in ch if isinstance(c, ast.Body))
        if len(names) == 1:
            return ast.ForStmt(None, str(names[0]), s["in"], body, self.sp(ch))
        return ast.ForStmt(str(names[0]), str(names[1]), s["in"], body, self.sp(ch))

    def modifier(self, ch: list[Any]) -> Token:
        return ch[0]  # type: ignore[no-any-return]

    def field(self, ch: list[Any]) -> ast.Field:
        if len(ch) == 2 and type(ch[0]) is Seq and type(ch[1]) is tuple:
            # `key = value`, `key += x`, `key { ... }`: the common case, without the search.
            path, (op, value, body) = ch
            last = getattr(value if body is None else body, "span", None)
            if isinstance(last, Span):
                span = _span(self.source, path.start, last.end)
            else:
                span = self.sp(ch)
            return _Field(
                tuple(path),
                op,
                None,
                value,
                body,
                None,
                False,
                False,
                self.docs.get(span.start),
                span,
            )
        mods = {c.value for c in ch if isinstance(c, _TOKENS) and c.type in ("FINAL", "HIDDEN")}
        path = next(c for c in ch if isinstance(c, Seq))
        s = _slots(ch)
        fv = next((c for c in ch if isinstance(c, tuple) and not isinstance(c, Seq)), None)
        op, value, body = fv if fv is not None else ("decl", None, None)
        span = self.sp(ch)
        return _Field(
            tuple(path),
            op,
            s.get(":"),
            value,
            body,
            s.get("where"),
            "final" in mods,
            "hidden" in mods,
            self.doc_for(span),
            span,
        )

    def fv_set(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return ("set", ch[-1], None)

    def fv_append(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return ("append", ch[-1], None)

    def fv_merge(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return ("merge", None, ch[-1])

    def fv_extends(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return ("extends", ch[-1], None)

    def where(self, ch: list[Any]) -> Where:
        return Where(ch[-1])

    def key_path(self, ch: list[Any]) -> Seq:
        if len(ch) == 1:
            out = Seq(ch)
            out.start, out.end = ch[0].span.start, ch[0].span.end
            return out
        return self.seq(ch, [c for c in ch if isinstance(c, ast.Key)])

    def key(self, ch: list[Any]) -> ast.Key:
        (k,) = ch
        if isinstance(k, _TOKENS):
            value = k.value
            if value in RESERVED:
                self._reserved(k)
            start = (k.start_pos or 0) + self.offset
            return _Key(value, None, _span(self.source, start, start + len(value)))
        return _Key(None, k, k.span)

    # -- expressions --------------------------------------------------------------------------

    def refine(self, ch: list[Any]) -> ast.Refine:
        return _Refine(ch[0], ch[1], self.sp(ch))

    def if_expr(self, ch: list[Any]) -> ast.IfExpr:
        s = _slots(ch)
        return ast.IfExpr(s["if"], s["then"], s["else"], self.sp(ch))

    def operation(self, ch: list[Any]) -> Any:
        """`a op b op c ...`: apply precedence by precedence climbing."""
        operands = ch[0::2]
        ops: list[Token] = ch[1::2]
        n = len(ops)

        def climb(lhs: Any, min_prec: int, pos: int) -> tuple[Any, int]:
            while pos < n and PRECEDENCE[ops[pos].value] >= min_prec:
                op = ops[pos]
                prec = PRECEDENCE[op.value]
                rhs = operands[pos + 1]
                pos += 1
                while pos < n and PRECEDENCE[ops[pos].value] > prec:
                    rhs, pos = climb(rhs, prec + 1, pos)
                if prec == COMPARISON and pos < n and PRECEDENCE[ops[pos].value] == COMPARISON:
                    self.error(
                        "E0001",
                        "comparisons cannot be chained",
                        self.tsp(ops[pos]),
                        label=f"a second comparison after `{op.value}`",
                        help="combine them with `&&`: `a < b && b < c`",
                    )
                lhs = _Binary(str(op), lhs, rhs, self.tsp(op), lhs.span.cover(rhs.span))
            return lhs, pos

        result, _ = climb(operands[0], 0, 0)
        return result

    def unary(self, ch: list[Any]) -> ast.Unary | ast.Literal:
        op, operand = ch
        if (
            op == "-"
            and isinstance(operand, ast.Literal)
            and operand.value == INT_MAX + 1
            and not isinstance(operand.value, bool)
        ):
            self.pending.pop(operand.span.start, None)
            return _Literal(-(INT_MAX + 1), self.sp(ch))
        return ast.Unary(str(op), operand, self.sp(ch))

    def getattr(self, ch: list[Any]) -> ast.GetAttr | ast.OuterName:
        obj, name = ch[0], ch[-1]
        if obj.__class__ is ast.Name and obj.name == OUTER:
            # `outer.name`: the enclosing binding (docs/language.md §3.6).
            return ast.OuterName(str(name), self.sp(ch), self.tsp(name))
        return _GetAttr(obj, str(name), self.tsp(name), self.sp(ch))

    def attr_name(self, ch: list[Any]) -> Token:
        return ch[0]  # type: ignore[no-any-return]

    def getitem(self, ch: list[Any]) -> ast.GetItem:
        return ast.GetItem(ch[0], ch[2], self.sp(ch))

    def call(self, ch: list[Any]) -> ast.Call:
        args = next((c for c in ch[1:] if isinstance(c, Seq)), ())
        return _Call(ch[0], tuple(args), self.sp(ch))

    def args(self, ch: list[Any]) -> Seq:
        return self.seq(ch, [c for c in ch if isinstance(c, ast.Arg)])

    def pos_arg(self, ch: list[Any]) -> ast.Arg:
        return _Arg(None, ch[0], self.sp(ch))

    def kw_arg(self, ch: list[Any]) -> ast.Arg:
        return _Arg(str(ch[0]), ch[-1], self.sp(ch))

    def name(self, ch: list[Any]) -> ast.Name:
        tok = ch[0]
        value = tok.value
        if value in RESERVED:
            self._reserved(tok)
        start = (tok.start_pos or 0) + self.offset
        return _Name(value, _span(self.source, start, start + len(value)))

    def self_ref(self, ch: list[Any]) -> ast.SelfRef:
        return ast.SelfRef(self.sp(ch))

    def super_ref(self, ch: list[Any]) -> ast.SuperRef:
        return ast.SuperRef(self.sp(ch))

    def list_lit(self, ch: list[Any]) -> ast.ListLit:
        items = _find_seq(ch)
        return _ListLit(tuple(items), self.sp(ch))

    def items(self, ch: list[Any]) -> Seq:
        return self.seq(ch, [c for c in ch if not isinstance(c, _TOKENS)])

    def comprehension(self, ch: list[Any]) -> ast.Comprehension:
        s = _slots(ch)
        names = _names(ch)
        elem = ch[1]
        key_var = str(names[0]) if len(names) == 2 else None
        return ast.Comprehension(elem, key_var, str(names[-1]), s["in"], s.get("if"), self.sp(ch))

    def object_lit(self, ch: list[Any]) -> ast.ObjectLit:
        return _ObjectLit(ch[0], self.sp(ch))

    def int_lit(self, ch: list[Any]) -> ast.Literal:
        tok = ch[0]
        text = tok.value.replace("_", "")
        value = _int_value(text)
        if value <= INT_MAX:
            return _Literal(value, self.tsp(tok))
        if value == INT_MAX + 1:
            # Only valid after a unary minus (-9223372036854775808): `unary` folds it and
            # withdraws this error; anywhere else it is reported when the parse ends.
            self.pending[self.tsp(tok).start] = Diagnostic(
                "E0007",
                f"integer literal `{tok}` is out of the 64-bit range",
                self.tsp(tok),
                label="larger than 9223372036854775807",
            )
            return _Literal(value, self.tsp(tok))
        self.error(
            "E0007",
            f"integer literal `{_abbrev(tok.value)}` is out of the 64-bit range",
            self.tsp(tok),
            label="larger than 9223372036854775807",
        )
        return _Literal(0, self.tsp(tok))

    def float_lit(self, ch: list[Any]) -> ast.Literal:
        value = float(str(ch[0]).replace("_", ""))
        if value in (float("inf"), float("-inf")):
            self.error("E0007", f"float literal `{ch[0]}` is out of range", self.tsp(ch[0]))
            value = 0.0
        return _Literal(value, self.tsp(ch[0]))

    def duration_lit(self, ch: list[Any]) -> ast.Literal:
        total = sum(_int_value(n) * DURATION_UNIT_MS[u] for n, u in _DUR_RE.findall(str(ch[0])))
        if total > INT_MAX:
            self.error(
                "E0007",
                f"duration `{_abbrev(str(ch[0]))}` is out of the 64-bit range",
                self.tsp(ch[0]),
                label="more than 2^63-1 milliseconds",
            )
            total = 0
        return _Literal(Duration(total), self.tsp(ch[0]))

    def size_lit(self, ch: list[Any]) -> ast.Literal:
        m = _SIZE_RE.fullmatch(str(ch[0]))
        assert m is not None
        n = _int_value(m.group(1)) * SIZE_UNITS[m.group(2)]
        if n > INT_MAX:
            self.error(
                "E0007",
                f"size `{_abbrev(str(ch[0]))}` is out of the 64-bit range",
                self.tsp(ch[0]),
                label="more than 2^63-1 bytes",
            )
            n = 0
        return _Literal(Size(n), self.tsp(ch[0]))

    def true_lit(self, ch: list[Any]) -> ast.Literal:
        return _Literal(True, self.sp(ch))

    def false_lit(self, ch: list[Any]) -> ast.Literal:
        return _Literal(False, self.sp(ch))

    def null_lit(self, ch: list[Any]) -> ast.Literal:
        return _Literal(None, self.sp(ch))

    def string(self, ch: list[Any]) -> ast.Str:
        tok = ch[0]
        text = tok.value
        if tok.type == "STRING" and "\\" not in text and "$" not in text:
            # Nothing to decode: the common case, without the scanner.
            start = (tok.start_pos or 0) + self.offset
            return _Str((text[1:-1],), _span(self.source, start, start + len(text)))
        return self.decode_string(tok)

    # -- types --------------------------------------------------------------------------------

    def union_type(self, ch: list[Any]) -> ast.UnionType:
        left, right = ch[0], ch[-1]
        opts = left.options if isinstance(left, ast.UnionType) else (left,)
        return ast.UnionType((*opts, right), self.sp(ch))

    def optional_type(self, ch: list[Any]) -> ast.OptionalType:
        return ast.OptionalType(ch[0], self.sp(ch))

    def named_type(self, ch: list[Any]) -> ast.NamedType:
        path = ch[0]
        args = tuple(c for c in ch[1:] if not isinstance(c, _TOKENS))
        return ast.NamedType(tuple(path), args, self.sp(ch))

    def qual_name(self, ch: list[Any]) -> Seq:
        return self.seq(ch, [str(t) for t in ch if isinstance(t, _TOKENS) and t.type == "NAME"])

    def literal_type(self, ch: list[Any]) -> ast.LiteralType:
        span = self.sp(ch)
        first = ch[0]
        if isinstance(first, ast.Str):
            value: object = first.text
        elif len(ch) == 2 or (isinstance(first, _TOKENS) and first.type == "INT"):
            tok = ch[-1]  # a signed integer, or an unsigned one
            n = _int_value(str(tok).replace("_", ""))
            value = -n if first == "-" else n
            if not INT_MIN <= value <= INT_MAX:
                self.error(
                    "E0007",
                    f"integer literal `{_abbrev(str(tok))}` is out of the 64-bit range",
                    self.tsp(tok),
                    label="smaller than -9223372036854775808"
                    if value < 0
                    else "larger than 9223372036854775807",
                )
                value = 0
        else:
            value = span.text() == "true"
        return ast.LiteralType(value, span)

    def null_type(self, ch: list[Any]) -> ast.NullType:
        return ast.NullType(self.sp(ch))

    def primary(self, ch: list[Any]) -> Any:
        # "(" expr ")": the node's span takes in the parentheses, so carets and the
        # source text of a check (`(a + b) * c`) show them.
        inner = ch[1]
        if not hasattr(inner, "span"):
            return inner
        span = self.sp(ch)
        key = (inner.span.start, inner.span.end)
        below = self.parens.get(key)
        self.parens[(span.start, span.end)] = (1, None) if below is None else (below[0] + 1, key)
        return attrs.evolve(inner, span=span)

    def base_type(self, ch: list[Any]) -> Any:
        return ch[1]  # "(" type ")"

    # -- strings ------------------------------------------------------------------------------

    def decode_string(self, tok: Token) -> ast.Str:
        span = self.tsp(tok)
        text = str(tok)
        kind = tok.type
        if kind == "RAW_STRING":
            return _Str((text[2:-1],), span)
        if kind == "RAW_MSTRING":
            # A CRLF line end reads as LF, so a value does not depend on the checkout.
            return _Str((_dedent(text[4:-3].replace("\r\n", "\n")),), span)
        multi = kind == "MSTRING"
        q = 3 if multi else 1
        content_start = span.start + q
        content = text[q:-q]
        indent = _common_indent(content) if multi else 0
        if multi and content.startswith(("\n", "\r\n")):
            skip = 1 if content[0] == "\n" else 2
            content_start += skip
            content = content[skip:]
        if multi:
            lines = content.split("\n")
            if len(lines) > 1 and lines[-1].strip() == "":
                content = "\n".join(lines[:-1]).removesuffix("\r")
        parts: list[str | ast.Expr] = []
        buf: list[str] = []
        i, n = 0, len(content)
        at_line_start = multi
        while i < n:
            if at_line_start and indent:
                j = 0
                while j < indent and i < n and content[i] in " \t":
                    i += 1
                    j += 1
                at_line_start = False
                continue
            at_line_start = False
            c = content[i]
            if c == "\\" and i + 1 < n:
                e = content[i + 1]
                if e in _ESCAPES:
                    buf.append(_ESCAPES[e])
                    i += 2
                elif e == "u":
                    j = i + 2
                    if content[j : j + 1] == "{":
                        k = content.find("}", j)
                        hexd = content[j + 1 : k] if k > 0 else ""
                        end = k + 1
                    else:
                        hexd = content[j : j + 4]
                        end = j + 4
                    try:
                        code = int(hexd, 16) if len(hexd) <= 8 else -1
                        if 0xD800 <= code <= 0xDFFF:
                            # No output format can encode a lone surrogate (UTF-8 cannot).
                            self.error(
                                "E0007",
                                f"`{content[i:end]}` is a surrogate, not a character",
                                Span(self.source, content_start + i, content_start + end),
                                help="write the character's own code point: "
                                "`\\u{1F600}`, not `\\uD83D\\uDE00`",
                            )
                        else:
                            buf.append(chr(code))
                    except (ValueError, OverflowError):
                        self.error(
                            "E0007",
                            "invalid unicode escape",
                            Span(self.source, content_start + i, content_start + end),
                        )
                    i = end
                elif multi and (e == "\n" or content.startswith("\r\n", i + 1)):
                    i += 2 if e == "\n" else 3
                    # The joined line still loses its margin, like every other line.
                    at_line_start = True
                else:
                    self.error(
                        "E0007",
                        f"unknown escape sequence `\\{e}`",
                        Span(self.source, content_start + i, content_start + i + 2),
                        help='write `\\\\` for a backslash, or use a raw string r"..."',
                    )
                    i += 2
            elif c == "$" and content.startswith("$$<", i):
                buf.append("$<")
                i += 3
            elif c == "$" and content.startswith("$<", i):
                end = _subst_end(content, i + 2)
                if end < 0:
                    self.error(
                        "E0008",
                        "substitution is not closed by `>`",
                        Span(self.source, content_start + i, content_start + i + 2),
                    )
                    break
                if buf:
                    parts.append("".join(buf))
                    buf = []
                inner = content[i + 2 : end]
                if not inner.strip():
                    self.error(
                        "E0008",
                        "empty substitution `$<>`",
                        Span(self.source, content_start + i, content_start + end + 1),
                    )
                elif self.parse_expr is not None:
                    parts.append(self.parse_expr(self, inner, content_start + i + 2))
                i = end + 1
            elif multi and c == "\r" and content.startswith("\n", i + 1):
                # A CRLF line end reads as LF (sources are read byte-exact).
                i += 1
            else:
                if c == "\n":
                    at_line_start = multi
                buf.append(c)
                i += 1
        if buf or not parts:
            parts.append("".join(buf))
        return _Str(tuple(parts), span)


def _subst_end(text: str, i: int) -> int:
    """Index of the `>` closing a substitution whose expression starts at ``i``, or -1."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ">" and depth <= 0:
            return i
        elif c == "\n":
            return -1
        i += 1
    return -1


def _common_indent(content: str) -> int:
    lines = content.split("\n")
    if lines and lines[0].strip() == "":
        lines = lines[1:]
    widths = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
    # The closing line's indentation counts too, so `"""` can sit at the block's indent.
    if lines and not lines[-1].strip():
        widths.append(len(lines[-1]))
    return min(widths) if widths else 0


def _dedent(content: str) -> str:
    indent = _common_indent(content)
    if content.startswith("\n"):
        content = content[1:]
    lines = content.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(ln[indent:] if ln[:indent].strip() == "" else ln.lstrip() for ln in lines)
