"""The HTTP API of the configuration server (SERVER.md), on Starlette.

`make_app(service)` builds the application. Routes are few and parse their own tails:
a target name may contain `/` (`env/prod`), written either percent-encoded as one
segment or as a path, and uvicorn hands both to the router decoded, so
`/v1/configs/{rest:path}` is split here: the whole tail when it names a target, else a
target followed by `revisions`, `revisions/N`, `diff` or `rollback`.

Every error is `{"error": {"code", "message", "details"}}` (`Refused` in
`cfglang.server.core`, and Starlette's own 404/405 rewritten). Request counts by route
template and status, compile times, the head revision and the open watchers are
Prometheus metrics on a registry of the application's own (`/metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cfglang.emit import FORMATS
from cfglang.server.core import Client, Refused, Service, check_path, diff, in_rollout
from cfglang.server.store import ClientRecord, StoreUnavailable
from cfglang.server.tokens import Tokens
from cfglang.tools.diff import format_path
from cfglang.values import parse_duration

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1024 * 1024
CLIENT_FLUSH = 5.0  # seconds between stores of the clients seen (they are "last seen" data)
MEDIA = {
    "json": "application/json",
    "yaml": "application/yaml",
    "toml": "application/toml",
    "ini": "text/plain; charset=utf-8",
    "env": "text/plain; charset=utf-8",
    "properties": "text/plain; charset=utf-8",
}
_REVISION = re.compile(r'^\s*(?:W/)?"?(\d+)(?:-[a-z]+)?"?\s*$')


def error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status
    )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cfl_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.compile = Histogram(
            "cfl_compile_seconds", "Time to compile one target", registry=self.registry
        )
        self.revision = Gauge("cfl_revision", "The head revision", registry=self.registry)
        self.watchers = Gauge("cfl_watchers", "Open watch streams", registry=self.registry)
        self.rollouts = Gauge("cfl_rollouts", "Active rollouts", registry=self.registry)


def _route(scope: Scope) -> str:
    return str(scope.get("cfl", {}).get("route") or "unmatched")


class Instrument:
    """Counts every request by its route template and final status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["cfl"] = {}
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                route = _route(scope)
                self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            await send(message)

        await self.app(scope, receive, sending)


def parse_revision(value: str | None, name: str) -> int | None:
    """A revision from a header (`"7"`, `"7-json"`, `7`) or query; `Refused` 400 if bad."""
    if value is None:
        return None
    m = _REVISION.match(value)
    if m is None:
        raise Refused(400, "bad_header", f"{name} must be a revision, got `{value[:80]}`")
    return int(m.group(1))


def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,18}", raw):
        raise Refused(
            400, "bad_query", f"`{name}` must be a non-negative integer, got `{raw[:40]}`"
        )
    return int(raw)


def query_float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise Refused(400, "bad_query", f"`{name}` must be seconds in 0..3600, got `{raw[:40]}`")
    return value


def client_info(request: Request) -> Client:
    """The client a request names (`X-Cfl-Client-Id`, `X-Cfl-Client-Labels: zone=a,tier=web`)."""
    labels: dict[str, str] = {}
    for item in request.headers.get("x-cfl-client-labels", "").split(","):
        k, sep, v = item.partition("=")
        if sep and k.strip():
            labels[k.strip()[:100]] = v.strip()[:200]
    client = request.headers.get("x-cfl-client-id")
    return Client(client[:200] if client else None, labels)


def since_param(request: Request) -> float:
    """``?since=``: a Unix time, or a duration back from now (``24h``, ``7d``); 0 if absent."""
    raw = request.query_params.get("since")
    if raw is None:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(raw).millis / 1000
    except ValueError:
        raise Refused(
            400, "bad_query", f"`since` must be a Unix time or a duration, got `{raw[:40]}`"
        ) from None


def leaf_paths(data: Any, path: tuple[str | int, ...] = ()) -> list[str]:
    """Every scalar's data path in a document (an empty object or list counts as one)."""
    if isinstance(data, dict) and set(data) != {"$secret"} and data:
        return [p for k, v in data.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(data, list) and data:
        return [p for i, v in enumerate(data) for p in leaf_paths(v, (*path, i))]
    return [format_path(path)]


def covers(key: str, path: str) -> bool:
    """Whether reading ``key`` reads ``path`` (the key itself, or an object above it)."""
    return path == key or path.startswith((key + ".", key + "["))


def etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def token_auth(tokens: Tokens) -> Callable[[Request, str, str], str]:
    """The access check of a server with ``tokens``: who asks (the token's name), or
    `Refused` 401 (no token, an unknown or expired one) or 403 (outside its role or
    scopes). Without a tokens file everyone is ``anonymous`` and allowed."""

    def check(request: Request, action: str, resource: str) -> str:
        if not tokens.enabled:
            return "anonymous"
        header = request.headers.get("authorization")
        if header is None:
            raise Refused(401, "unauthorized", "a token is required: Authorization: Bearer <token>")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Refused(401, "unauthorized", "Authorization must be `Bearer <token>`")
        token = tokens.find(value.strip())
        if token is None:
            raise Refused(401, "unauthorized", "unknown token")
        if token.expires is not None and token.expires < time.time():
            raise Refused(401, "unauthorized", f"token `{token.name}` has expired")
        request.scope.setdefault("cfl", {}).update(who=token.name, token=token)
        if not token.may(action):
            raise Refused(
                403, "forbidden", f"role {token.role} may not {action}", {"role": token.role}
            )
        if not token.reaches(resource):
            raise Refused(
                403,
                "forbidden",
                f"`{resource}` is outside the scopes of token `{token.name}`",
                {"scopes": list(token.scopes)},
            )
        return token.name

    return check


def visible(request: Request, resource: str) -> bool:
    """Whether the caller's token (if any) reaches ``resource``: listings show only that."""
    token = request.scope.get("cfl", {}).get("token")
    return token is None or bool(token.reaches(resource))


def make_app(
    service: Service,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    ping: float = 15.0,
    auth: Callable[[Request, str, str], str] | None = None,
    background: Sequence[Callable[[], Awaitable[None]]] = (),
) -> ASGIApp:
    """The ASGI application serving ``service``. ``auth(request, action, resource)``
    returns who is asking, or raises `Refused` (401/403); None allows everyone.
    ``background`` coroutines (such as the etcd store's `follow`) run on the server's
    event loop from start-up to shutdown (they need uvicorn's ``lifespan="on"``)."""
    metrics = Metrics()
    metrics.revision.set(service.head)
    service.on_compile = metrics.compile.observe

    def who(request: Request, action: str, resource: str) -> str:
        if auth is None:
            return "anonymous"
        return auth(request, action, resource)

    def mark(request: Request, route: str) -> None:
        request.scope.setdefault("cfl", {})["route"] = route

    async def body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Refused(400, "bad_header", "Content-Length must be a number")
            if int(length) > max_body:
                raise Refused(413, "too_large", f"the body is over {max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise Refused(413, "too_large", f"the body is over {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def text_body(request: Request) -> str:
        raw = await body(request)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "bad_body", "the body is not UTF-8 text") from None

    async def json_body(request: Request) -> Any:
        raw = await text_body(request)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise Refused(400, "bad_json", f"the body is not JSON: {e}") from None

    pending: dict[tuple[str, str], ClientRecord] = {}
    flushed = [0.0]

    def seen(request: Request, target: str, revision: int) -> None:
        info = client_info(request)
        client, labels = info.id, dict(info.labels)
        if not client:
            return
        record = ClientRecord(
            client[:200],
            request.scope.get("cfl", {}).get("who"),
            labels,
            target,
            revision,
            time.time(),
        )
        pending[(record.client_id, target)] = record

    async def flush_clients(force: bool = False) -> None:
        """Store the clients seen since the last flush, in one transaction: at most every
        `CLIENT_FLUSH` seconds from the read path (a GET never waits for an fsync), and
        before the clients are listed."""
        now = time.monotonic()
        if not pending or (not force and now - flushed[0] < CLIENT_FLUSH):
            return
        flushed[0] = now
        batch = list(pending.values())
        pending.clear()
        await asyncio.get_running_loop().run_in_executor(None, service.store.seen_all, batch)

    # ---- handlers ----------------------------------------------------------------------

    async def healthz(request: Request) -> Response:
        mark(request, "/healthz")
        try:
            head = await asyncio.get_running_loop().run_in_executor(None, service.store.head)
        except StoreUnavailable as e:
            return error(503, "unavailable", f"the store is unavailable: {e}")
        return JSONResponse({"status": "ok", "revision": head})

    async def configs(request: Request) -> Response:
        mark(request, "/v1/configs")
        who(request, "read", "target:")
        out = []
        for target, (rev, _) in sorted(service.outputs.items()):
            if not visible(request, f"target:{target}"):
                continue
            info = service.revision_info(rev)
            out.append(
                {
                    "target": target,
                    "revision": rev,
                    "changed_at": info.at if info else None,
                    "changed_by": info.who if info else None,
                }
            )
        return JSONResponse(out)

    def split_target(rest: str) -> tuple[str, str]:
        """(target, what): what is "" (the document), "revisions", "revisions/N", "diff",
        "rollback"."""
        rest = rest.strip("/")
        if rest in service.outputs:
            return rest, ""
        m = re.fullmatch(
            r"(.+?)/(revisions(?:/[^/]+)?|diff|rollback|usage|rollouts(?:/current(?:/promote|/abort)?)?)",
            rest,
        )
        if m is not None:
            return m.group(1), m.group(2)
        return rest, ""

    def known(target: str, revision: int | None = None) -> None:
        if target not in service.outputs and not service.history.get(target):
            raise Refused(404, "not_found", f"no target `{target}`", {"target": target})

    async def config_get(request: Request) -> Response:
        target, what = split_target(request.path_params["rest"])
        if what == "":
            return await document(request, target)
        if what == "revisions":
            mark(request, "/v1/configs/{target}/revisions")
            who(request, "read", f"target:{target}")
            known(target)
            hist = []
            for n in service.history.get(target, []):
                info = service.revision_info(n)
                hist.append(
                    {
                        "revision": n,
                        "changed_at": info.at if info else None,
                        "changed_by": info.who if info else None,
                        "action": info.action if info else None,
                        "etag": f'"{n}-json"',
                    }
                )
            return JSONResponse(hist)
        if what.startswith("revisions/"):
            mark(request, "/v1/configs/{target}/revisions/{n}")
            n_text = what.split("/", 1)[1]
            if not n_text.isdigit():
                raise Refused(400, "bad_revision", f"`{n_text[:40]}` is not a revision")
            return await document(request, target, int(n_text), exact=True)
        if what == "diff":
            mark(request, "/v1/configs/{target}/diff")
            who(request, "read", f"target:{target}")
            known(target)
            a = query_int(request, "from")
            b = query_int(request, "to", service.head)
            if a is None:
                raise Refused(400, "bad_query", "`from` is required")
            loop = asyncio.get_running_loop()
            old = await loop.run_in_executor(None, service.store.output, target, a)
            new = await loop.run_in_executor(None, service.store.output, target, b)
            return JSONResponse(diff(old[1] if old else None, new[1] if new else None))
        if what == "rollouts/current":
            mark(request, "/v1/configs/{target}/rollouts/current")
            who(request, "admin", f"target:{target}")
            known(target)
            ro = service.rollouts.get(target)
            if ro is None:
                raise Refused(
                    404, "not_found", f"`{target}` has had no rollout", {"target": target}
                )
            await flush_clients(force=True)
            rows = await asyncio.get_running_loop().run_in_executor(None, service.store.clients)
            clients = [
                {
                    "client_id": c.client_id,
                    "labels": dict(c.labels),
                    "revision": c.revision,
                    "last_seen": c.last_seen,
                    "in_rollout": in_rollout(ro, Client(c.client_id, c.labels)),
                }
                for c in rows
                if c.target == target
            ]
            return JSONResponse({**ro, "clients": clients})
        if what == "usage":
            mark(request, "/v1/configs/{target}/usage")
            who(request, "admin", f"target:{target}")
            known(target)
            since = since_param(request)
            if target not in service.outputs:
                raise Refused(404, "not_found", f"`{target}` was deleted", {"target": target})
            leaves = leaf_paths(json.loads(service.outputs[target][1].diffable))
            used = await asyncio.get_running_loop().run_in_executor(
                None, service.store.used_keys, target, since
            )
            unread = [p for p in leaves if not any(covers(k, p) for k in used)]
            return JSONResponse(
                {
                    "target": target,
                    "since": since,
                    "keys": len(leaves),
                    "read": len(leaves) - len(unread),
                    "unread": unread,
                }
            )
        raise Refused(404, "not_found", f"no such resource `{what}`")

    async def document(
        request: Request, target: str, revision: int | None = None, exact: bool = False
    ) -> Response:
        if not exact:
            mark(request, "/v1/configs/{target}")
        who(request, "read", f"target:{target}")
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            raise Refused(
                400, "bad_format", f"unknown format `{fmt[:40]}`", {"formats": list(FORMATS)}
            )
        known(target)
        if revision is None:
            revision = query_int(request, "revision")
        headers = {}
        if revision is None:
            if target not in service.outputs:
                raise Refused(404, "not_found", f"`{target}` was deleted", {"target": target})
            rev, out = service.outputs[target]
            client = client_info(request)
            held = service.gated(target, client)
            if service.rollout(target) is not None:
                headers["X-Cfl-Rollout"] = "stable" if held is not None else "canary"
            if held is not None:  # a rollout keeps this client at the stable revision
                got_held = await asyncio.get_running_loop().run_in_executor(
                    None, service.store.output, target, held
                )
                assert got_held is not None
                rev, out = got_held
        else:
            got = await asyncio.get_running_loop().run_in_executor(
                None, service.store.output, target, revision
            )
            if got is None or (exact and got[0] != revision) or revision > service.head:
                raise Refused(
                    404,
                    "not_found",
                    f"`{target}` has no revision {revision}",
                    {"target": target, "revision": revision},
                )
            rev, out = got
        etag = f'"{rev}-{fmt}"'
        headers.update({"ETag": etag, "X-Cfl-Revision": str(rev), "Cache-Control": "no-cache"})
        if request.headers.get("x-cfl-client-id"):
            seen(request, target, rev)
            await flush_clients()
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        text = out.formats.get(fmt)
        if text is None:
            raise Refused(
                406, "format_unavailable", f"`{target}` cannot be written as {fmt}", {"format": fmt}
            )
        return Response(text, media_type=MEDIA[fmt], headers=headers)

    async def config_post(request: Request) -> Response:
        target, what = split_target(request.path_params["rest"])
        if what == "rollouts":
            mark(request, "/v1/configs/{target}/rollouts")
            user = who(request, "admin", f"target:{target}")
            spec = await json_body(request)
            if not isinstance(spec, dict):
                raise Refused(400, "bad_body", 'expected {"revision", "selector" | "percent"}')
            state = await service.start_rollout(target, spec, who=user)
            return JSONResponse(state, status_code=201)
        if what in ("rollouts/current/promote", "rollouts/current/abort"):
            how = what.rsplit("/", 1)[1]
            mark(request, "/v1/configs/{target}/rollouts/current/" + how)
            user = who(request, "admin", f"target:{target}")
            state = await service.end_rollout(target, how, who=user)
            metrics.revision.set(service.head)
            return JSONResponse(state)
        if what != "rollback":
            raise Refused(404, "not_found", "no such resource")
        mark(request, "/v1/configs/{target}/rollback")
        user = who(request, "write", f"target:{target}")
        to = query_int(request, "to")
        if to is None:
            raise Refused(400, "bad_query", "`to` is required")
        result = await service.rollback(target, to, who=user)
        metrics.revision.set(service.head)
        return JSONResponse(
            {"revision": result.revision, "targets": list(result.targets), "merged": False}
        )

    async def sources(request: Request) -> Response:
        mark(request, "/v1/sources")
        who(request, "read", "path:")
        rev = query_int(request, "revision")
        if rev is None or rev == service.head:
            rev, files = service.head, service.sources
        else:
            if rev > service.head:
                raise Refused(404, "not_found", f"no revision {rev}")
            files = await asyncio.get_running_loop().run_in_executor(
                None, service.store.sources, rev
            )
        shown = sorted(p for p in files if visible(request, f"path:{p}"))
        return JSONResponse({"revision": rev, "files": shown}, headers={"ETag": f'"{rev}"'})

    async def source_get(request: Request) -> Response:
        mark(request, "/v1/sources/{path}")
        path = check_path(request.path_params["path"])
        who(request, "read", f"path:{path}")
        rev = query_int(request, "revision")
        if rev is not None and rev > service.head:
            raise Refused(404, "not_found", f"no revision {rev}")
        if rev is None and path in service.sources:
            got: tuple[str, int] | None = (service.sources[path], service.changed_at[path])
        else:
            got = await asyncio.get_running_loop().run_in_executor(
                None, service.store.source, path, rev
            )
        if got is None:
            raise Refused(404, "not_found", f"no source `{path}`", {"path": path})
        text, changed = got
        etag = f'"{changed}"'
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(text, media_type="text/plain; charset=utf-8", headers={"ETag": etag})

    def if_match(request: Request) -> int:
        raw = request.headers.get("if-match")
        if raw is None:
            raise Refused(
                428,
                "precondition_required",
                "a write needs If-Match: <revision> (the revision it was made against)",
                {"current": service.head},
            )
        base = parse_revision(raw, "If-Match")
        assert base is not None
        return base

    def write_response(result: Any) -> Response:
        metrics.revision.set(service.head)
        body = {
            "revision": result.revision,
            "targets": list(result.targets),
            "merged": result.merged,
        }
        if result.warnings:
            body["warnings"] = list(result.warnings)
        if result.rollouts:
            body["rollouts"] = list(result.rollouts)
        return JSONResponse(body, headers={"ETag": f'"{result.revision}"'})

    def query_rollout(request: Request) -> dict[str, Any] | None:
        """A PUT's rollout, from ``?rollout_percent=P`` or ``?rollout_selector=k=v,k2=v2``."""
        percent = request.query_params.get("rollout_percent")
        selector = request.query_params.get("rollout_selector")
        if percent is None and selector is None:
            return None
        spec: dict[str, Any] = {}
        if percent is not None:
            try:
                spec["percent"] = float(percent)
            except ValueError:
                raise Refused(400, "bad_query", "`rollout_percent` must be a number") from None
        if selector is not None:
            pairs = [item.partition("=") for item in selector.split(",") if item.strip()]
            if not pairs or any(not k.strip() or not sep for k, sep, _ in pairs):
                raise Refused(400, "bad_query", "`rollout_selector` must be `name=value,...`")
            spec["selector"] = {k.strip(): v.strip() for k, _, v in pairs}
        return spec

    def rollout_body(data: Mapping[str, Any]) -> dict[str, Any] | None:
        spec = data.get("rollout")
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise Refused(
                400, "bad_body", '`rollout` must be {"selector": {...}} or {"percent": P}'
            )
        return spec

    async def source_put(request: Request) -> Response:
        mark(request, "/v1/sources/{path}")
        path = check_path(request.path_params["path"])
        user = who(request, "write", f"path:{path}")
        base = if_match(request)
        rollout = query_rollout(request)
        if rollout is not None:
            # Starting a rollout is an admin's act, as on the rollouts route.
            user = who(request, "admin", f"path:{path}")
        text = await text_body(request) if request.method == "PUT" else None
        action = "put" if text is not None else "delete"
        result = await service.write(
            base,
            {path: text},
            who=user,
            action=action,
            rollout=rollout,
            may_roll_out=lambda t: visible(request, f"target:{t}"),
        )
        return write_response(result)

    async def changes(request: Request) -> Response:
        mark(request, "/v1/changes")
        data = await json_body(request)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise Refused(400, "bad_body", 'expected {"base": N, "files": {"path": "text" | null}}')
        base = data.get("base")
        if base is None and request.headers.get("if-match") is not None:
            base = if_match(request)
        if not isinstance(base, int) or isinstance(base, bool):
            raise Refused(
                400, "bad_body", "`base` must be the revision the change was made against"
            )
        files: dict[str, str | None] = {}
        for p, t in data["files"].items():
            if t is not None and not isinstance(t, str):
                raise Refused(400, "bad_body", f"the text of `{p}` must be a string or null")
            files[check_path(p)] = t
        if not files:
            raise Refused(400, "bad_body", "`files` is empty")
        rollout = rollout_body(data)
        user = "anonymous"
        for p in files:
            user = who(request, "write" if rollout is None else "admin", f"path:{p}")
        result = await service.write(
            base,
            files,
            who=user,
            action="changes",
            rollout=rollout,
            may_roll_out=lambda t: visible(request, f"target:{t}"),
        )
        return write_response(result)

    async def watch(request: Request) -> Response:
        mark(request, "/v1/watch/{target}")
        target = request.path_params["target"].strip("/")
        who(request, "read", f"target:{target}")
        known(target)
        after = parse_revision(request.headers.get("last-event-id"), "Last-Event-ID")
        if after is None:
            after = query_int(request, "after")
        client = client_info(request)
        if "wait" in request.query_params:
            wait = query_float(request, "wait", 30.0)
            base = after if after is not None else 0
            revs = await service.wait_after(target, base, wait, client)
            if not revs:
                return Response(status_code=304, headers={"X-Cfl-Revision": str(base)})
            n = revs[0]
            return JSONResponse(
                {"target": target, "revision": n, "etag": f'"{n}-json"'},
                headers={"X-Cfl-Revision": str(n)},
            )
        if after is None:  # a new subscriber starts with the revision it should run
            seen = service.revisions_after(target, 0, client)
            after = seen[-1] - 1 if seen else 0

        async def events() -> AsyncIterator[dict[str, Any]]:
            nonlocal after
            assert after is not None
            metrics.watchers.inc()
            try:
                while True:
                    for n in service.revisions_after(target, after, client):
                        data = {"target": target, "revision": n, "etag": f'"{n}-json"'}
                        yield {"id": str(n), "event": "revision", "data": json.dumps(data)}
                        after = n
                    await service.wait_after(target, after, None, client)
            finally:
                metrics.watchers.dec()

        return EventSourceResponse(events(), ping=ping, headers={"Cache-Control": "no-cache"})

    async def usage_post(request: Request) -> Response:
        mark(request, "/v1/usage")
        data = await json_body(request)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("target"), str)
            or not isinstance(data.get("keys"), list)
            or not all(isinstance(k, str) and 0 < len(k) <= 1000 for k in data["keys"])
            or len(data["keys"]) > 100_000
        ):
            raise Refused(400, "bad_body", 'expected {"target": T, "keys": ["a.b", ...]}')
        target = data["target"]
        who(request, "read", f"target:{target}")
        known(target)
        client = request.headers.get("x-cfl-client-id")
        if not client:
            raise Refused(400, "bad_header", "usage needs X-Cfl-Client-Id")
        keys = sorted(set(data["keys"]))
        await asyncio.get_running_loop().run_in_executor(
            None, service.store.add_usage, target, client[:200], keys, time.time()
        )
        return JSONResponse({"target": target, "keys": len(keys)})

    async def clients(request: Request) -> Response:
        mark(request, "/v1/clients")
        who(request, "admin", "clients")
        await flush_clients(force=True)
        rows = await asyncio.get_running_loop().run_in_executor(None, service.store.clients)
        return JSONResponse(
            [
                {
                    "client_id": c.client_id,
                    "token": c.token,
                    "labels": dict(c.labels),
                    "target": c.target,
                    "revision": c.revision,
                    "last_seen": c.last_seen,
                }
                for c in rows
            ]
        )

    async def audit(request: Request) -> Response:
        mark(request, "/v1/audit")
        who(request, "admin", "audit")
        q = request.query_params
        since = None
        if "since" in q:
            try:
                since = float(q["since"])
            except ValueError:
                raise Refused(400, "bad_query", "`since` must be a Unix time") from None
        rows = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: service.store.audit(
                target=q.get("target"), path=q.get("path"), who=q.get("who"), since=since
            ),
        )
        return JSONResponse(
            [
                {
                    "id": e.id,
                    "at": e.at,
                    "who": e.who,
                    "action": e.action,
                    "revision": e.revision,
                    "target": e.target,
                    "path": e.path,
                    "detail": e.detail,
                }
                for e in rows
            ]
        )

    async def metrics_route(request: Request) -> Response:
        mark(request, "/metrics")
        who(request, "read", "metrics")
        metrics.rollouts.set(sum(service.rollout(t) is not None for t in service.rollouts))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        mark(request, "/openapi.json")
        who(request, "read", "openapi")
        return JSONResponse(OPENAPI)

    # ---- errors ------------------------------------------------------------------------

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        response = error(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="cflc serve"'
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    async def unavailable(request: Request, exc: Exception) -> Response:
        return error(503, "unavailable", f"the store is unavailable: {exc}")

    async def crashed(request: Request, exc: Exception) -> Response:
        return error(500, "internal", f"internal error: {type(exc).__name__}")

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_route),
        Route("/openapi.json", openapi),
        Route("/v1/configs", configs),
        Route("/v1/configs/{rest:path}", config_get, methods=["GET"]),
        Route("/v1/configs/{rest:path}", config_post, methods=["POST"]),
        Route("/v1/sources", sources),
        Route("/v1/sources/{path:path}", source_get, methods=["GET"]),
        Route("/v1/sources/{path:path}", source_put, methods=["PUT", "DELETE"]),
        Route("/v1/changes", changes, methods=["POST"]),
        Route("/v1/watch/{target:path}", watch),
        Route("/v1/clients", clients),
        Route("/v1/usage", usage_post, methods=["POST"]),
        Route("/v1/audit", audit),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.ensure_future(start()) for start in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            Refused: refused,
            HTTPException: http_error,
            StoreUnavailable: unavailable,
            Exception: crashed,
        },
    )
    return Instrument(app, metrics)


def _op(summary: str, *params: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}} for p in params],
        "responses": {
            "200": {"description": "OK"},
            "default": {"$ref": "#/components/responses/Error"},
        },
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "cfglang configuration server", "version": "1"},
    "paths": {
        "/healthz": {"get": _op("liveness and the head revision")},
        "/v1/configs": {"get": _op("the targets, with their revisions")},
        "/v1/configs/{target}": {
            "get": _op("a compiled target (ETag, If-None-Match)", "format", "revision")
        },
        "/v1/configs/{target}/revisions": {"get": _op("a target's history")},
        "/v1/configs/{target}/revisions/{n}": {"get": _op("a target at revision n", "format")},
        "/v1/configs/{target}/diff": {"get": _op("semantic diff, secrets redacted", "from", "to")},
        "/v1/configs/{target}/rollback": {
            "post": _op("a new revision equal to revision `to` for the target's files", "to")
        },
        "/v1/watch/{target}": {
            "get": _op("server-sent events, one per revision; long poll with wait", "wait", "after")
        },
        "/v1/sources": {"get": _op("the source files", "revision")},
        "/v1/sources/{path}": {
            "get": _op("a source file (ETag)", "revision"),
            "put": _op(
                "replace a source file (If-Match required); optionally start a rollout of it",
                "rollout_percent",
                "rollout_selector",
            ),
            "delete": _op("delete a source file (If-Match required)"),
        },
        "/v1/changes": {
            "post": _op('several files in one revision: {"base", "files", "rollout"?}')
        },
        "/v1/clients": {"get": _op("the clients and what they last read")},
        "/v1/configs/{target}/rollouts": {
            "post": _op('deliver the current revision to some clients: {"selector"|"percent"}')
        },
        "/v1/configs/{target}/rollouts/current": {"get": _op("the rollout and its clients")},
        "/v1/configs/{target}/rollouts/current/promote": {"post": _op("everyone gets it")},
        "/v1/configs/{target}/rollouts/current/abort": {"post": _op("back to the stable one")},
        "/v1/usage": {"post": _op('keys a client read: {"target", "keys"}')},
        "/v1/configs/{target}/usage": {"get": _op("the keys nobody read since", "since")},
        "/v1/audit": {"get": _op("the audit log", "target", "path", "who", "since")},
        "/metrics": {"get": _op("Prometheus metrics")},
    },
    "components": {
        "responses": {
            "Error": {
                "description": 'every 4xx/5xx: {"error": {"code", "message", "details"}}',
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
    },
}
