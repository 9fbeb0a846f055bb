"""The etcd store: `cfglang.server.store.Store` on an etcd (v3) cluster, so that several
`cflc serve` processes share one linear history.

Client. etcd's v3 JSON gateway (``POST /v3/kv/range|txn|put``, ``/v3/watch``; every
etcd member serves it on its client port) over httpx; docs/server.md says why not
``aetcd``. The gateway's traps are handled in one place (`EtcdClient`): keys and values
are base64, 64-bit integers arrive as strings, and fields with their default value are
left out (an empty range has no ``kvs``, a failed txn has no ``succeeded``, a PUT event
has no ``type``). No etcd client fails over by itself, so `EtcdClient` rotates through
the endpoints it was given: a connection error, a timeout or a 5xx/UNAVAILABLE answer
moves to the next member, with exponential backoff once every member has been tried,
until a deadline; past it the call raises `StoreUnavailable` (HTTP 503).

Key layout (under a prefix, ``cfl/`` by default; ``<rev>`` is 12 decimal digits, names
are percent-encoded into one segment)::

    <p>live/head                      the head revision, decimal
    <p>live/rollouts/<target>         the target's rollout (JSON)
    <p>revisions/<rev>                who, when, how, paths, targets, merged, commit id (JSON)
    <p>sources/<path>/<rev>           the file's text at <rev> (a blob)
    <p>sources/<path>/<rev>.deleted   the file was deleted at <rev> (empty)
    <p>outputs/<target>/<rev>         the compiled output at <rev> (a blob of its JSON)
    <p>outputs/<target>/<rev>.deleted the target stopped existing at <rev>
    <p>chunks/<sha-256>/<i>           part i of a large blob (immutable, content-addressed)
    <p>audit/<time>-<id>              the audit entries of one commit or event (JSON list)
    <p>clients/<client id>/<target>   the client's last read (JSON)
    <p>usage/<target>/<key>/<client>  when the client last reported reading the key

Rows are never updated in place (as in the SQLite store): the state at revision N is,
per name, the last key at or below N, found with one descending range of limit 1.
``live/`` holds exactly what a server must hear about at once, so one watch of that
prefix follows every server's revisions and rollouts, in etcd's order.

Commits. One revision is ONE etcd transaction: the head, the revision record, every
changed source, every changed output and the commit's audit entries, guarded by a compare
on the head key (absent for revision 1, else its value equal to the base). A failed
compare reads the head in the same round trip and raises `StaleHead`. When a retry after
a timeout meets its own earlier attempt (the txn was applied but its answer lost), the
commit id in the revision record tells, and the revision is returned, not refused.

Size. etcd refuses a request over 1.5 MiB (``--max-request-bytes``) and a txn of over 128
operations (``--max-txn-ops``). A blob is zlib-compressed when that makes it smaller; when
a commit would still exceed `TXN_BUDGET`, its large blobs are first written as chunks
(each at most `CHUNK` bytes, one request each) under their SHA-256, and the commit's
keys refer to them. Chunks are immutable and unreachable until the commit that refers to
them succeeds, so the commit stays one atomic transaction; a commit that fails leaves
unreferenced chunks behind (the same content reuses them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

from cfglang.server.store import (
    AuditEntry,
    ClientRecord,
    Commit,
    Revision,
    StaleHead,
    StoreUnavailable,
    TargetOutput,
)

if TYPE_CHECKING:
    from cfglang.server.core import Service

log = logging.getLogger("cfglang.server.etcd")

DEFAULT_PREFIX = "cfl/"
CHUNK = 1024 * 1024  # bytes of one staged chunk (etcd's request limit is 1.5 MiB)
TXN_BUDGET = 1024 * 1024  # bytes of keys and values a commit sends inline
INLINE_MAX = 256 * 1024  # a larger blob is staged whenever the commit needs room
COMPRESS_MIN = 1024
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
BATCH = 100  # operations per txn of a batched read or write
PAGE = 500  # keys per page of a range scan
# gRPC codes that mean "another member, or later": DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
# UNAVAILABLE (no leader, leader changed, request timed out) and UNKNOWN (what a stopping
# member answers).
_RETRY_CODES = {2, 4, 8, 14}


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _int(value: Any) -> int:
    """A 64-bit integer of the gateway: a string, or absent when 0."""
    return int(value) if value else 0


def _seg(name: str) -> str:
    return quote(name, safe="")


def _rev(n: int) -> str:
    return f"{n:012d}"


def prefix_end(prefix: str) -> str:
    """The end of the range of every key starting with ``prefix``: its last character
    + 1 (every prefix here ends in `/`, so the result is still UTF-8)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Compacted(Exception):
    """A watch started at a revision etcd has compacted away: re-read, then watch again."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"etcd compacted revisions up to {revision}")
        self.revision = revision


class EtcdRefused(StoreUnavailable):
    """etcd refused a request as invalid (too large, too many operations): retrying on
    another member would not help."""


class KV:
    """One key-value of a range answer (every field present, whatever the gateway omitted)."""

    __slots__ = ("create_revision", "key", "mod_revision", "value", "version")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.key = _unb64(obj.get("key")).decode("utf-8")
        self.value = _unb64(obj.get("value"))
        self.create_revision = _int(obj.get("create_revision"))
        self.mod_revision = _int(obj.get("mod_revision"))
        self.version = _int(obj.get("version"))


def _range_op(
    key: str,
    end: str | None = None,
    *,
    limit: int = 0,
    keys_only: bool = False,
    descend: bool = False,
) -> dict[str, Any]:
    """A RangeRequest; fields left at their default are left out, as the gateway does."""
    op: dict[str, Any] = {"key": _b64(key)}
    if end is not None:
        op["range_end"] = _b64(end)
    if limit:
        op["limit"] = str(limit)
    if keys_only:
        op["keys_only"] = True
    if descend:
        op["sort_order"] = "DESCEND"
        op["sort_target"] = "KEY"
    return op


class EtcdClient:
    """The few etcd calls the store needs, over the JSON gateway, rotating through
    ``endpoints`` (``host:port`` or URLs) with retries and backoff until ``deadline``
    seconds have passed (then `StoreUnavailable`). Thread-safe."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 3.0,
        deadline: float = 8.0,
        backoff: tuple[float, float] = (0.05, 1.0),
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = [e if "://" in e else f"http://{e}" for e in endpoints]
        self.timeout, self.deadline, self.backoff = timeout, deadline, backoff
        self._current = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)))

    def close(self) -> None:
        self._http.close()

    def _endpoint(self, attempt: int) -> tuple[int, str]:
        with self._lock:
            i = (self._current + attempt) % len(self.endpoints)
        return i, self.endpoints[i]

    def _settle(self, i: int) -> None:
        with self._lock:
            self._current = i

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` on the first member that answers; its JSON answer."""
        start = time.monotonic()
        attempt, last = 0, "no answer"
        first, most = self.backoff
        while True:
            i, base = self._endpoint(attempt)
            try:
                r = self._http.post(base + path, json=body)
            except httpx.HTTPError as e:
                last = f"{base}: {type(e).__name__}: {e}"
            else:
                obj = _json(r)
                if r.status_code == 200:
                    self._settle(i)
                    return obj
                code = _int(obj.get("code"))
                message = str(obj.get("message") or obj.get("error") or f"HTTP {r.status_code}")
                if r.status_code < 500 and code not in _RETRY_CODES:
                    raise EtcdRefused(f"etcd refused the request: {message}")
                last = f"{base}: {message}"
            attempt += 1
            if time.monotonic() - start >= self.deadline:
                raise StoreUnavailable(
                    f"no etcd member answered within {self.deadline:g} s (last: {last})"
                )
            if attempt % len(self.endpoints) == 0:  # every member tried once: wait
                rounds = attempt // len(self.endpoints)
                time.sleep(min(most, first * 2 ** (rounds - 1)))

    # ---- kv ----------------------------------------------------------------------------

    def range(
        self,
        key: str,
        end: str | None = None,
        *,
        limit: int = 0,
        keys_only: bool = False,
        descend: bool = False,
    ) -> tuple[list[KV], int, bool]:
        """(the key-values, the etcd revision of the answer, whether there are more)."""
        obj = self.call(
            "/v3/kv/range",
            _range_op(key, end, limit=limit, keys_only=keys_only, descend=descend),
        )
        kvs = [KV(kv) for kv in obj.get("kvs", ())]
        return kvs, _int(obj.get("header", {}).get("revision")), bool(obj.get("more"))

    def get(self, key: str) -> KV | None:
        kvs, _, _ = self.range(key)
        return kvs[0] if kvs else None

    def scan(self, prefix: str, *, keys_only: bool = False) -> Iterator[KV]:
        """Every key-value under ``prefix`` in key order, a page at a time."""
        start, end = prefix, prefix_end(prefix)
        while True:
            kvs, _, more = self.range(start, end, limit=PAGE, keys_only=keys_only)
            yield from kvs
            if not more or not kvs:
                return
            start = kvs[-1].key + "\0"

    def put(self, key: str, value: bytes) -> None:
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def txn(
        self,
        compare: Sequence[Mapping[str, Any]],
        success: Sequence[Mapping[str, Any]],
        failure: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"success": list(success)}
        if compare:
            body["compare"] = list(compare)
        if failure:
            body["failure"] = list(failure)
        return self.call("/v3/kv/txn", body)

    def get_many(self, keys: Sequence[str]) -> dict[str, KV]:
        """Several keys, `BATCH` per transaction (a txn of ranges is one read)."""
        out: dict[str, KV] = {}
        for i in range(0, len(keys), BATCH):
            batch = keys[i : i + BATCH]
            obj = self.txn((), [{"request_range": _range_op(k)} for k in batch])
            for resp in obj.get("responses", ()):
                for kv in resp.get("response_range", {}).get("kvs", ()):
                    got = KV(kv)
                    out[got.key] = got
        return out

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for i in range(0, len(items), BATCH):
            self.txn((), [_put(k, v) for k, v in items[i : i + BATCH]])

    # ---- watch -------------------------------------------------------------------------

    async def watch(
        self, prefix: str, start_revision: int, *, endpoint: int = 0
    ) -> AsyncIterator[list[tuple[KV, bool]]]:
        """The changes under ``prefix`` from ``start_revision`` on, a batch (list of (kv,
        deleted)) per watch response, from the member ``endpoint`` (an index; the caller
        rotates on failure). `Compacted` when the start revision is gone; the stream
        ending or failing raises (httpx errors, `StoreUnavailable`)."""
        base = self.endpoints[endpoint % len(self.endpoints)]
        create = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        timeout = httpx.Timeout(self.timeout, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("POST", base + "/v3/watch", json=create) as r,
        ):
            if r.status_code != 200:
                raise StoreUnavailable(f"{base}: the watch was refused (HTTP {r.status_code})")
            async for line in r.aiter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if "error" in obj:
                    raise StoreUnavailable(f"{base}: watch: {obj['error']}")
                result = obj.get("result", {})
                if result.get("canceled"):
                    compact = _int(result.get("compact_revision"))
                    if compact:
                        raise Compacted(compact)
                    raise StoreUnavailable(f"{base}: the watch was cancelled")
                events = result.get("events")
                if events:
                    yield [(KV(e.get("kv", {})), e.get("type") == "DELETE") for e in events]
        raise StoreUnavailable(f"{base}: the watch stream ended")


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        obj = r.json()
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _put(key: str, value: bytes) -> dict[str, Any]:
    return {"request_put": {"key": _b64(key), "value": _b64(value)}}


# ---- blobs -----------------------------------------------------------------------------


def encode_blob(data: bytes) -> bytes:
    """``=`` + the bytes, or ``z`` + their zlib compression when that is smaller."""
    if len(data) >= COMPRESS_MIN:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            return b"z" + packed
    return b"=" + data


def _decode_plain(blob: bytes) -> bytes:
    if blob[:1] == b"z":
        return zlib.decompress(blob[1:])
    if blob[:1] == b"=":
        return blob[1:]
    raise StoreUnavailable(f"a stored value has an unknown encoding ({blob[:1]!r})")


def _output_bytes(out: TargetOutput) -> bytes:
    obj = {"formats": dict(out.formats), "diffable": out.diffable, "files": list(out.files)}
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _output(data: bytes) -> TargetOutput:
    obj = json.loads(data)
    return TargetOutput(obj["formats"], obj["diffable"], tuple(obj.get("files", ())))


def parse_url(url: str) -> tuple[list[str], str, dict[str, float]]:
    """``etcd://host:port[,host:port…][/prefix][?timeout=S&deadline=S]`` -> (endpoints,
    key prefix ending in ``/``, client options)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not parts.netloc:
        raise ValueError(f"not an etcd URL (etcd://host:port[,host:port…]): {url}")
    endpoints = [e.strip() for e in parts.netloc.split(",") if e.strip()]
    path = unquote(parts.path).strip("/")
    prefix = path + "/" if path else DEFAULT_PREFIX
    options: dict[str, float] = {}
    for name, values in parse_qs(parts.query).items():
        if name not in ("timeout", "deadline"):
            raise ValueError(f"unknown etcd URL option `{name}` (timeout, deadline)")
        options[name] = float(values[-1])
    return endpoints, prefix, options


class EtcdStore:
    """`cfglang.server.store.Store` on etcd (see the module docstring)."""

    def __init__(self, client: EtcdClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.live = self.prefix + "live/"
        self.head_key = self.live + "head"
        self.rollouts_prefix = self.live + "rollouts/"

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        endpoints, prefix, options = parse_url(url)
        client = EtcdClient(
            endpoints, timeout=options.get("timeout", 3.0), deadline=options.get("deadline", 8.0)
        )
        return cls(client, prefix)

    def close(self) -> None:
        self.client.close()

    # ---- keys --------------------------------------------------------------------------

    def _name_prefix(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}/{_seg(name)}/"

    def _latest(self, kind: str, name: str, revision: int | None) -> KV | None:
        """The last key of ``name`` at or below ``revision`` (None: the head)."""
        at = self.head() if revision is None else revision
        start = self._name_prefix(kind, name)
        kvs, _, _ = self.client.range(start, start + _rev(at + 1), limit=1, descend=True)
        return kvs[0] if kvs else None

    @staticmethod
    def _key_rev(key: str) -> tuple[int, bool]:
        """(the revision, whether it is a deletion) of a sources/outputs key."""
        last = key.rsplit("/", 1)[1]
        deleted = last.endswith(".deleted")
        return int(last.removesuffix(".deleted")), deleted

    def _state(self, kind: str, revision: int) -> dict[str, tuple[str, int]]:
        """Every name of ``kind`` that exists at ``revision`` -> (its key, revision)."""
        out: dict[str, tuple[str, int, bool]] = {}
        base = f"{self.prefix}{kind}/"
        for kv in self.client.scan(base, keys_only=True):
            seg, _, _ = kv.key[len(base) :].partition("/")
            rev, deleted = self._key_rev(kv.key)
            if rev <= revision:  # keys of one name come in revision order
                out[unquote(seg)] = (kv.key, rev, deleted)
        return {n: (k, r) for n, (k, r, d) in sorted(out.items()) if not d}

    def _blob(self, value: bytes) -> bytes:
        """The bytes a stored blob holds, fetching its chunks when it refers to them."""
        if value[:1] != b"@":
            return _decode_plain(value)
        ref = json.loads(value[1:])
        digest, count = str(ref["sha256"]), int(ref["chunks"])
        keys = [f"{self.prefix}chunks/{digest}/{i:06d}" for i in range(count)]
        parts = []
        for k in keys:  # one by one: a chunk is up to 1 MiB
            kv = self.client.get(k)
            if kv is None:
                raise StoreUnavailable(f"a chunk of a stored value is missing: {k}")
            parts.append(kv.value)
        whole = b"".join(parts)
        if hashlib.sha256(whole).hexdigest() != digest:
            raise StoreUnavailable(f"a stored value does not match its SHA-256 {digest}")
        return _decode_plain(whole)

    def _stage(self, blob: bytes) -> bytes:
        """Write ``blob`` as chunks (before the commit) and return the reference to it."""
        digest = hashlib.sha256(blob).hexdigest()
        count = (len(blob) + CHUNK - 1) // CHUNK
        for i in range(count):
            key = f"{self.prefix}chunks/{digest}/{i:06d}"
            self.client.put(key, blob[i * CHUNK : (i + 1) * CHUNK])
        return b"@" + json.dumps({"sha256": digest, "chunks": count, "size": len(blob)}).encode()

    # ---- revisions ---------------------------------------------------------------------

    def head_at(self) -> tuple[int, int]:
        """(the head revision, the etcd revision it was read at): a watch from the
        latter + 1 misses no later change."""
        kvs, etcd_rev, _ = self.client.range(self.head_key)
        return (int(kvs[0].value) if kvs else 0), etcd_rev

    def head(self) -> int:
        return self.head_at()[0]

    def commit(self, change: Commit) -> int:
        rev = change.base + 1
        commit_id = uuid.uuid4().hex
        record = {
            "at": change.at,
            "who": change.who,
            "action": change.action,
            "paths": sorted(change.sources),
            "targets": sorted(change.outputs),
            "merged": change.merged,
            "commit": commit_id,
        }
        puts: list[tuple[str, bytes]] = [
            (self.head_key, str(rev).encode()),
            (f"{self.prefix}revisions/{_rev(rev)}", json.dumps(record).encode()),
        ]
        blobs: list[tuple[str, bytes]] = []
        for path, text in sorted(change.sources.items()):
            key = self._name_prefix("sources", path) + _rev(rev)
            if text is None:
                puts.append((key + ".deleted", b""))
            else:
                blobs.append((key, encode_blob(text.encode("utf-8"))))
        for target, out in sorted(change.outputs.items()):
            key = self._name_prefix("outputs", target) + _rev(rev)
            if out is None:
                puts.append((key + ".deleted", b""))
            else:
                blobs.append((key, encode_blob(_output_bytes(out))))
        if change.audit:
            entries = [{**e, "revision": rev} for e in change.audit]
            puts.append((self._audit_key(), json.dumps(entries, ensure_ascii=False).encode()))
        size = sum(len(k) + len(v) for k, v in puts + blobs)
        if size > TXN_BUDGET:
            # Largest first, until the rest fits: each staged blob costs a round trip.
            blobs.sort(key=lambda kv: len(kv[1]), reverse=True)
            for i, (key, blob) in enumerate(blobs):
                if size <= TXN_BUDGET and len(blob) <= INLINE_MAX:
                    break
                ref = self._stage(blob)
                size -= len(blob) - len(ref)
                blobs[i] = (key, ref)
        ops = puts + blobs
        if len(ops) > MAX_TXN_OPS:
            raise EtcdRefused(
                f"revision {rev} writes {len(ops)} keys in one transaction, over etcd's "
                f"default --max-txn-ops of {MAX_TXN_OPS} (raise it on every member)"
            )
        if change.base == 0:
            guard = {"key": _b64(self.head_key), "target": "CREATE", "result": "EQUAL"}
            guard["create_revision"] = "0"
        else:
            guard = {"key": _b64(self.head_key), "target": "VALUE", "result": "EQUAL"}
            guard["value"] = _b64(str(change.base))
        obj = self.client.txn(
            [guard],
            [_put(k, v) for k, v in ops],
            [{"request_range": _range_op(self.head_key)}],
        )
        if obj.get("succeeded"):
            return rev
        current = 0
        for resp in obj.get("responses", ()):
            for kv in resp.get("response_range", {}).get("kvs", ()):
                current = int(KV(kv).value)
        if current == rev:  # our own earlier attempt, whose answer was lost?
            mine = self.client.get(f"{self.prefix}revisions/{_rev(rev)}")
            if mine is not None and json.loads(mine.value).get("commit") == commit_id:
                return rev
        raise StaleHead(current)

    def revision(self, number: int) -> Revision | None:
        kv = self.client.get(f"{self.prefix}revisions/{_rev(number)}")
        return _revision(number, kv.value) if kv is not None else None

    # ---- sources and outputs -----------------------------------------------------------

    def sources(self, revision: int | None = None) -> dict[str, str]:
        at = self.head() if revision is None else revision
        state = self._state("sources", at)
        got = self.client.get_many([k for k, _ in state.values()])
        return {
            p: self._blob(got[k].value).decode("utf-8") for p, (k, _) in state.items() if k in got
        }

    def source(self, path: str, revision: int | None = None) -> tuple[str, int] | None:
        kv = self._latest("sources", path, revision)
        if kv is None:
            return None
        rev, deleted = self._key_rev(kv.key)
        return None if deleted else (self._blob(kv.value).decode("utf-8"), rev)

    def targets(self, revision: int | None = None) -> dict[str, int]:
        at = self.head() if revision is None else revision
        return {t: r for t, (_, r) in self._state("outputs", at).items()}

    def output(self, target: str, revision: int | None = None) -> tuple[int, TargetOutput] | None:
        kv = self._latest("outputs", target, revision)
        if kv is None:
            return None
        rev, deleted = self._key_rev(kv.key)
        return None if deleted else (rev, _output(self._blob(kv.value)))

    def output_revisions(self, target: str, after: int, upto: int) -> list[int]:
        """The revisions in (after, upto] that stored an output of ``target``."""
        start = self._name_prefix("outputs", target)
        out = []
        for kv in self.client.scan(start, keys_only=True):
            rev, deleted = self._key_rev(kv.key)
            if after < rev <= upto and not deleted:
                out.append(rev)
        return out

    def target_history(self, target: str) -> list[Revision]:
        revs = self.output_revisions(target, 0, 2**62)
        keys = [f"{self.prefix}revisions/{_rev(r)}" for r in revs]
        got = self.client.get_many(keys)
        return [_revision(r, got[k].value) for r, k in zip(revs, keys, strict=True) if k in got]

    # ---- audit, rollouts, clients, usage -----------------------------------------------

    def _audit_key(self) -> str:
        return f"{self.prefix}audit/{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"

    def add_audit(self, entry: Mapping[str, Any]) -> None:
        self.client.put(self._audit_key(), json.dumps([dict(entry)], ensure_ascii=False).encode())

    def audit(
        self,
        *,
        target: str | None = None,
        path: str | None = None,
        who: str | None = None,
        since: float | None = None,
    ) -> list[AuditEntry]:
        rows = []
        # etcd's own revision orders the entries as they were committed, across servers;
        # an entry's id is (that revision, its place in its key).
        for kv in self.client.scan(f"{self.prefix}audit/"):
            for i, e in enumerate(json.loads(kv.value)):
                rows.append((kv.mod_revision, i, e))
        rows.sort(key=lambda r: (r[0], r[1]))
        out = []
        for etcd_rev, i, e in rows:
            if target is not None and e.get("target") != target:
                continue
            if path is not None and e.get("path") != path:
                continue
            if who is not None and e.get("who") != who:
                continue
            if since is not None and float(e["at"]) < since:
                continue
            out.append(
                AuditEntry(
                    etcd_rev * 1000 + i,
                    float(e["at"]),
                    str(e["who"]),
                    str(e["action"]),
                    e.get("revision"),
                    e.get("target"),
                    e.get("path"),
                    e.get("detail"),
                )
            )
        return out

    def put_rollout(self, target: str, state: Mapping[str, Any]) -> None:
        self.client.put(self.rollouts_prefix + _seg(target), json.dumps(dict(state)).encode())

    def rollout(self, target: str) -> dict[str, Any] | None:
        kv = self.client.get(self.rollouts_prefix + _seg(target))
        return dict(json.loads(kv.value)) if kv is not None else None

    def rollouts(self) -> dict[str, dict[str, Any]]:
        """Every target's rollout."""
        n = len(self.rollouts_prefix)
        return {
            unquote(kv.key[n:]): dict(json.loads(kv.value))
            for kv in self.client.scan(self.rollouts_prefix)
        }

    def seen(self, record: ClientRecord) -> None:
        self.seen_all([record])

    def seen_all(self, records: Sequence[ClientRecord]) -> None:
        items = []
        for r in records:
            key = f"{self.prefix}clients/{_seg(r.client_id)}/{_seg(r.target)}"
            body = {
                "client_id": r.client_id,
                "token": r.token,
                "labels": dict(r.labels),
                "target": r.target,
                "revision": r.revision,
                "last_seen": r.last_seen,
            }
            items.append((key, json.dumps(body).encode()))
        self.client.put_many(items)

    def clients(self) -> list[ClientRecord]:
        out = []
        for kv in self.client.scan(f"{self.prefix}clients/"):
            o = json.loads(kv.value)
            out.append(
                ClientRecord(
                    o["client_id"],
                    o.get("token"),
                    o.get("labels", {}),
                    o["target"],
                    int(o["revision"]),
                    float(o["last_seen"]),
                )
            )
        return out

    def add_usage(self, target: str, client_id: str, keys: Sequence[str], at: float) -> None:
        base = f"{self.prefix}usage/{_seg(target)}/"
        self.client.put_many(
            [(f"{base}{_seg(k)}/{_seg(client_id)}", repr(at).encode()) for k in keys]
        )

    def used_keys(self, target: str, since: float) -> set[str]:
        base = f"{self.prefix}usage/{_seg(target)}/"
        out = set()
        for kv in self.client.scan(base):
            if float(kv.value or b"0") >= since:
                out.add(unquote(kv.key[len(base) :].split("/", 1)[0]))
        return out


def _revision(number: int, value: bytes) -> Revision:
    o = json.loads(value)
    return Revision(
        number,
        float(o["at"]),
        str(o["who"]),
        str(o["action"]),
        tuple(o.get("paths", ())),
        tuple(o.get("targets", ())),
        bool(o.get("merged", False)),
    )


async def follow(
    service: Service, store: EtcdStore, *, backoff: tuple[float, float] = (0.1, 5.0)
) -> None:
    """Keep ``service`` at the store's head for as long as it runs (a task of the server's
    event loop): watch ``live/`` from the etcd revision last seen, and on a new head read
    the revisions another server stored (`Service.catch_up`, which wakes this server's
    watch streams); on a rollout change, take it. A failed watch moves to the next member
    with exponential backoff (full jitter) and resumes from the last seen etcd revision,
    reading the store again first if a read was interrupted; a compacted start revision
    means reading again and watching from the revision of that read."""
    loop = asyncio.get_running_loop()
    start: int | None = None  # the etcd revision to watch from (None: read first)
    dirty = True  # the service may be behind the store: read it before watching
    endpoint, failures = 0, 0
    n = len(store.rollouts_prefix)
    while True:
        try:
            if start is None or dirty:
                _, etcd_rev = await loop.run_in_executor(None, store.head_at)
                await service.catch_up()
                await service.set_rollouts(await loop.run_in_executor(None, store.rollouts))
                dirty = False
                if start is None:
                    start = etcd_rev + 1
            async for batch in store.client.watch(store.live, start, endpoint=endpoint):
                failures = 0
                moved, rollouts = False, {}
                for kv, deleted in batch:
                    start = max(start, kv.mod_revision + 1)
                    if kv.key == store.head_key:
                        moved = True
                    elif kv.key.startswith(store.rollouts_prefix) and not deleted:
                        rollouts[unquote(kv.key[n:])] = json.loads(kv.value)
                dirty = True  # until both are applied
                if moved:
                    await service.catch_up()
                if rollouts:
                    await service.set_rollouts(rollouts)
                dirty = False
        except asyncio.CancelledError:
            raise
        except Compacted as e:
            log.info("etcd watch: %s; reading the store again", e)
            start = None
            continue
        except (StoreUnavailable, httpx.HTTPError, ValueError, KeyError) as e:
            log.warning("etcd watch on %s: %s", store.client.endpoints[endpoint], e)
        endpoint = (endpoint + 1) % len(store.client.endpoints)
        first, most = backoff
        await asyncio.sleep(random.uniform(0, min(most, first * 2**failures)))
        failures += 1
