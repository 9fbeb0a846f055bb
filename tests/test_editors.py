"""Editor integrations: the VS Code extension (grammar tests, client, .vsix), the vim files and
the Neovim LSP snippet.

The tests that need tools skip when they are missing; CI installs them first:
`apt-get install -y vim neovim` and `npm ci` in editors/vscode (see docs/editors.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
VSCODE = ROOT / "editors" / "vscode"
VIM = ROOT / "editors" / "vim"
BIN = VSCODE / "node_modules" / ".bin"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (BIN / "vscode-tmgrammar-test").exists(),
    reason="node or editors/vscode/node_modules missing (run `npm ci` in editors/vscode)",
)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _run(cmd: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


# ---- VS Code: static checks --------------------------------------------------------------------


def test_package_json_contributions() -> None:
    pkg = _json(VSCODE / "package.json")
    assert pkg["name"] == "cfglang" and pkg["publisher"] == "cfglang"
    assert pkg["engines"]["vscode"] == "^1.85.0"
    assert pkg["main"] == "./src/extension.js"
    [lang] = pkg["contributes"]["languages"]
    assert lang["id"] == "cfl" and lang["extensions"] == [".cfl"]
    assert (VSCODE / lang["configuration"]).is_file()
    [grammar] = pkg["contributes"]["grammars"]
    assert grammar["scopeName"] == "source.cfl" and grammar["language"] == "cfl"
    assert _json(VSCODE / grammar["path"])["scopeName"] == "source.cfl"
    props = pkg["contributes"]["configuration"]["properties"]
    assert props["cfglang.server.path"]["default"] == "cflc"
    assert props["cfglang.server.args"]["type"] == "array"
    assert "vscode-languageclient" in pkg["dependencies"]
    assert pkg["scripts"]["test:grammar"] == 'vscode-tmgrammar-test "tests/**/*.cfl"'
    assert pkg["scripts"]["package"].startswith("vsce package")
    lock = _json(VSCODE / "package-lock.json")
    assert "node_modules/vscode-languageclient" in lock["packages"]
    ignored = (VSCODE / ".gitignore").read_text().split()
    assert "node_modules/" in ignored and "*.vsix" in ignored


def test_language_configuration() -> None:
    conf = _json(VSCODE / "language-configuration.json")
    assert conf["comments"]["lineComment"] == "#"
    opens = {p["open"] for p in conf["autoClosingPairs"]}
    assert {"{", "[", "(", '"', '"""'} <= opens
    assert conf["folding"]["markers"]["start"] and conf["indentationRules"]


def test_grammar_includes_resolve() -> None:
    grammar = _json(VSCODE / "syntaxes" / "cfl.tmLanguage.json")
    repo = grammar["repository"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            inc = node.get("include")
            if isinstance(inc, str) and inc.startswith("#"):
                assert inc[1:] in repo, f"unknown include {inc}"
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(grammar)


# ---- VS Code: tools ----------------------------------------------------------------------------


@needs_node
def test_grammar_assertions_pass() -> None:
    tests = sorted(VSCODE.glob("tests/*.cfl"))
    assert len(tests) >= 7
    res = _run([str(BIN / "vscode-tmgrammar-test"), "--compact", "tests/**/*.cfl"], VSCODE)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_node
def test_grammar_assertion_failure_is_detected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfl"
    bad.write_text(
        '# SYNTAX TEST "source.cfl" "a wrong assertion must fail"\n'
        'type = "postgres"\n'
        "# <---- storage.type.type.cfl\n"
    )
    res = _run([str(BIN / "vscode-tmgrammar-test"), "--compact", str(bad)], VSCODE)
    assert res.returncode != 0, res.stdout + res.stderr


CLIENT_PROBE = r"""
const Module = require('module');
const calls = [];
const handlers = {};
const fakeVscode = {
  workspace: {
    workspaceFolders: [{ uri: { fsPath: '/ws' } }],
    getConfiguration: () => ({ get: (k) => ({'server.path': '${workspaceFolder}/bin/cflc',
                                              'server.args': ['--log', 'x']})[k] }),
    onDidChangeConfiguration: (f) => { handlers.config = f; return { dispose() {} }; },
    createFileSystemWatcher: (g) => ({ glob: g }),
  },
  commands: { registerCommand: (name, f) => { handlers[name] = f; return { dispose() {} }; } },
  window: { showErrorMessage: (m) => calls.push(['error', m]) },
};
class FakeClient {
  constructor(id, name, server, client) { calls.push(['new', id, server, client]); }
  start() { calls.push(['start']); return Promise.resolve(); }
  stop() { calls.push(['stop']); return Promise.resolve(); }
}
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === 'vscode') return fakeVscode;
  if (request === 'vscode-languageclient/node') {
    require.resolve('vscode-languageclient/node', { paths: [parent.path] });  // bundled?
    return { LanguageClient: FakeClient, TransportKind: { stdio: 0 } };
  }
  return load.apply(this, arguments);
};
const ext = require(process.argv[2]);
(async () => {
  await ext.activate({ subscriptions: [] });
  await handlers['cfglang.restartServer']();
  console.log(JSON.stringify({ calls, commands: Object.keys(handlers) }));
})();
"""


@needs_node
def test_extension_starts_cflc_lsp(tmp_path: Path) -> None:
    probe = tmp_path / "probe.js"
    probe.write_text(CLIENT_PROBE)
    res = _run(["node", str(probe), str(VSCODE / "src" / "extension.js")], VSCODE)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    new = [c for c in out["calls"] if c[0] == "new"]
    assert len(new) == 2  # activate, then the restart command
    _, ident, server, client = new[0]
    assert ident == "cfglang"
    assert server["run"]["command"] == "/ws/bin/cflc"
    assert server["run"]["args"] == ["lsp", "--log", "x"]
    assert server["run"]["transport"] == 0  # stdio
    assert {"scheme": "file", "language": "cfl"} in client["documentSelector"]
    assert [c[0] for c in out["calls"]] == ["new", "start", "stop", "new", "start"]
    assert "cfglang.restartServer" in out["commands"]


@needs_node
def test_vsix_packages(tmp_path: Path) -> None:
    out = tmp_path / "cfglang.vsix"
    res = _run([str(BIN / "vsce"), "package", "--out", str(out)], VSCODE, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    names = set(zipfile.ZipFile(out).namelist())
    for name in (
        "extension/package.json",
        "extension/language-configuration.json",
        "extension/syntaxes/cfl.tmLanguage.json",
        "extension/src/extension.js",
        "extension/LICENSE.txt",
        "extension/readme.md",
        "extension/node_modules/vscode-languageclient/node.js",
    ):
        assert name in names, name
    assert not any(n.startswith("extension/tests/") for n in names)
    assert not any("vscode-tmgrammar-test" in n or "@vscode/vsce" in n for n in names)


# ---- vim ---------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_vim_highlighting_and_indent() -> None:
    res = _run(["sh", str(VIM / "test" / "run.sh")], ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "all checks passed" in res.stdout


def test_vim_files_present() -> None:
    for rel in ("syntax/cfl.vim", "ftdetect/cfl.vim", "ftplugin/cfl.vim", "indent/cfl.vim"):
        assert (VIM / rel).is_file(), rel
    assert "setfiletype cfl" in (VIM / "ftdetect" / "cfl.vim").read_text()


# ---- neovim ------------------------------------------------------------------------------------

# Waits for the server's diagnostics on a buffer that does not parse, then writes what it got.
_NVIM_CHECK = """
local ok = vim.wait(30000, function() return #vim.diagnostic.get(0) > 0 end, 50)
local out = io.open(vim.env.CFL_NVIM_OUT, "w")
out:write(ok and vim.diagnostic.get(0)[1].message or "no diagnostics")
out:close()
vim.cmd("qa!")
"""


def _lua_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```lua\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


@pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim is not installed")
def test_neovim_start_client_snippet_attaches_the_server(tmp_path: Path) -> None:
    # The docs' form for Neovim 0.7-0.9 (the one Debian 12's 0.7.2 can run), verbatim.
    pytest.importorskip("pygls")
    (snippet,) = [
        b for b in _lua_blocks((ROOT / "docs" / "editors.md").read_text()) if "start_client" in b
    ]
    (tmp_path / "init.lua").write_text(snippet)
    (tmp_path / "check.lua").write_text(_NVIM_CHECK)
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "a.cfl").write_text("a = 1 +\n")
    cflc = Path(sys.executable).parent  # the test environment's `cflc` script
    if shutil.which("cflc", path=str(cflc)) is None:
        pytest.skip("no `cflc` script beside the test's Python")
    env = {
        **os.environ,
        "PATH": f"{cflc}{os.pathsep}{os.environ.get('PATH', '')}",
        "CFL_NVIM_OUT": str(tmp_path / "out.txt"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    cmd = [
        "nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n",
        "--cmd", f"set runtimepath^={VIM}",
        "--cmd", "filetype on",
        "--cmd", f"luafile {tmp_path / 'init.lua'}",
        "-c", f"luafile {tmp_path / 'check.lua'}",
        str(tmp_path / "a.cfl"),
    ]  # fmt: skip
    res = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    out = (tmp_path / "out.txt").read_text() if (tmp_path / "out.txt").exists() else ""
    assert out not in ("", "no diagnostics"), res.stdout + res.stderr
