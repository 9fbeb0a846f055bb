"""`cflc deps TARGET`: the files and inputs a target depends on (see cfglang/tools/deps.py).

Text (an indented import/extends tree, the files and the inputs), ``--json`` or ``--dot``
(graphviz). Resolver errors are reported on stderr and make the exit status 1, but the
part of the graph that could be loaded is still printed.
"""

from __future__ import annotations

import json
import os
import sys

import click

from cfglang.commands._options import (
    allow_path_option,
    diagnostic_options,
    quiet_option,
    verbose_option,
)
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx


@click.command(name="deps", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON.")
@click.option("--dot", "as_dot", is_flag=True, help="Print the graph for graphviz (dot -Tsvg).")
@click.option(
    "--vars",
    "var_files",
    multiple=True,
    metavar="FILE",
    help="A --vars file the target is built with (listed as a dependency).",
)
@allow_path_option
@diagnostic_options
@quiet_option()
@verbose_option()
def command(
    target: str,
    as_json: bool,
    as_dot: bool,
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Show the files and inputs TARGET depends on: its import/extends closure.

    \b
    Examples:
      cflc deps env/prod.cfl
      cflc deps env/prod.cfl --json
      cflc deps env/prod.cfl --dot | dot -Tsvg > deps.svg
    """
    # start-up: `cflc deps --help` imports this module, not the compiler
    from cfglang.api import deps
    from cfglang.project import load_lenient

    ctx = Ctx(error_format, color, quiet, verbose)
    if as_json and as_dot:
        ctx.usage_error("E0701", "--json and --dot cannot be combined")
        sys.exit(EXIT_USAGE)
    if os.path.isdir(target):
        ctx.usage_error("E0702", f"`{target}` is a directory, not a module")
        sys.exit(EXIT_USAGE)
    if not os.path.isfile(target):
        ctx.usage_error("E0702", f"`{target}` does not exist")
        sys.exit(EXIT_USAGE)
    # A malformed cfl.toml is ignored: the graph does not need it.
    allow = list(allow_path) + list(load_lenient(target).allow_paths)
    graph = deps(target, allow_paths=allow, var_files=var_files)
    if as_json:
        click.echo(json.dumps(graph.to_json(), indent=2, ensure_ascii=False))
    elif as_dot:
        click.echo(graph.render_dot(), nl=False)
    else:
        click.echo(graph.render_text(), nl=False)
    ctx.report(graph.diagnostics)
    sys.exit(EXIT_OK if graph.ok else EXIT_ERRORS)
