"""The architecture, enforced: which part of cfglang may import which (docs/architecture.md).

Every import statement of every module under `cfglang/` is read from the syntax tree,
wherever it is (module level, under `TYPE_CHECKING`, inside a function), relative ones
resolved. Each module belongs to one *unit* (a package such as `cfglang.semantic`, or a
top-level module such as `cfglang.api`), and each unit to one layer. An import may only
point to the same layer or one below; within a layer, the units import each other without
a cycle. Function-local imports are allowed where start-up time needs them (or for an
optional dependency), and each says why in a comment.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cfglang"

# Lowest first. A unit may import units of its own layer (without cycles) and of any layer
# below; never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    # what every phase shares: text and spans, messages, plain values, files, settings
    (
        "source",
        "diagnostics",
        "values",
        "paths",
        "atomic",
        "limits",
        "project",
        "vcs",
        "datapath",  # the one parser and printer of data paths
        "datacheck",  # what data read from JSON/YAML/TOML must satisfy
        "config",  # `Config` and `ConfigError`, handed out by the api and live
        "worker",  # the shared big-stack pool compiles run on
    ),
    ("syntax",),  # text -> tokens -> frozen AST
    ("cache", "secrets"),  # content-keyed parse cache; the encrypted-value format and keys
    ("semantic",),  # module graph, bindings, types, static checks, the Program
    ("eval", "emit"),  # (Program, inputs, secrets) -> values; values -> text
    ("driver",),  # runs the phases in order
    # clients of the driver: deps, diff, fmt, explain, ...; the build steps every front end
    # shares (console: targets, rendering, writing results); the Pygments lexer
    ("tools", "console", "pygments_lexer"),
    ("api", "live"),  # the public facade (`cfglang.api`, `cfglang.live`)
    ("server",),  # the configuration server (`cflc serve`): a client of the api
    ("cli", "commands", "lsp"),  # the thin front ends
)

# Words that make a comment a reason for a function-local import.
REASONS = ("start-up", "startup", "optional", "lazy", "only when", "only for", "heavy")
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
FRONT_ENDS = frozenset(LAYERS[-1])


@attrs.frozen
class Import:
    path: Path
    line: int
    module: str  # absolute, e.g. "cfglang.eval.evaluate"
    local: bool  # inside a function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    local: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            # `from cfglang import api` names a module among the imported names.
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for name in names:
            yield Import(path, node.lineno, name, id(node) in local)


def unit(module: str) -> str | None:
    """The unit of a `cfglang` module; None for the package itself and for names that
    are not modules (`cfglang.__version__`)."""
    parts = module.split(".")
    if parts[0] != "cfglang" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def edges() -> list[tuple[str, str, Import]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = unit(module_name(path))
        if src is None:
            continue  # cfglang/__init__.py: the lazy public names, resolved on first use
        for imp in imports(path):
            dst = unit(imp.module)
            if dst is not None and dst != src:
                out.append((src, dst, imp))
    return out


def where(imp: Import) -> str:
    return f"{imp.path.relative_to(PACKAGE.parent)}:{imp.line}: {imp.module}"


def test_every_module_has_a_layer() -> None:
    units = {unit(module_name(p)) for p in PACKAGE.rglob("*.py")}
    named = {module_name(p).split(".")[1] for p in PACKAGE.rglob("*.py") if p.stem != "__init__"}
    missing = sorted(
        n for n in named if n not in RANK and n not in ("py",) and (PACKAGE / f"{n}.py").exists()
    )
    assert missing == [], f"give these modules a layer in LAYERS: {missing}"
    assert None in units or units


def test_no_import_points_upwards() -> None:
    upwards = [
        f"{where(imp)} ({src} may not import {dst})"
        for src, dst, imp in edges()
        if RANK[dst] > RANK[src]
    ]
    assert upwards == []


def test_no_cycles_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges():
        graph.setdefault(src, set()).add(dst)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cycles.append([*stack[stack.index(v) :], v])
            elif v not in state:
                visit(v, [*stack, v])
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u, [u])
    assert cycles == []


@pytest.mark.parametrize(
    ("src", "dst"),
    [("semantic", "eval"), ("secrets", "api"), ("secrets", "driver"), ("syntax", "cache")],
)
def test_named_rules(src: str, dst: str) -> None:
    # The issue's own rules, stated on their own so a change to LAYERS cannot drop them.
    found = [where(imp) for s, d, imp in edges() if s == src and d == dst]
    assert found == []


def test_nothing_below_the_front_ends_imports_them() -> None:
    found = [where(imp) for src, dst, imp in edges() if dst in FRONT_ENDS and src not in FRONT_ENDS]
    assert found == []


def local_import_blocks(path: Path) -> Iterator[tuple[int, int]]:
    """(first line, last line) of each run of consecutive import statements in a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        bodies = [n.body for n in ast.walk(fn) if hasattr(n, "body") and isinstance(n.body, list)]
        bodies += [n.orelse for n in ast.walk(fn) if isinstance(getattr(n, "orelse", None), list)]
        bodies += [h.body for n in ast.walk(fn) if isinstance(n, ast.Try) for h in n.handlers]
        for body in bodies:
            run: list[ast.stmt] = []
            for stmt in [*body, None]:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    run.append(stmt)
                    continue
                if run:
                    yield run[0].lineno, run[-1].end_lineno or run[-1].lineno
                run = []


def test_function_local_imports_say_why() -> None:
    # One comment serves a run of imports that share the reason: on the line above the
    # run, or on one of its lines.
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for first, last in sorted(set(local_import_blocks(path))):
            text = " ".join(lines[first - 2 : last]).lower()
            if "#" not in text or not any(r in text for r in REASONS):
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{first}")
    assert silent == []


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "cfglang" / "semantic"
    pkg.mkdir(parents=True)
    src = pkg / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import cfglang.eval.values\n"
        "from ..eval import evaluate\n"
        "from cfglang import eval\n"
        "if TYPE_CHECKING:\n"
        "    from cfglang.eval.evaluate import Evaluator\n"
        "def f():\n"
        "    from cfglang.api import compile\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "cfglang"
    try:
        found = [(i.line, i.module, i.local) for i in imports(src)]
    finally:
        PACKAGE = saved
    assert (2, "cfglang.eval.values", False) in found
    assert (3, "cfglang.eval", False) in found
    assert (4, "cfglang.eval", False) in found
    assert (6, "cfglang.eval.evaluate", False) in found
    assert (8, "cfglang.api", True) in found
