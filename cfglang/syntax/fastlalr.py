"""A hand-written LALR(1) driver over Lark's own tables: the parser's fast path.

Why it is hand-written: Lark's generic LALR loop costs about 20 µs per token on CFL.
Every token passes through a chain of generators (lexer, post-lexer, parser), becomes a
`Token` with eight fields and a line/column count, is matched against one regex
alternation of every terminal the state accepts, and every reduction looks its callback
up in a dict keyed by `Rule` objects (hashing a tuple, comparing grammar symbols), then
runs it through layers of generic tree-shaping wrappers. On a 10,000-line file that is
six seconds, most of it spent on bookkeeping rather than on the language.

What it reuses: nothing about the language is restated here. Lark stays the source of
truth: `derive_tables` reads the parse table Lark compiled from ``grammar/cfl.lark``
(actions, gotos, start and end states), the terminals of each state of Lark's contextual
lexer (in Lark's priority order, with its keyword-versus-``NAME`` rules), and each rule's
shaping options (``?rule`` single-child inlining, ``_rule`` splicing, aliases), and the
driver calls the transformer methods Lark would call, with the same children. The
newline rules are data (`NewlineRules`): the parser defines them once, and both its
post-lexer for Lark and this driver apply that one definition.

State: the driver holds only what the tables determine; each parse passes in the
builder that holds its own state, and the rule and lexer callbacks are called with it.
One driver serves every thread at once (see `FastLALR`).

Start-up: the derived tables are plain data (the builder's methods by name, regexes as
pattern strings, each reducer's shape as numbers and flags, with no code in them), so
the parser stores them in its cache directory (`cfglang.syntax.store`) and a new process
builds the driver from them without importing Lark, which costs more than parsing a
small project. The reducers are generated and compiled from their shapes in memory.
`FastLALR` itself never imports Lark; only `derive_tables` does, and a default callback
(a rule the builder has no method for), if one is ever called.

The loop: lex one token with the terminals of the state on top of the stack (that is
what a contextual lexer is), skip ignored terminals (calling their lexer callbacks, as
Lark does for doc comments), apply the newline rules, then reduce while the table says
reduce and shift the token. What makes it fast:

* Lexing dispatches on the next character. Lark's scanner tries the alternatives of one
  big regex in priority order and the first that matches wins; an alternative that cannot
  start with the next character can never be that winner, so each (state's lexer,
  character) pair gets a regex of only those that can, in the same order. Which
  characters a terminal can start with is read off its parsed regex, erring towards
  "can". The pattern for every ASCII character is worked out with the tables (pairs with
  the same alternatives share one) and compiled on first use; other characters are worked
  out when met. Whitespace that only the ignored terminal can start is eaten by the same
  match, after the token.
* Each rule's reduction is a small function generated once from the rule's shape (its
  length, which children are spliced, whether one child is passed up, the callback and
  the goto row). Reductions of one child (``?rule`` pass-ups, ``string -> literal ->
  primary -> ...``) only replace the top of the stacks, so a run of them depends on the
  two top states and the lookahead alone: it is worked out once and replayed.
* `_rule`s that always come down to one element (``_stmt``, ``_ident``) hand the element
  itself to their parent, which appends it, instead of a one-element list to splice.
* Tokens are `tokens.Tok`, which has a `lark.Token`'s type, value and offsets, without
  line and column.

Exactness: the driver returns a result only for input it parses; on anything else (an
unexpected character or token) it raises `ParseFailed`, and the caller reruns Lark, whose
errors the parser turns into diagnostics. It never reports an error of its own. A grammar or Lark
configuration outside the subset reproduced here raises `Unsupported` in
`derive_tables`, and so do tables that no longer fit the transformer or the lexer
callbacks in `FastLALR`; the caller then uses Lark alone (or derives the tables again).
tests/test_fastparse.py compares both paths' trees, spans and doc comments included, on
every CFL file in the repository and on generated programs, token soups and broken files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from re import _constants as sre_constants
from re import _parser as sre_parse
from typing import TYPE_CHECKING, Any

from cfglang.syntax.tokens import Tok

if TYPE_CHECKING:
    from lark import Lark

__all__ = [
    "FORMAT",
    "FastLALR",
    "NewlineRules",
    "ParseFailed",
    "Tables",
    "Tok",
    "Unsupported",
    "derive_tables",
]

# The layout of `Tables` and the way they are derived: bump on any change to either, so
# that tables stored by an older cfglang are derived again rather than misread.
FORMAT = 2

# What `derive_tables` returns and `FastLALR` is built from: only dicts, lists, tuples,
# strings, ints, bools and None, so that `marshal` can store it. No code: the reducers
# are generated from their `Shape`s (numbers and flags) in every process, so a stored
# file, whoever wrote it, never supplies code that runs.
Tables = dict[str, Any]
# A reducer's shape: (children, the kept children as (index, spliced) or None for all,
# `?rule` pass-up, has a callback, one-element `_rule`).
Shape = tuple[int, "tuple[tuple[int, bool], ...] | None", bool, bool, bool]


class Unsupported(Exception):
    """The Lark configuration uses a feature this driver does not reproduce."""


class ParseFailed(Exception):
    """The fast path cannot produce Lark's result for this input; rerun Lark.

    The one way `FastLALR.parse` hands a parse over: any other exception out of it is a
    bug (or a builder error, which Lark would meet as well), never a signal.
    """


class NewlineRules:
    """The post-lexer's rules for line breaks, as data the driver applies inline.

    A newline token is dropped at the start of the input, after a token of a type in
    ``after``, inside an open bracket other than those in ``keep_inside``, and after a
    continuation token (value in ``continue_values``, type not in ``not_operators``).
    """

    __slots__ = (
        "after",
        "closers",
        "continue_values",
        "keep_inside",
        "newline",
        "not_operators",
        "openers",
    )

    def __init__(
        self,
        *,
        newline: str,
        after: frozenset[str],
        openers: frozenset[str],
        closers: frozenset[str],
        keep_inside: frozenset[str],
        continue_values: frozenset[str],
        not_operators: frozenset[str],
    ) -> None:
        self.newline = newline
        self.after = after
        self.openers = openers
        self.closers = closers
        self.keep_inside = keep_inside
        self.continue_values = continue_values
        self.not_operators = not_operators

    def key(self) -> str:
        """A stable text of the rules, for keying stored tables (which depend on them)."""
        return repr(
            [
                (name, value if isinstance(value, str) else sorted(value))
                for name in self.__slots__
                for value in [getattr(self, name)]
            ]
        )


_Match = Callable[[str, int], "re.Match[str] | None"]
_IGNORE, _NEWLINE, _OPENER, _CLOSER = 0, 1, 2, 3
# A reduction: (value stack, state stack, the parse's builder) -> the new state.
_Reducer = Callable[[list[Any], list[int], Any], int]
# A rule's callback (children) and a lexer callback (token) take the parse's builder first.
_Callback = Callable[[Any, list[Any]], Any]
LexerCallback = Callable[[Any, Any], Any]
# Rule kinds in `Tables["rules"]`: the value stays (only the state changes); one child
# in, one value out (the callback, or a one-element list); a generated reducer.
_KEEP, _ONE, _BODY = 0, 1, 2
_ASCII = [chr(code) for code in range(128)]


def _no_match(text: str, pos: int) -> None:
    return None


def _alternation(names: list[str] | tuple[str, ...], regexps: dict[str, str], suffix: str) -> str:
    """The scanner regex for these terminals, in this order, then the ignored suffix."""
    pattern = "|".join(f"(?P<{name}>{regexps[name]})" for name in names)
    return f"(?:{pattern}){suffix}"


class _Starts:
    """Which characters each terminal's regex may start with, parsed once per terminal."""

    def __init__(self, regexps: dict[str, str]) -> None:
        self.regexps = regexps
        self.parsed: dict[str, Any] = {}

    def may(self, name: str, ch: str) -> bool:
        parsed = self.parsed.get(name)
        if parsed is None:
            parsed = self.parsed[name] = sre_parse.parse(self.regexps[name])
        if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
            return True
        may, _ = _first(parsed, ch)
        return may


def derive_tables(lark: Lark, transformer: Any, newlines: NewlineRules) -> Tables:
    """Everything the driver needs from ``lark``, as plain data; see the module docstring.

    ``transformer`` is the one ``lark`` was built with: the tables name its methods.
    Raises `Unsupported` for a configuration outside the subset the driver reproduces.
    """
    # start-up: lark loads only to derive tables, never when they are read from the store
    from lark.lexer import ContextualLexer, UnlessCallback
    from lark.lexer import _create_unless as lark_create_unless
    from lark.parse_tree_builder import _should_expand as lark_should_expand
    from lark.parsers.lalr_analysis import Shift
    from lark.visitors import Transformer, Transformer_InPlace

    should_expand: Callable[[Any], bool] = lark_should_expand
    create_unless: Callable[..., tuple[list[Any], dict[str, Any]]] = lark_create_unless
    opts = lark.options
    if opts.parser != "lalr" or opts.lexer != "contextual":
        raise Unsupported("only the LALR parser with the contextual lexer")
    if opts.maybe_placeholders or opts.propagate_positions or opts.use_bytes:
        raise Unsupported("maybe_placeholders, propagate_positions and use_bytes")
    if opts.g_regex_flags or opts.regex:
        raise Unsupported("global regex flags or the `regex` module")
    if isinstance(transformer, Transformer_InPlace) or opts.transformer is not transformer:
        raise Unsupported("the transformer must be the one the parser was built with")
    frontend = lark.parser
    lexer = getattr(frontend.lexer, "lexer", frontend.lexer)  # under the PostLexConnector
    if type(lexer) is not ContextualLexer:
        raise Unsupported("a custom lexer")
    terminal_names = {t.name for t in lark.terminals}
    if any(getattr(transformer, name, None) is not None for name in terminal_names):
        raise Unsupported("transformer callbacks for terminals")
    conf = lark.lexer_conf
    ignore = frozenset(conf.ignore)
    callbacks = sorted(conf.callbacks)
    if any(t not in ignore for t in callbacks):
        raise Unsupported("lexer callbacks on terminals that are not ignored")

    table = frontend.parser.parser.parse_table
    nstates = max(table.states) + 1
    if set(table.states) != set(range(nstates)):
        raise Unsupported("a parse table whose states are not numbered 0..n-1")

    # Actions: a state to shift to (>= 0) or ~rule (< 0); gotos per nonterminal.
    rule_index: dict[int, int] = {}
    rules: list[Any] = []
    actions: list[dict[str, int]] = [{} for _ in range(nstates)]
    gotos: dict[str, dict[int, int]] = {}
    for state, row in table.states.items():
        for sym, (action, arg) in row.items():
            if action is Shift:
                if sym in terminal_names or sym == "$END":
                    actions[state][sym] = arg
                else:
                    gotos.setdefault(sym, {})[state] = arg
            else:
                idx = rule_index.get(id(arg))
                if idx is None:
                    idx = rule_index[id(arg)] = len(rules)
                    rules.append(arg)
                actions[state][sym] = ~idx

    # The tree shaping of lark.parse_tree_builder, resolved once per rule.
    default = getattr(type(transformer), "__default__", None)
    plain_default = default is None or default is Transformer.__default__
    kept = [
        [
            (i, sym)
            for i, sym in enumerate(rule.expansion)
            if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out)
        ]
        for rule in rules
    ]
    single = _single_inlined(rules, kept, should_expand)
    specs: list[tuple[str, int, tuple[str, str] | None, int | None]] = []
    shapes: dict[Shape, int] = {}  # reducer shapes, each made once
    for rule, children in zip(rules, kept, strict=True):
        o = rule.options
        name = rule.origin.name
        size = len(rule.expansion)
        # Spliced children: `_rule`s, except those always of one element (`single`),
        # whose value is that element rather than a one-element list.
        include = [(i, bool(should_expand(sym)) and sym.name not in single) for i, sym in children]
        needs_filter = len(include) < size or any(e for _, e in include)
        expand1 = bool(o.expand1) and not rule.alias
        cb_name = rule.alias or o.template_source or name
        method = getattr(transformer, cb_name, None)
        callback: tuple[str, str] | None
        if method is not None:
            if getattr(method, "visit_wrapper", None) is not None:
                raise Unsupported(f"a visit wrapper (v_args) on `{cb_name}`")
            callback = ("method", cb_name)
        elif name.startswith("_"):
            # Lark builds a Tree whose children the parent splices at once; the list
            # of children does the same job (or the one child, for `single` rules).
            if expand1 or not plain_default:
                raise Unsupported(f"`?{name}` or a custom __default__")
            callback = None
        else:
            callback = ("default", cb_name)
        bare = name in single
        if size == 1 and (
            (expand1 and not needs_filter) or bare or (callback is None and include == [(0, True)])
        ):
            # The value stays, only the state changes: a `?rule` passing its one
            # child up, a one-element `_rule`, or a `_rule` that is one spliced
            # `_rule` (the same list).
            specs.append((name, _KEEP, None, None))
        elif size == 1 and not needs_filter:
            # One child in, one value out: the callback, or a one-element list.
            specs.append((name, _ONE, callback, None))
        else:
            shape: Shape = (
                size,
                tuple(include) if needs_filter or bare else None,
                expand1,
                callback is not None,
                bare,
            )
            specs.append((name, _BODY, callback, shapes.setdefault(shape, len(shapes))))

    # The lexers: per state, the index of Lark's lexer for it (states with the same
    # acceptable terminals share one), and per lexer what Lark's scanner is built from
    # (BasicLexer._build_scanner): the terminals in order, with the keywords that NAME
    # also matches taken out and turned into a callback that retypes NAME.
    special = ignore | {newlines.newline} | newlines.openers | newlines.closers
    regexps = {t.name: t.pattern.to_regexp() for t in lark.terminals}
    starts = _Starts(regexps)
    lexer_index: dict[int, int] = {}
    lexers: list[tuple[tuple[str, ...], dict[str, dict[str, str]]]] = []
    state_lexer: list[int] = []
    for state in range(nstates):
        basic: Any = lexer.lexers[state]
        idx = lexer_index.get(id(basic))
        if idx is None:
            terminals, unless_callbacks = create_unless(
                basic.terminals, basic.g_regex_flags, basic.re, basic.use_bytes
            )
            unless: dict[str, dict[str, str]] = {}
            for type_, cb in unless_callbacks.items():
                if not isinstance(cb, UnlessCallback):
                    raise Unsupported(f"an unknown lexer callback on {type_}")
                if type_ in basic.user_callbacks:
                    raise Unsupported(f"a user callback on {type_}, which has keywords")
                words: dict[str, str] = {}
                for t in cb.scanner.terminals:
                    if t.pattern.type != "str" or t.pattern.flags:
                        raise Unsupported("keywords with regex flags")
                    words.setdefault(t.pattern.value, t.name)
                if any(w in special for w in words.values()):
                    raise Unsupported("a keyword that the newline rules treat specially")
                unless[type_] = words
            if any(regexps.get(t.name) != t.pattern.to_regexp() for t in terminals):
                raise Unsupported("a lexer whose terminals differ from the grammar's")
            idx = lexer_index[id(basic)] = len(lexers)
            lexers.append((tuple(t.name for t in terminals), unless))
        state_lexer.append(idx)

    suffix = _ignored_suffix(list(regexps), regexps, ignore - set(callbacks), starts)
    # The scanner regex of every (lexer, ASCII character), shared by the pairs with the
    # same alternatives: per lexer, 128 indices into `patterns` (-1: no terminal).
    first = {name: frozenset(ch for ch in _ASCII if starts.may(name, ch)) for name in regexps}
    pattern_index: dict[tuple[str, ...], int] = {}
    patterns: list[str] = []
    chars: list[tuple[int, ...]] = []
    for names, _ in lexers:
        row = []
        for ch in _ASCII:
            subset = tuple(n for n in names if ch in first[n])
            if not subset:
                row.append(-1)
                continue
            i = pattern_index.get(subset)
            if i is None:
                i = pattern_index[subset] = len(patterns)
                patterns.append(_alternation(subset, regexps, suffix))
            row.append(i)
        chars.append(tuple(row))

    tables: Tables = _plain(
        {
            "format": FORMAT,
            "start_states": dict(table.start_states),
            "end_states": dict(table.end_states),
            "actions": actions,
            "gotos": gotos,
            "rules": specs,
            "reducers": list(shapes),
            "has_default": default is not None,
            "terminals": regexps,
            "ignore": sorted(ignore),
            "callbacks": callbacks,
            "lexers": lexers,
            "state_lexer": state_lexer,
            "suffix": suffix,
            "patterns": patterns,
            "chars": chars,
        }
    )
    return tables


def _plain(x: Any) -> Any:
    """``x`` with every `str` subclass (Lark names symbols with `Token`s) made a `str`."""
    if isinstance(x, str):
        return str(x)
    if isinstance(x, dict):
        return {_plain(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(y) for y in x)
    return x


def _ignored_suffix(
    names: list[str], regexps: dict[str, str], quiet_names: frozenset[str], starts: _Starts
) -> str:
    """A regex eating the ignored text (whitespace) that may follow any token.

    A character that only an ignored terminal without a callback (``quiet_names``) can
    start with (a space, say) lexes as that terminal in every state, so it can be
    consumed with the token before it: one regex match instead of two.
    """
    found: dict[str, list[str]] = {}
    quiet = [n for n in names if n in quiet_names]
    for ch in _ASCII:
        may = [n for n in quiet if starts.may(n, ch)]
        if len(may) == 1 and not any(starts.may(n, ch) for n in names if n != may[0]):
            found.setdefault(regexps[may[0]], []).append(ch)
    alternatives = []
    for regexp, chars in found.items():
        if re.compile(regexp).groups:
            continue  # a group in the suffix would change which group matched last
        cls = "[" + "".join(re.escape(c) for c in chars) + "]"
        one = regexp[:-1]
        if (
            len(found) == 1
            and regexp.endswith("+")
            and _is_one_char(one)
            and all(re.fullmatch(one, c) for c in chars)
        ):
            # `(?=[cls])X+` with `cls` within the character class X, and nothing else
            # to repeat: `[cls]X*` matches the same, without the slow lookahead.
            return f"(?:{cls}{one}*)?"
        alternatives.append(f"(?={cls})(?:{regexp})")
    return f"(?:{'|'.join(alternatives)})*" if alternatives else ""


class _Scanner:
    """One lexer's terminals, with a regex per next character, looked up on first use."""

    __slots__ = ("by_char", "chars", "names", "unless")

    def __init__(
        self, names: tuple[str, ...], unless: dict[str, dict[str, str]], chars: tuple[int, ...]
    ) -> None:
        self.names = names
        self.unless = unless
        self.chars = chars
        self.by_char: dict[str, _Match] = {}


class _Unit:
    """A reduction of one child: the goto row, and the callback (None: the value stays)."""

    __slots__ = ("fn", "goto")

    def __init__(self, goto: dict[int, int], fn: _Callback | None) -> None:
        self.goto = goto
        self.fn = fn


class FastLALR:
    """Parses text with `Tables` derived from a `lark.Lark` (LALR, contextual lexer).

    ``builder`` is the class of the transformer the tables were derived with (its methods
    are named in them), and ``callbacks`` the lexer callbacks, by terminal, each taking
    the parse's builder and the token; anything else raises `Unsupported`.

    Re-entrant: the driver holds only what the tables determine. Each `parse` is given
    the builder instance that holds that parse's state (the rule callbacks are called
    with it first, as the unbound methods of ``builder``), so any number of threads can
    parse with one driver at once, and a callback can start a parse of its own (a
    substitution). The lazily filled caches (scanners, compiled patterns, runs of
    one-child reductions) are keyed by the tables alone; two threads filling one entry
    store the same value, and a reader sees it or its absence.
    """

    def __init__(
        self,
        tables: Tables,
        builder: type,
        newlines: NewlineRules,
        callbacks: dict[str, LexerCallback],
    ) -> None:
        if tables.get("format") != FORMAT:
            raise Unsupported("tables of another format")
        if sorted(callbacks) != tables["callbacks"]:
            raise Unsupported("tables derived with other lexer callbacks")
        regexps: dict[str, str] = tables["terminals"]
        if any(getattr(builder, name, None) is not None for name in regexps):
            raise Unsupported("transformer callbacks for terminals")
        if (getattr(builder, "__default__", None) is not None) != tables["has_default"]:
            raise Unsupported("tables derived for a transformer with(out) __default__")
        self._ignore = frozenset(tables["ignore"])
        self._user_callbacks: dict[str, LexerCallback] = dict(callbacks)
        self._newlines = newlines
        self._start_states: dict[str, int] = dict(tables["start_states"])
        self._end_states: dict[str, int] = dict(tables["end_states"])
        actions: list[dict[str, Any]] = [dict(row) for row in tables["actions"]]
        self._actions = actions
        nstates = len(actions)

        gotos: dict[str, dict[int, int]] = tables["gotos"]
        factories = _reducer_factories(tuple(_shape(x) for x in tables["reducers"]))
        reducers: list[_Reducer | _Unit] = []
        for origin, kind, cb, factory in tables["rules"]:
            goto = gotos.get(origin, {})
            fn = _callback(builder, cb)
            if kind == _KEEP:
                reducers.append(_Unit(goto, None))
            elif kind == _ONE:
                reducers.append(_Unit(goto, _as_list if fn is None else fn))
            else:
                reducers.append(factories[factory](fn, goto))
        self._reducers = reducers
        # Reductions go straight into the action table: a `_Unit` for rules of one child,
        # a reducer (function) for the rest; shifts stay ints.
        for row in actions:
            for sym, act in row.items():
                if act < 0:
                    row[sym] = reducers[~act]

        self._regexps = regexps
        self._suffix: str = tables["suffix"]
        self._lexers: list[tuple[tuple[str, ...], dict[str, dict[str, str]]]] = tables["lexers"]
        self._state_lexer: list[int] = tables["state_lexer"]
        if len(self._state_lexer) != nstates:
            raise Unsupported("tables whose lexers do not cover every state")
        self._chars: list[tuple[int, ...]] = tables["chars"]
        self._patterns: list[str] = tables["patterns"]
        self._compiled: list[_Match | None] = [None] * len(self._patterns)
        self._starts = _Starts(regexps)  # for characters beyond ASCII
        self._regex_cache: dict[str, _Match] = {}
        # Per state, the scanner of its lexer (shared by the states with the same lexer);
        # set up on first use.
        self._scanners: list[_Scanner | None] = [None] * len(self._lexers)
        self._by_char: list[dict[str, _Match]] = [{} for _ in range(nstates)]
        self._unless: list[dict[str, dict[str, str]]] = [{} for _ in range(nstates)]
        # Per terminal: its column of the action table, and the runs of one-child
        # reductions seen with it as lookahead, keyed by (state, state below).
        # A missing action is `_fail`, which raises `ParseFailed` when the loop calls it.
        self._columns: dict[str, list[Any]] = {t: [_fail] * nstates for t in regexps}
        for state, row in enumerate(actions):
            for sym, act in row.items():
                if sym in self._columns:
                    self._columns[sym][state] = act
        self._unit_memos: dict[str, dict[int, tuple[int, tuple[Any, ...]]]] = {
            t: {} for t in regexps
        }
        self._special: dict[str, int] = dict.fromkeys(self._ignore, _IGNORE)
        self._special[newlines.newline] = _NEWLINE
        self._special.update(dict.fromkeys(newlines.openers, _OPENER))
        self._special.update(dict.fromkeys(newlines.closers, _CLOSER))

    # -- lexing -------------------------------------------------------------------------------

    def _scanner(self, state: int) -> _Scanner:
        idx = self._state_lexer[state]
        sc = self._scanners[idx]
        if sc is None:
            names, unless = self._lexers[idx]
            sc = self._scanners[idx] = _Scanner(names, unless, self._chars[idx])
        self._by_char[state] = sc.by_char
        self._unless[state] = sc.unless
        return sc

    def _matcher(self, state: int, ch: str) -> _Match:
        """The regex for ``state`` at a position where the text continues with ``ch``.

        The alternatives that can start with ``ch``, in Lark's order, then the ignored
        suffix; group ``lastgroup`` spans the token itself.
        """
        sc = self._scanner(state)
        match = sc.by_char.get(ch)
        if match is not None:
            return match
        code = ord(ch)
        if code < 128:
            i = sc.chars[code]
            if i < 0:
                match = _no_match
            else:
                match = self._compiled[i]
                if match is None:
                    match = self._compiled[i] = re.compile(self._patterns[i]).match
        else:
            subset = [n for n in sc.names if self._starts.may(n, ch)]
            if not subset:
                match = _no_match
            else:
                pattern = _alternation(subset, self._regexps, self._suffix)
                match = self._regex_cache.get(pattern)
                if match is None:
                    match = self._regex_cache[pattern] = re.compile(pattern).match
        sc.by_char[ch] = match
        return match

    def _unit_chain(self, state: int, below: int, typ: str) -> tuple[int, tuple[Any, ...]]:
        """The run of one-child reductions that starts in ``state``: end state, callbacks.

        Each replaces the top state by a goto from ``below``, which stays put, and the
        top value by its callback's result, so the run depends only on (state, below,
        lookahead); it is followed once and replayed from then on.
        """
        top = state
        callbacks = []
        act = self._actions[top].get(typ)
        while type(act) is _Unit:
            if act.fn is not None:
                callbacks.append(act.fn)
            top = act.goto[below]
            act = self._actions[top].get(typ)
        chain = (top, tuple(callbacks))
        self._unit_memos[typ][state * len(self._actions) + below] = chain
        return chain

    # -- parsing ------------------------------------------------------------------------------

    def parse(self, text: str, start: str, builder: Any) -> Any:
        """Parse ``text`` from the start symbol ``start``, building with ``builder``.

        Raises `ParseFailed` when Lark must parse it instead (a syntax error, above all).
        """
        columns = self._columns
        nstates = len(self._actions)
        by_char = self._by_char
        unless_by_state = self._unless
        unit_memos = self._unit_memos
        user_callbacks = self._user_callbacks
        special = self._special
        nl = self._newlines
        nl_after = nl.after
        keep_inside = nl.keep_inside
        continue_values = nl.continue_values
        not_operators = nl.not_operators
        new_tok = str.__new__
        tok_class = Tok

        try:
            state = self._start_states[start]
            end_state = self._end_states[start]
        except KeyError:
            raise ParseFailed(start) from None
        sstack = [state]
        vstack: list[Any] = []
        brackets: list[str] = []
        pos = 0
        n = len(text)
        # Failures raise `ParseFailed` at the lines marked (*): no terminal matches here,
        # or the state has no action for the token (`_fail`).
        while pos < n:
            match = by_char[state].get(text[pos]) or self._matcher(state, text[pos])
            m = match(text, pos)
            if m is None:
                raise ParseFailed(pos)  # (*)
            typ: str = m.lastgroup  # type: ignore[assignment]
            end = m.end(typ)
            value = text[pos:end]
            kind = special.get(typ)
            if kind is None:
                unless = unless_by_state[state]
                if unless and typ in unless:
                    typ = unless[typ].get(value, typ)
            elif kind == _IGNORE:
                cb = user_callbacks.get(typ)
                if cb is not None:
                    tok = new_tok(tok_class, value)
                    tok.type, tok.value, tok.start_pos, tok.end_pos = typ, value, pos, end
                    cb(builder, tok)
                pos = m.end()
                continue
            elif kind == _NEWLINE:
                # The post-lexer's rules. The last token it let through was just shifted,
                # so it is on top of the value stack.
                prev = vstack[-1] if vstack else None
                if (
                    prev is None
                    or prev.type in nl_after
                    or (brackets and brackets[-1] not in keep_inside)
                    or (prev.value in continue_values and prev.type not in not_operators)
                ):
                    pos = m.end()
                    continue
            elif kind == _OPENER:
                brackets.append(typ)
            elif brackets:
                brackets.pop()
            tok = new_tok(tok_class, value)
            tok.type, tok.value, tok.start_pos, tok.end_pos = typ, value, pos, end
            pos = m.end()

            column = columns[typ]
            act = column[state]
            while act.__class__ is not int:
                if act.__class__ is _Unit:
                    below = sstack[-2]
                    state, callbacks = unit_memos[typ].get(
                        state * nstates + below
                    ) or self._unit_chain(state, below, typ)
                    for cb in callbacks:
                        vstack[-1] = cb(builder, vstack[-1:])
                    sstack[-1] = state
                else:
                    state = act(vstack, sstack, builder)  # (*)
                act = column[state]
            sstack.append(act)
            vstack.append(tok)
            state = act

        # The end of the input: reduce until the start symbol is complete, checking after
        # every reduction as Lark does.
        actions = self._actions
        act = actions[state].get("$END")
        while True:
            if act.__class__ is _Unit:
                if act.fn is not None:
                    vstack[-1] = act.fn(builder, vstack[-1:])
                state = act.goto[sstack[-2]]
                sstack[-1] = state
            elif act is None or act.__class__ is int:
                raise ParseFailed(pos)
            else:
                state = act(vstack, sstack, builder)
            if state == end_state:
                return vstack[-1]
            act = actions[state].get("$END")


# ---- regex first characters -----------------------------------------------------------------


def _first(items: Any, ch: str) -> tuple[bool, bool]:
    """(whether the regex sequence ``items`` may start with ``ch``, whether it may be empty).

    Errs towards True: an unknown construct may start with anything.
    """
    for op, av in items:
        if op is sre_constants.LITERAL:
            may, empty = chr(av) == ch, False
        elif op is sre_constants.NOT_LITERAL:
            may, empty = chr(av) != ch, False
        elif op is sre_constants.IN:
            may, empty = _in_set(av, ch), False
        elif op is sre_constants.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if add_flags & (re.IGNORECASE | re.VERBOSE):
                return True, True
            may, empty = _first(sub, ch)
        elif op is sre_constants.ATOMIC_GROUP:
            may, empty = _first(av, ch)
        elif op is sre_constants.BRANCH:
            results = [_first(alt, ch) for alt in av[1]]
            may, empty = any(r[0] for r in results), any(r[1] for r in results)
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            sre_constants.POSSESSIVE_REPEAT,
        ):
            lo, _hi, sub = av
            may, empty = _first(sub, ch)
            empty = empty or lo == 0
        elif op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            may, empty = False, True  # zero width; ignoring a lookahead only adds starts
        else:  # ANY, group references, ...
            return True, True
        if may:
            return True, empty
        if not empty:
            return False, False
    return False, True


def _is_one_char(regexp: str) -> bool:
    """Whether ``regexp`` is a single character or character class."""
    try:
        items = list(sre_parse.parse(regexp))
    except re.error:
        return False
    return len(items) == 1 and items[0][0] in (sre_constants.IN, sre_constants.LITERAL)


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


def _in_set(items: Any, ch: str) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            hit = hit or chr(av) == ch
        elif op is sre_constants.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is sre_constants.CATEGORY and str(av) in _CATEGORIES:
            hit = hit or re.match(_CATEGORIES[str(av)], ch) is not None
        else:
            return True
    return hit != negate


# ---- reductions -----------------------------------------------------------------------------


def _single_inlined(
    rules: list[Any], kept: list[list[tuple[int, Any]]], should_expand: Callable[[Any], bool]
) -> frozenset[str]:
    """The `_rule`s every production of which leaves exactly one child after splicing.

    Lark would hand their parents a one-child tree to splice; passing the child itself
    and appending it gives the parent the same children with one reduction less.
    """
    by_origin: dict[str, list[list[tuple[int, Any]]]] = {}
    for rule, children in zip(rules, kept, strict=True):
        by_origin.setdefault(rule.origin.name, []).append(children)
    single = {name for name in by_origin if name.startswith("_")}
    changed = True
    while changed:  # shrink to the greatest fixed point
        changed = False
        for name in list(single):
            for children in by_origin[name]:
                if len(children) != 1 or (
                    should_expand(children[0][1]) and children[0][1].name not in single
                ):
                    single.discard(name)
                    changed = True
                    break
    return frozenset(single)


def _reducer_body(
    size: int, include: list[tuple[int, bool]] | None, expand1: bool, has_callback: bool, bare: bool
) -> list[str]:
    """The statements of a reducer: pop the children, push the value, goto; `st` is the state.

    The children are built exactly as lark.parse_tree_builder's ChildFilterLALR_NoPlaceholders
    and ExpandSingleChild build them: spliced children (``_rule``s, whose value is their
    list of children) are concatenated in, the first one aliased rather than copied, so
    left recursion stays linear; a ``?rule`` left with one child passes it up.
    """
    body: list[str] = []
    if include is None:
        if size == 1:
            body.append("v[-1] = " + ("cb(b, v[-1:])" if has_callback else "v[-1:]"))
        else:
            if size:
                body.append(f"ch = v[-{size}:]")
                body.append(f"del v[-{size}:]")
            children = "ch" if size else "[]"
            body.append(f"v.append({f'cb(b, {children})' if has_callback else children})")
    elif bare:  # a one-element `_rule`: its value is the element
        ((i, _),) = include
        if size == 1:
            body.append("c0 = v.pop()")
        else:
            body.append(f"{', '.join(f'c{j}' for j in range(size))}, = v[-{size}:]")
            body.append(f"del v[-{size}:]")
        body.append(f"v.append(c{i})")
    else:
        names = [f"c{i}" for i in range(size)]
        if size == 1:
            body.append("c0 = v.pop()")
        elif size:
            body.append(f"{', '.join(names)}, = v[-{size}:]")
            body.append(f"del v[-{size}:]")
        known = "empty"  # what is known of `f` here: empty, nonempty or unknown
        for i, spliced in include:
            if spliced:
                if known == "empty":
                    body.append(f"f = c{i}")
                    known = "unknown"
                elif known == "nonempty":
                    body.append(f"f += c{i}")
                else:
                    body.append(f"if f: f += c{i}")
                    body.append(f"else: f = c{i}")
            else:
                body.append(f"f = [c{i}]" if known == "empty" else f"f.append(c{i})")
                known = "nonempty"
        if known == "empty":
            body.append("f = []")
        if not has_callback:
            body.append("v.append(f)")
        elif expand1:
            body.append("v.append(f[0] if len(f) == 1 else cb(b, f))")
        else:
            body.append("v.append(cb(b, f))")
    if size == 0:
        body.append("st = goto[s[-1]]")
        body.append("s.append(st)")
    elif size == 1:
        body.append("st = goto[s[-2]]")
        body.append("s[-1] = st")
    else:
        body.append(f"del s[-{size - 1}:]")
        body.append("st = goto[s[-2]]")
        body.append("s[-1] = st")
    return body


def _shape(x: Any) -> Shape:
    """A stored reducer shape, checked to be only numbers and flags (see `Tables`).

    The reducers' code is generated from these, so nothing else may pass: a string where a
    number belongs would become code.
    """
    if not (isinstance(x, (list, tuple)) and len(x) == 5):
        raise Unsupported("a reducer shape of another layout")
    size, include, expand1, has_callback, bare = x
    if type(size) is not int or not 0 <= size <= 64:
        raise Unsupported("a reducer shape with a bad size")
    if any(type(flag) is not bool for flag in (expand1, has_callback, bare)):
        raise Unsupported("a reducer shape with bad flags")
    kept: tuple[tuple[int, bool], ...] | None = None
    if include is not None:
        if not isinstance(include, (list, tuple)):
            raise Unsupported("a reducer shape with bad children")
        items = []
        for item in include:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise Unsupported("a reducer shape with bad children")
            i, spliced = item
            if type(i) is not int or not 0 <= i < size or type(spliced) is not bool:
                raise Unsupported("a reducer shape with bad children")
            items.append((i, spliced))
        kept = tuple(items)
    return (size, kept, expand1, has_callback, bare)


@lru_cache(maxsize=4)
def _reducer_factories(shapes: tuple[Shape, ...]) -> list[Callable[..., _Reducer]]:
    """A factory ``make(cb, goto)`` per reducer shape, generated and compiled here.

    Each factory returns a reducer closing over the rule's callback and goto row. The
    code is made in memory from the shapes (checked by `_shape`), never read from a
    stored file; compiling it costs about 2 ms per process (28 shapes), done once.
    """
    source = "".join(
        f"def make_{i}(cb, goto):\n    def reduce(v, s, b):\n"
        + "".join(
            f"        {line}\n"
            for line in _reducer_body(size, list(include) if include is not None else None, *flags)
        )
        + "        return st\n    return reduce\n"
        for i, (size, include, *flags) in enumerate(shapes)
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<fastlalr reducers>", "exec"), namespace)
    return [namespace[f"make_{i}"] for i in range(len(shapes))]


def _fail(v: list[Any], s: list[int], b: Any) -> int:
    """The action of a token the state does not accept."""
    raise ParseFailed(s[-1])


def _as_list(b: Any, children: list[Any]) -> list[Any]:
    """A one-child `_rule` without a callback: its value is its (fresh) list of children."""
    return children


def _callback(builder: type, cb: Any) -> _Callback | None:
    """The function for a rule's callback in `Tables` (None: the rule has none): an
    unbound method of ``builder``, called with the parse's builder first."""
    if cb is None:
        return None
    if not (isinstance(cb, (list, tuple)) and len(cb) == 2):
        raise Unsupported("a rule callback of another layout")
    kind, name = cb
    if not isinstance(name, str) or name.startswith("_"):
        raise Unsupported("a rule callback that is not a public method")
    method = getattr(builder, name, None)
    if kind == "method":
        if not callable(method) or getattr(method, "visit_wrapper", None) is not None:
            raise Unsupported(f"tables naming `{name}`, which the transformer lacks")
        return method  # type: ignore[no-any-return]
    if kind != "default":
        raise Unsupported("a rule callback of another kind")
    if method is not None:
        raise Unsupported(f"tables derived before the transformer had `{name}`")
    return _default_callback(builder, name)


def _default_callback(builder: type, name: str) -> _Callback:
    """What Lark calls for a rule the transformer has no method for."""
    default = getattr(builder, "__default__", None)
    if default is not None:

        def build(b: Any, children: list[Any]) -> Any:
            return default(b, name, children, None)
    else:

        def build(b: Any, children: list[Any]) -> Any:
            # Lark's default `tree_class`; lazy: only for a rule the builder has no method for
            from lark import Tree

            return Tree(name, children)

    return build
