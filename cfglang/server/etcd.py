"""The etcd store: `cfglang.server.store.Store` on an etcd (v3) cluster, so that several
`cflc serve` processes share one linear history; and `follow`, the task that keeps a
server at the cluster's head. The client, the key layout and the blob encoding are
`cfglang.tools.etcd`'s (shared with `cfglang.connect("etcd://…")`).

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
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

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
from cfglang.tools.etcd import (
    INLINE_MAX,
    KV,
    MAX_TXN_OPS,
    TXN_BUDGET,
    Compacted,
    EtcdClient,
    EtcdProject,
    EtcdRefused,
    EtcdUnavailable,
    b64,
    client_options,
    encode_blob,
    parse_url,
    put_op,
    range_op,
    rev_key,
    rollout_bytes,
    segment,
)

if TYPE_CHECKING:
    from cfglang.server.core import Service

log = logging.getLogger("cfglang.server.etcd")


class Unavailable(StoreUnavailable, EtcdUnavailable):
    """No etcd member answered in time: the store is unavailable (HTTP 503)."""


class Refused(Unavailable, EtcdRefused):
    """etcd refused a request as invalid (too large, too many operations)."""


class StoreClient(EtcdClient):
    """`EtcdClient` raising the store's exceptions."""

    unavailable = Unavailable
    refused = Refused


def _output_bytes(out: TargetOutput) -> bytes:
    obj = {"formats": dict(out.formats), "diffable": out.diffable, "files": list(out.files)}
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _output(data: bytes) -> TargetOutput:
    obj = json.loads(data)
    return TargetOutput(obj["formats"], obj["diffable"], tuple(obj.get("files", ())))


class EtcdStore(EtcdProject):
    """`cfglang.server.store.Store` on etcd (see the module docstring)."""

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        endpoints, prefix, options = parse_url(url)
        client = StoreClient(
            endpoints,
            timeout=options.get("timeout", 3.0),
            deadline=options.get("deadline", 8.0),
            **client_options(options),
        )
        return cls(client, prefix)

    # ---- keys --------------------------------------------------------------------------

    # ---- revisions ---------------------------------------------------------------------

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
            (f"{self.prefix}revisions/{rev_key(rev)}", json.dumps(record).encode()),
        ]
        blobs: list[tuple[str, bytes]] = []
        for path, text in sorted(change.sources.items()):
            key = self._name_prefix("sources", path) + rev_key(rev)
            if text is None:
                puts.append((key + ".deleted", b""))
            else:
                blobs.append((key, encode_blob(text.encode("utf-8"))))
        for target, out in sorted(change.outputs.items()):
            key = self._name_prefix("outputs", target) + rev_key(rev)
            if out is None:
                puts.append((key + ".deleted", b""))
            else:
                blobs.append((key, encode_blob(_output_bytes(out))))
        if change.audit:
            entries = [{**e, "revision": rev} for e in change.audit]
            puts.append((self._audit_key(), json.dumps(entries, ensure_ascii=False).encode()))
        for target, state in sorted(change.rollouts.items()):
            # The rollouts a write starts: in the revision's transaction, so a watcher
            # never sees the revision without the rollout that gates it.
            puts.append((self.rollouts_prefix + segment(target), rollout_bytes(state)))
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
            raise Refused(
                f"revision {rev} writes {len(ops)} keys in one transaction, over etcd's "
                f"default --max-txn-ops of {MAX_TXN_OPS} (raise it on every member)"
            )
        if change.base == 0:
            guard = {"key": b64(self.head_key), "target": "CREATE", "result": "EQUAL"}
            guard["create_revision"] = "0"
        else:
            guard = {"key": b64(self.head_key), "target": "VALUE", "result": "EQUAL"}
            guard["value"] = b64(str(change.base))
        obj = self.client.txn(
            [guard],
            [put_op(k, v) for k, v in ops],
            [{"request_range": range_op(self.head_key)}],
        )
        if obj.get("succeeded"):
            return rev
        current = 0
        for resp in obj.get("responses", ()):
            for kv in resp.get("response_range", {}).get("kvs", ()):
                current = int(KV(kv).value)
        if current == rev:  # our own earlier attempt, whose answer was lost?
            mine = self.client.get(f"{self.prefix}revisions/{rev_key(rev)}")
            if mine is not None and json.loads(mine.value).get("commit") == commit_id:
                return rev
        raise StaleHead(current)

    def revision(self, number: int) -> Revision | None:
        kv = self.client.get(f"{self.prefix}revisions/{rev_key(number)}")
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

    def target_history(self, target: str) -> list[Revision]:
        revs = self.output_revisions(target, 0, 2**62)
        keys = [f"{self.prefix}revisions/{rev_key(r)}" for r in revs]
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

    def seen(self, record: ClientRecord) -> None:
        self.seen_all([record])

    def seen_all(self, records: Sequence[ClientRecord]) -> None:
        items = []
        for r in records:
            key = f"{self.prefix}clients/{segment(r.client_id)}/{segment(r.target)}"
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
            watch = store.client.watch(store.live, start, endpoint=endpoint)
            async with contextlib.aclosing(watch):  # its connection closes on cancel
                async for batch in watch:
                    failures = 0
                    moved, rollouts = False, {}
                    for kv, deleted in batch:
                        start = max(start, kv.mod_revision + 1)
                        if kv.key == store.head_key:
                            moved = True
                        elif kv.key.startswith(store.rollouts_prefix) and not deleted:
                            rollouts[unquote(kv.key[n:])] = json.loads(kv.value)
                    dirty = True  # until both are applied
                    # Rollouts first: one a write started comes in the same batch as its
                    # revision, and must gate it before the watchers hear of it.
                    if rollouts:
                        await service.set_rollouts(rollouts)
                    if moved:
                        await service.catch_up()
                    dirty = False
        except asyncio.CancelledError:
            raise
        except Compacted as e:
            log.info("etcd watch: %s; reading the store again", e)
            start = None
            continue
        except (EtcdUnavailable, httpx.HTTPError, ValueError, KeyError) as e:
            log.warning("etcd watch on %s: %s", store.client.endpoints[endpoint], e)
        endpoint = (endpoint + 1) % len(store.client.endpoints)
        first, most = backoff
        await asyncio.sleep(random.uniform(0, min(most, first * 2**failures)))
        failures += 1
