"""Tools built on the compiler: each is a client of `cfglang.driver` (and of the phases below
it), and none of the compiler imports them.

deps (what a target reads), diff (the semantic diff), history and impact (git-aware diffs),
fmt (the formatter), importer (JSON/YAML/TOML -> CFL), docgen, codegen and jsonschema (from
schemas), init (project scaffolds), watch (rebuild on save), live (configuration that follows
its files; public as `cfglang.live`), explain (where a value came from).
"""
