#!/usr/bin/env bash
# Side-by-side benchmark of the peer configuration languages on the "fleet" workload.
# Installs nothing (install_peers.sh / INSTALL.md install the peers; cflc is the
# repository's own console script); a peer whose tool is absent is listed as absent
# and skipped.
#
#   ./run_peers.sh [SIZE ...]          default sizes: 10 1000 10000
#   RUNS=5 SKIP_AFTER=60 ./run_peers.sh    (cflc needs SKIP_AFTER > ~60 at S=10000 on a busy 2-core VM)
#
# Steps: generate the sources (gen.py), check that every peer rejects each planted
# constraint violation, then time every peer at every size: one warm-up run whose
# JSON is compared with expected.json (a peer with a wrong answer is not timed; one
# slower than SKIP_AFTER seconds is dropped for this and larger sizes), then RUNS
# cold runs, each a new process; median wall seconds and median peak RSS (MiB).
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=.pydeps
RUNS="${RUNS:-5}"
SKIP_AFTER="${SKIP_AFTER:-60}"
if [ "$#" -gt 0 ]; then SIZES=("$@"); else SIZES=(10 1000 10000); fi

echo "== peers present"
python3 - <<'PY'
import bench
for p in bench.PEERS:
    print("  %-20s %-8s %s" % (p[0], "present" if p[3]() else "ABSENT", p[1]))
PY

echo "== generating sources: ${SIZES[*]}"
for s in "${SIZES[@]}"; do python3 gen.py "$s"; done

echo "== constraint checks (S=10, one planted violation each; every cell should say rejected)"
python3 bench.py badcheck || echo "(some peer missed a violation: see above)"

echo "== lines of generated source"
python3 bench.py lines "${SIZES[@]}"

echo "== timings (n=$RUNS, drop a peer after one run > ${SKIP_AFTER}s)"
python3 bench.py time "${SIZES[@]}" -n "$RUNS" --skip-after "$SKIP_AFTER"
