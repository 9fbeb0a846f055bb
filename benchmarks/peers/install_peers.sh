#!/usr/bin/env bash
# Install the peer configuration languages exactly as INSTALL.md describes.
# Not run in CI: it needs network access to Debian, PyPI and npm, and root for apt.
#
#   ./install_peers.sh            all three steps
#   SKIP_APT=1 ./install_peers.sh without the Debian step (no root needed)
#
# Python packages go into ./.pydeps (pip --target, no virtualenv), npm packages
# into ./node_modules; both are git-ignored. A failing step is reported and the
# others still run; the exit code is the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
failed=0

step() { echo "== $*"; }

if [ -z "${SKIP_APT:-}" ]; then
  step "1. Debian: C++ jsonnet CLI"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  if $SUDO apt-get update && $SUDO apt-get install -y jsonnet; then :; else
    echo "!! apt-get install jsonnet failed"; failed=$((failed + 1)); fi
fi

step "2. PyPI: jsonnet bindings (C++ and Go), KCL, OmegaConf, Hydra -> .pydeps"
if "$PY" -m pip install --target .pydeps --upgrade \
    jsonnet==0.22.0 gojsonnet==0.22.0 kcl-lib==0.13.2 \
    omegaconf==2.3.1 hydra-core==1.3.8; then :; else
  echo "!! pip install failed"; failed=$((failed + 1)); fi

step "3. npm: Pkl (native), Dhall (static binary), CUE (WebAssembly) -> node_modules"
if command -v npm >/dev/null && npm install --no-audit --no-fund; then :; else
  echo "!! npm install failed"; failed=$((failed + 1)); fi

step "peers now present"
PYTHONPATH=.pydeps "$PY" - <<'PY'
import bench
for p in bench.PEERS:
    print("  %-20s %-8s %s" % (p[0], "present" if p[3]() else "ABSENT", p[1]))
PY
exit "$failed"
