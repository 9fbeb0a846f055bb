"""`cflc secrets`: set up recipients, and encrypt, decrypt, rotate and edit secrets in place.

The work is done by `cfglang.secrets.edit` and `cfglang.secrets.keys`; this module parses
options and renders `SecretError`s as diagnostics. See docs/secrets.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from cfglang.commands._options import diagnostic_options, quiet_option
from cfglang.console import EXIT_ERRORS, Ctx
from cfglang.secrets import SecretError

_IDENTITY_HELP = (
    "age identity file (repeatable; default: CFL_AGE_IDENTITY or CFL_AGE_IDENTITY_FILE)."
)


def _identity(f: Any) -> Any:
    return click.option(
        "--identity",
        "identity",
        multiple=True,
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help=_IDENTITY_HELP,
    )(f)


def _recipient(f: Any) -> Any:
    return click.option(
        "--recipient",
        "recipient",
        multiple=True,
        metavar="AGE1...",
        help="Encrypt for this recipient instead of cfl.toml's (repeatable).",
    )(f)


def _common(f: Any) -> Any:
    f = diagnostic_options(f)
    f = quiet_option()(f)
    return f


def _run(error_format: str, color: str, quiet: bool, work: Callable[[Any], int]) -> None:
    """Run ``work(ctx)``; a `SecretError` or an I/O error becomes a diagnostic (exit 1)."""
    # start-up: `cflc secrets --help` imports this module, not attrs and the renderer
    from cfglang.diagnostics import Diagnostic, Note

    ctx = Ctx(error_format, color, quiet, 0)
    try:
        code = work(ctx)
    except SecretError as e:
        ctx.report(
            [Diagnostic(e.code, e.message, notes=tuple(Note(n) for n in e.notes), help=e.help)]
        )
        code = EXIT_ERRORS
    except OSError as e:
        ctx.report([Diagnostic("E0602", f"cannot write `{e.filename}`: {e.strerror or e}")])
        code = EXIT_ERRORS
    sys.exit(code)


def _ids(files: Sequence[str]) -> list[Any]:
    from cfglang.secrets.keys import load_identities  # start-up, as in `_run`

    return load_identities(files)[0]


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SecretError(
            f"cannot read `{path}`: {getattr(e, 'strerror', None) or e}", code="E0702"
        ) from None


@click.group(name="secrets")
def command() -> None:
    """Encrypted secrets in .cfl files (age recipients, AES-256-GCM values).

    \b
    cflc secrets init --generate-identity key.txt   new key, recipient saved in cfl.toml
    cflc secrets encrypt FILE                        encrypt plain secrets in place
    cflc secrets decrypt FILE                        print the file decrypted
    cflc secrets rotate FILE                         new data key for current recipients
    cflc secrets edit FILE                           decrypt, $EDITOR, re-encrypt
    """


@command.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--recipient",
    "recipient",
    multiple=True,
    metavar="AGE1...",
    help="A recipient who may decrypt (repeatable).",
)
@click.option(
    "--generate-identity",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Create a new age identity in FILE (mode 0600) and add its recipient.",
)
@_common
def init_cmd(
    directory: str,
    recipient: tuple[str, ...],
    generate_identity: str | None,
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Set the recipients for DIRECTORY's project (or, below the root, for that directory).

    Writes the [secrets] table of the project's cfl.toml. Existing files keep their data
    key until `cflc secrets rotate`.
    """

    def work(ctx: Any) -> int:
        # start-up: `cflc secrets init --help` imports this module, not the secrets code
        from cfglang.secrets.keys import (
            check_recipient,
            project_root,
            read_settings,
            write_settings,
        )
        from cfglang.secrets.keys import (
            generate_identity as gen,
        )

        rs = [check_recipient(r) for r in recipient]
        if generate_identity:
            if os.path.exists(generate_identity):
                raise SecretError(f"`{generate_identity}` already exists", code="E1103")
            rs.append(gen(generate_identity))
            ctx.info(f"wrote identity {generate_identity} (keep it secret; mode 0600)")
        if not rs:
            raise SecretError(
                "no recipients given",
                code="E1103",
                help="pass --recipient age1... or --generate-identity FILE",
            )
        os.makedirs(directory, exist_ok=True)
        root = project_root(os.path.join(directory, "x"))
        settings = read_settings(root)
        dirs = {str(k): [str(x) for x in v] for k, v in dict(settings.get("dirs", {})).items()}
        top = [str(x) for x in settings.get("recipients", [])]
        rel = os.path.relpath(os.path.abspath(directory), root).replace(os.sep, "/")
        if rel == ".":
            top = rs
        else:
            dirs[rel] = rs
        p = write_settings(root, top, dirs)
        ctx.info(
            f"wrote {os.path.relpath(p)}: {len(rs)} recipient(s) for "
            f"{'the project' if rel == '.' else rel}"
        )
        return 0

    _run(error_format, color, quiet, work)


@command.command(name="encrypt")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_identity
@_recipient
@_common
def encrypt_cmd(
    files: tuple[str, ...],
    identity: tuple[str, ...],
    recipient: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Encrypt, in place, every plain value of a secret in FILE...

    A value is a secret when written secret("..."), when its field is declared
    `: secret`, or when its schema's field is a secret. Comments and layout are kept.
    A file that already has secrets needs an identity to reuse its data key.
    """

    def work(ctx: Any) -> int:
        # start-up: `cflc secrets encrypt --help` imports this module, not the secrets code
        from cfglang.secrets.edit import encrypt_text, write_in_place
        from cfglang.secrets.keys import recipients_for
        from cfglang.tools.secrets import typed_secret_paths

        ids = _ids(identity)
        for f in files:
            text = _read(f)
            rs = list(recipient) or recipients_for(f)
            res = encrypt_text(
                f, text, recipients=rs, identities=ids, secret_paths=typed_secret_paths
            )
            for r in res.remarks:
                ctx.info(f"note: {r}")
            if res.count:
                write_in_place(f, res.text)
            ctx.info(f"{f}: encrypted {res.count} value(s)")
        return 0

    _run(error_format, color, quiet, work)


@command.command(name="decrypt")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--in-place", is_flag=True, help="Rewrite FILE decrypted instead of printing it.")
@_identity
@_common
def decrypt_cmd(
    file: str, in_place: bool, identity: tuple[str, ...], error_format: str, color: str, quiet: bool
) -> None:
    """Print FILE with its secrets decrypted (to stdout; FILE is unchanged).

    Values stay wrapped in secret("..."), so `cflc secrets encrypt` finds them again.
    """

    def work(ctx: Any) -> int:
        # start-up: `cflc secrets decrypt --help` imports this module, not the secrets code
        from cfglang.secrets.edit import decrypt_text, write_in_place

        res = decrypt_text(file, _read(file), _ids(identity))
        if in_place:
            write_in_place(file, res.text)
            ctx.info(f"{file}: decrypted {res.count} value(s) in place")
        else:
            sys.stdout.write(res.text)
        return 0

    _run(error_format, color, quiet, work)


@command.command(name="rotate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_identity
@_recipient
@_common
def rotate_cmd(
    files: tuple[str, ...],
    identity: tuple[str, ...],
    recipient: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Re-encrypt FILE... under a new data key wrapped for the current recipients.

    A recipient removed from cfl.toml loses access to the rotated values (old versions
    of the file stay readable by it: change the secrets themselves too).
    """

    def work(ctx: Any) -> int:
        # start-up: `cflc secrets rotate --help` imports this module, not the secrets code
        from cfglang.secrets.edit import rotate_text, write_in_place
        from cfglang.secrets.keys import recipients_for

        ids = _ids(identity)
        for f in files:
            rs = list(recipient) or recipients_for(f)
            res = rotate_text(f, _read(f), ids, rs)
            for r in res.remarks:
                ctx.info(f"note: {r}")
            if res.count:
                write_in_place(f, res.text)
            ctx.info(f"{f}: rotated {res.count} value(s) for {len(rs)} recipient(s)")
        return 0

    _run(error_format, color, quiet, work)


@command.command(name="edit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_identity
@_common
def edit_cmd(
    file: str, identity: tuple[str, ...], error_format: str, color: str, quiet: bool
) -> None:
    """Decrypt FILE to a private temporary file, open $EDITOR, re-encrypt, shred.

    The data key is kept, and values whose text did not change keep their ciphertext,
    so the diff shows only what was edited.
    """

    def work(ctx: Any) -> int:
        # start-up: `cflc secrets edit --help` imports this module, not the secrets code
        import shlex
        import subprocess
        import tempfile

        from cfglang.secrets.edit import decrypt_text, encrypt_text, shred, write_in_place
        from cfglang.secrets.keys import recipients_for
        from cfglang.tools.secrets import typed_secret_paths

        text = _read(file)
        dec = decrypt_text(file, text, _ids(identity))
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        tmpdir = tempfile.mkdtemp(prefix="cflc-edit-")  # mode 0700
        tmp = os.path.join(tmpdir, os.path.basename(file))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(dec.text)
            rc = subprocess.call([*shlex.split(editor), tmp])
            if rc != 0:
                raise SecretError(
                    f"the editor exited with status {rc}; `{file}` is unchanged", code="E1103"
                )
            with open(tmp, encoding="utf-8", newline="") as fh:
                edited = fh.read()
        finally:
            shred(tmp)
            os.rmdir(tmpdir)
        if edited == dec.text:
            ctx.info(f"{file}: unchanged")
            return 0
        res = encrypt_text(
            file,
            edited,
            key=dec.key,
            reuse=dec.tokens,
            recipients=recipients_for(file),
            secret_paths=typed_secret_paths,
        )
        for r in res.remarks:
            ctx.info(f"note: {r}")
        write_in_place(file, res.text)
        ctx.info(f"{file}: saved, {res.count} secret value(s)")
        return 0

    _run(error_format, color, quiet, work)
