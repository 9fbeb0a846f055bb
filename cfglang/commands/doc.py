"""`cflc doc PATH... -o DIR`: reference documentation in Markdown and HTML."""

from __future__ import annotations

import os
import sys

import click

from cfglang.commands._options import allow_path_option, diagnostic_options, quiet_option
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx, expand_targets


@click.command(name="doc")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-o",
    "--output",
    "output",
    default="docs/reference",
    show_default=True,
    metavar="DIR",
    help="Directory to write DIR/*.md and DIR/*.html into.",
)
@click.option("--title", default=None, help="Title of the index page.")
@allow_path_option
@diagnostic_options
@quiet_option()
def command(
    paths: tuple[str, ...],
    output: str,
    title: str | None,
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> None:
    """Write reference docs in Markdown and HTML for the types and schemas of PATH...
    (files, or a project directory; default: the project in the current directory).

    \b
    One page per module with a field table per schema (type, default, constraints,
    doc comment) and links between schemas; for a project also the value of each
    field in each target (secrets shown as <secret>). HTML pages are self-contained.
    """
    sys.exit(_doc(paths, output, title, allow_path, error_format, color, quiet))


def _doc(
    paths: tuple[str, ...],
    output: str,
    title: str | None,
    allow_path: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
) -> int:
    # start-up: `cflc doc --help` imports this module, not the compiler
    from cfglang.api import compile
    from cfglang.tools.docgen import TargetValues, build_pages, plain, write_docs
    from cfglang.tools.jsonschema import load_workspace

    ctx = Ctx(error_format, color, quiet, 0)
    files: list[str] = []
    targets: list[TargetValues] = []
    allow = list(allow_path)
    for p in paths or (".",):
        expanded = expand_targets(ctx, [p])
        if expanded is None:
            return EXIT_USAGE
        found, settings = expanded
        allow += settings.get("allow_paths", [])
        files += found
        if os.path.isdir(p):
            # A project: show what each target makes of the schemas.
            for f in found:
                # Documentation never shows a secret, so it never decrypts one (no identity
                # needed): values are checked as `cflc check` checks them.
                res = compile(
                    f,
                    allow_paths=allow,
                    emit_outputs=False,
                    decrypt_secrets=False,
                    plaintext_secrets="allow",
                )
                errors = sum(1 for d in res.diagnostics if d.is_error)
                data = plain(res.data) if res.ok and res.data is not None else None
                targets.append(
                    TargetValues(os.path.relpath(f, p).replace(os.sep, "/"), data, errors)
                )
    ws = load_workspace(files, allow)
    ctx.report(ws.diagnostics)
    if not ws.ok:
        return EXIT_ERRORS
    for t in targets:
        if t.data is None:
            ctx.info(
                f"warning: target `{t.name}` has {t.errors} error(s); its values are "
                "left out (run `cflc check` for details)"
            )
    if title is None:
        dirs = [p for p in paths if os.path.isdir(p)]
        name = os.path.basename(os.path.abspath(dirs[0] if dirs else "."))
        title = (
            f"{name} configuration reference" if dirs or not paths else "Configuration reference"
        )
    pages = build_pages(ws, targets, title)
    try:
        written = write_docs(pages, output)
    except OSError as e:
        ctx.usage_error("E0602", f"cannot write to `{output}`: {e.strerror}")
        return EXIT_ERRORS
    ctx.info(f"wrote {len(written)} files to {output}")
    return EXIT_OK
