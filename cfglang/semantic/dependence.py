"""Which fields can depend on the inputs: the static analysis behind kept values.

A `Program` is evaluated again and again with new inputs (`--var`, a server's edits).
Most of a configuration does not read them: a service's name, image, port and labels are
the same whatever the region. This pass works out, once per program and conservatively,
which *names* may have a value that changes with the inputs, so that an evaluation can
take the plain data of every other field from the previous one (`cfglang.eval.keep`)
instead of evaluating it again.

It is name-based, and so coarse on purpose: every binding of a name anywhere in the
program (a field of any object, a let, a parameter, a `for` variable, a schema, a
template, a type) counts as one. Late binding makes the exact target of a reference
unknowable before run time, and a name-based answer is an over-approximation of every
possible target. Two sets come out:

- ``dirty``: names whose value may change with the inputs, or contain something that
  may (an object with a dirty field). A field whose key is not dirty has the same plain
  data in every evaluation, provided the object holding it is the same object;
- ``unstable``: names whose value may be a *different object* with other inputs (a
  value computed from a dirty name, a definition under an `if` or `for` that reads
  one). Below an unstable field nothing is kept: the object there may be made of other
  layers. A plain reference (`extends svc`, `x = a.b`) is the object it names, so it is
  unstable only if a name on its path is.

Rules, applied until nothing changes (the inputs and `secret`, whose value depends on
the identity the compile was given, start both sets):

- a definition whose expression is a path (`a.b.c`) is dirty if its last name is dirty
  or any name on it is unstable, and unstable if any name on it is unstable;
- any other expression is dirty and unstable if it mentions a dirty name anywhere
  (nested bodies, arguments, refinements and the types it is checked against included);
- a block (`k { ... }`, `k extends x { ... }`, a schema, a template, an import's module)
  is dirty if a key defined in it is;
- everything under an `if` or `for` whose condition or iterable mentions a dirty name is
  dirty and unstable (the branch taken, the keys made, may change);
- `self` read whole (`keys(self)`) or an index computed at run time (`o[k]`) reads keys
  the analysis cannot name: it counts as a dirty mention as soon as anything is dirty.

Nothing is kept at all (``usable`` is false) when a computed key (`"$<x>" = ...`) may
depend on the inputs: its name is not known here. A positional template argument that
reads a dirty name makes every template parameter dirty and unstable (which parameter it
binds is not known here either). Both are rare; they cost only the reuse.

Solved with a worklist: a binding is looked at again only when a name it reads changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import attrs

from cfglang.semantic.resolve import ModuleInfo
from cfglang.syntax import ast

# What reads the whole of an object or an unnamed key: dirty once anything is.
_ANY = "\x00any"
# A `check`'s pseudo-name: it makes the block holding it dirty when it reads a dirty name.
_CHECK = "\x00check"


@attrs.frozen
class Dependence:
    """The outcome of `input_dependence` (see the module docstring)."""

    dirty: frozenset[str]
    unstable: frozenset[str]
    usable: bool
    # No refinement (`where`) reads a dirty name: the static checks of literals against
    # their types then find the same in every evaluation.
    static_checks_fixed: bool = False


class _Binding:
    """One binding site of a name (a plain slotted class: a program has thousands)."""

    __slots__ = ("contents", "guards", "name", "path", "types", "value")

    def __init__(
        self,
        name: str | None,  # None: a computed key
        *,
        value: set[str] | None = None,
        types: set[str] | None = None,
        guards: tuple[frozenset[str], ...] = (),
    ) -> None:
        self.name = name
        self.path: tuple[str, ...] = ()  # the names of a path expression, outermost first
        self.value = value if value is not None else set()  # names other expressions mention
        self.types = (
            types if types is not None else set()
        )  # types and schemas it is checked against
        self.contents: set[str | None] = set()  # keys defined in its blocks
        self.guards = guards  # conditions and iterables it is under


class _Collector:
    def __init__(self) -> None:
        self.bindings: list[_Binding] = []
        self.params: set[str] = set()
        self.positional: list[set[str]] = []  # mentions of positional call arguments
        self.wheres: list[set[str]] = []  # mentions of each refinement

    # -- statements ---------------------------------------------------------------------

    def body(
        self, stmts: Iterable[ast.Stmt], guards: tuple[frozenset[str], ...]
    ) -> set[str | None]:
        """Register the bindings of a block; return the keys it defines (None for a
        computed one), its checks as `_CHECK`."""
        keys: set[str | None] = set()
        for st in stmts:
            if isinstance(st, ast.Field):
                keys.add(self.field(st, guards))
            elif isinstance(st, ast.Unset):
                first = st.path[0]
                b = _Binding(first.static, guards=guards)
                if first.static is None and first.expr is not None:
                    b.value |= self.expr(first.expr)
                self.bindings.append(b)
                keys.add(first.static)
            elif isinstance(st, ast.LetDecl):
                b = _Binding(st.name, guards=guards)
                self.value_into(b, st.value)
                if st.type is not None:
                    b.types |= self.type_names(st.type)
                self.bindings.append(b)
            elif isinstance(st, ast.IfStmt):
                node: ast.IfStmt | ast.Body | None = st
                inner = guards
                while isinstance(node, ast.IfStmt):
                    inner = (*inner, frozenset(self.expr(node.cond)))
                    keys |= self.body(node.then.stmts, inner)
                    node = node.orelse
                if node is not None:
                    keys |= self.body(node.stmts, inner)
            elif isinstance(st, ast.ForStmt):
                it = frozenset(self.expr(st.iterable))
                for var in (st.var, st.key_var):
                    if var is not None:
                        self.bindings.append(_Binding(var, value=set(it), guards=guards))
                keys |= self.body(st.body.stmts, (*guards, it))
            elif isinstance(st, ast.CheckStmt):
                self.bindings.append(_Binding(_CHECK, value=self.expr(st.expr), guards=guards))
                keys.add(_CHECK)
            elif isinstance(st, ast.InputDecl):
                self.bindings.append(_Binding(st.name, value={_INPUT}))
            elif isinstance(st, ast.TypeDecl):
                b = _Binding(st.name, types=self.type_names(st.type))
                if st.where is not None:
                    b.value |= self.refinement(st.where)
                self.bindings.append(b)
            elif isinstance(st, ast.SchemaDecl):
                b = _Binding(st.name)
                if st.parent:
                    b.path = (st.parent[-1],)
                b.contents = self.body(st.body.stmts, ())
                self.bindings.append(b)
            elif isinstance(st, ast.TemplateDecl):
                b = _Binding(st.name)
                for p in st.params:
                    self.params.add(p.name)
                    pb = _Binding(p.name)
                    if p.default is not None:
                        pb.value |= self.expr(p.default)
                    if p.type is not None:
                        pb.types |= self.type_names(p.type)
                    self.bindings.append(pb)
                if st.type is not None:
                    b.types |= self.type_names(st.type)
                b.contents = self.body(st.body.stmts, ())
                self.bindings.append(b)
            # Imports are registered per module (`input_dependence`); outputs, `extends`
            # declarations: nothing a field's value reads.
        return keys

    def field(self, st: ast.Field, guards: tuple[frozenset[str], ...]) -> str | None:
        """Register ``a.b.c op value`` as the blocks ``a`` and ``b`` and the binding
        ``c``; return the first key."""
        chain: list[_Binding] = []
        for k in st.path:
            b = _Binding(k.static, guards=guards)
            if k.static is None and k.expr is not None:
                b.value |= self.expr(k.expr)
            chain.append(b)
        last = chain[-1]
        if st.value is not None:
            self.value_into(last, st.value, key=last.name)
        if st.type is not None:
            last.types |= self.type_names(st.type)
        if st.where is not None:
            last.value |= self.refinement(st.where)
        if st.body is not None:
            last.contents |= self.body(st.body.stmts, ())
        for outer, inner in itertools.pairwise(chain):
            outer.contents.add(inner.name)
        self.bindings.extend(chain)
        return chain[0].name

    def refinement(self, where: ast.Expr) -> set[str]:
        mentions = self.expr(where, where=True)
        self.wheres.append(mentions)
        return mentions

    def value_into(self, b: _Binding, e: ast.Expr, key: str | None = None) -> None:
        """The value of ``b``: a reference (`a.b`) or a block over one (`a.b { ... }`,
        `{ ... }`) is a path and contents; anything else mentions names."""
        body = None
        if isinstance(e, ast.Refine):
            body, e = e.body, e.base
        elif isinstance(e, ast.ObjectLit):
            b.contents |= self.body(e.body.stmts, ())
            return
        path = _path(e)
        if path is not None:
            b.path = path
        else:
            b.value |= self.expr(e, key=key)
        if body is not None:
            b.contents |= self.body(body.stmts, ())

    # -- expressions --------------------------------------------------------------------

    def expr(self, e: Any, *, where: bool = False, key: str | None = None) -> set[str]:
        """Every name ``e`` mentions (nested blocks included); their bindings are
        registered too. In a refinement (``where``) a bare `self` is the value checked."""
        out: set[str] = set()
        stack: list[Any] = [e]
        while stack:
            node = stack.pop()
            cls = node.__class__
            if cls is ast.Literal:
                continue
            if cls is ast.Name or cls is ast.OuterName:
                out.add(node.name)
            elif cls is ast.SelfRef:
                if not where:
                    out.add(_ANY)
            elif cls is ast.SuperRef:
                out.add(key if key is not None else _ANY)
            elif cls is ast.Str:
                stack += [p for p in node.parts if p.__class__ is not str]
            elif cls is ast.GetAttr:
                out.add(node.name)
                if node.obj.__class__ is not ast.SelfRef:
                    stack.append(node.obj)
            elif cls is ast.GetItem:
                stack.append(node.obj)
                index = node.index
                if index.__class__ is ast.Literal:
                    continue  # a list index
                if index.__class__ is ast.Str and index.is_plain:
                    out.add(index.text)
                else:
                    out.add(_ANY)
                    stack.append(index)
            elif cls is ast.Call:
                stack.append(node.func)
                for a in node.args:
                    mentions = self.expr(a.value, where=where, key=key)
                    out |= mentions
                    if a.name is not None:
                        self.bindings.append(_Binding(a.name, value=set(mentions)))
                    else:
                        self.positional.append(mentions)
            elif cls is ast.Binary:
                stack += (node.left, node.right)
            elif cls is ast.Unary:
                stack.append(node.operand)
            elif cls is ast.IfExpr:
                stack += (node.cond, node.then, node.orelse)
            elif cls is ast.ListLit:
                stack += node.items
            elif cls is ast.Comprehension:
                it = self.expr(node.iterable, where=where, key=key)
                out |= it
                for var in (node.var, node.key_var):
                    if var is not None:
                        self.bindings.append(_Binding(var, value=set(it)))
                stack.append(node.elem)
                if node.cond is not None:
                    stack.append(node.cond)
            elif cls is ast.ObjectLit or cls is ast.Refine:
                if cls is ast.Refine:
                    stack.append(node.base)
                # The block's own bindings are registered once; what they mention is
                # what the expression holding the block mentions. (Walking the block
                # again for that, as a first version did, doubled the work per level of
                # nested literals: 2^n for `[{ a = [{ a = ... }] }]`.)
                first = len(self.bindings)
                self.body(node.body.stmts, ())
                for b in self.bindings[first:]:
                    out |= b.value
                    out |= b.types
                    out.update(b.path)
                    out.update(k for k in b.contents if k is not None)
                    for g in b.guards:
                        out |= g
            else:  # a node this pass does not know: assume it reads anything
                out.add(_ANY)
        return out

    def type_names(self, t: Any) -> set[str]:
        """The names a type annotation refers to: the last part of each path (the type or
        schema; `s.Service` is the `Service` of the module `s`)."""
        out: set[str] = set()
        stack = [t]
        while stack:
            node = stack.pop()
            if node.__class__ is ast.NamedType:
                out.add(node.path[-1])
                stack += node.args
            elif node.__class__ is ast.OptionalType:
                stack.append(node.inner)
            elif node.__class__ is ast.UnionType:
                stack += node.options
        return out


_INPUT = "\x00input"
_SECRET = "secret"  # the builtin: its value depends on the identity a compile is given
_SEEDS = (_INPUT, _SECRET)
# The positional arguments of calls: when one reads a dirty name, every template
# parameter is dirty (which parameter an argument binds is not known here).
_POSITIONAL = "\x00positional"


def _path(e: ast.Expr) -> tuple[str, ...] | None:
    """The names of a plain reference (`a`, `a.b.c`, `self.a`, `outer.a`), or None."""
    names: list[str] = []
    node: Any = e
    while node.__class__ is ast.GetAttr:
        names.append(node.name)
        node = node.obj
    if node.__class__ is ast.Name or node.__class__ is ast.OuterName:
        names.append(node.name)
    elif node.__class__ is not ast.SelfRef or not names:
        return None
    return tuple(reversed(names))


def input_dependence(modules: Iterable[ModuleInfo]) -> Dependence:
    """The dirty and unstable names of a program's modules (see the module docstring)."""
    c = _Collector()
    for m in modules:
        keys = c.body(m.tree.body.stmts, ())
        del keys  # the document itself is never kept: it is always evaluated
        for alias, target in m.imports.items():
            b = _Binding(alias)
            if target is None:
                b.value.add(_ANY)
            else:
                b.contents = {
                    *(s.path[0].static for s in target.tree.body.stmts if isinstance(s, ast.Field)),
                    *target.declared_names(),
                }
            c.bindings.append(b)
    for mentions in c.positional:
        c.bindings.append(_Binding(_POSITIONAL, value=mentions))
    bindings = c.bindings
    # A worklist: each binding is looked at once, and again only when a name it reads
    # becomes dirty or unstable (a pass over every binding per change was quadratic in
    # the length of the longest chain of blocks).
    readers: dict[str | None, list[int]] = {}
    for i, b in enumerate(bindings):
        for n in {*b.value, *b.path, *b.types, *b.contents, *(n for g in b.guards for n in g)}:
            readers.setdefault(n, []).append(i)
    dirty: set[str] = set()
    unstable: set[str] = set()
    todo: list[int] = []

    def mark(name: str, also_unstable: bool) -> None:
        if also_unstable and name not in unstable:
            unstable.add(name)
            todo.extend(readers.get(name, ()))
        if name not in dirty:
            dirty.add(name)
            todo.extend(readers.get(name, ()))
            if name == _POSITIONAL:
                for p in c.params:
                    mark(p, True)
            if _ANY not in dirty and name not in _SEEDS:
                mark(_ANY, True)  # something is dirty: a read of unnamed keys may see it

    for seed in _SEEDS:
        mark(seed, True)
    todo.extend(range(len(bindings)))
    while todo:
        b = bindings[todo.pop()]
        name = b.name
        if name is not None and name in unstable:
            continue  # nothing more to learn
        path = b.path
        types = b.types
        is_unstable = (
            not b.value.isdisjoint(dirty)
            or any(not g.isdisjoint(dirty) for g in b.guards)
            or any(p in unstable for p in path)
            or not types.isdisjoint(unstable)
        )
        is_dirty = (
            is_unstable
            or (bool(path) and path[-1] in dirty)
            or not b.contents.isdisjoint(dirty)
            or not types.isdisjoint(dirty)
        )
        if name is None:
            if is_dirty:
                return Dependence(frozenset(dirty), frozenset(unstable), usable=False)
        elif is_dirty:
            mark(name, is_unstable)
    fixed = all(w.isdisjoint(dirty) for w in c.wheres)
    return Dependence(frozenset(dirty), frozenset(unstable), usable=True, static_checks_fixed=fixed)
