"""The compiler's side of `cflc secrets`: which fields are secret by their schema.

`cfglang.secrets` sits below the compiler and never calls it; `encrypt_text` takes this
function as its ``secret_paths`` argument instead.
"""

from __future__ import annotations

import os

from cfglang.driver import compile
from cfglang.secrets.edit import secret_data_paths

__all__ = ["typed_secret_paths"]


def typed_secret_paths(path: str, text: str) -> tuple[set[tuple[str | int, ...]], bool]:
    """Data paths holding secrets when ``text`` is compiled as module ``path``."""
    res = compile(
        path,
        overlay={os.path.abspath(path): text},
        emit_outputs=False,
        decrypt_secrets=False,
        plaintext_secrets="allow",
    )
    if not res.ok or res.data is None:
        return set(), False
    return secret_data_paths(res.data), True
