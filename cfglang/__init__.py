"""cfglang: the CFL configuration language.

The public API (`load`, `loads`, `dumps`, `compile`, `ConfigError`, `Config`) lives in
`cfglang.api` and is imported lazily, so `import cfglang` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cfglang.api import Config, ConfigError, compile, dumps, load, loads
    from cfglang.live import live
    from cfglang.tools.connect import connect

__all__ = [
    "Config",
    "ConfigError",
    "__version__",
    "compile",
    "connect",
    "dumps",
    "live",
    "load",
    "loads",
]


def __getattr__(name: str) -> Any:
    if name in ("Config", "ConfigError", "compile", "dumps", "load", "loads"):
        # lazy: `import cfglang` (every `cflc` run) must not load the compiler
        from cfglang import api

        return getattr(api, name)
    if name == "live":
        # The façade module is itself callable (`cfglang.live(path)`), and keeps
        # `cfglang.live.Update` importable; see cfglang/live.py. Lazy, as `api` above.
        import cfglang.live

        return cfglang.live
    if name == "connect":
        # lazy, as `api` above: the client loads httpx, which `cflc` never needs
        from cfglang.tools.connect import connect

        return connect
    raise AttributeError(name)
