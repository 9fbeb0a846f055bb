"""age identities and recipients, wrapping the data key, and the ``[secrets]`` settings.

Identities (private keys) come, first found wins, from ``--identity FILE`` (repeatable),
the ``CFL_AGE_IDENTITY`` environment variable (the key text itself) or
``CFL_AGE_IDENTITY_FILE`` (a path). Identity files are in age's format: ``#`` comments
and ``AGE-SECRET-KEY-1...`` lines, as written by ``age-keygen`` or ``cflc secrets init
--generate``.

Recipients (public keys, ``age1...``) are set in ``cfl.toml``::

    [secrets]
    recipients = ["age1...", "age1..."]

    [secrets.dirs]
    "env/prod" = ["age1..."]        # files under env/prod use these instead

The data key is wrapped separately for each recipient (one age file per recipient), so
each recipient's header line stands alone and removing one is a one-line diff.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from cfglang.project import ProjectError, config_path, find_root, read_toml, unknown_key
from cfglang.secrets import SecretError
from cfglang.secrets.format import Header, Wrapped

ENV_IDENTITY = "CFL_AGE_IDENTITY"
ENV_IDENTITY_FILE = "CFL_AGE_IDENTITY_FILE"
_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")


def parse_identities(text: str, origin: str) -> list[Any]:
    """The age X25519 identities in identity-file text; raises `SecretError`."""
    import pyrage  # lazy: a build without secrets loads no pyrage (see cfglang.secrets)

    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(pyrage.x25519.Identity.from_str(line))
        except Exception:
            raise SecretError(
                f"{origin}: line {n} is not an age identity",
                help="an identity line starts with AGE-SECRET-KEY-1",
                code="E1103",
            ) from None
    if not out:
        raise SecretError(f"{origin} holds no age identity", code="E1103")
    return out


def load_identities(
    files: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> tuple[list[Any], str]:
    """Identities from files, else the environment; and a description of where from."""
    env = os.environ if env is None else env
    if files:
        ids: list[Any] = []
        for f in files:
            try:
                with open(f, encoding="utf-8") as fh:
                    ids += parse_identities(fh.read(), f"identity file `{f}`")
            except OSError as e:
                raise SecretError(
                    f"cannot read identity file `{f}`: {e.strerror or e}", code="E1103"
                ) from None
        return ids, "--identity " + " ".join(files)
    if env.get(ENV_IDENTITY):
        return parse_identities(env[ENV_IDENTITY], ENV_IDENTITY), ENV_IDENTITY
    if env.get(ENV_IDENTITY_FILE):
        return load_identities([env[ENV_IDENTITY_FILE]], {})[0], ENV_IDENTITY_FILE
    return [], ""


def identity_given(files: Sequence[str] = (), env: Mapping[str, str] | None = None) -> bool:
    """Whether an identity is at hand (``--identity``, or either environment variable).

    Read-only commands (`diff`, `eval`, `watch`, `cfglang.live`) decrypt only then;
    without one they compare and print secrets by their ciphertext (docs/secrets.md)."""
    env = os.environ if env is None else env
    return bool(files) or bool(env.get(ENV_IDENTITY)) or bool(env.get(ENV_IDENTITY_FILE))


def check_recipient(r: str) -> str:
    """``r`` if it is an age X25519 recipient; raises `SecretError` otherwise."""
    import pyrage  # lazy: a build without secrets loads no pyrage (see cfglang.secrets)

    try:
        pyrage.x25519.Recipient.from_str(r)
    except Exception:
        raise SecretError(
            f"`{r}` is not an age recipient",
            code="E1103",
            help="a recipient starts with age1 (see `age-keygen -y`)",
        ) from None
    return r


def wrap(key: bytes, recipients: Sequence[str]) -> list[Wrapped]:
    """The data key age-encrypted for each recipient, one age file each."""
    import pyrage  # lazy: a build without secrets loads no pyrage (see cfglang.secrets)

    if not recipients:
        raise SecretError(
            "no recipients to encrypt for",
            code="E1103",
            help="add one with `cflc secrets recipients add age1...` (or pass --recipient "
            "to `cflc secrets encrypt` or `rotate`)",
        )
    out = []
    for r in recipients:
        check_recipient(r)
        out.append(Wrapped(r, pyrage.encrypt(key, [pyrage.x25519.Recipient.from_str(r)])))
    return out


def unwrap(header: Header, identities: Sequence[Any], source: str = "") -> bytes:
    """The data key of ``header`` opened with any of ``identities``; raises `SecretError`."""
    import pyrage  # lazy: a build without secrets loads no pyrage (see cfglang.secrets)

    if identities:
        for w in header.wrapped:
            try:
                key = pyrage.decrypt(w.blob, list(identities))
            except Exception:
                continue
            if len(key) == 32:
                return bytes(key)
    rs = ", ".join(f"`{r}`" for r in header.recipients) or "nobody"
    why = (
        "none of the given identities is one of its recipients"
        if identities
        else "no age identity was given"
    )
    raise SecretError(
        f"cannot decrypt the data key{' of ' + source if source else ''}: {why}",
        notes=(f"encrypted for {rs}",),
        help=f"pass --identity FILE (in Python, identity=), or set {ENV_IDENTITY_FILE} (or "
        f"{ENV_IDENTITY}) to a key of one of these recipients",
        code="E1101",
    )


# ---- cfl.toml ------------------------------------------------------------------------------


def project_root(path: str) -> str:
    return find_root(path)


def read_settings(root: str) -> dict[str, Any]:
    """The ``[secrets]`` table of ``root/cfl.toml`` (empty when there is none)."""
    try:
        data = read_toml(root)
    except ProjectError as e:
        raise SecretError(f"cannot read `{e.path}`: {e}", code="E0703") from None
    bad = unknown_key(data, config_path(root))  # as strict as wherever cfl.toml is read
    if bad is not None:
        where = ""
        if bad.span is not None:
            line, col = bad.span.start_line_col()
            where = f" ({bad.span.path}:{line}:{col})"
        raise SecretError(bad.message + where, help=bad.help, code="E0703")
    s = data.get("secrets", {})
    return dict(s) if isinstance(s, dict) else {}


def recipients_for(path: str) -> list[str]:
    """The recipients configured for file ``path``: the longest matching ``dirs`` entry,
    else the project's ``recipients``."""
    return scope_for(path)[1]


def scope_for(path: str) -> tuple[str, list[str]]:
    """Which entry of ``cfl.toml`` gives file ``path`` its recipients (``"."`` for the
    project's, else the ``dirs`` key), and those recipients."""
    root = project_root(path)
    settings = read_settings(root)
    rel = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
    best: tuple[str, list[str]] | None = None
    for d, rs in dict(settings.get("dirs", {})).items():
        d = str(d).strip("/")
        if rel.startswith(d + "/") and (best is None or len(d) > len(best[0])):
            best = (d, [str(r) for r in rs])
    if best is not None:
        return best
    return ".", [str(r) for r in settings.get("recipients", [])]


def write_settings(
    root: str, recipients: Sequence[str] | None, dirs: Mapping[str, Sequence[str]]
) -> str:
    """Rewrite the ``[secrets]`` tables of ``root/cfl.toml`` (other tables kept verbatim)."""
    p = config_path(root)
    text = ""
    if os.path.isfile(p):
        with open(p, encoding="utf-8") as f:
            text = f.read()
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        m = re.match(r"\s*\[+\s*([A-Za-z0-9_.\"-]+)", line)
        if m:
            inside = m.group(1) == "secrets" or m.group(1).startswith("secrets.")
        if not inside:
            kept.append(line)
    body = "".join(kept).rstrip("\n")
    out = [body + "\n\n" if body else "", "[secrets]\n"]
    out.append("recipients = [" + ", ".join(json.dumps(r) for r in recipients or ()) + "]\n")
    if dirs:
        out.append("\n[secrets.dirs]\n")
        for d, rs in dirs.items():
            out.append(f"{json.dumps(d)} = [" + ", ".join(json.dumps(r) for r in rs) + "]\n")
    new = "".join(out)
    tomllib.loads(new)  # never write a file that does not read back
    with open(p, "w", encoding="utf-8") as f:
        f.write(new)
    return p


def generate_identity(path: str) -> str:
    """Write a new age identity to ``path`` (mode 0600, never overwriting); its recipient."""
    import pyrage  # lazy: a build without secrets loads no pyrage (see cfglang.secrets)

    ident = pyrage.x25519.Identity.generate()
    pub = str(ident.to_public())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        stamp = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        f.write(f"# created: {stamp.isoformat()}\n# public key: {pub}\n{ident}\n")
    return pub


def recipients_of(identities: Sequence[Any]) -> list[str]:
    """The ``age1...`` recipient of each identity (whose key the caller holds)."""
    return [str(i.to_public()) for i in identities]


def encrypted_files(root: str) -> list[str]:
    """Every `.cfl` file below ``root`` with a ``# cfl-secrets:`` header, sorted; hidden
    directories (``.git``, caches) are skipped."""
    from cfglang.secrets.format import HEADER_TAG, parse_header  # lazy: only for this walk

    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for name in sorted(files):
            if not name.endswith(".cfl"):
                continue
            p = os.path.join(d, name)
            try:
                with open(p, encoding="utf-8", newline="") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if HEADER_TAG not in text:
                continue
            try:
                if parse_header(text) is None:
                    continue
            except SecretError:
                pass  # a malformed header: listed, so that its error is reported
            out.append(p)
    return out
