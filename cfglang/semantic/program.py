"""The compiled program: what is known about a set of source texts before any evaluation.

`build_program` runs the resolver once (load and parse the module graph from the entry
file) and freezes what it found into a `Program`: the modules (`ModuleInfo` per file, in
load order), the entry, each module's extends chain and imports, the input declarations
of the entry's chain, the diagnostics the resolver reported, and what a later compile of
the same texts needs to decide whether this program still holds (`Program.still_valid`).

A program is immutable and holds nothing of an evaluation (no values, no scopes), so it
is shared: one program serves every evaluation of its texts, with any inputs, in any
thread (`cfglang.semantic.programs` keeps them in a content-checked cache, which
builds, tools and the language server share). What an evaluation
computes from the syntax alone lives here too, in `Lowering`: the expansion plan of each
body (the definitions a body of static keys makes, worked out once instead of once per
object), the rewritten tails of dotted paths (`a.b.c = e` is `a { b.c = e }`) and the
lets of each body. It is filled on first need (plans are pure functions of immutable
syntax, so two threads computing one plan at once store equal plans and either is
right), never for syntax that is not the program's (an `--expr` parsed per evaluation).

Every type and schema is resolved by the program's `TypeResolver` (`Program.types`,
`cfglang.semantic.types`), shared by the static checks and every evaluation; every name
reference is bound by `cfglang.semantic.bind` on first need (`Program.bindings`).

This module is below evaluation: it never imports `cfglang.eval`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from cfglang.diagnostics import Diagnostic, Diagnostics
from cfglang.semantic.resolve import Loader, ModuleInfo, Resolver
from cfglang.semantic.types import TypeResolver
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast

if TYPE_CHECKING:
    from cfglang.semantic.bind import Bindings
    from cfglang.semantic.dependence import Dependence

__all__ = ["InputChain", "Lowering", "Program", "build_program"]

# The expansion plan of a body: one step per statement, (key, kind, statement, key span,
# payload). A body is lowered once per program; the evaluator's `expand` interprets the
# steps, so there is one expansion whatever a body holds. Static steps (a field with a
# plain key, a check) are turned into definitions without looking at the syntax again;
# dynamic ones (a computed key, `unset`, `if`, `for`) need values of the evaluation.
Step = tuple[str, int, Any, Span, Any]
# MERGE's payload is (body statements, their lets); `a.b.c = e` is lowered to the merge
# `a { b.c = e }`, whose body has no lets (`NO_LETS`, shared and never written).
SET, MERGE, CHECK = 0, 2, 3
OWN = 4  # a SET whose value reads its own key (`region = region`, docs/language.md §3.6)
FIELD, UNSET, IF, FOR = 5, 6, 7, 8  # dynamic: the key or the body depends on values
DYNAMIC = FIELD  # kinds from here on are dynamic
NO_LETS: dict[str, ast.LetDecl] = {}

# An input as the entry's extends chain declares it: (module, declaration), base first.
InputChain = tuple[tuple[ModuleInfo, ast.InputDecl], ...]


class Lowering:
    """Facts an evaluation derives from syntax alone, computed once per program.

    Every table is keyed by the identity of a syntax node and keeps that node beside its
    entry, so a hit is checked by identity (an id is only unique while its object lives).
    With ``sources`` given, only nodes of those source files are stored (they live as long
    as the program); anything else is computed again each time it is asked for.
    """

    __slots__ = (
        "_consts",
        "_dotted",
        "_lets",
        "_no_super",
        "_own",
        "_plans",
        "_sources",
        "_super_free",
        "_unset",
    )

    def __init__(self, sources: Iterable[SourceFile] | None = None) -> None:
        self._sources: frozenset[int] | None = (
            None if sources is None else frozenset(id(s) for s in sources)
        )
        self._plans: dict[int, tuple[Any, tuple[Step, ...]]] = {}
        self._dotted: dict[int, tuple[ast.Field, tuple[ast.Stmt, ...]]] = {}
        self._unset: dict[int, tuple[ast.Unset, tuple[ast.Stmt, ...]]] = {}
        self._lets: dict[int, tuple[ast.Body, dict[str, ast.LetDecl]]] = {}
        self._consts: dict[int, tuple[Any, bool]] = {}
        self._super_free: dict[int, tuple[ast.Expr, bool]] = {}
        self._no_super: dict[int, tuple[SourceFile, bool]] = {}
        self._own: dict[int, tuple[ast.Expr, str, bool]] = {}

    def _owned(self, node: Any) -> bool:
        if self._sources is None:
            return True
        span = getattr(node, "span", None)
        return span is not None and id(span.source) in self._sources

    def plan(self, stmts: tuple[ast.Stmt, ...]) -> tuple[Step, ...]:
        """The expansion steps of a body (see `Step`)."""
        hit = self._plans.get(id(stmts))
        if hit is not None and hit[0] is stmts:
            return hit[1]
        plan = _plan(stmts, self)
        if not stmts or self._owned(stmts[0]):
            self._plans.setdefault(id(stmts), (stmts, plan))
        return plan

    def dotted_rest(self, stmt: ast.Field) -> tuple[ast.Stmt, ...]:
        """`a.b.c = e` without its first key: the body `(b.c = e,)` of `a`."""
        hit = self._dotted.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        rest: tuple[ast.Stmt, ...] = (attrs.evolve(stmt, path=stmt.path[1:], doc=None),)
        if self._owned(stmt):
            # `setdefault`: every evaluation must see the same tuple (plans are keyed by it).
            rest = self._dotted.setdefault(id(stmt), (stmt, rest))[1]
        return rest

    def unset_rest(self, stmt: ast.Unset) -> tuple[ast.Stmt, ...]:
        """`unset a.b.c` without its first key: the body `(unset b.c,)` of `a`."""
        hit = self._unset.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        rest: tuple[ast.Stmt, ...] = (ast.Unset(stmt.path[1:], stmt.span),)
        if self._owned(stmt):
            rest = self._unset.setdefault(id(stmt), (stmt, rest))[1]
        return rest

    def body_lets(self, body: ast.Body) -> dict[str, ast.LetDecl]:
        """The lets of a body by name (read, never written, by every evaluation)."""
        hit = self._lets.get(id(body))
        if hit is not None and hit[0] is body:
            return hit[1]
        lets = {s.name: s for s in body.stmts if isinstance(s, ast.LetDecl)}
        if self._owned(body):
            lets = self._lets.setdefault(id(body), (body, lets))[1]
        return lets

    def constant(self, stmt: Any, e: ast.Expr | None) -> bool:
        """Whether the value ``stmt`` sets (``e``) is the same wherever it is evaluated: a
        literal, a string without substitutions, or a list of those."""
        hit = self._consts.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        const = is_constant(e)
        if self._owned(stmt):
            self._consts[id(stmt)] = (stmt, const)
        return const

    def super_free(self, e: ast.Expr) -> bool:
        """Whether ``e`` has no `super` anywhere in it (nested bodies included)."""
        cls = e.__class__
        if cls is ast.Literal or cls is ast.Name:
            return True
        # Most files never say `super`: then none of their expressions needs walking.
        source = e.span.source
        hit = self._no_super.get(id(source))
        if hit is None or hit[0] is not source:
            hit = (source, "super" not in source.text)
            if self._sources is None or id(source) in self._sources:
                self._no_super[id(source)] = hit
        if hit[1]:
            return True
        free = self._super_free.get(id(e))
        if free is not None and free[0] is e:
            return free[1]
        found = (e, not _mentions_super(e))
        if self._owned(e):
            self._super_free[id(e)] = found
        return found[1]

    def reads_own_key(self, e: ast.Expr | None, key: str) -> bool:
        """Whether the value ``e`` of a field ``key`` reads the bare name ``key`` directly
        (not inside a nested object body): that name then means the binding the field
        hides, not the field itself (docs/language.md §3.6)."""
        if e is None or e.__class__ is ast.Literal:
            return False
        hit = self._own.get(id(e))
        if hit is not None and hit[0] is e and hit[1] == key:
            return hit[2]
        found = key in e.span.text() and reads_name(e, key)
        if self._owned(e):
            self._own[id(e)] = (e, key, found)
        return found


def reads_name(e: ast.Expr, name: str) -> bool:
    """Whether ``e`` reads the bare name ``name`` outside the bodies of the objects it
    builds (object literals, refinement bodies: their fields are a new object's, read
    later, so a name there may well mean the field being defined)."""
    stack: list[Any] = [e]
    while stack:
        node = stack.pop()
        cls = node.__class__
        if cls is ast.Name:
            if node.name == name:
                return True
        elif cls is ast.Str:
            stack += [p for p in node.parts if p.__class__ is not str]
        elif cls is ast.GetAttr:
            stack.append(node.obj)
        elif cls is ast.GetItem:
            stack += [node.obj, node.index]
        elif cls is ast.Call:
            stack.append(node.func)
            stack += [a.value for a in node.args]
        elif cls is ast.Binary:
            stack += [node.left, node.right]
        elif cls is ast.Unary:
            stack.append(node.operand)
        elif cls is ast.IfExpr:
            stack += [node.cond, node.then, node.orelse]
        elif cls is ast.ListLit:
            stack += node.items
        elif cls is ast.Comprehension:
            stack += [node.iterable, node.elem]
            if node.cond is not None:
                stack.append(node.cond)
        elif cls is ast.Refine:
            stack.append(node.base)
    return False


def _module_level_names(modules: Iterable[ModuleInfo]) -> frozenset[str] | None:
    """Every name declared at module level in ``modules`` (declarations and the first
    keys of top-level fields, under module-level `if`/`for` too), or None when a
    top-level key is computed (it could be any name)."""
    names: set[str] = set()
    for m in modules:
        names.update(m.declared_names())
        stack: list[ast.Stmt] = list(m.tree.body.stmts)
        while stack:
            st = stack.pop()
            if isinstance(st, ast.Field):
                key = st.path[0].static
                if key is None:
                    return None
                names.add(key)
            elif isinstance(st, ast.IfStmt):
                stack.extend(st.then.stmts)
                if isinstance(st.orelse, ast.Body):
                    stack.extend(st.orelse.stmts)
                elif st.orelse is not None:
                    stack.append(st.orelse)
            elif isinstance(st, ast.ForStmt):
                names.update(n for n in (st.var, st.key_var) if n is not None)
                stack.extend(st.body.stmts)
    return frozenset(names)


def _pure_expr(e: Any, builtins: frozenset[str]) -> bool:
    """Whether ``e`` reads only `self`, literals and the functions ``builtins``."""
    stack: list[Any] = [e]
    while stack:
        node = stack.pop()
        cls = node.__class__
        if cls is ast.Literal or cls is ast.SelfRef:
            continue
        if cls is ast.Name:
            if node.name not in builtins:
                return False
        elif cls is ast.Str:
            stack += [p for p in node.parts if p.__class__ is not str]
        elif cls is ast.GetAttr:
            stack.append(node.obj)
        elif cls is ast.GetItem:
            stack += (node.obj, node.index)
        elif cls is ast.Call:
            stack.append(node.func)
            stack += [a.value for a in node.args]
        elif cls is ast.Binary:
            stack += (node.left, node.right)
        elif cls is ast.Unary:
            stack.append(node.operand)
        elif cls is ast.IfExpr:
            stack += (node.cond, node.then, node.orelse)
        elif cls is ast.ListLit:
            stack += node.items
        else:
            return False  # `outer.`, `super`, comprehensions, objects: not worth proving
    return True


def is_constant(e: ast.Expr | None) -> bool:
    """Whether ``e`` is a constant holding no name: a literal, a plain string, a list of
    those (its value is the same wherever it is evaluated)."""
    cls = e.__class__
    if cls is ast.Literal:
        return True
    if cls is ast.Str:
        return all(p.__class__ is str for p in e.parts)  # type: ignore[union-attr]
    if cls is ast.ListLit:
        return all(is_constant(x) for x in e.items)  # type: ignore[union-attr]
    return False


def _mentions_super(node: Any) -> bool:
    """Whether a syntax node has a `super` anywhere below it."""
    cls = node.__class__
    if cls is ast.Literal or cls is ast.Name or cls is ast.OuterName or cls is str:
        return False
    if cls is ast.Str:
        return any(_mentions_super(p) for p in node.parts if p.__class__ is not str)
    if cls is ast.SuperRef:
        return True
    if isinstance(node, tuple):
        return any(_mentions_super(x) for x in node)
    fields = getattr(node.__class__, "__attrs_attrs__", None)
    if fields is None:
        return False
    return any(_mentions_super(getattr(node, f.name)) for f in fields if f.name != "span")


def _plan(stmts: tuple[ast.Stmt, ...], low: Lowering) -> tuple[Step, ...]:
    steps: list[Step] = []
    for stmt in stmts:
        if isinstance(stmt, ast.Field):
            first = stmt.path[0]
            key = first.static  # a name or a plain string: the same text `key_text` gives
            if key is None:
                steps.append(("", FIELD, stmt, first.span, None))
            elif len(stmt.path) > 1:
                steps.append((key, MERGE, stmt, first.span, (low.dotted_rest(stmt), NO_LETS)))
            elif stmt.op == "merge":
                assert stmt.body is not None
                steps.append(
                    (key, MERGE, stmt, first.span, (stmt.body.stmts, low.body_lets(stmt.body)))
                )
            else:
                kind = OWN if low.reads_own_key(stmt.value, key) else SET
                steps.append((key, kind, stmt, first.span, stmt.value))
        elif isinstance(stmt, ast.CheckStmt):
            steps.append(("", CHECK, stmt, stmt.span, None))
        elif isinstance(stmt, ast.Unset):
            rest = low.unset_rest(stmt) if len(stmt.path) > 1 else None
            steps.append(("", UNSET, stmt, stmt.span, rest))
        elif isinstance(stmt, ast.IfStmt):
            steps.append(("", IF, stmt, stmt.span, None))
        elif isinstance(stmt, ast.ForStmt):
            steps.append(("", FOR, stmt, stmt.span, low.body_lets(stmt.body)))
    return tuple(steps)


@attrs.frozen(eq=False)
class Program:
    """A resolved module graph, ready to be evaluated any number of times.

    ``entry`` is None when the entry file could not be loaded or parsed; ``runnable`` says
    whether evaluating makes sense (no syntax error, no missing base). ``diagnostics`` are
    the resolver's findings, reported again by every evaluation of the program.
    """

    entry: ModuleInfo | None
    # Every loaded module by resolved path, in load order (the entry first).
    modules: Mapping[str, ModuleInfo]
    diagnostics: tuple[Diagnostic, ...]
    # The statements of each module's document (module key -> body), one tuple for every
    # evaluation: plans are keyed by it.
    bodies: Mapping[str, tuple[ast.Stmt, ...]]
    # The entry chain's inputs by name, base declaration first (empty without an entry).
    inputs: Mapping[str, InputChain]
    lowering: Lowering
    # What the resolver read: real path -> text, and its `exists` answers (path -> bool);
    # `still_valid` asks the loader the same questions again.
    texts: Mapping[str, str]
    probes: Mapping[str, bool]
    # Seconds spent parsing each file (display path), and the files actually parsed.
    parse_times: Mapping[str, float]
    parsed: tuple[str, ...]
    # Every type and schema, resolved on first need and kept for every evaluation (its
    # findings are reported again to each evaluation's collector).
    types: TypeResolver = attrs.field(factory=TypeResolver)
    _secret_sites: dict[int, Any] = attrs.field(factory=dict, repr=False)
    _bound: dict[frozenset[str], Bindings] = attrs.field(factory=dict, repr=False)
    # Refinements whose verdict depends on the value alone (`pure_refinement`), and the
    # verdicts found true, shared by every evaluation: (id(where), module key, class,
    # value). Read and added to from many threads: single set operations, atomic.
    _pure: dict[int, tuple[ast.Expr, bool]] = attrs.field(factory=dict, repr=False)
    _module_names: list[frozenset[str] | None] = attrs.field(factory=list, repr=False)
    where_verdicts: set[tuple[Any, ...]] = attrs.field(factory=set, repr=False)
    _dependence: list[Dependence] = attrs.field(factory=list, repr=False)
    # The plain data of the input-independent fields of the document, recorded by one
    # evaluation for the next (`cfglang.eval.materialise.Keeping`), under the settings
    # that could change it (limits, secret options): one entry, the latest. Opaque here;
    # a tree is never changed once stored, so threads share it without a lock.
    kept: dict[Any, Any] = attrs.field(factory=dict, repr=False)
    # What the static checks found, by limits, when no refinement reads an input
    # (`Dependence.static_checks_fixed`): every evaluation reports it again.
    static_findings: dict[Any, tuple[Diagnostic, ...]] = attrs.field(factory=dict, repr=False)

    @property
    def files(self) -> list[str]:
        """Display paths of every module, sorted."""
        return sorted(m.source.path for m in self.modules.values())

    @property
    def runnable(self) -> bool:
        """Whether to check and evaluate: syntax errors and a missing base stop a compile
        (evaluating would only add follow-on errors); a failed import stops it after the
        static checks (`import_failed`)."""
        if self.entry is None:
            return False
        if any(m.extends_decl is not None and m.parent is None for m in self.entry.chain()):
            return False
        return not any(d.code.startswith("E000") for d in self.diagnostics)

    @property
    def import_failed(self) -> bool:
        """Whether an import of some module could not be loaded (reported). The static
        checks run, names from it being silent placeholders (`types.failed_import`), but
        evaluation does not: the schemas, defaults and templates the module held are
        missing, and evaluating without them would only add follow-on errors (a field the
        missing schema defaults, a check reading it)."""
        return any(None in m.imports.values() for m in self.modules.values())

    @property
    def ok(self) -> bool:
        """No resolver error: a program worth keeping for the next compile."""
        return not any(d.is_error for d in self.diagnostics)

    def body(self, m: ModuleInfo) -> tuple[ast.Stmt, ...]:
        return self.bodies.get(m.key) or tuple(m.body)

    def trees(self) -> list[ast.Module]:
        return [m.tree for m in self.modules.values()]

    def secret_sites(self, source: SourceFile) -> tuple[Any, dict[int, Any]] | None:
        """The `# cfl-secrets:` header of a module and its `secret(...)` call sites by call
        offset (`cfglang.secrets.format.sites`), computed once per program; None for a
        source that is not one of the program's modules."""
        hit = self._secret_sites.get(id(source))
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        tree = next((m.tree for m in self.modules.values() if m.tree.span.source is source), None)
        if tree is None:
            return None
        from cfglang.secrets.format import parse_header, sites  # only for a file that holds secrets

        found = (
            parse_header(source.text),
            {s.node.span.start: s for s in sites(tree) if s.kind == "call"},
        )
        return self._secret_sites.setdefault(id(source), found)  # type: ignore[no-any-return]

    def pure_refinement(self, where: ast.Expr, builtins: Collection[str]) -> bool:
        """Whether the refinement ``where`` reads nothing but `self`, literals and the
        builtin functions ``builtins`` (all pure): its verdict for a value is then the
        same in every evaluation of this program, whatever the inputs, and is kept in
        `where_verdicts`. A name any module defines at module level (a let, input,
        import, type, schema, template or top-level field) could shadow a builtin, so it
        makes the refinement impure, as does any other name."""
        hit = self._pure.get(id(where))
        if hit is not None and hit[0] is where:
            return hit[1]
        if not self._module_names:
            self._module_names.append(_module_level_names(self.modules.values()))
        defined = self._module_names[0]
        pure = defined is not None and _pure_expr(where, frozenset(builtins) - defined)
        self._pure[id(where)] = (where, pure)
        return pure

    def input_dependence(self) -> Dependence:
        """Which names may have a value that changes with the inputs
        (`cfglang.semantic.dependence`), worked out on first need and kept."""
        if not self._dependence:
            # lazy: only a reused program needs it (a one-off build never pays the import)
            from cfglang.semantic.dependence import input_dependence

            self._dependence.append(input_dependence(self.modules.values()))
        return self._dependence[0]

    def bindings(self, builtins: Collection[str]) -> Bindings | None:
        """Every name, type and import member of the program bound to its binding site
        (`cfglang.semantic.bind`), worked out on first need and kept; None without an
        entry. ``builtins`` are the builtin function names (the evaluator's table: this
        layer does not import it)."""
        if self.entry is None:
            return None
        key = frozenset(builtins)
        hit = self._bound.get(key)
        if hit is None:
            # lazy: only the tools that ask for bindings load the binder
            from cfglang.semantic.bind import bind

            hit = self._bound.setdefault(key, bind(self.entry, builtins=key))
        return hit

    def still_valid(self, read: Callable[[str], str], exists: Callable[[str], bool]) -> bool:
        """Whether the loader still gives what this program was built from: every module's
        text, and every answer to "does this path exist" that chose a file."""
        try:
            for path, want in self.probes.items():
                if exists(path) != want:
                    return False
            for path, text in self.texts.items():
                if read(path) != text:
                    return False
        except (OSError, UnicodeDecodeError):
            return False
        return True


@attrs.define
class _Recording:
    """A loader that remembers what the resolver asked it (see `Program.still_valid`)."""

    inner: Loader
    probes: dict[str, bool] = attrs.Factory(dict)

    def read(self, path: str) -> str:
        return self.inner.read(path)

    def exists(self, path: str) -> bool:
        found = self.inner.exists(path)
        self.probes[path] = found
        return found


def build_program(
    loader: Loader,
    entry_path: str,
    *,
    text: str | None = None,
    root: str,
    allow_paths: tuple[str, ...] = (),
    use_cache: bool = False,
    max_depth: int = 10_000,
) -> Program:
    """Resolve the module graph of ``entry_path`` (its text ``text`` if given, else read
    through ``loader``) into a `Program`."""
    diags = Diagnostics()
    recording = _Recording(loader)
    resolver = Resolver(
        recording, root, diags, allow_paths, use_cache=use_cache, max_depth=max_depth
    )
    entry = resolver.load_entry(entry_path, text)
    modules = dict(resolver.modules)
    sources = [s for m in modules.values() for s in (m.source, m.tree.span.source)]
    texts = {m.source.real_path: m.source.text for m in modules.values() if m.source.real_path}
    inputs: dict[str, list[tuple[ModuleInfo, ast.InputDecl]]] = {}
    if entry is not None:
        for m in entry.chain():
            for name, d in m.inputs.items():
                inputs.setdefault(name, []).append((m, d))
    return Program(
        entry,
        MappingProxyType(modules),
        tuple(diags),
        MappingProxyType({k: tuple(m.body) for k, m in modules.items()}),
        MappingProxyType({k: tuple(v) for k, v in inputs.items()}),
        Lowering(sources),
        MappingProxyType(texts),
        MappingProxyType(dict(recording.probes)),
        MappingProxyType(dict(resolver.parse_times)),
        tuple(resolver.parsed),
    )


def content_key(entry_path: str, root: str, allow_paths: tuple[str, ...], max_depth: int) -> str:
    """What names a program before its texts are read: a cached program under this key is
    then checked against the texts (`Program.still_valid`)."""
    return "\0".join((os.path.abspath(entry_path), root, *allow_paths, str(max_depth)))
