"""`cflc schema export NAME`: the JSON Schema (2020-12) of a CFL schema or type alias."""

from __future__ import annotations

import json
import os
import sys

import click

from cfglang.commands._options import allow_path_option, diagnostic_options
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx, expand_targets


@click.group(name="schema")
def command() -> None:
    """Export CFL schemas and types to other schema languages."""


@command.command(name="export")
@click.argument("name")
@click.option(
    "--file",
    "file",
    type=click.Path(),
    default=None,
    metavar="FILE",
    help="The module that declares or imports NAME (default: the project's "
    "targets and everything they import).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="FILE",
    help="Write the schema to FILE instead of stdout.",
)
@allow_path_option
@diagnostic_options
def export_cmd(
    name: str,
    file: str | None,
    output: str | None,
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
) -> None:
    """Print the JSON Schema of schema or type NAME (`Service`, `net.Port`,
    `service.Service`).

    \b
    Closed schemas forbid other properties, doc comments become descriptions, nested
    schemas and named types go to $defs. Refinements become minimum/maximum/pattern/
    minLength/maxLength where they can; others, and checks, are quoted in descriptions.
    """
    sys.exit(_export(name, file, output, allow_path, error_format, color))


def _export(
    name: str,
    file: str | None,
    output: str | None,
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
) -> int:
    # start-up: `cflc schema --help` imports this module, not the compiler
    from cfglang.tools.jsonschema import export, load_workspace

    ctx = Ctx(error_format, color, False, 0)
    if file is not None and os.path.isdir(file):
        ctx.usage_error("E0702", f"`{file}` is a directory, not a module")
        return EXIT_USAGE
    expanded = expand_targets(ctx, [file] if file is not None else [])
    if expanded is None:
        return EXIT_USAGE
    files, settings = expanded
    ws = load_workspace(files, [*allow_path, *settings.get("allow_paths", [])])
    ctx.report(ws.diagnostics)
    if not ws.ok:
        return EXIT_ERRORS
    doc = export(ws, name)
    if doc is None:
        where = f"`{file}`" if file else "the project's targets"
        ctx.usage_error("E0203", f"no schema or type `{name}` in {where}")
        return EXIT_ERRORS
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        ctx.usage_error("E0602", f"cannot write `{output}`: {e.strerror}")
        return EXIT_ERRORS
    return EXIT_OK
