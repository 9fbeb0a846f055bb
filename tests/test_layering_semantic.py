"""The semantic layer never depends on evaluation (issue 13), checked at run time.

`tests/test_layering.py` reads every import statement and forbids `semantic` importing
`eval`; this test loads the semantic modules in a fresh interpreter and checks that no
evaluator module came with them (an import through some other module would show here).
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_semantic_layer_loads_no_evaluator() -> None:
    code = (
        "import sys\n"
        "import cfglang.semantic.resolve, cfglang.semantic.types, cfglang.semantic.typecheck\n"
        "import cfglang.semantic.bind, cfglang.semantic.program\n"
        "print(sorted(m for m in sys.modules if m.startswith('cfglang.eval')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
