"""Expansion: the bodies of an object's layers turned into its definitions.

A mixin of `cfglang.eval.evaluate.Evaluator` (methods, not functions taking it, so the hot
path costs no extra call). `expand` interprets each body's plan (`Lowering.plan`, made
once per program): static steps become definitions directly; the dynamic ones (a
computed key, `unset`, `if`, `for`) evaluate their key, condition or iterable here. Also
here: the outputs a module declares under `if`/`for` (`output_sites`), the run-time half
of the double-assignment check, and the near-miss warning (W0801) with its index.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Diagnostics, Note, did_you_mean, edit_distance
from cfglang.eval.errors import EvalError, _Propagate, err
from cfglang.eval.objects import _NO_LETS, Def, Layer, Obj, Scope
from cfglang.eval.values import ABSENT, BOTTOM, kind_of, show
from cfglang.semantic.program import DYNAMIC, FIELD, FOR, IF, MERGE, OWN, SET, Lowering
from cfglang.semantic.resolve import ModuleInfo
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import Secret


class Expansion:
    """Expansion of bodies into definitions, as methods of the `Evaluator`."""

    if TYPE_CHECKING:
        # What the evaluator provides.
        diags: Diagnostics
        lowering: Lowering
        warned: set[tuple[int, int]]

        def ev(self, e: ast.Expr, scope: Scope) -> Any: ...
        def module_scope(self, m: ModuleInfo) -> Scope: ...

    def expand(
        self,
        obj: Obj,
        stmts: tuple[ast.Stmt, ...],
        scope: Scope,
        no: int,
        defs: dict[str, list[Def]],
        checks: list[tuple[ast.CheckStmt, Scope]],
        inherited: int,
    ) -> None:
        """Add the definitions of the body ``stmts`` (layer ``no`` of ``obj``) to ``defs``
        and its checks to ``checks``, by interpreting the body's plan (`Lowering.plan`):
        static steps become definitions from what lowering worked out once per body;
        dynamic ones evaluate their key, condition or iterable here."""
        module = scope.module
        for key, kind, stmt, span, payload in self.lowering.plan(stmts):
            if kind >= DYNAMIC:
                try:
                    self._expand_dynamic(
                        obj, kind, stmt, payload, scope, no, defs, checks, inherited
                    )
                except EvalError as e:
                    self.diags.add(e.diag)
                except _Propagate:
                    pass
                continue
            if kind == SET:
                d = Def(key, stmt.op, stmt, scope, no, payload)
            elif kind == OWN:
                d = Def(key, stmt.op, stmt, scope, no, payload, own=True)
            elif kind == MERGE:  # a block, or a dotted path lowered to one
                d = Def(
                    key,
                    "merge",
                    stmt,
                    scope,
                    no,
                    None,
                    Layer(payload[0], scope, module, None, None, stmt.span, payload[1]),
                )
            else:
                checks.append((stmt, scope))
                continue
            stack = defs.get(key)
            if stack is None:
                if inherited and len(key) >= 4:
                    self._near_miss(obj, key, span, defs, inherited)
                defs[key] = [d]
            else:
                stack.append(d)

    def _expand_dynamic(
        self,
        obj: Obj,
        kind: int,
        stmt: Any,
        payload: Any,
        scope: Scope,
        no: int,
        defs: dict[str, list[Def]],
        checks: list[tuple[ast.CheckStmt, Scope]],
        inherited: int,
    ) -> None:
        """One dynamic step of `expand`: a computed key, `unset`, `if` or `for`."""
        if kind == FIELD:
            self._expand_field(obj, stmt, scope, no, defs, inherited)
        elif kind == IF:
            node = self.branch(stmt, scope)
            if node is not None:
                inner = scope.child(lets=self.body_lets(node))
                self.expand(obj, node.stmts, inner, no, defs, checks, inherited)
        elif kind == FOR:
            made: dict[str, Any] = {}
            for k, v in self.iterate(stmt.iterable, scope, stmt.key_var is not None):
                vars = {stmt.var: v}
                if stmt.key_var is not None:
                    vars[stmt.key_var] = k
                inner = scope.child(vars=vars, lets=payload, decl=stmt)
                self.expand(obj, stmt.body.stmts, inner, no, defs, checks, inherited)
                self._for_duplicates(stmt, inner, made, k)
        else:  # UNSET
            key = self.key_text(stmt.path[0], scope)
            if payload is not None:  # `unset a.b` is `a { unset b }`
                layer = Layer(payload, scope, scope.module, site=stmt.span)
                defs.setdefault(key, []).append(
                    Def(key, "merge", stmt, scope, no, body_layer=layer)
                )
            else:
                defs.setdefault(key, []).append(Def(key, "unset", stmt, scope, no))

    def branch(self, stmt: ast.IfStmt, scope: Scope) -> ast.Body | None:
        """The body an `if`/`else if`/`else` chain takes in ``scope``, or None."""
        node: ast.IfStmt | ast.Body | None = stmt
        while isinstance(node, ast.IfStmt):
            cond = self.ev(node.cond, scope)
            if cond is BOTTOM:
                return None
            if not isinstance(cond, bool):
                raise err(
                    "E0302",
                    f"condition must be a bool, not {kind_of(cond)}",
                    node.cond.span,
                    label=f"this is {show(cond)}",
                )
            node = node.then if cond else node.orelse
        return node

    def output_sites(self, m: ModuleInfo) -> Iterator[tuple[ast.OutputDecl, Scope]]:
        """Every `output` module ``m`` declares, in source order, with the scope its name
        and value are evaluated in: the module's, or for one inside a module-level `for`
        or `if`, the scope of the iteration or branch that holds it (its variables and
        lets). Conditions and iterables are evaluated as the document's expansion
        evaluated them, so an output exists exactly when the fields beside it do."""

        def walk(stmts: tuple[ast.Stmt, ...], scope: Scope) -> Iterator[tuple[Any, Scope]]:
            for stmt in stmts:
                if isinstance(stmt, ast.OutputDecl):
                    yield stmt, scope
                elif isinstance(stmt, ast.IfStmt) and _has_output(stmt):
                    try:
                        node = self.branch(stmt, scope)
                    except EvalError as e:
                        self.diags.add(e.diag)
                        continue
                    except _Propagate:
                        continue
                    if node is not None:
                        yield from walk(node.stmts, scope.child(lets=_lets(node.stmts)))
                elif isinstance(stmt, ast.ForStmt) and _has_output(stmt):
                    lets = _lets(stmt.body.stmts)
                    try:
                        items = list(self.iterate(stmt.iterable, scope, stmt.key_var is not None))
                    except EvalError as e:
                        self.diags.add(e.diag)
                        continue
                    except _Propagate:
                        continue
                    for k, v in items:
                        vars = {stmt.var: v}
                        if stmt.key_var is not None:
                            vars[stmt.key_var] = k
                        yield from walk(stmt.body.stmts, scope.child(vars=vars, lets=lets))

        return walk(m.tree.body.stmts, self.module_scope(m))

    def _for_duplicates(
        self, stmt: ast.ForStmt, inner: Scope, made: dict[str, Any], at: Any
    ) -> None:
        """E0204 when two iterations of one `for` assign one key (docs/language.md §3.6):
        the run-time half of the double-assignment check (`resolve._double_assignments`
        compares the static keys of a body). ``made``: key -> the index (list) or key
        (object) of the item that made it, ``at`` the current item's."""
        for s in stmt.body.stmts:
            if type(s) is not ast.Field or s.op not in ("set", "extends") or len(s.path) != 1:
                continue
            first = s.path[0]
            key = first.static
            if key is None:
                try:
                    key = self.key_text(first, inner)
                except (EvalError, _Propagate):
                    continue  # reported by the expansion itself
            if key not in made:
                made[key] = at
                continue
            which = "key" if isinstance(at, str) else "index"
            self.diags.error(
                "E0204",
                f"`{key}` is assigned twice by this `for`",
                first.span,
                label=f"two items of the loop give the key `{key}`",
                notes=(
                    Note(
                        f"first by the item at {which} {show(made[key])}, again by {show(at)}",
                        stmt.iterable.span,
                    ),
                ),
                help="make the key unique per item (substitute the item's name or index)",
            )

    def _expand_field(
        self,
        obj: Obj,
        stmt: ast.Field,
        scope: Scope,
        no: int,
        defs: dict[str, list[Def]],
        inherited: int,
    ) -> None:
        """A field whose first key is computed (`"${name}-url" = …`): the static ones are
        steps of the plan."""
        first = stmt.path[0]
        key = self.key_text(first, scope)
        if len(stmt.path) > 1:
            # `a.b.c = e` is `a { b.c = e }`; the rewritten statement depends only on
            # the syntax, so it is built once per statement, not once per evaluation.
            rest = self.lowering.dotted_rest(stmt)
            layer = Layer(rest, scope, scope.module, site=stmt.span, lets=_NO_LETS)
            d = Def(key, "merge", stmt, scope, no, body_layer=layer)
        elif stmt.op == "merge":
            assert stmt.body is not None
            layer = Layer(
                stmt.body.stmts, scope, scope.module, site=stmt.span, lets=self.body_lets(stmt.body)
            )
            d = Def(key, "merge", stmt, scope, no, body_layer=layer)
        else:
            # A computed key is never a bare name, so its value cannot read the binding it
            # hides (`own`, docs/language.md §3.6).
            d = Def(key, stmt.op, stmt, scope, no, expr=stmt.value)
        if key not in defs and inherited and len(key) >= 4:
            self._near_miss(obj, key, first.span, defs, inherited)
        defs.setdefault(key, []).append(d)

    def _near_miss(
        self, obj: Obj, key: str, span: Span, defs: dict[str, list[Def]], inherited: int
    ) -> None:
        if obj.schema is not None and key not in obj.schema.fields:
            return  # the closed-schema error says it better
        if inherited >= _NEAR_INDEX_FROM:
            # A long chain: comparing with every inherited key is quadratic in its length.
            near = obj._near
            if near is None:
                near = obj._near = _NearKeys()
            if near.count < inherited:
                for k in itertools.islice(defs, near.count, inherited):
                    if len(k) >= 4:
                        near.add(k)
                near.count = inherited
            cand = near.nearest(key)
        else:
            cand = did_you_mean(key, (k for k in itertools.islice(defs, inherited) if len(k) >= 4))
            # Stricter than "did you mean": a warning on correct code is costly, so only one
            # edit (two for long names) counts as a near miss.
            if cand is not None and edit_distance(key, cand) > (1 if len(key) <= 7 else 2):
                cand = None
        if cand is not None and (id(span.source), span.start) not in self.warned:
            self.warned.add((id(span.source), span.start))
            self.diags.warning(
                "W0801",
                f"`{key}` is a new key, close to the inherited `{cand}`",
                span,
                label="this adds a key instead of overriding one",
                help=f"did you mean `{cand}`?",
            )

    def body_lets(self, body: ast.Body) -> dict[str, ast.LetDecl]:
        """The lets of a body, computed once per program (`Lowering.body_lets`)."""
        return self.lowering.body_lets(body)

    def key_text(self, key: ast.Key, scope: Scope) -> str:
        if key.name is not None:
            return key.name
        assert key.expr is not None
        v = self.ev(key.expr, scope)
        if isinstance(v, Secret):
            raise err("E0302", "a secret cannot be used as a key", key.span)
        if not isinstance(v, str):
            raise _Propagate()
        return v

    def iterate(self, expr: ast.Expr, scope: Scope, pairs: bool) -> Iterator[tuple[Any, Any]]:
        it = self.ev(expr, scope)
        if it is BOTTOM:
            return
        if isinstance(it, tuple):
            for i, v in enumerate(it):
                yield i, v
        elif isinstance(it, Obj):
            for k in it.keys():
                v = it.get(k)
                if v is not ABSENT and not any(d.is_hidden for d in it.defs().get(k, ())):
                    yield k, v
        else:
            raise err(
                "E0302",
                f"cannot iterate over {kind_of(it)}",
                expr.span,
                label=f"this is {show(it)}",
                help="`for` iterates over lists and objects",
            )


# From this many inherited keys on, near misses are found through `_NearKeys`.
_NEAR_INDEX_FROM = 64


class _NearKeys:
    """Inherited keys indexed by what is left after deleting characters, so that the keys
    near a new one are found without comparing it with every key (SymSpell's method).

    A near miss is at most one edit away for keys of up to 7 characters and two for longer
    ones (`Evaluator._near_miss`), and each edit (insertion, deletion, substitution or
    transposition) is undone by deleting at most one character from each side. So keys
    one edit away share a one-deletion variant (`one`), and keys two edits away (of 6
    characters or more) a two-deletion variant (`two`). `nearest` gives what the
    unindexed search gives: the alphabetically first key at the smallest distance.
    """

    __slots__ = ("count", "one", "two")

    def __init__(self) -> None:
        self.count = 0  # the first `count` keys of the table are indexed
        self.one: dict[str, list[str]] = {}
        self.two: dict[str, list[str]] = {}

    def add(self, key: str) -> None:
        for v in _deletions(key, 1):
            self.one.setdefault(v, []).append(key)
        if len(key) >= 6:
            for v in _deletions(key, 2):
                self.two.setdefault(v, []).append(key)

    def nearest(self, key: str) -> str | None:
        near: set[str] = set()
        for v in _deletions(key, 1):
            near.update(self.one.get(v, ()))
        near.discard(key)
        one = [k for k in near if _one_edit(key, k)]
        if one:
            return min(one)
        if len(key) < 8:
            return None
        far: set[str] = set()
        for v in _deletions(key, 2):
            far.update(self.two.get(v, ()))
        far |= near
        far.discard(key)
        # Each check is a full edit distance: many similar keys (`field_1` ... `field_9999`)
        # must not make one lookup long, so only the first few candidates are tried.
        for k in sorted(far)[:_NEAR_CANDIDATES]:
            if edit_distance(key, k) == 2:
                return k
        return None


_NEAR_CANDIDATES = 32


def _one_edit(a: str, b: str) -> bool:
    """Whether `a` and `b` are one edit apart (`edit_distance(a, b) == 1`), in linear time."""
    if len(a) > len(b):
        a, b = b, a
    i = 0
    n = len(a)
    while i < n and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if i == n:
            return False
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return i + 1 < n and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    return len(b) == n + 1 and a[i:] == b[i + 1 :]


def _deletions(s: str, n: int) -> set[str]:
    out = {s}
    edge = {s}
    for _ in range(n):
        edge = {w[:i] + w[i + 1 :] for w in edge for i in range(len(w))}
        out |= edge
    return out


def _has_output(stmt: ast.IfStmt | ast.ForStmt) -> bool:
    """Whether an `if` or `for` holds an `output` (in any branch, at any depth of
    `if`/`for`): only those are walked again for outputs."""
    bodies: list[ast.Body] = []
    node: ast.IfStmt | ast.Body | None = stmt if isinstance(stmt, ast.IfStmt) else stmt.body
    while isinstance(node, ast.IfStmt):
        bodies.append(node.then)
        node = node.orelse
    if isinstance(node, ast.Body):
        bodies.append(node)
    for body in bodies:
        for s in body.stmts:
            if isinstance(s, ast.OutputDecl):
                return True
            if isinstance(s, (ast.IfStmt, ast.ForStmt)) and _has_output(s):
                return True
    return False


def _lets(stmts: tuple[ast.Stmt, ...]) -> dict[str, ast.LetDecl]:
    return {s.name: s for s in stmts if isinstance(s, ast.LetDecl)}
