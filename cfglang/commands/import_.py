"""`cflc import FILE`: convert JSON, YAML, TOML, INI or .env into readable CFL.

The conversion itself is in cfglang/tools/importer.py; this module reads the file, picks the
format, and writes the result (stdout, or `-o FILE` atomically), plus the inferred schema
with `--infer-schema` (appended, or in `--schema-out FILE` imported by the data module).
"""

from __future__ import annotations

import os
import re
import sys

import click

from cfglang.commands._options import diagnostic_options, quiet_option, verbose_option
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx, atomic_write
from cfglang.syntax.literals import quote


@click.command(name="import", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(allow_dash=True))
@click.option(
    "--from",
    "from_",
    type=click.Choice(["json", "yaml", "toml", "ini", "env"]),
    default=None,
    help="Input format (default: from FILE's extension).",
)
@click.option("-o", "--output", metavar="FILE", help="Write the .cfl here instead of stdout.")
@click.option(
    "--infer-schema",
    is_flag=True,
    help="Also write schemas inferred from the data and type the fields with them.",
)
@click.option(
    "--schema-out",
    metavar="FILE",
    help="Write the inferred schemas to FILE (implies --infer-schema); the "
    "output imports it. Without it the schemas are appended to the output.",
)
@click.option(
    "--document",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Import only document N (from 0) of a multi-document YAML stream. Without it "
    "a stream of several documents becomes one list, `documents = [...]`.",
)
@diagnostic_options
@quiet_option()
@verbose_option("Say which files were written.")
def command(
    file: str,
    from_: str | None,
    output: str | None,
    infer_schema: bool,
    schema_out: str | None,
    document: int | None,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Convert FILE (JSON, YAML, TOML, INI or .env) into a .cfl module.

    The format comes from the extension (.json .yaml .yml .toml .ini .cfg .env,
    .editorconfig) or --from; FILE `-` reads standard input (then --from is required).
    INI sections become objects (dotted names nest); .env values are strings.
    A YAML stream of several documents (a Kubernetes manifest) becomes one list,
    `documents = [...]`, one item per document that holds data; --document N takes
    document N alone (counted from 0, as the items of that list).

    \b
    Examples:
      cflc import config.json > config.cfl
      cflc import app.ini -o app.cfl
      cflc import values.yaml --infer-schema --schema-out schemas.cfl -o values.cfl
      cflc import manifest.yaml --document 1 -o service.cfl
    """
    sys.exit(
        _run(
            file,
            from_,
            output,
            infer_schema or schema_out is not None,
            schema_out,
            error_format,
            color,
            quiet,
            verbose,
            document,
        )
    )


def _run(
    file: str,
    fmt: str | None,
    output: str | None,
    infer: bool,
    schema_out: str | None,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
    document: int | None = None,
) -> int:
    # start-up: `cflc import --help` imports this module, not the readers and converters
    from cfglang.tools.importer import (
        DataError,
        diagnostic,
        format_for_path,
        infer_schema,
        load_data,
        load_yaml_documents,
        read_text,
        to_cfl,
    )

    ctx = Ctx(error_format, color, quiet, verbose)
    fmt = fmt or (format_for_path(file) if file != "-" else None)
    if fmt is None:
        ctx.usage_error(
            "E0701", f"cannot tell the format of `{file}`; pass --from json|yaml|toml|ini|env"
        )
        return EXIT_USAGE
    if document is not None and fmt != "yaml":
        ctx.usage_error("E0701", f"--document applies to YAML input only, not {fmt}")
        return EXIT_USAGE
    text: str | DataError
    if file == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            text = DataError(f"standard input is not UTF-8 text (byte {e.start})")
    else:
        if os.path.isdir(file):
            ctx.usage_error("E0702", f"`{file}` is a directory, not a file")
            return EXIT_USAGE
        if not os.path.exists(file):
            ctx.usage_error("E0702", f"`{file}` does not exist")
            return EXIT_USAGE
        if not os.access(file, os.R_OK):
            ctx.usage_error("E0702", f"`{file}` cannot be read (permission denied)")
            return EXIT_USAGE
        text = read_text(file)
    name = "<stdin>" if file == "-" else file
    if isinstance(text, DataError):
        ctx.report([diagnostic(text, name, None)])
        return EXIT_ERRORS
    header = f"imported from {os.path.basename(name)} by cflc import"
    try:
        if fmt == "yaml":
            docs = load_yaml_documents(text)
            if document is not None:
                if document >= len(docs):
                    held = (
                        f"holds {len(docs)} document{'s' if len(docs) != 1 else ''}"
                        + (f" (0 to {len(docs) - 1})" if len(docs) > 1 else "")
                        if docs
                        else "holds no document"
                    )
                    ctx.usage_error(
                        "E0701", f"--document {document} is out of range: `{name}` {held}"
                    )
                    return EXIT_USAGE
                data = docs[document]
                header = (
                    f"imported from {os.path.basename(name)} (document {document} of "
                    f"{len(docs)}) by cflc import"
                )
            elif len(docs) > 1:
                # A module is an object, so the stream is one field: a list, in stream order.
                data = {"documents": docs}
                header = (
                    f"imported from {os.path.basename(name)} ({len(docs)} documents) by cflc import"
                )
            else:
                data = docs[0] if docs else None
        else:
            data = load_data(text, fmt)
        if data is None and fmt in ("yaml", "toml"):
            data = {}  # an empty YAML file is an empty document
        schemas = None
        imports: list[str] = []
        if infer:
            if not isinstance(data, dict):
                to_cfl(data)  # raises the top-level error
            if schema_out is not None:
                alias, rel = _schema_import(schema_out, output)
                schemas = infer_schema(data, qualifier=f"{alias}.")
                imports = [f"import {quote(rel)} as {alias}"]
            else:
                schemas = infer_schema(data)
        cfl = to_cfl(data, header=header, schemas=schemas, imports=imports)
    except DataError as e:
        ctx.report([diagnostic(e, name, text)])
        return EXIT_ERRORS
    except RecursionError:
        ctx.report([diagnostic(DataError("the data is nested too deeply to convert"), name, None)])
        return EXIT_ERRORS
    writes: list[tuple[str | None, str]] = []
    if schema_out is not None and schemas is not None:
        writes.append(
            (
                schema_out,
                f"# inferred from {os.path.basename(name)} by cflc import\n\n" + schemas.text,
            )
        )
    writes.append((output, cfl))
    for target, content in writes:
        if target is None or target == "-":
            sys.stdout.write(content)
            sys.stdout.flush()
            continue
        try:
            atomic_write(target, content)
        except OSError as e:
            ctx.usage_error("E0602", f"cannot write `{target}`: {e.strerror or e}")
            return EXIT_ERRORS
        if verbose:
            ctx.info(f"wrote {target}")
    return EXIT_OK


def _schema_import(schema_out: str, output: str | None) -> tuple[str, str]:
    """The alias and the path (relative to the output's directory) of the schema import."""
    from cfglang.tools.importer import RESERVED_KEYS  # start-up, as in `_run`

    base = os.path.dirname(os.path.abspath(output)) if output and output != "-" else os.getcwd()
    rel = os.path.relpath(os.path.abspath(schema_out), base).replace(os.sep, "/")
    stem = os.path.splitext(os.path.basename(schema_out))[0].replace("-", "_")
    keywords = RESERVED_KEYS | {
        "type",
        "check",
        "output",
        "input",
        "schema",
        "template",
        "import",
        "extends",
        "as",
        "from",
        "env",
    }
    alias = (
        stem
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", stem) and stem not in keywords
        else "schemas"
    )
    return alias, rel
