"""`cflc init`: the files of a small working project.

The project is the shape the tools expect (a `cfl.toml` naming `env/*.cfl` as targets, a
schema module, a base every environment extends) and is small enough to read in a
minute. It is kept as strings here rather than as package data so that a wheel needs
no extra build configuration; a test builds and checks it, so it cannot rot.
"""

from __future__ import annotations

import os

CFL_TOML = """\
# The cflc project file: `cflc build` and `cflc check` with no arguments use it.
[project]
# Entry files (globs allowed), relative to this directory.
targets = ["env/*.cfl"]
# Where `cflc build` writes the targets' outputs.
output_dir = "out"
"""

SERVICE_CFL = """\
# Schemas shared by every environment.
import "std/net" as net

## The environments this project is deployed to.
type Env = "dev" | "prod"

## One deployable service.
schema Service {
  ## Service name, also its DNS label.
  name: string where matches(self, "^[a-z][a-z0-9-]*$")
  ## Environment it runs in.
  env: Env
  ## Port the service listens on.
  port: net.Port = 8080
  ## Number of instances.
  replicas: int = 1 where self >= 1
  ## How long a request may take.
  timeout: duration = 30s
  ## Base URL other services use.
  url: net.URL
  ## Password of the service's database, read from the environment in prod.
  db_password: secret?

  check replicas <= 2 || env == "prod" : "more than 2 replicas is for prod only"
}
"""

BASE_CFL = """\
# What every environment shares; env/*.cfl extend this file.
import "schemas/service.cfl"

## The environment this file describes; each env/*.cfl sets its own.
hidden stage: service.Env = "dev"
## Internal DNS zone of the environment.
hidden zone = "$<stage>.internal"

## The application service.
app: service.Service {
  name = "app"
  env = stage
  url = "http://$<name>.$<zone>:$<port>"
}
"""

DEV_CFL = """\
# Development: one replica, defaults everywhere else.
extends "../base.cfl"

stage = "dev"
"""

PROD_CFL = """\
# Production: more replicas and a longer timeout. The database password has no default
# (a plain-text default would be built into prod): it comes from the environment
# (`DB_PASSWORD=... cflc build`) or `--var`, and is printed only into build outputs. To
# keep it in the source instead, encrypted, see `cflc secrets --help`.
extends "../base.cfl"

input database_password: secret from env "DB_PASSWORD"

stage = "prod"

app {
  replicas = 3
  timeout = 1m
  db_password = database_password
}
"""

README_MD = """\
# {name}

A configuration project in CFL, compiled by `cflc` (cfglang).

| file | what it holds |
|---|---|
| `cfl.toml` | the project: targets (`env/*.cfl`) and the output directory |
| `schemas/service.cfl` | the `Service` schema every environment follows |
| `base.cfl` | what every environment shares |
| `env/dev.cfl`, `env/prod.cfl` | one file per environment, each extending `base.cfl` |

## Use

```sh
export DB_PASSWORD=...          # production's database password (no default: see below)
cflc check                      # type-check every target
cflc build                      # write out/dev.json and out/prod.json
cflc build env/dev.cfl          # one target, JSON on stdout
cflc build env/prod.cfl -f yaml
cflc explain env/prod.cfl app.replicas
cflc doc . -o docs/reference    # reference documentation
```

Production reads its database password from `DB_PASSWORD` (or `--var
database_password=...`); without it, `env/prod.cfl` does not build (E0401), so no
placeholder password can reach production. Secrets appear in clear only in build outputs.
To keep the password in the repository, encrypted, use `cflc secrets` (docs/secrets.md).
"""


def files(name: str) -> dict[str, str]:
    """Relative path -> text of every file `cflc init` writes."""
    return {
        "cfl.toml": CFL_TOML,
        "schemas/service.cfl": SERVICE_CFL,
        "base.cfl": BASE_CFL,
        "env/dev.cfl": DEV_CFL,
        "env/prod.cfl": PROD_CFL,
        "README.md": README_MD.replace("{name}", name),
    }


def existing(directory: str) -> list[str]:
    """The files `init` would write that already exist in ``directory``."""
    return [p for p in files("x") if os.path.lexists(os.path.join(directory, p))]


def write_project(directory: str, *, force: bool = False) -> list[str]:
    """Write the project into ``directory``; returns the relative paths written.

    Raises FileExistsError listing the files in the way unless ``force``.
    """
    if not force:
        clash = existing(directory)
        if clash:
            raise FileExistsError(", ".join(clash))
    name = os.path.basename(os.path.abspath(directory)) or "config"
    written = []
    for rel, text in files(name).items():
        path = os.path.join(directory, *rel.split("/"))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(rel)
    return written
