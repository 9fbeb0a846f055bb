"""Errors of evaluation: `EvalError` and the unwinding of operations on `BOTTOM`.

Every evaluation module raises these (the evaluator, conformance, builtins, operators,
inputs, materialisation), and the driver catches them at its phase boundary; they live
below all of those, in a module that imports nothing else of `cfglang.eval`, so that each
of them can import it at module level without an import cycle.
"""

from __future__ import annotations

from typing import Any

from cfglang.diagnostics import Diagnostic
from cfglang.source import Span


class EvalError(Exception):
    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


class _Propagate(Exception):
    """Unwinds an expression whose operand is BOTTOM (its error is already reported)."""


def err(code: str, message: str, span: Span | None, **kw: Any) -> EvalError:
    return EvalError(Diagnostic(code, message, span, **kw))
