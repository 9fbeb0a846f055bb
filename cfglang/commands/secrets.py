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
    cflc secrets recipients list|add|remove|sync     who may decrypt (cfl.toml and files)
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

    Writes the [secrets] table of the project's cfl.toml, replacing the recipients already
    there (it says which it removed); `cflc secrets recipients add` adds one instead.
    Existing files keep their data key until `cflc secrets rotate`.
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
        old = top if rel == "." else dirs.get(rel, [])
        if rel == ".":
            top = rs
        else:
            dirs[rel] = rs
        p = write_settings(root, top, dirs)
        where = "the project" if rel == "." else rel
        ctx.info(f"wrote {os.path.relpath(p)}: {len(rs)} recipient(s) for {where}")
        dropped = [r for r in old if r not in rs]
        if dropped:
            # `init` sets the list; adding a teammate with it used to drop the author.
            ctx.info(
                f"note: replaced the recipients of {where}; removed "
                + ", ".join(f"`{r}`" for r in dropped)
                + " (to add a recipient and keep the others, use `cflc secrets recipients add`)"
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


# ---- recipients ------------------------------------------------------------------------------


@command.group(name="recipients")
def recipients_cmd() -> None:
    """List, add and remove who may decrypt, in cfl.toml and in the encrypted files.

    \b
    cflc secrets recipients list [DIR]                 the project's and each directory's
    cflc secrets recipients add AGE1... [--dir DIR]    add, keeping the others; re-wraps keys
    cflc secrets recipients remove AGE1... [--dir DIR] remove; rotates the files' keys
    cflc secrets recipients sync                       bring every file in line with cfl.toml

    add and remove change cfl.toml, then bring the files below the entry in line (this
    needs the identity of a current recipient: --identity or CFL_AGE_IDENTITY[_FILE];
    without one, run `cflc secrets recipients sync --identity FILE` later).
    """


def _dir_option(f: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        default=".",
        metavar="DIR",
        type=click.Path(file_okay=False),
        help="The directory whose entry ([secrets.dirs]) to change (default: the project's).",
    )(f)


def _scope(directory: str) -> tuple[str, str, list[str], dict[str, list[str]]]:
    """(root, the entry's name: "." or a dirs key, the project's recipients, the dirs)."""
    from cfglang.secrets.keys import project_root, read_settings  # start-up, as in `_run`

    root = project_root(os.path.join(directory, "x"))
    settings = read_settings(root)
    dirs = {
        str(k).strip("/"): [str(x) for x in v] for k, v in dict(settings.get("dirs", {})).items()
    }
    top = [str(x) for x in settings.get("recipients", [])]
    rel = os.path.relpath(os.path.abspath(directory), root).replace(os.sep, "/").strip("/")
    return root, rel or ".", top, dirs


def _sync(ctx: Any, root: str, ids: list[Any], scope: str | None) -> int:
    """Bring each encrypted file (of entry ``scope``; every file when None) in line with
    cfl.toml: re-wrap its key when recipients were only added, rotate it (a new data
    key, every value re-encrypted) when one was removed. Returns an exit status."""
    # start-up: as in `_run`
    from cfglang.diagnostics import Diagnostic, Note
    from cfglang.secrets.edit import rewrap_text, rotate_text, write_in_place
    from cfglang.secrets.format import parse_header
    from cfglang.secrets.keys import encrypted_files, scope_for

    status = 0
    pending = []
    for f in encrypted_files(root):
        entry, want = scope_for(f)
        if scope is not None and entry != scope:
            continue
        shown = os.path.relpath(f)
        try:
            text = _read(f)
            header = parse_header(text)
            if header is None:
                continue
            have = list(header.recipients)
            if set(have) == set(want):
                continue
            if not ids:
                pending.append(shown)
                continue
            if set(have) - set(want):
                res = rotate_text(f, text, ids, want)
                write_in_place(f, res.text)
                ctx.info(f"{shown}: rotated (new data key) for {len(want)} recipient(s)")
            else:
                write_in_place(f, rewrap_text(f, text, ids, want))
                ctx.info(f"{shown}: re-wrapped its data key for {len(want)} recipient(s)")
        except SecretError as e:
            ctx.report(
                [
                    Diagnostic(
                        e.code,
                        f"{shown}: {e.message}",
                        notes=tuple(Note(n) for n in e.notes),
                        help=e.help,
                    )
                ]
            )
            status = EXIT_ERRORS
    if pending:
        ctx.info(
            f"note: {len(pending)} file(s) are still encrypted for their old recipients ("
            + ", ".join(pending)
            + "): no identity was given; run `cflc secrets recipients sync --identity FILE`"
        )
    return status


@recipients_cmd.command(name="list")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print {project, dirs, files} as JSON.")
@_common
def recipients_list_cmd(
    directory: str, as_json: bool, error_format: str, color: str, quiet: bool
) -> None:
    """List the recipients of the project and of each directory.

    Also notes the encrypted files whose header is wrapped for other recipients than
    cfl.toml's (`sync` brings them in line)."""

    def work(ctx: Any) -> int:
        import json  # start-up, as in `_run`

        from cfglang.secrets.format import parse_header  # start-up, as in `_run`
        from cfglang.secrets.keys import encrypted_files, recipients_for

        root, _, top, dirs = _scope(directory)
        files: dict[str, list[str]] = {}
        stale: list[str] = []
        for f in encrypted_files(root):
            header = parse_header(_read(f))
            if header is None:
                continue
            rel = os.path.relpath(f, root).replace(os.sep, "/")
            files[rel] = list(header.recipients)
            if set(header.recipients) != set(recipients_for(f)):
                stale.append(rel)
        if as_json:
            click.echo(
                json.dumps(
                    {"project": top, "dirs": dirs, "files": files, "out_of_date": stale},
                    indent=2,
                )
            )
            return 0
        click.echo(f"project: {len(top)} recipient(s)")
        for r in top:
            click.echo(f"  {r}")
        for d, rs in dirs.items():
            click.echo(f"{d}: {len(rs)} recipient(s)")
            for r in rs:
                click.echo(f"  {r}")
        for rel in stale:
            ctx.info(
                f"note: {rel} is encrypted for other recipients than cfl.toml's; "
                "run `cflc secrets recipients sync --identity FILE`"
            )
        return 0

    _run(error_format, color, quiet, work)


@recipients_cmd.command(name="add")
@click.argument("recipients", nargs=-1, required=True, metavar="AGE1...")
@_dir_option
@_identity
@_common
def recipients_add_cmd(
    recipients: tuple[str, ...],
    directory: str,
    identity: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Add recipients, keeping the others; then re-wrap each file's data key for them.

    The data key of each encrypted file of that entry is wrapped for the new list; the
    values and their ciphertexts stay."""

    def work(ctx: Any) -> int:
        from cfglang.secrets.keys import check_recipient, write_settings  # start-up

        rs = [check_recipient(r) for r in recipients]
        root, rel, top, dirs = _scope(directory)
        where = "the project" if rel == "." else rel
        cur = top if rel == "." else dirs.get(rel, top)
        if rel != "." and rel not in dirs:
            ctx.info(f"note: {rel} had no recipients of its own; it starts from the project's")
        new = cur + [r for r in dict.fromkeys(rs) if r not in cur]
        if rel == ".":
            top = new
        else:
            dirs[rel] = new
        write_settings(root, top, dirs)
        ctx.info(f"cfl.toml: {len(new) - len(cur)} recipient(s) added for {where} ({len(new)} now)")
        return _sync(ctx, root, _ids(identity), rel)

    _run(error_format, color, quiet, work)


@recipients_cmd.command(name="remove")
@click.argument("recipients", nargs=-1, required=True, metavar="AGE1...")
@_dir_option
@click.option(
    "--force", is_flag=True, help="Remove your own recipient too (you lose access to the files)."
)
@_identity
@_common
def recipients_remove_cmd(
    recipients: tuple[str, ...],
    directory: str,
    force: bool,
    identity: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Remove recipients; then rotate each file of that entry (a new data key).

    The new data key is wrapped for the recipients left. The last recipient is never
    removed; your own (the identity's) only with --force. Old revisions stay readable
    by the removed recipient: change the secrets themselves too."""

    def work(ctx: Any) -> int:
        from cfglang.secrets.keys import recipients_of, write_settings  # start-up

        root, rel, top, dirs = _scope(directory)
        where = "the project" if rel == "." else rel
        cur = top if rel == "." else dirs.get(rel, top)
        unknown = [r for r in recipients if r not in cur]
        if unknown:
            raise SecretError(
                f"`{unknown[0]}` is not a recipient of {where}",
                notes=tuple(f"recipient: {r}" for r in cur) or ("it has no recipients",),
                code="E1103",
                help="see `cflc secrets recipients list`",
            )
        new = [r for r in cur if r not in recipients]
        if not new:
            raise SecretError(
                f"cannot remove the last recipient of {where}: nobody could decrypt its files",
                code="E1103",
                help="add the new recipient first (`cflc secrets recipients add age1...`)",
            )
        ids = _ids(identity)
        own = [r for r in recipients_of(ids) if r in recipients]
        if own and not force:
            raise SecretError(
                f"`{own[0]}` is your own recipient (the identity given): after the "
                f"rotation you could no longer decrypt the files of {where}",
                code="E1103",
                help="pass --force to remove it anyway",
            )
        if rel == ".":
            top = new
        else:
            dirs[rel] = new
        write_settings(root, top, dirs)
        ctx.info(
            f"cfl.toml: {len(cur) - len(new)} recipient(s) removed for {where} ({len(new)} left)"
        )
        return _sync(ctx, root, ids, rel)

    _run(error_format, color, quiet, work)


@recipients_cmd.command(name="sync")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@_identity
@_common
def recipients_sync_cmd(
    directory: str, identity: tuple[str, ...], error_format: str, color: str, quiet: bool
) -> None:
    """Bring every encrypted file of the project in line with cfl.toml.

    A file's data key is re-wrapped when recipients were only added, and rotated (a new
    data key) when one was removed. Needs the identity of a current recipient."""

    def work(ctx: Any) -> int:
        root, _, _, _ = _scope(directory)
        ids = _ids(identity)
        if not ids:
            raise SecretError(
                "no age identity was given",
                code="E1103",
                help="pass --identity FILE, or set CFL_AGE_IDENTITY_FILE (or "
                "CFL_AGE_IDENTITY), to a key of a current recipient",
            )
        return _sync(ctx, root, ids, None)

    _run(error_format, color, quiet, work)
