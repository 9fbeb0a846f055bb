"""The documentation does what it says: its commands run, its code parses, and the pages
generated from the sources are up to date (so CI, which runs pytest, checks them)."""

from __future__ import annotations

import filecmp
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfglang.source import SourceFile
from cfglang.syntax.parser import parse_module

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
FLEET = EXAMPLES / "fleet"
CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def run_line(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A documented `cflc ...` command line, run as written (its `#` comment dropped)."""
    words = shlex.split(line, comments=True)
    assert words[0] == "cflc", line
    return cflc(*words[1:], cwd=cwd)


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


@pytest.fixture
def fleet_copy(tmp_path: Path) -> Path:
    # The commands write `out/`: never into the source tree.
    dest = tmp_path / "examples" / "fleet"
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns("out"))
    return dest


# --- the standard library reference ------------------------------------------------------------

STDLIB_COMMAND = 'cflc doc stdlib/std/*.cfl -o docs/stdlib --title "CFL standard library"'


def test_stdlib_reference_is_what_cflc_doc_writes_now(tmp_path: Path) -> None:
    assert STDLIB_COMMAND in (DOCS / "stdlib.md").read_text()
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "stdlib" / "std").glob("*.cfl"))
    r = cflc("doc", *modules, "-o", tmp_path / "ref", "--title", "CFL standard library", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    fresh = sorted(p.name for p in (tmp_path / "ref").iterdir())
    checked_in = sorted(p.name for p in (DOCS / "stdlib").iterdir())
    hint = f"docs/stdlib is stale: regenerate it with `{STDLIB_COMMAND}`"
    assert checked_in == fresh, hint
    _, mismatch, errors = filecmp.cmpfiles(DOCS / "stdlib", tmp_path / "ref", fresh, shallow=False)
    assert (mismatch, errors) == ([], []), hint


# --- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_passes_fmt_check(example: str) -> None:
    r = cflc("fmt", "--check", EXAMPLES / example, cwd=ROOT)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stdout + r.stderr


def test_fmt_check_fails_on_an_unformatted_example(fleet_copy: Path) -> None:
    # The check above can fail: a misaligned comment is reported, nothing is rewritten.
    base = fleet_copy / "base.cfl"
    text = base.read_text()
    base.write_text(text.replace("\ninput region", "\ninput   region", 1))
    r = cflc("fmt", "--check", fleet_copy, cwd=fleet_copy)
    assert (r.returncode, r.stdout.split()) == (1, [str(base)])
    assert base.read_text() != text


# --- the README tour ---------------------------------------------------------------------------


def test_readme_tour_commands_work(fleet_copy: Path) -> None:
    tour = section((ROOT / "README.md").read_text(), "## A five-minute tour")
    lines = [m for m in re.findall(r"`(cflc [^`]*)`", tour)]
    assert "cflc build env/prod.cfl --vars vars.yaml" in lines
    assert "cflc check" in lines and "cflc build" in lines
    for line in lines:
        r = run_line(line, fleet_copy)
        assert r.returncode == 0, f"{line}: {r.stderr}"
        assert "error" not in r.stderr, f"{line}: {r.stderr}"
    r = run_line("cflc build env/prod.cfl --vars vars.yaml", fleet_copy)
    assert '"region": "ap-south-1"' in r.stdout  # examples/fleet/vars.yaml
    r = run_line("cflc eval env/prod.cfl services.billing.replicas", fleet_copy)
    assert (r.stdout, r.stderr) == ("6\n", "")


def test_readme_tour_python(fleet_copy: Path) -> None:
    tour = section((ROOT / "README.md").read_text(), "## A five-minute tour")
    (block,) = re.findall(r"```python\n(.*?)```", tour, re.S)
    code = textwrap.dedent(block)
    assert "examples/fleet/env/prod.cfl" in code
    # Run from the repository root it names (here the copy's), showing each expression.
    shown = "\n".join(
        f"print(repr({ln}))" if ln.startswith("cfg.") else ln
        for ln in (re.sub(r"\s+#.*$", "", x) for x in code.splitlines())
    )
    r = subprocess.run(
        [sys.executable, "-c", shown],
        cwd=fleet_copy.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("5432\n") and "services:" in r.stdout


def test_fleet_readme_commands_work(fleet_copy: Path) -> None:
    readme = (FLEET / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(.*?)```", readme, re.S)
    lines = [ln for ln in block.splitlines() if ln.startswith("cflc ")]
    assert len(lines) == 5
    for line in lines:
        r = run_line(line, fleet_copy)
        assert r.returncode == 0, f"{line}: {r.stderr}"
    r = run_line("cflc eval env/prod.cfl services.billing.replicas", fleet_copy)
    assert r.stdout == "6\n"  # as the README's comment says


# --- the codegen example of docs/tools.md ------------------------------------------------------


def test_codegen_example_imports_only_generated_classes(fleet_copy: Path) -> None:
    part = section((DOCS / "tools.md").read_text(), "## `cflc codegen python FILE`")
    (command,) = re.findall(r"```sh\n(.*?)\n```", part, re.S)
    (code,) = re.findall(r"```python\n(.*?)```", part, re.S)
    (fleet_copy / "app").mkdir()
    (fleet_copy / "app" / "__init__.py").write_text("")
    r = run_line(command, fleet_copy)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    generated = (fleet_copy / "app" / "config_types.py").read_text()
    classes = re.findall(r"^class (\w+)\b.*:$", generated, re.M)
    assert classes == ["Database", "Service", "Resources", "ResourceList", "Probe", "Gateway"]
    for name in re.findall(r"from app\.config_types import (.*)", code)[0].split(","):
        assert name.strip() in classes
    # Each line with a `# value` comment shows that value.
    lines = []
    for ln in code.splitlines():
        m = re.fullmatch(r"(\S[^#]*?)\s+# ('.*'|[0-9.]+)", ln)
        lines.append(f"assert {m.group(1)} == {m.group(2)}, {m.group(1)!r}" if m else ln)
    r = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        cwd=fleet_copy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stderr) == (0, "")


# --- CFL code in the docs ----------------------------------------------------------------------

_CFL_BLOCK = re.compile(r"^( *)```cfl\n(.*?)^\1```", re.S | re.M)


def cfl_blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in [*sorted(DOCS.glob("*.md")), ROOT / "README.md", *sorted(EXAMPLES.glob("*/*.md"))]:
        text = path.read_text()
        for m in _CFL_BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 2
            out.append((f"{path.relative_to(ROOT)}:{line}", line, textwrap.dedent(m.group(2))))
    return out


@pytest.mark.parametrize(("where", "line", "code"), cfl_blocks(), ids=lambda x: str(x)[:40])
def test_every_cfl_example_in_the_docs_parses(where: str, line: int, code: str) -> None:
    module, diags = parse_module(SourceFile(where, code))
    assert module is not None, f"{where}: {[d.message for d in diags]}"


def test_the_cfl_block_finder_sees_indented_blocks() -> None:
    found = {where.split(":")[0] for where, _, _ in cfl_blocks()}
    assert {"README.md", "docs/language.md", "docs/stdlib.md"} <= found
    assert len(cfl_blocks()) >= 20


def test_planned_commands_are_marked_as_not_yet_available(tmp_path: Path) -> None:
    # docs/cli.md keeps the contract of `serve` and `publish` but says they do not exist
    # yet; when a command lands, this fails until the page says so.
    cli = (DOCS / "cli.md").read_text()
    for name in ("serve", "publish"):
        r = cflc(name, "--help", cwd=tmp_path)
        if r.returncode == 0:
            assert "not yet available" not in cli, f"`cflc {name}` exists now: update cli.md"
        else:
            assert (r.returncode, r.stdout) == (2, "")
            assert f"No such command '{name}'" in r.stderr
            assert "are planned and **not yet available**" in cli


def test_readme_tour_error_is_what_cflc_prints(fleet_copy: Path) -> None:
    tour = section((ROOT / "README.md").read_text(), "## A five-minute tour")
    part = tour[tour.index("**Errors point where you edit**") :]
    (shown,) = re.findall(r"```\n(.*?)```", part, re.S)
    prod = fleet_copy / "env" / "prod.cfl"
    text = prod.read_text()
    billing = text.index("  billing {\n    replicas = 6\n") + len("  billing {\n    replicas = 6\n")
    prod.write_text(text[:billing] + "    port = 70000\n" + text[billing:])
    r = cflc("check", "env/prod.cfl", "--color", "never", cwd=fleet_copy)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith(textwrap.dedent(shown))
