"""etcd with TLS and authentication: the store, `cflc serve` and `cfglang.connect` on a
member whose client URL is https (certificates made here with `cryptography`) and whose
authentication is on (user root, the password in $CFL_ETCD_PASSWORD)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.etcd_cluster import etcd_missing, free_ports, wait_for
from tests.server_util import REPO, serve_process, stop_process, write_project

_missing = etcd_missing()
if _missing is not None and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the etcd tests: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

from cfglang.server.core import Service  # noqa: E402 (after the skip)
from cfglang.server.etcd import EtcdStore  # noqa: E402
from cfglang.server.store import StoreUnavailable  # noqa: E402

PASSWORD = "s3cret-for-tests"
PROJECT = {
    "cfl.toml": '[project]\ntargets = ["app.cfl"]\n',
    "app.cfl": "replicas = 1\n",
}


def _certificates(d: Path) -> None:
    """A CA, and a certificate for 127.0.0.1 it signed (server and client use)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfl test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "member.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "member-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One etcd member on https with authentication on."""
    d = tmp_path_factory.mktemp("etcd-tls")
    _certificates(d)
    client, peer = free_ports(2)
    url = f"https://127.0.0.1:{client}"
    with open(d / "etcd.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [
                *("etcd", "--name", "m", "--data-dir", str(d / "data")),
                *("--listen-client-urls", url, "--advertise-client-urls", url),
                *("--listen-peer-urls", f"http://127.0.0.1:{peer}"),
                *("--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"),
                *("--initial-cluster", f"m=http://127.0.0.1:{peer}"),
                *("--cert-file", str(d / "member.pem"), "--key-file", str(d / "member-key.pem")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        trust = ssl.create_default_context(cafile=str(d / "ca.pem"))
        with httpx.Client(verify=trust, timeout=5) as c:
            wait_for("the member", lambda: c.get(f"{url}/health").status_code == 200)
            for path, body in [
                ("/v3/auth/role/add", {"name": "root"}),
                ("/v3/auth/user/add", {"name": "root", "password": PASSWORD}),
                ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                ("/v3/auth/enable", {}),
            ]:
                r = c.post(url + path, json=body)
                assert r.status_code == 200, (path, r.text)
        yield {"dir": d, "hostport": f"127.0.0.1:{client}", "ca": str(d / "ca.pem")}
    finally:
        proc.kill()
        proc.wait(10)


def store_url(m: dict[str, Any], prefix: str, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"cacert": m["ca"], **extra}.items())
    return f"etcd://{m['hostport']}/{prefix}?{query}"


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFL_ETCD_PASSWORD", PASSWORD)


def test_the_store_works_over_tls_with_a_user(
    member: dict[str, Any], password: None, tmp_path: Path
) -> None:
    import asyncio

    project = write_project(tmp_path / "p", PROJECT)
    store = EtcdStore.from_url(store_url(member, "a", user="root"))
    service = Service(store, str(tmp_path / "s"))
    assert asyncio.run(service.import_tree(str(project))) == 1
    # An expired or revoked token is replaced on the 401 and the call made again.
    store.client._token = "not-a-token"
    again = EtcdStore.from_url(store_url(member, "a", user="root"))
    assert again.head() == 1 and store.head() == 1
    assert again.source("app.cfl") == ("replicas = 1\n", 1)
    service.close()
    store.close()
    again.close()


def test_without_the_user_or_with_a_wrong_password_the_store_is_refused(
    member: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_user = EtcdStore.from_url(store_url(member, "b"))
    with pytest.raises(StoreUnavailable, match="user name is empty"):
        no_user.head()
    no_user.close()
    monkeypatch.setenv("CFL_ETCD_PASSWORD", "wrong")
    wrong = EtcdStore.from_url(store_url(member, "b", user="root"))
    with pytest.raises(StoreUnavailable, match="authentication of `root` failed"):
        wrong.head()
    wrong.close()
    monkeypatch.delenv("CFL_ETCD_PASSWORD")
    with pytest.raises(ValueError, match="CFL_ETCD_PASSWORD"):
        EtcdStore.from_url(store_url(member, "b", user="root"))


def test_a_member_whose_certificate_is_not_trusted_is_unavailable(
    member: dict[str, Any], password: None
) -> None:
    # No `cacert`: https is not implied, so name it; the system CAs do not know this one.
    url = f"etcd://{member['hostport']}/c?cert={member['dir'] / 'member.pem'}"
    url += f"&key={member['dir'] / 'member-key.pem'}&user=root&deadline=1"
    untrusted = EtcdStore.from_url(url)
    with pytest.raises(StoreUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        untrusted.head()
    untrusted.close()


def test_serve_and_connect_over_tls_with_a_user(
    member: dict[str, Any], password: None, tmp_path: Path
) -> None:
    """`cflc serve --store` (its watch task too) and `cfglang.connect("etcd://…")` with
    the password from the environment: a write through the server reaches the client."""
    import cfglang

    project = write_project(tmp_path / "p", PROJECT)
    url = store_url(member, "d", user="root")
    proc, server = serve_process(
        project, tmp_path / "state", "--store", url, env={"CFL_ETCD_PASSWORD": PASSWORD}
    )
    try:
        with cfglang.connect(url, "app", backoff=(0.05, 0.3), usage_interval=None) as cfg:
            assert cfg.current.config.replicas == 1
            r = httpx.put(
                f"{server}/v1/sources/app.cfl", content=b"replicas = 2\n", headers={"If-Match": "1"}
            )
            assert r.status_code == 200, r.text
            wait_for("the client at revision 2", lambda: cfg.revision == 2)
            assert cfg.current.config.replicas == 2
    finally:
        stop_process(proc)


def test_a_missing_or_bad_certificate_file_is_a_usage_error(tmp_path: Path) -> None:
    """Exit 2 naming the file, not an internal error."""
    (tmp_path / "not.pem").write_text("hello\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for query in ("cacert=/nonexistent/ca.pem", f"cert={tmp_path}/not.pem&key={tmp_path}/not.pem"):
        r = subprocess.run(
            [
                *(sys.executable, "-c", "from cfglang.cli import run; run()", "publish"),
                *("--store", f"etcd://127.0.0.1:1?{query}", "--project", str(tmp_path)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error: --store: etcd `c") and "internal" not in r.stderr
