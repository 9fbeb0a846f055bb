"""Secrecy propagation: a value computed from a secret is a secret, and no message, cache or
plain output holds its text (issue 12, "Secrets stay secret").

The property test calls every builtin of the table with arguments of which one is (or
holds) a secret; the CLI tests run the surfaces that print values on derived secrets.
Secrets here are written in plain text (`--allow-plaintext-secrets`): what is checked is
what the compiler does with a secret value, however it got one. Encrypted values (and
the masks `cflc check` computes for them) are in tests/test_secrets.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cfglang.api import compile
from cfglang.diagnostics import Diagnostics, render_human, render_json
from cfglang.eval.builtins import SIGNATURES
from cfglang.eval.evaluate import EvalError, Evaluator
from cfglang.eval.secrecy import SELECTORS, call_builtin
from cfglang.eval.values import show
from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.parser import parse_module
from cfglang.values import Duration, Secret, Size

SECRET = "Hunter2Qx-Zeta9Wq"
# Pieces a derived plain string would show: split on `-`, cases changed, a prefix.
PIECES = ("Hunter2Qx", "Zeta9Wq", "hunter2qx", "HUNTER2QX", "zeta9wq", "ZETA9WQ", "Hunter2")


def leaked(text: str) -> bool:
    return any(p in text for p in PIECES)


def _call_node() -> ast.Call:
    """A call with four argument spans, for the errors builtins raise."""
    tree, _ = parse_module(SourceFile("t.cfl", 'x = f("a", "b", "c", "d")\n'))
    assert tree is not None
    field = tree.body.stmts[0]
    assert isinstance(field, ast.Field) and isinstance(field.value, ast.Call)
    return field.value


CALL = _call_node()

texts = st.text(alphabet="aH-:2Q", max_size=4)
secrets = st.sampled_from([Secret(SECRET), Secret("-"), Secret(""), Secret("Q")])
# Strings and secrets are most of what is drawn: most builtins take strings, and a call
# that fails on its argument kinds checks less than one that runs.
scalars = st.one_of(
    texts,
    secrets,
    texts,
    st.just(Secret(SECRET)),
    st.integers(-3, 12),
    st.booleans(),
    st.none(),
    st.builds(Duration, st.integers(0, 5000)),
    st.builds(Size, st.integers(0, 5000)),
)
values = st.one_of(scalars, scalars, st.lists(scalars, max_size=4).map(tuple))


def _holds_secret(v: Any) -> bool:
    return isinstance(v, Secret) or (isinstance(v, tuple) and any(_holds_secret(x) for x in v))


@st.composite
def secret_args(draw: Any) -> list[Any]:
    args = draw(st.lists(values, min_size=0, max_size=3))
    if not any(_holds_secret(a) for a in args):
        at = draw(st.integers(0, len(args)))
        secret = Secret(SECRET)
        args.insert(at, draw(st.sampled_from([secret, (secret,), ("x", secret)])))
    return args


def _plain_strings(v: Any) -> list[str]:
    if v.__class__ is str:
        return [v]
    if isinstance(v, tuple):
        return [s for x in v for s in _plain_strings(x)]
    return []


@given(st.data())
def test_every_builtin_keeps_a_secret_argument_secret(data: st.DataObject) -> None:
    """For every builtin and arguments holding a secret: the result holds no plain string
    (a selector's may, but only one it was given), and an error never shows the text."""
    ev = Evaluator(Diagnostics())
    for name in sorted(SIGNATURES):
        args = data.draw(secret_args(), label=name)
        given_plain = {s for a in args for s in _plain_strings(a)}
        try:
            result = call_builtin(ev, name, list(args), CALL)
        except EvalError as e:
            rendered = render_json(e.diag) + render_human(e.diag) + repr(e.diag)
            assert SECRET not in rendered, (name, args, rendered)
            assert e.diag.code != "E0900"
            continue
        strings = _plain_strings(result)
        if name in SELECTORS:
            assert set(strings) <= given_plain, (name, args, result)
        else:
            assert not strings, (name, args, result)
        assert not isinstance(result, (int, float)) or name not in ("int", "float")
        assert SECRET not in show(result, limit=10_000)


# ---- the CLI -----------------------------------------------------------------------------------


CLI = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


DERIVED = f"""\
pw = secret("{SECRET}")
joined = join(["app", pw], ":")
replaced = replace(pw, "-", "/")
parts = split(pw, "-")
first = parts[0]
shout = upper(pw)
stringed = string(pw)
each = [lower(p) for p in parts]
glued = "app:$<pw>"
summed = "app:" + pw
picked = default(null, first)
"""

DERIVED_FIELDS = (
    "joined",
    "replaced",
    "parts",
    "first",
    "shout",
    "stringed",
    "each",
    "glued",
    "summed",
    "picked",
)


def test_derived_secrets_print_as_secret_in_eval_explain_and_diff(tmp_path: Path) -> None:
    (tmp_path / "a.cfl").write_text(DERIVED)
    (tmp_path / "b.cfl").write_text(DERIVED.replace(SECRET, SECRET[::-1].replace("-", "+")))
    runs: list[tuple[str | Path, ...]] = [
        ("eval", "a.cfl", "[joined, replaced, parts, first, shout, each, glued, picked]"),
        ("eval", "-f", "yaml", "a.cfl", "parts"),
        ("explain", "a.cfl", "joined"),
        ("explain", "--json", "a.cfl", "parts"),
        ("diff", "a.cfl", "b.cfl"),
        ("diff", "--json", "a.cfl", "b.cfl"),
    ]
    for args in runs:
        r = cflc(*args, cwd=tmp_path)
        assert r.returncode in (0, 1), (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert not leaked(r.stdout + r.stderr), (args, r.stdout, r.stderr)
        assert "qW9ateZ" not in r.stdout + r.stderr, args  # b.cfl's secret
    r = cflc("eval", "a.cfl", "[joined, parts]", cwd=tmp_path)
    assert json.loads(r.stdout) == ["<secret>", ["<secret>", "<secret>"]]
    # The build itself writes the derived values, as it writes the secret.
    r = cflc("build", "--allow-plaintext-secrets", "a.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["joined"] == f"app:{SECRET}" and data["parts"] == SECRET.split("-")
    assert data["each"] == [p.lower() for p in SECRET.split("-")]


def test_errors_on_derived_secrets_never_quote_them(tmp_path: Path) -> None:
    (tmp_path / "e.cfl").write_text(
        DERIVED
        + """\
n = int(joined)
o = { a = 1 }
k = o[first]
k2 = o.a + first
kk = { "$<first>" = 1 }
c = [p for p in parts if p]
m: int = shout
check first == "nope"
check len(each[0]) > 100
type Long = secret where len(self) > 100
f: Long = first
"""
    )
    for fmt in ("human", "json"):
        r = cflc("check", "--allow-plaintext-secrets", "--error-format", fmt, "e.cfl", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and "E0900" not in r.stderr
        assert not leaked(r.stdout + r.stderr), r.stderr
    r = cflc("check", "--allow-plaintext-secrets", "e.cfl", cwd=tmp_path)
    assert "a secret cannot be used as a key" in r.stderr
    assert "cannot convert secret <secret> to int" in r.stderr


def test_outputs_of_derived_secrets_are_0600_and_never_cached(tmp_path: Path) -> None:
    (tmp_path / "o.cfl").write_text(DERIVED + 'output "app.env" = { url = glued }\n')
    (tmp_path / "d.cfl").write_text(DERIVED)
    env = {**os.environ, "CFLC_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):
        r = subprocess.run(
            [*CLI, "build", "--allow-plaintext-secrets", "-o", "out/", "o.cfl", "d.cfl"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "out" / "app.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "out" / "d.json").stat().st_mode) == 0o600
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert not leaked(f.read_bytes().decode("latin-1")), f


def test_an_input_of_a_refined_secret_type_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "i.cfl").write_text(
        "type Tok = secret where len(self) > 40\ninput tok: Tok\nt = tok\n"
    )
    res = compile(str(tmp_path / "i.cfl"), cli_vars=[("tok", SECRET)])
    (d,) = res.diagnostics
    assert d.code == "E0402" and d.message == "input tok: expected Tok, got <secret>"
    assert not leaked("".join(render_json(x) for x in res.diagnostics))
    res = compile(str(tmp_path / "i.cfl"), vars={"tok": SECRET})
    assert not res.ok and not leaked("".join(render_json(x) for x in res.diagnostics))
