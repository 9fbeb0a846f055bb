"""`cflc publish`: the working tree's changed sources as one write to a running server.

The server's head and its sources are read first; every file whose text differs (and,
without TARGETs, every file the working tree no longer has) goes in one `POST
/v1/changes` whose base is that head, so a change on the server in between is refused
(409), never overwritten. With TARGETs only the files those targets read (compiled here)
are sent, and nothing is deleted. The semantic diff of each target the write changed is
then read back from the server and printed, secrets as `<secret>`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from cfglang.server.core import tree_files

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _files_read(root: str, targets: Sequence[str]) -> set[str] | None:
    """The project paths the named targets read (compiled in the working tree); None when
    one of them does not exist."""
    from cfglang import api  # only when TARGETs are named: the compile runs here

    out: set[str] = set()
    for t in targets:
        rel = t if t.endswith(".cfl") else t + ".cfl"
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            return None
        result = api.compile(path, root=root, emit_outputs=False, decrypt_secrets=False)
        out.add(rel)
        out.update(f.replace(os.sep, "/") for f in result.files if not os.path.isabs(f))
    return out


def _show(d: dict[str, Any]) -> str:
    where = f"{d.get('file')}:{d.get('line')}:{d.get('column')}: " if d.get("file") else ""
    return f"{where}{d.get('severity', 'error')}[{d.get('code')}]: {d.get('message')}"


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def publish(
    root: str,
    server: str,
    *,
    targets: Sequence[str] = (),
    token: str | None = None,
    dry_run: bool = False,
    rollout: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    err: Callable[[str], None] = print,
) -> int:
    """Publish ``root``'s changed sources to ``server``; the exit status. With ``rollout``
    (``{"selector": {...}}`` or ``{"percent": P}``) the new revision starts a rollout of
    every target it changes, in the same write (docs/server.md, Gradual rollouts)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60) as c:
            return _publish(c, root, targets, dry_run, echo, err, rollout)
    except httpx.InvalidURL as e:
        err(f"error: bad --server URL: {e}")
        return EXIT_USAGE
    except httpx.HTTPError as e:
        err(f"error: cannot reach {server}: {e}")
        return EXIT_ERRORS


def _fail(r: httpx.Response, err: Callable[[str], None]) -> int:
    try:
        body = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        err(f"error: the server answered {r.status_code}")
        return EXIT_ERRORS
    return _refused(r.status_code, body, err)


def _refused(status: int, body: Mapping[str, Any], err: Callable[[str], None]) -> int:
    """Print a refusal (``body`` the ``error`` object of SERVER.md); the exit status."""
    err(f"error: {body.get('message')} ({status} {body.get('code')})")
    details = body.get("details")
    if status == 422 and isinstance(details, list):
        for d in details:
            err("  " + _show(d))
    if status == 409 and isinstance(details, dict):
        for c in details.get("conflicts", []):
            err(f"  conflict in {c.get('path')}: changed on the server since this tree's base")
        err(f"  the server is at revision {details.get('current')}")
    return EXIT_ERRORS


def _publish(
    c: httpx.Client,
    root: str,
    targets: Sequence[str],
    dry_run: bool,
    echo: Callable[[str], None],
    err: Callable[[str], None],
    rollout: Mapping[str, Any] | None = None,
) -> int:
    listing = c.get("/v1/sources")
    if listing.status_code != 200:
        return _fail(listing, err)
    head, remote_paths = listing.json()["revision"], listing.json()["files"]
    before = {t["target"]: t["revision"] for t in c.get("/v1/configs").json()}
    local = tree_files(root)
    only: set[str] | None = None
    if targets:
        only = _files_read(root, targets)
        if only is None:
            err(f"error: no such target in {root}: {', '.join(targets)}")
            return EXIT_USAGE

    def theirs(path: str) -> str | None:
        r = c.get(f"/v1/sources/{quote(path)}", params={"revision": head})
        return r.text if r.status_code == 200 else None

    changes = _changes(local, remote_paths, theirs, only)
    if not changes:
        echo(f"nothing to publish: the server's revision {head} has these sources")
        return EXIT_OK
    _list(changes, remote_paths, echo)
    if dry_run:
        return EXIT_OK
    body: dict[str, Any] = {"base": head, "files": changes}
    if rollout is not None:
        body["rollout"] = dict(rollout)
    r = c.post("/v1/changes", json=body)
    if r.status_code != 200:
        return _fail(r, err)
    result = r.json()
    for t in result["targets"]:
        echo(f"{t}:")
        if t not in before:
            echo("  (new target)")
            continue
        d = c.get(f"/v1/configs/{quote(t, safe='')}/diff", params={"from": before[t]})
        if d.status_code != 200:
            echo("  (removed)" if d.status_code == 404 else f"  (no diff: {d.status_code})")
            continue
        _show_diff(d.json(), echo)
    merged = " (merged)" if result.get("merged") else ""
    echo(f"published revision {result['revision']}{merged}")
    _show_rollouts(result.get("rollouts", ()), echo)
    return EXIT_OK


def _show_rollouts(rollouts: Sequence[Mapping[str, Any]], echo: Callable[[str], None]) -> None:
    for ro in rollouts:
        who = (
            ",".join(f"{k}={v}" for k, v in ro["selector"].items())
            if "selector" in ro
            else f"{ro['percent']:g}% of clients"
        )
        echo(
            f"rollout of {ro['target']}: revision {ro['revision']} to {who}, "
            f"the others stay at {ro['stable']}"
        )


def _changes(
    local: Mapping[str, str],
    remote_paths: Sequence[str],
    theirs: Callable[[str], str | None],
    only: set[str] | None,
) -> dict[str, str | None]:
    """The files to send: each local file whose text differs from ``theirs(path)``, and,
    without ``only``, a deletion of each remote file the working tree no longer has."""
    changes: dict[str, str | None] = {}
    for path in sorted(set(local) | set(remote_paths)):
        if only is not None and path not in only:
            continue
        mine = local.get(path)
        if mine is None:
            if only is None:
                changes[path] = None  # gone from the working tree
            continue
        if (theirs(path) if path in remote_paths else None) != mine:
            changes[path] = mine
    return changes


def _list(
    changes: Mapping[str, str | None], remote_paths: Sequence[str], echo: Callable[[str], None]
) -> None:
    for path, text in changes.items():
        echo(f"{'delete' if text is None else 'update' if path in remote_paths else 'add'} {path}")


def _show_diff(changes: Sequence[Mapping[str, Any]], echo: Callable[[str], None]) -> None:
    for ch in changes:
        if ch["op"] == "+":
            echo(f"  + {ch['path']}: {_value(ch['new'])}")
        elif ch["op"] == "-":
            echo(f"  - {ch['path']}: {_value(ch['old'])}")
        else:
            echo(f"  ~ {ch['path']}: {_value(ch['old'])} -> {_value(ch['new'])}")


def publish_store(
    root: str,
    store: str,
    *,
    targets: Sequence[str] = (),
    dry_run: bool = False,
    rollout: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    err: Callable[[str], None] = print,
) -> int:
    """Publish ``root``'s changed sources straight into a store (``etcd://…``) with no
    server in between: the write is the server's own (`Service.write`: compiled and
    checked, merged when the store moved on, one transaction), so it is validated exactly
    as a server would validate it. The exit status."""
    import asyncio  # only when publishing to a store: the compile runs in this process

    from cfglang.server.core import Refused, Service, diff
    from cfglang.server.run import STATE_DIR, open_store
    from cfglang.server.store import StoreUnavailable

    try:
        opened = open_store(store, os.path.join(root, STATE_DIR))
    except ValueError as e:
        err(f"error: --store: {e}")
        return EXIT_USAGE
    except StoreUnavailable as e:
        err(f"error: cannot open {store}: {e}")
        return EXIT_ERRORS
    service: Service | None = None
    try:
        # The compile root is a directory that is never created (as in the server).
        service = Service(opened, os.path.join(root, STATE_DIR, "publish"))
        head = service.head
        only: set[str] | None = None
        if targets:
            only = _files_read(root, targets)
            if only is None:
                err(f"error: no such target in {root}: {', '.join(targets)}")
                return EXIT_USAGE
        remote = dict(service.sources)
        changes = _changes(tree_files(root), sorted(remote), remote.get, only)
        if not changes:
            echo(f"nothing to publish: the store's revision {head} has these sources")
            return EXIT_OK
        _list(changes, sorted(remote), echo)
        if dry_run:
            return EXIT_OK
        before = dict(service.outputs)
        try:
            result = asyncio.run(
                service.write(head, changes, who="publish", action="changes", rollout=rollout)
            )
        except Refused as e:
            body = {"code": e.code, "message": e.message, "details": e.details}
            return _refused(e.status, body, err)
        for t in result.targets:
            echo(f"{t}:")
            if t not in before:
                echo("  (new target)")
            elif t not in service.outputs:
                echo("  (removed)")
            else:
                _show_diff(diff(before[t][1], service.outputs[t][1]), echo)
        merged = " (merged)" if result.merged else ""
        echo(f"published revision {result.revision}{merged}")
        _show_rollouts(result.rollouts, echo)
        return EXIT_OK
    except StoreUnavailable as e:
        err(f"error: the store is unavailable: {e}")
        return EXIT_ERRORS
    finally:
        if service is not None:
            service.close()
        opened.close()
