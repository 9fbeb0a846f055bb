"""Secrets: values encrypted in `.cfl` source, decrypted only into build outputs.

The model is SOPS's, made native (the exact, versioned format is in ``docs/secrets.md``):

* every secret value is written ``secret("cfl:v2:<key id>:<base64url>")`` on its own line,
  encrypted with AES-256-GCM under a per-file *data key*, with the value's *binding* (its
  source path, ``db.password``, ``schema:Db.password``, and which of the file's sites with
  that path it is) as associated data, so a ciphertext moved to another field, or to the
  other branch of an ``if``, no longer decrypts;
* the data key is wrapped with age for each recipient, one ``# cfl-secrets: recipient``
  comment line each, at the top of the file; comments keep the file valid CFL and each
  recipient's line diffs on its own.

Modules, one concern each:

``format``   the header lines, the value token, source paths, string quoting
``crypto``   AES-256-GCM sealing and opening of one value; data keys
``keys``     age identities and recipients; wrapping the data key; ``cfl.toml`` settings
``runtime``  what a compilation needs: the ``secret(...)`` builtin's decryptor
``edit``     in-place rewrites of a file: encrypt, decrypt, rotate, and the plain-text scan

Nothing here imports ``cryptography`` or ``pyrage`` at module level, so a build without
secrets pays nothing for them.
"""

from __future__ import annotations


class SecretError(Exception):
    """A user-facing failure with secrets: a message, and optional notes and help."""

    def __init__(
        self,
        message: str,
        *,
        notes: tuple[str, ...] = (),
        help: str | None = None,
        code: str = "E1101",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.notes = notes
        self.help = help
        self.code = code


__all__ = ["SecretError"]
