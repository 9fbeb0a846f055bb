"""The semantic layer never depends on evaluation (issue 13): types, schemas and static
checks are known from the syntax alone.

Every import statement of `cfglang/semantic/*.py` is read from the syntax tree, wherever
it is (module level, under `TYPE_CHECKING`, inside a function), relative ones resolved.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SEMANTIC = Path(__file__).resolve().parent.parent / "cfglang" / "semantic"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file at ``path``."""
    package = ["cfglang", "semantic"]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from cfglang import eval` names the package in the imported names.
            out.extend((node.lineno, f"{name}.{a.name}") for a in node.names)
    return out


def _is_eval(name: str) -> bool:
    return name == "cfglang.eval" or name.startswith("cfglang.eval.")


def test_semantic_never_imports_eval() -> None:
    files = sorted(SEMANTIC.glob("*.py"))
    assert files
    found = [
        f"{path.name}:{line}: {name}"
        for path in files
        for line, name in imported_modules(path)
        if _is_eval(name)
    ]
    assert found == []


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import cfglang.eval.values\n"
        "from ..eval import evaluate\n"
        "from cfglang import eval\n"
        "if TYPE_CHECKING:\n"
        "    from cfglang.eval.evaluate import Evaluator\n"
        "def f():\n"
        "    from cfglang.eval.constraints import materialize\n",
        encoding="utf-8",
    )
    names = {n for _, n in imported_modules(src) if _is_eval(n)}
    assert names == {
        "cfglang.eval",
        "cfglang.eval.values",
        "cfglang.eval.evaluate",
        "cfglang.eval.evaluate.Evaluator",
        "cfglang.eval.constraints",
        "cfglang.eval.constraints.materialize",
    }


def test_importing_the_semantic_layer_loads_no_evaluator() -> None:
    code = (
        "import sys\n"
        "import cfglang.semantic.resolve, cfglang.semantic.types, cfglang.semantic.typecheck\n"
        "print(sorted(m for m in sys.modules if m.startswith('cfglang.eval')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
