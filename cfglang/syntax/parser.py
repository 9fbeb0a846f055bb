"""The parser: Lark LALR(1) with the contextual lexer, built once per process.

`parse_module` turns text into an `ast.Module` (built during the parse by
`build.AstBuilder`) or reports one syntax diagnostic. Lark's errors are translated into
friendly ones here: expected tokens in words, and labels for the common mistakes
(an unclosed `{`, an unterminated string, a stray comma).

Newlines separate statements, except inside `(...)`/`[...]` and after a token that cannot
end one; `_Newlines` (the post-lexer) applies those rules so the grammar stays LALR(1).
The compiled grammar is cached in the user cache directory (site-packages may be
read-only), which halves parser construction time in a new process.

Lark's tables are run by `fastlalr.FastLALR`, a tight loop several times faster than
Lark's own; it applies the same newline rules inline. Whatever it cannot parse (a syntax
error, above all) is parsed again by Lark, so the errors, and the diagnostics made from
them, are Lark's. ``CFLC_PARSER=lark`` or ``fast=False`` skips the fast driver.

Start-up: the driver's tables, derived from Lark once, are stored beside Lark's grammar
cache (``fastlalr-<key>.tables``, marshal, keyed by the driver's format, lark's and
Python's versions, the newline rules and the grammar text). A new process that finds them
builds the driver from them and builds Lark only when it needs it (a syntax error,
`lex_tokens`, ``fast=False``), so parsing valid files never imports lark. Tables that do
not load or no longer fit the builder are derived again and replaced. Like Lark's grammar
cache, they are used whatever ``CFLC_NO_CACHE`` says: they hold nothing of the user's.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Diagnostic, Note
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast

if TYPE_CHECKING:
    from lark import Lark

    from cfglang.syntax.fastlalr import FastLALR, NewlineRules, Tables

_SIMPLE_PATH = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*")
# Words that are keywords or need the parser (`self`, `super`, literals).
_NOT_NAMES = frozenset(
    {"self", "super", "true", "false", "null", "if", "for", "in", "else", "then", "let", "where"}
)
_OPENERS = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}
# Tokens after which a line break continues the statement instead of ending it.
_CONTINUE_VALUES = frozenset(
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
)
_NOT_OPERATORS = frozenset({"NAME", "STRING", "MSTRING", "RAW_STRING", "RAW_MSTRING"})
# A line break right after these is one too many; inside brackets other than `{` it is none.
_NL_AFTER = frozenset({"_NL", "SEMICOLON"})
_NL_INSIDE = frozenset({"LBRACE"})

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


def grammar_path() -> Path:
    """The grammar inside the wheel, or in the source tree when running from a checkout."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "_data" / "grammar" / "cfl.lark", here.parent / "grammar" / "cfl.lark"):
        if cand.is_file():
            return cand
    raise FileNotFoundError("grammar/cfl.lark is missing from the installation")


class _Newlines:
    """Post-lexer: drops line breaks that do not separate statements; tracks brackets."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.stack: list[Any] = []

    def process(self, stream: Iterator[Any]) -> Iterator[Any]:
        stack: list[Any] = []
        self.stack = stack
        prev: Any = None
        for tok in stream:
            t = tok.type
            if t == "_NL":
                if prev is None or prev.type in _NL_AFTER:
                    continue
                if stack and stack[-1].type not in _NL_INSIDE:
                    continue
                if prev.value in _CONTINUE_VALUES and prev.type not in _NOT_OPERATORS:
                    continue
            elif t in _OPENERS:
                stack.append(tok)
            elif t in _CLOSERS and stack:
                stack.pop()
            prev = tok
            yield tok


class _Parser:
    def __init__(self) -> None:
        from cfglang.syntax.build import AstBuilder
        from cfglang.syntax.fastlalr import NewlineRules

        self.builder = AstBuilder()
        self.builder.parse_expr = self._parse_substitution
        self.postlex = _Newlines()
        self.lock = threading.RLock()
        self.grammar = grammar_path().read_text(encoding="utf-8")
        self._docs_pending: dict[int, str] = {}
        self._lark: Lark | None = None
        self.callbacks: dict[str, Any] = {"COMMENT": self._comment}
        self.newlines = NewlineRules(  # `_Newlines`, as data
            newline="_NL",
            after=_NL_AFTER,
            openers=frozenset(_OPENERS),
            closers=frozenset(_CLOSERS),
            keep_inside=_NL_INSIDE,
            continue_values=_CONTINUE_VALUES,
            not_operators=_NOT_OPERATORS,
        )
        # The fast driver runs Lark's own tables; Lark itself is the fallback and the
        # error path (see fastlalr). None when the configuration is outside its subset.
        self.fast: FastLALR | None = self._fast_driver()
        self.use_fast = False
        self.fallbacks = 0  # parses the fast driver handed to Lark (the tests watch it)

    @property
    def lark(self) -> Lark:
        """The Lark parser, built on first use: a new process that parses only valid
        files with stored driver tables never needs it (nor to import lark)."""
        with self.lock:
            if self._lark is None:
                self._lark = self._build_lark()
            return self._lark

    def _build_lark(self) -> Lark:
        import lark

        from cfglang.cache import cache_dir as user_cache_dir
        from cfglang.syntax.build import accept_lark_tokens

        accept_lark_tokens()
        cache_dir = user_cache_dir()
        cache: str | bool = False
        if cache_dir is not None:
            digest = hashlib.sha256((self.grammar + lark.__version__).encode()).hexdigest()[:16]
            cache = str(cache_dir / f"grammar-{digest}.lark.cache")
        return lark.Lark(
            self.grammar,
            parser="lalr",
            lexer="contextual",
            start=["start", "expr_start"],
            keep_all_tokens=True,
            maybe_placeholders=False,
            transformer=self.builder,
            postlex=self.postlex,
            lexer_callbacks=self.callbacks,
            cache=cache,
        )

    def _fast_driver(self) -> FastLALR | None:
        """The fast driver, from stored tables if they fit, else derived from Lark (and
        stored for the next process); None if Lark's configuration is outside its subset."""
        from cfglang.syntax.fastlalr import FastLALR, derive_tables

        path = _tables_path(self.grammar, self.newlines)
        if path is not None:
            tables = _load_tables(path)
            if tables is not None:
                try:
                    return FastLALR(tables, self.builder, self.newlines, self.callbacks)
                except Exception:  # stale or damaged: derive them again
                    pass
        try:
            tables = derive_tables(self.lark, self.builder, self.newlines)
            fast = FastLALR(tables, self.builder, self.newlines, self.callbacks)
        except Exception:  # `Unsupported`, or a Lark whose internals moved: Lark alone
            return None
        if path is not None and _lark_version() == _imported_lark_version():
            _store_tables(path, tables)  # keyed by the version they were derived with
        return fast

    def _comment(self, tok: Any) -> Any:
        text: str = tok.value
        if text.startswith("##"):
            src = self.builder.source.text
            start = tok.start_pos + self.builder.offset
            # Key the doc by where the next token starts, so the statement there finds it.
            # Trailing blanks (and the `\r` of a CRLF file) are not part of the doc: the
            # formatter drops them, and a doc must not change with the line endings.
            line = text[2:].rstrip()
            line = line[1:] if line.startswith(" ") else line
            prev = self._docs_pending.pop(start, None)
            doc = line if prev is None else prev + "\n" + line
            end = start + len(text)
            n = len(src)
            while end < n and src[end] in " \t\r\n":
                end += 1
            self._docs_pending[end] = doc
            self.builder.docs[end] = doc
        return tok

    def _parse_substitution(self, source: SourceFile, text: str, offset: int) -> ast.Expr:
        # Most substitutions are plain paths (`$<name>`, `$<db.host>`): build those
        # directly instead of starting a parse for each one.
        m = _SIMPLE_PATH.fullmatch(text)
        if m is not None and m.group(1) not in _NOT_NAMES:
            start = offset + m.start(1)
            node: ast.Expr = ast.Name(m.group(1), Span(source, start, offset + m.end(1)))
            pos = offset + m.end(1)
            for part in m.group(2).split(".")[1:]:
                name_span = Span(source, pos + 1, pos + 1 + len(part))
                node = ast.GetAttr(node, part, name_span, Span(source, start, name_span.end))
                pos = name_span.end
            return node

        saved = self.builder.offset
        self.builder.offset = offset
        try:
            if self.use_fast and self.fast is not None:
                # Inside a fast parse. A failure here fails the whole fast parse, and Lark
                # redoes the file from scratch, so nothing the attempt recorded survives.
                fast_expr: ast.Expr = self.fast.parse(text, "expr_start")
                return fast_expr
            from lark.exceptions import UnexpectedInput  # inside a Lark parse: imported

            try:
                expr: ast.Expr = self.lark.parse(text, start="expr_start")  # type: ignore[assignment]
                return expr
            except UnexpectedInput as e:
                pos = offset + (getattr(e, "pos_in_stream", None) or 0)
                self.builder.diags.append(
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
            self.builder.offset = saved

    def parse(
        self, source: SourceFile, start: str = "start", fast: bool | None = None
    ) -> tuple[Any, list[Diagnostic]]:
        if fast is None:
            fast = os.environ.get("CFLC_PARSER", "") != "lark"
        from cfglang.limits import source_size_limit
        from cfglang.syntax.bounds import check_text

        refused = check_text(source, source_size_limit())
        if refused is not None:
            return None, [refused]
        result, diags = self._parse(source, start, fast)
        if result is not None:
            from cfglang.syntax.bounds import check_nesting

            enabled = gc.isenabled()
            gc.disable()  # the pass allocates; a collection now would scan the whole new tree
            try:
                too_deep = check_nesting(result, source)
            finally:
                if enabled:
                    gc.enable()
            if too_deep is not None:
                # Dropped like a tree with a syntax error: no later phase walks it.
                return None, [too_deep]
        return result, diags

    def _parse(self, source: SourceFile, start: str, fast: bool) -> tuple[Any, list[Diagnostic]]:
        with self.lock:
            b = self.builder
            enabled = gc.isenabled()
            gc.disable()  # the parse allocates many small objects and frees none of them
            saved_use_fast = self.use_fast
            try:
                if fast and self.fast is not None:
                    b.source, b.offset, b.diags, b.docs, b.pending = source, 0, [], {}, {}
                    self._docs_pending = {}
                    self.use_fast = True
                    try:
                        result = self.fast.parse(source.text, start)
                        return result, [*b.diags, *b.pending.values()]
                    except Exception:
                        # Lark parses it again, and reports the error if there is one.
                        self.fallbacks += 1
                self.use_fast = False
                lark_parser = self.lark
                from lark.exceptions import UnexpectedInput

                b.source, b.offset, b.diags, b.docs, b.pending = source, 0, [], {}, {}
                self._docs_pending = {}
                try:
                    result = lark_parser.parse(source.text, start=start)
                except UnexpectedInput as e:
                    return None, [*b.diags, _friendly(self, e, source)]
                return result, [*b.diags, *b.pending.values()]
            except RecursionError:
                return None, [
                    Diagnostic(
                        "E0011", "the file is nested too deeply to parse", Span(source, 0, 0)
                    )
                ]
            finally:
                self.use_fast = saved_use_fast
                if enabled:
                    gc.enable()


# ---- stored driver tables ---------------------------------------------------------------------


def _lark_version() -> str | None:
    """The installed lark's version, read from its source without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("lark")
        if spec is None or spec.origin is None:
            return None
        head = Path(spec.origin).read_text(encoding="utf-8")
    except (ImportError, OSError, ValueError):
        return None
    m = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", head, re.M)
    return m.group(1) if m else None


def _imported_lark_version() -> str | None:
    import lark

    return lark.__version__


def _tables_path(grammar: str, newlines: NewlineRules) -> Path | None:
    """Where the fast driver's tables for this grammar, lark, Python and driver live.

    In the user cache directory, beside Lark's own grammar cache and, like it, used
    whatever ``CFLC_NO_CACHE`` says: it holds no user data, only what the installed
    cflc would derive anyway. None without a writable cache directory, or if lark's
    version cannot be read without importing it.
    """
    import sys

    from cfglang.cache import cache_dir
    from cfglang.syntax.fastlalr import FORMAT

    version = _lark_version()
    directory = cache_dir()
    if version is None or directory is None:
        return None
    python = sys.version  # the tables hold compiled code
    key = "\0".join([str(FORMAT), version, python, newlines.key(), grammar])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return directory / f"fastlalr-{digest}.tables"


def _load_tables(path: Path) -> Tables | None:
    """The tables stored at ``path``, or None if missing or unreadable (rebuilt then)."""
    import marshal

    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("file") != path.name:
        return None
    tables = data.get("tables")
    return tables if isinstance(tables, dict) else None


def _store_tables(path: Path, tables: Tables) -> None:
    """Store ``tables`` atomically (a reader sees the old file or the new, never half)."""
    import marshal

    from cfglang.atomic import write_atomic

    try:
        write_atomic(path, marshal.dumps({"file": path.name, "tables": tables}))
    except (OSError, ValueError):
        pass  # an optimisation: a full or read-only disk must not fail a parse


@lru_cache(maxsize=1)
def _parser() -> _Parser:
    return _Parser()


def parse_module(
    source: SourceFile, *, fast: bool | None = None
) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse a whole file. Returns the module (None on a syntax error) and diagnostics.

    ``fast=False`` (or ``CFLC_PARSER=lark`` in the environment) skips the fast driver
    and parses with Lark alone; the result is the same, only slower.
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


def _friendly(self: _Parser, e: Any, source: SourceFile) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

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
            stack = self.postlex.stack
            if stack:
                opener = stack[-1]
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
        stack = self.postlex.stack
        if stack and stack[-1].type != "LBRACE" and _never_closed(self, text, stack[-1]):
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
        if tok.type == "_NL":
            what = "a new line"
        else:
            what = f"`{tok.value}`"
        return Diagnostic(
            "E0001", f"unexpected {what}", span, label=f"expected {_expected_words(expected)}"
        )
    pos = getattr(e, "pos_in_stream", 0) or 0
    return Diagnostic("E0001", "syntax error", Span(source, pos, pos + 1))


def _open_substitution(text: str, start: int, end: int) -> int | None:
    """Position of a `$<` in text[start:end] that is never closed, if a `"` follows it."""
    from cfglang.syntax.build import _subst_end

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


def _never_closed(self: _Parser, text: str, opener: Any) -> bool:
    """Whether `opener` has no matching closer anywhere in the file (lexing only)."""
    saved = self.postlex.stack
    stack: list[Any] = []
    try:
        for tok in self.lark.lex(text):
            if tok.type in _OPENERS:
                stack.append(tok)
            elif tok.type in _CLOSERS:
                want = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}[tok.type]
                # A mismatched closer closes the nearest opener of its kind; the ones
                # above it stay unclosed.
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i].type == want:
                        if stack[i].start_pos == opener.start_pos:
                            return False
                        del stack[i]
                        break
    except Exception:  # a lexing error elsewhere: no verdict, keep the generic message
        return False
    finally:
        self.postlex.stack = saved
    return any(t.start_pos == opener.start_pos for t in stack)


def continues_after(token_type: str, text: str) -> bool:
    """Whether a line break right after this token continues the statement (`a +`,
    `a.extends`) instead of ending it; the formatter separates such a statement from the
    next one with `;`."""
    return text in _CONTINUE_VALUES and token_type not in _NOT_OPERATORS


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
    with p.lock:
        # Lexing runs the post-lexer, whose bracket stack the error messages read (and
        # the doc-comment callback, whose notes the next parse resets).
        saved = p.postlex.stack
        saved_use_fast = p.use_fast
        b = p.builder
        try:
            comments = [
                (tok.type, tok.start_pos or 0, tok.end_pos or 0)
                for tok in p.lark.lex(source.text, dont_ignore=True)
                if tok.type == "COMMENT"
            ]
            b.source, b.offset, b.diags, b.docs, b.pending = source, 0, [], {}, {}
            p._docs_pending = {}
            p.use_fast = False  # substitutions inside strings are parsed by Lark too
            interactive = p.lark.parse_interactive(source.text, start="start")
            code = [
                (tok.type, tok.start_pos or 0, tok.end_pos or 0)
                for tok in interactive.iter_parse()
                if not tok.type.startswith("__")
            ]
        finally:
            p.postlex.stack = saved
            p.use_fast = saved_use_fast
        return sorted([*comments, *code], key=lambda t: t[1])
