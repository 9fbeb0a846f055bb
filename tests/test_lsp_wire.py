"""The language server on the wire: bad framing, bad requests and error replies.

`cflc lsp` runs as a subprocess fed raw bytes, so the framing is the server's and nothing
is repaired by a client library. One server serves the module (it starts in seconds);
after each test it must still answer a probe, or it is replaced and the test fails.
The framer itself is also tested in process, where a property can afford many examples.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pygls")

from cfglang.lsp.diagnostics import uri_of
from cfglang.lsp.framing import Framer, Garbage, Message

SERVER = [sys.executable, "-c", "from cfglang.cli import run; run()", "lsp"]
TIMEOUT = 20.0  # generous: the machine is shared; a wedged server never answers at all
TEXT = 'let domain = "example.com"\napi {\n  name = "api"\n  url = "http://$<domain>"\n}\n'


def frame(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """`cflc lsp` over pipes: raw bytes in, replies (by id) and stderr collected."""

    def __init__(self, cwd: Path, command: list[str] = SERVER) -> None:
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        self._ids = itertools.count(1)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_out, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read_err, args=(self.proc.stderr,), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_out(self, out: IO[bytes]) -> None:
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line or length is None:
                return
            msg = json.loads(out.read(length))
            if "method" not in msg:  # a reply, not a notification or a server request
                self.replies.put(msg)

    def _read_err(self, err: IO[bytes]) -> None:
        for line in err:
            self.stderr.append(line.decode("utf-8", "replace"))

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> str:
        msg_id = f"r{next(self._ids)}"
        self.send(frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}))
        return msg_id

    def notify(self, method: str, params: Any) -> None:
        self.send(frame({"jsonrpc": "2.0", "method": method, "params": params}))

    def reply(self, msg_id: int | str | None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next reply to ``msg_id`` (replies to others are dropped)."""
        while True:
            try:
                msg = self.replies.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no reply to {msg_id!r} within {timeout}s") from None
            if msg.get("id") == msg_id:
                return msg

    def answers(self) -> bool:
        try:
            reply = self.reply(self.request("probe/unknown", None))
        except AssertionError:
            return False
        return bool(reply["error"]["code"] == -32601)  # method not found: it still reads

    def tracebacks(self) -> list[str]:
        return [line for line in self.stderr if "Traceback" in line or 'File "' in line]

    def close(self, kill: bool = False) -> None:
        """Shut the server down (or kill it) and collect all of its output."""
        if self.proc.poll() is None:
            try:
                if kill:
                    raise OSError
                self.reply(self.request("shutdown", None), timeout=5)
                self.notify("exit", None)
                self.proc.wait(timeout=10)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def start(root: Path, command: list[str] = SERVER) -> RawServer:
    srv = RawServer(root, command)
    reply = srv.reply(
        srv.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    )
    assert "result" in reply
    srv.notify("initialized", {})
    return srv


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wire")
    (root / "a.cfl").write_text(TEXT)
    return root


class _Holder:
    srv: RawServer | None = None


@pytest.fixture(scope="module")
def _holder(project: Path) -> Iterator[_Holder]:
    h = _Holder()
    yield h
    if h.srv is not None:
        h.srv.close()


@pytest.fixture
def raw(_holder: _Holder, project: Path) -> Iterator[RawServer]:
    """The module's server, with a.cfl open; replaced if a test leaves it not answering."""
    if _holder.srv is None:
        _holder.srv = start(project)
        _holder.srv.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri_of(str(project / "a.cfl")),
                    "languageId": "cfl",
                    "version": 1,
                    "text": TEXT,
                }
            },
        )
    srv = _holder.srv
    yield srv
    ok = srv.answers()
    tracebacks = srv.tracebacks()
    if not ok or tracebacks:
        _holder.srv = None
        srv.close(kill=True)
    assert ok, "the server stopped answering"
    assert not tracebacks, "".join(srv.stderr)


# ---- framing ------------------------------------------------------------------------------

HOVER = {"textDocument": {"uri": "file:///nowhere.cfl"}, "position": {"line": 0, "character": 0}}

BAD_FRAMES = {
    "no_content_length": b'Content-Type: application/json\r\n\r\n{"jsonrpc":"2.0","id":1}',
    "header_without_colon": b"Content-Length 12\r\n\r\n",
    "length_not_a_number": b"Content-Length: twelve\r\n\r\n{}",
    "negative_length": b"Content-Length: -5\r\n\r\n{}",
    "huge_length": b"Content-Length: 99999999999999999999999999\r\n\r\n{}",
    "length_longer_than_body": b'Content-Length: 500\r\n\r\n{"jsonrpc":"2.0"}',
    "length_far_longer_than_body": b"Content-Length: 999999999999\r\n\r\n{",
    "length_shorter_than_body": b'Content-Length: 4\r\n\r\n{"jsonrpc":"2.0","id":"x"}',
    "zero_length": b"Content-Length: 0\r\n\r\n",
    "garbage_bytes": bytes(range(256)) * 4,
    "lone_newlines": b"\n\n\r\r\n\n",
    "unfinished_header": b"Content-Length: 3",
    "invalid_json": b"Content-Length: 5\r\n\r\n{bad}",
    "invalid_utf8": b'Content-Length: 4\r\n\r\n"\xff\xfe"',
    "deeply_nested_json": b"Content-Length: 200000\r\n\r\n" + b"[" * 100_000 + b"]" * 100_000,
    "json_number": b"Content-Length: 2\r\n\r\n42",
    "json_array": frame([{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}]),
    "no_jsonrpc_version": frame({"id": 7, "method": "textDocument/hover", "params": HOVER}),
    "bad_id_type": frame({"jsonrpc": "2.0", "id": [1], "method": "textDocument/hover"}),
    "method_not_a_string": frame({"jsonrpc": "2.0", "id": 3, "method": 3}),
    "response_to_nothing": frame({"jsonrpc": "2.0", "id": 99, "result": {"x": 1}}),
    "bogus_error_response": frame({"jsonrpc": "2.0", "id": 98, "error": "nope"}),
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_bad_framing_does_not_wedge_the_server(raw: RawServer, bad: bytes) -> None:
    raw.send(bad)
    reply = raw.reply(raw.request("textDocument/hover", HOVER))
    assert reply == {"jsonrpc": "2.0", "id": reply["id"], "result": None}


def test_framing_errors_that_can_be_answered_are(raw: RawServer) -> None:
    # JSON-RPC: a body that is not JSON draws a parse error, a JSON value that is not a
    # request an invalid request error, both with a null id; a bad request with a usable
    # id is answered under that id.
    raw.send(BAD_FRAMES["invalid_json"])
    assert raw.reply(None)["error"]["code"] == -32700
    raw.send(BAD_FRAMES["json_number"])
    assert raw.reply(None)["error"]["code"] == -32600
    raw.send(BAD_FRAMES["no_jsonrpc_version"])
    err = raw.reply(7)["error"]
    assert err == {"code": -32600, "message": 'invalid request: `jsonrpc` must be "2.0"'}


# ---- every request gets a reply -----------------------------------------------------------

DOC = {"uri": "A"}  # replaced by a.cfl's URI
POSITIONS: dict[str, tuple[Any, str]] = {
    "start": ({"line": 0, "character": 0}, "result"),
    "past_the_line": ({"line": 0, "character": 10_000}, "result"),
    "past_the_end": ({"line": 10_000, "character": 10_000}, "result"),
    "largest_uinteger": ({"line": 2**31 - 1, "character": 2**31 - 1}, "result"),
    "negative": ({"line": -1, "character": -5}, "error"),
    "beyond_uinteger": ({"line": 2**63, "character": 0}, "error"),
    "not_a_number": ({"line": "one", "character": 0}, "error"),
    "fractional": ({"line": 0.5, "character": 1e300}, "any"),
    "boolean": ({"line": True, "character": False}, "any"),
    "missing": (None, "error"),
}
POSITIONAL: dict[str, dict[str, Any]] = {
    "textDocument/hover": {},
    "textDocument/definition": {},
    "textDocument/references": {"context": {"includeDeclaration": True}},
    "textDocument/rename": {"newName": "zone"},
    "textDocument/completion": {},
}
WHOLE_DOCUMENT: dict[str, dict[str, Any]] = {
    "textDocument/documentSymbol": {},
    "textDocument/formatting": {"options": {"tabSize": 2, "insertSpaces": True}},
}
URIS = {
    "open_file": "A",
    "missing_file": "file:///nowhere/at/all.cfl",
    "directory": "file:///",
    "not_a_uri": "not a uri at all",
    "other_scheme": "untitled:Untitled-1",
    "device": "file:///dev/zero",  # reading it never ends
    "fifo": "FIFO",  # reading it blocks until a writer comes
}


def _cases() -> Iterator[Any]:
    for method, extra in POSITIONAL.items():
        for name, (position, want) in POSITIONS.items():
            params = {"textDocument": DOC, **extra}
            if position is not None:
                params["position"] = position
            yield pytest.param(method, params, want, id=f"{method}-{name}")
    for method, extra in {**POSITIONAL, **WHOLE_DOCUMENT}.items():
        for name, uri in URIS.items():
            params = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 2}}
            yield pytest.param(method, {**params, **extra}, "result", id=f"{method}-{name}")
        yield pytest.param(method, None, "error", id=f"{method}-null_params")
        yield pytest.param(method, [1, 2], "error", id=f"{method}-list_params")
        yield pytest.param(method, {"textDocument": 5}, "error", id=f"{method}-bad_document")
    yield pytest.param(
        "textDocument/rename",
        {"textDocument": DOC, "position": {"line": 0, "character": 4}, "newName": "not a name"},
        "any",
        id="rename-to-an-invalid-name",
    )
    yield pytest.param("no/suchMethod", {}, "error", id="unknown-method")
    # pygls' own request handlers.
    yield pytest.param("initialize", None, "error", id="initialize-null_params")
    yield pytest.param("initialize", {"capabilities": 3}, "error", id="initialize-bad_params")
    command = {"command": "no.such.command", "arguments": [1]}
    yield pytest.param("workspace/executeCommand", command, "error", id="unknown-command")
    yield pytest.param("workspace/executeCommand", {}, "error", id="command-missing")


@pytest.mark.parametrize(("method", "params", "want"), _cases())
def test_every_request_gets_a_reply(
    raw: RawServer, project: Path, method: str, params: Any, want: str
) -> None:
    uri = uri_of(str(project / "a.cfl"))
    fifo = project / "fifo.cfl"
    if not fifo.exists():
        os.mkfifo(fifo)
    text = json.dumps(params).replace('"uri": "A"', json.dumps({"uri": uri})[1:-1])
    text = text.replace('"uri": "FIFO"', json.dumps({"uri": uri_of(str(fifo))})[1:-1])
    reply = raw.reply(raw.request(method, json.loads(text)))
    assert set(reply) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"})
    if "error" in reply:
        err = reply["error"]
        # A message only, on one line: no traceback in `data`.
        assert set(err) == {"code", "message"} and err["message"]
        assert "\n" not in err["message"] and len(err["message"]) < 400
    if want != "any":
        assert want in reply, reply


def test_an_invalid_position_is_an_invalid_params_error_saying_why(raw: RawServer) -> None:
    reply = raw.reply(
        raw.request(
            "textDocument/hover",
            {"textDocument": {"uri": "file:///x.cfl"}, "position": {"line": -1, "character": 0}},
        )
    )
    assert reply["error"]["code"] == -32602
    assert reply["error"]["message"] == (
        "invalid params for `textDocument/hover`: invalid value (Position.line should be in "
        "range [0:2147483647], but was -1.) @ $.params.position"
    )


def test_bad_notifications_are_ignored(raw: RawServer) -> None:
    for params in (None, {}, {"textDocument": {"uri": "file:///zz.cfl"}}, [3]):
        for method in ("textDocument/didOpen", "textDocument/didChange", "textDocument/didClose"):
            raw.notify(method, params)
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": "file:///never/opened.cfl", "version": 2},
            "contentChanges": [{"text": "a = 1\n"}],
        },
    )
    raw.notify("$/cancelRequest", {"id": "nothing"})


# ---- error replies ------------------------------------------------------------------------

BROKEN_HOVER = [
    sys.executable,
    "-c",
    "import cfglang.lsp.hover as h\n"
    "def boom(*a):\n    raise ValueError('boom')\n"
    "h.hover = boom\n"
    "from cfglang.cli import run; run()",
    "lsp",
]


def test_an_internal_error_is_a_message_without_a_traceback(project: Path) -> None:
    srv = start(project, BROKEN_HOVER)
    try:
        reply = srv.reply(srv.request("textDocument/hover", HOVER))
        assert reply["error"] == {"code": -32603, "message": "ValueError: boom"}
        assert srv.answers()
    finally:
        srv.close()
    assert not srv.tracebacks(), "".join(srv.stderr)
    assert any("ValueError: boom" in line for line in srv.stderr)


# ---- properties ---------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        b"Content-Length: ",
        b"Content-Length: 7\r\n",
        b"content-length:0\r\n",
        b"Content-Type: x\r\n",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"{",
        b"}",
        b'{"jsonrpc":"2.0","id":1,"method":"textDocument/hover","params":{}}',
        b"12",
        b"999999999",
        frame({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {}}),
    ]
)
NOISE = st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=12).map(b"".join)


@given(noise=NOISE, split=st.integers(min_value=0, max_value=200))
def test_framer_finds_the_message_after_any_noise(noise: bytes, split: int) -> None:
    msg = {"jsonrpc": "2.0", "id": "probe", "method": "x"}
    data = noise + frame(msg)
    framer = Framer()
    frames = framer.feed(data[:split]) + framer.feed(data[split:])
    assert frames and frames[-1] == Message(msg)
    assert all(isinstance(f, Garbage | Message) for f in frames)


@given(noise=NOISE)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_noise_never_wedges_the_server(raw: RawServer, noise: bytes) -> None:
    raw.send(noise)
    reply = raw.reply(raw.request("textDocument/hover", HOVER))
    assert reply["result"] is None


def test_shutdown_then_exit_ends_the_server_with_status_0(project: Path) -> None:
    srv = start(project)
    assert srv.reply(srv.request("shutdown", None))["result"] is None
    # Requests after `shutdown` are answered with an error (pygls dropped them).
    err = srv.reply(srv.request("textDocument/hover", HOVER))["error"]
    assert err == {"code": -32600, "message": "invalid request: the server is shutting down"}
    srv.notify("exit", None)
    assert srv.proc.wait(timeout=TIMEOUT) == 0
    srv.close()
    assert not srv.tracebacks(), "".join(srv.stderr)


def test_end_of_input_ends_the_server(project: Path) -> None:
    srv = start(project)
    assert srv.proc.stdin is not None
    srv.proc.stdin.close()
    assert srv.proc.wait(timeout=TIMEOUT) == 0
    srv.close()
