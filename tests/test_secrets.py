"""Secrets: encrypted literals, `cflc secrets`, decrypting builds, and redaction.

The redaction walk runs every surface that prints values (build errors and warnings,
`eval`, `explain`, `diff`, `doc`, `fmt`, JSON diagnostics, the Python API's reprs) with a
known secret and asserts the secret never appears; only build outputs may hold it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrage
import pytest

import cfglang
from cfglang.api import compile
from cfglang.secrets import SecretError
from cfglang.secrets.crypto import new_data_key, open_token, seal
from cfglang.secrets.edit import decrypt_text, encrypt_text, rotate_text
from cfglang.secrets.format import Wrapped, parse_header, parse_token, render_header, sites
from cfglang.source import SourceFile
from cfglang.syntax.parser import parse_module

_SCRIPT = shutil.which("cflc")
CFLC = [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]
KNOWN = "S3cr3t-Known-Value-42"

SOURCE = """\
# database settings
schema Db {
  host: string
  password: secret
}

db: Db {
  host = "db.internal"   # the primary
  password = "KNOWN"  # rotated monthly
}
token: secret = "tok-123"
extra = secret("x\\"y $$<z>")
plain = "not a secret"
""".replace("KNOWN", KNOWN)


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CFL_AGE_IDENTITY", raising=False)
    monkeypatch.delenv("CFL_AGE_IDENTITY_FILE", raising=False)


def identity() -> tuple[Any, str]:
    i = pyrage.x25519.Identity.generate()
    return i, str(i.to_public())


def write_key(path: Path, ident: Any) -> Path:
    path.write_text(f"# test key\n{ident}\n")
    return path


def cflc(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CFL_AGE_IDENTITY", "CFL_AGE_IDENTITY_FILE", "NO_COLOR")
    }
    full.update(env or {})
    return subprocess.run(
        [*CFLC, *map(str, args)],
        cwd=cwd,
        env=full,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Any]:
    """A project with one recipient, `app.cfl` encrypted, and the identity file."""
    ident, rec = identity()
    key = write_key(tmp_path / "key.txt", ident)
    (tmp_path / "cfl.toml").write_text(
        f'[project]\ntargets = ["app.cfl"]\n\n[secrets]\nrecipients = ["{rec}"]\n'
    )
    (tmp_path / "app.cfl").write_text(SOURCE)
    r = cflc("secrets", "encrypt", "app.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return {
        "dir": tmp_path,
        "ident": ident,
        "rec": rec,
        "key": key,
        "env": {"CFL_AGE_IDENTITY_FILE": str(key)},
    }


def build_data(path: Path, key: Path | None) -> Any:
    res = compile(str(path), identity=str(key) if key else None, emit_outputs=False)
    return res


# ---- round trips -----------------------------------------------------------------------------


def test_encrypt_then_build_gives_the_values(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    text = (d / "app.cfl").read_text()
    assert KNOWN not in text and "tok-123" not in text
    assert text.startswith("# cfl-secrets: v2 key=")
    res = build_data(d / "app.cfl", project["key"])
    assert res.ok, res.diagnostics
    assert res.data["db"]["password"].value == KNOWN
    assert res.data["token"].value == "tok-123"
    assert res.data["extra"].value == 'x"y $<z>'
    assert res.data["plain"] == "not a secret"
    out = cflc("build", "-o", "out/", "app.cfl", cwd=d, env=project["env"])
    assert out.returncode == 0, out.stderr
    assert json.loads((d / "out" / "app.json").read_text())["db"]["password"] == KNOWN


def test_encrypt_keeps_every_other_byte(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    enc = (d / "app.cfl").read_text()
    header = parse_header(enc)
    assert header is not None and len(header.lines) == 2
    body = enc.splitlines()[2:]
    orig = SOURCE.splitlines()
    assert len(body) == len(orig)
    for a, b in zip(orig, body, strict=True):
        if "cfl:v2:" in b:
            assert b.count("cfl:v2:") == 1  # one value, one line
            assert b.startswith(a.split('"')[0])  # the key text is kept
            assert b.rsplit('"', 1)[1].endswith(a.rsplit('"', 1)[1])  # comment kept
        else:
            assert a == b
    dec = decrypt_text("app.cfl", enc, [project["ident"]])
    assert f'password = secret("{KNOWN}")  # rotated monthly' in dec.text
    assert 'extra = secret("x\\"y $$<z>")' in dec.text
    assert "cfl-secrets" not in dec.text
    # Re-encrypting the decrypted text with the same key and the token map is a no-op.
    again = encrypt_text("app.cfl", dec.text, key=dec.key, reuse=dec.tokens)
    assert again.text == enc


def test_cli_decrypt_prints_and_in_place(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    before = (d / "app.cfl").read_text()
    r = cflc("secrets", "decrypt", "app.cfl", "--identity", project["key"], cwd=d)
    assert r.returncode == 0 and KNOWN in r.stdout
    assert (d / "app.cfl").read_text() == before  # stdout only
    r = cflc("secrets", "decrypt", "--in-place", "app.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0 and KNOWN in (d / "app.cfl").read_text()


def test_edit_keeps_unchanged_ciphertexts(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    before = (d / "app.cfl").read_text()
    editor = (
        f'{sys.executable} -c "import sys,re;p=sys.argv[1];t=open(p).read();'
        "open(p,'w').write(t.replace('tok-123','tok-456'))\""
    )
    r = cflc("secrets", "edit", "app.cfl", cwd=d, env={**project["env"], "EDITOR": editor})
    assert r.returncode == 0, r.stderr
    after = (d / "app.cfl").read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1 and changed[0][0].startswith("token:")
    res = build_data(d / "app.cfl", project["key"])
    assert res.data["token"].value == "tok-456"
    assert res.data["db"]["password"].value == KNOWN
    assert not list(Path("/tmp").glob("cflc-edit-*/app.cfl"))


def test_init_generates_identity_and_dirs(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text('[project]\ntargets = ["*.cfl"]\n')
    r = cflc("secrets", "init", "--generate-identity", "me.key", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "me.key").stat().st_mode) == 0o600
    _, other = identity()
    (tmp_path / "prod").mkdir()
    r = cflc("secrets", "init", "prod", "--recipient", other, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from cfglang.secrets.keys import recipients_for

    assert recipients_for(str(tmp_path / "prod" / "x.cfl")) == [other]
    assert recipients_for(str(tmp_path / "x.cfl")) != [other]
    assert "[project]" in (tmp_path / "cfl.toml").read_text()
    r = cflc("secrets", "init", "--recipient", "age1nope", cwd=tmp_path)
    assert r.returncode == 1 and "E1103" in r.stderr and "Traceback" not in r.stderr


# ---- tampering ---------------------------------------------------------------------------------


def _diag(res: Any) -> str:
    assert not res.ok
    assert not any(d.code == "E0900" for d in res.diagnostics)
    return " | ".join(
        f"{d.code} {d.message} {' '.join(n.message for n in d.notes)}" for d in res.diagnostics
    )


def test_flipped_byte_fails_cleanly(project: dict[str, Any]) -> None:
    p: Path = project["dir"] / "app.cfl"
    text = p.read_text()
    start = text.index("cfl:v2:", text.index("token:")) + len("cfl:v2:12345678:") + 5
    flipped = "A" if text[start] != "A" else "B"
    p.write_text(text[:start] + flipped + text[start + 1 :])
    msg = _diag(build_data(p, project["key"]))
    assert "E1102" in msg and "`token`" in msg and "does not authenticate" in msg
    r = cflc("build", "app.cfl", cwd=project["dir"], env=project["env"])
    assert r.returncode == 1 and "Traceback" not in r.stderr and "E1102" in r.stderr


def test_moved_ciphertext_fails(project: dict[str, Any]) -> None:
    p: Path = project["dir"] / "app.cfl"
    text = p.read_text()
    tree, _ = parse_module(SourceFile("app.cfl", text))
    assert tree is not None
    calls = {s.path: s.literal for s in sites(tree) if s.kind == "call"}
    a, b = calls["db.password"], calls["token"]
    assert a is not None and b is not None
    ta, tb = text[a.span.start : a.span.end], text[b.span.start : b.span.end]
    swapped = text[: a.span.start] + tb + text[a.span.end : b.span.start] + ta + text[b.span.end :]
    p.write_text(swapped)
    msg = _diag(build_data(p, project["key"]))
    assert "`db.password`" in msg and "`token`" in msg and "moved here" in msg


def test_ciphertext_from_another_file_or_without_header(
    project: dict[str, Any], tmp_path: Path
) -> None:
    text = (project["dir"] / "app.cfl").read_text()
    token = text[text.index("cfl:v2:", text.index("token:")) :].split('"')[0]
    other = encrypt_text("o.cfl", 'x = secret("hi")\n', recipients=[project["rec"]]).text
    pasted = other + f'token = secret("{token}")\n'
    (project["dir"] / "o.cfl").write_text(pasted)
    assert "E1102" in _diag(build_data(project["dir"] / "o.cfl", project["key"]))
    header = parse_header(text)
    assert header is not None
    (project["dir"] / "h.cfl").write_text(text[header.lines[-1][1] :])
    msg = _diag(build_data(project["dir"] / "h.cfl", project["key"]))
    assert "no `# cfl-secrets:` header" in msg
    (project["dir"] / "m.cfl").write_text(text.replace(token, "cfl:v2:zz"))
    assert "E1102" in _diag(build_data(project["dir"] / "m.cfl", project["key"]))


def test_wrong_identity_names_path_and_recipients(project: dict[str, Any]) -> None:
    stranger, _ = identity()
    key = write_key(project["dir"] / "stranger.txt", stranger)
    res = build_data(project["dir"] / "app.cfl", key)
    msg = _diag(res)
    assert "E1101" in msg and "`db.password`" in msg and project["rec"] in msg
    r = cflc("build", "app.cfl", cwd=project["dir"])  # no identity at all
    assert r.returncode == 1 and "no age identity was given" in r.stderr
    assert project["rec"] in r.stderr and "Traceback" not in r.stderr
    r = cflc("secrets", "decrypt", "app.cfl", "--identity", key, cwd=project["dir"])
    assert r.returncode == 1 and "E1101" in r.stderr and "Traceback" not in r.stderr


def test_tampered_header_fails_cleanly(project: dict[str, Any]) -> None:
    p: Path = project["dir"] / "app.cfl"
    text = p.read_text()
    header = parse_header(text)
    assert header is not None
    blob = bytearray(header.wrapped[0].blob)
    blob[-5] ^= 1
    bad = text.replace(
        base64.b64encode(header.wrapped[0].blob).decode(), base64.b64encode(bytes(blob)).decode()
    )
    p.write_text(bad)
    assert "E1101" in _diag(build_data(p, project["key"]))
    p.write_text(text.replace("# cfl-secrets: v2", "# cfl-secrets: v9"))
    assert "E1102" in _diag(build_data(p, project["key"]))


# ---- rotation ----------------------------------------------------------------------------------


def test_rotation_removes_a_recipient(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    bob, bob_rec = identity()
    bob_key = write_key(d / "bob.txt", bob)
    r = cflc("secrets", "init", "--recipient", project["rec"], "--recipient", bob_rec, cwd=d)
    assert r.returncode == 0, r.stderr
    r = cflc("secrets", "rotate", "app.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    two = (d / "app.cfl").read_text()
    h2 = parse_header(two)
    assert h2 is not None and set(h2.recipients) == {project["rec"], bob_rec}
    assert build_data(d / "app.cfl", bob_key).data["token"].value == "tok-123"
    # Bob leaves: rotate for the remaining recipient; his key opens nothing any more.
    r = cflc("secrets", "init", "--recipient", project["rec"], cwd=d)
    r = cflc("secrets", "rotate", "app.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    one = (d / "app.cfl").read_text()
    h1 = parse_header(one)
    assert h1 is not None and h1.recipients == (project["rec"],)
    assert h1.key_id != h2.key_id
    tok2 = [ln for ln in two.splitlines() if ln.startswith("token")]
    tok1 = [ln for ln in one.splitlines() if ln.startswith("token")]
    assert tok1 != tok2
    msg = _diag(build_data(d / "app.cfl", bob_key))
    assert "E1101" in msg and bob_rec not in msg.split("encrypted for")[-1]
    res = build_data(d / "app.cfl", project["key"])
    assert res.data["db"]["password"].value == KNOWN
    # Even with Bob's old wrapped key pasted back, the new values stay closed to him.
    old_line = next(ln for ln in two.splitlines() if bob_rec in ln)
    (d / "app.cfl").write_text(old_line + "\n" + one)
    assert "E1101" in _diag(build_data(d / "app.cfl", bob_key)) or "E1102" in _diag(
        build_data(d / "app.cfl", bob_key)
    )


def test_rotate_text_directly(project: dict[str, Any]) -> None:
    text = (project["dir"] / "app.cfl").read_text()
    _, rec2 = identity()
    out = rotate_text("app.cfl", text, [project["ident"]], [rec2])
    assert out.count == 3
    h = parse_header(out.text)
    assert h is not None and h.recipients == (rec2,)
    with pytest.raises(SecretError):
        decrypt_text("app.cfl", out.text, [project["ident"]])


# ---- check, plain text, modes ------------------------------------------------------------------


def test_check_validates_types_without_decrypting(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    r = cflc("check", "app.cfl", cwd=d)  # no identity anywhere
    assert r.returncode == 0, r.stderr
    text = (d / "app.cfl").read_text()
    tok = text[text.index("cfl:v2:", text.index("token:")) :].split('"')[0]
    (d / "bad.cfl").write_text(text + f'port: int = secret("{tok}")\n')
    r = cflc("check", "bad.cfl", cwd=d)
    assert r.returncode == 1 and "E0302" in r.stderr and "E1101" not in r.stderr


def test_plaintext_warning_strict_and_allow(tmp_path: Path) -> None:
    (tmp_path / "p.cfl").write_text(SOURCE)
    r = cflc("check", "p.cfl", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr.count("W1104") == 3
    assert "`db.password`" in r.stderr and " --> p.cfl:9:" in r.stderr
    assert KNOWN not in r.stderr and "tok-123" not in r.stderr
    r = cflc("check", "--strict", "p.cfl", cwd=tmp_path)
    assert r.returncode == 1 and "E1105" in r.stderr and KNOWN not in r.stderr
    r = cflc("check", "--strict", "--allow-plaintext-secrets", "p.cfl", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    r = cflc("build", "--strict", "p.cfl", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""


def test_outputs_with_secrets_are_0600(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    (d / "pub.cfl").write_text('n = 1\noutput "pub.json" = { a = n }\n')
    (d / "named.cfl").write_text(
        (d / "app.cfl").read_text()
        + 'output "priv.env" = { pw = db.password }\n'
        + 'output "open.json" = { host = db.host }\n'
    )
    r = cflc("build", "-o", "out/", "app.cfl", "pub.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((d / "out" / "app.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((d / "out" / "pub.json").stat().st_mode) & 0o044
    r = cflc("build", "-o", "named/", "named.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((d / "named" / "priv.env").stat().st_mode) == 0o600
    assert KNOWN in (d / "named" / "priv.env").read_text()
    assert stat.S_IMODE((d / "named" / "open.json").stat().st_mode) & 0o044


# ---- the age CLI ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("age-keygen") is None,
    reason="the age CLI is not installed (apt-get install -y age)",
)
def test_age_cli_interop(tmp_path: Path) -> None:
    subprocess.run(["age-keygen", "-o", str(tmp_path / "k.txt")], check=True, capture_output=True)
    rec = subprocess.run(
        ["age-keygen", "-y", str(tmp_path / "k.txt")], check=True, capture_output=True, text=True
    ).stdout.strip()
    # 1. age decrypts the data key that cflc wrapped.
    enc = encrypt_text("a.cfl", 'pw = secret("hello")\n', recipients=[rec]).text
    header = parse_header(enc)
    assert header is not None
    (tmp_path / "wrapped.age").write_bytes(header.wrapped[0].blob)
    key = subprocess.run(
        ["age", "-d", "-i", str(tmp_path / "k.txt"), str(tmp_path / "wrapped.age")],
        check=True,
        capture_output=True,
    ).stdout
    assert len(key) == 32
    token = enc[enc.index("cfl:v2:") :].split('"')[0]
    # a v2 value is bound to its site: the path and the index among same-path sites
    assert open_token(key, header.key_id, "pw#0", token) == "hello"
    # 2. cflc opens a data key that age wrapped, with the identity file age-keygen wrote.
    key_id, dk = new_data_key()
    (tmp_path / "dk.bin").write_bytes(dk)
    blob = subprocess.run(
        ["age", "-r", rec, str(tmp_path / "dk.bin")], check=True, capture_output=True
    ).stdout
    text = (
        render_header(key_id, [Wrapped(rec, blob)])
        + f'pw = secret("{seal(dk, key_id, "pw#0", "from-age")}")\n'
    )
    (tmp_path / "b.cfl").write_text(text)
    res = compile(str(tmp_path / "b.cfl"), identity=str(tmp_path / "k.txt"))
    assert res.ok, res.diagnostics
    assert res.data is not None and res.data["pw"].value == "from-age"


# ---- format details ------------------------------------------------------------------------------


def test_source_paths_and_token_format() -> None:
    text = (
        'schema S { pw: secret = secret("a") }\n'
        'template T(x = secret("b")) { y = secret("c") }\n'
        'let l = secret("d")\n'
        'svc { "odd key" { k = [1, secret("e")] } }\n'
        'output "o.json" = { z = secret("f") }\n'
    )
    tree, diags = parse_module(SourceFile("t.cfl", text))
    assert tree is not None and not diags
    paths = [s.path for s in sites(tree) if s.kind == "call"]
    assert paths == [
        "schema:S.pw",
        "template:T.x",
        "template:T.y",
        "let:l",
        'svc["odd key"].k[1]',
        'output:"o.json".z',
    ]
    key_id, key = new_data_key()
    tok = seal(key, key_id, "a.b", "v")
    assert parse_token(tok).key_id == key_id and len(parse_token(tok).nonce) == 12
    with pytest.raises(SecretError):
        open_token(key, key_id, "a.c", tok)


# ---- redaction walk ------------------------------------------------------------------------------


def test_redaction_walk(project: dict[str, Any]) -> None:
    """Every surface that is not a build output, with the identity available, must never
    print the known secret (nor the other secrets of the file)."""
    d: Path = project["dir"]
    env = project["env"]
    secrets = (KNOWN, "tok-123")
    enc = (d / "app.cfl").read_text()
    # A sibling whose constraints and checks fail on the secret, and a plaintext warning.
    (d / "bad.cfl").write_text(
        enc + 'check db.password == "nope"\n'
        "weak: secret where len(self) > 100 = db.password\n"
        "n: int = db.password\n"
        'url = "postgres://u:$<db.password>@h"\n'
        "u2: int = url\n"
    )
    (d / "changed.cfl").write_text(enc.replace('host = "db.internal"', 'host = "db2"'))
    out = cflc("build", "-o", "out/", "app.cfl", cwd=d, env=env)
    assert out.returncode == 0 and KNOWN in (d / "out" / "app.json").read_text()
    runs = [
        ("build", "bad.cfl"),
        ("build", "--error-format", "json", "bad.cfl"),
        ("check", "bad.cfl"),
        ("check", "--error-format", "json", "bad.cfl"),
        ("eval", "app.cfl", "db.password"),
        ("eval", "app.cfl", "db"),
        ("eval", "app.cfl", "[db.password, token]"),
        ("eval", "app.cfl", '"x-$<db.password>"'),
        ("eval", "-f", "yaml", "app.cfl", "db"),
        ("eval", "app.cfl", "db.password + 1"),
        ("eval", "app.cfl", "int(db.password)"),
        ("explain", "app.cfl", "db.password"),
        ("explain", "--json", "app.cfl", "db"),
        ("diff", "app.cfl", "changed.cfl"),
        ("diff", "app.cfl", "out/app.json"),
        ("diff", "--json", "app.cfl", "out/app.json"),
        ("fmt", "--diff", "app.cfl"),
        ("fmt", "--check", "app.cfl"),
        ("doc", "-o", "docs-out", "."),
        ("secrets", "encrypt", "app.cfl"),
        ("secrets", "rotate", "--help"),
    ]
    seen_error = False
    for args in runs:
        r = cflc(*args, cwd=d, env=env)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert r.returncode != 3, (args, r.stderr)
        seen_error |= r.returncode == 1
        for s in secrets:
            assert s not in r.stdout, (args, r.stdout)
            assert s not in r.stderr, (args, r.stderr)
    assert seen_error
    for f in (d / "docs-out").rglob("*"):
        if f.is_file():
            assert KNOWN not in f.read_text(), f
    # The Python API: reprs, str, errors.
    cfg = cfglang.api.load(d / "app.cfl", identity=str(project["key"]))
    assert cfg.db.password.value == KNOWN
    for shown in (
        repr(cfg),
        str(cfg),
        repr(cfg.db),
        repr(cfg.db.password),
        str(cfg.db.password),
        repr(cfg.to_dict()),
    ):
        assert KNOWN not in shown, shown
    with pytest.raises(cfglang.api.ConfigError) as e:
        cfglang.api.load(d / "bad.cfl", identity=str(project["key"]))
    assert KNOWN not in str(e.value)
    res = compile(str(d / "bad.cfl"), identity=str(project["key"]))
    for dg in res.diagnostics:
        assert KNOWN not in repr(dg) and KNOWN not in str(dg.message)


# ---- format v2: a value is bound to its site, not only its path --------------------------------

BRANCHES = """\
input env: string = "dev"
if env == "prod" {
  password = secret("prod-pass")
} else {
  password = secret("dev-pass")
}
"$<env>" { pw = secret("block-a") }
"x$<env>" { pw = secret("block-b") }
"""


def _tokens(text: str) -> list[str]:
    out = []
    pos = text.find('"cfl:v')
    while pos >= 0:
        end = text.index('"', pos + 1)
        out.append(text[pos + 1 : end])
        pos = text.find('"cfl:v', end)
    return out


def _swap(text: str, a: str, b: str) -> str:
    return text.replace(a, "\0").replace(b, a).replace("\0", b)


def test_v2_ciphertexts_swapped_between_branches_or_blocks_fail(
    project: dict[str, Any],
) -> None:
    d: Path = project["dir"]
    text = encrypt_text("b.cfl", BRANCHES, recipients=[project["rec"]]).text
    assert text.startswith("# cfl-secrets: v2 key=")
    prod, dev, block_a, block_b = _tokens(text)
    assert all(t.startswith("cfl:v2:") for t in (prod, dev, block_a, block_b))
    p = d / "b.cfl"
    p.write_text(text)
    res = build_data(p, project["key"])
    assert res.ok, res.diagnostics
    assert res.data["password"].value == "dev-pass"
    assert res.data["dev"]["pw"].value == "block-a"
    # The dev build must not be made to emit the prod password, nor one block the other's.
    for a, b in ((prod, dev), (block_a, block_b)):
        p.write_text(_swap(text, a, b))
        msg = _diag(build_data(p, project["key"]))
        assert msg.startswith("E1102") and "moved here" in msg, msg


def _v1_file(rec: str, values: list[tuple[str, str, str]]) -> str:
    """A version 1 file, as an older cflc wrote it: (field, source path, plain text)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from cfglang.secrets.format import associated_data, render_token
    from cfglang.secrets.keys import wrap

    key_id, key = new_data_key()
    header = render_header(key_id, wrap(key, [rec])).replace("cfl-secrets: v2", "cfl-secrets: v1")
    lines = []
    for field, path, plain in values:
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plain.encode(), associated_data(key_id, path, "v1"))
        token = render_token(key_id, nonce, sealed).replace("cfl:v2:", "cfl:v1:")
        lines.append(f'{field} = secret("{token}")\n')
    return header + "".join(lines)


def test_v1_files_still_read_and_rotate_upgrades_them_to_v2(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    p = d / "old.cfl"
    p.write_text(_v1_file(project["rec"], [("a", "a", "alpha"), ("b.c", "b.c", "gamma")]))
    res = build_data(p, project["key"])
    assert res.ok, res.diagnostics
    assert (res.data["a"].value, res.data["b"]["c"].value) == ("alpha", "gamma")
    r = cflc("secrets", "rotate", "old.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    text = p.read_text()
    assert text.startswith("# cfl-secrets: v2 key=") and "cfl:v1:" not in text
    assert len(_tokens(text)) == 2 and all(t.startswith("cfl:v2:") for t in _tokens(text))
    res = build_data(p, project["key"])
    assert res.ok, res.diagnostics
    assert (res.data["a"].value, res.data["b"]["c"].value) == ("alpha", "gamma")


def test_encrypt_into_a_v1_file_writes_v2_and_keeps_the_v1_values(
    project: dict[str, Any],
) -> None:
    d: Path = project["dir"]
    p = d / "old.cfl"
    p.write_text(_v1_file(project["rec"], [("a", "a", "alpha")]) + 'n = secret("new")\n')
    r = cflc("secrets", "encrypt", "old.cfl", cwd=d, env=project["env"])
    assert r.returncode == 0, r.stderr
    text = p.read_text()
    assert text.startswith("# cfl-secrets: v2 key=")
    assert [t[:7] for t in _tokens(text)] == ["cfl:v1:", "cfl:v2:"]
    res = build_data(p, project["key"])
    assert res.ok, res.diagnostics
    assert (res.data["a"].value, res.data["n"].value) == ("alpha", "new")


def test_a_v2_value_relabelled_v1_does_not_open(project: dict[str, Any]) -> None:
    d: Path = project["dir"]
    text = (d / "app.cfl").read_text()
    tok = _tokens(text)[-1]
    p = d / "relabel.cfl"
    p.write_text(text.replace(tok, tok.replace("cfl:v2:", "cfl:v1:")))
    assert _diag(build_data(p, project["key"])).startswith("E1102")


# ---- masks and caches ------------------------------------------------------------------------


def test_no_mask_of_a_secret_is_ever_shown(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without decrypting (`explain`, `doc`, hover), a secret is a placeholder of its length;
    a value derived from it must print `<secret>` whole, not `app:*****` (its length and
    any plain prefix)."""
    d: Path = project["dir"]
    enc = (d / "app.cfl").read_text()
    (d / "derived.cfl").write_text(
        enc + 'url = join(["app", db.password], ":")\nparts = split(token, "-")\n'
    )
    (d / "derived2.cfl").write_text(
        enc + 'url = join(["app2", db.password], ":")\nparts = split(token, "+")\n'
    )
    runs: list[tuple[str | Path, ...]] = [
        ("explain", "derived.cfl", "url"),
        ("explain", "--json", "derived.cfl", "parts"),
        ("eval", "derived.cfl", "[url, parts]"),
        ("diff", "derived.cfl", "derived2.cfl"),
        ("doc", "-o", "docs-out", "derived.cfl"),
    ]
    for args in runs:
        for env in (None, project["env"]):
            r = cflc(*args, cwd=d, env=env)
            assert "Traceback" not in r.stderr, (args, r.stderr)
            assert "**" not in r.stdout and "app:" not in r.stdout, (args, r.stdout)
            assert KNOWN not in r.stdout + r.stderr and "tok-1" not in r.stdout, args
    r = cflc("explain", "derived.cfl", "url", cwd=d)
    assert '"<secret>"' in r.stdout
    for f in (d / "docs-out").rglob("*"):
        if f.is_file():
            assert "**" not in f.read_text() and KNOWN not in f.read_text(), f
    lsp = pytest.importorskip("cfglang.lsp.hover")
    from cfglang.lsp.analysis import State
    from cfglang.lsp.diagnostics import Ranges

    monkeypatch.setenv("CFL_AGE_IDENTITY_FILE", str(project["key"]))  # the server decrypts
    state = State()
    text = (d / "derived.cfl").read_text()
    state.set_buffer(str(d / "derived.cfl"), text)
    for field in ("url = ", "parts = "):
        h = lsp.hover(state, str(d / "derived.cfl"), text.index(field), Ranges())
        assert h is not None
        md = str(h.contents.value)
        assert "<secret>" in md and "app:" not in md and KNOWN not in md, md


def test_parse_cache_never_keeps_a_plain_text_secret(project: dict[str, Any]) -> None:
    """A literal in `secret(...)`, in a field declared `: secret` or in a field that is
    secret by its schema is not in the parse cache, before or after `encrypt`."""
    import pickle

    from cfglang import cache

    d: Path = project["dir"]
    cache_dir = d / "cache"
    env = {**project["env"], "CFLC_CACHE_DIR": str(cache_dir)}
    (d / "p.cfl").write_text(SOURCE)
    (d / "other.cfl").write_text('note = "cached-plain-value"\n')
    for _ in range(2):
        r = cflc("build", "--allow-plaintext-secrets", "p.cfl", "other.cfl", cwd=d, env=env)
        assert r.returncode == 0, r.stderr

    def stored() -> bytes:
        return b"".join(f.read_bytes() for f in cache_dir.rglob("*") if f.is_file())

    assert b"cached-plain-value" in stored()  # the cache is on: plain files are kept
    for value in (KNOWN, "tok-123", 'x\\"y'):
        assert value.encode() not in stored(), value
    r = cflc("secrets", "encrypt", "p.cfl", cwd=d, env=env)
    assert r.returncode == 0, r.stderr
    r = cflc("build", "p.cfl", cwd=d, env=env)
    assert r.returncode == 0 and KNOWN in r.stdout, r.stderr
    assert KNOWN.encode() not in stored() and b"tok-123" not in stored()
    # In process too: the memory layer holds no such tree.
    res = compile(str(d / "other.cfl"), use_cache=True)
    assert res.ok
    (d / "q.cfl").write_text(SOURCE)
    res = compile(str(d / "q.cfl"), use_cache=True, plaintext_secrets="allow")
    assert res.ok
    with cache._MEMORY_LOCK:
        held = [pickle.dumps(v) for v in cache._MEMORY.values()]
    assert held and not any(KNOWN.encode() in b or b"tok-123" in b for b in held)


def test_edit_adding_a_site_of_the_same_path_rebinds_the_later_ones(
    project: dict[str, Any],
) -> None:
    """A new `password` branch above the others shifts their `#k`; `edit` decrypts with the
    old bindings and encrypts with the new, so every value still opens."""
    d: Path = project["dir"]
    p = d / "b.cfl"
    p.write_text(encrypt_text("b.cfl", BRANCHES, recipients=[project["rec"]]).text)
    (d / "ed.py").write_text(
        "import sys\n"
        "p = sys.argv[1]\n"
        "t = open(p).read()\n"
        'new = \'if env == "qa" {\\n  password = secret("qa-pass")\\n} else if env == "prod" {\'\n'
        "open(p, 'w').write(t.replace('if env == \"prod\" {', new))\n"
    )
    editor = f"{sys.executable} {d / 'ed.py'}"
    r = cflc("secrets", "edit", "b.cfl", cwd=d, env={**project["env"], "EDITOR": editor})
    assert r.returncode == 0, r.stderr
    text = p.read_text()
    assert "qa-pass" not in text and len(_tokens(text)) == 5
    for env, want in (("dev", "dev-pass"), ("prod", "prod-pass"), ("qa", "qa-pass")):
        res = compile(str(p), identity=str(project["key"]), cli_vars=[("env", env)])
        assert res.ok, res.diagnostics
        assert res.data["password"].value == want


def test_a_build_with_secrets_parses_each_file_once(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secret sites come from the trees the evaluation already holds: no second parse."""
    import cfglang.syntax.parser as parser

    real = parser.parse_module
    parsed: list[str] = []

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(source.path)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(parser, "parse_module", counting)
    res = compile(str(project["dir"] / "app.cfl"), identity=str(project["key"]), emit_outputs=False)
    assert res.ok, res.diagnostics
    assert res.data is not None and res.data["db"]["password"].value == KNOWN
    assert parsed.count("app.cfl") == 1
