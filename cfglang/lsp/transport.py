"""The server's side of the wire: read with `framing`, check each message, always reply.

pygls 2.1's stdio loop wedges on bad framing (see `framing`), drops a request whose params
do not fit their type (logging a traceback and sending nothing), and puts a traceback into
the `data` of an error reply. This module replaces that loop and narrows those two
protocol methods, so that:

* every request gets a reply: a result, or an error with a one-line message (JSON-RPC's
  parse error, invalid request or invalid params codes; internal error for a bug);
* nothing the client sends stops the server reading the messages after it;
* stderr gets one line per problem, never a traceback (`OneLineFormatter`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import cattrs
from cattrs.v import format_exception
from lsprotocol.types import EXIT, ResponseError, ResponseErrorMessage
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.io_ import StdoutWriter
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

from cfglang.lsp.framing import Framer, Garbage

log = logging.getLogger("cfglang.lsp")

READ_SIZE = 64 * 1024
INVALID = "invalid request: "


class OneLineFormatter(logging.Formatter):
    """``cflc lsp: warning: <first line>``: no traceback, whoever logs it (pygls too)."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().splitlines()
        return f"cflc lsp: {record.levelname.lower()}: {lines[0] if lines else ''}"


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def _describe(exc: Exception) -> str:
    """What is wrong with a message, from a cattrs structuring error."""

    def fmt(e: BaseException, type_: Any) -> str:
        base = format_exception(e, type_)
        text = str(e)
        if len(text) > 120:  # it quotes the value, which can be a 300-digit number
            text = text[:117] + "..."
        return f"{base} ({text})" if base == "invalid value" and text else base

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=fmt))
    return str(exc) or type(exc).__name__


def _request_id(data: dict[str, Any]) -> int | str | None:
    """The id to answer ``data`` with: None for a notification or an unusable id."""
    i = data.get("id")
    return i if isinstance(i, int | str) and not isinstance(i, bool) else None


class CflProtocol(LanguageServerProtocol):
    """pygls' protocol, with structuring errors as exceptions and error replies without
    tracebacks. It leans on pygls internals (`_send_response`, `_send_data`,
    `_converter`, `_result_types`, `_shutdown`): pygls is pinned (2.1.1) and
    tests/test_lsp_wire.py exercises each of them over the wire."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """The typed message for ``data``; raises `JsonRpcException` saying what is wrong
        (pygls logs a traceback and raises a bare one)."""
        try:
            if "id" in data and "method" not in data:
                if "error" in data:
                    return self._converter.structure(data, ResponseErrorMessage)
                kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
                return self._converter.structure(data, kind)
            method = data.get("method")
            if not isinstance(method, str):
                raise JsonRpcInvalidRequest(f"{INVALID}`method` must be a string")
            default = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
            return self._converter.structure(data, self.get_message_type(method) or default)
        except JsonRpcException:
            raise
        except Exception as e:
            where = f" for `{data['method']}`" if isinstance(data.get("method"), str) else ""
            raise JsonRpcInvalidParams(f"invalid params{where}: {_describe(e)}") from None

    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: ResponseError | None = None
    ) -> None:
        # pygls puts the traceback of a failed handler into `data`; the client gets the
        # message only (the server logs a line, see `configure_logging`).
        if error is not None:
            first = (error.message.splitlines() or [""])[0]
            error = ResponseError(code=error.code, message=first)
        super()._send_response(msg_id, result, error)

    def reply_error(self, msg_id: int | str | None, exc: JsonRpcException) -> None:
        log.warning("%s", exc.message)
        if msg_id is None:
            # JSON-RPC wants `"id": null` here; pygls' converter would leave `id` out.
            error = {"code": exc.code, "message": exc.message}
            self._send_data({"jsonrpc": "2.0", "id": None, "error": error})
        else:
            self._send_response(msg_id, error=exc.to_response_error())

    def receive(self, value: Any) -> None:
        """Check one decoded message and hand it to pygls."""
        if not isinstance(value, dict):
            bad = JsonRpcInvalidRequest(f"{INVALID}a message must be a JSON object")
            return self.reply_error(None, bad)
        request = "method" in value and "id" in value
        response = "id" in value and "method" not in value
        msg_id = _request_id(value) if request else None
        problem = None
        if value.get("jsonrpc") != "2.0":
            problem = '`jsonrpc` must be "2.0"'
        elif request and msg_id is None:
            problem = "`id` must be an integer or a string"
        elif request and self._shutdown and value["method"] != EXIT:
            # pygls would drop it with a warning; LSP wants an invalid request error
            problem = "the server is shutting down"
        if problem is not None:
            if response:  # from the client, answering nothing we wait for: no reply
                log.warning("ignored a response: %s", problem)
                return None
            return self.reply_error(msg_id, JsonRpcInvalidRequest(f"{INVALID}{problem}"))
        try:
            message = self.structure_message(value)
        except JsonRpcException as e:
            if msg_id is not None:
                return self.reply_error(msg_id, e)
            log.warning("ignored a message: %s", e.message)
            return None
        try:
            self.handle_message(message)
        except Exception as e:  # a bug; pygls answers failures of the handler itself
            error = JsonRpcInternalError(f"internal error: {type(e).__name__}: {e}")
            log.error("%s", error.message)
            if msg_id is not None:
                self._send_response(msg_id, error=error.to_response_error())
        return None

    def on_garbage(self, g: Garbage) -> None:
        if g.body:
            self.reply_error(None, JsonRpcParseError(f"parse error: {g.reason}"))
        else:
            log.warning("skipped %d bytes: %s", g.size, g.reason)


async def read_loop(protocol: CflProtocol, read: Callable[[], Awaitable[bytes]]) -> None:
    """Feed what ``read`` returns (empty at the end of input) to ``protocol``."""
    framer = Framer()
    while data := await read():
        for frame in framer.feed(data):
            if isinstance(frame, Garbage):
                protocol.on_garbage(frame)
            else:
                protocol.receive(frame.value)


def serve(protocol: CflProtocol, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve ``protocol`` until the input ends or the client sends `exit`."""
    protocol.set_writer(StdoutWriter(stdout))
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's buffer)
        fd = -1

    # The raw descriptor when there is one: a daemon thread blocked inside a buffered
    # reader holds its lock, and interpreter shutdown then aborts on that lock.
    def read1(n: int) -> bytes:
        return os.read(fd, n) if fd >= 0 else stdin.read(n)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes] = asyncio.Queue()

        # A daemon thread, not an executor: after `exit` the process must not wait for a
        # client that keeps stdin open.
        def pump() -> None:
            data = b""
            try:
                while data := read1(READ_SIZE):
                    loop.call_soon_threadsafe(chunks.put_nowait, data)
            except (OSError, ValueError):
                pass
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, b"")
            except RuntimeError:  # the loop has already finished
                pass

        threading.Thread(target=pump, name="cflc-lsp-stdin", daemon=True).start()
        await read_loop(protocol, chunks.get)

    try:
        asyncio.run(run())
    except BrokenPipeError:
        log.error("the connection to the client is lost")
