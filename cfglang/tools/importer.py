"""`cflc import`: read JSON, YAML, TOML, INI or .env data and write it as readable CFL.

Three steps, each a public function:

1. `load_data(text, fmt)` parses the input into plain data (dicts keep the file's key order).
   A malformed file raises `DataError` with the 1-based line and column the parser reported,
   so the CLI can point at it. The same reader serves `cflc diff` for compiled JSON/YAML/TOML.
2. `infer_schema(data)` (optional) derives `schema Root { ... }` plus one schema per nested
   object shape (list items are merged into one schema: a key missing from some items or
   null in some is optional, ints mixed with floats are `int | float` because a `float`
   field would turn `1` into `1.0`).
3. `to_cfl(data, ...)` writes the module: objects as blocks, an object whose only content is
   a chain of single keys ending in a scalar as a dotted path (`db.host = "x"`), keys quoted
   when they are not identifiers or are reserved words, lists inline when short and one item
   per line otherwise.

The output is meant to compile back to exactly the input data (same values, same key order);
the property test in tests/test_import.py checks that. The exceptions, all reported as
`DataError` rather than written wrongly: integers outside 64 bits, NaN and infinities (CFL
has no literal for them), a root that is not an object (a module is an object), and TOML
and YAML dates and times (E0710: CFL has no type for them, and a string would be another
type in another spelling; the message says where and suggests quoting the value).
"""

from __future__ import annotations

import datetime
import functools
import heapq
import itertools
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import attrs

from cfglang.datacheck import (
    MAX_VALUES,
    DataError,
    _int_text,
    _LongInt,
    check_data,
)
from cfglang.diagnostics import Diagnostic
from cfglang.source import SourceFile, Span
from cfglang.syntax.literals import quote
from cfglang.tools.diff import format_path

__all__ = [
    "FORMATS",
    "DataError",
    "format_for_path",
    "infer_schema",
    "load_data",
    "load_yaml_documents",
    "to_cfl",
]

FORMATS = ("json", "yaml", "toml", "ini", "env")
_EXTENSIONS = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".env": "env",
}

# Reserved words that cannot be a bare key. `type check output input schema template import
# extends` are keywords too but allowed as field names (language.md §1), so stay bare.
RESERVED_KEYS = frozenset(
    "else then in if for let final hidden unset where true false null self super".split()
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Lists whose inline form would make the line longer than this are written one item per line.
_LINE_WIDTH = 88


def format_for_path(path: str) -> str | None:
    """The input format implied by a file name (``.env`` also as a whole name), or None."""
    base = re.split(r"[\\/]", path)[-1].lower()
    if base == ".env" or base.startswith(".env."):
        return "env"
    if base == ".editorconfig":
        return "ini"
    dot = base.rfind(".")
    return _EXTENSIONS.get(base[dot:]) if dot >= 0 else None


# ---- reading ---------------------------------------------------------------------------------


def load_data(text: str, fmt: str) -> Any:
    """Parse ``text`` in format ``fmt`` into plain data; raises `DataError`."""
    if fmt == "json":
        data = _load_json(text)
    elif fmt == "yaml":
        return _load_yaml(text)  # checked before it is converted: aliases share values
    elif fmt == "toml":
        data = _load_toml(text)
    elif fmt == "ini":
        data = _load_ini(text)
    elif fmt == "env":
        data = _load_env(text)
    else:
        raise ValueError(f"unknown input format {fmt!r}")
    check_data(data, text)
    return data


# Values in one input, counting a value reached through several YAML aliases once per path:
# a 478-byte "billion laughs" document names 10^9 of them.
def _load_json(text: str) -> Any:
    def no_constants(name: str) -> Any:
        # Python's json accepts NaN and Infinity, which are not JSON and not CFL.
        raise ValueError(f"`{name}` is not valid JSON")

    try:
        return json.loads(text, parse_constant=no_constants, parse_int=_int_text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"invalid JSON: {e.msg[:1].lower()}{e.msg[1:]}", e.lineno, e.colno
        ) from None
    except ValueError as e:  # from no_constants; json does not say where
        raise DataError(f"invalid JSON: {e}") from None
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply") from None


def _load_yaml(text: str) -> Any:
    docs = load_yaml_documents(text)
    if len(docs) > 1:
        raise DataError(f"the YAML stream holds {len(docs)} documents; import one at a time")
    return docs[0] if docs else None


def load_yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML stream as plain data, in order; raises `DataError`.

    An empty document (a stray `---`, a trailing one, a stream of only comments) is
    skipped, as `kubectl apply` skips it, so index N is the N-th document that holds data.
    The limits of `check_data` apply to the stream as a whole."""
    import yaml  # heavy: only for YAML input

    try:
        docs = list(yaml.load_all(text, Loader=_yaml_loader()))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "malformed YAML"
        if problem == "second occurrence" and e.context and e.context_mark:
            # PyYAML splits "duplicate anchor" over its context and problem texts.
            first = e.context.replace("; first occurrence", "")
            problem = f"{first} (first at line {e.context_mark.line + 1})"
        if mark is None:
            raise DataError(f"invalid YAML: {problem}") from None
        raise DataError(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as e:
        raise DataError(f"invalid YAML: {e}") from None
    except RecursionError:
        raise DataError("invalid YAML: nested too deeply") from None
    if len(docs) == 1:
        # One document: a null one is the caller's to judge (an empty file is `{}`).
        check_data(docs[0], text)  # before any walk that would expand shared (aliased) values
        return [_plain(docs[0], ())]
    docs = [d for d in docs if d is not None]
    check_data(docs, text)
    # Paths in messages start with the document's index, as in the list `cflc import` writes.
    return [_plain(d, (i,)) for i, d in enumerate(docs)]


@attrs.frozen
class _Refused:
    """A value read from the input that CFL has no type for, kept with its position until
    `_plain` knows its key path and can report both."""

    what: str  # "a date", "a timestamp" ...
    text: str  # as written in the file
    line: int | None = None
    column: int | None = None


_MERGE_TAG = "tag:yaml.org,2002:merge"


@functools.cache
def _yaml_loader() -> Any:
    """PyYAML's SafeLoader with the three changes import needs, built once.

    - A mapping key is a string: the text of the key scalar as written (`on`, `yes`, `1`,
      `~`, `2024-01-02` stay those strings; YAML 1.1 would make them true, true, 1, null and
      a date). A quoted key is its unescaped content. A list or mapping as a key is refused.
    - A key given twice in one mapping is an error at the second occurrence (YAML says keys
      are unique; PyYAML keeps the last silently). Keys merged in with `<<` may be
      overridden, as the merge key type specifies.
    - Timestamps become `_Refused`, reported by `_plain` with their key path.
    - A scalar with the non-specific tag `!` is a string, as YAML specifies.

    Values keep YAML 1.1 resolution (`yes` is true), as PyYAML and `cflc build -f yaml`
    (which quotes such strings) agree on it.
    """
    # heavy: only for YAML input
    import yaml
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

    def key_text(node: Node) -> str:
        if isinstance(node, ScalarNode):
            return str(node.value)
        kind = "list" if isinstance(node, SequenceNode) else "mapping"
        raise DataError(
            f"a {kind} used as a YAML mapping key has no CFL equivalent (keys are strings)",
            node.start_mark.line + 1,
            node.start_mark.column + 1,
        )

    class Loader(yaml.SafeLoader):
        merged = 0  # entries copied by merge keys (`<<: [*a, *a]` copies, never shares)

        def construct_yaml_int(self, node: Any) -> Any:
            # Python will not convert more than 4,300 digits; far fewer are out of range.
            text = str(self.construct_scalar(node)).replace("_", "")
            if len(text.lstrip("+-").lstrip("0")) > 24 and text.lstrip("+-").isdigit():
                return _LongInt(text)
            return super().construct_yaml_int(node)

        def flatten_mapping(self, node: Any) -> None:
            super().flatten_mapping(node)
            self.merged += len(node.value)
            if self.merged > MAX_VALUES:
                raise DataError(
                    f"the data holds more than {MAX_VALUES} values (merge keys repeat theirs)"
                )

        def construct_document(self, node: Node) -> Any:
            # Before any merge (`<<`) is flattened into the nodes: duplicates are judged on
            # the mappings as written.
            self._check_keys(node)
            return super().construct_document(node)

        def _check_keys(self, root: Node) -> None:
            seen_nodes: set[int] = set()
            stack = [root]
            while stack:
                node = stack.pop()
                if id(node) in seen_nodes:  # an alias: the anchored node was checked
                    continue
                seen_nodes.add(id(node))
                if isinstance(node, MappingNode):
                    first: dict[str, Any] = {}
                    for key_node, value_node in node.value:
                        stack.append(value_node)
                        if key_node.tag == _MERGE_TAG:
                            continue
                        key = key_text(key_node)
                        if key in first:
                            mark = key_node.start_mark
                            raise DataError(
                                f"duplicate key `{key}` in a YAML mapping (first at line "
                                f"{first[key].line + 1})",
                                mark.line + 1,
                                mark.column + 1,
                                help="keep one of the two; YAML keys must be unique",
                                width=key_node.end_mark.index - mark.index,
                            )
                        first[key] = key_node.start_mark
                elif isinstance(node, SequenceNode):
                    stack.extend(node.value)

        def compose_scalar_node(self, anchor: Any) -> ScalarNode:
            # `! 12` is the non-specific tag: a string (YAML 1.1 §4.3.2 too); PyYAML
            # resolves it like a plain scalar, to the int 12.
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            non_specific = event.tag == "!"
            node = super().compose_scalar_node(anchor)
            if non_specific:
                node.tag = "tag:yaml.org,2002:str"
            return node

        def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, MappingNode):
                raise ConstructorError(
                    None,
                    None,
                    f"expected a mapping node, but found {type(node).__name__}",
                    node.start_mark,
                )
            self.flatten_mapping(node)
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                # Merged pairs come first, so the mapping's own keys win (last wins).
                mapping[key_text(key_node)] = self.construct_object(value_node, deep=deep)
            return mapping

        def construct_yaml_timestamp(self, node: Node) -> Any:
            value = str(node.value)
            return _Refused(
                "a date" if len(value) == 10 else "a timestamp",
                value,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)
    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    return Loader


def _load_toml(text: str) -> Any:
    import tomllib  # lazy: only for TOML input

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        # Python 3.11's error carries its position only in the message text.
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
        if m:
            raise DataError(
                f"invalid TOML: {msg[: m.start()].strip().lower()}",
                int(m.group(1)),
                int(m.group(2)),
            ) from None
        m = re.search(r"\(at end of document\)$", msg)
        if m:
            lines = text.split("\n")
            raise DataError(
                f"invalid TOML: {msg[: m.start()].strip().lower()}", len(lines), len(lines[-1]) + 1
            ) from None
        raise DataError(f"invalid TOML: {msg}") from None
    except ValueError as e:
        # Python will not convert an integer of more than 4,300 digits.
        m = re.search(r"[0-9][0-9_]{4000,}", text)
        if m is None:
            raise DataError(f"invalid TOML: {e}") from None
        line = text.count("\n", 0, m.start()) + 1
        column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        raise DataError("an integer is outside CFL's 64-bit range", line, column) from None
    try:
        return _plain(data, ())
    except DataError as e:
        if e.code != "E0710":
            raise
        found = _toml_time_at(text, e.path)
        if found is None:
            raise
        offset, written = found
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        what = e.message.split(" (`")[0]
        raise _refuse_time(what, written, line, column, e.path) from None


# A TOML date, time or date-time as written (TOML 1.0 §Offset Date-Time ... §Local Time).
_TOML_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
    r"|\d{2}:\d{2}:\d{2}(?:\.\d+)?"
)


def _toml_time_at(text: str, path: tuple[str | int, ...]) -> tuple[int, str] | None:
    """Where the date/time value at ``path`` is written: (offset, text), or None.

    tomllib reports no positions for values, so each candidate literal is replaced in turn
    by a marker string; the one whose replacement puts the marker at ``path`` is it. A
    candidate inside a string or comment leaves the value in place (or breaks the parse),
    so it is never taken. Runs only on the error path.
    """
    import tomllib  # lazy: only for TOML input

    marker = "\x00cflc"
    # Each try re-reads the file: give up (no position) rather than take long.
    for m in itertools.islice(_TOML_TIME.finditer(text), 1000):
        try:
            data: Any = tomllib.loads(f'{text[: m.start()]}"\\u0000cflc"{text[m.end() :]}')
            for part in path:
                data = data[part]
        except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError):
            continue
        if data == marker:
            return m.start(), m.group()
    return None


_INI_TOP = "\x00cflc-top"


def _load_ini(text: str) -> Any:
    import configparser  # lazy: only for INI input

    # Raw (no `%` interpolation), keys keep their case, and `[DEFAULT]` is an ordinary
    # section: configparser would otherwise copy its keys into every other section.
    parser = configparser.RawConfigParser(
        default_section="\x00cflc-no-default", allow_no_value=True, strict=True
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    # Keys before the first section (`.editorconfig`'s `root = true`) are top-level keys:
    # configparser refuses them, so they are read under a header of our own, one line up.
    shift = 0
    if _ini_starts_with_keys(text):
        text = f"[{_INI_TOP}]\n{text}"
        shift = 1

    def line(n: int | None) -> int | None:
        return None if n is None else max(1, n - shift)

    try:
        parser.read_string(text, source="<ini>")
    except configparser.MissingSectionHeaderError as e:  # not expected after the above
        raise DataError("invalid INI: a key outside any [section]", line(e.lineno), 1) from None
    except configparser.ParsingError as e:
        lineno = line(e.errors[0][0]) if e.errors else None
        raise DataError(
            "invalid INI: a line that is neither `[section]` nor `key = value`",
            lineno,
            1 if lineno else None,
        ) from None
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError) as e:
        what = (
            "section"
            if isinstance(e, configparser.DuplicateSectionError)
            else "top-level key"
            if e.section == _INI_TOP
            else f"key in section [{e.section}]"
        )
        name = getattr(e, "option", None) or e.section
        raise DataError(
            f"invalid INI: duplicate {what}: `{name}`", line(e.lineno), 1 if e.lineno else None
        ) from None
    except configparser.Error as e:
        raise DataError(f"invalid INI: {e.message}") from None
    sections: list[tuple[str, dict[str, Any]]] = [
        (name, dict(parser.items(name, raw=True))) for name in parser.sections() if name != _INI_TOP
    ]
    top: dict[str, Any] = dict(parser.items(_INI_TOP, raw=True)) if shift else {}
    return _nest_sections(sections, top)


def _ini_starts_with_keys(text: str) -> bool:
    """Whether the first line that is not blank or a comment is something other than a
    section header (configparser's own test: the stripped line starts with `#`, `;`, `[`)."""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return not stripped.startswith("[")
    return False


def _nest_sections(
    sections: list[tuple[str, dict[str, Any]]], top: dict[str, Any]
) -> dict[str, Any]:
    """Dotted section names become nested objects (`[db.replica]` -> db { replica { } }),
    the inverse of `cflc build -f ini`; a name that would clash with a key stays literal.
    ``top`` holds the keys written before the first section."""
    root: dict[str, Any] = dict(top)
    for name, values in sections:
        parts = name.split(".")
        node = root
        ok = all(parts)
        if ok:
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    ok = False
                    break
                node = child
        if ok and parts[-1] in node and isinstance(node[parts[-1]], dict):
            # The object exists already (made for a subsection): add this section's keys.
            target = node[parts[-1]]
            if any(k in target for k in values):
                ok = False
            else:
                target.update(values)
                continue
        if not ok or parts[-1] in node:
            node = root
            parts = [name]
            if name in root:
                other = "a top-level key" if name in top else "another section"
                raise DataError(f"invalid INI: section [{name}] clashes with {other}")
        node[parts[-1]] = dict(values)
    return root


# The grammar of python-dotenv 1.x (dotenv/parser.py), which `cflc build -f env` writes for.
# A value is read by these regexes from the whole remaining text, so a quoted value may span
# lines and ends wherever the regex (with its backtracking) puts the end. `?+`: after
# `export ` a name must follow (`export =1` is an error there, not a key `export`).
_ENV_HEAD = re.compile(r"(?:export[^\S\r\n]+)?+([A-Za-z_][A-Za-z0-9_.-]*)[^\S\r\n]*=[^\S\r\n]*")
_ENV_SINGLE = re.compile(r"'((?:\\'|[^'])*)'")
_ENV_DOUBLE = re.compile(r'"((?:\\"|[^"])*)"')
_ENV_SINGLE_ESCAPES = re.compile(r"\\[\\']")
_ENV_DOUBLE_ESCAPES = re.compile(r"\\[\\'\"abfnrtv]")
_ENV_DOUBLE_MEANING = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ENV_UNQUOTED = re.compile(r"[^\r\n]*")
_ENV_LINE_END = re.compile(r"[^\S\r\n]*(?:#[^\r\n]*)?(?:\r\n|\n|\r|$)")
_ENV_SPACE = re.compile(r"\s*")


def _load_env(text: str) -> dict[str, Any]:
    """A .env file: `KEY=value` lines, `#` comments, optional `export`; values are strings.

    Values are read as python-dotenv reads them with `interpolate=False`: `'...'` knows
    only `\\'` and `\\\\`; `"..."` knows `\\n \\r \\t \\a \\b \\f \\v \\\\ \\" \\'` (another
    backslash stays); both may span lines; a bare value ends at a `#` after whitespace.
    `${VAR}` is kept as written: expanding it would read this machine's environment, and
    `cflc build -f env` writes it back as is. Where python-dotenv would skip a line with a
    warning, this is an error at the line.
    """
    out: dict[str, Any] = {}
    pos = 0

    def where(at: int) -> tuple[int, int]:
        return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1

    while True:
        pos = _match(_ENV_SPACE, text, pos).end()
        if pos >= len(text):
            return out
        if text[pos] == "#":
            pos = _match(_ENV_UNQUOTED, text, pos).end()
            continue
        head = _ENV_HEAD.match(text, pos)
        if head is None:
            raise DataError("invalid .env line: expected `NAME=value`", *where(pos))
        pos = head.end()
        quote_char = text[pos : pos + 1]
        if quote_char in ("'", '"'):
            m = (_ENV_SINGLE if quote_char == "'" else _ENV_DOUBLE).match(text, pos)
            if m is None:
                raise DataError(f"unterminated {quote_char}-quoted value", *where(pos))
            if quote_char == "'":
                value = _ENV_SINGLE_ESCAPES.sub(lambda e: e.group()[1], m.group(1))
            else:
                value = _ENV_DOUBLE_ESCAPES.sub(
                    lambda e: _ENV_DOUBLE_MEANING.get(e.group()[1], e.group()[1]), m.group(1)
                )
            end = _ENV_LINE_END.match(text, m.end())
            if end is None:
                raise DataError("unexpected text after the quoted value", *where(pos))
            pos = end.end()
        else:
            m = _match(_ENV_UNQUOTED, text, pos)
            value = re.sub(r"\s+#.*", "", m.group()).rstrip()
            pos = m.end()
        out[head.group(1)] = value


def _match(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str]:
    m = pattern.match(text, pos)
    assert m is not None, "the pattern matches the empty string"
    return m


def _plain(value: Any, path: tuple[str | int, ...]) -> Any:
    """YAML/TOML values as JSON-like data; dates and times are refused (`_refuse_time`)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):  # the readers give string keys; this is a guard
                raise DataError(
                    f"a {type(k).__name__} used as a key has no CFL equivalent", path=path
                )
            out[k] = _plain(v, (*path, k))
        return out
    if isinstance(value, list):
        return [_plain(v, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, _Refused):
        raise _refuse_time(value.what, value.text, value.line, value.column, path)
    if isinstance(value, (datetime.date, datetime.time)):  # TOML; a datetime is a date
        what = (
            "a time"
            if isinstance(value, datetime.time)
            else "a timestamp"
            if isinstance(value, datetime.datetime)
            else "a date"
        )
        raise _refuse_time(what, value.isoformat(), None, None, path)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise DataError(f"a {type(value).__name__} value has no CFL equivalent", path=path)


def _refuse_time(
    what: str, text: str, line: int | None, column: int | None, path: tuple[str | int, ...]
) -> DataError:
    # CFL has no date or time type. Writing the value as a string would change its type
    # silently (and, for TOML, its spelling and precision), so the user decides.
    return DataError(
        f"{what} (`{text}`) has no CFL type",
        line,
        column,
        path,
        code="E0710",
        width=len(text),
        help=f'quote the value in the input file to import it as a string, e.g. `"{text}"`',
    )


# ---- schema inference ------------------------------------------------------------------------


@attrs.define
class _Shape:
    """What was seen at one place: the scalar kinds, and merged object and list shapes."""

    kinds: list[str] = attrs.Factory(list)  # "string" "int" "float" "bool" "null", in order
    obj: _ObjShape | None = None
    items: _Shape | None = None  # element shape of lists; None until an item is seen
    list_seen: bool = False

    def add(self, value: Any) -> None:
        if isinstance(value, dict):
            if self.obj is None:
                self.obj = _ObjShape()
            self.obj.add(value)
            return
        if isinstance(value, list):
            self.list_seen = True
            if value and self.items is None:
                self.items = _Shape()
            for v in value:
                assert self.items is not None
                self.items.add(v)
            return
        kind = _scalar_kind(value)
        if kind not in self.kinds:
            self.kinds.append(kind)


@attrs.define
class _ObjShape:
    fields: dict[str, _Shape] = attrs.Factory(dict)
    count: int = 0  # objects merged
    present: dict[str, int] = attrs.Factory(dict)  # objects that had the key
    empty: bool = True
    orders: dict[tuple[str, ...], None] = attrs.Factory(dict)  # distinct key sequences
    # The objects themselves (references into the data), for typing them as a map.
    objects: list[dict[str, Any]] = attrs.Factory(list)

    def add(self, value: dict[str, Any]) -> None:
        self.count += 1
        self.objects.append(value)
        self.orders[tuple(value)] = None
        for k, v in value.items():
            self.empty = False
            self.fields.setdefault(k, _Shape()).add(v)
            self.present[k] = self.present.get(k, 0) + 1

    def ordered_keys(self) -> list[str]:
        """The keys in an order every merged object agrees with, where one exists.

        A schema-typed object is emitted in schema order, so this keeps each object's order
        on a build: a topological sort of "comes before" taken from every object, ties
        broken by first appearance. When the objects disagree (a cycle) the first-seen
        order is used and some of them will be reordered.
        """
        first_seen = list(self.fields)
        rank = {k: i for i, k in enumerate(first_seen)}
        succ: dict[str, set[str]] = {k: set() for k in first_seen}
        indegree = dict.fromkeys(first_seen, 0)
        for seq in self.orders:
            for x, y in itertools.pairwise(seq):
                if y not in succ[x]:
                    succ[x].add(y)
                    indegree[y] += 1
        ready = [(rank[k], k) for k in first_seen if indegree[k] == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, k = heapq.heappop(ready)
            out.append(k)
            for y in sorted(succ[k], key=rank.__getitem__):
                indegree[y] -= 1
                if indegree[y] == 0:
                    heapq.heappush(ready, (rank[y], y))
        return out if len(out) == len(first_seen) else first_seen


def _scalar_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string"


@attrs.define
class Schemas:
    """The inferred schemas: CFL source text, and the type of each top-level field."""

    text: str
    root_types: dict[str, str]
    names: list[str]


class _Namer:
    def __init__(self) -> None:
        self.used: set[str] = {"Root"}

    def name(self, hint: str) -> str:
        words = re.findall(r"[A-Za-z0-9]+", hint)
        base = "".join(w[:1].upper() + w[1:] for w in words) or "Item"
        if not base[0].isalpha():
            base = "T" + base
        name, n = base, 2
        while name in self.used:
            name, n = f"{base}{n}", n + 1
        self.used.add(name)
        return name


def infer_schema(data: dict[str, Any], *, qualifier: str = "") -> Schemas:
    """`schema Root` for ``data`` and a schema per nested object shape.

    ``qualifier`` (``"types."``) prefixes schema names in ``root_types``, for a data module
    that imports the schemas from another file.
    """
    root = _ObjShape()
    root.add(data)
    namer = _Namer()
    blocks: list[str] = []
    root_types = {k: _type_text(s, k, namer, blocks) for k, s in root.fields.items()}
    lines = [
        "## The shape of the imported data (inferred by `cflc import --infer-schema`).",
        "schema Root {",
    ]
    for k, t in root_types.items():
        lines.append(f"  {key_text(k)}: {t}")
    lines.append("}")
    text = "\n".join(lines) + "\n" + "".join("\n" + b for b in blocks)
    if qualifier:
        # Root types name local schemas; the data module reaches them through its import.
        names = namer.used - {"Root"}
        root_types = {
            k: re.sub(
                r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b",
                lambda m: qualifier + m.group(1),
                t,
            )
            if names
            else t
            for k, t in root_types.items()
        }
    return Schemas(text, root_types, sorted(namer.used))


def _type_text(
    shape: _Shape, hint: str, namer: _Namer, blocks: list[str], optional: bool = False
) -> str:
    # Ints mixed with floats are `int | float`, in that order: a union takes the first
    # alternative that accepts a value, and `float` accepts ints, turning `1` into `1.0`.
    kinds = shape.kinds
    alts = [k for k in kinds if k != "null"]
    if "int" in alts and "float" in alts:
        alts.remove("int")
        alts.insert(alts.index("float"), "int")
    if shape.obj is not None:
        alts.append(_object_type(shape.obj, hint, namer, blocks))
    if shape.list_seen:
        if shape.items is None:
            alts.append("list[any]")
        else:
            # A list of lists keeps the hint it had: `rows` -> `Row`, not `RowItem`.
            elem_hint = hint if hint.endswith("_item") or hint.endswith("\0") else _singular(hint)
            elem = _type_text(shape.items, elem_hint, namer, blocks)
            alts.append(f"list[{elem}]")
    nullable = "null" in kinds or optional
    if not alts:
        return "any?" if nullable else "any"
    text = " | ".join(alts)
    if nullable:
        text = f"({text})?" if len(alts) > 1 else f"{text}?"
    return text


def _object_type(obj: _ObjShape, hint: str, namer: _Namer, blocks: list[str]) -> str:
    if obj.empty:
        # A closed schema with no fields would reject every key a user adds later.
        return "map[string, any]"
    if "" in obj.fields:
        # The compiler drops a schema field named `""` (eval/evaluate.py, `Schema.__init__`
        # tests the key for truth), so such an object could not be typed by a schema.
        return "map[string, any]"
    as_map = _map_type(obj, hint, namer, blocks)
    if as_map is not None:
        return as_map
    name = namer.name(hint)
    # Reserve the slot first, so that a schema is written before the ones it uses.
    slot = len(blocks)
    blocks.append("")
    lines = [f"schema {name} {{"]
    for k in obj.ordered_keys():
        s = obj.fields[k]
        optional = obj.present.get(k, 0) < obj.count
        lines.append(f"  {key_text(k)}: {_type_text(s, k, namer, blocks, optional)}")
    lines.append("}")
    blocks[slot] = "\n".join(lines) + "\n"
    return name


# Names under which data is keyed by the user, not by a fixed set of fields: Kubernetes
# labels, annotations, selectors and ConfigMap/Secret data, environment maps, HTTP headers
# and cloud tags. Compared without regard to case, `_` and `-`.
_MAP_NAMES = frozenset(
    "labels annotations matchlabels nodeselector data stringdata binarydata env environment "
    "variables vars headers tags extralabels commonlabels commonannotations podlabels "
    "podannotations".split()
)
# An object with at least this many keys, all of one value type, is a map as well.
_MAP_MIN_KEYS = 8


def _map_type(obj: _ObjShape, hint: str, namer: _Namer, blocks: list[str]) -> str | None:
    """`map[string, T]` for an object keyed by data rather than by fields, else None.

    Such an object is typed as a map when its values all have one type T (one scalar kind,
    ints with floats counting as one; or objects all with the same keys; or lists) and
    one of: its name is one of `_MAP_NAMES` (`labels`, `annotations`, `data`, `env` ...);
    a key is not an identifier (`app.kubernetes.io/name`, `Content-Type`); it has at least
    `_MAP_MIN_KEYS` keys. A closed schema there would reject the next label a user adds.
    """
    keys = obj.fields.keys()
    name = re.sub(r"[-_\0]", "", hint).lower()
    if not (
        name in _MAP_NAMES
        or any(not _IDENT.fullmatch(k) for k in keys)
        or len(keys) >= _MAP_MIN_KEYS
    ):
        return None
    values = _Shape()
    key_sets: set[frozenset[str]] = set()
    for o in obj.objects:
        for v in o.values():
            values.add(v)
            if isinstance(v, dict):
                key_sets.add(frozenset(v))
    scalar_kinds = {k for k in values.kinds if k != "null"}
    if scalar_kinds == {"int", "float"}:
        scalar_kinds = {"number"}
    sorts = (len(scalar_kinds) > 1, bool(scalar_kinds), values.obj is not None, values.list_seen)
    if sorts[0] or sum(sorts[1:]) != 1 or len(key_sets) > 1:
        return None
    elem_hint = hint if hint.endswith("\0") else _singular(hint)
    return f"map[string, {_type_text(values, elem_hint, namer, blocks)}]"


def _singular(word: str) -> str:
    # Marked with a NUL (dropped by the namer) so a nested list is not singularised again.
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y\0"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1] + "\0"
    return word + "_item"


# ---- writing CFL -----------------------------------------------------------------------------


def key_text(key: str) -> str:
    """A key as CFL writes it: bare when it is an identifier and not reserved, else quoted."""
    if _IDENT.fullmatch(key) and key not in RESERVED_KEYS:
        return key
    return quote(key)


def scalar(value: Any, path: tuple[str | int, ...] = ()) -> str:
    """A scalar as a CFL literal; raises `DataError` for values CFL cannot express."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DataError(f"integer {value} is outside CFL's 64-bit range", path=path)
        if value == _INT_MIN:
            # `-9223372036854775808` is minus applied to a literal one past the maximum.
            return f"{_INT_MIN + 1} - 1"
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{value} has no CFL literal (only finite floats)", path=path)
        text = repr(value)
        # repr gives `1e+16` and `1e-05`, both CFL floats; `1.0` stays a float too.
        return text
    if isinstance(value, str):
        return quote(value)
    raise DataError(f"a {type(value).__name__} value has no CFL equivalent", path=path)


def to_cfl(
    data: Any,
    *,
    header: str | None = None,
    schemas: Schemas | None = None,
    imports: Iterable[str] = (),
) -> str:
    """CFL source for ``data`` (an object), optionally typed with ``schemas``.

    ``header`` is a comment line at the top; ``imports`` are import statements to write
    first; with ``schemas``, each top-level field gets its inferred type, and the schema
    text is appended unless the caller writes it elsewhere (and passes ``imports``).
    """
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else "null" if data is None else "scalar"
        raise DataError(
            f"the top level is a {kind}; a CFL module is an object, so the input "
            "must hold an object (a mapping of keys to values)"
        )
    lines: list[str] = []
    if header:
        lines.append(f"# {header}")
    imports = list(imports)
    lines.extend(imports)
    if lines:
        lines.append("")
    types = schemas.root_types if schemas is not None else {}
    body = _body(data, (), 0, types)
    lines.extend(body)
    text = "\n".join(lines).rstrip("\n") + "\n"
    if schemas is not None and not imports:
        text += "\n" + schemas.text
    return text


def _body(
    obj: dict[str, Any], path: tuple[str | int, ...], depth: int, types: dict[str, str]
) -> list[str]:
    ind = "  " * depth
    out: list[str] = []
    prev_multi = False
    for k, v in obj.items():
        p = (*path, k)
        typ = types.get(k)
        lines = _field(k, v, p, depth, typ)
        multi = len(lines) > 1
        # A blank line around multi-line blocks at the top level, for readability.
        if depth == 0 and out and (multi or prev_multi):
            out.append("")
        out.extend(ind + line if line else line for line in lines)
        prev_multi = multi
    return out


def _field(
    key: str, value: Any, path: tuple[str | int, ...], depth: int, typ: str | None
) -> list[str]:
    """The lines of one field, unindented (nested lines carry their own relative indent)."""
    ann = f": {typ}" if typ else ""
    if isinstance(value, dict) and value:
        chain = _chain(key, value)
        if chain is not None and not typ:
            keys, leaf = chain
            return [f"{'.'.join(key_text(x) for x in keys)} = {scalar(leaf, (*path, *keys[1:]))}"]
        inner = _body(value, path, 1, {})
        # `check { ... }` parses as a check statement of an object literal, so a block
        # named `check` is quoted (`check = ...` and `check.x = ...` are fine bare).
        head = quote(key) if key == "check" else key_text(key)
        return [f"{head}{ann} {{", *inner, "}"]
    prefix = f"{key_text(key)}{ann} = "
    rendered = _value(value, path, len(prefix) + 2 * depth)
    return [prefix + rendered[0], *rendered[1:]]


def _chain(key: str, value: dict[str, Any]) -> tuple[list[str], Any] | None:
    """`a { b { c = 1 } }` as (["a", "b", "c"], 1) when every level has one key."""
    keys = [key]
    node: Any = value
    while isinstance(node, dict):
        if len(node) != 1:
            return None
        ((k, node),) = node.items()
        keys.append(k)
    if isinstance(node, list):
        return None
    return keys, node


def _value(value: Any, path: tuple[str | int, ...], column: int) -> list[str]:
    """A value as lines: the first continues the current line, the rest are indented
    relative to the field (two spaces per level)."""
    if isinstance(value, dict):
        if not value:
            return ["{}"]
        inline = _inline(value, path)
        if inline is not None and column + len(inline) <= _LINE_WIDTH:
            return [inline]
        inner = _body(value, path, 1, {})
        return ["{", *inner, "}"]
    if isinstance(value, list):
        if not value:
            return ["[]"]
        inline = _inline(value, path)
        if inline is not None and column + len(inline) <= _LINE_WIDTH:
            return [inline]
        out = ["["]
        for i, item in enumerate(value):
            lines = _value(item, (*path, i), 2)
            lines[-1] += ","
            out.extend("  " + line for line in lines)
        out.append("]")
        return out
    return [scalar(value, path)]


def _inline(value: Any, path: tuple[str | int, ...]) -> str | None:
    """The one-line form of a list or object, or None when it has no short one."""
    if isinstance(value, list):
        parts = []
        for i, item in enumerate(value):
            text = _inline(item, (*path, i))
            if text is None:
                return None
            parts.append(text)
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for k, v in value.items():
            text = _inline(v, (*path, k))
            if text is None:
                return None
            parts.append(f"{key_text(k)} = {text}")
        return "{ " + "; ".join(parts) + " }"
    text = scalar(value, path)
    # Long strings make a list unreadable on one line; give them their own lines.
    return text if len(text) <= _LINE_WIDTH // 2 else None


# ---- helpers for the commands ----------------------------------------------------------------


def read_text(path: str) -> str | DataError:
    """The text of ``path``, or a `DataError` when it cannot be read or is not UTF-8."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        return DataError(f"`{path}` is not UTF-8 text (byte {e.start})")
    except OSError as e:
        return DataError(f"cannot read `{path}`: {e.strerror or e}")


def diagnostic(err: DataError, path: str, text: str | None) -> Any:
    """A `Diagnostic` (the error's code) pointing at the position the parser reported."""
    message = err.message
    if err.path:
        message += f" (at `{format_path(err.path)}`)"
    if text is None or err.line is None:
        # No position: the file name leads, unless the message names the file already.
        return Diagnostic(
            err.code,
            message if f"`{path}`" in message else f"`{path}`: {message}",
            help=err.help,
        )
    src = SourceFile(path, text)
    starts = src.line_starts()
    line = max(1, min(err.line, len(starts)))
    offset = min(starts[line - 1] + max(0, (err.column or 1) - 1), len(text))
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    end = min(offset + max(1, err.width), line_end)
    return Diagnostic(err.code, message, Span(src, offset, end), help=err.help)
