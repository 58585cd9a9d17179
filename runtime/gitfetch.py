"""Fetching Git repositories into the store with the `git` command, as Nix 2.8's Git fetcher
does (for `builtins.fetchGit` and `fetchTree { type = "git"; }`).

A *local* repository — a path or `file://` URL of a directory that has a `.git` — is read in
place:
- without `ref` and `rev`, a working tree whose tracked files differ from HEAD (`git diff HEAD`;
  untracked files do not count) is copied as it is: only what `git ls-files` lists, so never
  `.git` nor untracked files, with the warning "Git tree '…' is dirty" and no revision;
- otherwise `ref` defaults to the branch HEAD names and `rev` to what `ref` resolves to.
Any other URL (http, ssh, the `file://` URL of a bare repository) is fetched into a bare clone
kept beside the fetcher cache: `git fetch` of `ref` (by default "master", as in Nix 2.8) when
the clone's copy of the branch is older than the tarball TTL, when `allRefs` is set, or when
the wanted `rev` is missing; if that fetch fails and an older copy exists, the older copy is
used with a warning.

The revision's tree is exported with `git archive` (so `export-ignore` attributes apply) and
unpacked through runtime.unpack; with `submodules = true` it is checked out in a scratch clone
and `git submodule update --init --recursive` run there instead, then copied without its
`.git` entries. The tree is added to the store as a recursive source path called `name`. The
fetcher cache remembers revision → store path for good and, for a ref, ref → revision.

`git`'s own messages go to stderr as they come; a failing `git` is
"program 'git' failed with exit code N", as in Nix.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from .fetchcache import FetcherCache, cache_root, tarball_ttl
from .hashes import Hash, to_base32
from .unpack import ArchiveError, extract, tar_members

Log = Callable[[str], None]

# Ref names git refuses (git-check-ref-format), as Nix 2.8 checks them before running git.
_BAD_REF = re.compile(r"//|^[./]|/\.|\.\.|[\x00-\x20\x7f:?^~\[]|\\|\*|\.lock$|\.lock/|@\{|[/.]$"
                      r"|^@$|^$")


class GitFetchError(Exception):
    pass


@dataclass
class GitInput:
    url: str  # after Nix's fixURIForGit: a URL with a scheme
    ref: str | None = None
    rev: str | None = None  # 40 hexadecimal digits
    shallow: bool = False
    submodules: bool = False
    all_refs: bool = False
    name: str = "source"


@dataclass
class GitTree:
    path: str
    rev: str | None  # None: a dirty working tree
    rev_count: int | None  # None: shallow, or a dirty working tree
    last_modified: int
    ref: str | None = None  # the ref used, when it had to be found


def check_ref(ref: str) -> None:
    """Refuse a ref name git would refuse, with Nix's message."""
    if _BAD_REF.search(ref):
        raise GitFetchError(f"invalid Git branch/tag name '{ref}'")


def git(*args: str, check: bool = True) -> str:
    """Run git, its stderr going to ours; return its standard output."""
    try:
        r = subprocess.run(["git", *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           check=False)
    except FileNotFoundError:
        raise GitFetchError("executing 'git': No such file or directory") from None
    if check and r.returncode != 0:
        raise GitFetchError(f"program 'git' failed with exit code {r.returncode}")
    return r.stdout.decode("utf-8", "surrogateescape")


def _git_status(*args: str) -> tuple[int, str]:
    """Run git quietly; return its exit status and its merged output."""
    try:
        r = subprocess.run(["git", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise GitFetchError("executing 'git': No such file or directory") from None
    return r.returncode, r.stdout.decode("utf-8", "replace")


def actual_url(url: str) -> tuple[bool, str]:
    """(is it a local working tree, the path or URL git is given), as Nix's getActualUrl."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = urllib.parse.unquote(parts.path)
        if os.path.exists(os.path.join(path, ".git")):
            return True, path
    return False, urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def fetch(store, cache: FetcherCache, inp: GitInput, log: Log, warn: Log) -> GitTree:
    """Fetch the input into `store`; return the tree and what is known about it."""
    cache_type = "git" + ("-shallow" if inp.shallow else "") + \
        ("-submodules" if inp.submodules else "") + ("-all-refs" if inp.all_refs else "")

    def locked(rev: str) -> dict:
        return {"type": cache_type, "name": inp.name, "rev": rev}

    def result(info: dict, path: str, ref: str | None = None) -> GitTree:
        return GitTree(path, info["rev"], None if inp.shallow else info["revCount"],
                       info["lastModified"], ref)

    if inp.ref is not None:
        check_ref(inp.ref)
    if inp.rev is not None:
        entry = cache.lookup(locked(inp.rev))
        if entry is not None:
            return result(entry.info, entry.path)

    is_local, url = actual_url(inp.url)
    if is_local and inp.ref is None and inp.rev is None:
        has_head, clean = _workdir_state(url, inp.submodules)
        if not clean:
            return _fetch_workdir(store, inp, url, has_head, warn)

    ref, rev = inp.ref, inp.rev
    if is_local:
        repo, git_dir = url, ".git"
        if ref is None:
            ref = _read_head(url)
            if ref is None:
                warn(f"could not read HEAD ref from repo at '{url}', using 'master'")
                ref = "master"
        unlocked = {"type": cache_type, "name": inp.name, "url": url, "ref": ref}
        if rev is None:
            rev = git("-C", url, "--git-dir", git_dir, "rev-parse", ref).strip()
        lock = contextlib.nullcontext()
    else:
        ref = ref or "master"
        unlocked = {"type": cache_type, "name": inp.name, "url": url, "ref": ref}
        entry = cache.lookup(unlocked)
        if entry is not None and (rev is None or rev == entry.info["rev"]):
            return result(entry.info, entry.path, ref)
        repo, git_dir = os.path.join(cache_root(store), "git",
                                     to_base32(Hash.of("sha256", url.encode()).digest)), "."
        lock = _locked(repo + ".lock")
    with lock:
        if not is_local:
            rev = _update_clone(repo, url, ref, rev, inp.all_refs, log, warn)
        shallow_repo = git("-C", repo, "--git-dir", git_dir, "rev-parse",
                           "--is-shallow-repository").strip() == "true"
        if shallow_repo and not inp.shallow:
            raise GitFetchError(f"'{url}' is a shallow Git repository, but a non-shallow "
                                "repository is needed")
        entry = cache.lookup(locked(rev))
        if entry is not None:
            return result(entry.info, entry.path, ref)
        status, output = _git_status("-C", repo, "--git-dir", git_dir, "cat-file", "commit", rev)
        if status == 128 and "bad file" in output:
            raise GitFetchError(
                f"Cannot find Git revision '{rev}' in ref '{ref}' of repository '{url}'! "
                "Please make sure that the rev exists on the ref you've specified or add "
                "allRefs = true; to fetchGit.")
        path = _export(store, repo, git_dir, url, rev, inp, log)
        info = {"rev": rev, "lastModified": _commit_time(repo, git_dir, rev)}
        if not inp.shallow:
            info["revCount"] = int(git("-C", repo, "--git-dir", git_dir, "rev-list", "--count",
                                       rev).strip())
    if inp.rev is None:
        cache.add(unlocked, info, path, False)
    cache.add(locked(rev), info, path, True)
    return result(info, path, ref)


def _commit_time(repo: str, git_dir: str, rev: str) -> int:
    return int(git("-C", repo, "--git-dir", git_dir, "log", "-1", "--format=%ct",
                   "--no-show-signature", rev).strip())


def _read_head(path: str) -> str | None:
    status, output = _git_status("-C", path, "--git-dir", ".git", "rev-parse", "--abbrev-ref",
                                 "HEAD")
    return output.strip() if status == 0 and output.strip() else None


@contextlib.contextmanager
def _locked(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- working trees --------------------------------------------------------------------------------

def _workdir_state(workdir: str, submodules: bool) -> tuple[bool, bool]:
    """(does the repository have a commit, is the working tree clean) of a local repository."""
    status, output = _git_status("-C", workdir, "--git-dir", ".git", "rev-parse", "--verify",
                                 "--no-revs", "HEAD^{commit}")
    if "fatal: not a git repository" in output:
        raise GitFetchError(f"'{workdir}' is not a Git repository")
    has_head = status == 0
    if not has_head and "Needed a single revision" not in output:
        raise GitFetchError(f"getting the HEAD of the Git tree '{workdir}' failed with exit "
                            f"code {status}:\n{output}")
    if not has_head:
        return False, False
    args = ["-C", workdir, "diff", "HEAD", "--quiet"]
    if not submodules:
        args.append("--ignore-submodules")
    status, output = _git_status(*args, "--")
    if status not in (0, 1):
        raise GitFetchError(f"program 'git' failed with exit code {status}\n{output}".rstrip())
    return True, status == 0


def _fetch_workdir(store, inp: GitInput, workdir: str, has_head: bool, warn: Log) -> GitTree:
    """Copy the tracked files of a dirty working tree into the store."""
    warn(f"Git tree '{workdir}' is dirty")
    args = ["-C", workdir, "ls-files", "-z"]
    if inp.submodules:
        args.append("--recurse-submodules")
    files = sorted(f for f in git(*args).split("\0") if f)
    root = os.path.abspath(workdir)

    def tracked(path: str) -> bool:
        rel = path[len(root) + 1:]
        if stat.S_ISDIR(os.lstat(path).st_mode):
            prefix = rel + "/"
            i = bisect.bisect_left(files, prefix)
            return i < len(files) and files[i].startswith(prefix)
        i = bisect.bisect_left(files, rel)
        return i < len(files) and files[i] == rel

    path = store.add_path(root, inp.name, path_filter=tracked)
    last_modified = _commit_time(root, ".git", "HEAD") if has_head else 0
    return GitTree(path, None, None, last_modified)


# -- remote repositories --------------------------------------------------------------------------

def _update_clone(repo: str, url: str, ref: str, rev: str | None, all_refs: bool, log: Log,
                  warn: Log) -> str:
    """Bring the bare clone `repo` of `url` up to date as needed; return the revision."""
    if not os.path.exists(repo):
        os.makedirs(os.path.dirname(repo), exist_ok=True)
        git("-c", "init.defaultBranch=master", "init", "--quiet", "--bare", repo)
    ref_file = os.path.join(repo, ref if ref.startswith("refs/") else f"refs/heads/{ref}")
    now = time.time()
    if rev is not None:
        do_fetch = _git_status("-C", repo, "--git-dir", ".", "cat-file", "-e", rev)[0] != 0
    elif all_refs:
        do_fetch = True
    else:
        try:
            do_fetch = os.stat(ref_file).st_mtime + tarball_ttl() <= now
        except FileNotFoundError:
            do_fetch = True
    if do_fetch:
        log(f"fetching Git repository '{url}'...")
        fetch_ref = "refs/*" if all_refs else \
            ref if ref.startswith("refs/") or ref == "HEAD" else f"refs/heads/{ref}"
        try:
            git("-C", repo, "--git-dir", ".", "fetch", "--quiet", "--force", "--", url,
                f"{fetch_ref}:{fetch_ref}")
        except GitFetchError:
            if not os.path.exists(ref_file):
                raise
            warn(f"could not update local clone of Git repository '{url}'; continuing with "
                 "the most recent version")
        if os.path.exists(ref_file):
            os.utime(ref_file, (now, now))
    if rev is None:
        try:
            with open(ref_file, encoding="ascii") as f:
                rev = f.read().strip()
        except FileNotFoundError:
            rev = git("-C", repo, "--git-dir", ".", "rev-parse", ref).strip()
    return rev


# -- exporting a revision -------------------------------------------------------------------------

def _export(store, repo: str, git_dir: str, url: str, rev: str, inp: GitInput,
            log: Log) -> str:
    tmp = tempfile.mkdtemp(prefix="dtx-git-")
    try:
        if inp.submodules:
            _checkout_with_submodules(repo, url, rev, tmp)
            return store.add_path(tmp, inp.name,
                                  path_filter=lambda p: os.path.basename(p) != ".git")
        proc = subprocess.Popen(["git", "-C", repo, "--git-dir", git_dir, "archive", rev],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                extract(tar_members(tar), tmp, log)
        except (ArchiveError, tarfile.TarError) as e:
            proc.kill()
            raise GitFetchError(f"cannot unpack revision '{rev}' of '{url}': {e}") from None
        finally:
            proc.stdout.close()
            status = proc.wait()
        if status != 0:
            raise GitFetchError(f"program 'git' failed with exit code {status}")
        return store.add_path(tmp, inp.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _checkout_with_submodules(repo: str, url: str, rev: str, dest: str) -> None:
    git_dir = tempfile.mkdtemp(prefix="dtx-git-dir-")
    try:
        git("-c", "init.defaultBranch=master", "init", "--quiet", dest, "--separate-git-dir",
            git_dir)
        git("-C", dest, "fetch", "--quiet", "--force", "--update-head-ok", "--", repo,
            "refs/*:refs/*")
        git("-C", dest, "checkout", "--quiet", rev)
        git("-C", dest, "remote", "add", "origin", url)
        git("-C", dest, "submodule", "--quiet", "update", "--init", "--recursive")
    finally:
        shutil.rmtree(git_dir, ignore_errors=True)
