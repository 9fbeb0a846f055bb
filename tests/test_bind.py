"""The binder (`cfglang.semantic.bind`) agrees with the evaluator's own name lookup.

The golden check compiles every `.cfl` file under `examples/` and `tests/cases/` as an
entry with the evaluator's `_name` traced: each run-time lookup is classified the way
`Evaluator._name` and `_global` decide it, and must match the static binding of that
`ast.Name` (the same kind and declaration; a field in the object the binder names, or one
the binder lists as a possible late-bound interception). Then unit cases pin the
precedence rules one by one.
"""

from __future__ import annotations

import os
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cfglang import api
from cfglang.diagnostics import Diagnostics
from cfglang.eval import evaluate as E
from cfglang.eval.builtins import BUILTINS
from cfglang.semantic.bind import Binding, Bindings, bind
from cfglang.semantic.resolve import FileLoader, MemoryLoader, ModuleInfo, Resolver
from cfglang.syntax import ast

ROOT = Path(__file__).parent.parent
FILES = sorted([*(ROOT / "examples").rglob("*.cfl"), *(ROOT / "tests" / "cases").rglob("*.cfl")])

Resolved = tuple[str, Any]


def classify(ev: E.Evaluator, e: ast.Name, scope: E.Scope) -> Resolved:
    """What `Evaluator._name` will find for ``e`` (read-only: the same walk)."""
    name = e.name
    s: E.Scope | None = scope
    while s is not None:
        if name in s.vars:
            return ("param" if s.obj is not None else "for_var", None)
        if name in s.lets:
            return ("let", s.lets[name].name_span.key())
        obj = s.obj
        if obj is not None:
            defs = (obj._defs or {}) if obj._expanding else obj.defs()
            if name in defs:
                return ("field", frozenset(d.key_span.key() for d in defs[name]))
        s = s.parent
    for mod in scope.module.chain()[::-1]:
        if name in mod.imports:
            return ("import", mod.import_decls[name].span.key())
        if name in mod.templates:
            return ("template", mod.templates[name].name_span.key())
        if name in mod.inputs or name in ev.input_decls:
            return ("input", None)
    if name in ev.input_thunks:
        return ("input", None)
    if name in BUILTINS:
        return ("builtin", None)
    for mod in scope.module.chain()[::-1]:
        if name in mod.schemas or name in mod.types:
            return ("type", None)
    return ("unknown", None)


def agrees(b: Binding, got: Resolved) -> str:
    """``exact`` when a candidate of the static binding is what the run time found,
    ``late`` for a field the binder could not see but listed an object it could come
    from, else ``wrong``."""
    kind, what = got
    late = False
    for c in b.candidates():
        late = late or bool(c.late)
        if c.kind == "field":
            if kind == "field" and c.span is not None and c.span.key() in what:
                return "exact"
            if not c.conditional:
                break
            continue
        static_kind = "type" if c.kind == "schema" else c.kind
        if static_kind == kind and (what is None or (c.span is not None and c.span.key() == what)):
            return "exact"
        break
    return "late" if kind == "field" and late else "wrong"


def _case_options(path: Path) -> tuple[Path, dict[str, Any]]:
    for d in path.parents:
        if (d / "case.toml").is_file():
            return d, tomllib.loads((d / "case.toml").read_text())
        if (d / "main.cfl").is_file() or d.name in ("cases", "examples"):
            return d, {}
    return path.parent, {}


def traced_compile(
    path: Path,
) -> tuple[ModuleInfo | None, dict[tuple[str, int, int], set[Resolved]]]:
    seen: dict[tuple[str, int, int], set[Resolved]] = {}
    original = E.Evaluator._name

    def traced(self: E.Evaluator, e: ast.Name, scope: E.Scope) -> Any:
        seen.setdefault(e.span.key(), set()).add(classify(self, e, scope))
        return original(self, e, scope)

    case, opts = _case_options(path)
    cli_vars: list[tuple[str, str]] = []
    args = list(opts.get("args", []))
    while args:
        flag, value = args.pop(0), args.pop(0)
        if flag == "--var":
            n, _, v = value.partition("=")
            cli_vars.append((n, v))
    from cfglang import driver

    req = driver.BuildRequest(
        str(path),
        filename=str(path),
        cli_vars=cli_vars,
        env=opts.get("env", {}),
        root=str(case),
        limits=E.Limits(**opts["limits"]) if "limits" in opts else None,
    )
    # A program reused from an earlier build is evaluated all the same: every name is
    # still looked up through `_name`.
    E.Evaluator._name = traced  # type: ignore[method-assign]
    E._DISPATCH[ast.Name] = traced
    try:
        out = api._run_guarded(lambda: driver.run(req))
    finally:
        E.Evaluator._name = original  # type: ignore[method-assign]
        E._DISPATCH[ast.Name] = original
    return (out.entry if isinstance(out, driver.BuildResult) else None), seen


def _names(tree: ast.Module) -> Iterator[ast.Name]:
    from cfglang.lsp.model import walk

    for node in walk(tree):
        if isinstance(node, ast.Name):
            yield node


def test_bindings_agree_with_the_evaluator() -> None:
    counts = {"exact": 0, "late": 0, "wrong": 0, "unbound": 0}
    wrong: list[str] = []
    late: list[str] = []
    for path in FILES:
        entry, seen = traced_compile(path)
        if entry is None:
            continue
        table = bind(entry, builtins=BUILTINS)
        for key, results in seen.items():
            b = table.names.get(key)
            if b is None:
                counts["unbound"] += 1
                wrong.append(f"{key}: not bound, evaluator found {results}")
                continue
            for got in results:
                verdict = agrees(b, got)
                counts[verdict] += 1
                line = f"{path.relative_to(ROOT)} {key} `{b.name}`: {_show(b)}, run time: {got}"
                if verdict != "exact":
                    (late if verdict == "late" else wrong).append(line)
    print(counts, *late, sep="\n")
    assert not wrong, "\n".join(wrong[:40])
    assert counts["exact"] > 10 * counts["late"]


def _show(b: Binding) -> str:
    return " -> ".join(
        f"{c.kind}{'?' if c.conditional else ''}@{c.span.key() if c.span else None}"
        + (f" late={len(c.late)}" if c.late else "")
        for c in b.candidates()
    )


def test_every_name_of_every_file_is_bound() -> None:
    for path in FILES:
        res = Resolver(FileLoader(), str(ROOT), Diagnostics())
        entry = res.load_entry(str(path))
        if entry is None:
            continue
        table = bind(entry, builtins=BUILTINS)
        for m in res.modules.values():
            for node in _names(m.tree):
                if not _misplaced(m, node):
                    assert table.name(node) is not None, (m.source.path, node.span.key(), node.name)


def _misplaced(m: ModuleInfo, node: ast.Name) -> bool:
    """Whether ``node`` is inside a declaration the resolver rejects (E0009): never
    evaluated, so never bound."""
    from cfglang.lsp.model import node_path

    top_only = (ast.InputDecl, ast.TypeDecl, ast.SchemaDecl, ast.TemplateDecl, ast.OutputDecl)
    chain = node_path(m.tree, node.span.start)
    return any(isinstance(n, top_only) for n in chain[3:])


# ---- precedence, rule by rule ------------------------------------------------------------------


def bound(files: dict[str, str], entry: str = "main.cfl") -> tuple[Bindings, dict[str, ModuleInfo]]:
    root = "/proj"
    loader = MemoryLoader({os.path.join(root, k): textwrap.dedent(v) for k, v in files.items()})
    res = Resolver(loader, root, Diagnostics())
    m = res.load_entry(os.path.join(root, entry))
    assert m is not None
    return bind(m, builtins=BUILTINS), {os.path.basename(k): v for k, v in res.modules.items()}


def at(
    table: Bindings, mods: dict[str, ModuleInfo], file: str, needle: str, nth: int = 0
) -> Binding:
    m = mods[file]
    text = m.source.text
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    for node in _names(m.tree):
        if node.span.start == i:
            b = table.name(node)
            assert b is not None
            return b
    raise AssertionError(f"no name at {needle!r}")


def test_params_shadow_the_template_body_fields() -> None:
    t, mods = bound({"main.cfl": "template T(name) {\n  name = name\n  x = name\n}\na = T(1)\n"})
    b = at(t, mods, "main.cfl", "name\n  x")
    assert b.kind == "param" and isinstance(b.decl, ast.Param)


def test_for_variable_before_the_for_body_lets_and_fields() -> None:
    src = 'xs = [1]\nfor x in xs {\n  let x2 = x\n  "k$<x>" = x2\n}\n'
    t, mods = bound({"main.cfl": src})
    assert at(t, mods, "main.cfl", "x\n").kind == "for_var"
    assert at(t, mods, "main.cfl", "x2\n").kind == "let"
    assert at(t, mods, "main.cfl", "xs {").kind == "field"


def test_a_field_beats_an_import_of_the_same_name() -> None:
    t, mods = bound(
        {"main.cfl": 'import "lib.cfl" as lib\nlib = 1\nx = lib\n', "lib.cfl": "a = 1\n"}
    )
    b = at(t, mods, "main.cfl", "lib\n", 1)
    assert b.kind == "field" and b.obj is not None and b.obj.kind == "document"


def test_base_lets_are_not_visible_in_the_child() -> None:
    t, mods = bound(
        {"main.cfl": 'extends "base.cfl"\nx = port\n', "base.cfl": "let port = 1\ny = port\n"}
    )
    assert at(t, mods, "main.cfl", "port").kind == "unknown"
    assert at(t, mods, "base.cfl", "port\n").kind == "let"


def test_fields_of_the_whole_chain_and_late_fields() -> None:
    t, mods = bound(
        {
            "main.cfl": 'extends "base.cfl"\nport = 2\nsrv { url = "$<host>:$<port>" }\n',
            "base.cfl": 'host = "h"\n',
        }
    )
    host = at(t, mods, "main.cfl", "host")
    assert host.kind == "field" and host.module is mods["base.cfl"]
    # Looked up in `srv` first: a field `srv.host` from elsewhere would win.
    assert host.late and host.late[0].kind == "block"


def test_imports_templates_inputs_child_first_then_builtins_then_types() -> None:
    t, mods = bound(
        {
            "main.cfl": 'extends "base.cfl"\ninput len = 1\nschema S {}\n'
            'a = len\nb = upper("x")\nc = S\n',
            "base.cfl": "template len() {}\n",
        }
    )
    assert at(t, mods, "main.cfl", "len\n").kind == "input"
    assert at(t, mods, "main.cfl", "upper").kind == "builtin"
    assert at(t, mods, "main.cfl", "S\n").kind == "schema"
    assert at(t, mods, "main.cfl", "S\n").exact is False  # a document field could be `S`


def test_entry_inputs_are_seen_from_imported_modules() -> None:
    t, mods = bound(
        {
            "main.cfl": 'import "lib.cfl" as lib\ninput region = "eu"\nx = lib.r\n',
            "lib.cfl": "r = region\n",
        }
    )
    b = at(t, mods, "lib.cfl", "region")
    assert b.kind == "input" and b.module is mods["main.cfl"]


def test_expansion_sees_only_earlier_fields() -> None:
    t, mods = bound({"main.cfl": "if on { a = 1 }\non = true\nif on { b = 1 }\n"})
    first = at(t, mods, "main.cfl", "on")
    assert first.kind == "unknown" and first.late
    assert at(t, mods, "main.cfl", "on {", 1).kind == "field"


def test_dotted_paths_look_in_each_step() -> None:
    t, mods = bound({"main.cfl": "a.port = 1\na.b = port\n"})
    b = at(t, mods, "main.cfl", "port\n")
    assert b.kind == "field" and b.decl.path[-1].name == "port"


def test_conditional_field_falls_back() -> None:
    t, mods = bound({"main.cfl": "let v = 1\nsrv {\n  if false { v = 2 }\n  x = v\n}\n"})
    b = at(t, mods, "main.cfl", "v\n}")
    assert b.kind == "field" and b.conditional and b.fallback is not None
    assert b.fallback.kind == "let"


def test_where_and_template_defaults_see_the_module_level() -> None:
    src = (
        "let lo = 1\ntemplate T(p = lo) { let lo = 5\n q = p }\n"
        "srv {\n  let lo = 9\n  n: int = 3 where self > lo\n}\n"
    )
    t, mods = bound({"main.cfl": src})
    assert at(t, mods, "main.cfl", "lo)").decl.name_span.start == 4
    w = at(t, mods, "main.cfl", "lo\n}")
    assert w.kind == "let" and w.span is not None and w.span.start == 4


def test_types_and_members() -> None:
    t, mods = bound(
        {
            "main.cfl": 'import "net.cfl" as net\nport: net.Port = 1\nx = net.Web(1)\n',
            "net.cfl": "type Port = int\ntemplate Web(p) {}\n",
        }
    )
    m = mods["main.cfl"]
    named = [n for n in _walk(m.tree) if isinstance(n, ast.NamedType)]
    b = t.type(named[0])
    assert b is not None and b.kind == "type" and b.via is not None and b.via.kind == "import"
    call = next(n for n in _walk(m.tree) if isinstance(n, ast.GetAttr))
    mb = t.member(call)
    assert mb is not None and mb.kind == "template"


def _walk(tree: ast.Module) -> Iterator[Any]:
    from cfglang.lsp.model import walk

    return walk(tree)


def test_the_table_is_immutable() -> None:
    t, _ = bound({"main.cfl": "let a = 1\nb = a\n"})
    b = next(iter(t.names.values()))
    with pytest.raises(AttributeError):
        b.kind = "input"  # type: ignore[misc]
