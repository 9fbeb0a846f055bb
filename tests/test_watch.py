"""`cflc watch` and `cfglang.tools.watch.Watcher`, with real files and real file events.

Waiting is always "poll until a condition holds, with a generous deadline"; nothing
asserts on elapsed time. The watcher runs on a thread in-process (so its reports can be
inspected), and as the real `cflc watch` subprocess for Ctrl-C and a vanished directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from file_events import DEADLINE, wait_until, write

from cfglang.cli import Ctx
from cfglang.tools.watch import Report, Watcher

_SCRIPT = shutil.which("cflc")
CFLC = [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]


def make_project(root: Path) -> Path:
    (root / "env").mkdir(parents=True)
    (root / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\noutput_dir = "out"\n')
    (root / "base.cfl").write_text('replicas = 1\nname = "base"\n')
    (root / "other.cfl").write_text("port = 80\n")
    (root / "env" / "a.cfl").write_text('extends "../base.cfl"\nstage = "a"\n')
    (root / "env" / "b.cfl").write_text('import "../other.cfl"\nport = other.port\n')
    return root


class Running:
    """A Watcher on a background thread, collecting its reports and lines."""

    def __init__(self, root: Path, poll: bool) -> None:
        self.reports: list[Report] = []
        self.lines: list[str] = []
        self.lock = threading.Lock()
        ctx = Ctx("human", "never", True, 0)
        self.watcher = Watcher(os.path.relpath(root), ctx, echo=self._line, on_report=self._report)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.status: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.status.append(
                self.watcher.run(poll=poll, stop=self.stop, ready=self.ready.set, poll_delay_ms=100)
            ),
            daemon=True,
        )
        self.thread.start()
        assert self.ready.wait(DEADLINE), "the watcher did not start"

    def _line(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def _report(self, r: Report) -> None:
        with self.lock:
            self.reports.append(r)

    def kinds(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(os.path.basename(r.target), r.kind) for r in self.reports]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE)


@pytest.fixture(params=[False, True], ids=["os-events", "polling"])
def running(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Running, Path]]:
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    r = Running(root, poll=request.param)
    try:
        yield r, root
    finally:
        r.close()


def test_only_dependent_targets_rebuild(running: tuple[Running, Path]) -> None:
    r, root = running
    assert r.kinds() == [("a.cfl", "built"), ("b.cfl", "built")]
    assert json.loads((root / "out" / "b.json").read_text()) == {"port": 80}
    write(root / "other.cfl", "port = 81\n")
    wait_until(lambda: len(r.kinds()) >= 3, "b to rebuild")
    write(root / "base.cfl", 'replicas = 2\nname = "base"\n')
    wait_until(lambda: len(r.kinds()) >= 4, "a to rebuild")
    # Rounds are processed in order, so a rebuild of `a` for the first save would have
    # been reported before the second save's.
    assert r.kinds() == [
        ("a.cfl", "built"),
        ("b.cfl", "built"),
        ("b.cfl", "rebuilt"),
        ("a.cfl", "rebuilt"),
    ]
    assert [c.path_text for c in r.reports[2].changes] == ["port"]
    assert [(c.path_text, c.old, c.new) for c in r.reports[3].changes] == [("replicas", 1, 2)]
    assert json.loads((root / "out" / "b.json").read_text()) == {"port": 81}
    assert json.loads((root / "out" / "a.json").read_text())["replicas"] == 2
    assert "~ replicas: 1 -> 2" in "\n".join(r.lines)


def test_broken_edit_keeps_outputs_then_recovers(running: tuple[Running, Path]) -> None:
    r, root = running
    good = (root / "out" / "a.json").read_text()
    write(root / "base.cfl", "replicas = = 2\n")
    wait_until(lambda: ("a.cfl", "failed") in r.kinds(), "the broken build")
    assert (root / "out" / "a.json").read_text() == good
    assert r.reports[-1].diagnostics[0].code == "E0001"
    assert any(
        line.startswith("✗ env/a.cfl: 1 error, kept the last good outputs")
        or "kept the last good outputs" in line
        for line in r.lines
    )
    write(root / "base.cfl", 'replicas = 3\nname = "base"\n')
    wait_until(lambda: r.kinds()[-1] == ("a.cfl", "rebuilt"), "the recovery")
    # The diff is against the last good build, not against the broken one.
    assert [(c.path_text, c.old, c.new) for c in r.reports[-1].changes] == [("replicas", 1, 3)]
    assert json.loads((root / "out" / "a.json").read_text())["replicas"] == 3
    assert all(k[0] == "a.cfl" for k in r.kinds()[2:])  # b never rebuilt


def test_new_import_of_missing_file_recovers_when_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    r = Running(root, poll=False)
    try:
        write(
            root / "env" / "a.cfl",
            'extends "../base.cfl"\nimport "../extra.cfl"\nextra_value = extra.v\n',
        )
        wait_until(lambda: ("a.cfl", "failed") in r.kinds(), "the missing import")
        write(root / "extra.cfl", "v = 7\n")
        wait_until(lambda: r.kinds()[-1] == ("a.cfl", "rebuilt"), "the recovery")
        assert json.loads((root / "out" / "a.json").read_text())["extra_value"] == 7
        # A new target is picked up on the next change.
        write(root / "env" / "c.cfl", "c = 1\n")
        wait_until(lambda: ("c.cfl", "built") in r.kinds(), "the new target")
        assert json.loads((root / "out" / "c.json").read_text()) == {"c": 1}
    finally:
        r.close()


pumps: dict[int, threading.Thread] = {}


def start_cli(root: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`cflc watch ROOT` with its output (stdout and stderr) pumped into a list."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    p = subprocess.Popen(
        [*CFLC, "watch", str(root), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert p.stdout is not None
    stdout = p.stdout

    def pump() -> None:
        for line in stdout:
            lines.append(line.rstrip("\n"))

    pumps[p.pid] = threading.Thread(target=pump, daemon=True)
    pumps[p.pid].start()
    return p, lines


def stop_cli(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()
    pumps.pop(p.pid).join(DEADLINE)  # the pipe is at its end once the process has exited
    if p.stdout is not None:
        p.stdout.close()


def test_cli_ctrl_c_is_clean(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    p, lines = start_cli(root)
    try:
        wait_until(lambda: any(line.startswith("watching") for line in lines), "watching")
        write(root / "other.cfl", "port = 9\n")
        wait_until(lambda: "    ~ port: 80 -> 9" in lines, "the diff")
        assert any(line.startswith("✓ ") and "b.cfl: 1 change, wrote" in line for line in lines)
        p.send_signal(signal.SIGINT)
        assert p.wait(DEADLINE) == 0
        wait_until(lambda: lines and lines[-1] == "stopped", "the goodbye")
        assert not any("Traceback" in line for line in lines)
    finally:
        stop_cli(p)


def test_cli_directory_disappears(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    p, lines = start_cli(root, "--poll")
    try:
        wait_until(lambda: any(line.startswith("watching") for line in lines), "watching")
        shutil.rmtree(root)
        assert p.wait(DEADLINE) == 1
        wait_until(lambda: any("no longer exists" in line for line in lines), "the message")
        assert not any("Traceback" in line for line in lines)
    finally:
        stop_cli(p)


def test_affected_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    w = Watcher("proj", Ctx("human", "never", True, 0), echo=lambda _line: None)
    w.build_all()
    a, b = w.targets
    assert w.affected([str(root / "base.cfl")]) == [a]
    assert w.affected([str(root / "other.cfl")]) == [b]
    assert w.affected([str(root / "unrelated.cfl")]) == []
    assert w.affected([str(root / "cfl.toml")]) == [a, b]
