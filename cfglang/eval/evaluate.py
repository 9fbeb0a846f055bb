"""The evaluator: merge of inheritance chains with late binding.

An object (`Obj`) is a chain of *layers* — bodies of definitions, base first — bound to
one identity. Nothing is computed when an object is made. On first access the layers are
*expanded* (``if``/``for`` generation, dotted paths) into a stack of definitions per key
(`Def`, base first); a field's value is then computed from the top of its stack, with
``super`` meaning the value of the stack below it. Because every layer is re-bound to the
object that inherits it, a base's ``url = "http://$<host>:$<port>"`` sees the port a child
sets: that is late binding. Values are memoised per object and key, so each field is
computed once; a field re-entered while being computed is a reference cycle, reported
with the whole chain of sites.

Names are looked up through `Scope`s (innermost first: for-variables and template
parameters, the body's lets, the object's fields, then enclosing bodies), then the
module's declarations and builtins.

Errors are raised as `EvalError` and caught at the nearest field boundary, which
records the diagnostic and stores `BOTTOM`; operations on `BOTTOM` give `BOTTOM` without a
message, so one mistake yields one message. Limits (depth, steps, collection and string
sizes) turn runaway programs into errors.

This module holds the `Evaluator` (field values, `super`, types and schemas bound to the
evaluation, expressions) and `Limits`. The rest of an evaluation has a module each, none
importing this one at run time: the object model (`cfglang.eval.objects`), the error types
(`cfglang.eval.errors`), three mixins of the evaluator — expansion of bodies into
definitions (`cfglang.eval.expand`), name lookup (`cfglang.eval.names`) and conformance
to types (`cfglang.eval.conform`) — inputs (`cfglang.eval.inputs`), builtins, operators
and secrecy, and making
the result plain data (`cfglang.eval.materialise`, with `cfglang.eval.constraints`);
lowering (each body's expansion plan) is the `Program`'s (`cfglang.semantic.program`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostics, Note
from cfglang.eval.conform import _SLOW, Conformance

# The error types and the object model live in their own modules (imported by the other
# evaluation modules); they are re-exported here, where callers have always found them.
from cfglang.eval.errors import EvalError as EvalError
from cfglang.eval.errors import _Propagate as _Propagate
from cfglang.eval.errors import err as err
from cfglang.eval.expand import Expansion
from cfglang.eval.inputs import bind_inputs
from cfglang.eval.names import _OUTER, Lookup, _hint
from cfglang.eval.objects import FINAL, OWN, TYPED
from cfglang.eval.objects import Builtin as Builtin
from cfglang.eval.objects import Def as Def
from cfglang.eval.objects import Layer as Layer
from cfglang.eval.objects import ModuleValue as ModuleValue
from cfglang.eval.objects import Obj as Obj
from cfglang.eval.objects import Scope as Scope
from cfglang.eval.objects import TemplateValue as TemplateValue
from cfglang.eval.objects import _only_schema_annotates as _only_schema_annotates
from cfglang.eval.objects import from_plain as from_plain
from cfglang.eval.operators import INT_MAX, binary
from cfglang.eval.secrecy import call_builtin  # the builtins', with secrecy carried
from cfglang.eval.values import ABSENT, BOTTOM, kind_of, render_scalar, show
from cfglang.semantic import types as T
from cfglang.semantic.program import (
    Lowering,
    Program,
)
from cfglang.semantic.resolve import ModuleInfo
from cfglang.semantic.types import Schema, TypeResolver
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import Duration, Secret, Size


@attrs.frozen
class Limits:
    """Bounds that make every program terminate quickly and in bounded memory.

    Set per project in cfl.toml's `[limits]` table or per call with `api.compile(limits=)`;
    docs/language.md (Limits) says what each one counts.
    """

    max_depth: int = 1500
    max_steps: int = 5_000_000
    max_collection: int = 1_000_000
    max_string: int = 16 * 1024 * 1024
    # The size of a value as emitted, shared parts counted each time they are written
    # (60 levels of `{ a = o; b = o }` are 2^60 values): values (every list item and
    # field), and characters of strings and keys. Checked for the document, and for the
    # named outputs together.
    max_output_values: int = 10_000_000
    max_output_bytes: int = 256 * 1024 * 1024
    # How deep imports and `extends` chains may nest (checked by the resolver).
    max_module_depth: int = 10_000


# ---- the evaluator ------------------------------------------------------------------------


class Evaluator(Expansion, Lookup, Conformance):
    """Evaluation state of one compilation: one evaluation of a `Program`.

    Given a ``program``, the evaluator builds the entry's document and binds the entry
    chain's inputs (``inputs``, an `cfglang.eval.inputs.Given`: the values set from
    outside, each with its source) in the constructor; ``secrets`` is the capability that
    opens ``secret("cfl:v2:...")`` values (a `cfglang.secrets.runtime.SecretContext`; None
    means defaults from ``env``). Without a program (tools that only resolve types) there
    is no document until `document` is called.
    """

    def __init__(
        self,
        diags: Diagnostics,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        *,
        program: Program | None = None,
        inputs: Any = None,
        secrets: Any = None,
        types: TypeResolver | None = None,
    ) -> None:
        self.diags = diags
        self.program = program
        # Types and schemas come from the semantic layer (shared with the static checks,
        # and with every evaluation of the program); this evaluator only binds each
        # schema's body to its module scope (`schema_layers`).
        if types is None:
            types = program.types if program is not None else None
        self.types = types if types is not None else TypeResolver()
        self.limits = limits or Limits()
        self.env = env if env is not None else {}
        self.steps = 0
        self.steps_reported = False  # `_out_of_steps`
        self.depth = 0
        self.active: dict[tuple[int, str], int] = {}
        # The definitions whose values are being computed, outermost first (the cycle
        # guard's path, reported with a reference cycle).
        self.stack: list[Def] = []
        # The resolver's answers, memoised here too (read on every typed field).
        self.type_cache: dict[tuple[int, str], T.Type] = {}
        self._schema_layers: dict[int, tuple[Layer, ...]] = {}
        self._schemas_bound = 0  # how many of `types.schemas_made()` have layers
        self.module_docs: dict[str, Obj] = {}
        # The entry module of each document, and the entry's document: inputs of an
        # imported module take their own defaults (only the entry's are set from outside).
        self.doc_entries: dict[int, ModuleInfo] = {}
        self.main_doc: Obj | None = None
        self.doc_inputs: dict[tuple[int, str], Any] = {}
        self.module_scopes: dict[str, Scope] = {}
        self.inputs: dict[str, Any] = {}
        self.input_thunks: dict[str, Callable[[], Any]] = {}
        self.input_decls: dict[str, ast.InputDecl] = {}
        self.where_ok: set[tuple[Any, ...]] = set()
        # Plans, dotted tails and body lets: the program's (shared by its evaluations).
        self.lowering = program.lowering if program is not None else Lowering()
        self._const_fields: dict[tuple[int, int, str], Any] = {}
        # Environment variables consulted (name -> value or None), for the build cache.
        self.env_read: dict[str, str | None] = {}
        # Which source gave each input its value (for `cflc explain`): (what, span).
        self.input_sources: dict[str, tuple[str, Span | None]] = {}
        self.warned: set[tuple[int, int]] = set()
        # Names already checked for W0802 (by identity: one check per name in the source).
        self._shadow_seen: set[int] = set()
        self._quiet_checks: set[int] = set()
        # How `secret("cfl:v1:...")` is opened: a `cfglang.secrets.runtime.SecretContext`
        # (identities, decrypt or only validate); None means defaults.
        self.secrets: Any = secrets
        if program is not None and program.entry is not None:
            # The document first: it binds every module of the extends chain to the entry's
            # document, so input defaults and outputs declared in a base see its fields.
            self.document(program.entry)
            if inputs is not None:
                bind_inputs(self, program, inputs)

    # -- documents and modules ----------------------------------------------------------------

    def document(self, entry: ModuleInfo) -> Obj:
        """The document object of a module: the merge of its extends chain."""
        if entry.key in self.module_docs:
            return self.module_docs[entry.key]
        chain = entry.chain()
        doc = Obj(self, (), None, Span(entry.source, 0, 0))
        self.module_docs[entry.key] = doc
        self.doc_entries[id(doc)] = entry
        if self.main_doc is None:
            self.main_doc = doc
        layers = []
        body = self.program.body if self.program is not None else (lambda m: tuple(m.body))
        for m in chain:
            layers.append(Layer(body(m), None, m, lets=m.lets, site=Span(m.source, 0, 0)))
            self.module_scopes.setdefault(m.key, Scope(doc, m, None, m.lets))
        doc.layers = tuple(layers)
        for m in chain:
            for stmt in m.checks:
                if doc._checks is None:
                    doc._checks = []
                doc._checks.append((stmt, self.module_scope(m)))
        return doc

    def module_scope(self, m: ModuleInfo) -> Scope:
        if m.key not in self.module_scopes:
            self.document(m)
        return self.module_scopes[m.key]

    # -- field values -------------------------------------------------------------------------

    def field_value(self, obj: Obj, key: str, defs: list[Def]) -> Any:
        top = defs[-1]
        memo_key = self._const_memo_key(obj, key, defs, top)
        if memo_key is not None:
            v = self._const_fields.get(memo_key, _SLOW)
            if v is not _SLOW:
                if not obj._expanding:
                    obj._values[key] = v
                return v
        v = self._field_value(obj, key, defs, top)
        if memo_key is not None and v is not BOTTOM and v is not ABSENT:
            self._const_fields[memo_key] = v
        return v

    def _const_memo_key(
        self, obj: Obj, key: str, defs: list[Def], top: Def
    ) -> tuple[int, int, str] | None:
        """A key under which this field's checked value can be shared, or None.

        A constant (`8080`, `"prod"`, `["a", "b"]`) set by one statement, checked only
        against that statement's and the schema's declarations, has the same value in
        every object of the schema: the prototype's defaults and the layers that every
        environment inherits are then computed once per compilation, not once per object.
        Failures are never shared (each object reports its own)."""
        if top.op != "set":
            return None
        stmt = top.stmt
        if not self.lowering.constant(stmt, top.expr):
            return None
        schema = obj.schema
        sf = schema.fields.get(key) if schema is not None else None
        for d in defs:
            if d.flags & FINAL or (d.flags & TYPED and d.stmt is not sf and d is not top):
                return None
        return (id(stmt), id(schema), key)  # a computed key can differ per object

    def _field_value(self, obj: Obj, key: str, defs: list[Def], top: Def) -> Any:
        token = (id(obj), key)
        if token in self.active:
            start = self.active[token]
            chain = [(d.key, d.key_span) for d in self.stack[start:]] + [(key, top.key_span)]
            notes = tuple(Note(f"`{name}` depends on ...", span) for name, span in chain[1:-1])
            sites = " -> ".join(f"{name} ({span})" for name, span in chain)
            hint = None
            if len(chain) == 2:
                sites = f"`{key}` depends on itself"
                outer = top.scope.parent if top.scope.obj is obj else top.scope
                while outer is not None and outer.obj is obj:
                    outer = outer.parent
                enclosing = False
                while outer is not None:
                    if (
                        key in outer.vars
                        or key in outer.lets
                        or (outer.obj is not None and outer.obj.has(key))
                    ):
                        enclosing = True
                        break
                    outer = outer.parent
                module_level = any(
                    key in m.inputs or key in m.lets or key in m.imports
                    for m in top.scope.module.chain()
                )
                if enclosing and outer is not None and outer.parent is None:
                    enclosing, module_level = False, True  # the module's own scope
                if any(d.op != "decl" for d in defs[:-1]):
                    # Inherited: the value before this definition is what was meant.
                    hint = (
                        f"`{key}` cannot be its own value; to build on the inherited "
                        f"value write `super` (`{key} = super + ...`)"
                    )
                elif enclosing:
                    hint = (
                        f"the field `{key}` hides the `{key}` of an enclosing scope; "
                        "rename one of them"
                    )
                elif module_level:
                    hint = f"the field `{key}` hides the module-level `{key}`; rename one of them"
            raise err(
                "E0205",
                f"reference cycle: {sites}",
                chain[0][1],
                label="this value depends on itself",
                notes=notes,
                help=hint,
            )
        if len(self.stack) > self.limits.max_depth:
            raise err(
                "E0502",
                "evaluation is nested too deeply",
                top.value_span,
                label=f"more than {self.limits.max_depth} fields deep",
            )
        self.active[token] = len(self.stack)
        self.stack.append(top)
        try:
            for d in defs:
                if d.flags & FINAL:
                    self._check_final(defs)
                    break
            expr = top.expr
            if top.op == "set" and expr.__class__ is ast.Literal:
                v = expr.value
            elif top.op == "set" and self.super_free(expr):  # type: ignore[arg-type]
                # The common case: a plain `key = expr` that does not read `super`, so no
                # scope for `super` is needed and nothing below it is ever evaluated.
                v = self.ev(expr, self.own_scope(top) if top.flags & OWN else top.scope)  # type: ignore[arg-type]
            else:
                v = self.eval_defs(obj, key, defs, len(defs) - 1)
            if v is not BOTTOM and v is not ABSENT:
                v = self.conform_field(obj, key, defs, v)
        except EvalError as e:
            self.diags.add(e.diag)
            v = BOTTOM
        except _Propagate:
            v = BOTTOM
        finally:
            del self.active[token]
            self.stack.pop()
        if not obj._expanding:
            # A value read while its object is still being expanded (by an `if` or `for`
            # of that object) saw only the definitions made so far; kept, it would hide
            # the later ones (`a { d = 2 }` after `if a.c == 1 { … }`). It is computed
            # again, from every definition, once the expansion is over.
            obj._values[key] = v
        return v

    def _check_final(self, defs: list[Def]) -> None:
        for i, d in enumerate(defs):
            if d.is_final:
                for later in defs[i + 1 :]:
                    # Any later statement changing it counts, a merge block or a plain
                    # reassignment in the same module included; a bare type declaration
                    # changes nothing.
                    if later.stmt is not d.stmt and later.op != "decl":
                        self.diags.error(
                            "E0305",
                            f"`{d.key}` is final and cannot be changed",
                            later.span,
                            label="this overrides a final field",
                            notes=(Note("declared final here", d.span),),
                        )
                        break
                break

    def eval_defs(self, obj: Obj, key: str, defs: list[Def], i: int) -> Any:
        if i < 0:
            return ABSENT
        d = defs[i]  # the memo's key: one definition of one key of this object
        partials = obj._partials
        if partials is None:
            partials = obj._partials = {}
        elif d in partials:
            return partials[d]
        op = d.op
        if op == "decl":
            v = self.eval_defs(obj, key, defs, i - 1)
        elif op == "unset":
            v = ABSENT
        elif op in ("set", "extends"):
            assert d.expr is not None
            if not self.super_free(d.expr):
                scope = self._super_scope(obj, key, defs, i)
            else:
                scope = self.own_scope(d) if d.flags & OWN else d.scope
            v = self.ev(d.expr, scope)
        elif op == "append":
            assert d.expr is not None
            base = self.eval_defs(obj, key, defs, i - 1)
            rhs = self.ev(d.expr, self._super_scope(obj, key, defs, i))
            v = self.append(base, rhs, d)
        else:  # merge
            base = self.eval_defs(obj, key, defs, i - 1)
            assert d.body_layer is not None
            if base is BOTTOM:
                v = BOTTOM
            elif base is ABSENT or base is None:
                schema = self._field_schema(obj, key)
                layers = self.schema_layers(schema) if schema is not None else ()
                v = Obj(self, (*layers, d.body_layer), schema, d.span)
            elif isinstance(base, Obj):
                v = Obj(self, (*base.layers, d.body_layer), base.schema, d.span)
            else:
                raise err(
                    "E0302",
                    f"cannot merge a block into {kind_of(base)} `{key}`",
                    d.key_span,
                    label=f"`{key}` is {show(base)} here",
                    help=f"write `{key} = ...` to replace the value",
                )
        partials[d] = v
        return v

    def super_free(self, e: ast.Expr) -> bool:
        """Whether ``e`` has no `super` anywhere in it (nested bodies included), so it can
        be evaluated in its definition's own scope (`Lowering.super_free`)."""
        return self.lowering.super_free(e)

    def own_scope(self, d: Def) -> Scope:
        """The scope of a value that reads its own key (`region = region`): the bare name
        `key` there is the binding the field hides, found past the field's object
        (`_own_name`); the marker `_OUTER` in the scope's variables says so."""
        return d.scope.child(vars={d.key: _OUTER})

    def _super_scope(self, obj: Obj, key: str, defs: list[Def], i: int) -> Scope:
        d = defs[i]
        s = (self.own_scope(d) if d.flags & OWN else d.scope).child()
        s.sup = lambda: self.eval_defs(obj, key, defs, i - 1)
        return s

    def _field_schema(self, obj: Obj, key: str) -> Schema | None:
        for t, _ in obj.field_type(key):
            s = T.schema_of(t)
            if s is not None:
                return s
        return None

    def append(self, base: Any, rhs: Any, d: Def) -> Any:
        if base is BOTTOM or rhs is BOTTOM:
            return BOTTOM
        if base is ABSENT or base is None:
            return rhs
        if isinstance(base, tuple) and isinstance(rhs, tuple):
            self._check_size(len(base) + len(rhs), d.value_span)
            return base + rhs
        if isinstance(base, Obj) and isinstance(rhs, Obj):
            return Obj(self, (*base.layers, *rhs.layers), base.schema, d.span)
        raise err(
            "E0302",
            f"`+=` needs two lists or two objects, got {kind_of(base)} and {kind_of(rhs)}",
            d.value_span,
        )

    # -- types ----------------------------------------------------------------------------------

    def resolve_type(self, texpr: ast.TypeExpr, module: ModuleInfo) -> T.Type:
        key = (id(texpr), module.key)
        cached = self.type_cache.get(key)
        if cached is None:
            cached = self.types.resolve(texpr, module, self.diags)
            self.type_cache[key] = cached
            self.bind_schemas()
        return cached

    def schema_field_types(self, schema: Schema, key: str) -> list[tuple[T.Type, Span]]:
        types = self.types.schema_field_types(schema, key, self.diags)
        self.bind_schemas()
        return types

    def bind_schemas(self) -> None:
        """Give every schema the resolver has made since the last call its layers, in the
        order made. A schema's body is bound to its module's scope when the schema is
        first resolved (as the document of a module is made on first use), so the order
        in which modules get their scopes is the order in which their schemas were met."""
        made = self.types.schemas_made()
        while self._schemas_bound < len(made):
            s = made[self._schemas_bound]
            self._schemas_bound += 1
            self._bind_schema(s)

    def schema_layers(self, s: Schema) -> tuple[Layer, ...]:
        """The layers of a schema's objects: its ancestors' bodies, then its own."""
        layers = self._schema_layers.get(id(s))
        if layers is None:
            self.bind_schemas()
            layers = self._schema_layers.get(id(s))
            if layers is None:  # made by another resolver
                layers = self._bind_schema(s)
        return layers

    def _bind_schema(self, s: Schema) -> tuple[Layer, ...]:
        layers = self._schema_layers.get(id(s))
        if layers is not None:
            return layers
        base = self.schema_layers(s.parent) if s.parent is not None else ()
        layer = Layer(
            s.decl.body.stmts, self.module_scope(s.module), s.module, schema=s, site=s.decl.span
        )
        layers = self._schema_layers[id(s)] = (*base, layer)
        return layers

    # -- expressions ----------------------------------------------------------------------------

    def ev(self, e: ast.Expr, scope: Scope) -> Any:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self._out_of_steps(e.span)
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise err(
                    "E0502",
                    "evaluation is nested too deeply",
                    e.span,
                    label=f"more than {self.limits.max_depth} levels",
                )
            return _DISPATCH[type(e)](self, e, scope)
        except RecursionError:
            # The depth counter bounds nesting through `ev`; a cycle that recurses mostly
            # elsewhere (a template expanded inside its own body: object expansion, then
            # iteration, then a call) can reach Python's limit first. It unwinds to the
            # first `ev` with room to build the diagnostic.
            raise err(
                "E0502",
                "evaluation is nested too deeply",
                e.span,
                label="this recurses without end, or too deeply to evaluate",
            ) from None
        finally:
            self.depth -= 1

    def charge(self, n: int, span: Span | None) -> None:
        """Count `n` steps of work done in one go (a builtin or operator over a whole
        list or string), so that the step limit bounds them as it bounds `ev`."""
        self.steps += n
        if self.steps > self.limits.max_steps:
            raise self._out_of_steps(span)

    def _out_of_steps(self, span: Span | None) -> Exception:
        """The step budget is spent: the first time the error, after it a silent unwind.
        The budget stays spent for the rest of the evaluation, so the fields evaluated
        after the one that ran out (report and continue) cannot run without a limit."""
        if self.steps_reported:
            return _Propagate()
        self.steps_reported = True
        return err(
            "E0502",
            f"evaluation took more than {self.limits.max_steps} steps",
            span,
            label="stopped here",
        )

    def _literal(self, e: ast.Literal, scope: Scope) -> Any:
        return e.value

    def _str(self, e: ast.Str, scope: Scope) -> Any:
        if len(e.parts) == 1 and isinstance(e.parts[0], str):
            return e.parts[0]
        out: list[str] = []
        secret = False
        size = 0
        for p in e.parts:
            if isinstance(p, str):
                out.append(p)
                size += len(p)
                continue
            # `$<name>`, the usual substitution, skips the dispatch (its own evaluation of
            # the field still goes through `ev`, which counts steps and depth).
            v = self._name(p, scope) if p.__class__ is ast.Name else self.ev(p, scope)
            if v.__class__ is str:
                out.append(v)
                size += len(v)
                if size > self.limits.max_string:
                    raise err(
                        "E0502",
                        "string is too long",
                        e.span,
                        label=f"longer than {self.limits.max_string} characters",
                    )
                continue
            if v is BOTTOM:
                raise _Propagate()
            if v is ABSENT:
                raise err("E0201", "substituted field has no value", p.span)
            if isinstance(v, (tuple, Obj)):
                what = "a list" if isinstance(v, tuple) else "an object"
                raise err(
                    "E0302",
                    f"cannot substitute {what} into a string",
                    p.span,
                    label=f"this is {show(v)}",
                    help='substitute a scalar, or use `join(list, ", ")`',
                )
            if isinstance(v, Secret):
                secret = True
            text = render_scalar(v)
            size += len(text)
            if size > self.limits.max_string:
                raise err(
                    "E0502",
                    "string is too long",
                    e.span,
                    label=f"longer than {self.limits.max_string} characters",
                )
            out.append(text)
        if size >= 64:  # building a string is work too: it bounds their memory by steps
            self.charge(size >> 6, e.span)
        s = "".join(out)
        return Secret(s) if secret else s

    def _self(self, e: ast.SelfRef, scope: Scope) -> Any:
        s: Scope | None = scope
        while s is not None:
            if s.self_value is not ABSENT:
                return s.self_value
            if s.obj is not None:
                return s.obj
            s = s.parent
        raise err("E0201", "`self` is not inside an object", e.span)

    def _super(self, e: ast.SuperRef, scope: Scope) -> Any:
        s: Scope | None = scope
        while s is not None:
            if s.sup is not None:
                v = s.sup()
                if v is ABSENT:
                    raise err(
                        "E0208",
                        "`super` has no inherited value here",
                        e.span,
                        label="nothing was defined before this",
                    )
                if v is BOTTOM:
                    raise _Propagate()
                return v
            s = s.parent
        raise err("E0208", "`super` is only meaningful in a field definition", e.span)

    def _getattr(self, e: ast.GetAttr, scope: Scope) -> Any:
        base = self.ev(e.obj, scope)
        return self.attr(base, e.name, e.name_span)

    def _maybe_absent(self, expr: ast.Expr, scope: Scope) -> Any:
        """Evaluate ``expr``, giving null for a declared field that was never set."""
        if isinstance(expr, ast.GetAttr):
            base = self.ev(expr.obj, scope)
            if isinstance(base, Obj) and base.get(expr.name) is ABSENT and base.has(expr.name):
                return None
            return self.attr(base, expr.name, expr.name_span)
        return self.ev(expr, scope)

    def attr(self, base: Any, name: str, span: Span) -> Any:
        if base is BOTTOM:
            raise _Propagate()
        if isinstance(base, Obj):
            v = base.get(name)
            if v is ABSENT:
                if base.has(name) and self.is_optional_field(base, name):
                    return None  # an absent optional field reads as null
                if base.has(name):
                    raise err(
                        "E0201",
                        f"`{name}` has no value",
                        span,
                        label="this field is declared but never set",
                    )
                raise err(
                    "E0201",
                    f"no field `{name}`",
                    span,
                    label="not in this object",
                    help=_hint(name, base.keys()),
                )
            if v is BOTTOM:
                raise _Propagate()
            return v
        if isinstance(base, ModuleValue):
            m = base.info
            if name in m.lets:
                return self._let(self.module_scope(m), name)
            if name in m.templates:
                return TemplateValue(m.templates[name], m)
            if name in m.schemas or name in m.types:
                raise err("E0302", f"`{name}` is a type, not a value", span)
            doc = self.document(m)
            if doc.has(name):
                return self.attr(doc, name, span)
            raise err(
                "E0201",
                f"module `{m.source.path}` has no `{name}`",
                span,
                help=_hint(name, [*m.lets, *m.templates, *m.schemas, *m.types, *doc.keys()]),
            )
        raise err(
            "E0302", f"{kind_of(base)} has no fields", span, label=f"`.{name}` on {show(base)}"
        )

    def _getitem(self, e: ast.GetItem, scope: Scope) -> Any:
        base = self.ev(e.obj, scope)
        idx = self.ev(e.index, scope)
        if base is BOTTOM or idx is BOTTOM:
            raise _Propagate()
        if isinstance(base, tuple):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise err("E0302", f"list index must be an int, not {kind_of(idx)}", e.index.span)
            if not -len(base) <= idx < len(base):
                raise err(
                    "E0501",
                    f"index {idx} is out of range",
                    e.index.span,
                    label=f"the list has {len(base)} items",
                )
            return base[idx]
        if isinstance(base, Obj):
            if not isinstance(idx, str):
                raise err("E0302", f"object key must be a string, not {kind_of(idx)}", e.index.span)
            return self.attr(base, idx, e.index.span)
        if isinstance(base, str):
            if not isinstance(idx, int) or not -len(base) <= idx < len(base):
                raise err("E0501", "string index out of range", e.index.span)
            return base[idx]
        raise err("E0302", f"cannot index {kind_of(base)}", e.span)

    def _call(self, e: ast.Call, scope: Scope) -> Any:
        f = self.ev(e.func, scope)
        if isinstance(f, Builtin):
            if any(a.name is not None for a in e.args):
                raise err("E0207", f"`{f.name}` takes no named arguments", e.span)
            if f.name == "default" and e.args:
                # `default(obj.opt, x)`: an absent optional field reads as null here only.
                args = [
                    self._maybe_absent(e.args[0].value, scope),
                    *(self.ev(a.value, scope) for a in e.args[1:]),
                ]
            else:
                args = [self.ev(a.value, scope) for a in e.args]
            if any(a is BOTTOM for a in args):
                raise _Propagate()
            return call_builtin(self, f.name, args, e)
        if isinstance(f, TemplateValue):
            return self.instantiate(f, e, scope)
        raise err(
            "E0206",
            f"{kind_of(f)} is not callable",
            e.func.span,
            help="only builtins and templates can be called",
        )

    def instantiate(self, t: TemplateValue, e: ast.Call, scope: Scope) -> Obj:
        decl = t.decl
        params = {p.name: p for p in decl.params}
        values: dict[str, Any] = {}
        positional = [a for a in e.args if a.name is None]
        if len(positional) > len(decl.params):
            raise err(
                "E0207",
                f"`{decl.name}` takes {len(decl.params)} arguments, got {len(positional)}",
                e.span,
            )
        for p, a in zip(decl.params, positional, strict=False):
            values[p.name] = (self.ev(a.value, scope), a.value.span)
        for a in e.args:
            if a.name is None:
                continue
            if a.name not in params:
                raise err(
                    "E0207",
                    f"`{decl.name}` has no parameter `{a.name}`",
                    a.span,
                    help=_hint(a.name, params),
                )
            if a.name in values:
                raise err("E0207", f"parameter `{a.name}` is given twice", a.span)
            values[a.name] = (self.ev(a.value, scope), a.value.span)
        mscope = self.module_scope(t.module)
        vars: dict[str, Any] = {}
        for p in decl.params:
            if p.name in values:
                v, span = values[p.name]
            elif p.default is not None:
                v, span = self.ev(p.default, mscope), p.default.span
            else:
                raise err(
                    "E0207",
                    f"`{decl.name}` needs the parameter `{p.name}`",
                    e.span,
                    notes=(Note("the parameter is declared here", p.span),),
                )
            if v is BOTTOM:
                raise _Propagate()
            if p.type is not None:
                v = self.conform(v, self.resolve_type(p.type, t.module), span, p.span)
            vars[p.name] = v
        schema: Schema | None = None
        if decl.type is not None:
            schema = T.schema_of(self.resolve_type(decl.type, t.module))
        layer = Layer(decl.body.stmts, mscope, t.module, vars=vars, site=decl.span, decl=decl)
        base = self.schema_layers(schema) if schema is not None else ()
        return Obj(self, (*base, layer), schema, e.span)

    def _binary(self, e: ast.Binary, scope: Scope) -> Any:
        op = e.op
        if op == "&&" or op == "||":
            left = self.ev(e.left, scope)
            if left is BOTTOM:
                raise _Propagate()
            if not isinstance(left, bool):
                raise err(
                    "E0302",
                    f"`{op}` needs bool operands, found {kind_of(left)}",
                    e.left.span,
                    label=f"this is {show(left)}",
                )
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            right = self.ev(e.right, scope)
            if right is BOTTOM:
                raise _Propagate()
            if not isinstance(right, bool):
                raise err(
                    "E0302",
                    f"`{op}` needs bool operands, found {kind_of(right)}",
                    e.right.span,
                    label=f"this is {show(right)}",
                )
            return right
        left = self.ev(e.left, scope)
        right = self.ev(e.right, scope)
        if left is BOTTOM or right is BOTTOM:
            raise _Propagate()
        return binary(self, op, left, right, e)

    def _unary(self, e: ast.Unary, scope: Scope) -> Any:
        v = self.ev(e.operand, scope)
        if v is BOTTOM:
            raise _Propagate()
        if e.op == "!":
            if not isinstance(v, bool):
                raise err("E0302", f"`!` needs a bool, found {kind_of(v)}", e.operand.span)
            return not v
        if isinstance(v, bool) or not isinstance(v, (int, float, Duration, Size)):
            raise err("E0302", f"`{e.op}` needs a number, found {kind_of(v)}", e.operand.span)
        if e.op == "+":
            return v
        if isinstance(v, Duration):
            return Duration(-v.millis)
        if isinstance(v, Size):
            return Size(-v.bytes)
        if isinstance(v, int) and -v > INT_MAX:
            raise err("E0503", "integer overflow", e.span)
        return -v

    def _if(self, e: ast.IfExpr, scope: Scope) -> Any:
        c = self.ev(e.cond, scope)
        if c is BOTTOM:
            raise _Propagate()
        if not isinstance(c, bool):
            raise err("E0302", f"condition must be a bool, not {kind_of(c)}", e.cond.span)
        return self.ev(e.then if c else e.orelse, scope)

    def _list(self, e: ast.ListLit, scope: Scope) -> Any:
        self._check_size(len(e.items), e.span)
        return tuple(self.ev(x, scope) for x in e.items)

    def _check_size(self, n: int, span: Span) -> None:
        if n > self.limits.max_collection:
            raise err("E0502", f"collection has more than {self.limits.max_collection} items", span)

    def _comprehension(self, e: ast.Comprehension, scope: Scope) -> Any:
        out = []
        for k, v in self.iterate(e.iterable, scope, e.key_var is not None):
            vars = {e.var: v}
            if e.key_var is not None:
                vars[e.key_var] = k
            inner = scope.child(vars=vars, decl=e)
            if e.cond is not None:
                c = self.ev(e.cond, inner)
                if c is BOTTOM:
                    raise _Propagate()
                if not isinstance(c, bool):
                    raise err("E0302", f"condition must be a bool, not {kind_of(c)}", e.cond.span)
                if not c:
                    continue
            out.append(self.ev(e.elem, inner))
            self._check_size(len(out), e.span)
        return tuple(out)

    def _object(self, e: ast.ObjectLit, scope: Scope) -> Any:
        return Obj(
            self,
            (Layer(e.body.stmts, scope, scope.module, site=e.span, lets=self.body_lets(e.body)),),
            None,
            e.span,
        )

    def _refine(self, e: ast.Refine, scope: Scope) -> Any:
        base = self.ev(e.base, scope)
        if base is BOTTOM:
            raise _Propagate()
        if not isinstance(base, Obj):
            raise err(
                "E0302",
                f"only objects can be extended, not {kind_of(base)}",
                e.base.span,
                label=f"this is {show(base)}",
            )
        layer = Layer(
            e.body.stmts,
            scope,
            scope.module,
            site=e.body.span,
            boundary=True,
            lets=self.body_lets(e.body),
        )
        return Obj(self, (*base.layers, layer), base.schema, e.span)


_DISPATCH: dict[type, Callable[[Evaluator, Any, Scope], Any]] = {
    ast.Literal: Evaluator._literal,
    ast.Str: Evaluator._str,
    ast.Name: Evaluator._name,
    ast.OuterName: Evaluator._outer_name,
    ast.SelfRef: Evaluator._self,
    ast.SuperRef: Evaluator._super,
    ast.GetAttr: Evaluator._getattr,
    ast.GetItem: Evaluator._getitem,
    ast.Call: Evaluator._call,
    ast.Binary: Evaluator._binary,
    ast.Unary: Evaluator._unary,
    ast.IfExpr: Evaluator._if,
    ast.ListLit: Evaluator._list,
    ast.Comprehension: Evaluator._comprehension,
    ast.ObjectLit: Evaluator._object,
    ast.Refine: Evaluator._refine,
}


class ProfilingEvaluator(Evaluator):
    """An evaluator that records the self time of every field definition site."""

    def __init__(
        self,
        diags: Diagnostics,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> None:
        self.site_times: dict[tuple[str, int, str], float] = {}
        self._child: list[float] = [0.0]
        super().__init__(diags, limits, env, **kw)

    def field_value(self, obj: Obj, key: str, defs: list[Def]) -> Any:
        start = time.perf_counter()
        self._child.append(0.0)
        try:
            return super().field_value(obj, key, defs)
        finally:
            elapsed = time.perf_counter() - start
            child = self._child.pop()
            self._child[-1] += elapsed
            span = defs[-1].span
            site = (span.path, span.start_line_col()[0], key)
            self.site_times[site] = self.site_times.get(site, 0.0) + elapsed - child

    def slowest(self, n: int) -> list[tuple[float, str, str]]:
        ranked = sorted(self.site_times.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [(secs, f"{path}:{line}", key) for (path, line, key), secs in ranked]
