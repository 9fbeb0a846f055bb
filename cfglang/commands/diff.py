"""`cflc diff A B`: the semantic diff of two compiled configurations (see cfglang/tools/diff.py).

A side is a `.cfl` module, compiled with its inputs, or compiled data (`.json`, `.yaml`,
`.yml`, `.toml`), read as is. Both sides are loaded and every error of both is reported
before giving up, so one run shows everything that is wrong.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from cfglang.commands._options import (
    allow_path_option,
    diagnostic_options,
    identity_option,
    quiet_option,
    verbose_option,
)
from cfglang.console import (
    EXIT_ERRORS,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    Ctx,
    check_var_files,
    parse_vars,
)

DATA_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


@click.command(name="diff", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("a", metavar="A", type=click.Path())
@click.argument("b", metavar="B", type=click.Path())
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list of {op, path, old, new} (op: add, remove, change).",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when A and B differ and 0 when they are equal (as git diff).",
)
@click.option(
    "--var",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input of both A and B (repeatable; later wins).",
)
@click.option(
    "--var-a",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input of A only; applied after --var.",
)
@click.option(
    "--var-b",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input of B only; applied after --var.",
)
@click.option(
    "--vars",
    "var_files",
    multiple=True,
    metavar="FILE",
    help="Set inputs of both from a JSON, YAML or CFL file (repeatable).",
)
@allow_path_option
@identity_option
@diagnostic_options
@quiet_option()
@verbose_option("Say when there is no difference.")
def command(
    a: str,
    b: str,
    as_json: bool,
    exit_code: bool,
    var: tuple[str, ...],
    var_a: tuple[str, ...],
    var_b: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    identity: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Show how the configuration of B differs from that of A, path by path.

    \b
    + path: value          only in B
    - path: value          only in A
    ~ path: old -> new     changed

    A and B are .cfl modules (compiled with their inputs) or compiled data
    (.json, .yaml, .yml, .toml), e.g. a build output against a new build.
    A module may be FILE@REV: read, with everything it imports or extends,
    from the git revision REV (a tag, a branch, a hash, HEAD~3).
    Lists are compared index by index; key order is not a difference; secrets
    print as <secret>. Changes follow A's order, additions B's.
    Secrets are decrypted only with an identity (--identity, CFL_AGE_IDENTITY[_FILE]);
    without one they compare by their ciphertext: an edited or rotated secret is
    `~ path: <secret> -> <secret>`.

    \b
    Examples:
      cflc diff env/staging.cfl env/prod.cfl
      cflc diff env/prod.cfl@v1.4 env/prod.cfl
      cflc diff out/prod.json env/prod.cfl --exit-code
      cflc diff env/prod.cfl env/prod.cfl --var-a region=us-east-1 --var-b region=eu-west-1
    """
    sys.exit(
        _run(
            a,
            b,
            as_json,
            exit_code,
            var,
            var_a,
            var_b,
            var_files,
            allow_path,
            error_format,
            color,
            quiet,
            verbose,
            identity,
        )
    )


def _run(
    a: str,
    b: str,
    as_json: bool,
    exit_code: bool,
    var: tuple[str, ...],
    var_a: tuple[str, ...],
    var_b: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
    identity: tuple[str, ...] = (),
) -> int:
    # start-up: `cflc diff --help` imports this module, not the compiler
    from cfglang.diagnostics import Diagnostic
    from cfglang.secrets.keys import identity_given
    from cfglang.tools.diff import diff, render_human, to_json

    ctx = Ctx(error_format, color, quiet, verbose)
    common = parse_vars(ctx, var)
    only_a = parse_vars(ctx, var_a)
    only_b = parse_vars(ctx, var_b)
    if common is None or only_a is None or only_b is None:
        return EXIT_USAGE
    if not check_var_files(ctx, var_files):
        return EXIT_USAGE
    for path, own, flag in ((a, only_a, "--var-a"), (b, only_b, "--var-b")):
        if own and _data_format(path) is not None:
            ctx.usage_error(
                "E0701", f"{flag} sets inputs of a .cfl module, but `{path}` is compiled data"
            )
            return EXIT_USAGE
    for path in (a, b):
        status = _check_readable(ctx, path)
        if status != EXIT_OK:
            return status
    # Both sides are loaded before any exit, so errors in A and B show up together.
    decrypt = identity_given(identity)
    sa, data_a = _load(ctx, a, [*common, *only_a], var_files, allow_path, identity, decrypt)
    sb, data_b = _load(ctx, b, [*common, *only_b], var_files, allow_path, identity, decrypt)
    if sa != EXIT_OK or sb != EXIT_OK:
        return max(sa, sb)
    try:
        changes = diff(data_a, data_b)
    except RecursionError:
        ctx.report([Diagnostic("E0702", "the data is nested too deeply to compare")])
        return EXIT_ERRORS
    if as_json:
        click.echo(json.dumps(to_json(changes), ensure_ascii=False, indent=2))
    else:
        if color == "auto":
            use_color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        else:
            use_color = color == "always"
        sys.stdout.write(render_human(changes, color=use_color))
        sys.stdout.flush()
        if not changes and verbose:
            ctx.info("no differences")
    one_is_data = (_data_format(a) is None) != (_data_format(b) is None)
    if not decrypt and one_is_data and any(c.secret for c in changes):
        ctx.info(
            "note: secrets were not decrypted (no identity), so they cannot be compared "
            "with plain data and show as changed; pass --identity FILE to compare them"
        )
    return EXIT_ERRORS if exit_code and changes else EXIT_OK


def _data_format(path: str) -> str | None:
    return DATA_EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _check_readable(ctx: Any, path: str) -> int:
    if "@" in path and not os.path.exists(path):  # FILE@REV: a module in git at REV
        from cfglang.vcs import check_spec, split_spec  # only for FILE@REV: git support

        file, rev = split_spec(path)
        if rev is not None:
            if _data_format(file) is not None:
                ctx.usage_error("E0701", f"`{path}`: only .cfl modules can be read at a revision")
                return EXIT_USAGE
            bad = check_spec(path)
            if bad is not None:
                ctx.report([bad])
                return EXIT_USAGE
            return EXIT_OK
    if os.path.isdir(path):
        ctx.usage_error("E0702", f"`{path}` is a directory, not a module or data file")
        return EXIT_USAGE
    if not os.path.exists(path):
        ctx.usage_error("E0702", f"`{path}` does not exist")
        return EXIT_USAGE
    if not os.access(path, os.R_OK):
        ctx.usage_error("E0702", f"`{path}` cannot be read (permission denied)")
        return EXIT_USAGE
    return EXIT_OK


def _load(
    ctx: Any,
    path: str,
    cli_vars: list[tuple[str, str]],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    identity: tuple[str, ...],
    decrypt: bool,
) -> tuple[int, Any]:
    """(exit status, data) of one side; diagnostics are reported here."""
    fmt = _data_format(path)
    if fmt is not None:
        # only for a data file: the readers of JSON, YAML and TOML
        from cfglang.tools.importer import DataError, diagnostic, load_data, read_text

        text = read_text(path)
        if isinstance(text, DataError):
            ctx.report([diagnostic(text, path, None)])
            return EXIT_ERRORS, None
        try:
            return EXIT_OK, load_data(text, fmt)
        except DataError as e:
            ctx.report([diagnostic(e, path, text)])
            return EXIT_ERRORS, None
    # only for a .cfl side: data files need no compiler
    import attrs

    from cfglang.api import compile
    from cfglang.diagnostics import Note

    res = compile(
        path,
        cli_vars=cli_vars,
        var_files=var_files,
        allow_paths=allow_path,
        emit_outputs=False,
        use_cache=ctx.caching(),
        identity=identity,
        decrypt_secrets=decrypt,
        # Secrets written in plain text are `check`'s and `build`'s to report (W1104):
        # a diff is read, not a gate, and has no flag to silence them.
        plaintext_secrets="allow",
    )
    # A message without a position (an unknown --var, say) would not tell which side it
    # came from; both sides are compiled, so say it.
    ctx.report(
        [
            d
            if d.span is not None
            else attrs.evolve(d, notes=(*d.notes, Note(f"while compiling `{path}`")))
            for d in res.diagnostics
        ]
    )
    if any(d.code == "E0900" for d in res.diagnostics):
        return EXIT_INTERNAL, None
    if not res.ok or res.data is None:
        return EXIT_ERRORS, None
    return EXIT_OK, res.data
