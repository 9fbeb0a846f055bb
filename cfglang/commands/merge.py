"""`cflc merge BASE OURS THEIRS`: the three-way merge of a `.cfl` file, by statements and
key paths (the engine is `cfglang.tools.merge`); usable as a git merge driver."""

from __future__ import annotations

import json
import sys

import click

from cfglang.commands._options import diagnostic_options

EXIT_OK, EXIT_CONFLICT, EXIT_USAGE = 0, 1, 2


@click.command(name="merge", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    "output",
    metavar="OUT",
    help="Write the merged file here (as a git merge driver: `-o %A`); default stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="json: print {clean, conflicts[, text]} on stdout instead of the merged text.",
)
@click.option(
    "--name",
    metavar="PATH",
    help="The file's name in conflicts (as a git merge driver: `--name %P`); default OURS.",
)
@diagnostic_options
def command(
    base: str,
    ours: str,
    theirs: str,
    output: str | None,
    fmt: str,
    name: str | None,
    error_format: str,
    color: str,
) -> None:
    """Merge the changes from BASE to OURS and from BASE to THEIRS of one .cfl file.

    Edits of different statements or key paths merge cleanly (`db.pool = 6` and
    `db { pool = 7 }` are one key); comments and the layout of untouched parts are kept
    byte for byte. Conflicting statements are written between `<<<<<<< ours`, `=======`
    and `>>>>>>> theirs` markers and their key paths are listed on stderr. As a git merge
    driver (docs/merge.md): `cflc merge %O %A %B -o %A`.

    \b
    Exit codes: 0 merged cleanly, 1 conflicts (the file has markers), 2 bad input (a file
    that cannot be read or does not parse; nothing is written).
    """
    # start-up: `cflc merge --help` imports this module, not the parser
    from cfglang.console import Ctx, atomic_write
    from cfglang.diagnostics import Diagnostic
    from cfglang.tools.merge import merge

    ctx = Ctx("json" if fmt == "json" else error_format, color, False, 0)
    texts: list[str] = []
    for path in (base, ours, theirs):
        try:
            with open(path, encoding="utf-8", newline="") as f:
                texts.append(f.read())
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
            ctx.report([Diagnostic("E0702", f"`{path}` cannot be read: {reason}")])
    if len(texts) < 3:
        sys.exit(EXIT_USAGE)
    result = merge(*texts, path=name or ours, names=(base, ours, theirs))
    if result.text is None:
        ctx.report(result.diagnostics)
        sys.exit(EXIT_USAGE)
    if output is not None:
        atomic_write(output, result.text)
    if fmt == "json":
        doc: dict[str, object] = {
            "clean": result.clean,
            "conflicts": [c.to_json() for c in result.conflicts],
        }
        if output is None:
            doc["text"] = result.text
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    elif output is None:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    if result.conflicts:
        shown = name or ours
        for c in result.conflicts:
            click.echo(f"conflict: {shown}: {c.path}", err=True)
        n = len(result.conflicts)
        click.echo(
            f"{n} conflict{'s' if n != 1 else ''} in {shown}; resolve the marked statements",
            err=True,
        )
        sys.exit(EXIT_CONFLICT)
    sys.exit(EXIT_OK)
