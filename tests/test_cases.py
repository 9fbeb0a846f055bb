"""Golden cases: tests/cases/<area>/<name>/.

Each case directory holds `main.cfl` (plus any modules it imports) and optionally
`case.toml`:

    args = ["--var", "region=eu"]   # --var NAME=VALUE pairs, as on the command line
    format = "yaml"                 # output format of the document (default json)
    env = { API_TOKEN = "x" }       # the environment the compile sees
    expr = "services.a"             # evaluate an expression instead (like `cflc eval`)
    limits = { max_steps = 1000 }   # evaluation limits (cfl.toml's [limits]), else defaults

Expected results sit beside it: `expected.out` (the emitted document, or for `expr` the
JSON value) and `expected.err` (diagnostics rendered exactly as `cflc` prints them,
paths relative to the case). A case with errors has no `expected.out`; named outputs are
compared as `expected.outputs/<name>`. `pytest --update-goldens` rewrites them all.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from cfglang.api import compile
from cfglang.diagnostics import Diagnostic, render_human
from cfglang.emit import EmitError, emit
from cfglang.eval.constraints import dotted
from cfglang.eval.evaluate import Limits
from cfglang.values import redact

CASES = Path(__file__).parent / "cases"
ALL = sorted(p.parent for p in CASES.glob("*/*/main.cfl"))


def run_case(case: Path) -> dict[str, str]:
    opts = {}
    if (case / "case.toml").is_file():
        opts = tomllib.loads((case / "case.toml").read_text())
    args = list(opts.get("args", []))
    cli_vars = []
    var_files = []
    while args:
        flag, value = args.pop(0), args.pop(0)
        if flag == "--var":
            name, _, v = value.partition("=")
            cli_vars.append((name, v))
        elif flag == "--vars":
            var_files.append(str(case / value))
    result = compile(
        str(case / "main.cfl"),
        cli_vars=cli_vars,
        var_files=var_files,
        env=opts.get("env", {}),
        root=str(case),
        expr=opts.get("expr"),
        limits=Limits(**opts["limits"]) if "limits" in opts else None,
    )
    got: dict[str, str] = {}
    err = "".join(render_human(d) for d in result.diagnostics)
    if err:
        got["expected.err"] = err
    if result.ok and result.data is not None:
        if "expr" in opts:
            got["expected.out"] = (
                json.dumps(redact(result.data["value"]), indent=2, ensure_ascii=False, default=str)
                + "\n"
            )
        else:
            fmt = opts.get("format", "json")
            try:
                got["expected.out"] = emit(result.data, fmt)
            except EmitError as e:  # rendered as `cflc build -f FMT` reports it
                got["expected.err"] = render_human(
                    Diagnostic(
                        "E0601",
                        f"cannot write {fmt}: {e.message} (at `{dotted(e.path)}` in main.cfl)",
                    )
                )
        for o in result.outputs:
            got[f"expected.outputs/{o.name}"] = o.text
    return got


@pytest.mark.parametrize("case", ALL, ids=[f"{p.parent.name}/{p.name}" for p in ALL])
def test_case(case: Path, update_goldens: bool) -> None:
    got = run_case(case)
    # expected.out, expected.err and every file under expected.outputs/
    expected_files = [
        p
        for p in case.rglob("*")
        if p.is_file() and p.relative_to(case).parts[0].startswith("expected")
    ]
    if update_goldens:
        for p in expected_files:
            p.unlink()
        for name, text in got.items():
            (case / name).parent.mkdir(parents=True, exist_ok=True)
            (case / name).write_text(text)
        return
    want = {str(p.relative_to(case)).replace(os.sep, "/"): p.read_text() for p in expected_files}
    assert want, f"{case} has no expected files; run pytest --update-goldens"
    assert got == want


def test_enough_cases() -> None:
    assert len(ALL) >= 1
