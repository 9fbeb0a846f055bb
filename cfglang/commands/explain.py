"""`cflc explain FILE PATH`: a value and its provenance."""

from __future__ import annotations

import json
import sys

import click

from cfglang.commands._options import (
    allow_path_option,
    diagnostic_options,
    quiet_option,
    verbose_option,
)
from cfglang.console import (
    EXIT_ERRORS,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    Ctx,
    expand_targets,
    parse_vars,
)


@click.command(name="explain")
@click.argument("file", type=click.Path())
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.option("--var", "var", multiple=True, metavar="NAME=VALUE", help="Set an input.")
@click.option(
    "--vars",
    "var_files",
    multiple=True,
    metavar="FILE",
    help="Set inputs from a JSON, YAML or CFL file.",
)
@allow_path_option
@click.option(
    "--no-git", is_flag=True, help="Do not look up the commit that last changed the value."
)
@diagnostic_options
@quiet_option()
@verbose_option("Print more.")
def command(
    file: str,
    path: str,
    as_json: bool,
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_git: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Show the value at PATH in FILE and where it came from.

    Prints the site that set the value, every site it overrides along the inheritance
    chain (base first at the bottom), its declared types, and the inputs its expression
    reads with the source that gave each one its value (default, a new default in an
    extending module, an environment variable, --vars or --var), directly or through
    the lets and fields it reads, hidden fields included. A hidden field is explained
    like any other and marked "hidden: not emitted" (its last-changed commit is not
    looked up: history compares the emitted documents). Secrets print as
    <secret>. In a git repository it adds the commit that last changed the value
    (the newest commit whose compiled value at PATH differs from its parent's).
    FILE may be FILE@REV, read from the git revision REV.

    Example: cflc explain env/prod.cfl services.billing.replicas
    """
    # start-up: `cflc explain --help` imports this module, not the compiler
    from cfglang.api import explain
    from cfglang.tools.explain import Explanation

    ctx = Ctx(error_format, color, quiet, verbose)
    cli_vars = parse_vars(ctx, var)
    if cli_vars is None or expand_targets(ctx, [file]) is None:
        sys.exit(EXIT_USAGE)
    out = explain(file, path, cli_vars=cli_vars, var_files=var_files, allow_paths=allow_path)
    if not isinstance(out, Explanation):
        ctx.report(out.diagnostics)
        if any(d.code == "E0900" for d in out.diagnostics):
            sys.exit(EXIT_INTERNAL)
        sys.exit(EXIT_USAGE if any(d.code == "E0701" for d in out.diagnostics) else EXIT_ERRORS)
    last = None
    if not no_git:
        # only when git is asked: `--no-git` loads neither git support nor subprocess
        from cfglang.tools.history import explain_note

        last = explain_note(
            file, path, cli_vars=cli_vars, var_files=var_files, allow_paths=allow_path
        )
    if as_json:
        data = out.to_json()
        if not no_git:
            data["last_changed"] = last[1] if last is not None else None
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(out.render(), nl=False)
        if last is not None:
            click.echo(last[0])
    sys.exit(EXIT_OK)
