"""The public `cfglang.live` (docs/live.md): called as a function, and the home of `Update`.

The implementation is `cfglang.tools.live`; this module keeps the documented import path
(`from cfglang.live import Update`) and the call `cfglang.live(path)` working.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from cfglang.tools.live import LiveConfig, Snapshot, Subscription, Update, live

__all__ = ["LiveConfig", "Snapshot", "Subscription", "Update", "live"]


class _CallableModule(types.ModuleType):
    """`cfglang.live` names both this module and the function `live`. Importing a submodule
    makes the package attribute the module, so the module itself forwards calls."""

    def __call__(self, *args: Any, **kwargs: Any) -> LiveConfig:
        return live(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
