"""Git access for cfglang: reading modules at any revision, and the commit log.

cflc talks to git through plain ``git`` subprocesses (measured against pygit2 and dulwich;
see docs/vcs.md). One `Repo` per repository keeps a single long-lived
``git cat-file --batch`` process and reads every blob through it, memoised by blob id: a
walk over history reads each distinct file content once, however many revisions share it.

`GitLoader` implements the resolver's `Loader` protocol over the tree of one commit
(``git ls-tree -r`` once per commit), so `FILE@REV` builds go through exactly the same
compiler as working-tree builds: only the bytes come from elsewhere. Paths outside the
repository (the standard library, ``--allow-path`` directories) fall back to the disk.

`split_spec` parses ``FILE@REV``; every failure (not a repository, unknown revision, file
absent at the revision, a shallow clone's missing history, git itself failing) is a
`GitError` carrying a diagnostic from the catalogue (E12xx), never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import IO

import attrs

from cfglang.diagnostics import Diagnostic, Note

__all__ = ["Commit", "GitError", "GitLoader", "Repo", "RevSpec", "find_repo", "split_spec"]


class GitError(Exception):
    """A git problem, as a user-facing diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Messages are parsed only for their exit status, but keep them stable anyway.
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    return env


def _run(cwd: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, env=_git_env(), check=False
        )
    except FileNotFoundError:
        raise GitError(
            Diagnostic(
                "E1205",
                "git is not installed (no `git` on PATH)",
                help="install git to use revisions, history and impact",
            )
        ) from None
    except OSError as e:
        raise GitError(Diagnostic("E1205", f"cannot run git: {e.strerror or e}")) from None


@attrs.frozen
class Commit:
    """One commit of the log: id, first parent (None for a root or shallow boundary),
    author, ISO 8601 author date, subject and the paths it changed (against the first
    parent, relative to the repository root)."""

    sha: str
    parent: str | None
    author: str
    email: str
    date: str
    subject: str
    changed: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.sha[:10]


@attrs.define(eq=False)
class Repo:
    """A git repository: its top-level directory (as a real path) and a blob reader."""

    root: str
    _blobs: dict[str, bytes] = attrs.Factory(dict)
    _trees: dict[str, tuple[dict[str, tuple[str, str]], frozenset[str]]] = attrs.Factory(dict)
    _batch: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = attrs.Factory(threading.Lock)
    _shallow: bool | None = None

    def git(self, *args: str) -> str:
        """Run git in the repository; its stdout, or a GitError (E1205) on failure."""
        proc = _run(self.root, *args)
        if proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(
                Diagnostic(
                    "E1205",
                    f"`git {args[0]}` failed: " + (msg[-1] if msg else f"exit {proc.returncode}"),
                )
            )
        return proc.stdout.decode("utf-8", "surrogateescape")

    @property
    def shallow(self) -> bool:
        if self._shallow is None:
            self._shallow = self.git("rev-parse", "--is-shallow-repository").strip() == "true"
        return self._shallow

    def resolve(self, rev: str) -> str:
        """The commit id of ``rev`` (any revision git understands), or E1202."""
        if not rev or rev.startswith("-"):
            raise GitError(Diagnostic("E1202", f"unknown revision `{rev}`"))
        proc = _run(
            self.root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
        notes: list[Note] = []
        help_text = "use a branch, a tag, a commit id or an expression like `HEAD~3`"
        if (
            rev in ("HEAD", "@")
            and _run(self.root, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0
        ):
            raise GitError(
                Diagnostic(
                    "E1202", "the repository has no commits yet", help="commit something first"
                )
            )
        if self.shallow:
            notes.append(Note("this is a shallow clone: older commits are not present"))
            help_text = "fetch the missing history with `git fetch --unshallow`"
        raise GitError(
            Diagnostic("E1202", f"unknown revision `{rev}`", notes=tuple(notes), help=help_text)
        )

    def head(self) -> tuple[str, str | None]:
        """(commit id of HEAD, branch name or None when HEAD is detached)."""
        sha = self.resolve("HEAD")
        proc = _run(self.root, "symbolic-ref", "--quiet", "--short", "HEAD")
        branch = proc.stdout.decode().strip() if proc.returncode == 0 else None
        return sha, branch or None

    def tree(self, commit: str) -> tuple[dict[str, tuple[str, str]], frozenset[str]]:
        """{path: (mode, blob id)} of every file at ``commit``, and the set of directories."""
        if commit in self._trees:
            return self._trees[commit]
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit)
        files: dict[str, tuple[str, str]] = {}
        dirs: set[str] = {""}
        for rec in out.split("\0"):
            if not rec:
                continue
            meta, _, path = rec.partition("\t")
            mode, kind, sha = meta.split(" ")
            if kind != "blob":
                continue
            files[path] = (mode, sha)
            d = os.path.dirname(path)
            while d and d not in dirs:
                dirs.add(d)
                d = os.path.dirname(d)
        if len(self._trees) > 64:  # a long walk needs only the last few trees
            self._trees.clear()
        self._trees[commit] = (files, frozenset(dirs))
        return self._trees[commit]

    def blob(self, sha: str) -> bytes:
        """The content of a blob, read through one `git cat-file --batch` process."""
        hit = self._blobs.get(sha)
        if hit is not None:
            return hit
        with self._lock:
            if self._batch is None or self._batch.poll() is not None:
                try:
                    self._batch = subprocess.Popen(
                        ["git", "cat-file", "--batch"],
                        cwd=self.root,
                        env=_git_env(),
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                except OSError as e:
                    raise GitError(Diagnostic("E1205", f"cannot run git: {e}")) from None
            proc = self._batch
            stdin: IO[bytes] = proc.stdin  # type: ignore[assignment]
            stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
            stdin.write(sha.encode() + b"\n")
            stdin.flush()
            header = stdout.readline().split()
            if len(header) != 3:
                raise GitError(Diagnostic("E1205", f"git cannot read object {sha[:10]}"))
            data = stdout.read(int(header[2]))
            stdout.read(1)
        self._blobs[sha] = data
        return data

    def close(self) -> None:
        """End the `cat-file` process (also done at exit)."""
        if self._batch is not None:
            try:
                if self._batch.stdin is not None:
                    self._batch.stdin.close()
                self._batch.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._batch.kill()
            for stream in (self._batch.stdout,):
                if stream is not None:
                    stream.close()
            self._batch = None

    def __del__(self) -> None:
        self.close()

    def rel(self, path: str) -> str | None:
        """``path`` relative to the repository root ('/'-separated), None when outside."""
        real = os.path.realpath(os.path.abspath(path))
        rel = os.path.relpath(real, self.root)
        if rel == ".":
            return ""
        if rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
            return None
        return rel.replace(os.sep, "/")

    def log(
        self, rev: str, *, since: str | None = None, paths: Sequence[str] = ()
    ) -> Iterator[Commit]:
        """Commits reachable from ``rev`` along first parents, newest first, with the paths
        each changed against its first parent (merges included, as `git log
        --first-parent`)."""
        args = [
            "log",
            "--first-parent",
            "--diff-merges=first-parent",
            "--no-renames",
            "--name-only",
            "-z",
            "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f",
        ]
        if since:
            args.append(f"--since={since}")
        args += [rev, "--", *paths]
        out = self.git(*args)
        shallow = self._shallow_commits()
        for rec in out.split("\x1e"):
            if not rec.strip("\0\n"):
                continue
            sha, parents, author, email, date, subject, rest = rec.split("\x1f", 6)
            names = tuple(n.strip("\n") for n in rest.split("\0") if n.strip("\n"))
            first = parents.split()[0] if parents.strip() else None
            if sha in shallow:
                first = None
            yield Commit(sha, first, author, email, date, subject, names)

    def _shallow_commits(self) -> frozenset[str]:
        if not self.shallow:
            return frozenset()
        git_dir = self.git("rev-parse", "--absolute-git-dir").strip()
        try:
            with open(os.path.join(git_dir, "shallow"), encoding="ascii") as f:
                return frozenset(line.strip() for line in f if line.strip())
        except OSError:
            return frozenset()


_REPOS: dict[str, Repo] = {}


def find_repo(path: str) -> Repo:
    """The repository holding ``path`` (a file or directory, existing or not), or E1201."""
    start = os.path.abspath(path)
    while not os.path.isdir(start):
        parent = os.path.dirname(start)
        if parent == start:
            break
        start = parent
    proc = _run(start, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise GitError(
            Diagnostic(
                "E1201",
                f"`{os.path.relpath(os.path.abspath(path))}` is not in a git repository",
                help="revisions (`FILE@REV`), history and impact need a git working tree",
            )
        )
    root = os.path.realpath(proc.stdout.decode().strip())
    # setdefault is atomic under the GIL: two threads finding one repository at once share
    # one `Repo` (and its caches) instead of the second silently replacing the first.
    return _REPOS.setdefault(root, Repo(root)) if root not in _REPOS else _REPOS[root]


@attrs.define
class GitLoader:
    """The resolver's `Loader` over the tree of one commit.

    Paths inside the repository are looked up in the commit's tree (never in the working
    tree); paths outside it (the standard library, allowed directories) are read from disk.
    ``touched`` records every repository path read or probed: the module closure, which
    `cfglang.tools.history` uses to decide which commits can change a target.
    """

    repo: Repo
    commit: str
    touched: set[str] = attrs.Factory(set)

    def _lookup(self, path: str) -> tuple[str | None, tuple[str, str] | None, bool]:
        rel = self.repo.rel(path)
        if rel is None:
            return None, None, False
        files, dirs = self.repo.tree(self.commit)
        self.touched.add(rel)
        entry = files.get(rel)
        for _ in range(8):  # follow symbolic links inside the tree
            if entry is None or entry[0] != "120000":
                break
            target = self.repo.blob(entry[1]).decode("utf-8", "surrogateescape")
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), target)).replace(os.sep, "/")
            self.touched.add(rel)
            entry = files.get(rel)
        return rel, entry, rel in dirs

    def read(self, path: str) -> str:
        rel, entry, is_dir = self._lookup(path)
        if rel is None:
            with open(path, encoding="utf-8", newline="") as f:
                return f.read()
        if entry is None:
            if is_dir:
                raise IsADirectoryError(path)
            raise FileNotFoundError(path)
        return self.repo.blob(entry[1]).decode("utf-8")

    def exists(self, path: str) -> bool:
        rel, entry, _ = self._lookup(path)
        if rel is None:
            return os.path.isfile(path)
        return entry is not None

    def root_for(self, path: str) -> str:
        """The project root at this commit, by the rule of `cfglang.project.find_root`: the
        nearest directory above ``path`` whose tree holds `cfl.toml` (within the
        repository), else the top of the work tree; the directory of ``path`` when it is
        outside the repository."""
        files, _ = self.repo.tree(self.commit)
        here = os.path.dirname(os.path.abspath(path))
        if self.repo.rel(here) is None:
            return here
        cur = here
        while True:
            rel = self.repo.rel(os.path.join(cur, "cfl.toml"))
            if rel is not None and rel in files:
                return cur
            parent = os.path.dirname(cur)
            if rel is None or parent == cur or self.repo.rel(parent) is None:
                return self.repo.root
            cur = parent


@attrs.frozen
class RevSpec:
    """A module at a revision: the working-tree path, the revision as typed, its commit."""

    path: str
    rev: str
    commit: str
    repo: Repo

    def loader(self) -> GitLoader:
        return GitLoader(self.repo, self.commit)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"env/prod.cfl@v1.4"`` -> ``("env/prod.cfl", "v1.4")``; a plain path -> (path, None).

    An existing file is always a plain path, even with ``@`` in its name. Otherwise the
    split is at the first ``@`` whose left part names a `.cfl` file or an existing path,
    else at the first ``@`` (revisions such as ``HEAD@{1}`` keep their own ``@``).
    """
    if "@" not in spec or os.path.exists(spec):
        return spec, None
    positions = [i for i, ch in enumerate(spec) if ch == "@" and i > 0]
    if not positions:
        return spec, None
    for i in positions:
        left = spec[:i]
        if left.endswith(".cfl") or os.path.exists(left):
            return left, spec[i + 1 :]
    return spec[: positions[0]], spec[positions[0] + 1 :]


def resolve_spec(path: str, rev: str) -> RevSpec:
    """Check that ``path`` exists at ``rev`` and return the resolved `RevSpec`; GitError
    (E1201 not a repository, E1202 unknown revision, E1203 absent there) otherwise."""
    if not rev:
        raise GitError(
            Diagnostic(
                "E0701",
                f"`{path}@` names no revision",
                help="write FILE@REV, e.g. `env/prod.cfl@HEAD~1`",
            )
        )
    repo = find_repo(path)
    commit = repo.resolve(rev)
    rel = repo.rel(path)
    if rel is None:
        raise GitError(Diagnostic("E1203", f"`{path}` is outside the git repository"))
    files, dirs = repo.tree(commit)
    if rel in dirs:
        raise GitError(Diagnostic("E0702", f"`{path}` is a directory at `{rev}`, not a module"))
    if rel not in files:
        raise GitError(
            Diagnostic(
                "E1203",
                f"`{rel}` does not exist at `{rev}` (commit {commit[:10]})",
                help=f"`git log --oneline -- {rel}` lists the commits that touched it",
            )
        )
    return RevSpec(path, rev, commit, repo)


def loader_for(spec: str, root: str | None = None) -> tuple[str, GitLoader | None, str | None]:
    """For the API: ``(path, loader, root)`` of a module argument. A plain path gives no
    loader (the working tree); ``FILE@REV`` gives a `GitLoader` at REV and the project root
    at that revision (unless ``root`` is given). Raises GitError."""
    path, rev = split_spec(spec)
    if rev is None:
        return spec, None, root
    rs = resolve_spec(path, rev)
    loader = rs.loader()
    return path, loader, root or loader.root_for(path)


def check_spec(spec: str) -> Diagnostic | None:
    """For the CLI's argument checks: None when ``spec`` is not ``FILE@REV`` or names a
    module present at that revision, else the diagnostic that says what is wrong."""
    path, rev = split_spec(spec)
    if rev is None:
        return None
    try:
        resolve_spec(path, rev)
    except GitError as e:
        return e.diagnostic
    return None
