"""LSP base-protocol framing that never loses sync: bytes in, JSON messages out.

A message is a header block (lines ending ``\\r\\n``, closed by an empty line) holding
``Content-Length: N``, then N bytes of JSON. pygls' own reader waits for a header line
that matches exactly, so one header without a length (or a body shorter than its length)
makes it read the following messages as headers or as the rest of that body, for ever.

`Framer` is a push parser (`feed` bytes, get `Frame`\\ s) that resynchronises instead:

* The header block ends at the first ``\\r\\n\\r\\n``; its length is the *last*
  ``Content-Length:`` in it, wherever it starts. Bytes left over from a broken message
  run into the next header without a line break, so the header is looked for anywhere.
  A block without a valid length is reported as `Garbage` and skipped.
* A body cannot contain a raw ``Content-Length: N\\r\\n``: in JSON a line break is only
  whitespace between tokens, and a header line would leave a bare word before it. So a
  body that holds one was cut short by the sender; the bytes before it are `Garbage`
  and parsing resumes at that header, without waiting for the missing bytes.
* A body that is not JSON may have a length longer than its message, and so hold the
  start of the next one: it is reported, then searched for a header like any garbage,
  so the message after it is still read.

Everything is bounded: garbage without a header end is dropped but for a short tail, and
every step consumes input, so no input makes it loop or stall.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

HEADER_END = b"\r\n\r\n"
# A header block longer than this without its end is garbage: keep only a tail long
# enough to hold the start of a real header.
MAX_HEADER = 64 * 1024
_TAIL = 1024
_LENGTH = re.compile(rb"content-length:[ \t]*(\d{1,15})[ \t]*(?:\r\n|\Z)", re.IGNORECASE)
_NAME = re.compile(rb"content-length:", re.IGNORECASE)
# A whole header line, as it can only appear at a cut-short body's end.
_HEADER_LINE = re.compile(rb"content-length:[ \t]*\d+[ \t]*\r\n", re.IGNORECASE)


@attrs.frozen
class Message:
    """A decoded message body: any JSON value (the reader checks it is a request)."""

    value: Any


@attrs.frozen
class Garbage:
    """Bytes that are not a message, with why. ``body`` when they were framed as one, so
    the sender may be waiting for a reply (JSON-RPC's parse error)."""

    reason: str
    size: int
    body: bool = False


Frame = Message | Garbage


class Framer:
    """Splits a byte stream into message bodies, skipping and reporting what is not one."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._length: int | None = None  # the body length once a header block is read
        self._scanned = 0  # body bytes already searched for a header line

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames they complete, in order."""
        self._buf += data
        out: list[Frame] = []
        while True:
            frame = self._step()
            if frame is None:
                return out
            out.append(frame)

    def _step(self) -> Frame | None:
        """The next frame, or None when more input is needed."""
        if self._length is None:
            frame = self._header()
            if frame is not None or self._length is None:
                return frame
        return self._body(self._length)

    def _header(self) -> Frame | None:
        """Read a header block: garbage, or None having set the body length (or not)."""
        end = self._buf.find(HEADER_END)
        if end < 0:
            if len(self._buf) > MAX_HEADER:
                size = len(self._buf) - _TAIL
                del self._buf[:size]
                return Garbage("no header end", size)
            return None
        block = bytes(self._buf[:end])
        del self._buf[: end + len(HEADER_END)]
        starts = [m.start() for m in _NAME.finditer(block)]
        m = _LENGTH.match(block, starts[-1]) if starts else None
        if m is None:
            return Garbage("no valid Content-Length header", end + len(HEADER_END))
        self._length = int(m.group(1))
        self._scanned = 0
        return None

    def _body(self, length: int) -> Frame | None:
        avail = min(len(self._buf), length)
        # Search the new bytes (and a header's length back, for one split across reads).
        start = max(0, self._scanned - _TAIL)
        cut = _HEADER_LINE.search(self._buf, start, avail)
        if cut is None and avail < length:
            self._scanned = avail
            return None
        self._length = None
        if cut is not None:
            size = cut.start()
            del self._buf[:size]
            return Garbage("body cut short by the next message", size, body=True)
        try:
            # Deep nesting is a RecursionError; an over-long integer and bad UTF-8 are
            # ValueErrors.
            value = json.loads(self._buf[:length].decode("utf-8"))
        except (ValueError, RecursionError):
            return Garbage("body is not JSON", length, body=True)  # the bytes stay: resync
        del self._buf[:length]
        return Message(value)
