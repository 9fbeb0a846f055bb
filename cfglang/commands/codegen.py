"""`cflc codegen python FILE`: typed Python classes for the schemas of a module."""

from __future__ import annotations

import os
import sys

import click

from cfglang.commands._options import allow_path_option, diagnostic_options
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx


@click.group(name="codegen")
def command() -> None:
    """Generate code in other languages from CFL schemas."""


@command.command(name="python")
@click.argument("file", type=click.Path())
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="OUT.py",
    help="Write the module to OUT.py instead of stdout.",
)
@allow_path_option
@diagnostic_options
def python_cmd(
    file: str, output: str | None, allow_path: tuple[str, ...], error_format: str, color: str
) -> None:
    """Write frozen dataclasses for the schemas of FILE (and the schemas they use).

    \b
    Each class has `from_dict(data)`; load a configuration straight into one with
    cfglang.load("env/prod.cfl", as_=Service). Durations become datetime.timedelta,
    sizes int bytes, secrets cfglang.values.Secret, lists tuples.
    """
    sys.exit(_python(file, output, allow_path, error_format, color))


def _python(
    file: str, output: str | None, allow_path: tuple[str, ...], error_format: str, color: str
) -> int:
    # start-up: `cflc codegen --help` imports this module, not the compiler
    from cfglang.tools.codegen import generate, root_schemas
    from cfglang.tools.jsonschema import load_workspace

    ctx = Ctx(error_format, color, False, 0)
    if os.path.isdir(file):
        ctx.usage_error("E0702", f"`{file}` is a directory, not a module")
        return EXIT_USAGE
    if not os.path.isfile(file):
        ctx.usage_error("E0702", f"`{file}` does not exist")
        return EXIT_USAGE
    ws = load_workspace([file], allow_path)
    ctx.report(ws.diagnostics)
    if not ws.ok or not ws.entries:
        return EXIT_ERRORS
    entry = ws.entries[0]
    if not root_schemas(ws, entry):
        ctx.usage_error("E0203", f"`{file}` declares no schema (nor do its imports)")
        return EXIT_ERRORS
    text = generate(ws, entry)
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
