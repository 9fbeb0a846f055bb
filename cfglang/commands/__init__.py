"""Sub-commands of `cflc` beyond build/check/eval, one module each.

Every module here defines ``command`` (a `click.Command`) and imports nothing but click
(and the standard library) at module level, so `cflc --help` stays fast: the work is done
by functions in `cfglang.api` and the feature modules, imported inside the command.
Modules are discovered, so adding a command never edits a shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

import click


@lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    """Command name -> module name (`import_` holds `import`, a Python keyword)."""
    return {info.name.rstrip("_"): info.name for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_")}


def load(name: str) -> click.Command | None:
    module_name = _modules().get(name)
    if module_name is None:
        return None
    module = importlib.import_module(f"{__name__}.{module_name}")
    command = getattr(module, "command", None)
    return command if isinstance(command, click.Command) else None


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command runs (or
    help lists it): `cflc build` never pays for the definitions of the other commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_modules()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = load(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command
