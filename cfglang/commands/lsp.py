"""`cflc lsp`: the language server on stdin/stdout (needs the `lsp` extra)."""

from __future__ import annotations

import sys

import click


@click.command(name="lsp")
@click.option("--stdio", is_flag=True, help="Talk LSP over stdin/stdout (the default).")
def command(stdio: bool) -> None:
    """Run the CFL language server for editors, speaking LSP on stdin/stdout.

    Diagnostics as `cflc build` reports them, hover with values and provenance, go to
    definition, references, completion, symbols, formatting and rename.
    """
    try:  # optional dependency: pygls and lsprotocol come with the `lsp` extra
        from cfglang.lsp.server import main
    except ImportError as e:
        click.echo(
            f"error[E0701]: the language server needs pygls and lsprotocol "
            f"({e.name} is missing)\nhelp: pip install 'cfglang[lsp]'",
            err=True,
        )
        sys.exit(2)
    main()
