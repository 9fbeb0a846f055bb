"""A hand-written LALR(1) driver over Lark's own tables: the parser's fast path.

Why it is hand-written: Lark's generic LALR loop costs about 20 µs per token on CFL.
Every token passes through a chain of generators (lexer, post-lexer, parser), becomes a
`Token` with eight fields and a line/column count, is matched against one regex
alternation of every terminal the state accepts, and every reduction looks its callback
up in a dict keyed by `Rule` objects (hashing a tuple, comparing grammar symbols), then
runs it through layers of generic tree-shaping wrappers. On a 10,000-line file that is
six seconds, most of it spent on bookkeeping rather than on the language.

What it reuses: nothing about the language is restated here. Lark stays the source of
truth: this module reads the parse table Lark compiled from ``grammar/cfl.lark``
(actions, gotos, start and end states), the terminals of each state of Lark's contextual
lexer (in Lark's priority order, with its keyword-versus-``NAME`` rules), and each rule's
shaping options (``?rule`` single-child inlining, ``_rule`` splicing, aliases), and it
calls the transformer methods Lark would call, with the same children. The post-lexer's
newline rules are passed in as data (`NewlineRules`).

The loop: lex one token with the terminals of the state on top of the stack (that is
what a contextual lexer is), skip ignored terminals (calling their lexer callbacks, as
Lark does for doc comments), apply the newline rules, then reduce while the table says
reduce and shift the token. What makes it fast:

* Lexing dispatches on the next character. Lark's scanner tries the alternatives of one
  big regex in priority order and the first that matches wins; an alternative that cannot
  start with the next character can never be that winner, so each (state's lexer,
  character) pair gets a regex of only those that can, in the same order, compiled on
  first use. Which characters a terminal can start with is read off its parsed regex,
  erring towards "can". Whitespace that only the ignored terminal can start is eaten by
  the same match, after the token.
* Each rule's reduction is a small function generated once from the rule's shape (its
  length, which children are spliced, whether one child is passed up, the callback and
  the goto row). Reductions of one child (``?rule`` pass-ups, ``string -> literal ->
  primary -> ...``) only replace the top of the stacks, so a run of them depends on the
  two top states and the lookahead alone: it is worked out once and replayed.
* `_rule`s that always come down to one element (``_stmt``, ``_ident``) hand the element
  itself to their parent, which appends it, instead of a one-element list to splice.
* Tokens are `Tok`, a `lark.Token` without line and column.

Exactness: the driver returns a result only for input it parses; on anything else (an
unexpected character or token) it raises, and the caller reruns Lark, whose errors the
parser turns into diagnostics. It never reports an error of its own. A grammar or Lark
configuration outside the subset reproduced here raises `Unsupported` at construction,
and the caller uses Lark alone. tests/test_fastparse.py compares both paths' trees,
spans and doc comments included, on every CFL file in the repository and on generated
programs, token soups and broken files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lark import Lark, Token


class Unsupported(Exception):
    """The Lark configuration uses a feature this driver does not reproduce."""


class ParseFailed(Exception):
    """The fast path cannot produce Lark's result for this input; rerun Lark."""


class Tok(Token):
    """A `lark.Token` built without Lark's constructor: only type, value and offsets.

    Line and column are never computed (spans are offsets); they read as None.
    """

    __slots__ = ()
    line = None
    column = None
    end_line = None
    end_column = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Token, (self.type, self.value, self.start_pos, None, None, None, None,
                        self.end_pos))


class NewlineRules:
    """The post-lexer's rules for line breaks, as data the driver applies inline.

    A newline token is dropped at the start of the input, after a token of a type in
    ``after``, inside an open bracket other than those in ``keep_inside``, and after a
    continuation token (value in ``continue_values``, type not in ``not_operators``).
    """

    __slots__ = ("after", "closers", "continue_values", "keep_inside", "newline",
                 "not_operators", "openers")

    def __init__(self, *, newline: str, after: frozenset[str], openers: frozenset[str],
                 closers: frozenset[str], keep_inside: frozenset[str],
                 continue_values: frozenset[str], not_operators: frozenset[str]) -> None:
        self.newline = newline
        self.after = after
        self.openers = openers
        self.closers = closers
        self.keep_inside = keep_inside
        self.continue_values = continue_values
        self.not_operators = not_operators


_Match = Callable[[str, int], "re.Match[str] | None"]
_IGNORE, _NEWLINE, _OPENER, _CLOSER = 0, 1, 2, 3
_Reducer = Callable[[list[Any], list[int]], int]


def _no_match(text: str, pos: int) -> None:
    return None


class _Scanner:
    """One Lark lexer's terminals, with a regex per next character built on demand."""

    __slots__ = ("by_char", "terminals", "unless")

    def __init__(self, terminals: list[Any], unless: dict[str, dict[str, str]]) -> None:
        self.terminals = terminals
        self.unless = unless
        self.by_char: dict[str, _Match] = {}


class _Unit:
    """A reduction of one child: the goto row, and the callback (None: the value stays)."""

    __slots__ = ("fn", "goto")

    def __init__(self, goto: dict[int, int], fn: Callable[[list[Any]], Any] | None) -> None:
        self.goto = goto
        self.fn = fn


class FastLALR:
    """Parses text with the tables of one `lark.Lark` instance (LALR, contextual lexer)."""

    def __init__(self, lark: Lark, transformer: Any, newlines: NewlineRules) -> None:
        from lark.lexer import ContextualLexer
        from lark.parse_tree_builder import _should_expand as lark_should_expand
        from lark.parsers.lalr_analysis import Shift
        from lark.visitors import Transformer, Transformer_InPlace

        should_expand: Callable[[Any], bool] = lark_should_expand
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
        self._ignore = frozenset(conf.ignore)
        self._user_callbacks: dict[str, Callable[[Token], Any]] = dict(conf.callbacks)
        if any(t not in self._ignore for t in self._user_callbacks):
            raise Unsupported("lexer callbacks on terminals that are not ignored")
        self._lark_lexers = lexer.lexers
        self._newlines = newlines
        self._parsed: dict[str, Any] = {}
        self._regex_cache: dict[tuple[str, ...], _Match] = {}

        table = frontend.parser.parser.parse_table
        self._start_states: dict[str, int] = dict(table.start_states)
        self._end_states: dict[str, int] = dict(table.end_states)
        nstates = max(table.states) + 1
        if set(table.states) != set(range(nstates)):
            raise Unsupported("a parse table whose states are not numbered 0..n-1")

        # Actions: a state to shift to (>= 0) or ~rule (< 0); gotos per nonterminal.
        rule_index: dict[int, int] = {}
        rules: list[Any] = []
        actions: list[dict[str, Any]] = [{} for _ in range(nstates)]
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
        self._actions = actions

        # The tree shaping of lark.parse_tree_builder, resolved once per rule.
        plain_default = getattr(type(transformer), "__default__", None) is Transformer.__default__
        kept = [[(i, sym) for i, sym in enumerate(rule.expansion)
                 if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out)]
                for rule in rules]
        single = _single_inlined(rules, kept, should_expand)
        self._reducers: list[_Reducer | _Unit] = []
        pending: list[tuple[int, tuple[list[str], Any, dict[int, int]]]] = []
        for rule, children in zip(rules, kept, strict=True):
            o = rule.options
            name = rule.origin.name
            size = len(rule.expansion)
            # Spliced children: `_rule`s, except those always of one element (`single`),
            # whose value is that element rather than a one-element list.
            include = [(i, bool(should_expand(sym)) and sym.name not in single)
                       for i, sym in children]
            needs_filter = len(include) < size or any(e for _, e in include)
            expand1 = bool(o.expand1) and not rule.alias
            cb_name = rule.alias or o.template_source or name
            method = getattr(transformer, cb_name, None)
            callback: Callable[[list[Any]], Any] | None
            if method is not None:
                if getattr(method, "visit_wrapper", None) is not None:
                    raise Unsupported(f"a visit wrapper (v_args) on `{cb_name}`")
                callback = method
            elif name.startswith("_"):
                # Lark builds a Tree whose children the parent splices at once; the list
                # of children does the same job (or the one child, for `single` rules).
                if expand1 or not plain_default:
                    raise Unsupported(f"`?{name}` or a custom __default__")
                callback = None
            else:
                callback = _default_callback(transformer, cb_name)
            goto = gotos.get(name, {})
            bare = name in single
            if size == 1 and ((expand1 and not needs_filter) or bare
                              or (callback is None and include == [(0, True)])):
                # The value stays, only the state changes: a `?rule` passing its one
                # child up, a one-element `_rule`, or a `_rule` that is one spliced
                # `_rule` (the same list).
                self._reducers.append(_Unit(goto, None))
            elif size == 1 and not needs_filter:
                # One child in, one value out: the callback, or a one-element list.
                self._reducers.append(_Unit(goto, list if callback is None else callback))
            else:
                body = _reducer_body(size, include if needs_filter or bare else None, expand1,
                                     callback is not None, bare)
                pending.append((len(self._reducers), (body, callback, goto)))
                self._reducers.append(_Unit(goto, None))  # replaced just below
        compiled = _compile_reducers([spec for _, spec in pending])
        for (idx, _), reducer in zip(pending, compiled, strict=True):
            self._reducers[idx] = reducer
        # Reductions go straight into the action table: a `_Unit` for rules of one child,
        # a reducer (function) for the rest; shifts stay ints.
        for row in self._actions:
            for sym, act in row.items():
                if act < 0:
                    row[sym] = self._reducers[~act]

        self._suffix = self._ignored_suffix(list(lark.terminals))
        # Per state, the scanner of Lark's lexer for it (shared by the states with the
        # same lexer); built on first use, as Lark builds its own.
        self._by_lexer: dict[int, _Scanner] = {}
        self._by_char: list[dict[str, _Match]] = [{} for _ in range(nstates)]
        self._unless: list[dict[str, dict[str, str]]] = [{} for _ in range(nstates)]
        # Per terminal: its column of the action table, and the runs of one-child
        # reductions seen with it as lookahead, keyed by (state, state below).
        self._columns: dict[str, list[Any]] = {t: [None] * nstates for t in terminal_names}
        for state, row in enumerate(self._actions):
            for sym, act in row.items():
                if sym in self._columns:
                    self._columns[sym][state] = act
        self._unit_memos: dict[str, dict[int, tuple[int, tuple[Any, ...]]]] = {
            t: {} for t in terminal_names}
        self._special: dict[str, int] = dict.fromkeys(self._ignore, _IGNORE)
        self._special[newlines.newline] = _NEWLINE
        self._special.update(dict.fromkeys(newlines.openers, _OPENER))
        self._special.update(dict.fromkeys(newlines.closers, _CLOSER))

    # -- lexing -------------------------------------------------------------------------------

    def _scanner(self, state: int) -> _Scanner:
        from lark.lexer import UnlessCallback
        from lark.lexer import _create_unless as lark_create_unless

        create_unless: Callable[..., tuple[list[Any], dict[str, Any]]] = lark_create_unless
        basic: Any = self._lark_lexers[state]
        sc = self._by_lexer.get(id(basic))
        if sc is None:
            # What Lark's scanner for this lexer is built from (BasicLexer._build_scanner),
            # without compiling its master regex, which the driver never uses: the
            # terminals in order, with the keywords that NAME also matches taken out and
            # turned into a callback that retypes NAME.
            terminals, callbacks = create_unless(
                basic.terminals, basic.g_regex_flags, basic.re, basic.use_bytes)
            unless: dict[str, dict[str, str]] = {}
            for type_, cb in callbacks.items():
                if not isinstance(cb, UnlessCallback):
                    raise Unsupported(f"an unknown lexer callback on {type_}")
                if type_ in basic.user_callbacks:
                    raise Unsupported(f"a user callback on {type_}, which has keywords")
                words: dict[str, str] = {}
                for t in cb.scanner.terminals:
                    if t.pattern.type != "str" or t.pattern.flags:
                        raise Unsupported("keywords with regex flags")
                    words.setdefault(t.pattern.value, t.name)
                if any(w in self._special for w in words.values()):
                    raise Unsupported("a keyword that the newline rules treat specially")
                unless[type_] = words
            sc = self._by_lexer[id(basic)] = _Scanner(list(terminals), unless)
        self._by_char[state] = sc.by_char
        self._unless[state] = sc.unless
        return sc

    def _ignored_suffix(self, terminals: list[Any]) -> str:
        """A regex eating the ignored text (whitespace) that may follow any token.

        A character that only an ignored terminal without a callback can start with
        (a space, say) lexes as that terminal in every state, so it can be consumed
        with the token before it: one regex match instead of two.
        """
        found: dict[str, list[str]] = {}
        quiet = [t for t in terminals
                 if t.name in self._ignore and t.name not in self._user_callbacks]
        for code in range(128):
            ch = chr(code)
            starts = [t for t in quiet if self._may_start_with(t, ch)]
            if len(starts) == 1 and not any(
                    self._may_start_with(t, ch) for t in terminals if t is not starts[0]):
                found.setdefault(starts[0].pattern.to_regexp(), []).append(ch)
        alternatives = []
        for regexp, chars in found.items():
            if re.compile(regexp).groups:
                continue  # a group in the suffix would change which group matched last
            cls = "[" + "".join(re.escape(c) for c in chars) + "]"
            one = regexp[:-1]
            if (len(found) == 1 and regexp.endswith("+") and _is_one_char(one)
                    and all(re.fullmatch(one, c) for c in chars)):
                # `(?=[cls])X+` with `cls` within the character class X, and nothing else
                # to repeat: `[cls]X*` matches the same, without the slow lookahead.
                return f"(?:{cls}{one}*)?"
            alternatives.append(f"(?={cls})(?:{regexp})")
        return f"(?:{'|'.join(alternatives)})*" if alternatives else ""

    def _matcher(self, state: int, ch: str) -> _Match:
        """The regex for ``state`` at a position where the text continues with ``ch``.

        The alternatives that can start with ``ch``, in Lark's order, then the ignored
        suffix; group ``lastgroup`` spans the token itself.
        """
        sc = self._scanner(state)
        match = sc.by_char.get(ch)
        if match is not None:
            return match
        subset = [t for t in sc.terminals if self._may_start_with(t, ch)]
        if not subset:
            match = _no_match
        else:
            key = tuple(t.name for t in subset)
            match = self._regex_cache.get(key)
            if match is None:
                pattern = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in subset)
                match = self._regex_cache[key] = re.compile(
                    f"(?:{pattern}){self._suffix}").match
        sc.by_char[ch] = match
        return match

    def _may_start_with(self, terminal: Any, ch: str) -> bool:
        parsed = self._parsed.get(terminal.name)
        if parsed is None:
            from re import _parser as sre_parse

            parsed = self._parsed[terminal.name] = sre_parse.parse(terminal.pattern.to_regexp())
        if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
            return True
        may, _ = _first(parsed, ch)
        return may

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

    def parse(self, text: str, start: str) -> Any:
        """Parse ``text`` from the start symbol ``start``.

        Raises `ParseFailed`, or any other exception, when Lark must parse it instead.
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
        # Failures surface as exceptions from the lines marked (*): no terminal matches
        # here (None has no `lastgroup`), a token no state accepts (KeyError), no action for
        # the token in this state (None is not callable). The caller catches them all.
        while pos < n:
            match = by_char[state].get(text[pos]) or self._matcher(state, text[pos])
            m = match(text, pos)
            typ: str = m.lastgroup  # type: ignore[union-attr,assignment]  # (*)
            end = m.end(typ)  # type: ignore[union-attr]
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
                    cb(tok)
                pos = m.end()  # type: ignore[union-attr]
                continue
            elif kind == _NEWLINE:
                # The post-lexer's rules. The last token it let through was just shifted,
                # so it is on top of the value stack.
                prev = vstack[-1] if vstack else None
                if (prev is None or prev.type in nl_after
                        or (brackets and brackets[-1] not in keep_inside)
                        or (prev.value in continue_values and prev.type not in not_operators)):
                    pos = m.end()  # type: ignore[union-attr]
                    continue
            elif kind == _OPENER:
                brackets.append(typ)
            elif brackets:
                brackets.pop()
            tok = new_tok(tok_class, value)
            tok.type, tok.value, tok.start_pos, tok.end_pos = typ, value, pos, end
            pos = m.end()  # type: ignore[union-attr]

            column = columns[typ]  # (*)
            act = column[state]
            while act.__class__ is not int:
                if act.__class__ is _Unit:
                    below = sstack[-2]
                    state, callbacks = (unit_memos[typ].get(state * nstates + below)
                                        or self._unit_chain(state, below, typ))
                    for cb in callbacks:
                        vstack[-1] = cb(vstack[-1:])
                    sstack[-1] = state
                else:
                    state = act(vstack, sstack)  # (*)
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
                    vstack[-1] = act.fn(vstack[-1:])
                state = act.goto[sstack[-2]]
                sstack[-1] = state
            elif act is None or act.__class__ is int:
                raise ParseFailed(pos)
            else:
                state = act(vstack, sstack)
            if state == end_state:
                return vstack[-1]
            act = actions[state].get("$END")


# ---- regex first characters -----------------------------------------------------------------


def _first(items: Any, ch: str) -> tuple[bool, bool]:
    """(whether the regex sequence ``items`` may start with ``ch``, whether it may be empty).

    Errs towards True: an unknown construct may start with anything.
    """
    from re import _constants as c

    for op, av in items:
        if op is c.LITERAL:
            may, empty = chr(av) == ch, False
        elif op is c.NOT_LITERAL:
            may, empty = chr(av) != ch, False
        elif op is c.IN:
            may, empty = _in_set(av, ch), False
        elif op is c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if add_flags & (re.IGNORECASE | re.VERBOSE):
                return True, True
            may, empty = _first(sub, ch)
        elif op is c.ATOMIC_GROUP:
            may, empty = _first(av, ch)
        elif op is c.BRANCH:
            results = [_first(alt, ch) for alt in av[1]]
            may, empty = any(r[0] for r in results), any(r[1] for r in results)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            lo, _hi, sub = av
            may, empty = _first(sub, ch)
            empty = empty or lo == 0
        elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
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
    from re import _constants as c
    from re import _parser as sre_parse

    try:
        items = list(sre_parse.parse(regexp))
    except re.error:
        return False
    return len(items) == 1 and items[0][0] in (c.IN, c.LITERAL)


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


def _in_set(items: Any, ch: str) -> bool:
    from re import _constants as c

    negate = False
    hit = False
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            hit = hit or chr(av) == ch
        elif op is c.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is c.CATEGORY and str(av) in _CATEGORIES:
            hit = hit or re.match(_CATEGORIES[str(av)], ch) is not None
        else:
            return True
    return hit != negate


# ---- reductions -----------------------------------------------------------------------------


def _single_inlined(rules: list[Any], kept: list[list[tuple[int, Any]]],
                    should_expand: Callable[[Any], bool]) -> frozenset[str]:
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
                if len(children) != 1 or (should_expand(children[0][1])
                                          and children[0][1].name not in single):
                    single.discard(name)
                    changed = True
                    break
    return frozenset(single)


def _reducer_body(size: int, include: list[tuple[int, bool]] | None, expand1: bool,
                  has_callback: bool, bare: bool) -> list[str]:
    """The statements of a reducer: pop the children, push the value, goto; `st` is the state.

    The children are built exactly as lark.parse_tree_builder's ChildFilterLALR_NoPlaceholders
    and ExpandSingleChild build them: spliced children (``_rule``s, whose value is their
    list of children) are concatenated in, the first one aliased rather than copied, so
    left recursion stays linear; a ``?rule`` left with one child passes it up.
    """
    body: list[str] = []
    if include is None:
        if size == 1:
            body.append("v[-1] = " + ("cb(v[-1:])" if has_callback else "v[-1:]"))
        else:
            if size:
                body.append(f"ch = v[-{size}:]")
                body.append(f"del v[-{size}:]")
            children = "ch" if size else "[]"
            body.append(f"v.append({f'cb({children})' if has_callback else children})")
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
            body.append("v.append(f[0] if len(f) == 1 else cb(f))")
        else:
            body.append("v.append(cb(f))")
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


def _compile_reducers(
        specs: list[tuple[list[str], Callable[[list[Any]], Any] | None, dict[int, int]]],
) -> list[_Reducer]:
    """Reducers for (body, callback, goto row) specs, compiled in one go.

    Each distinct body becomes one factory closing over its callback and goto row.
    """
    texts = ["".join(f"        {line}\n" for line in body) for body, _, _ in specs]
    factories = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    source = "".join(
        f"def make_{i}(cb, goto):\n    def reduce(v, s):\n{text}        return st\n"
        "    return reduce\n"
        for text, i in factories.items())
    namespace: dict[str, Any] = {}
    exec(compile(source, "<fastlalr reducers>", "exec"), namespace)
    return [namespace[f"make_{factories[text]}"](cb, goto)
            for text, (_, cb, goto) in zip(texts, specs, strict=True)]


def _default_callback(transformer: Any, name: str) -> Callable[[list[Any]], Any]:
    default = transformer.__default__

    def build(children: list[Any]) -> Any:
        return default(name, children, None)
    return build
