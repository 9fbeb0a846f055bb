"""Pygments lexer for CFL, registered as the `cfl` entry point of `pygments.lexers`.

The lexer follows the grammar in grammar/cfl.lark: keywords that may also be field names
(`type check output input schema template import extends`) are lexed as field names
(`Name.Attribute`) when a field follows (`type = "postgres"`), `as from env` are keywords
only in `import … as` and `input … from env`, types after `:` are lexed as types, and the
`$<expr>` substitutions inside strings are lexed as nested expressions.

Token types: field names `Name.Attribute`, declared types and schemas `Name.Class`, builtin
types `Keyword.Type`, templates `Name.Function`, builtin functions `Name.Builtin`, lets,
inputs and loop variables `Name.Variable`, durations `Number.Duration`, sizes `Number.Size`,
substitution delimiters `String.Interpol`, doc comments (`##`) `String.Doc`.
"""

from __future__ import annotations

from typing import Any, ClassVar

# Pygments ships no type information (and types-Pygments is not a dependency).
from pygments.lexer import (  # type: ignore[import-untyped]
    RegexLexer,
    bygroups,
    default,
    include,
    words,
)
from pygments.token import (  # type: ignore[import-untyped]
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

__all__ = ["CflLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DQ = r'"(?:[^"\\\n]|\\.)*"'
# Reserved words that can never be a field name (the others are listed in language.md §1).
_NOT_FIELD = (
    r"(?!(?:if|then|else|for|in|true|false|null|self|super|let|final|hidden|unset|"
    r"where)\b)"
)
# A field name: the first word of a key path followed by `= += : { extends where`.
_FIELD = (
    rf"{_NOT_FIELD}({_NAME})(?=(?:[ \t]*\.[ \t]*(?:{_NAME}|{_DQ}))*[ \t]*"
    r"(?:\+?=(?!=)|[:{]|extends\b|where\b))"
)
_FOR_HEAD = rf"(for)(\s+)({_NAME})(?:(\s*)(,)(\s*)({_NAME}))?(\s+)(in)\b"
_FOR_TOKENS = bygroups(
    Keyword,
    Whitespace,
    Name.Variable,
    Whitespace,
    Punctuation,
    Whitespace,
    Name.Variable,
    Whitespace,
    Keyword,
)

BUILTIN_TYPES = (
    "bool",
    "int",
    "float",
    "string",
    "duration",
    "size",
    "any",
    "secret",
    "list",
    "map",
)
BUILTIN_FUNCTIONS = (
    "len",
    "keys",
    "values",
    "matches",
    "startswith",
    "endswith",
    "contains",
    "lower",
    "upper",
    "trim",
    "split",
    "join",
    "replace",
    "min",
    "max",
    "sum",
    "all",
    "any",
    "unique",
    "sort",
    "range",
    "int",
    "float",
    "string",
    "seconds",
    "millis",
    "bytes",
    "default",
)


class CflLexer(RegexLexer):  # type: ignore[misc]
    """Lexer for CFL, the typed configuration language of cfglang (`*.cfl`)."""

    name = "CFL"
    aliases: ClassVar[list[str]] = ["cfl", "cfglang"]
    filenames: ClassVar[list[str]] = ["*.cfl"]
    mimetypes: ClassVar[list[str]] = ["text/x-cfl"]
    url = "https://github.com/cfglang/cfglang"

    tokens: ClassVar[dict[str, list[Any]]] = {
        # ---- statements: the module and every `{ … }` body --------------------------------
        "root": [include("statements")],
        "body": [
            (r"\}", Punctuation, "#pop"),
            include("statements"),
        ],
        "statements": [
            (r"\s+", Whitespace),
            include("comments"),
            (_FIELD, Name.Attribute),
            (r"(import|extends)(?=\s*r?\")", Keyword.Namespace),
            (rf"(as)(\s+)({_NAME})", bygroups(Keyword.Namespace, Whitespace, Name.Namespace)),
            (
                rf"(type)(\s+)({_NAME})(\s*)(=)(?!=)",
                bygroups(Keyword.Declaration, Whitespace, Name.Class, Whitespace, Operator),
                "type",
            ),
            (
                rf"(schema)(\s+)({_NAME})(?:(\s+)(extends)(\s+)({_NAME}(?:\.{_NAME})*))?",
                bygroups(
                    Keyword.Declaration,
                    Whitespace,
                    Name.Class,
                    Whitespace,
                    Keyword,
                    Whitespace,
                    Name.Class,
                ),
            ),
            (
                rf"(template)(\s+)({_NAME})(\s*)(\()",
                bygroups(Keyword.Declaration, Whitespace, Name.Function, Whitespace, Punctuation),
                "params",
            ),
            (
                rf"(let|input)(\s+)({_NAME})",
                bygroups(Keyword.Declaration, Whitespace, Name.Variable),
            ),
            (r"output(?=\s*r?\")", Keyword.Declaration, "output"),
            (r"(check|where|extends)\b", Keyword, "value"),
            (r"(unset)\b", Keyword, "keypath"),
            (r"(final|hidden)\b", Keyword),
            (r"if\b", Keyword, "head"),
            (_FOR_HEAD, _FOR_TOKENS, "head"),
            (r"else\b", Keyword),
            (r"(from)(\s+)(env)\b", bygroups(Keyword, Whitespace, Keyword)),
            (r":", Punctuation, "type"),
            (r"\+?=(?!=)", Operator, "value"),
            (r"\{", Punctuation, "body"),
            (r";", Punctuation),
            include("expression"),
        ],
        "output": [
            (r"[ \t]+", Whitespace),
            include("strings"),
            (rf"(:)(\s*)({_NAME})", bygroups(Punctuation, Whitespace, Name.Constant)),
            default("#pop"),
        ],
        "keypath": [
            (r"[ \t]+", Whitespace),
            (_NAME, Name.Attribute),
            (r"\.", Punctuation),
            include("strings"),
            default("#pop"),
        ],
        "params": [
            (r"\s+", Whitespace),
            include("comments"),
            (r"\)", Punctuation, "#pop"),
            (_NAME, Name.Variable),
            (r":", Punctuation, "type"),
            (r"=", Operator, "param-default"),
            (r",", Punctuation),
        ],
        "param-default": [
            (r"\s+", Whitespace),
            (r",", Punctuation, "#pop"),
            (r"\)", Punctuation, "#pop:2"),
            include("expression"),
        ],
        # ---- expressions -------------------------------------------------------------------
        # The value of a field, let, output, `check`, `where` or `extends`: up to the end of
        # the line (line breaks inside brackets belong to the bracket states) or `;` / `}`.
        "value": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace, "#pop"),
            (r"(from)(\s+)(env)\b", bygroups(Keyword, Whitespace, Keyword)),
            include("expression"),
            default("#pop"),
        ],
        # The condition of an `if` statement or the iterable of a `for`: up to the body.
        "head": [
            (r"\s+", Whitespace),
            (r"\{", Punctuation, ("#pop", "body")),
            include("expression"),
        ],
        "parens": [
            (r"\s+", Whitespace),
            (r"\)", Punctuation, "#pop"),
            (rf"({_NAME})(\s*)(=)(?!=)", bygroups(Name.Variable, Whitespace, Operator)),
            include("expression"),
        ],
        "brackets": [
            (r"\s+", Whitespace),
            (r"\]", Punctuation, "#pop"),
            include("expression"),
        ],
        "expression": [
            include("comments"),
            include("strings"),
            include("numbers"),
            (_FOR_HEAD, _FOR_TOKENS),
            (words(("if", "then", "else", "for", "in", "where"), suffix=r"\b"), Keyword),
            (words(("true", "false", "null"), suffix=r"\b"), Keyword.Constant),
            (words(("self", "super"), suffix=r"\b"), Name.Builtin.Pseudo),
            (r"\bouter\b(?=\s*\.)", Name.Builtin.Pseudo),  # `outer.name` (language.md §3.6)
            (words(BUILTIN_FUNCTIONS, suffix=r"(?=\s*\()"), Name.Builtin),
            (rf"{_NAME}(?=\s*\()", Name.Function),
            (rf"(\.)(\s*)({_NAME})", bygroups(Punctuation, Whitespace, Name.Attribute)),
            (_NAME, Name),
            (r"\(", Punctuation, "parens"),
            (r"\[", Punctuation, "brackets"),
            (r"\{", Punctuation, "body"),
            (r"\|\||&&|==|!=|<=|>=|\+=|[-+*/%!<>=|?]", Operator),
            (r"[,:.]", Punctuation),
        ],
        # ---- types: after `:` and `type Name =` --------------------------------------------
        "type": [
            (r"[ \t\f\r]+", Whitespace),
            (r"(\|)([ \t\f\r]*\n)", bygroups(Operator, Whitespace)),  # union goes on
            (r"\n", Whitespace, "#pop"),
            (r"(where)\b", Keyword, ("#pop", "value")),
            (r"(from)(\s+)(env)\b", bygroups(Keyword, Whitespace, Keyword), "#pop"),
            include("type-items"),
            default("#pop"),
        ],
        "type-args": [
            (r"\s+", Whitespace),
            include("comments"),
            (r"\]", Punctuation, "#pop"),
            (r",", Punctuation),
            include("type-items"),
        ],
        "type-parens": [
            (r"\s+", Whitespace),
            include("comments"),
            (r"\)", Punctuation, "#pop"),
            include("type-items"),
        ],
        "type-items": [
            include("strings"),
            include("numbers"),
            (words(("true", "false", "null"), suffix=r"\b"), Keyword.Constant),
            (words(BUILTIN_TYPES, suffix=r"\b"), Keyword.Type),
            (rf"{_NAME}(?=\s*\.)", Name.Namespace),
            (r"\.", Punctuation),
            (_NAME, Name.Class),
            (r"\[", Punctuation, "type-args"),
            (r"\(", Punctuation, "type-parens"),
            (r"[|?-]", Operator),
        ],
        # ---- tokens ------------------------------------------------------------------------
        "comments": [
            (r"##.*?$", String.Doc),
            (r"#.*?$", Comment.Single),
        ],
        "numbers": [
            (r"(?:[0-9]+(?:ms|d|h|m|s))+(?![A-Za-z0-9_])", Number.Duration),
            (r"[0-9]+(?:KiB|MiB|GiB|TiB|PiB|KB|MB|GB|TB|PB|B)(?![A-Za-z0-9_])", Number.Size),
            (
                r"[0-9][0-9_]*\.[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?|[0-9][0-9_]*[eE][+-]?[0-9]+",
                Number.Float,
            ),
            (r"0[xX][0-9A-Fa-f_]+", Number.Hex),
            (r"[0-9][0-9_]*", Number.Integer),
        ],
        "strings": [
            (r'(r)("""(?:[^"]|"(?!""))*""")', bygroups(String.Affix, String.Double)),
            (r'(r)("[^"\n]*")', bygroups(String.Affix, String.Double)),
            (r'"""', String.Double, "mstring"),
            (r'"', String.Double, "string"),
        ],
        "escapes": [
            (r"\\(?:[ntr\\\"$0]|u\{[0-9A-Fa-f]{1,6}\}|u[0-9A-Fa-f]{4})", String.Escape),
            (r"\$\$<", String.Escape),
            (r"\$<", String.Interpol, "substitution"),
        ],
        "string": [
            (r'"', String.Double, "#pop"),
            include("escapes"),
            (r'[^"\\$\n]+', String.Double),
            (r"\$", String.Double),
            (r"\n", Text, "#pop"),  # unterminated: the parser reports it
        ],
        "mstring": [
            (r'"""', String.Double, "#pop"),
            (r"\\\n", String.Escape),
            include("escapes"),
            (r'[^"\\$]+', String.Double),
            (r'["$]', String.Double),
        ],
        # `$<expr>` ends at the first `>` outside ( ) [ ] and nested strings.
        "substitution": [
            (r">", String.Interpol, "#pop"),
            (r"[ \t]+", Whitespace),
            (r"\n", Text, "#pop:2"),  # unterminated: the parser reports it
            include("expression"),
        ],
    }
