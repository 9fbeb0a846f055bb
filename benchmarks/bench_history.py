#!/usr/bin/env python3
"""Benchmark `cflc history` and `cflc impact` on a generated git repository.

The project is the one of bench_build.py (N services in `base.cfl`, three environments
extending it), committed, then changed over C commits with fixed authors and dates:
commit k edits one `replicas` line of env/{dev,staging,prod}.cfl in turn, and every
10th commit edits one service's port in `base.cfl` (which every environment extends).

Reported (wall time, whole `cflc` processes, parse cache in a fresh directory):

  1. `cflc history env/prod.cfl` over the C commits, cold and again warm (parse cache
     filled), with how many revisions were compiled;
  2. `cflc history env/prod.cfl services.svc_00000.port`;
  3. `cflc impact` for a one-line change to `base.cfl` in the working tree (all three
     targets change), and `cflc impact` with nothing changed (no target is compiled at
     HEAD: the closure's files are identical);
  4. with --backends PYTHON: reading every blob of the tree at each commit and walking
     the log through `git` subprocesses (`cat-file --batch`), pygit2 and dulwich, run by
     PYTHON (an interpreter that has pygit2 and dulwich installed).

Usage: python benchmarks/bench_history.py [-n 1000] [-c 200] [--keep DIR] [--backends PY]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import cflc_cmd, generate


def git(repo: Path, *args: str, day: int = 0) -> str:
    date = f"@{1704067200 + day * 3600} +0000"
    env = dict(os.environ, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date,
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=repo, env=env,
                          capture_output=True, text=True, check=True).stdout


def make_repo(root: Path, n: int, commits: int) -> Path:
    """The generated project with ``commits`` commits of history on top."""
    generate(root, n)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    envs = ("dev", "staging", "prod")
    for k in range(1, commits):
        if k % 10 == 0:
            path = root / "base.cfl"
            text = path.read_text()
            i = (k * 37) % n
            text = re.sub(rf"(svc_{i:05d}: service.Service {{\n[^\n]*\n[^\n]*\n    port = )\d+",
                          rf"\g<1>{9000 + k}", text)
            path.write_text(text)
            msg = f"base: move svc_{i:05d} to port {9000 + k}"
        else:
            env = envs[k % 3]
            path = root / "env" / f"{env}.cfl"
            lines = path.read_text().splitlines()
            idx = [j for j, line in enumerate(lines) if ".memory = " in line]
            j = idx[(k * 13) % len(idx)]
            lines[j] = re.sub(r"= \d+", f"= {128 + k}", lines[j])
            path.write_text("\n".join(lines) + "\n")
            msg = f"{env}: memory change {k}"
        git(root, "commit", "-q", "-am", msg, day=k)
    return root


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    r = subprocess.run([*cflc_cmd(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"cflc {' '.join(args)} failed ({r.returncode}):\n{r.stderr[:3000]}")
    return dt, r.stdout, r.stderr


BACKENDS = r'''
import subprocess, sys, time
repo = sys.argv[1]
shas = subprocess.run(["git", "rev-list", "HEAD"], cwd=repo, capture_output=True,
                      text=True, check=True).stdout.split()
out = {}
t0 = time.perf_counter()
subprocess.run(["git", "log", "--first-parent", "--name-only", "--format=%H %an %s"],
               cwd=repo, capture_output=True, check=True)
out["git log (subprocess)"] = time.perf_counter() - t0
t0 = time.perf_counter()
p = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
seen = set(); nbytes = 0
for s in shas:
    tree = subprocess.run(["git", "ls-tree", "-r", s], cwd=repo, capture_output=True,
                          text=True, check=True).stdout
    for line in tree.splitlines():
        blob = line.split()[2]
        if blob in seen:
            continue
        seen.add(blob)
        p.stdin.write(blob.encode() + b"\n"); p.stdin.flush()
        size = int(p.stdout.readline().split()[2]); nbytes += len(p.stdout.read(size + 1))
p.stdin.close(); p.wait()
out["trees+blobs (ls-tree + cat-file --batch)"] = time.perf_counter() - t0
try:
    import pygit2
    t0 = time.perf_counter()
    r = pygit2.Repository(repo)
    for c in r.walk(r.head.target):
        if c.parents:
            r.diff(c.parents[0], c)
    out["log walk + diffs (pygit2)"] = time.perf_counter() - t0
    t0 = time.perf_counter(); seen = set()
    for s in shas:
        def walk(tree):
            for e in tree:
                if e.type_str == "tree":
                    walk(r[e.id])
                elif e.id not in seen:
                    seen.add(e.id); r[e.id].data
        walk(r[s].tree)
    out["trees+blobs (pygit2)"] = time.perf_counter() - t0
except ImportError:
    pass
try:
    from dulwich.repo import Repo
    from dulwich.object_store import iter_tree_contents
    t0 = time.perf_counter()
    r = Repo(repo)
    for entry in r.get_walker():
        entry.changes()
    out["log walk + diffs (dulwich)"] = time.perf_counter() - t0
    t0 = time.perf_counter(); seen = set()
    for s in shas:
        for e in iter_tree_contents(r.object_store, r[s.encode()].tree):
            if e.sha not in seen:
                seen.add(e.sha); r[e.sha].data
    out["trees+blobs (dulwich)"] = time.perf_counter() - t0
except ImportError:
    pass
for k, v in out.items():
    print(f"  {k:<44} {v * 1000:8.1f} ms")
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="services (default 1000)")
    ap.add_argument("-c", "--commits", type=int, default=200, help="commits (default 200)")
    ap.add_argument("--keep", metavar="DIR", help="build the repository in DIR and keep it")
    ap.add_argument("--backends", metavar="PYTHON",
                    help="also time git access via subprocess, pygit2 and dulwich under PYTHON")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cfl-history-"))
    try:
        t0 = time.perf_counter()
        repo = make_repo(tmp / "project", args.n, args.commits)
        print(f"generated {args.n} services, {args.commits} commits in "
              f"{time.perf_counter() - t0:.1f} s  ({repo})")
        env = dict(os.environ, CFLC_CACHE_DIR=str(tmp / "cache"), NO_COLOR="1")
        dt, out, err = timed(["history", "env/prod.cfl", "-v"], repo, env)
        print(f"cflc history env/prod.cfl (cold parse cache)   {dt:7.2f} s  "
              f"{out.count('commit ')} changes; {err.strip().splitlines()[-1]}")
        dt, out, err = timed(["history", "env/prod.cfl", "-v"], repo, env)
        print(f"cflc history env/prod.cfl (warm parse cache)   {dt:7.2f} s")
        dt, out, err = timed(["history", "env/prod.cfl", "services.svc_00000.port", "-v"],
                             repo, env)
        print(f"cflc history env/prod.cfl services.svc_00000.port {dt:7.2f} s  "
              f"{out.count('commit ')} changes")
        dt, out, _ = timed(["impact"], repo, env)
        print(f"cflc impact (nothing changed)                   {dt:7.2f} s  "
              f"{out.count('unchanged')} unchanged")
        base = repo / "base.cfl"
        text = base.read_text()
        base.write_text(text.replace("port = 8001\n", "port = 7001\n", 1))
        dt, out, _ = timed(["impact", "--exit-code"], repo, env)
        print(f"cflc impact (one-line change in base.cfl)       {dt:7.2f} s  "
              f"{out.count(' change')} targets changed")
        base.write_text(text)
        if args.backends:
            print("git access over the whole history (one process each):")
            subprocess.run([args.backends, "-c", BACKENDS, str(repo)], check=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
