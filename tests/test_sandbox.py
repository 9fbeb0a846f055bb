"""Issue 12, sections 1 and 5: nothing outside the project is written or read, outputs
are written as one set, and files are read byte-exact.

CLI tests run `cflc` as a subprocess (exit code, stdout and stderr); the output-name
property runs the resolver's check and the writer's check on random names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfglang.atomic import JOURNAL, recover, write_set
from cfglang.cli import _stays_inside
from cfglang.semantic.resolve import normalise_output_name, output_name_problem

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(
    *args: str | Path, cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [*CFLC, *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    out = subprocess.CompletedProcess(
        r.args,
        r.returncode,
        r.stdout.decode("utf-8", "replace"),
        r.stderr.decode("utf-8", "replace"),
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out


def files_in(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if not p.is_dir())


# --- 1. output names ------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["build", "check"])
@pytest.mark.parametrize("name", ["/tmp/cflc-i12-abs.json", "../x.json", "./../x.json"])
def test_an_escaping_output_name_is_an_error_in_build_and_check(
    tmp_path: Path, cmd: str, name: str
) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "main.cfl").write_text(f'a = {{ x = 1 }}\noutput "{name}" = a\n')
    args = ["-o", "out/"] if cmd == "build" else []
    r = cflc(cmd, "main.cfl", *args, cwd=proj)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0603]" in r.stderr and "main.cfl:2:8" in r.stderr
    assert not os.path.exists("/tmp/cflc-i12-abs.json")
    assert files_in(tmp_path) == ["proj/main.cfl"]


def test_a_symlink_in_the_output_dir_leading_out_is_refused(tmp_path: Path) -> None:
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    (proj / "out").mkdir(parents=True)
    outside.mkdir()
    (proj / "out" / "sub").symlink_to(outside)
    (proj / "main.cfl").write_text('a = { x = 1 }\noutput "ok.json" = a\noutput "sub/x.json" = a\n')
    r = cflc("build", "main.cfl", "-o", "out/", cwd=proj)
    assert r.returncode == 1
    assert "error[E0602]" in r.stderr and "symlink" in r.stderr
    assert list(outside.iterdir()) == []
    assert not (proj / "out" / "ok.json").exists()  # nothing of the set is written


_SEGMENT = st.sampled_from(["..", ".", "a", "b.json", "", "link", "flink", "\\", "c:"])


@given(st.lists(_SEGMENT, min_size=1, max_size=6), st.sampled_from(["", "/", "./"]))
def test_output_names_never_escape_the_output_dir(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], lead: str
) -> None:
    """Any name: the resolver rejects it, or the writer refuses its resolved path, or the
    file is written inside the output directory; nothing ever lands outside."""
    name = lead + "/".join(parts)
    base = tmp_path_factory.mktemp("prop")
    out, outside = base / "out", base / "outside"
    (out / "a").mkdir(parents=True)
    outside.mkdir()
    (outside / "target.json").write_text("untouched")
    (out / "link").symlink_to(outside)
    (out / "flink").symlink_to(outside / "target.json")
    if output_name_problem(name) is not None:
        return
    target = os.path.join(out, normalise_output_name(name))
    assert os.path.normpath(target).startswith(str(out) + os.sep)
    if not _stays_inside(str(out), target):
        assert not os.path.realpath(target).startswith(str(out.resolve()) + os.sep)
        return
    try:
        write_set(str(out), [(target, "{}", None)])
    except (IsADirectoryError, NotADirectoryError, FileExistsError):
        return  # `a` is a directory, or a file is used as one: an E0602, nothing written
    assert os.path.realpath(target).startswith(str(out.resolve()) + os.sep)
    assert sorted(os.listdir(outside)) == ["target.json"]
    assert (outside / "target.json").read_text() == "untouched"


# --- 1. imports -----------------------------------------------------------------------------


def test_a_symlink_to_a_file_outside_the_root_is_outside(tmp_path: Path) -> None:
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    proj.mkdir()
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:TOP-SECRET-LINE\n")
    (outside / "lib.cfl").write_text("v = 1\n")
    (proj / "cfl.toml").write_text("[project]\n")
    (proj / "p.cfl").symlink_to(outside / "passwd")
    (proj / "linked").symlink_to(outside)
    (proj / "main.cfl").write_text('import "p" as p\nimport "linked/lib" as l\nx = 1\n')
    r = cflc("check", "main.cfl", cwd=proj)
    assert r.returncode == 1
    assert "TOP-SECRET-LINE" not in r.stderr
    assert r.stderr.count("error[E0103]") == 2
    assert "main.cfl:1:8" in r.stderr and "main.cfl:2:8" in r.stderr
    # --allow-path still grants the directory the links lead to.
    r = cflc("check", "main.cfl", "--allow-path", outside, cwd=proj)
    assert "error[E0103]" not in r.stderr
    assert "TOP-SECRET-LINE" in r.stderr  # now inside the sandbox: a normal syntax error


def test_a_std_path_that_climbs_out_reads_nothing(tmp_path: Path) -> None:
    from cfglang.semantic.resolve import stdlib_dir

    target = tmp_path / "srv" / "x.cfl"
    target.parent.mkdir()
    target.write_text("leaked = true\n")
    up = os.path.relpath(target.with_suffix(""), stdlib_dir() / "std")
    (tmp_path / "main.cfl").write_text(f'import "std/{up}" as x\ny = x.leaked\n')
    r = cflc("build", "main.cfl", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0103]" in r.stderr and "outside the standard library" in r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
@pytest.mark.parametrize("stmt", ['import "pipe.cfl" as p', 'extends "pipe.cfl"'])
def test_importing_a_fifo_in_the_project_is_an_error_not_a_hang(tmp_path: Path, stmt: str) -> None:
    os.mkfifo(tmp_path / "pipe.cfl")
    (tmp_path / "main.cfl").write_text(f"{stmt}\nx = 1\n")
    r = cflc("check", "main.cfl", cwd=tmp_path)
    assert r.returncode == 1
    assert "error[E0101]: `pipe.cfl` cannot be read" in r.stderr
    assert "main.cfl:1:" in r.stderr


# --- 5. the output set ----------------------------------------------------------------------

_KILLER = """
import os, sys
real = os.replace
count = [0]
after = int(os.environ["KILL_AFTER_RENAMES"])
def replace(a, b):
    real(a, b)
    if os.path.basename(str(b)).startswith(("one", "two", "three")):
        count[0] += 1
        if count[0] == after:
            os._exit(137)
os.replace = replace
from cfglang.cli import run
sys.argv = ["cflc", *sys.argv[1:]]
run()
"""


def _project(tmp_path: Path, gen: int) -> None:
    (tmp_path / "main.cfl").write_text(
        textwrap.dedent(
            f"""\
            g = {gen}
            output "one.json" = {{ gen = g }}
            output "two.json" = {{ gen = g }}
            output "sub/three.json" = {{ gen = g }}
            """
        )
    )


def _gens(out: Path) -> list[int]:
    return [
        json.loads((out / n).read_text())["gen"] for n in ("one.json", "two.json", "sub/three.json")
    ]


@pytest.mark.parametrize("after", [1, 2])
@pytest.mark.parametrize("then", ["build", "recover"])
def test_a_build_killed_between_renames_is_completed_before_anything_else(
    tmp_path: Path, after: int, then: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's own file\n")
    _project(tmp_path, 1)
    assert cflc("build", "main.cfl", "-o", "out/", "--no-cache", cwd=tmp_path).returncode == 0
    assert _gens(out) == [1, 1, 1]
    _project(tmp_path, 2)
    env = {**os.environ, "KILL_AFTER_RENAMES": str(after)}
    r = subprocess.run(
        [sys.executable, "-c", _KILLER, "build", "main.cfl", "-o", "out/", "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 137, r.stderr
    assert (out / JOURNAL).exists()  # committed, renames unfinished
    assert _gens(out) == [2] * after + [1] * (3 - after)
    if then == "recover":
        recover(str(out))
        assert _gens(out) == [2, 2, 2]
    else:
        # A build that fails writes nothing and leaves the journal to the next one.
        (tmp_path / "main.cfl").write_text("broken = \n")
        assert cflc("build", "main.cfl", "-o", "out/", cwd=tmp_path).returncode == 1
        assert (out / JOURNAL).exists()
        _project(tmp_path, 3)
        assert cflc("build", "main.cfl", "-o", "out/", "--no-cache", cwd=tmp_path).returncode == 0
        assert _gens(out) == [3, 3, 3]
    assert files_in(out) == ["mine.txt", "one.json", "sub/three.json", "two.json"]


def test_concurrent_builds_into_one_directory_leave_one_whole_set(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(
        "input g: int\n"
        'output "one.json" = { gen = g }\n'
        'output "two.json" = { gen = g }\n'
        'output "sub/three.json" = { gen = g }\n'
    )
    procs = [
        subprocess.Popen(
            [*CFLC, "build", "main.cfl", "-o", "out/", "--var", f"g={g}", "--no-cache"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for g in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    gens = _gens(tmp_path / "out")
    assert len(set(gens)) == 1 and gens[0] in range(4)
    assert files_in(tmp_path / "out") == ["one.json", "sub/three.json", "two.json"]


def test_a_kill_before_the_commit_leaves_the_old_set_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _project(tmp_path, 1)
    assert cflc("build", "main.cfl", "-o", "out/", "--no-cache", cwd=tmp_path).returncode == 0
    calls = []

    def staged_then_fail(path: str, data: object, **kw: object) -> None:
        calls.append(path)
        raise OSError(28, "No space left on device")

    import cfglang.atomic as atomic

    real = atomic.write_atomic
    atomic.write_atomic = staged_then_fail  # type: ignore[assignment]
    try:
        with pytest.raises(OSError):
            write_set(
                str(out),
                [(str(out / "one.json"), '{"gen": 2}', None), (str(out / "two.json"), "{}", None)],
            )
    finally:
        atomic.write_atomic = real
    assert calls == [str(out / JOURNAL)]
    assert _gens(out) == [1, 1, 1]
    assert files_in(out) == ["one.json", "sub/three.json", "two.json"]


def test_a_later_build_removes_stale_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / ".cflc-set-abc.tmp").write_text("from a killed build")
    (out / "sub" / ".cflc-set-def.tmp").write_text("from a killed build")
    old = out / ".cflc-x1y2.tmp"  # a write_atomic temporary of an old cflc
    old.write_text("stale")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    fresh = out / ".cflc-inflight.tmp"  # another writer's, in flight: kept
    fresh.write_text("busy")
    (out / ".cflc-nottmp").write_text("kept")
    _project(tmp_path, 1)
    assert cflc("build", "main.cfl", "-o", "out/", cwd=tmp_path).returncode == 0
    assert files_in(out) == [
        ".cflc-inflight.tmp",
        ".cflc-nottmp",
        "one.json",
        "sub/three.json",
        "two.json",
    ]


def test_a_journal_naming_paths_outside_is_not_followed(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep me")
    (out / ".cflc-set-1.tmp").write_text("x")
    (out / JOURNAL).write_text(json.dumps([[".cflc-set-1.tmp", "../victim.txt"]]))
    write_set(str(out), [(str(out / "a.json"), "{}", None)])
    assert victim.read_text() == "keep me"
    assert files_in(out) == ["a.json"]


# --- 5. byte-exact reads --------------------------------------------------------------------


def test_a_bare_cr_in_a_toml_comment_is_rejected_from_a_file_as_from_stdin(
    tmp_path: Path,
) -> None:
    data = b"a = 1\n# note\rb = 2\n"
    (tmp_path / "c.toml").write_bytes(data)
    from_file = cflc("import", "c.toml", cwd=tmp_path)
    from_stdin = cflc("import", "-", "--from", "toml", cwd=tmp_path, stdin=data)
    assert from_file.returncode == from_stdin.returncode == 1
    assert from_file.stdout == from_stdin.stdout == ""
    assert "error[E0702]" in from_file.stderr
    assert from_file.stderr.replace("c.toml", "<stdin>") == from_stdin.stderr


def test_a_bare_cr_in_a_cfl_comment_does_not_end_it(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_bytes(b"a = 1\n# note\rb = 2\nc = 3\n")
    r = cflc("build", "main.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"a": 1, "c": 3}


def test_crlf_sources_mean_what_lf_sources_mean(tmp_path: Path) -> None:
    src = 'a = """\n  x\n  y\n  """\nb = r"""\n  p\n  """\nc = """\n  one \\\n  two\n  """\n'
    (tmp_path / "lf.cfl").write_bytes(src.encode())
    (tmp_path / "crlf.cfl").write_bytes(src.replace("\n", "\r\n").encode())
    lf, crlf = (cflc("build", f, cwd=tmp_path) for f in ("lf.cfl", "crlf.cfl"))
    assert lf.returncode == crlf.returncode == 0, crlf.stderr
    assert (
        json.loads(lf.stdout)
        == json.loads(crlf.stdout)
        == {
            "a": "x\ny",
            "b": "p",
            "c": "one two",
        }
    )


def test_the_build_cache_tells_crlf_from_lf(tmp_path: Path) -> None:
    """The cache key is the bytes: turning `\\n` into `\\r` (a comment swallowing the
    next line) must not be served the old result."""
    (tmp_path / "main.cfl").write_bytes(b"# note\na = 1\n")
    env_dir = tmp_path / "cache"
    first = subprocess.run(
        [*CFLC, "build", "main.cfl"],
        cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(env_dir), "CFLC_CACHE_DIR": str(env_dir)},
        capture_output=True,
        text=True,
    )
    assert json.loads(first.stdout) == {"a": 1}
    (tmp_path / "main.cfl").write_bytes(b"# note\ra = 1\n")
    second = subprocess.run(
        [*CFLC, "build", "main.cfl"],
        cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(env_dir), "CFLC_CACHE_DIR": str(env_dir)},
        capture_output=True,
        text=True,
    )
    assert json.loads(second.stdout) == {}
