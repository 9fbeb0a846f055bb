"""The configuration server (`cflc serve`, docs/server.md).

``store`` is the storage interface (sources per revision, compiled outputs per target per
revision, audit log, rollouts, clients, usage); ``sqlite`` its embedded SQLite (WAL)
implementation; ``core`` the project state the HTTP layer serves (compiling and checking
every change before it is stored, the revision sequence, the watchers); ``app`` the
Starlette application. The web stack (starlette, uvicorn, sse-starlette,
prometheus-client) is imported only here, never by `cflc --help` or the compiler.
"""
