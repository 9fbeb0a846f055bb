"""Tokens and roles: every route x role, a table (SERVER.md, Access)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cfglang.server import tokens
from cfglang.server.app import token_auth
from cfglang.server.tokens import Tokens
from tests.server_util import ServerThread, write_project

PROD = 'extends "../base.cfl"\nreplicas = 3\n'
PROJECT = {
    "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
    "base.cfl": "port = 8080\n",
    "env/prod.cfl": PROD,
    "env/dev.cfl": 'extends "../base.cfl"\nreplicas = 1\n',
}
ROLES = ("none", "bogus", "expired", "reader", "editor", "admin", "scoped")

# (method, url, body) -> the status for each of ROLES. Writes send the text already stored,
# so they are allowed without changing anything and every row sees the same server.
R, W = {"If-Match": "1", "X-Cfl-Client-Id": "t"}, PROD.encode()
USAGE = b'{"target": "env/prod", "keys": ["port"]}'
TABLE: list[tuple[str, str, bytes, tuple[int, ...]]] = [
    ("GET", "/healthz", b"", (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/v1/configs", b"", (401, 401, 401, 200, 200, 200, 200)),
    ("GET", "/v1/configs/env/prod", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/configs/env/dev", b"", (401, 401, 401, 200, 200, 200, 200)),
    ("GET", "/v1/configs/env/prod/revisions", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/configs/env/prod/revisions/1", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/configs/env/prod/diff?from=1", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/sources", b"", (401, 401, 401, 200, 200, 200, 200)),
    ("GET", "/v1/sources/env/prod.cfl", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/sources/env/dev.cfl", b"", (401, 401, 401, 200, 200, 200, 200)),
    ("GET", "/v1/watch/env/prod?wait=0&after=0", b"", (401, 401, 401, 200, 200, 200, 403)),
    ("PUT", "/v1/sources/env/prod.cfl", W, (401, 401, 401, 403, 200, 200, 403)),
    (
        "PUT",
        "/v1/sources/env/dev.cfl",
        b'extends "../base.cfl"\nreplicas = 1\n',
        (401, 401, 401, 403, 200, 200, 200),
    ),
    # A write that starts a rollout is an admin's, like the rollouts route.
    (
        "PUT",
        "/v1/sources/env/dev.cfl?rollout_percent=5",
        b'extends "../base.cfl"\nreplicas = 1\n',
        (401, 401, 401, 403, 403, 200, 403),
    ),
    ("POST", "/v1/configs/env/prod/rollback?to=1", b"", (401, 401, 401, 403, 200, 200, 403)),
    ("GET", "/v1/clients", b"", (401, 401, 401, 403, 403, 200, 403)),
    ("POST", "/v1/usage", USAGE, (401, 401, 401, 200, 200, 200, 403)),
    ("GET", "/v1/configs/env/prod/usage", b"", (401, 401, 401, 403, 403, 200, 403)),
    ("GET", "/v1/audit", b"", (401, 401, 401, 403, 403, 200, 403)),
    # Rollouts are the admin's; these leave nothing behind (no rollout exists; `{}` is 422).
    ("POST", "/v1/configs/env/prod/rollouts", b"{}", (401, 401, 401, 403, 403, 422, 403)),
    ("GET", "/v1/configs/env/prod/rollouts/current", b"", (401, 401, 401, 403, 403, 404, 403)),
    (
        "POST",
        "/v1/configs/env/prod/rollouts/current/promote",
        b"",
        (401, 401, 401, 403, 403, 404, 403),
    ),
    (
        "POST",
        "/v1/configs/env/prod/rollouts/current/abort",
        b"",
        (401, 401, 401, 403, 403, 404, 403),
    ),
    ("GET", "/metrics", b"", (401, 401, 401, 200, 200, 200, 200)),
    ("GET", "/openapi.json", b"", (401, 401, 401, 200, 200, 200, 200)),
]


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("access")
    project = write_project(tmp / "project", PROJECT)
    state = tmp / "state"
    keys = {
        "reader": tokens.add(str(state), "r", "reader"),
        "editor": tokens.add(str(state), "e", "editor"),
        "admin": tokens.add(str(state), "a", "admin"),
        "scoped": tokens.add(
            str(state), "s", "editor", ["target:env/dev", "path:env/dev", "path:base.cfl"]
        ),
        "expired": tokens.add(str(state), "x", "admin", expires_in=-1),
        "bogus": "cfl_" + "A" * 43,
    }
    srv = ServerThread(project, state, auth=token_auth(Tokens(str(state))))
    yield srv, keys
    srv.stop()


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"), TABLE, ids=[f"{m} {u}" for m, u, _, _ in TABLE]
)
def test_every_route_for_every_role(
    setup: tuple[ServerThread, dict[str, str]],
    method: str,
    url: str,
    body: bytes,
    expected: tuple[int, ...],
) -> None:
    srv, keys = setup
    got = []
    with srv.client() as c:
        for role in ROLES:
            headers = dict(R)
            if role != "none":
                headers["Authorization"] = f"Bearer {keys[role]}"
            r = c.request(method, url, content=body, headers=headers)
            got.append(r.status_code)
            if r.status_code >= 400:
                assert set(r.json()["error"]) == {"code", "message", "details"}
            if r.status_code == 401:
                assert r.headers["www-authenticate"].startswith("Bearer")
        assert tuple(got) == expected, dict(zip(ROLES, got, strict=True))
        assert c.get("/healthz").json()["revision"] == 1  # nothing changed


def test_listings_show_only_what_a_scoped_token_reaches(
    setup: tuple[ServerThread, dict[str, str]],
) -> None:
    srv, keys = setup
    with srv.client(headers={"Authorization": f"Bearer {keys['scoped']}"}) as c:
        assert [t["target"] for t in c.get("/v1/configs").json()] == ["env/dev"]
        assert c.get("/v1/sources").json()["files"] == ["base.cfl", "env/dev.cfl"]


def test_the_file_holds_hashes_only_and_revoking_takes_effect_at_once(
    setup: tuple[ServerThread, dict[str, str]],
) -> None:
    srv, keys = setup
    text = (Path(srv.service.vroot).parent / "tokens.toml").read_text(encoding="utf-8")
    assert not any(k in text for k in keys.values())
    tokens.add(srv.service.vroot.rsplit("/", 1)[0], "late", "reader")
    fresh = tokens.add(srv.service.vroot.rsplit("/", 1)[0], "temp", "reader")
    with srv.client(headers={"Authorization": f"Bearer {fresh}"}) as c:
        assert c.get("/v1/configs").status_code == 200
        tokens.revoke(srv.service.vroot.rsplit("/", 1)[0], "temp")
        assert c.get("/v1/configs").status_code == 401


def test_writes_are_audited_under_the_token_name(
    setup: tuple[ServerThread, dict[str, str]],
) -> None:
    srv, keys = setup
    with srv.client() as c:
        auth = {"Authorization": f"Bearer {keys['editor']}"}
        r = c.put("/v1/sources/base.cfl", content=b"port = 9\n", headers={**auth, "If-Match": "1"})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        entries = c.get("/v1/audit", params={"who": "e"}, headers=admin).json()
        assert [(e["action"], e["path"] or e["target"]) for e in entries] == [
            ("put", "env/dev"),
            ("put", "env/prod"),
            ("put", "base.cfl"),
        ]
        assert [t["changed_by"] for t in c.get("/v1/configs", headers=admin).json()] == ["e", "e"]


def test_a_write_may_start_rollouts_only_of_targets_in_its_scopes(tmp_path: Path) -> None:
    """The targets a write changes are known once compiled: a scoped admin whose paths
    reach base.cfl but whose targets are env/dev only may not roll out env/prod too."""
    project = write_project(tmp_path / "project", PROJECT)
    state = tmp_path / "state"
    key = tokens.add(str(state), "dev-admin", "admin", ["target:env/dev", "path:base.cfl"])
    srv = ServerThread(project, state, auth=token_auth(Tokens(str(state))))
    try:
        with srv.client(headers={"Authorization": f"Bearer {key}"}) as c:
            r = c.put(
                "/v1/sources/base.cfl",
                params={"rollout_percent": "10"},
                content=b"port = 9090\n",
                headers={"If-Match": "1"},
            )
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"] == {"target": "env/prod"}
            assert c.get("/v1/sources").json()["revision"] == 1  # nothing stored
            ok = c.put("/v1/sources/base.cfl", content=b"port = 9090\n", headers={"If-Match": "1"})
            assert ok.status_code == 200, ok.text  # the same write without a rollout
    finally:
        srv.stop()
