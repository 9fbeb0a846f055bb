"""Python code generation: typed, frozen dataclasses for the schemas of a module.

Algorithm: starting from the schemas the module declares (or, when it declares none, the
schemas of the modules it imports), a depth-first walk over field types collects every
schema reachable from them, parents before children, so that `schema B extends A` can
become `class B(A)`. Each resolved type maps to an annotation and a converter: a small,
typed combinator (`_list_of(_int)`, `_optional(_nested(Database.from_dict))`) that
`from_dict` applies to the compiled data. Converters accept what `cfglang.load` hands
over (`Duration`, `Size`, `Secret`, lists) as well as plain JSON (canonical strings), so
a class can be built from `cfglang.load(path, as_=Cls)` or from a JSON file. The
generated module depends on the standard library and `cfglang.values` only, and is
`mypy --strict` clean.
"""

from __future__ import annotations

import json
import os

from cfglang.semantic import types as T
from cfglang.semantic.resolve import ModuleInfo
from cfglang.tools.jsonschema import Workspace, python_identifier, schema_fields

# Field names that would shadow a name the generated annotations use.
_RESERVED = frozenset(
    {
        "from_dict",
        "str",
        "int",
        "float",
        "bool",
        "datetime",
        "Any",
        "Mapping",
        "Literal",
        "Secret",
        "None",
        "tuple",
        "object",
    }
)

_RUNTIME = """
_T = TypeVar("_T")


def _field(data: Mapping[str, Any], key: str, owner: str,
           convert: Callable[[object], _T], *, optional: bool = False) -> _T:
    if key not in data and not optional:
        raise ValueError(f"{owner}: missing field `{key}`")
    try:
        return convert(data.get(key))
    except ValueError as e:
        # Name the field, so a nested mistake reads `Service.db: Database.pool: ...`.
        raise ValueError(f"{owner}.{key}: {e}") from None


def _fail(expected: str, value: object) -> ValueError:
    return ValueError(f"expected {expected}, got {type(value).__name__} {value!r}")


def _any(v: object) -> Any:
    return v


def _none(v: object) -> None:
    if v is not None:
        raise _fail("null", v)


def _bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    raise _fail("bool", v)


def _int(v: object) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _fail("int", v)


def _float(v: object) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise _fail("float", v)


def _str(v: object) -> str:
    if isinstance(v, str):
        return v
    raise _fail("string", v)


def _secret(v: object) -> Secret:
    # Kept wrapped so that repr() and logs of a config object never show the value.
    if isinstance(v, Secret):
        return v
    if isinstance(v, str):
        return Secret(v)
    raise _fail("secret", v)


def _duration(v: object) -> datetime.timedelta:
    if isinstance(v, datetime.timedelta):
        return v
    if isinstance(v, Duration):
        return v.to_timedelta()
    if isinstance(v, str):
        return parse_duration(v).to_timedelta()
    raise _fail("duration", v)


def _size(v: object) -> int:
    if isinstance(v, Size):
        return v.bytes
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        return parse_size(v).bytes
    raise _fail("size", v)


def _literal(*allowed: object) -> Callable[[object], Any]:
    def convert(v: object) -> Any:
        if any(v == a and type(v) is type(a) for a in allowed):
            return v
        raise _fail(" | ".join(repr(a) for a in allowed), v)
    return convert


def _list_of(item: Callable[[object], _T]) -> Callable[[object], tuple[_T, ...]]:
    def convert(v: object) -> tuple[_T, ...]:
        if isinstance(v, (list, tuple)):
            return tuple(item(x) for x in v)
        raise _fail("list", v)
    return convert


def _map_of(value: Callable[[object], _T]) -> Callable[[object], Mapping[str, _T]]:
    def convert(v: object) -> Mapping[str, _T]:
        if isinstance(v, Mapping):
            return {str(k): value(x) for k, x in v.items()}
        raise _fail("map", v)
    return convert


def _optional(inner: Callable[[object], _T]) -> Callable[[object], _T | None]:
    def convert(v: object) -> _T | None:
        return None if v is None else inner(v)
    return convert


def _union(*options: Callable[[object], object]) -> Callable[[object], Any]:
    def convert(v: object) -> Any:
        for option in options:
            try:
                return option(v)
            except (ValueError, TypeError):
                continue
        raise _fail("one of the union's types", v)
    return convert


def _nested(build: Callable[[Mapping[str, Any]], _T]) -> Callable[[object], _T]:
    def convert(v: object) -> _T:
        if isinstance(v, Mapping):
            return build(v)
        raise _fail("object", v)
    return convert
"""


class _Gen:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.order: list[T.Schema] = []  # parents first
        self.names: dict[int, str] = {}

    def visit(self, s: T.Schema) -> str:
        if id(s) in self.names:
            return self.names[id(s)]
        name: str = s.name
        taken = set(self.names.values())
        if name in taken:
            stem = os.path.splitext(os.path.basename(s.module.source.path))[0]
            name = "".join(p.capitalize() for p in stem.replace("-", "_").split("_")) + name
        base, n = name, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        self.names[id(s)] = name
        if s.parent is not None:
            self.visit(s.parent)
        self.order.append(s)
        for _key, f, module in schema_fields(s):
            if f.type is not None:
                self.walk(self.ws.types_of(module).resolve(f.type, module))
        return name

    def walk(self, t: T.Type) -> None:
        if isinstance(t, T.Alias):
            self.walk(t.target)
        elif isinstance(t, T.SchemaT):
            self.visit(t.schema)
        elif isinstance(t, T.ListT):
            self.walk(t.elem)
        elif isinstance(t, T.MapT):
            self.walk(t.value)
        elif isinstance(t, T.Opt):
            self.walk(t.inner)
        elif isinstance(t, T.UnionT):
            for o in t.options:
                self.walk(o)
        elif isinstance(t, T.Refined):
            self.walk(t.base)

    def hint(self, t: T.Type) -> tuple[str, str]:
        """(annotation, converter expression) of a type."""
        if isinstance(t, T.Alias):
            return self.hint(t.target)
        if isinstance(t, T.Refined):
            return self.hint(t.base)
        if isinstance(t, T.Prim):
            return {
                "bool": ("bool", "_bool"),
                "int": ("int", "_int"),
                "float": ("float", "_float"),
                "string": ("str", "_str"),
                "secret": ("Secret", "_secret"),
                "duration": ("datetime.timedelta", "_duration"),
                "size": ("int", "_size"),
                "null": ("None", "_none"),
            }.get(t.name, ("Any", "_any"))
        if isinstance(t, T.Lit):
            return self._literal([t.value])
        if isinstance(t, T.SchemaT):
            name = self.names[id(t.schema)]
            return name, f"_nested({name}.from_dict)"
        if isinstance(t, T.ListT):
            a, c = self.hint(t.elem)
            return f"tuple[{a}, ...]", f"_list_of({c})"
        if isinstance(t, T.MapT):
            a, c = self.hint(t.value)
            return f"Mapping[str, {a}]", f"_map_of({c})"
        if isinstance(t, T.Opt):
            a, c = self.hint(t.inner)
            return (
                a if a.endswith("| None") or a in ("None", "Any") else f"{a} | None",
                f"_optional({c})",
            )
        if isinstance(t, T.UnionT):
            opts = [T.strip_alias(o) for o in t.options]
            nullable = any(o == T.Prim("null") for o in opts)
            rest = [o for o in opts if o != T.Prim("null")]
            if rest and all(isinstance(o, T.Lit) for o in rest):
                a, c = self._literal([o.value for o in rest if isinstance(o, T.Lit)])
            elif len(rest) == 1:
                a, c = self.hint(rest[0])
            else:
                hints = [self.hint(o) for o in rest]
                anns = list(dict.fromkeys(h[0] for h in hints))
                a, c = " | ".join(anns), "_union(" + ", ".join(h[1] for h in hints) + ")"
            if nullable:
                return f"{a} | None", f"_optional({c})"
            return a, c
        return "Any", "_any"  # pragma: no cover

    @staticmethod
    def _literal(values: list[object]) -> tuple[str, str]:
        shown = ", ".join(_py_literal(v) for v in values)
        return f"Literal[{shown}]", f"_literal({shown})"

    def cls(self, s: T.Schema) -> list[str]:
        name = self.names[id(s)]
        parent = self.names[id(s.parent)] if s.parent is not None else None
        own = {id(st) for st in s.decl.body.stmts}
        out = [
            "",
            "",
            "@dataclass(frozen=True, kw_only=True)",
            f"class {name}({parent})" + ":" if parent else f"class {name}:",
        ]
        doc = s.decl.doc or f"Schema `{s.name}` of `{s.module.source.path}`."
        out.append(_docstring(doc, "    "))
        out.append("")
        used: set[str] = set()
        fields: list[tuple[str, str, str, bool]] = []  # (key, ident, converter, optional)
        body: list[str] = []
        for key, f, module in schema_fields(s):
            typ = self.ws.types_of(module).resolve(f.type, module) if f.type is not None else T.ANY
            ann, conv = self.hint(typ)
            ident = python_identifier(key)
            if ident in _RESERVED:
                ident += "_"
            while ident in used:
                ident += "_"
            used.add(ident)
            optional = T.is_optional(typ)
            fields.append((key, ident, conv, optional))
            if id(f) not in own and parent is not None:
                continue  # inherited: declared by the parent class
            if optional and not ann.endswith("| None") and ann not in ("Any", "None"):
                ann += " | None"
            body.append(f"    {ident}: {ann}" + (" = None" if optional else ""))
            if f.doc:
                body.append(_docstring(f.doc, "    "))
        out.extend(body)
        out += [
            "",
            "    @classmethod",
            f"    def from_dict(cls, data: Mapping[str, Any]) -> {name}:",
            '        """Build from compiled data (`cfglang.load(path, as_=...)`, JSON)."""',
            "        return cls(",
        ]
        for key, ident, conv, optional in fields:
            lit = json.dumps(key, ensure_ascii=False)
            opt = ", optional=True" if optional else ""
            out.append(f"            {ident}=_field(data, {lit}, {json.dumps(name)}, {conv}{opt}),")
        out.append("        )")
        return out


def _py_literal(v: object) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return repr(v)


def _docstring(text: str, indent: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.splitlines() or [""]
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    return "\n".join(
        [
            f'{indent}"""{lines[0]}',
            *(f"{indent}{x}" if x else "" for x in lines[1:]),
            f'{indent}"""',
        ]
    )


def root_schemas(ws: Workspace, m: ModuleInfo) -> list[T.Schema]:
    """Schemas generated for module ``m``: its own, else its imports'."""
    mods = [m]
    if not m.schemas:
        mods = [i for i in m.imports.values() if i is not None]
    out = []
    for mod in mods:
        for decl in mod.schemas.values():
            out.append(ws.types_of(mod).schema(decl, mod))
    return out


def generate(ws: Workspace, m: ModuleInfo) -> str:
    """The text of a Python module with one dataclass per schema reachable from ``m``."""
    gen = _Gen(ws)
    for s in root_schemas(ws, m):
        gen.visit(s)
    names = [gen.names[id(s)] for s in gen.order]
    head = [
        f'"""Typed classes for the schemas of `{m.source.path}`.',
        "",
        "Generated by `cflc codegen python`; do not edit. Rebuild with",
        f"`cflc codegen python {m.source.path} -o <this file>`. Load a configuration into a",
        "class with `cfglang.load(path, as_=Cls)` or `Cls.from_dict(data)`.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import datetime",
        "from collections.abc import Callable, Mapping",
        "from dataclasses import dataclass",
        "from typing import Any, Literal, TypeVar",
        "",
        "from cfglang.values import Duration, Secret, Size, parse_duration, parse_size",
        "",
        "__all__ = [" + ", ".join(json.dumps(n) for n in names) + "]",
    ]
    lines = head + _RUNTIME.rstrip("\n").split("\n")
    for s in gen.order:
        lines.extend(gen.cls(s))
    return "\n".join(lines) + "\n"
