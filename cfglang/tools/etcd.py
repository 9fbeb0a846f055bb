"""etcd for cfglang: a client of etcd's v3 JSON gateway, and a project's key layout on
etcd, shared by the server's store (`cfglang.server.etcd`, which says how revisions are
committed) and `cfglang.connect("etcd://…")`.

Client. etcd's v3 JSON gateway (``POST /v3/kv/range|txn|put``, ``/v3/watch``; every
etcd member serves it on its client port) over httpx; docs/server.md says why not
``aetcd``. The gateway's traps are handled in one place (`EtcdClient`): keys and values
are base64, 64-bit integers arrive as strings, and fields with their default value are
left out (an empty range has no ``kvs``, a failed txn has no ``succeeded``, a PUT event
has no ``type``). No etcd client fails over by itself, so `EtcdClient` rotates through
the endpoints it was given: a connection error, a timeout or a 5xx/UNAVAILABLE answer
moves to the next member, with exponential backoff once every member has been tried,
until a deadline; past it the call raises `EtcdUnavailable` (the server: HTTP 503).

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
``live/`` holds exactly what a server or client must hear about at once, so one watch of
that prefix follows every server's revisions and rollouts, in etcd's order.

Blobs. A blob is ``=`` + bytes, or ``z`` + their zlib compression when that is smaller,
or ``@`` + a JSON reference to chunks (``chunks/<sha-256>/…``, each at most `CHUNK`
bytes) when a commit would not fit in one etcd request (1.5 MiB by default).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
import threading
import time
import zlib
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

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


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _int(value: Any) -> int:
    """A 64-bit integer of the gateway: a string, or absent when 0."""
    return int(value) if value else 0


def segment(name: str) -> str:
    return quote(name, safe="")


def rev_key(n: int) -> str:
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


class EtcdUnavailable(Exception):
    """No etcd member answered (or none has a quorum) before the deadline."""


class EtcdRefused(EtcdUnavailable):
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


def range_op(
    key: str,
    end: str | None = None,
    *,
    limit: int = 0,
    keys_only: bool = False,
    descend: bool = False,
) -> dict[str, Any]:
    """A RangeRequest; fields left at their default are left out, as the gateway does."""
    op: dict[str, Any] = {"key": b64(key)}
    if end is not None:
        op["range_end"] = b64(end)
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
    seconds have passed (then `unavailable`). Thread-safe.

    ``unavailable`` and ``refused`` are the exceptions it raises (subclasses of
    `EtcdUnavailable` and `EtcdRefused`): the server's store makes them its own
    unavailability too, so every layer catches the failure it knows."""

    unavailable: type[EtcdUnavailable] = EtcdUnavailable
    refused: type[EtcdRefused] = EtcdRefused

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 3.0,
        deadline: float = 8.0,
        backoff: tuple[float, float] = (0.05, 1.0),
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both `cert` and `key`")
        if user is not None and password is None:
            raise ValueError(f"etcd user `{user}` needs a password (${PASSWORD_ENV})")
        # TLS when a CA or a client certificate is given (the members' client URLs are
        # then https); else plain HTTP, as etcd listens by default.
        scheme = "https" if cacert is not None or cert is not None else "http"
        self.endpoints = [e if "://" in e else f"{scheme}://{e}" for e in endpoints]
        self.timeout, self.deadline, self.backoff = timeout, deadline, backoff
        self._current = 0
        self._lock = threading.Lock()
        self._tls: dict[str, Any] = {}
        if scheme == "https":
            # A file named in the URL that is missing or not PEM is the user's mistake,
            # said as such (ValueError, as for any bad URL), not an internal error.
            try:
                ctx = ssl.create_default_context(cafile=cacert)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(f"etcd `cacert` {cacert}: cannot read a CA from it: {e}") from e
            if cert is not None and key is not None:
                try:
                    ctx.load_cert_chain(cert, key)
                except (OSError, ssl.SSLError) as e:
                    raise ValueError(
                        f"etcd `cert`/`key` {cert}, {key}: not a certificate and its key: {e}"
                    ) from e
            self._tls["verify"] = ctx
        self._user, self._password = user, password
        self._token: str | None = None  # etcd's auth token, renewed when it expires
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)), **self._tls
        )

    def close(self) -> None:
        self._http.close()

    def _endpoint(self, attempt: int) -> tuple[int, str]:
        with self._lock:
            i = (self._current + attempt) % len(self.endpoints)
        return i, self.endpoints[i]

    def _settle(self, i: int) -> None:
        with self._lock:
            self._current = i

    def _headers(self, base: str) -> dict[str, str]:
        """The auth header (a token from ``base`` when there is none yet)."""
        if self._user is None:
            return {}
        with self._lock:
            token = self._token
        if token is None:
            token = self._authenticate(base)
        return {"Authorization": token}

    def _authenticate(self, base: str) -> str:
        """A new auth token from the member at ``base`` (etcd's simple tokens expire)."""
        r = self._http.post(
            base + "/v3/auth/authenticate", json={"name": self._user, "password": self._password}
        )
        obj = _json(r)
        token = obj.get("token")
        if r.status_code != 200 or not isinstance(token, str):
            message = str(obj.get("message") or obj.get("error") or f"HTTP {r.status_code}")
            if r.status_code >= 500 or _int(obj.get("code")) in _RETRY_CODES:
                raise httpx.HTTPError(f"authenticate: {message}")  # try another member
            raise self.refused(f"etcd authentication of `{self._user}` failed: {message}")
        with self._lock:
            self._token = token
        return token

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` on the first member that answers; its JSON answer.

        A write that timed out may still be applied: a leader that lost its quorum keeps
        the entry in its log and commits it when the quorum returns. The error then says
        so (``maybe_applied``); a compare-and-swap retry is what stays safe."""
        start = time.monotonic()
        attempt, last, maybe_applied = 0, "no answer", False
        first, most = self.backoff
        while True:
            i, base = self._endpoint(attempt)
            try:
                r = self._http.post(base + path, json=body, headers=self._headers(base))
                if r.status_code == 401 and self._user is not None:
                    # An expired or revoked token (code 16): a new one, then once more.
                    self._forget_token()
                    r = self._http.post(base + path, json=body, headers=self._headers(base))
            except httpx.HTTPError as e:
                last = f"{base}: {type(e).__name__}: {e}"
                # Refused or unreachable: never sent. Anything else: perhaps received.
                maybe_applied |= not isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))
            else:
                obj = _json(r)
                if r.status_code == 200:
                    self._settle(i)
                    return obj
                code = _int(obj.get("code"))
                message = str(obj.get("message") or obj.get("error") or f"HTTP {r.status_code}")
                if r.status_code < 500 and code not in _RETRY_CODES:
                    raise self.refused(f"etcd refused the request: {message}")
                last = f"{base}: {message}"
                maybe_applied |= "timed out" in message or code == 4
            attempt += 1
            if time.monotonic() - start >= self.deadline:
                note = ""
                if maybe_applied and path != "/v3/kv/range":
                    note = (
                        "; the write may still be applied when etcd has a quorum again:"
                        " read the head before retrying it"
                    )
                raise self.unavailable(
                    f"no etcd member answered within {self.deadline:g} s (last: {last}){note}"
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
            range_op(key, end, limit=limit, keys_only=keys_only, descend=descend),
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
        self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

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
            obj = self.txn((), [{"request_range": range_op(k)} for k in batch])
            for resp in obj.get("responses", ()):
                for kv in resp.get("response_range", {}).get("kvs", ()):
                    got = KV(kv)
                    out[got.key] = got
        return out

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for i in range(0, len(items), BATCH):
            self.txn((), [put_op(k, v) for k, v in items[i : i + BATCH]])

    # ---- watch -------------------------------------------------------------------------

    async def watch(
        self, prefix: str, start_revision: int, *, endpoint: int = 0
    ) -> AsyncGenerator[list[tuple[KV, bool]], None]:
        """The changes under ``prefix`` from ``start_revision`` on, a batch (list of (kv,
        deleted)) per watch response, from the member ``endpoint`` (an index; the caller
        rotates on failure). `Compacted` when the start revision is gone; the stream
        ending or failing raises (httpx errors, `unavailable`)."""
        base = self.endpoints[endpoint % len(self.endpoints)]
        create = {
            "create_request": {
                "key": b64(prefix),
                "range_end": b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        timeout = httpx.Timeout(self.timeout, read=None)
        headers = await asyncio.get_running_loop().run_in_executor(None, self._headers, base)
        async with (
            httpx.AsyncClient(timeout=timeout, **self._tls) as client,
            client.stream("POST", base + "/v3/watch", json=create, headers=headers) as r,
        ):
            if r.status_code == 401:
                self._forget_token()  # the next watch authenticates again
            if r.status_code != 200:
                raise self.unavailable(f"{base}: the watch was refused (HTTP {r.status_code})")
            async for line in r.aiter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if "error" in obj:
                    raise self.unavailable(f"{base}: watch: {obj['error']}")
                result = obj.get("result", {})
                if result.get("canceled"):
                    compact = _int(result.get("compact_revision"))
                    if compact:
                        raise Compacted(compact)
                    raise self.unavailable(f"{base}: the watch was cancelled")
                events = result.get("events")
                if events:
                    yield [(KV(e.get("kv", {})), e.get("type") == "DELETE") for e in events]
        raise self.unavailable(f"{base}: the watch stream ended")


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        obj = r.json()
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def rollout_bytes(state: Mapping[str, Any]) -> bytes:
    """A rollout as stored: canonical JSON (sorted keys), so that a transaction can
    compare a stored rollout with the one a server last read."""
    return json.dumps(dict(state), sort_keys=True).encode()


def put_op(key: str, value: bytes) -> dict[str, Any]:
    return {"request_put": {"key": b64(key), "value": b64(value)}}


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
    raise ValueError(f"a stored value has an unknown encoding ({blob[:1]!r})")


URL_OPTIONS = ("timeout", "deadline", "cacert", "cert", "key", "user")
PASSWORD_ENV = "CFL_ETCD_PASSWORD"  # the password of `?user=`: never in the URL


def parse_url(url: str) -> tuple[list[str], str, dict[str, Any]]:
    """``etcd://host:port[,host:port…][/prefix][?option=value&…]`` -> (endpoints, key
    prefix ending in ``/``, `EtcdClient` options). Options: ``timeout`` and ``deadline``
    (seconds); ``cacert`` (the CA that signed the members' certificates: the client URLs
    are then https), ``cert`` and ``key`` (a client certificate); ``user`` (etcd's
    authentication, with the password in ``$CFL_ETCD_PASSWORD``, so that it is in no
    command line or process list)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not parts.netloc:
        raise ValueError(f"not an etcd URL (etcd://host:port[,host:port…]): {url}")
    if "@" in parts.netloc:
        raise ValueError(f"an etcd URL takes ?user=NAME and ${PASSWORD_ENV}, not user@host")
    endpoints = [e.strip() for e in parts.netloc.split(",") if e.strip()]
    path = unquote(parts.path).strip("/")
    prefix = path + "/" if path else DEFAULT_PREFIX
    options: dict[str, Any] = {}
    for name, values in parse_qs(parts.query).items():
        if name not in URL_OPTIONS:
            raise ValueError(f"unknown etcd URL option `{name}` ({', '.join(URL_OPTIONS)})")
        value = values[-1]
        if name in ("timeout", "deadline"):
            try:
                options[name] = float(value)
            except ValueError:
                raise ValueError(f"etcd URL option `{name}` must be seconds: {value}") from None
        else:
            options[name] = value
    if "user" in options:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise ValueError(f"etcd user `{options['user']}` needs ${PASSWORD_ENV} set")
        options["password"] = password
    return endpoints, prefix, options


def client_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The TLS and authentication options of `parse_url` for `EtcdClient`."""
    return {k: options[k] for k in ("cacert", "cert", "key", "user", "password") if k in options}


class EtcdProject:
    """A cfglang project's keys on etcd (the module docstring's layout): what the server's
    store and `cfglang.connect("etcd://…")` both read and write."""

    def __init__(self, client: EtcdClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.live = self.prefix + "live/"
        self.head_key = self.live + "head"
        self.rollouts_prefix = self.live + "rollouts/"

    def close(self) -> None:
        self.client.close()

    def _name_prefix(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}/{segment(name)}/"

    def _latest(self, kind: str, name: str, revision: int | None) -> KV | None:
        """The last key of ``name`` at or below ``revision`` (None: the head)."""
        at = self.head() if revision is None else revision
        start = self._name_prefix(kind, name)
        kvs, _, _ = self.client.range(start, start + rev_key(at + 1), limit=1, descend=True)
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
                raise self.client.unavailable(f"a chunk of a stored value is missing: {k}")
            parts.append(kv.value)
        whole = b"".join(parts)
        if hashlib.sha256(whole).hexdigest() != digest:
            raise self.client.unavailable(f"a stored value does not match its SHA-256 {digest}")
        return _decode_plain(whole)

    def _stage(self, blob: bytes) -> bytes:
        """Write ``blob`` as chunks (before the commit) and return the reference to it."""
        digest = hashlib.sha256(blob).hexdigest()
        count = (len(blob) + CHUNK - 1) // CHUNK
        for i in range(count):
            key = f"{self.prefix}chunks/{digest}/{i:06d}"
            self.client.put(key, blob[i * CHUNK : (i + 1) * CHUNK])
        return b"@" + json.dumps({"sha256": digest, "chunks": count, "size": len(blob)}).encode()

    def head_at(self) -> tuple[int, int]:
        """(the head revision, the etcd revision it was read at): a watch from the
        latter + 1 misses no later change."""
        kvs, etcd_rev, _ = self.client.range(self.head_key)
        return (int(kvs[0].value) if kvs else 0), etcd_rev

    def head(self) -> int:
        return self.head_at()[0]

    def output_revisions(self, target: str, after: int, upto: int) -> list[int]:
        """The revisions in (after, upto] that stored an output of ``target``."""
        start = self._name_prefix("outputs", target)
        out = []
        for kv in self.client.scan(start, keys_only=True):
            rev, deleted = self._key_rev(kv.key)
            if after < rev <= upto and not deleted:
                out.append(rev)
        return out

    def put_rollout(self, target: str, state: Mapping[str, Any]) -> None:
        self.client.put(self.rollouts_prefix + segment(target), rollout_bytes(state))

    def replace_rollout(
        self, target: str, expect: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> bool:
        """`put_rollout` in a transaction guarded by the stored value (canonical JSON,
        `rollout_bytes`) being ``expect``'s, or by the key not existing."""
        key = self.rollouts_prefix + segment(target)
        if expect is None:
            guard = {"key": b64(key), "target": "CREATE", "result": "EQUAL"}
            guard["create_revision"] = "0"
        else:
            guard = {"key": b64(key), "target": "VALUE", "result": "EQUAL"}
            guard["value"] = b64(rollout_bytes(expect))
        obj = self.client.txn([guard], [put_op(key, rollout_bytes(state))])
        return bool(obj.get("succeeded"))

    def rollout(self, target: str) -> dict[str, Any] | None:
        kv = self.client.get(self.rollouts_prefix + segment(target))
        return dict(json.loads(kv.value)) if kv is not None else None

    def rollouts(self) -> dict[str, dict[str, Any]]:
        """Every target's rollout."""
        n = len(self.rollouts_prefix)
        return {
            unquote(kv.key[n:]): dict(json.loads(kv.value))
            for kv in self.client.scan(self.rollouts_prefix)
        }

    def add_usage(self, target: str, client_id: str, keys: Sequence[str], at: float) -> None:
        base = f"{self.prefix}usage/{segment(target)}/"
        self.client.put_many(
            [(f"{base}{segment(k)}/{segment(client_id)}", repr(at).encode()) for k in keys]
        )

    def used_keys(self, target: str, since: float) -> set[str]:
        base = f"{self.prefix}usage/{segment(target)}/"
        out = set()
        for kv in self.client.scan(base):
            if float(kv.value or b"0") >= since:
                out.add(unquote(kv.key[len(base) :].split("/", 1)[0]))
        return out

    def output_json(self, target: str, revision: int | None = None) -> tuple[int, Any] | None:
        """The stored output of ``target`` as of ``revision`` (None: the head), as the
        JSON object it was stored as: (the revision that stored it, the object)."""
        kv = self._latest("outputs", target, revision)
        if kv is None:
            return None
        rev, deleted = self._key_rev(kv.key)
        return None if deleted else (rev, json.loads(self._blob(kv.value)))

    def put_client(self, client_id: str, target: str, record: Mapping[str, Any]) -> None:
        """What a client last read of ``target`` (``record`` as `clients` lists it)."""
        key = f"{self.prefix}clients/{segment(client_id)}/{segment(target)}"
        self.client.put(key, json.dumps(dict(record)).encode())
