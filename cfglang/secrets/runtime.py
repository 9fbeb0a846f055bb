"""What one compilation knows about secrets: how to open ``secret("cfl:v2:...")`` values.

The driver (`cfglang.driver`) hands a `SecretContext` to the evaluator as its secrets
capability; the ``secret`` builtin calls `SecretContext.reveal` with the literal's token
and the call node. The context asks the program for the file's header and the call's
source path (`Program.secret_sites`: worked out once per program from the trees it
holds, so nothing is parsed again and a reused program does not walk its trees again),
unwraps the data key (once per file and evaluation: identities belong to the evaluation)
and opens the value. The path a value is bound to is the *source* path of
`cfglang.secrets.format`, not the evaluated data path: `encrypt` and `edit` compute it
without evaluating, and a value read through a template or a `let` has no data path of
its own. With ``decrypt=False`` (`cflc check`, `cflc explain`, and every read-only command
without an identity) a well-formed token yields a placeholder `Secret` of the right length
whose text is derived from the ciphertext (`cfglang.secrets.format.placeholder`), and
nothing is decrypted: two compilations then agree on a secret exactly when its ciphertext
is the same, and so do the values computed from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cfglang.secrets import SecretError
from cfglang.values import Secret


class SecretContext:
    """Identities (loaded on first need), and per-file caches of headers, paths and keys."""

    def __init__(
        self,
        identity_files: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        decrypt: bool = True,
        trees: Iterable[Any] = (),
        program: Any = None,
    ) -> None:
        """``program`` (a `cfglang.semantic.program.Program`) is the program being
        evaluated; without one, ``trees`` are its parsed modules. A file that is neither
        the program's nor among the trees is parsed on first need."""
        self.program = program
        self.identity_files = tuple(identity_files)
        # Keyed by the tree's own source: a tree from the parse cache holds the
        # `SourceFile` it was parsed from, and call spans point at that one.
        self._trees: dict[int, Any] = {id(t.span.source): t for t in trees}
        self.env = env
        self.decrypt = decrypt
        self._identities: list[Any] | None = None
        self._files: dict[int, tuple[Any, dict[int, Any]]] = {}
        self._keys: dict[tuple[str, str], bytes] = {}

    def identities(self) -> list[Any]:
        if self._identities is None:
            # optional: age identities (pyrage) only when a secret is decrypted
            from cfglang.secrets.keys import load_identities

            self._identities = load_identities(self.identity_files, self.env)[0]
        return self._identities

    def _file(self, source: Any) -> tuple[Any, dict[int, Any]]:
        """The header and the map from call offsets to the sites of one file."""
        hit = self._files.get(id(source))
        if hit is None and self.program is not None:
            hit = self.program.secret_sites(source)
            if hit is not None:
                self._files[id(source)] = hit
        if hit is None:
            # only for a file that holds secrets
            from cfglang.secrets.format import parse_header, sites

            header = parse_header(source.text)
            tree = self._trees.get(id(source))
            if tree is None:
                # only for a file the program did not parse
                from cfglang.syntax.parser import parse_module

                tree, _ = parse_module(source)
            paths = (
                {s.node.span.start: s for s in sites(tree) if s.kind == "call"}
                if tree is not None
                else {}
            )
            hit = (header, paths)
            self._files[id(source)] = hit
        return hit

    def reveal(self, token: str, source: Any, offset: int) -> Secret:
        """The secret of ``token`` written in ``source`` by the call at ``offset``."""
        # only when a secret is decrypted (cryptography is heavy)
        from cfglang.secrets.crypto import open_token
        from cfglang.secrets.format import fingerprint, parse_token, placeholder
        from cfglang.secrets.keys import unwrap

        header, paths = self._file(source)
        site = paths.get(offset)
        path = site.path if site is not None else "?"
        t = parse_token(token)
        if header is None:
            raise SecretError(
                f"secret `{path}` is encrypted, but `{source.path}` has no `# cfl-secrets:` header",
                code="E1102",
                help="the header lines hold the data key; restore them from version control",
            )
        if not self.decrypt:
            if t.key_id != header.key_id:
                raise SecretError(
                    f"secret `{path}` was encrypted under data key {t.key_id}, "
                    f"but this file's key is {header.key_id}",
                    code="E1102",
                )
            # A stand-in of the plain text's length, spelt from the ciphertext.
            return Secret(placeholder(token, max(0, len(t.sealed) - 16)), sealed=fingerprint(token))
        cache_key = (source.path, header.key_id)
        key = self._keys.get(cache_key)
        if key is None:
            try:
                key = unwrap(header, self.identities(), source.path)
            except SecretError as e:
                raise SecretError(
                    f"cannot decrypt secret `{path}`",
                    notes=(e.message, *e.notes),
                    help=e.help,
                    code=e.code,
                ) from None
            self._keys[cache_key] = key
        return Secret(open_token(key, header.key_id, site if site is not None else path, token))
