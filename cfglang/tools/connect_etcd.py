"""`cfglang.connect("etcd://host:port[,host:port…][/prefix]", target)`: a configuration
read from the etcd cluster the servers store in, with no server in between.

The same interface and guarantees as the HTTP client (`cfglang.tools.connect`):
``current`` is the last good snapshot, ``subscribe``/``on_error``/``close`` behave the
same, an on-disk cache starts a service while etcd is down, and reads are counted for the
usage report. What differs is where revisions come from:

1. Start. The target's stored output at the head (the JSON of the revision's compiled
   document in the chosen format), or, while an active rollout does not select this
   client (its labels, or its id's bucket; `cfglang.tools.rollout`, the server's rule),
   the rollout's stable revision.
2. Follow. A watch of the project's ``live/`` keys (the head and the rollouts) is the
   doorbell: on every change, and on every reconnection, the client reads the head and
   applies each revision of the target after the one it has, in order, up to the head (or
   up to the stable revision while a rollout holds it), so a revision is never skipped,
   whatever the watch missed. A failed watch or read moves to the next member with
   exponential backoff (full jitter); ``current`` stays while etcd has no quorum.
3. Usage and clients. The key-level reads are written to the store's usage keys, and the
   revision the client runs to its clients key, as the server does for its clients, so
   ``GET /v1/configs/{target}/usage`` and ``GET /v1/clients`` on any server include
   this client.

etcd authentication (users, TLS client certificates) is not supported: ``token`` must be
None.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Mapping

import httpx

from cfglang.tools.connect import ConnectError, RemoteConfig, RemoteSnapshot, _parse
from cfglang.tools.etcd import (
    Compacted,
    EtcdClient,
    EtcdProject,
    EtcdUnavailable,
    client_options,
    parse_url,
)
from cfglang.tools.rollout import held_at

log = logging.getLogger("cfglang.connect")


class EtcdConfig(RemoteConfig):
    """A configuration that follows a target in etcd (see the module docstring)."""

    def __init__(
        self,
        url: str,
        target: str,
        *,
        token: str | None = None,
        labels: Mapping[str, str] | None = None,
        client_id: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        format: str = "json",
        timeout: float = 10.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        usage_interval: float | None = 60.0,
        watch: bool = True,
    ) -> None:
        if token is not None:
            raise ValueError(
                "an etcd:// URL takes no token: etcd's own authentication is "
                "?user=NAME with $CFL_ETCD_PASSWORD"
            )
        endpoints, prefix, options = parse_url(url)
        client = EtcdClient(
            endpoints,
            timeout=options.get("timeout", min(timeout, 3.0)),
            deadline=options.get("deadline", max(timeout, 1.0)),
            **client_options(options),
        )
        self._project = EtcdProject(client, prefix)
        self._endpoint = 0
        try:
            super().__init__(
                url,
                target,
                labels=labels,
                client_id=client_id,
                cache_dir=cache_dir,
                format=format,
                timeout=timeout,
                backoff=backoff,
                usage_interval=usage_interval,
                watch=watch,
            )
        except BaseException:
            self._project.close()  # the first read failed: no one will call close
            raise

    # ---- reading the store -------------------------------------------------------------

    def _held(self) -> int | None:
        return held_at(self._project.rollout(self.target), self.client_id, self.labels)

    def _text(self, revision: int | None) -> tuple[int, str] | None:
        """(the revision, the document in this client's format) of the target as of
        ``revision`` (None: the head); None when the target does not exist then."""
        got = self._project.output_json(self.target, revision)
        if got is None:
            return None
        rev, obj = got
        text = obj["formats"].get(self.format)
        if text is None:
            raise ConnectError(
                f"{self.url}: `{self.target}` cannot be written as {self.format}",
                406,
                "format_unavailable",
            )
        return rev, str(text)

    def _record(self, revision: int) -> None:
        """Best effort: the revision this client runs, in the store's clients keys."""
        record = {
            "client_id": self.client_id,
            "token": None,
            "labels": dict(self.labels),
            "target": self.target,
            "revision": revision,
            "last_seen": time.time(),
        }
        try:
            self._project.put_client(self.client_id, self.target, record)
        except EtcdUnavailable as e:
            log.debug("cannot record client %s: %s", self.client_id, e)

    def _start(self) -> RemoteSnapshot:
        try:
            got = self._text(self._held())
        except EtcdUnavailable as e:
            return self._from_cache(ConnectError(f"cannot reach {self.url}: {e}"))
        if got is None:
            raise ConnectError(f"{self.url}: no target `{self.target}`", 404, "not_found")
        rev, text = got
        snap = self._snapshot(rev, _parse(text, self.format))
        self._save(snap, text)
        self.connected = True
        self._record(rev)
        return snap

    def _advance(self) -> None:
        """Apply every revision of the target after the current one, in order, up to the
        head (or the stable revision a rollout holds this client at). Blocking."""
        head = self._project.head()
        held = self._held()
        upto = head if held is None else min(head, held)
        before = self._current.revision
        for rev in self._project.output_revisions(self.target, before, upto):
            got = self._text(rev)
            if got is not None:
                self._apply(got[0], got[1])
        if self._current.revision != before:
            self._record(self._current.revision)

    # ---- usage -------------------------------------------------------------------------

    def report_usage(self) -> bool:
        reads = self._reads.take()
        if not reads:
            return True
        try:
            self._project.add_usage(self.target, self.client_id, sorted(reads), time.time())
            return True
        except EtcdUnavailable:
            self._reads.put_back(reads)
            return False

    def close(self) -> None:
        super().close()
        self._project.close()

    # ---- the background loop -----------------------------------------------------------

    async def _main(self) -> None:
        assert self._stop is not None
        follow = asyncio.ensure_future(self._follow_etcd())
        usage = asyncio.ensure_future(self._usage_loop())
        await self._stop.wait()
        for task in (follow, usage):
            task.cancel()
        await asyncio.gather(follow, usage, return_exceptions=True)

    async def _usage_loop(self) -> None:
        if self._usage_interval is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._usage_interval)
            await loop.run_in_executor(None, self.report_usage)

    async def _follow_etcd(self) -> None:
        loop = asyncio.get_running_loop()
        project = self._project
        first, most = self._backoff
        attempt = 0
        start: int | None = None  # the etcd revision to watch from (None: read first)
        while True:
            try:
                if start is None:
                    _, etcd_rev = await loop.run_in_executor(None, project.head_at)
                    await loop.run_in_executor(None, self._advance)
                    start = etcd_rev + 1
                    self._up()
                    attempt = 0
                watch = project.client.watch(project.live, start, endpoint=self._endpoint)
                async with contextlib.aclosing(watch):  # its connection closes on cancel
                    async for batch in watch:
                        for kv, _ in batch:
                            start = max(start, kv.mod_revision + 1)
                        await loop.run_in_executor(None, self._advance)
                error = ConnectError(f"{self.url}: the etcd watch ended")
            except asyncio.CancelledError:
                raise
            except Compacted:
                start = None
                continue
            except ConnectError as e:
                error = e
            except (EtcdUnavailable, httpx.HTTPError, ValueError, KeyError) as e:
                error = ConnectError(f"cannot follow {self.url}: {type(e).__name__}: {e}")
            start = None  # read again before watching: a change may have gone unheard
            self._failed(error)
            self._endpoint = (self._endpoint + 1) % len(project.client.endpoints)
            delay = random.uniform(0, min(most, first * 2**attempt))
            attempt += 1
            await asyncio.sleep(delay)
