"""`cfglang.connect(url, target)`: a configuration that follows a `cflc serve` server.

The same interface as `cfglang.live` (`current` snapshot, `subscribe(prefix, cb)`,
`on_error(cb)`, `close()`, a context manager), with the revisions coming from the server
(SERVER.md) instead of the files:

1. Start. ``GET /v1/configs/{target}`` gives the first snapshot (its revision is the
   server's, `X-Cfl-Revision`). When the server cannot be reached (or answers 5xx) and an
   on-disk cache (``cache_dir``) holds a configuration of this target, the client starts
   from it and keeps trying to connect; with no cache the error is raised
   (`ConnectError`, a `cfglang.ConfigError`).
2. Follow. One background thread runs an asyncio loop that follows
   ``GET /v1/watch/{target}`` (server-sent events parsed by ``httpx-sse``), always sending
   ``Last-Event-ID: <the current snapshot's revision>``, so a reconnection resumes after
   the last revision applied and misses none. Each announced revision is fetched
   (``?revision=N``) and applied in order; a revision at or below the current one is
   ignored, so the client never goes backwards.
3. Faults. When the stream ends or fails (server down, restart, 4xx/5xx), ``current``
   keeps the last good snapshot, ``on_error`` callbacks are called once per outage with
   a `ConnectError`, and the client reconnects with exponential backoff and full jitter
   (``backoff=(first, max)`` seconds). The stream's read timeout is longer than the
   server's ping interval, so a half-open connection is noticed too.
4. Cache. With ``cache_dir`` every applied snapshot is written there atomically (one
   JSON file per target and server), so a restarting service starts from its last good
   configuration while the server is down.
5. Usage. Reads of the configuration through the snapshot (``current.config.a.b``,
   ``current.get("a.b")``, the ``new`` value given to subscribers, ``to_dict()``) record
   the data path of each value taken out; the counts are sent batched to
   ``POST /v1/usage`` every ``usage_interval`` seconds and on `close` (reporting is
   best-effort: a failed report is kept and sent with the next one).

Delivery to subscribers is `cfglang.tools.live`'s: the same `Update`, the same rules
(exactly the changed subtrees, all callbacks of revision n before n + 1, a failing
callback logged and the others still called).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import socket
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import yaml
from httpx_sse import SSEError, aconnect_sse

from cfglang import datapath
from cfglang.atomic import write_atomic
from cfglang.config import Config, ConfigError, _wrap
from cfglang.tools.diff import diff
from cfglang.tools.live import (
    _MISSING,
    Snapshot,
    Subscription,
    Update,
    _lookup,
    _takes_four,
    _update_for,
    parse_path,
)

__all__ = ["ConnectError", "RemoteConfig", "RemoteSnapshot", "connect"]

log = logging.getLogger("cfglang.connect")

Path = tuple[str | int, ...]


class ConnectError(ConfigError):
    """The server cannot be reached or refuses the request: ``status`` (None when there
    was no answer), the error ``code`` and ``message`` of its JSON body."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        Exception.__init__(self, message)
        self.diagnostics = []
        self.status, self.code, self.message = status, code, message


class _Reads:
    """The data paths the application read, counted, until the next usage report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[Path] = collections.Counter()

    def record(self, path: Path) -> None:
        with self._lock:
            self._counts[path] += 1

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts = self._counts, collections.Counter()
        return {datapath.render(p): n for p, n in counts.items()}

    def put_back(self, reads: Mapping[str, int]) -> None:
        with self._lock:
            for p, n in reads.items():
                self._counts[datapath.parse(p)] += n


class _Tracked(Config):
    """A `Config` that records the path of every value taken out of it: a scalar or a
    list records its own path; an object records nothing (its fields record theirs when
    they are read), unless it is taken whole (`to_dict`)."""

    __slots__ = ("_prefix", "_reads")

    def __init__(self, data: Mapping[str, Any], prefix: Path, reads: _Reads) -> None:
        super().__init__(data)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_reads", reads)

    def _take(self, key: str, value: Any) -> Any:
        path = (*self._prefix, key)
        if isinstance(value, dict):
            return _Tracked(value, path, self._reads)
        self._reads.record(path)
        return _wrap(value)

    def __getitem__(self, key: str) -> Any:
        return self._take(key, self._data[key])

    def __getattr__(self, key: str) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            raise AttributeError(key) from None
        return self._take(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._data  # asking whether a key exists reads no value

    def to_dict(self) -> dict[str, Any]:
        self._reads.record(self._prefix)
        return super().to_dict()


def _tracked(value: Any, prefix: Path, reads: _Reads) -> Any:
    if isinstance(value, dict):
        return _Tracked(value, prefix, reads)
    reads.record(prefix)
    return _wrap(value)


@attrs.frozen
class RemoteSnapshot(Snapshot):
    """A `cfglang.live.Snapshot` whose ``revision`` is the server's revision of the
    target, and whose reads are counted for the usage report."""

    reads: _Reads | None = attrs.field(default=None, repr=False, eq=False)

    def get(self, path: str, default: Any = None) -> Any:
        parts = parse_path(path)
        value = _lookup(self.data, parts)
        if value is _MISSING:
            return default
        return _tracked(value, parts, self.reads) if self.reads is not None else _wrap(value)


def _parse(text: str, fmt: str) -> dict[str, Any]:
    if fmt == "json":
        data = json.loads(text)
    elif fmt == "yaml":
        data = yaml.safe_load(text)
    else:
        data = tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the document is not an object")
    return data


def _error_of(r: httpx.Response) -> ConnectError:
    code, message = None, f"HTTP {r.status_code}"
    try:
        err = r.json()["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        pass
    return ConnectError(f"{r.request.url}: {message}", r.status_code, code)


class RemoteConfig:
    """A configuration that follows a server; create it with `connect` (see the module
    docstring, and docs/client.md for the guarantees). Thread-safe like `LiveConfig`."""

    def __init__(
        self,
        url: str | Sequence[str],
        target: str,
        *,
        token: str | None = None,
        labels: Mapping[str, str] | None = None,
        client_id: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        format: str = "json",
        timeout: float = 10.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        read_timeout: float = 60.0,
        usage_interval: float | None = 60.0,
        watch: bool = True,
    ) -> None:
        if format not in ("json", "yaml", "toml"):
            raise ValueError(f"format must be json, yaml or toml, not {format!r}")
        # Several URLs: servers of one store (etcd); the client moves to the next when
        # one fails, and revisions are the store's, so Last-Event-ID means the same there.
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("connect needs a server URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.url = self.urls[0]
        self.target = target.strip("/")
        self.format = format
        self.client_id = client_id or f"{socket.gethostname()}:{os.getpid()}"
        self.labels = dict(labels or {})
        self._backoff = backoff
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._usage_interval = usage_interval
        headers = {"X-Cfl-Client-Id": self.client_id}
        if self.labels:
            headers["X-Cfl-Client-Labels"] = ",".join(f"{k}={v}" for k, v in self.labels.items())
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._name = quote(self.target, safe="")
        self._cache = os.path.join(os.fspath(cache_dir), self._cache_name()) if cache_dir else None
        self._lock = threading.Lock()
        self._deliver_lock = threading.RLock()
        self._subs: list[Subscription] = []
        self._errors: list[Callable[[ConfigError], Any]] = []
        self._reads = _Reads()
        self._closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.connected = False
        self._down = False  # an outage was reported (on_error) and has not ended
        self._current = self._start()
        if watch:
            self._start_thread()

    # ---- public (as LiveConfig) --------------------------------------------------------

    @property
    def current(self) -> RemoteSnapshot:
        """The last good snapshot (replaced atomically, never mutated)."""
        return self._current

    @property
    def revision(self) -> int:
        return self._current.revision

    def subscribe(self, prefix: str, callback: Callable[..., Any]) -> Subscription:
        """As `LiveConfig.subscribe`: ``callback`` gets an `Update` (or its four fields)
        whenever the subtree at ``prefix`` changes in a new revision."""
        sub = Subscription(parse_path(prefix), prefix, callback, _takes_four(callback), None)
        sub._owner = self  # type: ignore[assignment]  # `cancel` calls our `_remove`
        with self._lock:
            self._subs.append(sub)
        return sub

    def on_error(self, callback: Callable[[ConfigError], Any]) -> Callable[[], None]:
        """Call ``callback(ConnectError)`` when the server becomes unreachable or refuses
        the client (once per outage; ``current`` keeps the last good snapshot)."""
        with self._lock:
            self._errors.append(callback)

        def cancel() -> None:
            with self._lock:
                if callback in self._errors:
                    self._errors.remove(callback)

        return cancel

    def report_usage(self) -> bool:
        """Send the reads counted since the last report now; True if the server took them
        (or there was nothing to send)."""
        reads = self._reads.take()
        if not reads:
            return True
        try:
            with self._client() as c:
                r = c.post("/v1/usage", json={"target": self.target, "keys": sorted(reads)})
            if r.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        self._reads.put_back(reads)
        return False

    def close(self) -> None:
        """Stop following the server and send the last usage report; no callback starts
        after `close` returns (one already running on another thread finishes)."""
        if self._closed.is_set():
            return
        self._closed.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop has already finished
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=30)
        with self._deliver_lock:
            pass
        if self._usage_interval is not None:
            self.report_usage()

    def __enter__(self) -> RemoteConfig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ---------------------------------------------------------------------

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _cache_name(self) -> str:
        server = quote(",".join(u.split("://", 1)[-1] for u in self.urls), safe="")
        return f"{server}--{self._name}.{self.format}.json"

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self._headers, timeout=self._timeout)

    def _snapshot(self, revision: int, data: dict[str, Any]) -> RemoteSnapshot:
        return RemoteSnapshot(revision, _Tracked(data, (), self._reads), data, self._reads)

    def _start(self) -> RemoteSnapshot:
        for url in self.urls:  # the first that answers
            self.url = url
            try:
                with self._client() as c:
                    r = c.get(f"/v1/configs/{self._name}", params={"format": self.format})
            except httpx.HTTPError as e:
                error = ConnectError(f"cannot reach {self.url}: {e}")
                continue
            if r.status_code == 200:
                snap = self._snapshot(int(r.headers["x-cfl-revision"]), _parse(r.text, self.format))
                self._save(snap, r.text)
                self.connected = True
                return snap
            error = _error_of(r)
            if r.status_code < 500:
                raise error  # 401, 403, 404: a cache would only hide the mistake
        self.url = self.urls[0]
        return self._from_cache(error)

    def _from_cache(self, error: ConnectError) -> RemoteSnapshot:
        """The cached snapshot to start from when the first read failed with ``error``
        (raised when there is none)."""
        cached = self._load()
        if cached is None:
            raise error
        log.warning("%s; starting from the cached revision %d", error, cached.revision)
        self._down = True
        return cached

    def _save(self, snap: RemoteSnapshot, text: str) -> None:
        if self._cache is None:
            return
        body = {"url": self.url, "target": self.target, "revision": snap.revision, "text": text}
        try:
            os.makedirs(os.path.dirname(self._cache), exist_ok=True)
            write_atomic(self._cache, json.dumps(body))
        except OSError as e:
            log.warning("cannot write the configuration cache %s: %s", self._cache, e)

    def _load(self) -> RemoteSnapshot | None:
        if self._cache is None:
            return None
        try:
            with open(self._cache, encoding="utf-8") as f:
                body = json.load(f)
            return self._snapshot(int(body["revision"]), _parse(body["text"], self.format))
        except (OSError, ValueError, KeyError, TypeError) as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("ignoring the configuration cache %s: %s", self._cache, e)
            return None

    def _failed(self, error: ConnectError) -> None:
        self.connected = False
        if self._down:
            log.debug("%s (still down)", error)
            return
        self._down = True
        with self._lock:
            handlers = list(self._errors)
        if not handlers:
            log.warning("%s; keeping revision %d", error, self._current.revision)
        for h in handlers:
            try:
                h(error)
            except Exception:
                log.exception("an on_error callback of %s failed", self.target)

    def _apply(self, revision: int, text: str) -> None:
        """Make ``revision`` current and deliver it (on the loop thread)."""
        with self._deliver_lock:
            if self._closed.is_set():
                return
            old = self._current
            if revision <= old.revision:
                return  # never backwards
            data = _parse(text, self.format)
            new = self._snapshot(revision, data)
            changes = diff(old.data, data)
            self._current = new  # one reference assignment: readers see old or new, whole
            self._save(new, text)
            if not changes:
                return
            with self._lock:
                subs = list(self._subs)
            for sub in subs:
                if sub._owner is None or self._closed.is_set():
                    continue
                update = _update_for(sub, changes, old, new)
                if update is None:
                    continue
                if isinstance(update.new, Config):
                    tracked = _Tracked(_lookup(data, sub.prefix), sub.prefix, self._reads)
                    update = Update(update.path, update.old, tracked, update.revision)
                try:
                    if sub.spread:
                        sub.callback(*update)
                    else:
                        sub.callback(update)
                except Exception:
                    log.exception(
                        "a subscriber of %s (prefix `%s`) failed at revision %d",
                        self.target,
                        sub.path,
                        revision,
                    )

    # ---- the background loop -----------------------------------------------------------

    def _start_thread(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

        self._thread = threading.Thread(
            target=run, name=f"cfglang-connect:{self.target}", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=30)

    async def _main(self) -> None:
        assert self._stop is not None
        timeout = httpx.Timeout(self._timeout, read=self._read_timeout)
        async with httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=timeout
        ) as client:
            follow = asyncio.ensure_future(self._follow(client))
            usage = asyncio.ensure_future(self._report_loop(client))
            await self._stop.wait()
            for task in (follow, usage):
                task.cancel()
            await asyncio.gather(follow, usage, return_exceptions=True)

    async def _report_loop(self, client: httpx.AsyncClient) -> None:
        if self._usage_interval is None:
            return
        while True:
            await asyncio.sleep(self._usage_interval)
            reads = self._reads.take()
            if not reads:
                continue
            try:
                r = await client.post(
                    "/v1/usage", json={"target": self.target, "keys": sorted(reads)}
                )
                if r.status_code != 200:
                    log.debug("usage report refused: %s", _error_of(r))
                    if r.status_code >= 500:
                        self._reads.put_back(reads)
            except httpx.HTTPError:
                self._reads.put_back(reads)

    async def _follow(self, client: httpx.AsyncClient) -> None:
        first, most = self._backoff
        attempt = 0
        while True:
            try:
                await self._stream(client)
                error = ConnectError(f"{self.url}: the watch stream of {self.target} ended")
            except asyncio.CancelledError:
                raise
            except ConnectError as e:
                error = e
            except (httpx.HTTPError, SSEError, ValueError, KeyError) as e:
                error = ConnectError(f"cannot follow {self.url}: {type(e).__name__}: {e}")
            if self.connected:
                attempt = 0  # it was up: start the backoff again from the first delay
            self._failed(error)
            if len(self.urls) > 1:  # the next server; the stream resumes there
                self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
                client.base_url = httpx.URL(self.url)
            # Exponential backoff with full jitter (no thundering herd after a restart).
            delay = random.uniform(0, min(most, first * 2**attempt))
            attempt += 1
            await asyncio.sleep(delay)

    async def _stream(self, client: httpx.AsyncClient) -> None:
        headers = {"Last-Event-ID": str(self._current.revision)}
        async with aconnect_sse(
            client, "GET", f"/v1/watch/{self._name}", headers=headers
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                raise _error_of(source.response)
            self._up()
            async for event in source.aiter_sse():
                if event.event != "revision":
                    continue
                revision = int(json.loads(event.data)["revision"])
                if revision > self._current.revision:
                    await self._fetch(client, revision)

    def _up(self) -> None:
        """The stream is open (whatever changed while we were away is announced now):
        the outage, if any, is over."""
        self.connected = True
        if self._down:
            self._down = False
            log.info(
                "%s: following %s again from revision %d", self.url, self.target, self.revision
            )

    async def _fetch(self, client: httpx.AsyncClient, revision: int) -> None:
        r = await client.get(
            f"/v1/configs/{self._name}", params={"format": self.format, "revision": revision}
        )
        if r.status_code != 200:
            raise _error_of(r)
        self._apply(int(r.headers.get("x-cfl-revision", revision)), r.text)


def connect(
    url: str | Sequence[str],
    target: str,
    *,
    token: str | None = None,
    labels: Mapping[str, str] | None = None,
    client_id: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    format: str = "json",
    timeout: float = 10.0,
    backoff: tuple[float, float] = (0.5, 30.0),
    read_timeout: float = 60.0,
    usage_interval: float | None = 60.0,
    watch: bool = True,
) -> RemoteConfig:
    """Read ``target`` from the server at ``url`` and follow its revisions; see
    `RemoteConfig`. Raises `ConnectError` when the first read fails and no cache holds
    the target (or the server refuses: 401, 403, 404). ``usage_interval=None`` turns the
    usage reports off; ``watch=False`` reads once and starts no thread.

    ``url`` may be a list of servers sharing one store (several `cflc serve --store
    etcd://…`): the client reads from the first that answers and moves to the next when
    its stream fails, resuming after the last revision it applied. An
    ``etcd://host:port[,host:port…][/prefix]`` URL reads the etcd cluster directly
    (`cfglang.tools.connect_etcd`), with the same interface and guarantees."""
    if isinstance(url, str) and url.startswith("etcd://"):
        # only when reading etcd directly (the module imports this one)
        from cfglang.tools.connect_etcd import EtcdConfig

        return EtcdConfig(
            url,
            target,
            token=token,
            labels=labels,
            client_id=client_id,
            cache_dir=cache_dir,
            format=format,
            timeout=timeout,
            backoff=backoff,
            usage_interval=usage_interval,
            watch=watch,
        )
    return RemoteConfig(
        url,
        target,
        token=token,
        labels=labels,
        client_id=client_id,
        cache_dir=cache_dir,
        format=format,
        timeout=timeout,
        backoff=backoff,
        read_timeout=read_timeout,
        usage_interval=usage_interval,
        watch=watch,
    )
