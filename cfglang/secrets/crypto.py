"""Sealing and opening one secret value: AES-256-GCM under the file's data key.

Each value gets a fresh random 96-bit nonce; the associated data binds the format, the key
id and the value's source path (`format.associated_data`), so a ciphertext copied to
another field (or another branch of an `if`, in version 2), or into a file with another
data key, fails authentication.
"""

from __future__ import annotations

import os

from cfglang.secrets import SecretError
from cfglang.secrets.format import Site, associated_data, parse_token, render_token

KEY_BYTES = 32
NONCE_BYTES = 12


def new_data_key() -> tuple[str, bytes]:
    """A fresh data key and its public id (8 random hex digits, not derived from the key)."""
    return os.urandom(4).hex(), os.urandom(KEY_BYTES)


def seal(key: bytes, key_id: str, path: str, plaintext: str) -> str:
    """The ``cfl:v2:...`` token of ``plaintext`` bound to ``path`` (a site's v2 binding)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # heavy: see `open_token`

    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), associated_data(key_id, path))
    return render_token(key_id, nonce, sealed)


def open_token(key: bytes, key_id: str, site: Site | str, token: str) -> str:
    """The plaintext of ``token`` written at ``site`` (a v1 source path also does, for
    v1 tokens); raises `SecretError` when it does not authenticate. Messages name the
    source path, never the binding."""
    # heavy (~40 ms): a build without secrets loads no cryptography (see cfglang.secrets)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    t = parse_token(token)
    if isinstance(site, str):
        path = bound = site
    else:
        path, bound = site.path, site.bound(t.version)
    if t.key_id != key_id:
        raise SecretError(
            f"secret `{path}` was encrypted under data key {t.key_id}, but this file's key "
            f"is {key_id}",
            code="E1102",
            help="it was probably copied from another file or from before a rotation; "
            "write the value in plain text and run `cflc secrets encrypt`",
        )
    try:
        raw = AESGCM(key).decrypt(t.nonce, t.sealed, associated_data(key_id, bound, t.version))
    except InvalidTag:
        raise SecretError(
            f"secret `{path}` does not authenticate: it was altered, or moved here from "
            "another field or branch",
            code="E1102",
            help="restore the line from version control, or write the value in plain text "
            "and run `cflc secrets encrypt`",
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # pragma: no cover - only a forged but valid tag gets here
        raise SecretError(f"secret `{path}` is not UTF-8 text", code="E1102") from None
