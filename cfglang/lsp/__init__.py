"""`cflc lsp`: a language server for CFL, a thin client of `cfglang.api`.

The package is split by feature. `positions` maps character offsets (what spans hold) to
LSP line/UTF-16 positions and back; `model` answers questions about the syntax trees of a
project (what is under the cursor, where a name is declared, which schema types a block);
`analysis` runs one compilation per open file through the compiler's front door and keeps
what the features need. The feature modules (`diagnostics`, `hover`, `navigation`,
`completion`, `symbols`, `formatting`, `tokens`) turn those answers into LSP types, and
`server` wires them to pygls. Only `server` and the feature modules import lsprotocol, and
nothing outside this package imports them, so `cflc build` never pays for it.
"""
