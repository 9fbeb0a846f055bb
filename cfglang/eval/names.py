"""Name lookup: what a bare name, `outer.name` or an input means where it is read.

A mixin of `cfglang.eval.evaluate.Evaluator`. A name is looked up through the `Scope`
chain (innermost first: variables, the body's lets, the object's fields, then enclosing
bodies), then the module's globals along its extends chain (imports, templates, inputs),
then the builtins; the binder (`cfglang.semantic.bind`) works out the same answer
statically. Also here: the shadowing warning (W0802), inputs read from the document, and
the messages of unknown names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Diagnostics, Note, did_you_mean
from cfglang.eval.builtins import BUILTINS
from cfglang.eval.conform import FromText
from cfglang.eval.errors import EvalError, _Propagate, err
from cfglang.eval.objects import Builtin, ModuleValue, Obj, Scope, TemplateValue
from cfglang.eval.values import ABSENT, BOTTOM
from cfglang.semantic import types as T
from cfglang.semantic.resolve import ModuleInfo
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.syntax.build import OUTER

# A field whose value is being computed (a re-entry is a reference cycle).
_IN_PROGRESS = object()
# In a scope's variables: this name is read past the field's own object (`own_scope`).
_OUTER = object()
_NOT_FOUND = object()


class Lookup:
    """Name lookup, as methods of the `Evaluator`."""

    if TYPE_CHECKING:
        # What the evaluator provides.
        diags: Diagnostics
        env: Mapping[str, str]
        env_read: dict[str, str | None]
        main_doc: Obj | None
        doc_entries: dict[int, ModuleInfo]
        doc_inputs: dict[tuple[int, str], Any]
        inputs: dict[str, Any]
        input_thunks: dict[str, Callable[[], Any]]
        input_decls: dict[str, ast.InputDecl]
        _shadow_seen: set[int]
        _quiet_checks: set[int]

        def ev(self, e: ast.Expr, scope: Scope) -> Any: ...
        def resolve_type(self, texpr: ast.TypeExpr, module: ModuleInfo) -> T.Type: ...
        def conform(
            self,
            v: Any,
            t: T.Type,
            span: Span,
            decl_span: Span | None,
            from_text: FromText = False,
            expr: ast.Expr | None = None,
        ) -> Any: ...

    def _name(self, e: ast.Name, scope: Scope) -> Any:
        # `_lookup` from ``scope``, written out: the hottest path of an evaluation.
        name = e.name
        s: Scope | None = scope
        while s is not None:
            if name in s.vars:
                v = s.vars[name]
                if v is _OUTER:
                    return self._own_name(e, s, scope)
                return v
            if name in s.lets:
                return self._let(s, name)
            obj = s.obj
            if obj is not None:
                if obj._expanding:
                    defs = obj._defs or {}
                    if name in defs:
                        if id(e) not in self._shadow_seen:
                            self._shadowing(e, s, obj, scope)
                        return self._value_or_missing(obj, name, e.span)
                else:
                    known = obj._defs
                    if known is None:
                        known = obj.defs()
                    if name in known:
                        if id(e) not in self._shadow_seen:
                            self._shadowing(e, s, obj, scope)
                        v = obj._values.get(name, ABSENT)
                        if v is ABSENT:
                            return self._value_or_missing(obj, name, e.span)
                        return v
            s = s.parent
        return self._global(name, scope.module, e.span, scope)

    def _lookup(self, e: ast.Name, start: Scope | None, scope: Scope) -> Any:
        """``e`` looked up from ``start`` outwards (``scope``: where it is read)."""
        name = e.name
        s = start
        while s is not None:
            if name in s.vars:
                v = s.vars[name]
                if v is _OUTER:
                    return self._own_name(e, s, scope)
                return v
            if name in s.lets:
                return self._let(s, name)
            obj = s.obj
            if obj is not None:
                if obj._expanding:
                    defs = obj._defs or {}
                    if name in defs:
                        if id(e) not in self._shadow_seen:
                            self._shadowing(e, s, obj, scope)
                        return self._value_or_missing(obj, name, e.span)
                else:
                    known = obj._defs
                    if known is None:
                        known = obj.defs()
                    if name in known:
                        if id(e) not in self._shadow_seen:
                            self._shadowing(e, s, obj, scope)
                        v = obj._values.get(name, ABSENT)
                        if v is ABSENT:
                            return self._value_or_missing(obj, name, e.span)
                        return v
            s = s.parent
        return self._global(name, scope.module, e.span, scope)

    def _own_name(self, e: ast.Name, marker: Scope, scope: Scope) -> Any:
        """The bare `key` in the value of field `key` (``marker``: its `own_scope`): the
        binding the field hides, or, if there is none, the field itself (a cycle,
        reported with its help) (docs/language.md §3.6)."""
        v = self._outer(e, marker.parent, scope, implicit=True)
        if v is _NOT_FOUND:
            return self._lookup(e, marker.parent, scope)
        return v

    def _outer_name(self, e: ast.OuterName, scope: Scope) -> Any:
        return self._outer(e, scope, scope, implicit=False)

    def _outer(self, e: ast.Name, start: Scope | None, scope: Scope, implicit: bool) -> Any:
        """``e`` looked up from ``start`` outwards past the fields of the first object on
        the way (the current object): `outer.name`, or a field's own key in its value.
        ``implicit`` (the latter): `_NOT_FOUND` when nothing but the field has the name."""
        name = e.name
        s = start
        skipped: Obj | None = None
        while s is not None:
            if name in s.vars and s.vars[name] is not _OUTER:
                return s.vars[name]
            if name in s.lets:
                return self._let(s, name)
            obj = s.obj
            if obj is not None:
                if skipped is None:
                    skipped = obj
                else:
                    # As `_lookup`, without W0802: this name was written to reach past
                    # the current object, and it found the nearest binding there.
                    known = (obj._defs or {}) if obj._expanding else obj.defs()
                    if name in known:
                        return self._value_or_missing(obj, name, e.span)
            s = s.parent
        module = scope.module
        if not self._global_exists(name, module):
            if implicit:
                return _NOT_FOUND
            has = skipped is not None and not skipped._expanding and skipped.has(name)
            hint: str | None
            if has:
                hint = f"`{name}` is a field of this object: write `self.{name}`"
            elif any(OUTER in m.imports for m in module.chain()):
                hint = "`outer.` names an enclosing binding; import the module `as` another name"
            else:
                hint = _hint(name, self._visible(scope, module))
            raise err(
                "E0201",
                f"nothing outside this object is called `{name}`",
                e.span,
                label="`outer.` skips the fields of the current object",
                help=hint,
            )
        return self._global(name, module, e.span, scope)

    def _global_exists(self, name: str, module: ModuleInfo) -> bool:
        """Whether `_global` finds a value for ``name`` (not a type, not unknown)."""
        for mod in module.chain():
            if name in mod.imports or name in mod.templates or name in mod.inputs:
                return True
        return name in self.input_decls or name in self.input_thunks or name in BUILTINS

    def _shadowing(self, e: ast.Name, at: Scope, obj: Obj, scope: Scope) -> None:
        """W0802 (once per name in the source) when ``e``, read in ``scope``, finds the
        field of ``obj`` (the object of scope ``at``) while an enclosing parameter, `for`
        variable, let or input of the same name exists: the field silently captured it
        (docs/language.md §3.6)."""
        self._shadow_seen.add(id(e))
        name = e.name
        defs = (obj._defs or {}).get(name)
        if not defs:
            return
        top = defs[-1]
        x = top.expr
        if top.own and isinstance(x, ast.Name) and x.name == name:
            return  # `name = name`: the field is a copy of what it hides
        # `outer.name` skips the fields of the first object from ``scope`` on: it reaches
        # the hidden binding if that object is ``obj`` and no object between has the field.
        first: Scope | None = scope
        while first is not None and first.obj is None:
            first = first.parent
        reach = first is at
        hidden: tuple[str, Span | None] | None = None
        s = at.parent
        while s is not None and hidden is None:
            if name in s.vars and s.vars[name] is not _OUTER:
                hidden = self._var_site(s, name)
            elif name in s.lets:
                hidden = ("let", s.lets[name].name_span)
            elif s.obj is not None and name in (s.obj._defs or {}):
                reach = False
            s = s.parent
        if hidden is None:
            for mod in at.module.chain()[::-1]:
                d = mod.inputs.get(name)
                if d is not None:
                    hidden = ("input", d.name_span)
                    break
            else:
                if name in self.input_decls:
                    hidden = ("input", None)
        if hidden is None:
            return
        what, site = hidden
        notes = [Note(f"the field `{name}` is set here", top.key_span)]
        if site is not None:
            notes.append(Note(f"the {what} `{name}` is declared here", site))
        self.diags.warning(
            "W0802",
            f"`{name}` reads the field `{name}` of this object, not the {what} `{name}`",
            e.span,
            label=f"the field hides the {what}",
            notes=tuple(notes),
            help=(
                f"write `outer.{name}` for the {what}, or `self.{name}` for the field"
                if reach
                else f"write `self.{name}` for the field, or rename the field or the {what}"
            ),
        )

    def quiet_check(self, stmt: ast.CheckStmt) -> None:
        """No W0802 for the names of a `check`: it reads its object's fields by name on
        purpose (`check replicas <= 3 || env == "prod"` beside an input `env`)."""
        if id(stmt) in self._quiet_checks:
            return
        self._quiet_checks.add(id(stmt))
        stack: list[Any] = [stmt.expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name):
                self._shadow_seen.add(id(node))
            elif isinstance(node, tuple):
                stack += node
            elif not isinstance(node, ast.Body):  # a nested object's own fields: as usual
                for f in getattr(node.__class__, "__attrs_attrs__", ()):
                    if f.name != "span" and f.name != "name_span":
                        stack.append(getattr(node, f.name))

    def _var_site(self, s: Scope, name: str) -> tuple[str, Span | None]:
        decl = s.decl
        if isinstance(decl, ast.TemplateDecl):
            p = next((p for p in decl.params if p.name == name), None)
            return ("parameter", p.span if p is not None else decl.name_span)
        if isinstance(decl, (ast.ForStmt, ast.Comprehension)):
            return ("`for` variable", decl.span)
        return ("variable", None)

    def _value_or_missing(self, obj: Obj, name: str, span: Span) -> Any:
        v = obj.get(name)
        if v is ABSENT:
            if self.is_optional_field(obj, name):
                return None  # an absent optional field reads as null
            raise err(
                "E0201",
                f"`{name}` has no value",
                span,
                label="this field is declared but never set",
            )
        return v

    def is_optional_field(self, obj: Obj, name: str) -> bool:
        types = obj.field_type(name)
        return bool(types) and any(T.is_optional(t) for t, _ in types)

    def _let(self, s: Scope, name: str) -> Any:
        if name in s.let_cache:
            v = s.let_cache[name]
            if v is _IN_PROGRESS:
                decl = s.lets[name]
                raise err(
                    "E0205", f"reference cycle: let `{name}` depends on itself", decl.name_span
                )
            return v
        decl = s.lets[name]
        s.let_cache[name] = _IN_PROGRESS
        try:
            v = self.ev(decl.value, s)
            if decl.type is not None and v is not BOTTOM:
                v = self.conform(
                    v,
                    self.resolve_type(decl.type, s.module),
                    decl.value.span,
                    decl.type.span,
                    expr=decl.value,
                )
        except EvalError as ex:
            self.diags.add(ex.diag)
            v = BOTTOM
        except _Propagate:
            v = BOTTOM
        s.let_cache[name] = v
        return v

    def _global(self, name: str, module: ModuleInfo, span: Span, scope: Scope) -> Any:
        for mod in module.chain()[::-1]:
            if name in mod.imports:
                target = mod.imports[name]
                if target is None:
                    raise _Propagate()
                return ModuleValue(target)
            if name in mod.templates:
                return TemplateValue(mod.templates[name], mod)
            if name in mod.inputs or name in self.input_decls:
                root = scope
                while root.parent is not None:
                    root = root.parent
                doc = root.obj
                if doc is not None and doc is not self.main_doc and id(doc) in self.doc_entries:
                    return self.doc_input(doc, name, span)
                return self.input_value(name, span)
        if name in self.input_thunks:
            return self.input_value(name, span)
        if name in BUILTINS:
            return Builtin(name)
        for mod in module.chain()[::-1]:
            if name in mod.schemas or name in mod.types:
                raise err(
                    "E0302",
                    f"`{name}` is a type, not a value",
                    span,
                    help="types are used after `:` or in `schema ... extends`",
                )
        raise err(
            "E0201",
            f"unknown name `{name}`",
            span,
            label="not found in this scope",
            help=_hint(name, self._visible(scope, module)),
        )

    def _visible(self, scope: Scope, module: ModuleInfo) -> list[str]:
        names: list[str] = []
        s: Scope | None = scope
        while s is not None:
            names += list(s.vars) + list(s.lets)
            if s.obj is not None and not s.obj._expanding:
                names += s.obj.keys()
            s = s.parent
        for mod in module.chain():
            names += [*mod.imports, *mod.templates, *mod.inputs]
        return names

    def doc_input(self, doc: Obj, name: str, span: Span) -> Any:
        """An input of an imported module's document: its environment variable if it
        reads one, else the newest default along that module's extends chain."""
        key = (id(doc), name)
        if key in self.doc_inputs:
            v = self.doc_inputs[key]
            if v is _IN_PROGRESS:
                raise err("E0205", f"reference cycle: input `{name}` depends on itself", span)
            if v is BOTTOM:
                raise _Propagate()
            return v
        chain = [(m, m.inputs[name]) for m in self.doc_entries[id(doc)].chain() if name in m.inputs]
        if not chain:
            return self.input_value(name, span)
        self.doc_inputs[key] = _IN_PROGRESS
        base_mod, base = chain[0]
        typ = self.resolve_type(base.type, base_mod) if base.type is not None else None
        try:
            env_decl = next((d for _, d in reversed(chain) if d.env), None)
            value: Any
            if env_decl is not None and env_decl.env and env_decl.env in self.env:
                value = self.env[env_decl.env]
                self.env_read[env_decl.env] = value
                if typ is not None:
                    value = self.conform(value, typ, env_decl.span, None, from_text=True)
            else:
                mod, d = next(
                    ((m, d) for m, d in reversed(chain) if d.default is not None), (None, None)
                )
                if d is None or mod is None or d.default is None:
                    raise err(
                        "E0401",
                        f"input `{name}` of imported module "
                        f"`{chain[-1][0].source.path}` has no default",
                        span,
                        notes=(Note("declared here", base.name_span),),
                        help="give it a default; only the entry module's inputs can "
                        "be set with --var",
                    )
                value = self.ev(d.default, Scope(doc, mod, None, mod.lets))
                if typ is not None:
                    value = self.conform(value, typ, d.default.span, base.name_span)
        except (EvalError, _Propagate):
            self.doc_inputs[key] = BOTTOM
            raise
        self.doc_inputs[key] = value
        return value

    def input_value(self, name: str, span: Span) -> Any:
        if name in self.inputs:
            v = self.inputs[name]
        elif name in self.input_thunks:
            v = self.inputs[name] = _IN_PROGRESS
            try:
                v = self.input_thunks[name]()
            except EvalError as ex:
                self.diags.add(ex.diag)
                v = BOTTOM
            except _Propagate:
                v = BOTTOM
            self.inputs[name] = v
        else:
            raise err("E0201", f"unknown input `{name}`", span)
        if v is _IN_PROGRESS:
            raise err("E0205", f"reference cycle: input `{name}` depends on itself", span)
        if v is BOTTOM:
            raise _Propagate()
        return v


def _hint(name: str, candidates: Any) -> str | None:
    best = did_you_mean(name, candidates)
    return f"did you mean `{best}`?" if best else None
