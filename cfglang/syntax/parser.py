"""The parser: Lark LALR(1) with the contextual lexer, its tables built once per process.

`parse_module` turns text into an `ast.Module` (built during the parse by
`build.AstBuilder`) or reports one syntax diagnostic. Lark's errors are translated into
friendly ones here: expected tokens in words, and labels for the common mistakes
(an unclosed `{`, an unterminated string, a stray comma).

Newlines separate statements, except inside `(...)`/`[...]` and after a token that cannot
end one. `NEWLINES` is the one definition of those rules, as data: `_Newlines` (Lark's
post-lexer) applies it, and so does the fast driver, inline. That keeps the grammar
LALR(1).

Lark's tables are run by `fastlalr.FastLALR`, a tight loop several times faster than
Lark's own. Whatever it cannot parse (a syntax error, above all) it hands over by raising
`fastlalr.ParseFailed`, and Lark parses it again, so the errors, and the diagnostics made
from them, are Lark's. ``CFLC_PARSER=lark`` or ``fast=False`` skips the fast driver.

Threads: the parser is re-entrant. What is built once and shared is immutable after it
is built: the grammar, the fast driver (Lark's tables, see `FastLALR`) and the Lark
instance. Everything a parse changes is in the `AstBuilder` made for that parse (its
text, offsets, diagnostics, doc comments, open brackets), so parses in any number of
threads run at once, with no lock held while they do. Lark is built with a forwarding
transformer and post-lexer (`_LarkBridge`, `_Newlines`) that hand each callback to the
builder of the Lark parse running on the calling thread (`_CURRENT`); the fast driver is
given its builder directly. Nothing process-wide is changed by a parse. (It used to
pause the garbage collector, which the many small objects of a tree make worth a lot:
on a 1.6 MB file, 1.2 s of CPU with the collector paused against 2.0 s without. Only the
application may choose that for its process, once, never a library call.) Nesting is
no risk to the interpreter's stack: both LALR loops keep their stacks in lists, the
builder's callbacks do not recurse per level, and the depth limits are checked by an
iterative pass (`bounds.check_nesting`); so a file nested 50,000 deep is refused with
E0011 at the default recursion limit, on any thread.

Start-up: the driver's tables, derived from Lark once, are stored in the cache directory
with Lark's own instance (`cfglang.syntax.store`, which also says why they are trusted).
A new process that finds the tables builds the driver from them and builds Lark only
when it needs it (a syntax error, `lex_tokens`, ``fast=False``), so parsing valid files
never imports lark. Tables that do not load or no longer fit the builder are derived
again and replaced. They are used whatever ``CFLC_NO_CACHE`` says: they hold nothing of
the user's.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Diagnostic, Note
from cfglang.limits import source_size_limit
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast, store
from cfglang.syntax.bounds import check_nesting, check_text
from cfglang.syntax.build import OUTER, AstBuilder, _subst_end, accept_lark_tokens
from cfglang.syntax.fastlalr import (
    FastLALR,
    LexerCallback,
    NewlineRules,
    ParseFailed,
    Unsupported,
    derive_tables,
)
from cfglang.syntax.grammar import grammar_path
from cfglang.values import DURATION_UNIT_MS, SIZE_UNITS, did_you_mean_unit, unit_suggestions

if TYPE_CHECKING:
    from lark import Lark

__all__ = [
    "NEWLINES",
    "continues_after",
    "grammar_path",
    "lex_tokens",
    "parse_expression",
    "parse_module",
]

_SIMPLE_PATH = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*")
# Words that are keywords or need the parser (`self`, `super`, literals).
_NOT_NAMES = frozenset(
    {"self", "super", "true", "false", "null", "if", "for", "in", "else", "then", "let", "where"}
)
# Each opening bracket's token and the text that closes it (for the help of E0002).
_OPENERS = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
_MATCHING = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}  # closer -> opener

# The newline rules (see `NewlineRules`): a line break is dropped at the start of the
# input, right after one or after `;` (one is enough), inside brackets other than `{`,
# and after a token that cannot end a statement (an operator, a keyword that needs more).
NEWLINES = NewlineRules(
    newline="_NL",
    after=frozenset({"_NL", "SEMICOLON"}),
    openers=frozenset(_OPENERS),
    closers=frozenset(_MATCHING),
    keep_inside=frozenset({"LBRACE"}),
    continue_values=frozenset(
        {
            ",",
            ".",
            "(",
            "[",
            "{",
            "||",
            "&&",
            "!",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "+",
            "-",
            "*",
            "/",
            "%",
            "|",
            "then",
            "else",
            "in",
            "where",
            "extends",
        }
    ),
    # A name or a string spelled like an operator or a keyword is neither.
    not_operators=frozenset({"NAME", "STRING", "MSTRING", "RAW_STRING", "RAW_MSTRING"}),
)

_VALUE_STARTS = frozenset({"INT", "STRING", "NAME", "LBRACE", "LSQB"})
_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "MSTRING": "a string",
    "RAW_STRING": "a string",
    "RAW_MSTRING": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "DURATION": "a duration",
    "SIZE": "a size",
    "_NL": "a new line",
    "$END": "the end of file",
    "SEMICOLON": "`;`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "QMARK": "`?`",
    "VBAR": "`|`",
    "OR": "`||`",
    "AND": "`&&`",
    "NOT": "`!`",
    "CMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
}


class _Current(threading.local):
    """The builder of the Lark parse (or lexing) running on this thread, if any."""

    builder: AstBuilder | None = None


_CURRENT = _Current()


@contextmanager
def _using(builder: AstBuilder) -> Iterator[AstBuilder]:
    """Lark's callbacks on this thread go to ``builder`` inside the block."""
    saved = _CURRENT.builder
    _CURRENT.builder = builder
    try:
        yield builder
    finally:
        _CURRENT.builder = saved


def _forwarder(method: Any) -> Any:
    def forward(self: Any, children: Any) -> Any:
        return method(_CURRENT.builder, children)

    forward.__name__ = method.__name__
    return forward


# Lark's transformer: Lark binds a callback per rule when it is built, and one Lark serves
# every thread, so each callback forwards to the builder of the parse on its thread.
_LarkBridge: type = type(
    "_LarkBridge",
    (),
    {
        name: _forwarder(member)
        for name, member in vars(AstBuilder).items()
        if not name.startswith("_") and callable(member)
    },
)


def _comment(tok: Any) -> Any:
    """Lark's lexer callback for comments (forwarded as the rules are)."""
    b = _CURRENT.builder
    return tok if b is None else b.comment(tok)


class _Newlines:
    """Lark's post-lexer: applies `NEWLINES` (drops line breaks that do not separate
    statements) and tracks the open brackets, which it leaves in the builder of the
    parse for the error messages."""

    always_accept = ("_NL",)

    def __init__(self, rules: NewlineRules) -> None:
        self.rules = rules

    def process(self, stream: Iterator[Any]) -> Iterator[Any]:
        rules = self.rules
        newline, after, keep_inside = rules.newline, rules.after, rules.keep_inside
        openers, closers = rules.openers, rules.closers
        continue_values, not_operators = rules.continue_values, rules.not_operators
        stack: list[Any] = []
        b = _CURRENT.builder
        if b is not None:
            b.brackets = stack
        prev: Any = None
        for tok in stream:
            t = tok.type
            if t == newline:
                if prev is None or prev.type in after:
                    continue
                if stack and stack[-1].type not in keep_inside:
                    continue
                if prev.value in continue_values and prev.type not in not_operators:
                    continue
            elif t in openers:
                stack.append(tok)
            elif t in closers and stack:
                stack.pop()
            prev = tok
            yield tok


_LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "start": ["start", "expr_start"],
    "keep_all_tokens": True,
    "maybe_placeholders": False,
}


class _Parser:
    """The shared, immutable parts of the parser (see the module docstring)."""

    def __init__(self) -> None:
        self.grammar = grammar_path().read_text(encoding="utf-8")
        self.postlex = _Newlines(NEWLINES)
        self.bridge = _LarkBridge()
        self._lark: Lark | None = None
        self._lark_lock = threading.Lock()  # held only while Lark is built
        self._count_lock = threading.Lock()
        # The fast driver runs Lark's own tables; Lark itself is the fallback and the
        # error path (see fastlalr). None when the configuration is outside its subset.
        self.fast: FastLALR | None = self._fast_driver()
        self.fallbacks = 0  # parses the fast driver handed to Lark (the tests watch it)

    @property
    def lark(self) -> Lark:
        """The Lark parser, built on first use: a new process that parses only valid
        files with stored driver tables never needs it (nor to import lark)."""
        lark_parser = self._lark
        if lark_parser is None:
            with self._lark_lock:
                if self._lark is None:
                    self._lark = self._build_lark()
                lark_parser = self._lark
        return lark_parser

    def _build_lark(self) -> Lark:
        import lark  # start-up: a parse with stored tables never loads lark

        accept_lark_tokens()
        live: dict[str, Any] = {
            "transformer": self.bridge,
            "postlex": self.postlex,
            "lexer_callbacks": {"COMMENT": _comment},
        }
        path = store.lark_path(self.grammar, _LARK_OPTIONS)
        if path is not None:
            stored = store.load_lark(path, live)
            if stored is not None:
                return stored
        built = lark.Lark(self.grammar, **_LARK_OPTIONS, **live)
        if path is not None:
            store.store_lark(path, built)
        return built

    def _fast_driver(self) -> FastLALR | None:
        """The fast driver, from stored tables if they fit, else derived from Lark (and
        stored for the next process); None if Lark's configuration is outside its subset."""
        callbacks: dict[str, LexerCallback] = {"COMMENT": AstBuilder.comment}
        path = store.tables_path(self.grammar, NEWLINES)
        if path is not None:
            tables = store.load_tables(path)
            if tables is not None:
                try:
                    return FastLALR(tables, AstBuilder, NEWLINES, callbacks)
                # Stale or damaged (the file may be cut short or edited anyhow): derived
                # again below.
                except (Unsupported, LookupError, TypeError, ValueError, AttributeError):
                    pass
        try:
            tables = derive_tables(self.lark, self.bridge, NEWLINES)
            fast = FastLALR(tables, AstBuilder, NEWLINES, callbacks)
        # `Unsupported`, or a Lark whose internals moved: Lark alone.
        except (Unsupported, ImportError, LookupError, TypeError, ValueError, AttributeError):
            return None
        if path is not None and store.lark_version() == store.imported_lark_version():
            store.store_tables(path, tables)  # keyed by the version they were derived with
        return fast

    def _parse_substitution(self, b: AstBuilder, text: str, offset: int) -> ast.Expr:
        # Most substitutions are plain paths (`$<name>`, `$<db.host>`): build those
        # directly instead of starting a parse for each one.
        source = b.source
        m = _SIMPLE_PATH.fullmatch(text)
        if m is not None and m.group(1) not in _NOT_NAMES:
            start = offset + m.start(1)
            node: ast.Expr = ast.Name(m.group(1), Span(source, start, offset + m.end(1)))
            pos = offset + m.end(1)
            for part in m.group(2).split(".")[1:]:
                name_span = Span(source, pos + 1, pos + 1 + len(part))
                whole = Span(source, start, name_span.end)
                if node.__class__ is ast.Name and node.name == OUTER:
                    node = ast.OuterName(part, whole, name_span)  # as `AstBuilder.getattr`
                else:
                    node = ast.GetAttr(node, part, name_span, whole)
                pos = name_span.end
            return node

        # The substitution is parsed with the file's builder, at its offset; what it
        # changes of the file's parse (the offset, Lark's open brackets) is put back.
        saved = b.offset, b.brackets
        b.offset = offset
        try:
            if b.fast:
                # Inside a fast parse. A failure here fails the whole fast parse, and Lark
                # redoes the file from scratch, so nothing the attempt recorded survives.
                assert self.fast is not None
                fast_expr: ast.Expr = self.fast.parse(text, "expr_start", b)
                return fast_expr
            from lark.exceptions import UnexpectedInput  # lazy: only inside a Lark parse

            try:
                with _using(b):
                    expr: ast.Expr = self.lark.parse(text, start="expr_start")  # type: ignore[assignment]
                return expr
            except UnexpectedInput as e:
                pos = offset + (getattr(e, "pos_in_stream", None) or 0)
                b.diags.append(
                    Diagnostic(
                        "E0008",
                        "invalid expression in substitution",
                        Span(source, pos, min(pos + 1, offset + len(text))),
                        label="expected an expression here",
                        help=(
                            "a `>` inside `$<...>` ends it; parenthesise comparisons: `$<(a > b)>`"
                        ),
                    )
                )
                return ast.Literal(None, Span(source, offset, offset + len(text)))
        finally:
            b.offset, b.brackets = saved

    def parse(
        self, source: SourceFile, start: str = "start", fast: bool | None = None
    ) -> tuple[Any, list[Diagnostic]]:
        if fast is None:
            fast = os.environ.get("CFLC_PARSER", "") != "lark"
        refused = check_text(source, source_size_limit())
        if refused is not None:
            return None, [refused]
        try:
            result, diags, b = self._parse_tree(source, start, fast)
        except RecursionError:
            # Not met by nesting (see the module docstring); kept as a diagnostic rather
            # than a crash should some construct still recurse.
            return None, [
                Diagnostic("E0011", "the file is nested too deeply to parse", Span(source, 0, 0))
            ]
        if result is not None:
            too_deep = check_nesting(result, source, b.parens)
            if too_deep is not None:
                # Dropped like a tree with a syntax error: no later phase walks it.
                return None, [too_deep]
        return result, diags

    def _parse_tree(
        self, source: SourceFile, start: str, fast: bool
    ) -> tuple[Any, list[Diagnostic], AstBuilder]:
        """The fast driver's tree, else Lark's (or its error), and the parse's builder."""
        if fast and self.fast is not None:
            b = AstBuilder(source, self._parse_substitution, fast=True)
            try:
                result = self.fast.parse(source.text, start, b)
                return result, [*b.diags, *b.pending.values()], b
            except ParseFailed:
                # Lark parses it again, and reports the error if there is one.
                with self._count_lock:
                    self.fallbacks += 1
        lark_parser = self.lark
        from lark.exceptions import UnexpectedInput  # lazy: only when Lark parses

        b = AstBuilder(source, self._parse_substitution)
        with _using(b):
            try:
                result = lark_parser.parse(source.text, start=start)
            except UnexpectedInput as e:
                return None, [*b.diags, _friendly(self, b, e, source)], b
        return result, [*b.diags, *b.pending.values()], b


_PARSER: _Parser | None = None
_PARSER_LOCK = threading.Lock()


def _parser() -> _Parser:
    """The process's parser, built by the first thread that needs it."""
    global _PARSER
    p = _PARSER
    if p is None:
        with _PARSER_LOCK:
            if _PARSER is None:
                _PARSER = _Parser()
            p = _PARSER
    return p


def parse_module(
    source: SourceFile, *, fast: bool | None = None
) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse a whole file. Returns the module (None on a syntax error) and diagnostics.

    ``fast=False`` (or ``CFLC_PARSER=lark`` in the environment) skips the fast driver
    and parses with Lark alone; the result is the same, only slower. Safe to call from
    any number of threads at once.
    """
    result, diags = _parser().parse(source, fast=fast)
    return result, diags


def parse_expression(
    source: SourceFile, *, fast: bool | None = None
) -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse a standalone expression (``cflc eval``)."""
    result, diags = _parser().parse(source, start="expr_start", fast=fast)
    return result, diags


# ---- friendly syntax errors -------------------------------------------------------------------


def _describe(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    if name.startswith("KW_") or name in ("FINAL", "HIDDEN", "ELSE", "FROM", "ENV", "IN"):
        return f"`{name.removeprefix('KW_').lower()}`"
    return f"`{name.lower()}`"


def _expected_words(expected: set[str]) -> str:
    words = sorted({_describe(n) for n in expected})
    if len(words) > 6:
        words = [*words[:6], "..."]
    return ", ".join(words)


def _friendly(self: _Parser, b: AstBuilder, e: Any, source: SourceFile) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken  # lazy: only after Lark

    text = source.text
    if isinstance(e, UnexpectedCharacters):
        pos: int = e.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        if ch == '"' or (ch == "r" and text[pos + 1 : pos + 2] == '"'):
            multi = text.startswith('"""', pos) or text.startswith('r"""', pos)
            q = pos + (1 if ch == "r" else 0)
            nl = text.find("\n", pos)
            end = len(text) if multi or nl < 0 else nl
            if ch == '"' and not multi:
                sub = _open_substitution(text, q + 1, end)
                if sub is not None:
                    # The string is closed; an unclosed `$<` inside it swallowed the quote.
                    return Diagnostic(
                        "E0008",
                        "substitution is not closed by `>`",
                        Span(source, sub, sub + 2),
                        label="this `$<` is never closed",
                        help="end the substitution with `>`; write `$$<` for a literal `$<`",
                    )
            return Diagnostic(
                "E0003",
                "unterminated string",
                Span(source, q, q + (3 if multi else 1)),
                label="this string is never closed",
                notes=(
                    Note(
                        "the file ends here" if multi or end == len(text) else "the line ends here",
                        Span(source, end, end),
                    ),
                ),
                help='close it with `"`'
                + ('; use `"""` for text over several lines' if not multi else ""),
            )
        if ch == "$" or ch == "<":
            pass
        return Diagnostic(
            "E0004",
            f"unexpected character `{ch}`",
            Span(source, pos, pos + 1),
            label="no CFL token starts with this character",
        )
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = set(e.expected or ())
        if tok.type == "$END":
            stack = b.brackets
            if stack:
                opener = stack[-1]
                if opener.type == "LBRACE":
                    by_indent = _unclosed_by_indentation(self, source)
                    if by_indent is not None:
                        return _unclosed_brace(source, *by_indent)
                return Diagnostic(
                    "E0002",
                    f"unclosed `{opener.value}`",
                    Span(source, opener.start_pos, opener.start_pos + 1),
                    label="this delimiter is never closed",
                    notes=(Note("the file ends here", Span(source, len(text), len(text))),),
                    help=f"add `{_OPENERS[opener.type]}`",
                )
            pos = len(text)
            return Diagnostic(
                "E0001",
                "unexpected end of file",
                Span(source, pos, pos),
                label=f"expected {_expected_words(expected)}",
            )
        start = tok.start_pos or 0
        span = Span(source, start, start + max(1, len(tok.value or "")))
        stack = b.brackets
        if stack and stack[-1].type != "LBRACE" and _never_closed(self, source, stack[-1]):
            # Line breaks are ignored inside ( and [, so a missing closer surfaces as a
            # confusing token lines later; the user must edit at the opener.
            opener = stack[-1]
            return Diagnostic(
                "E0002",
                f"unclosed `{opener.value}`",
                Span(source, opener.start_pos, opener.start_pos + 1),
                label="this delimiter is never closed",
                notes=(Note("the file ends here", Span(source, len(text), len(text))),),
                help=f"add `{_OPENERS[opener.type]}`",
            )
        in_body = not stack or stack[-1].type == "LBRACE"
        if tok.type == "COMMA" and in_body:
            return Diagnostic(
                "E0006",
                "stray comma",
                span,
                label="fields are separated by new lines or `;`",
                help="remove the comma, or write `;`",
            )
        if tok.type == "COMMA":
            return Diagnostic(
                "E0006",
                "stray comma",
                span,
                label="nothing to separate here",
                help="remove the comma",
            )
        if tok.type == "COLON" and "EQUAL" in expected:
            return Diagnostic(
                "E0005",
                "expected `=` to set a value, found `:`",
                span,
                help="write `key = value`; `key: T` declares a type",
            )
        if tok.type == "_NL" and expected & _VALUE_STARTS:
            return Diagnostic(
                "E0001",
                "expected a value, found the end of the line",
                span,
                label="a value must follow on the same line",
            )
        unit = _unit_typo(text, start, tok)
        if unit is not None:
            begin, bad, hint = unit
            end = start + len(tok.value)
            return Diagnostic(
                "E0007",
                f"unknown unit `{bad}` in `{text[begin:end]}`",
                Span(source, begin, end),
                label="not a duration or size unit",
                help=hint,
            )
        if tok.type == "_NL":
            what = "a new line"
        else:
            what = f"`{tok.value}`"
        return Diagnostic(
            "E0001", f"unexpected {what}", span, label=f"expected {_expected_words(expected)}"
        )
    pos = getattr(e, "pos_in_stream", 0) or 0
    return Diagnostic("E0001", "syntax error", Span(source, pos, pos + 1))


_UNITS_THERE_ARE = (
    "a duration's unit is ms, s, m, h or d; a size's B, KB, MB, GB, TB, PB, "
    "KiB, MiB, GiB, TiB or PiB"
)


def _unit_typo(text: str, start: int, tok: Any) -> tuple[int, str, str] | None:
    """A name glued to the number before it (`4Gb`, `10sec`, `5mins`, `1h30mins`) that
    spells a unit CFL lacks: where the literal starts, its misspelt unit and the
    did-you-mean (else the units there are), instead of the parser's token list."""
    if tok.type != "NAME" or not tok.value:
        return None
    i = start
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
        i -= 1
    word = text[i:start] + tok.value
    if not word[0].isdigit():
        return None  # part of a name (`x4Gb`), not a number
    if re.fullmatch(r"(?:\d+[A-Za-z]+)+", word):
        # `1h30mins`: the duration lexed as `1h30m`, then `ins`; fix each segment.
        segments = re.findall(r"(\d+)([A-Za-z]+)", word)
        bad = [u for _, u in segments if not _is_unit(u)]
        if len(segments) > 1 and len(bad) == 1:
            if not unit_suggestions(bad[0]):
                return i, bad[0], _UNITS_THERE_ARE
            fixed = "".join(n + (u if _is_unit(u) else unit_suggestions(u)[0]) for n, u in segments)
            return i, bad[0], f"did you mean {fixed}?"
        if len(segments) == 1:
            number, unit = segments[0]
            return i, unit, did_you_mean_unit(number, unit) or _UNITS_THERE_ARE
    if _is_unit(tok.value):
        return None  # `1.5GB`: the unit is right, the number is not (the parser says so)
    j = start
    while j > i and (text[j - 1].isdigit() or text[j - 1] in "_."):
        j -= 1
    if j != i or not text[i:start].isdigit():
        # Letters before the number (a duration with more after it), or `1.5Gb`, `3_000sec`:
        # durations and sizes are whole numbers without `_`, so no unit would make it one.
        return None
    return i, tok.value, did_you_mean_unit(text[i:start], tok.value) or _UNITS_THERE_ARE


def _is_unit(unit: str) -> bool:
    return unit in DURATION_UNIT_MS or unit in SIZE_UNITS


def _indent(text: str, pos: int) -> tuple[int, int]:
    """The start of the line holding ``pos`` and the width of its leading blanks."""
    line = text.rfind("\n", 0, pos) + 1
    i = line
    while i < len(text) and text[i] in " \t":
        i += 1
    return line, i - line


def _unclosed_by_indentation(self: _Parser, source: SourceFile) -> tuple[Any, int | None] | None:
    """Which `{` the indentation says was never closed, when the file ends inside a
    block (docs/errors.md, E0002): the brace that is still open at the end, or whose
    matching `}` sits on a later line indented less than the brace's own line (that
    `}` was written for an enclosing block), the last such brace in the file. Also the
    first line after it that returns to or below its indentation (where the `}` is
    missing), if there is one. None when lexing fails."""
    from lark.exceptions import UnexpectedInput  # lazy: only on the error path (lark is loaded)

    text = source.text
    try:
        with _using(AstBuilder(source)):
            tokens = [t for t in self.lark.lex(text) if t.type in ("LBRACE", "RBRACE")]
    except UnexpectedInput:
        return None
    stack: list[Any] = []
    candidates: list[Any] = []
    for tok in tokens:
        if tok.type == "LBRACE":
            stack.append(tok)
            continue
        if not stack:
            continue
        opener = stack.pop()
        o_line, o_indent = _indent(text, opener.start_pos or 0)
        c_line, c_indent = _indent(text, tok.start_pos or 0)
        if c_line != o_line and c_indent < o_indent:
            candidates.append(opener)
    candidates += stack
    if not candidates:
        return None
    brace = max(candidates, key=lambda t: t.start_pos)
    _, indent = _indent(text, brace.start_pos)
    nxt = text.find("\n", brace.start_pos)
    while nxt >= 0:
        start = nxt + 1
        end = text.find("\n", start)
        body = text[start : len(text) if end < 0 else end]
        stripped = body.lstrip(" \t")
        if stripped and not stripped.startswith("#"):
            if len(body) - len(stripped) <= indent:
                return brace, start + len(body) - len(stripped)
        nxt = end
    return brace, None


def _unclosed_brace(source: SourceFile, brace: Any, returns_at: int | None) -> Diagnostic:
    text = source.text
    notes = [Note("the file ends here", Span(source, len(text), len(text)))]
    help = "add `}`"
    if returns_at is not None:
        notes.insert(
            0,
            Note(
                "this line returns to the brace's indentation without closing it",
                Span(source, returns_at, returns_at),
            ),
        )
        help = f"add `}}` before line {source.text.count(chr(10), 0, returns_at) + 1}"
    return Diagnostic(
        "E0002",
        "unclosed `{`",
        Span(source, brace.start_pos, brace.start_pos + 1),
        label="this delimiter is never closed",
        notes=tuple(notes),
        help=help,
    )


def _open_substitution(text: str, start: int, end: int) -> int | None:
    """Position of a `$<` in text[start:end] that is never closed, if a `"` follows it."""
    i = start
    while i < end:
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith("$$<", i):
            i += 3
            continue
        if text.startswith("$<", i):
            close = _subst_end(text[:end], i + 2)
            if close < 0:
                return i if '"' in text[i:end] else None
            i = close + 1
            continue
        if text[i] == '"':
            return None
        i += 1
    return None


def _never_closed(self: _Parser, source: SourceFile, opener: Any) -> bool:
    """Whether `opener` has no matching closer anywhere in the file (lexing only)."""
    from lark.exceptions import UnexpectedInput  # lazy: only on the error path (lark is loaded)

    stack: list[Any] = []
    try:
        # Lexing runs the post-lexer and the comment callback: they get a builder of
        # their own, so the failed parse's brackets stay as they are.
        with _using(AstBuilder(source)):
            tokens = list(self.lark.lex(source.text))
        for tok in tokens:
            if tok.type in _OPENERS:
                stack.append(tok)
            elif tok.type in _MATCHING:
                want = _MATCHING[tok.type]
                # A mismatched closer closes the nearest opener of its kind; the ones
                # above it stay unclosed.
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i].type == want:
                        if stack[i].start_pos == opener.start_pos:
                            return False
                        del stack[i]
                        break
    except UnexpectedInput:  # a lexing error elsewhere: no verdict, keep the generic message
        return False
    return any(t.start_pos == opener.start_pos for t in stack)


def continues_after(token_type: str, text: str) -> bool:
    """Whether a line break right after this token continues the statement (`a +`,
    `a.extends`) instead of ending it; the formatter separates such a statement from the
    next one with `;`."""
    return text in NEWLINES.continue_values and token_type not in NEWLINES.not_operators


def lex_tokens(source: SourceFile) -> list[tuple[str, int, int]]:
    """Every token of ``source`` as ``(type, start, end)``, comments included.

    For the formatter, which needs the comments (ignored by the grammar) and the exact
    spelling of a few tokens the tree keeps only decoded. Whitespace is left out. Raises
    `lark.exceptions.UnexpectedInput` on text that does not parse; callers parse first.

    The code tokens are the ones the parser saw, not those of a context-free lexing: the
    contextual lexer splits `where1` into `where` and `1` where a name cannot follow, and
    a plain lexing, reading one name, would give the formatter other tokens than the
    tree's. Comments are the same in both (a `#` outside a string starts one in every
    state), so they come from the plain lexing.
    """
    p = _parser()
    # Lexing and parsing run Lark's callbacks: they build into a builder of their own
    # (substitutions inside strings are parsed by Lark too).
    with _using(AstBuilder(source)):
        comments = [
            (tok.type, tok.start_pos or 0, tok.end_pos or 0)
            for tok in p.lark.lex(source.text, dont_ignore=True)
            if tok.type == "COMMENT"
        ]
    with _using(AstBuilder(source, p._parse_substitution)):
        interactive = p.lark.parse_interactive(source.text, start="start")
        code = [
            (tok.type, tok.start_pos or 0, tok.end_pos or 0)
            for tok in interactive.iter_parse()
            if not tok.type.startswith("__")
        ]
    return sorted([*comments, *code], key=lambda t: t[1])
