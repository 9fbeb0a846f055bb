"""The front end's bounds: source size, lone surrogates, nesting depth (`cfglang.limits`).

`check_text` runs before lexing: a file over the size limit is refused before any work is
spent on it, and a lone surrogate (only possible in text handed over through the API; a
file must be valid UTF-8) is refused because no output format can encode it.

`check_nesting` runs on the finished tree, before any later phase walks it. It is one
iterative pass (an explicit stack, so itself safe at any depth) that carries two counts
down the tree: *nesting* (blocks and object bodies, lists, comprehensions, calls,
indexing, substitutions, and each extra segment of a dotted path) and *operators*
(unary and binary operators, `if`-expressions, attribute access and `else if` chains,
which nest without brackets). Parentheses leave no node of their own, so the parser
hands over a side table of them (`AstBuilder.parens`): an expression inside more than
one pair directly around it, `((x))`, counts every pair after the first as a level of
nesting (a single pair stays free, as grouping). The first node that takes either count
past its limit is reported at its opening; the tree is then dropped, as after a syntax
error. Every level
of either count takes at least one character, so a construct whose text is shorter than
what is left of both budgets is not entered: on ordinary files the pass looks at little
more than the top-level statements.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cfglang.diagnostics import Diagnostic
from cfglang.limits import MAX_EXPRESSION_DEPTH, MAX_NESTING, SOURCE_SIZE_VARIABLE
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast

__all__ = ["check_nesting", "check_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_size(text: str, limit: int) -> int:
    """The UTF-8 length of ``text``, exact whenever it matters against ``limit``."""
    n = len(text)
    if n > limit or n * 4 <= limit or text.isascii():
        return n  # over by characters alone, or under even at 4 bytes each, or exact
    return len(text.encode("utf-8", "surrogatepass"))


def check_text(source: SourceFile, limit: int) -> Diagnostic | None:
    """A diagnostic if the text is over ``limit`` bytes or holds a lone surrogate."""
    text = source.text
    size = utf8_size(text, limit)
    if size > limit:
        return Diagnostic(
            "E0010",
            f"the file is larger than the source size limit ({limit} bytes)",
            Span(source, 0, 0),
            help=f"split it into modules, or raise the limit with {SOURCE_SIZE_VARIABLE}",
        )
    if not text.isascii():
        m = _SURROGATE.search(text)
        if m is not None:
            return Diagnostic(
                "E0004",
                f"lone surrogate U+{ord(m.group()):04X} in the text",
                Span(source, m.start(), m.end()),
                label="not a Unicode character: no output format can encode it",
            )
    return None


# Per node class: (nesting added, operators added, child fields). Fields not listed hold no
# nodes (names, spans, docs, literal values).
_Rule = tuple[int, int, tuple[str, ...]]
_RULES: dict[type, _Rule] = {
    ast.Literal: (0, 0, ()),
    ast.Name: (0, 0, ()),
    ast.OuterName: (0, 0, ()),  # `outer.name`: one name, not an attribute access
    ast.SelfRef: (0, 0, ()),
    ast.SuperRef: (0, 0, ()),
    ast.Str: (1, 0, ("parts",)),  # only a substitution nests, and only then is a child a node
    ast.GetAttr: (0, 1, ("obj",)),
    ast.GetItem: (1, 0, ("obj", "index")),
    ast.Arg: (0, 0, ("value",)),
    ast.Call: (1, 0, ("func", "args")),
    ast.Binary: (0, 1, ("left", "right")),
    ast.Unary: (0, 1, ("operand",)),
    ast.IfExpr: (0, 1, ("cond", "then", "orelse")),
    ast.ListLit: (1, 0, ("items",)),
    ast.Comprehension: (1, 0, ("elem", "iterable", "cond")),
    ast.ObjectLit: (0, 0, ("body",)),
    ast.Refine: (0, 0, ("base", "body")),
    ast.NamedType: (0, 0, ("args",)),
    ast.LiteralType: (0, 0, ()),
    ast.NullType: (0, 0, ()),
    ast.OptionalType: (0, 1, ("inner",)),
    ast.UnionType: (0, 0, ("options",)),
    ast.Key: (0, 0, ("expr",)),
    ast.Field: (0, 0, ("path", "type", "value", "body", "where")),
    ast.Unset: (0, 0, ("path",)),
    ast.LetDecl: (0, 0, ("type", "value")),
    ast.IfStmt: (0, 1, ("cond", "then", "orelse")),
    ast.ForStmt: (0, 0, ("iterable", "body")),
    ast.CheckStmt: (0, 0, ("expr",)),
    ast.Import: (0, 0, ()),
    ast.ExtendsDecl: (0, 0, ()),
    ast.InputDecl: (0, 0, ("type", "default")),
    ast.TypeDecl: (0, 0, ("type", "where")),
    ast.SchemaDecl: (0, 0, ("body",)),
    ast.Param: (0, 0, ("type", "default")),
    ast.TemplateDecl: (0, 0, ("params", "type", "body")),
    ast.OutputDecl: (0, 0, ("name", "value")),
    ast.Body: (1, 0, ("stmts",)),
    ast.Module: (0, 0, ("body",)),
}
_LEAVES = (ast.Literal, ast.Name, ast.SelfRef, ast.SuperRef, str)


def _opening(source: SourceFile, span: Span) -> Span:
    """The first character of a construct: where its nesting starts."""
    return Span(source, span.start, min(span.end, span.start + 1))


Parens = Mapping[tuple[int, int], tuple[int, "tuple[int, int] | None"]]


def check_nesting(
    tree: object, source: SourceFile, parens: Parens | None = None
) -> Diagnostic | None:
    """A diagnostic at the first construct nested past `MAX_NESTING` or
    `MAX_EXPRESSION_DEPTH`, else None. ``tree`` is a module or an expression; ``parens``
    the parser's table of parenthesised expressions (see the module docstring)."""
    # The module's own body is level 0, not 1: a top-level field is not nested.
    start = -1 if isinstance(tree, ast.Module) else 0
    stack: list[tuple[object, int, int]] = [(tree, start, 0)]
    rules = _RULES
    leaves: tuple[type, ...] = _LEAVES
    # The parenthesised expressions in more than one pair, each counted once: a positional
    # argument or a computed key has the span of its expression, and must not count it too.
    nested_parens = {key: run for key, (run, _) in (parens or {}).items() if run > 1}
    if nested_parens:
        leaves = (str,)  # parentheses may nest around a name or a literal: visit those too
    pop, push = stack.pop, stack.append
    while stack:
        node, nest, ops = pop()
        cls = node.__class__
        rule = rules.get(cls)
        if rule is None:  # a tuple of nodes, or None
            if cls is tuple:
                for child in node:  # type: ignore[attr-defined]
                    if child.__class__ not in leaves:
                        push((child, nest, ops))
            continue
        span = node.span  # type: ignore[attr-defined]
        if span.end - span.start <= min(MAX_NESTING - nest, MAX_EXPRESSION_DEPTH - ops):
            # Each level of either count takes at least one character of the text (a
            # bracket, a quote, a dot, an operator) around what it nests: a construct
            # this short cannot nest past the limits. Most statements end here.
            continue
        if nested_parens:
            run = nested_parens.pop((span.start, span.end), 0)
            if run:
                # The outer pair is free; each pair inside it is one level deeper.
                deepest = nest + run - 1
                if deepest > MAX_NESTING:
                    assert parens is not None
                    return _too_deep_paren(source, parens, (span.start, span.end), nest)
                nest = deepest
        add_nest, add_ops, fields = rule
        if cls is ast.Str and node.is_plain:  # type: ignore[attr-defined]
            continue
        nest += add_nest
        ops += add_ops
        if nest > MAX_NESTING or ops > MAX_EXPRESSION_DEPTH:
            return _too_deep(source, node, nest > MAX_NESTING)
        if cls is ast.Field:
            path = node.path  # type: ignore[attr-defined]
            if len(path) > 1:
                # `a.b.c = 1` is `a { b { c = 1 } }`: each segment after the first nests.
                deepest = nest + len(path) - 1
                if deepest > MAX_NESTING:
                    return _too_deep(source, path[MAX_NESTING + 1 - nest], True)
                for key in path:
                    push((key, nest, ops))
                nest = deepest
                fields = fields[1:]
        for name in fields:
            child = getattr(node, name)
            if child is not None and child.__class__ not in leaves:
                push((child, nest, ops))
    return None


def _too_deep_paren(
    source: SourceFile, parens: Parens, key: tuple[int, int], nest: int
) -> Diagnostic:
    """E0011 at the pair of parentheses, inside the pair ``key``, that goes too deep."""
    # The pair `key` is at level `nest`, and the i-th pair inside it at `nest + i`.
    for _ in range(MAX_NESTING + 1 - nest):
        inner = parens[key][1]
        if inner is None:
            break
        key = inner
    return Diagnostic(
        "E0011",
        f"nested more than {MAX_NESTING} levels deep",
        Span(source, key[0], key[0] + 1),
        label=f"level {MAX_NESTING + 1} starts here",
        help="remove the extra parentheses",
    )


def _too_deep(source: SourceFile, node: object, nesting: bool) -> Diagnostic:
    span = node.span  # type: ignore[attr-defined]
    if nesting:
        return Diagnostic(
            "E0011",
            f"nested more than {MAX_NESTING} levels deep",
            _opening(source, span),
            label=f"level {MAX_NESTING + 1} starts here",
            help="flatten the structure, or build it from `let`s and templates",
        )
    return Diagnostic(
        "E0011",
        f"expression nested more than {MAX_EXPRESSION_DEPTH} operators deep",
        _opening(source, span),
        label="this operator is too deep",
        help="split the expression with `let`s",
    )
