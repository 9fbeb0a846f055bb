"""The binder: every name reference of a resolved module graph bound to its binding site.

The evaluator looks a bare name up at run time (`cfglang.eval.evaluate.Evaluator._name`);
this pass works out, before anything runs, what that lookup will find, and records it in
an immutable side table (`Bindings`). The syntax tree is never written to.

Scopes. The walk mirrors the evaluator's `Scope` chain with one static `_Level` per
runtime scope: a level has ``vars`` (template parameters, `for` and comprehension
variables), ``lets`` (the `let`s of its body) and, if it builds an object, ``obj`` (the
object whose fields it looks into). The levels are:

- the module level: the module's own lets and its *document*, the object made of the
  bodies of the extends chain (for a module of the entry's chain, the entry's chain: that
  is the document the evaluator builds); no parent;
- a body building an object (a merge block ``a { … }``, each step of a dotted path
  ``a.b.c = e``, an object literal, a refinement ``base { … }``): its lets and the object,
  its parent the level the statement is in;
- a template body: the parameters, its lets and the instantiated object, its parent the
  module level of the template's module (not the call site);
- a schema body: its lets and the conforming object, parent the schema's module level;
- `if` branches (lets only) and `for` bodies (variables and lets), with no object: their
  fields belong to the enclosing object; a comprehension (variables) likewise;
- `where` refinements, parameter defaults, input defaults, outputs and module checks
  see the module level only.

Lookup. A bare name is resolved from the innermost level outwards; at each level:
variables, then lets, then the fields of the level's object; then the module globals of
the innermost level's module, along its extends chain from the child to the base: per
module its imports, templates and inputs (an input the entry declares counts in every
module, as `Evaluator._global` has it); then the builtins. A name that is a type or a
schema there is bound as one (the evaluator reports "a type, not a value"); anything
else is `unknown` (E0201 at run time).

Late binding. Fields are the one dynamic part: an object's fields are the merge of all
its layers, and layers come from places a reference cannot see (a child module, a later
``a { … }`` block, a refinement's base, a schema the value is conformed to). So:

- when a searched object has a field of the name in a body the binder can see (the
  object's own body, the other definitions of the same data path along the document's
  chain, its schema's declarations, the template that builds it), the binding is
  ``field`` with that object and its first definition — *late-bound*: the value is
  looked up in the final merged object when it runs. A definition under an `if` or
  `for` is ``conditional``: ``fallback`` is what the name means when it is absent;
- every object searched without a visible definition is listed in ``late``: a field
  inherited from elsewhere would intercept the lookup there. A binding with an empty
  ``late`` is exact.

Names evaluated while their object is being expanded (an `if` condition, a `for`
iterable, a computed key) see only the fields defined before them, as the evaluator's
expansion does.

The table is keyed by span (``Span.key()``: display path, start, end), not by node: the
nodes are frozen attrs classes compared by value (two ``Name("port")`` nodes at different
places are equal and hash alike), and spans survive the copies the parse cache and the
evaluator's rewriting of dotted paths make. Three maps, one per kind of reference:
``names`` (every `ast.Name`, substitution heads included), ``types`` (every
`ast.NamedType` and each schema's ``extends`` path), ``members`` (``alias.member`` on an
import, keyed by the member's span).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from cfglang.semantic.program import is_constant, reads_name
from cfglang.semantic.resolve import ModuleInfo
from cfglang.semantic.types import PRIMITIVES
from cfglang.source import Span
from cfglang.syntax import ast

Kind = Literal[
    "let",
    "input",
    "param",
    "for_var",
    "import",
    "type",
    "schema",
    "template",
    "builtin",
    "field",
    "unknown",
]
SpanKey = tuple[str, int, int]


@attrs.frozen(eq=False)
class ObjectRef:
    """An object a bare name's lookup searches for a field.

    ``kind`` is ``document`` (a module's document), ``block`` (a merge block or a step of
    a dotted path), ``object`` (an object literal), ``refine``, ``template`` or
    ``schema``; ``site`` is where it is written (the site the evaluator gives the layer);
    ``body`` the statements that define it (None for a dotted path's step)."""

    kind: str
    site: Span
    module: ModuleInfo
    body: ast.Body | None


@attrs.frozen(eq=False)
class Binding:
    """What one name reference means.

    ``decl`` is the defining node (`LetDecl`, `InputDecl`, `Param`, `ForStmt` or
    `Comprehension`, `Import`, `TypeDecl`, `SchemaDecl`, `TemplateDecl`, or for a field
    its first `Field`/`Unset`), ``module`` the module it is in and ``span`` the defining
    span; all three are None for a builtin or an unknown name. For a field, ``obj`` is
    the object it is looked up in. ``late`` lists the objects searched first whose
    inherited fields could intercept the lookup (empty: the binding is exact).
    ``conditional`` fields (defined under an `if` or `for`) have a ``fallback``. ``via``
    is the import a qualified type or member is reached through."""

    kind: Kind
    name: str
    decl: Any = None
    module: ModuleInfo | None = None
    span: Span | None = None
    obj: ObjectRef | None = None
    late: tuple[ObjectRef, ...] = ()
    conditional: bool = False
    fallback: Binding | None = None
    via: Binding | None = None

    @property
    def exact(self) -> bool:
        """Whether the binding holds whatever the run time merges in."""
        return not self.late and not self.conditional

    def candidates(self) -> Iterator[Binding]:
        """This binding, then its fallbacks in lookup order."""
        b: Binding | None = self
        while b is not None:
            yield b
            b = b.fallback


@attrs.frozen(eq=False)
class Bindings:
    """The binding of every name, type and import member of a module graph."""

    entry: ModuleInfo
    names: Mapping[SpanKey, Binding]
    types: Mapping[SpanKey, Binding]
    members: Mapping[SpanKey, Binding]

    def name(self, node: ast.Name) -> Binding | None:
        return self.names.get(node.span.key())

    def type(self, node: ast.NamedType) -> Binding | None:
        return self.types.get(node.span.key())

    def schema_parent(self, decl: ast.SchemaDecl) -> Binding | None:
        return self.types.get(decl.parent_span.key()) if decl.parent_span is not None else None

    def member(self, node: ast.GetAttr) -> Binding | None:
        return self.members.get(node.name_span.key())


def bind(
    entry: ModuleInfo,
    *,
    builtins: Collection[str],
    modules: Iterable[ModuleInfo] | None = None,
) -> Bindings:
    """Bind every module reachable from ``entry`` (the entry of one compilation), or only
    ``modules`` of them (still seen from ``entry``: the language server asks about one
    file at a time).

    ``builtins`` are the builtin function names (`cfglang.eval.builtins.BUILTINS`; passed
    in, since the semantic phases never import the evaluator)."""
    b = _Binder(entry, frozenset(builtins))
    for m in reachable(entry) if modules is None else modules:
        b.module(m)
    return Bindings(entry, dict(b.names), dict(b.types), dict(b.members))


def reachable(entry: ModuleInfo) -> list[ModuleInfo]:
    """Every module reachable from ``entry`` through `extends` and imports, entry first."""
    out: dict[str, ModuleInfo] = {}
    stack = [entry]
    while stack:
        m = stack.pop()
        if m.key in out:
            continue
        out[m.key] = m
        stack += [x for x in reversed(list(m.imports.values())) if x is not None]
        if m.parent is not None:
            stack.append(m.parent)
    return list(out.values())


# ---- static lookups shared with the tools (the language server) --------------------------------


def find_import(
    module: ModuleInfo, alias: str
) -> tuple[ast.Import, ModuleInfo, ModuleInfo | None] | None:
    """The import ``alias`` names from ``module``: (declaration, declaring module, target),
    the child's first along the extends chain (`Evaluator._find_import`)."""
    for mod in reversed(module.chain()):
        if alias in mod.imports:
            return mod.import_decls[alias], mod, mod.imports[alias]
    return None


def type_binding(module: ModuleInfo, path: tuple[str, ...]) -> Binding:
    """What a type path (`int`, `Port`, `net.Port`) names in ``module``, in the order of
    `Evaluator.lookup_type`: `list`/`map` and the primitives; for ``alias.Name`` the
    import's own types and schemas (not its chain); else the chain's, child first."""
    name = ".".join(path)
    if len(path) == 1 and (path[0] in ("list", "map") or path[0] in PRIMITIVES):
        return Binding("builtin", name)
    via: Binding | None = None
    if len(path) == 2:
        found = find_import(module, path[0])
        if found is None:
            return Binding("unknown", name)
        decl, mod, target = found
        via = Binding("import", path[0], decl, mod, decl.span)
        if target is None:
            return Binding("unknown", name, via=via)
        chain = [target]
    elif len(path) == 1:
        chain = module.chain()[::-1]
    else:
        return Binding("unknown", name)
    last = path[-1]
    for mod in chain:
        if last in mod.types:
            t = mod.types[last]
            return Binding("type", name, t, mod, t.name_span, via=via)
        if last in mod.schemas:
            s = mod.schemas[last]
            return Binding("schema", name, s, mod, s.name_span, via=via)
    return Binding("unknown", name, via=via)


def member_binding(target: ModuleInfo, name: str, via: Binding | None = None) -> Binding:
    """What ``alias.name`` reads from the imported module ``target`` (`Evaluator.attr` on
    a module): its own lets and templates, its types and schemas (not values), then the
    fields of its document."""
    for kind, table in (
        ("let", target.lets),
        ("template", target.templates),
        ("schema", target.schemas),
        ("type", target.types),
    ):
        decl = table.get(name)
        if decl is not None:
            return Binding(kind, name, decl, target, decl.name_span, via=via)  # type: ignore[arg-type]
    site = _Known().find([(m.tree.body.stmts, (), m) for m in target.chain()], name)
    if site is not None:
        obj = ObjectRef("document", Span(target.source, 0, 0), target, target.tree.body)
        return Binding(
            "field",
            name,
            site.node,
            site.module,
            site.span,
            obj=obj,
            conditional=not site.definite,
            via=via,
        )
    return Binding("unknown", name, via=via)


def module_names(module: ModuleInfo) -> list[Binding]:
    """The module-level names a bare name can reach from ``module``'s top level (its own
    lets, then its chain's imports, templates, inputs, types and schemas, child first):
    what the evaluator would find, without the document's fields."""
    out: list[Binding] = [Binding("let", n, d, module, d.name_span) for n, d in module.lets.items()]
    seen = set(module.lets)
    for mod in reversed(module.chain()):
        for kind, table in (
            ("import", mod.import_decls),
            ("template", mod.templates),
            ("input", mod.inputs),
            ("type", mod.types),
            ("schema", mod.schemas),
        ):
            for n, d in table.items():
                if n not in seen:
                    seen.add(n)
                    span = d.span if kind == "import" else d.name_span  # type: ignore[union-attr]
                    out.append(Binding(kind, n, d, mod, span))  # type: ignore[arg-type]
    return out


# ---- fields an object is statically known to have ------------------------------------------


@attrs.frozen(eq=False)
class _Site:
    node: ast.Field | ast.Unset
    span: Span  # the key's span
    module: ModuleInfo
    definite: bool  # not under an `if` or `for`


Source = tuple[tuple[ast.Stmt, ...], tuple[str, ...], ModuleInfo]
# A source with whether it comes from a declared schema.
TypedSource = tuple[tuple[ast.Stmt, ...], tuple[str, ...], ModuleInfo, bool]


Entry = tuple[ast.Field | ast.Unset, bool, int]  # statement, definite, top position


class _Known:
    """Where the bodies that make up an object define a field.

    A source is (statements, path, module): the fields those statements define under the
    data path ``path`` (``()``: their own keys). Following a definition of a prefix of the
    path goes into its value's body, its declared schema and, for a template call, the
    template's body and result schema. Each body is indexed once by first key, so a
    lookup costs the definitions of that key, not the size of the body (a 10,000-service
    module has 10,000 blocks, each looking up into the module's body)."""

    def __init__(self) -> None:
        self._index: dict[int, tuple[tuple[ast.Stmt, ...], dict[str, list[Entry]]]] = {}

    def index(self, stmts: tuple[ast.Stmt, ...]) -> dict[str, list[Entry]]:
        hit = self._index.get(id(stmts))
        if hit is not None and hit[0] is stmts:
            return hit[1]
        out: dict[str, list[Entry]] = {}

        def add(body: tuple[ast.Stmt, ...], definite: bool, top: int | None) -> None:
            for i, stmt in enumerate(body):
                pos = i if top is None else top
                if isinstance(stmt, ast.IfStmt):
                    for b in _branches(stmt):
                        add(b.stmts, False, pos)
                elif isinstance(stmt, ast.ForStmt):
                    add(stmt.body.stmts, False, pos)
                elif isinstance(stmt, (ast.Field, ast.Unset)):
                    k = _static(stmt.path[0])
                    if k is not None:
                        out.setdefault(k, []).append((stmt, definite, pos))

        add(stmts, True, None)
        self._index[id(stmts)] = (stmts, out)
        return out

    def find(self, sources: list[Source], name: str) -> _Site | None:
        """The first definition of field ``name`` in ``sources`` that the object keeps
        (a definite one first).

        The definitions are gathered in layer order; a definition that replaces a
        prefix of the path (``a = …`` or ``unset a`` for a field ``a.name``) drops the
        ones gathered before it, as the evaluator's `set` drops the layers before it
        (or, under an `if` or `for`, makes them conditional). What a declared schema
        gives survives: conforming to the schema adds its layers again."""
        found: list[tuple[_Site, bool]] = []
        seen: set[tuple[int, tuple[str, ...]]] = set()
        for stmts, path, module in sources:
            self._collect(stmts, (*path, name), module, True, False, seen, found)
        best: _Site | None = None
        for site, _ in found:
            best = _better(best, site)
            if best is not None and best.definite:
                break
        return best

    def _collect(
        self,
        stmts: tuple[ast.Stmt, ...],
        path: tuple[str, ...],
        module: ModuleInfo,
        definite: bool,
        typed: bool,
        seen: set[tuple[int, tuple[str, ...]]],
        found: list[tuple[_Site, bool]],
    ) -> None:
        token = (id(stmts), path)
        if token in seen or len(seen) > 10_000:
            return
        seen.add(token)
        n = len(path)
        for stmt, d, _ in self.index(stmts).get(path[0], ()):
            d = d and definite
            keys = tuple(_static(k) for k in stmt.path)
            if len(keys) >= n:
                if keys[:n] == path:
                    found.append((_Site(stmt, stmt.path[n - 1].span, module, d), typed))
                continue
            if keys != path[: len(keys)]:
                continue
            if isinstance(stmt, ast.Unset) or stmt.op in ("set", "extends"):
                _replaced(found, d)
            if isinstance(stmt, ast.Unset):
                continue
            rest = path[len(keys) :]
            # In layer order: the schema's and the template's layers, then the body.
            for st, p, m, schema in _typed_sources(stmt, module):
                self._collect(st, (*p, *rest), m, d, typed or schema, seen, found)
            inner = _value_body(stmt)
            if inner is not None:
                self._collect(inner.stmts, rest, module, d, typed, seen, found)

    def before(
        self, stmts: tuple[ast.Stmt, ...], i: int, name: str, module: ModuleInfo
    ) -> _Site | None:
        """A definite definition of ``name`` among the first ``i`` statements."""
        for stmt, d, pos in self.index(stmts).get(name, ()):
            if pos >= i:
                break
            if d:
                return _Site(stmt, stmt.path[0].span, module, True)
        return None


def _better(old: _Site | None, new: _Site | None) -> _Site | None:
    """The first definition found wins, unless only a later one is unconditional."""
    if old is None or (new is not None and new.definite and not old.definite):
        return new
    return old


def _typed_sources(f: ast.Field, module: ModuleInfo) -> list[TypedSource]:
    """The bodies a field's value gets from its declared schema (flagged True: they
    outlive a replacement) or from its template call."""
    out: list[TypedSource] = [(*src, True) for src in _schema_sources(module, f.type, 0)]
    e = f.value
    while isinstance(e, ast.Refine):
        e = e.base
    if isinstance(e, ast.Call):
        t = _template_of(module, e.func)
        if t is not None:
            decl, tm = t
            out += [(*src, False) for src in _schema_sources(tm, decl.type, 0)]
            out.append((decl.body.stmts, (), tm, False))
    return out


def _replaced(found: list[tuple[_Site, bool]], definite: bool) -> None:
    """A later definition replaces the value: what came before is gone (or, when the
    replacement is conditional, only possibly there); a schema's fields stay."""
    out: list[tuple[_Site, bool]] = []
    for site, typed in found:
        if typed:
            out.append((site, typed))
        elif not definite:
            out.append((attrs.evolve(site, definite=False), typed))
    found[:] = out


def _template_of(module: ModuleInfo, func: ast.Expr) -> tuple[ast.TemplateDecl, ModuleInfo] | None:
    if isinstance(func, ast.Name):
        for mod in reversed(module.chain()):
            if func.name in mod.templates:
                return mod.templates[func.name], mod
    elif isinstance(func, ast.GetAttr) and isinstance(func.obj, ast.Name):
        found = find_import(module, func.obj.name)
        if found is not None and found[2] is not None and func.name in found[2].templates:
            return found[2].templates[func.name], found[2]
    return None


def _schema_sources(module: ModuleInfo, t: ast.TypeExpr | None, depth: int) -> list[Source]:
    """The bodies of the schema a type names (through `T?` and aliases), parents first."""
    if t is None or depth > 50:
        return []
    if isinstance(t, ast.OptionalType):
        return _schema_sources(module, t.inner, depth + 1)
    if not isinstance(t, ast.NamedType):
        return []
    b = type_binding(module, t.path)
    if b.kind == "type" and b.module is not None:
        return _schema_sources(b.module, b.decl.type, depth + 1)
    if b.kind != "schema" or b.module is None:
        return []
    decl: ast.SchemaDecl = b.decl
    out: list[Source] = []
    if decl.parent is not None:
        p = type_binding(b.module, decl.parent)
        if p.kind == "schema" and p.decl is not decl:
            out += _schema_sources(
                b.module, ast.NamedType(decl.parent, (), decl.parent_span or decl.span), depth + 1
            )
    out.append((decl.body.stmts, (), b.module))
    return out


def _static(key: ast.Key) -> str | None:
    """``key.static``, without joining the parts of the usual one-part string key."""
    if key.name is not None:
        return key.name
    e = key.expr
    if e is not None and len(e.parts) == 1 and e.parts[0].__class__ is str:
        return e.parts[0]
    return key.static


def _value_body(f: ast.Field) -> ast.Body | None:
    if f.body is not None:
        return f.body
    if isinstance(f.value, (ast.ObjectLit, ast.Refine)):
        return f.value.body
    return None


def _branches(stmt: ast.IfStmt) -> Iterator[ast.Body]:
    yield stmt.then
    node: ast.Body | ast.IfStmt | None = stmt.orelse
    while isinstance(node, ast.IfStmt):
        yield node.then
        node = node.orelse
    if isinstance(node, ast.Body):
        yield node


def _lets(stmts: tuple[ast.Stmt, ...]) -> dict[str, ast.LetDecl]:
    # The last of two same-named lets wins in a nested body, as `evaluate._lets` has it
    # (a module's first wins: the resolver keeps the first and reports the second).
    return {s.name: s for s in stmts if isinstance(s, ast.LetDecl)}


# ---- the walk --------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Level:
    """One static scope (see the module docstring)."""

    parent: _Level | None
    module: ModuleInfo
    vars: Mapping[str, Binding]
    lets: Mapping[str, ast.LetDecl]
    obj: ObjectRef | None = None
    # The bodies its object's fields come from, or (level, key) to derive them from the
    # enclosing object's when first needed (most levels never look a field up).
    sources: list[Source] | tuple[_Level, str] = attrs.Factory(list)
    sites: dict[str, _Site | None] = attrs.Factory(dict)  # field lookups, memoised

    def all_sources(self) -> list[Source]:
        src = self.sources
        if isinstance(src, tuple):
            lv, k = src
            src = self.sources = [(st, (*p, k), m) for st, p, m in lv.all_sources()]
        return src


@attrs.frozen(eq=False)
class _Expanding:
    """A name evaluated while ``level``'s object expands, at statement ``i`` of
    ``stmts``: only the fields of earlier layers (``bases``) and statements exist."""

    level: _Level
    bases: list[Source]
    stmts: tuple[ast.Stmt, ...]
    i: int


_NONE: dict[str, Any] = {}


class _Binder:
    def __init__(self, entry: ModuleInfo, builtins: frozenset[str]) -> None:
        self.entry = entry
        self.entry_chain = entry.chain()
        self.builtins = builtins
        self.entry_inputs: dict[str, tuple[ast.InputDecl, ModuleInfo]] = {}
        for m in self.entry_chain:
            for name, d in m.inputs.items():
                self.entry_inputs.setdefault(name, (d, m))
        self.names: dict[SpanKey, Binding] = {}
        self.types: dict[SpanKey, Binding] = {}
        self.members: dict[SpanKey, Binding] = {}
        self.tops: dict[str, _Level] = {}
        self.known = _Known()
        # The expansions whose expression is being walked (see `field_site`).
        self.ambient: list[_Expanding] = []

    # -- levels ------------------------------------------------------------------------------

    def top(self, m: ModuleInfo) -> _Level:
        """The module level of ``m``: its lets and its document."""
        lv = self.tops.get(m.key)
        if lv is None:
            chain = self.entry_chain if any(x is m for x in self.entry_chain) else m.chain()
            doc = ObjectRef("document", Span(m.source, 0, 0), m, m.tree.body)
            lv = _Level(None, m, _NONE, m.lets, doc, [(x.tree.body.stmts, (), x) for x in chain])
            self.tops[m.key] = lv
        return lv

    def _before(self, lv: _Level, stmts: tuple[ast.Stmt, ...], i: int) -> _Expanding:
        """The fields ``lv``'s object has while statement ``i`` of ``stmts`` expands:
        those of the statements before it, and for a document those of its bases (the
        layers before it; other objects' earlier layers cannot be seen)."""
        bases: list[Source] = []
        if lv.obj is not None and lv.obj.kind == "document" and lv.parent is None:
            for st, p, x in lv.all_sources():
                if x is lv.module:
                    break
                bases.append((st, p, x))
        return _Expanding(lv, bases, stmts, i)

    def _earlier(self, exp: _Expanding, name: str) -> _Site | None:
        site = self.known.find(exp.bases, name)
        if site is not None and site.definite:
            return site
        return self.known.before(exp.stmts, exp.i, name, exp.level.module)

    def field_site(self, s: _Level, name: str, exp: _Expanding | None) -> _Site | None:
        """Where ``s``'s object defines field ``name``, as far as can be seen."""
        if exp is not None and exp.level is s:
            return self._earlier(exp, name)
        for a in self.ambient:
            if a.level is s:
                # In an object built by an expansion-time expression: its fields may be
                # read during the expansion (then only earlier fields exist) or after.
                site = self._earlier(a, name)
                if site is not None:
                    return site
                site = self.known.find(s.all_sources(), name)
                return None if site is None else attrs.evolve(site, definite=False)
        if name not in s.sites:
            s.sites[name] = self.known.find(s.all_sources(), name)
        return s.sites[name]

    # -- modules and bodies ---------------------------------------------------------------------

    def module(self, m: ModuleInfo) -> None:
        top = self.top(m)
        stmts = m.tree.body.stmts
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, (ast.Import, ast.ExtendsDecl)):
                continue
            if isinstance(stmt, ast.InputDecl):
                self.type_expr(stmt.type, m)
                if stmt.default is not None:
                    self.expr(stmt.default, top)
            elif isinstance(stmt, ast.LetDecl):
                self.type_expr(stmt.type, m)
                self.expr(stmt.value, top)
            elif isinstance(stmt, ast.TypeDecl):
                self.type_expr(stmt.type, m)
                if stmt.where is not None:
                    self.expr(stmt.where, top)
            elif isinstance(stmt, ast.SchemaDecl):
                self.schema(stmt, m)
            elif isinstance(stmt, ast.TemplateDecl):
                self.template(stmt, m)
            elif isinstance(stmt, ast.OutputDecl):
                self.output(stmt, top)
            elif isinstance(stmt, ast.CheckStmt):
                self.expr(stmt.expr, top)
            else:
                self.stmt(stmt, top, top, stmts, i)

    def output(self, decl: ast.OutputDecl, lv: _Level) -> None:
        """An output's name and value, read once the document is complete (no expansion
        is under way, so a field name finds the finished field)."""
        self.expr(decl.name, lv)
        self.expr(decl.value, lv)

    def schema(self, decl: ast.SchemaDecl, m: ModuleInfo) -> None:
        if decl.parent is not None and decl.parent_span is not None:
            self.types[decl.parent_span.key()] = type_binding(m, decl.parent)
        sources = _schema_sources(m, ast.NamedType((decl.name,), (), decl.name_span), 0)
        if not sources or sources[-1][0] is not decl.body.stmts:
            sources = [(decl.body.stmts, (), m)]  # shadowed by a same-named type: its own
        obj = ObjectRef("schema", decl.span, m, decl.body)
        lv = _Level(self.top(m), m, _NONE, _lets(decl.body.stmts), obj, sources)
        self.body(decl.body.stmts, lv, lv)

    def template(self, decl: ast.TemplateDecl, m: ModuleInfo) -> None:
        top = self.top(m)
        params: dict[str, Binding] = {}
        for p in decl.params:
            self.type_expr(p.type, m)
            if p.default is not None:
                self.expr(p.default, top)
            params[p.name] = Binding("param", p.name, p, m, p.span)
        self.type_expr(decl.type, m)
        sources = [*_schema_sources(m, decl.type, 0), (decl.body.stmts, (), m)]
        obj = ObjectRef("template", decl.span, m, decl.body)
        lv = _Level(top, m, params, _lets(decl.body.stmts), obj, sources)
        self.body(decl.body.stmts, lv, lv)

    def body(self, stmts: tuple[ast.Stmt, ...], lv: _Level, objlv: _Level) -> None:
        """The statements of a body: ``lv`` is their level, ``objlv`` the level whose
        object their fields join (``lv`` itself, or an enclosing one for `if`/`for`)."""
        for i, stmt in enumerate(stmts):
            self.stmt(stmt, lv, objlv, stmts, i)

    def stmt(
        self,
        stmt: ast.Stmt,
        lv: _Level,
        objlv: _Level,
        stmts: tuple[ast.Stmt, ...],
        i: int,
    ) -> None:
        m = lv.module
        if isinstance(stmt, ast.Field):
            self.field(stmt, 0, lv, objlv, stmts, i)
        elif isinstance(stmt, ast.Unset):
            exp = self._before(objlv, stmts, i)
            for k in stmt.path[:1]:
                if k.expr is not None:
                    self.expr(k.expr, lv, exp)
        elif isinstance(stmt, ast.LetDecl):
            self.type_expr(stmt.type, m)
            self.expr(stmt.value, lv)
        elif isinstance(stmt, ast.CheckStmt):
            self.expr(stmt.expr, lv)
        elif isinstance(stmt, ast.IfStmt):
            exp = self._before(objlv, stmts, i)
            node: ast.IfStmt | ast.Body | None = stmt
            while isinstance(node, ast.IfStmt):
                self.expr(node.cond, lv, exp)
                inner = _Level(lv, m, _NONE, _lets(node.then.stmts))
                self.body(node.then.stmts, inner, objlv)
                node = node.orelse
            if isinstance(node, ast.Body):
                inner = _Level(lv, m, _NONE, _lets(node.stmts))
                self.body(node.stmts, inner, objlv)
        elif isinstance(stmt, ast.ForStmt):
            self.expr(stmt.iterable, lv, self._before(objlv, stmts, i))
            vars = {stmt.var: Binding("for_var", stmt.var, stmt, m, stmt.span)}
            if stmt.key_var is not None:
                vars[stmt.key_var] = Binding("for_var", stmt.key_var, stmt, m, stmt.span)
            inner = _Level(lv, m, vars, _lets(stmt.body.stmts))
            self.body(stmt.body.stmts, inner, objlv)
        elif isinstance(stmt, ast.OutputDecl) and objlv is self.top(m):
            # In a module-level `if`/`for` (the resolver allows it nowhere else): its
            # variables and lets are in ``lv``.
            self.output(stmt, lv)
        # Declarations only allowed at the top (E0009) are never evaluated: not bound.

    def field(
        self,
        f: ast.Field,
        depth: int,
        lv: _Level,
        objlv: _Level,
        stmts: tuple[ast.Stmt, ...],
        i: int,
    ) -> None:
        """``f.path[depth:]`` defined in ``objlv``'s object, from level ``lv``."""
        m = lv.module
        key = f.path[depth]
        if key.expr is not None:
            self.expr(key.expr, lv, self._before(objlv, stmts, i))
        if depth + 1 < len(f.path):
            # `a.b = e` is `a { b = e }`: each step is an object of its own, no lets.
            obj = ObjectRef("block", f.span, m, None)
            child = _Level(lv, m, _NONE, _NONE, obj, self._child_sources(objlv, key) or [])
            self.field(f, depth + 1, child, child, (f,), 0)
            return
        if f.type is not None:
            self.type_expr(f.type, m)
        if f.where is not None:
            self.expr(f.where, self.top(m))
        value = f.value
        if value is not None and is_constant(value):
            return  # a literal: nothing to bind (most fields)
        if f.op == "merge" and f.body is not None:
            obj = ObjectRef("block", f.span, m, f.body)
            child = _Level(
                lv, m, _NONE, _lets(f.body.stmts), obj, self._child_sources(objlv, key) or []
            )
            self.body(f.body.stmts, child, child)
        elif value is not None:
            own = key.static if reads_name(value, key.static or "") else None
            self.expr(value, lv, None, self._child_sources(objlv, key), own)

    def _child_sources(self, objlv: _Level, key: ast.Key) -> tuple[_Level, str] | None:
        k = _static(key)
        return None if k is None else (objlv, k)

    # -- expressions ---------------------------------------------------------------------------

    def expr(
        self,
        e: ast.Expr,
        lv: _Level,
        exp: _Expanding | None = None,
        sources: tuple[_Level, str] | None = None,
        own: str | None = None,
    ) -> None:
        """Bind the names in ``e``, evaluated at ``lv``. ``sources``: for a field's value,
        the bodies that define that field (an object literal or refinement merges them);
        ``own``: the field's key, if the value reads it (`region = region`, §3.6)."""
        if exp is not None:
            self.ambient.append(exp)
            try:
                self._expr(e, lv, exp, sources, own_key=own)
            finally:
                self.ambient.pop()
        else:
            self._expr(e, lv, exp, sources, own_key=own)

    def _name(self, name: str, at: _Level, exp: _Expanding | None, own: str | None) -> Binding:
        if name == own:
            return self.outer(name, at, exp, implicit=True)
        return self.lookup(name, at, exp)

    def _expr(
        self,
        e: ast.Expr,
        lv: _Level,
        exp: _Expanding | None,
        sources: tuple[_Level, str] | None,
        own_key: str | None = None,
    ) -> None:
        # ``own_key`` holds for the value itself, not for the bodies of objects it builds
        # (`self.body` binds those without it), as `program.reads_name` has it.
        stack: list[tuple[ast.Expr, _Level, tuple[_Level, str] | None]] = [(e, lv, sources)]
        while stack:
            node, at, srcs = stack.pop()
            cls = node.__class__
            if cls is ast.Name:
                self.names[node.span.key()] = self._name(node.name, at, exp, own_key)  # type: ignore[union-attr]
            elif cls is ast.OuterName:
                assert isinstance(node, ast.OuterName)
                self.names[node.span.key()] = self.outer(node.name, at, exp, implicit=False)
            elif cls is ast.Str:
                stack += [(p, at, None) for p in node.parts if not isinstance(p, str)]  # type: ignore[union-attr]
            elif cls is ast.GetAttr:
                assert isinstance(node, ast.GetAttr)
                if node.obj.__class__ is ast.OuterName:
                    stack.append((node.obj, at, None))
                elif isinstance(node.obj, ast.Name):
                    self.names[node.obj.span.key()] = head = self._name(
                        node.obj.name, at, exp, own_key
                    )
                    if head.kind == "import" and head.decl is not None and head.module is not None:
                        target = head.module.imports.get(head.name)
                        self.members[node.name_span.key()] = (
                            member_binding(target, node.name, head)
                            if target is not None
                            else Binding("unknown", node.name, via=head)
                        )
                else:
                    stack.append((node.obj, at, None))
            elif cls is ast.GetItem:
                assert isinstance(node, ast.GetItem)
                stack += [(node.index, at, None), (node.obj, at, None)]
            elif cls is ast.Call:
                assert isinstance(node, ast.Call)
                stack += [(a.value, at, None) for a in reversed(node.args)]
                stack.append((node.func, at, None))
            elif cls is ast.Binary:
                assert isinstance(node, ast.Binary)
                stack += [(node.right, at, None), (node.left, at, None)]
            elif cls is ast.Unary:
                stack.append((node.operand, at, None))  # type: ignore[union-attr]
            elif cls is ast.IfExpr:
                assert isinstance(node, ast.IfExpr)
                stack += [(node.orelse, at, None), (node.then, at, None), (node.cond, at, None)]
            elif cls is ast.ListLit:
                stack += [(x, at, None) for x in reversed(node.items)]  # type: ignore[union-attr]
            elif cls is ast.Comprehension:
                assert isinstance(node, ast.Comprehension)
                vars = {node.var: Binding("for_var", node.var, node, at.module, node.span)}
                if node.key_var is not None:
                    vars[node.key_var] = Binding(
                        "for_var", node.key_var, node, at.module, node.span
                    )
                inner = _Level(at, at.module, vars, _NONE)
                stack.append((node.elem, inner, None))
                if node.cond is not None:
                    stack.append((node.cond, inner, None))
                stack.append((node.iterable, at, None))
            elif cls is ast.ObjectLit:
                assert isinstance(node, ast.ObjectLit)
                obj = ObjectRef("object", node.span, at.module, node.body)
                child = _Level(
                    at,
                    at.module,
                    _NONE,
                    _lets(node.body.stmts),
                    obj,
                    srcs if srcs is not None else [(node.body.stmts, (), at.module)],
                )
                self.body(node.body.stmts, child, child)
            elif cls is ast.Refine:
                assert isinstance(node, ast.Refine)
                stack.append((node.base, at, None))
                obj = ObjectRef("refine", node.body.span, at.module, node.body)
                own: list[Source] | tuple[_Level, str]
                if srcs is not None:
                    own = srcs
                else:
                    own = [(node.body.stmts, (), at.module)]
                    base = node.base
                    if isinstance(base, ast.Call):
                        t = _template_of(at.module, base.func)
                        if t is not None:
                            own = [
                                *_schema_sources(t[1], t[0].type, 0),
                                (t[0].body.stmts, (), t[1]),
                                *own,
                            ]
                child = _Level(at, at.module, _NONE, _lets(node.body.stmts), obj, own)
                self.body(node.body.stmts, child, child)

    def lookup(self, name: str, lv: _Level, exp: _Expanding | None) -> Binding:
        """The binding of ``name`` used at ``lv``, in the order of `Evaluator._name`."""
        return self._lookup(name, lv, exp, lv, ())

    def outer(self, name: str, lv: _Level, exp: _Expanding | None, implicit: bool) -> Binding:
        """``name`` used at ``lv`` past the fields of the first object on the way out (the
        current one), as `Evaluator._outer`: `outer.name`, or (``implicit``) a field's own
        key in its value, which means the field itself (a cycle) when nothing else has
        the name."""
        s: _Level | None = lv
        b: Binding | None = None
        while s is not None:
            if name in s.vars:
                b = s.vars[name]
                break
            let = s.lets.get(name)
            if let is not None:
                b = Binding("let", name, let, s.module, let.name_span)
                break
            if s.obj is not None:
                b = self._lookup(name, lv, exp, s.parent, ())
                break
            s = s.parent
        if b is None:
            b = self.global_(name, lv.module)
        if implicit:
            b = self._or_own(b, lambda: self.lookup(name, lv, exp))
        return b

    def _or_own(self, b: Binding, own: Callable[[], Binding]) -> Binding:
        """``b`` with its last candidate, if it finds no value, replaced by ``own()``."""
        if b.kind in ("unknown", "type", "schema"):
            return own()
        if b.fallback is not None:
            return attrs.evolve(b, fallback=self._or_own(b.fallback, own))
        return b

    def _lookup(
        self,
        name: str,
        lv: _Level,
        exp: _Expanding | None,
        start: _Level | None,
        late: tuple[ObjectRef, ...],
    ) -> Binding:
        """The lookup from level ``start`` outwards (None: the module globals)."""
        s = start
        while s is not None:
            if name in s.vars:
                return attrs.evolve(s.vars[name], late=late)
            let = s.lets.get(name)
            if let is not None:
                return Binding("let", name, let, s.module, let.name_span, late=late)
            obj = s.obj
            if obj is not None:
                site = self.field_site(s, name, exp)
                if site is not None:
                    return Binding(
                        "field",
                        name,
                        site.node,
                        site.module,
                        site.span,
                        obj=obj,
                        late=late,
                        conditional=not site.definite,
                        fallback=(
                            None
                            if site.definite
                            else self._lookup(name, lv, exp, s.parent, (*late, obj))
                        ),
                    )
                late = (*late, obj)
            s = s.parent
        return attrs.evolve(self.global_(name, lv.module), late=late)

    def global_(self, name: str, module: ModuleInfo) -> Binding:
        """A module-level name seen from ``module`` (`Evaluator._global`)."""
        chain = module.chain()
        for mod in reversed(chain):
            imp = mod.import_decls.get(name)
            if imp is not None and name in mod.imports:
                return Binding("import", name, imp, mod, imp.span)
            t = mod.templates.get(name)
            if t is not None:
                return Binding("template", name, t, mod, t.name_span)
            if name in mod.inputs or name in self.entry_inputs:
                for x in chain:
                    d = x.inputs.get(name)
                    if d is not None:
                        return Binding("input", name, d, x, d.name_span)
                d, x = self.entry_inputs[name]
                return Binding("input", name, d, x, d.name_span)
        if name in self.builtins:
            return Binding("builtin", name)
        for mod in reversed(chain):
            if name in mod.schemas:
                s = mod.schemas[name]
                return Binding("schema", name, s, mod, s.name_span)
            if name in mod.types:
                ty = mod.types[name]
                return Binding("type", name, ty, mod, ty.name_span)
        return Binding("unknown", name)

    # -- types ---------------------------------------------------------------------------------

    def type_expr(self, t: ast.TypeExpr | None, m: ModuleInfo) -> None:
        stack = [t] if t is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, ast.NamedType):
                self.types[node.span.key()] = type_binding(m, node.path)
                stack += node.args
            elif isinstance(node, ast.OptionalType):
                stack.append(node.inner)
            elif isinstance(node, ast.UnionType):
                stack += node.options
