"""Sub-commands of `cflc` beyond build/check/eval, one module each.

Every module here defines ``command`` (a `click.Command`) and imports nothing but click
(and the standard library) at module level, so `cflc --help` stays fast: the work is done
by functions in `cfglang.api` and the feature modules, imported inside the command.
Modules are discovered, so adding a command never edits a shared file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import click
from click.utils import make_default_short_help


@lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    """Command name -> module name (`import_` holds `import`, a Python keyword)."""
    import pkgutil  # start-up: `cflc build` finds its command without listing the folder

    return {
        info.name.rstrip("_"): info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    }


def load(name: str) -> click.Command | None:
    module_name = _modules().get(name)
    if module_name is None:
        return None
    import importlib  # start-up: as above, only a sub-command outside cli.py needs it

    module = importlib.import_module(f"{__name__}.{module_name}")
    command = getattr(module, "command", None)
    return command if isinstance(command, click.Command) else None


# Compiled on first use (re caches it): only --help needs it, not every command.
_DOCSTRING = r'^def command\(.*?\)\s*(?:->\s*[^:\n]+)?:\s*\n\s*("""(?:.|\n)*?""")'


def docstring(name: str) -> str | None:
    """The docstring of command `name` (what click shows as its help), read from its
    module's source without importing it, or None when it cannot be found there."""
    module_name = _modules().get(name)
    if module_name is None:
        return None
    try:
        src = (Path(__file__).parent / f"{module_name}.py").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(_DOCSTRING, src, re.S | re.M)
    if m is None:
        return None
    literal = m.group(1)
    if "\\" not in literal:
        return literal[3:-3]  # no escapes: the source text is the string
    import ast  # (2.5 ms to import: only for a docstring with escapes)

    try:
        text = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return None  # not a plain literal after all: the caller imports the command
    return text if isinstance(text, str) else None


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command runs: `cflc
    build` never pays for the definitions of the other commands, and `cflc --help` lists
    them from their docstrings (tests check these equal each command's own help)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str | None]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            doc = None if command is not None else docstring(name)
            if doc is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
            rows.append((name, doc))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        listing = []
        for name, doc in rows:
            if doc is None:
                command = self.commands[name]
                listing.append((name, command.get_short_help_str(limit)))
            else:
                listing.append((name, make_default_short_help(doc, limit).strip()))
        with formatter.section("Commands"):
            formatter.write_dl(listing)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_modules()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = load(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command
