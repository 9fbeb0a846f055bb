"""`cflc watch [DIR]`: rebuild the targets a saved file affects (see cfglang/tools/watch.py)."""

from __future__ import annotations

import os
import sys

import click

from cfglang.commands._options import (
    diagnostic_options,
    identity_option,
    quiet_option,
    verbose_option,
)
from cfglang.console import EXIT_USAGE, Ctx, check_var_files, parse_vars


@click.command(name="watch", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", required=False, default=".", type=click.Path())
@click.option(
    "--var",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input (repeatable; later wins).",
)
@click.option(
    "--vars",
    "var_files",
    multiple=True,
    metavar="FILE",
    help="Set inputs from a JSON, YAML or CFL file (repeatable; watched too).",
)
@click.option(
    "--allow-path",
    multiple=True,
    metavar="DIR",
    help="Allow imports from DIR outside the project root (watched too).",
)
@click.option("--env-prefix", default="", metavar="PREFIX", help="Prefix for env output names.")
@click.option(
    "--poll",
    is_flag=True,
    help="Poll file modification times instead of using OS file events "
    "(network file systems, some containers).",
)
@identity_option
@click.option("--strict", is_flag=True, help="Treat a secret written in plain text as an error.")
@click.option(
    "--allow-plaintext-secrets", is_flag=True, help="Do not report secrets written in plain text."
)
@diagnostic_options
@quiet_option()
@verbose_option()
def command(
    directory: str,
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    env_prefix: str,
    poll: bool,
    identity: tuple[str, ...],
    strict: bool,
    allow_plaintext_secrets: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Build the project in DIR, then rebuild on every save.

    Only the targets whose import/extends closure contains a changed file are rebuilt.
    Each rebuilt target prints one summary line and its semantic diff; outputs are
    replaced atomically. A broken edit prints the diagnostics and keeps the last good
    outputs; the next good save recovers. Ctrl-C stops (exit 0); exit 1 if the project
    cannot be built at all or DIR disappears; 2 on bad usage.
    Secrets are decrypted with --identity (or CFL_AGE_IDENTITY[_FILE]); without one,
    changes to them are still shown, but a target holding one writes no outputs.

    \b
    Example:
      cflc watch               # the project in the current directory
      cflc watch infra/ --poll
    """
    # start-up: `cflc watch --help` imports this module, not the compiler
    from cfglang.tools.watch import Watcher, main_color

    ctx = Ctx(error_format, color, quiet, verbose)
    cli_vars = parse_vars(ctx, var)
    if cli_vars is None or not check_var_files(ctx, var_files):
        sys.exit(EXIT_USAGE)
    if not os.path.isdir(directory):
        ctx.usage_error("E0702", f"`{directory}` is not a directory")
        sys.exit(EXIT_USAGE)

    def echo(line: str) -> None:
        if not quiet or line.startswith("✗"):
            click.echo(line)
            sys.stdout.flush()

    watcher = Watcher(
        directory,
        ctx,
        cli_vars=cli_vars,
        var_files=var_files,
        allow_paths=allow_path,
        env_prefix=env_prefix,
        echo=echo,
        color=main_color(color),
        identity=identity,
        plaintext="allow" if allow_plaintext_secrets else "error" if strict else "warn",
    )
    try:
        status = watcher.run(poll=poll)
    except KeyboardInterrupt:
        echo("stopped")
        status = 0
    sys.exit(status)
