"""The eval-time fetchers (`builtins.fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`) against
Nix 2.8, and their cache, safety and reporting.

Everything fetched here is local: files served by an HTTP server on 127.0.0.1 (a thread of this
process, counting requests and answering `If-None-Match` with 304) or read through `file://`
URLs, and Git repositories made in a temporary directory (commits with fixed dates, a branch,
a lightweight and an annotated tag, a submodule, a bare clone, dirty working trees). Each
differential case is evaluated by `nix-instantiate --eval --strict --json` (writing into the real
/nix/store, with its fetcher cache in a temporary XDG_CACHE_HOME) and by dtx in-process on a
read-only store in a temporary directory, as `dtx-instantiate --eval` has; store paths and
attributes must be equal, and failures must have the same first line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.glue import attach_store
from dtx.runtime.store import LocalStore
from dtx.runtime.values import force

NIX = shutil.which("nix-instantiate")

pytestmark = pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")

# Local submodules are cloned through git's file transport, which git refuses by default.
GIT_ENV = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow",
           "GIT_CONFIG_VALUE_0": "always", "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@b",
           "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@b"}

SHOW = ('let show = r: if builtins.isAttrs r && r ? outPath then '
        'builtins.removeAttrs r [ "outPath" ] // { path = r.outPath; } else r; in ')


# -- the HTTP server ------------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    """Serves `files` (URL path -> bytes) with ETags; records every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, path: str, conditional: bool | None = None) -> int:
        with self.lock:
            return sum(1 for p, etag in self.requests
                       if p == path and (conditional is None or (etag is not None) == conditional))


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        srv: Server = self.server
        path = urllib.parse.urlsplit(self.path).path
        condition = self.headers.get("If-None-Match")
        with srv.lock:
            srv.requests.append((path, condition))
            data = srv.files.get(path)
            target = srv.redirects.get(path)
        if target is not None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if data is None:
            self.send_error(404)
            return
        if condition == _etag(data):
            self.send_response(304)
            self.send_header("ETag", _etag(data))
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", _etag(data))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# -- archives and repositories --------------------------------------------------------------------

def _source_tree(root: Path) -> Path:
    """A small tree with what a NAR distinguishes: files, an executable, a symlink, nesting,
    an empty directory."""
    top = root / "pkg-1.0"
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "empty").mkdir()
    (top / "a.txt").write_text("a\n")
    (top / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (top / "sub" / "run.sh").chmod(0o755)
    (top / "sub" / "deeper" / "b.txt").write_text("b\n")
    (top / "link").symlink_to("a.txt")
    (top / "default.nix").write_text('{ answer = 42; text = builtins.readFile ./a.txt; }\n')
    return top


def _tar(top: Path, mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        t.add(top, arcname=top.name)
    return buf.getvalue()


def _zip(top: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted([top, *top.rglob("*")]):
            name = str(path.relative_to(top.parent))
            st = path.lstat()
            if path.is_symlink():
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, os.readlink(path))
            elif path.is_dir():
                info = zipfile.ZipInfo(name + "/")
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                z.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFREG | stat.S_IMODE(st.st_mode)) << 16
                z.writestr(info, path.read_bytes())
    return buf.getvalue()


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                          check=True).stdout


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _tar_of(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for info, data in members:
            t.addfile(info, data)
    return buf.getvalue()


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    return subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def _new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture(scope="module")
def fx(tmp_path_factory, server):
    """The served files, the archives and the repositories, in one temporary directory."""
    root = tmp_path_factory.mktemp("fetchers")
    www = root / "www"
    www.mkdir()
    top = _source_tree(root / "src")
    plain = _tar(top, "w")
    archives = {
        "pkg.tar.gz": _tar(top, "w:gz"), "pkg.tar.xz": _tar(top, "w:xz"),
        "pkg.tar.bz2": _tar(top, "w:bz2"), "pkg.tar": plain, "pkg.tar.zst": _zstd(plain),
        "pkg.zip": _zip(top),
        "two.tar.gz": _tar_of([_member("a"), _member("b")]),
        "single-file.tar.gz": _tar_of([_member("only.txt", data=b"only\n")]),
        "hello.txt": b"hello world\n",
    }
    for name, data in archives.items():
        (www / name).write_bytes(data)
        server.files[f"/{name}"] = data
    server.redirects["/moved.txt"] = "/hello.txt"

    repo = _new_repo(root / "repo")
    (repo / "f").write_text("one\n")
    (repo / "d").mkdir()
    (repo / "d" / "x").write_text("x\n")
    (repo / "tool").write_text("#!/bin/sh\n")
    (repo / "tool").chmod(0o755)
    (repo / "ln").symlink_to("f")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one", date="2001-01-01T00:00:00Z")
    git(repo, "tag", "v1")
    (repo / "f").write_text("two\n")
    git(repo, "commit", "-qam", "two", date="2002-02-02T02:02:02Z")
    git(repo, "tag", "-a", "v2", "-m", "annotated", date="2002-02-02T02:02:03Z")
    git(repo, "checkout", "-qb", "feature")
    (repo / "g").write_text("three\n")
    git(repo, "add", "g")
    git(repo, "commit", "-qm", "three", date="2003-03-03T03:03:03Z")
    git(repo, "checkout", "-q", "main")

    sub = _new_repo(root / "subrepo")
    (sub / "s.txt").write_text("s\n")
    git(sub, "add", ".")
    git(sub, "commit", "-qm", "s", date="2004-04-04T04:04:04Z")
    withsub = _new_repo(root / "withsub")
    (withsub / "top").write_text("top\n")
    git(withsub, "add", "top")
    git(withsub, "submodule", "-q", "add", str(sub), "sub")
    git(withsub, "commit", "-qm", "with a submodule", date="2005-05-05T05:05:05Z")

    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(root / "bare.git")],
                   check=True, env={**os.environ, **GIT_ENV})
    return {"root": root, "www": www, "repo": repo, "withsub": withsub,
            "bare": root / "bare.git", "http": server.base, "server": server}


@pytest.fixture(scope="module", autouse=True)
def git_env():
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_ENV.items():
            mp.setenv(key, value)
        yield


# -- running Nix and dtx --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nix_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("nix-cache")


def nix(expr: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([NIX, "--option", "substituters", "", "--extra-experimental-features",
                           "flakes", "--eval", "--strict", "--json", "-E", expr],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def nix_json(expr: str, cache: Path, cwd: Path):
    r = nix(expr, cache, cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def first_error(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("error:"))


class Dtx:
    """dtx in-process, on a read-only store (as `dtx-instantiate --eval`) under `root`."""

    def __init__(self, root: Path):
        self.root = root

    def state(self) -> Evaluator:
        ev = Evaluator()
        attach_store(ev, LocalStore(root=str(self.root), read_only=True))
        return ev

    def json(self, expr: str, cwd: Path):
        ev = self.state()
        return json.loads(run_deep(lambda: str(force(ev.eval_string(
            f"builtins.toJSON ({expr})", str(cwd))))))

    def error(self, expr: str, cwd: Path) -> str:
        with pytest.raises(EvalError) as info:
            self.json(expr, cwd)
        return "error: " + str(info.value).splitlines()[0]

    @property
    def store(self) -> LocalStore:
        return LocalStore(root=str(self.root))


@pytest.fixture
def dtx(tmp_path):
    d = Dtx(tmp_path / "dtx-home")
    yield d
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], capture_output=True, check=False)


def both(expr: str, fx, nix_cache, dtx):
    """Evaluate `show (expr)` with Nix and dtx; return (nix's value, dtx's value)."""
    e = SHOW + f"show ({expr})"
    return nix_json(e, nix_cache, fx["root"]), dtx.json(e, fx["root"])


# -- differential: successes ----------------------------------------------------------------------

def _cases(fx) -> dict[str, str]:
    www, http, repo = fx["www"], fx["http"], fx["repo"]
    feature = git(repo, "rev-parse", "feature")
    first = git(repo, "rev-parse", "main~1")
    hello = hashlib.sha256(b"hello world\n").hexdigest()
    return {
        "fetchurl-http": f'builtins.fetchurl "{http}/hello.txt"',
        "fetchurl-file": f'builtins.fetchurl "file://{www}/hello.txt"',
        "fetchurl-named": f'builtins.fetchurl {{ url = "{http}/hello.txt"; name = "greeting"; }}',
        "fetchurl-sha256": f'builtins.fetchurl {{ url = "{http}/hello.txt"; sha256 = "{hello}"; }}',
        "fetchurl-redirect": f'builtins.fetchurl "{http}/moved.txt"',
        "fetchurl-query-name": f'builtins.fetchurl "{http}/hello.txt?x=1"',
        **{f"tarball-{ext}": f'fetchTarball "{http}/pkg.{ext}"'
           for ext in ("tar.gz", "tar.xz", "tar.bz2", "tar", "tar.zst", "zip")},
        "tarball-file-url": f'fetchTarball "file://{www}/pkg.tar.gz"',
        "tarball-named": f'fetchTarball {{ url = "{http}/pkg.tar.gz"; name = "pkg"; }}',
        "tarball-single-file": f'fetchTarball "{http}/single-file.tar.gz"',
        "tarball-import": f'(import (fetchTarball "{http}/pkg.tar.gz")).text',
        "tarball-readdir": f'builtins.readDir (fetchTarball "{http}/pkg.tar.gz")',
        "git-path": f"fetchGit {repo}",
        "git-string": f'fetchGit "{repo}"',
        "git-file-url": f'fetchGit {{ url = "file://{repo}"; }}',
        "git-branch": f'fetchGit {{ url = {repo}; ref = "feature"; }}',
        "git-tag-ref": f'fetchGit {{ url = {repo}; ref = "refs/tags/v1"; }}',
        "git-annotated-tag": f'fetchGit {{ url = {repo}; ref = "v2"; }}',
        "git-rev": f'fetchGit {{ url = {repo}; rev = "{first}"; }}',
        "git-rev-other-branch": f'fetchGit {{ url = {repo}; rev = "{feature}"; }}',
        "git-rev-and-ref": f'fetchGit {{ url = {repo}; rev = "{feature}"; ref = "feature"; }}',
        "git-named": f'fetchGit {{ url = {repo}; name = "src"; }}',
        "git-shallow": f'fetchGit {{ url = {repo}; shallow = true; }}',
        "git-all-refs": f'fetchGit {{ url = {repo}; allRefs = true; }}',
        "git-submodule-off": f'fetchGit {fx["withsub"]}',
        "git-submodules": f'fetchGit {{ url = {fx["withsub"]}; submodules = true; }}',
        "git-bare-ref": f'fetchGit {{ url = "file://{fx["bare"]}"; ref = "feature"; }}',
        "git-bare-rev": f'fetchGit {{ url = {fx["bare"]}; ref = "main"; rev = "{first}"; }}',
        "git-import": f'builtins.readFile "${{fetchGit {repo}}}/f"',
        "tree-git": f'builtins.fetchTree {{ type = "git"; url = {repo}; }}',
        "tree-git-url": f'builtins.fetchTree "git+file://{repo}?ref=feature"',
        "tree-tarball": f'builtins.fetchTree {{ type = "tarball"; url = "{http}/pkg.tar.gz"; }}',
        "tree-tarball-url": f'builtins.fetchTree "{http}/pkg.tar.xz"',
        "tree-tarball-path": f'builtins.fetchTree {{ type = "tarball"; url = {www}/pkg.tar; }}',
        "tree-path": f'builtins.fetchTree {{ type = "path"; path = {www}/../src/pkg-1.0; }}',
    }


@pytest.fixture(scope="module")
def clean_results(fx, nix_cache, tmp_path_factory):
    """Every case of `_cases`, evaluated once by Nix and once by dtx (one evaluation each)."""
    cases = _cases(fx)
    expr = SHOW + "{\n" + "".join(f'  "{k}" = show ({v});\n' for k, v in cases.items()) + "}"
    theirs = nix_json(expr, nix_cache, fx["root"])
    ours = Dtx(tmp_path_factory.mktemp("dtx-clean")).json(expr, fx["root"])
    return theirs, ours


CASES = [
    "fetchurl-http", "fetchurl-file", "fetchurl-named", "fetchurl-sha256", "fetchurl-redirect",
    "fetchurl-query-name", "tarball-tar.gz", "tarball-tar.xz", "tarball-tar.bz2", "tarball-tar",
    "tarball-tar.zst", "tarball-zip", "tarball-file-url", "tarball-named", "tarball-single-file",
    "tarball-import", "tarball-readdir", "git-path", "git-string", "git-file-url", "git-branch",
    "git-tag-ref", "git-annotated-tag", "git-rev", "git-rev-other-branch", "git-rev-and-ref",
    "git-named", "git-shallow", "git-all-refs", "git-submodule-off", "git-submodules",
    "git-bare-ref", "git-bare-rev", "git-import", "tree-git", "tree-git-url", "tree-tarball",
    "tree-tarball-url", "tree-tarball-path", "tree-path"]


def test_every_case_is_checked(fx):
    assert list(_cases(fx)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_same_as_nix(case, clean_results):
    theirs, ours = clean_results
    assert ours[case] == theirs[case]


# -- differential: working trees ------------------------------------------------------------------

def _work_clone(fx, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(fx["repo"]), str(work)], check=True,
                   env={**os.environ, **GIT_ENV})
    return work


@pytest.mark.parametrize("change", ["modified", "staged-new", "deleted", "untracked-only",
                                    "ref-ignores-dirt"])
def test_working_tree_as_nix(change, fx, nix_cache, dtx, tmp_path, capfd):
    """A local repository with uncommitted changes is copied from its working tree (tracked
    files only, never .git) with a warning and the all-zero revision, as Nix does."""
    work = _work_clone(fx, tmp_path)
    expr = f"fetchGit {work}"
    if change in ("modified", "ref-ignores-dirt"):
        (work / "f").write_text("changed\n")
    elif change == "staged-new":
        (work / "new").write_text("new\n")
        git(work, "add", "new")
        (work / "untracked").write_text("not copied\n")
    elif change == "deleted":
        (work / "d" / "x").unlink()
    else:
        (work / "untracked").write_text("not copied\n")
    if change == "ref-ignores-dirt":
        expr = f'fetchGit {{ url = {work}; ref = "main"; }}'
    theirs, ours = both(expr, fx, nix_cache, dtx)
    assert ours == theirs
    dirty = change not in ("untracked-only", "ref-ignores-dirt")
    assert (ours["rev"] == "0" * 40) == dirty
    warning = f"warning: Git tree '{work}' is dirty"
    assert (warning in capfd.readouterr().err) == dirty
    tree = dtx.store.real(ours["path"])
    assert not os.path.exists(os.path.join(tree, ".git"))
    assert not os.path.exists(os.path.join(tree, "untracked"))


def test_dirty_tree_with_submodules_as_nix(fx, nix_cache, dtx, tmp_path):
    work = tmp_path / "withsub"
    subprocess.run(["git", "clone", "-q", "--recurse-submodules", str(fx["withsub"]),
                    str(work)], check=True, env={**os.environ, **GIT_ENV})
    (work / "sub" / "s.txt").write_text("changed in the submodule\n")
    for expr in (f"fetchGit {work}", f"fetchGit {{ url = {work}; submodules = true; }}"):
        theirs, ours = both(expr, fx, nix_cache, dtx)
        assert ours == theirs, expr


def test_repository_without_commits_as_nix(fx, nix_cache, dtx, tmp_path):
    empty = _new_repo(tmp_path / "empty")
    assert both(f"fetchGit {empty}", fx, nix_cache, dtx)[1]["lastModified"] == 0
    (empty / "a").write_text("a\n")
    git(empty, "add", "a")
    theirs, ours = both(f"fetchGit {empty}", fx, nix_cache, dtx)
    assert ours == theirs


def test_new_commit_is_seen_at_once(fx, nix_cache, dtx, tmp_path):
    """A local repository is never served from the cache by its ref: a new commit shows."""
    work = _work_clone(fx, tmp_path)
    before = dtx.json(f"(fetchGit {work}).rev", tmp_path)
    (work / "f").write_text("next\n")
    git(work, "commit", "-qam", "next", date="2010-01-01T00:00:00Z")
    theirs, ours = both(f"fetchGit {work}", fx, nix_cache, dtx)
    assert ours == theirs and ours["rev"] != before and ours["revCount"] == 3


def test_path_input_last_modified_as_nix(fx, nix_cache, dtx, tmp_path):
    tree = _source_tree(tmp_path / "t")
    os.utime(tree / "sub" / "deeper" / "b.txt", (1_500_000_000, 1_500_000_000))
    for p in [tree, *tree.rglob("*")]:
        if p.name != "b.txt":
            os.utime(p, (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    theirs, ours = both(f'builtins.fetchTree {{ type = "path"; path = "{tree}"; }}', fx,
                        nix_cache, dtx)
    assert ours == theirs and ours["lastModified"] == 1_500_000_000


# -- differential: failures -----------------------------------------------------------------------

def _error_cases(fx) -> dict[str, str]:
    www, http, repo = fx["www"], fx["http"], fx["repo"]
    zero = "0" * 52
    sri = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    return {
        "url-missing": "builtins.fetchurl { }",
        "url-not-string": "builtins.fetchurl 1",
        "path-not-string": f"fetchTarball {www}/pkg.tar.gz",
        "hash-argument": f'builtins.fetchurl {{ url = "{http}/hello.txt"; hash = "{sri}"; }}',
        "unknown-argument": f'fetchTarball {{ url = "{http}/pkg.tar.gz"; foo = 1; }}',
        "hash-mismatch": f'builtins.fetchurl {{ url = "{http}/hello.txt"; sha256 = "{zero}"; }}',
        "empty-hash": f'builtins.fetchurl {{ url = "{http}/hello.txt"; sha256 = ""; }}',
        "hash-other-type": f'builtins.fetchurl {{ url = "{http}/hello.txt"; '
                           'sha256 = "sha512-AAAA"; }',
        "tarball-mismatch": f'fetchTarball {{ url = "{http}/pkg.tar.gz"; sha256 = "{zero}"; }}',
        "bad-name": f'builtins.fetchurl {{ url = "{http}/hello.txt"; name = "a b"; }}',
        "url-with-context": f'builtins.fetchurl "{http}/${{builtins.toFile "x" "y"}}"',
        "two-top-level": f'fetchTarball "{http}/two.tar.gz"',
        "git-bad-ref": f'fetchGit {{ url = {repo}; ref = "a..b"; }}',
        "git-unknown-ref": f'fetchGit {{ url = {repo}; ref = "nope"; }}',
        "git-unknown-rev": f'fetchGit {{ url = {repo}; rev = "{"1" * 40}"; }}',
        "git-short-rev": f'fetchGit {{ url = {repo}; rev = "abc"; }}',
        "git-unknown-attr": f'fetchGit {{ url = {repo}; foo = "x"; }}',
        "git-no-url": 'fetchGit { ref = "main"; }',
        "git-ref-not-string": f"fetchGit {{ url = {repo}; ref = 1; }}",
        "git-flag-not-bool": f'fetchGit {{ url = {repo}; submodules = "yes"; }}',
        "git-type-given": f'fetchGit {{ url = {repo}; type = "git"; }}',
        "git-not-repo": f"fetchGit {www}",
        "git-bad-name": f'fetchGit {{ url = {repo}; name = "x y"; }}',
        "git-bare-default-master": f"fetchGit {fx['bare']}",
        "git-int": "fetchGit 1",
        "tree-no-type": f'builtins.fetchTree {{ url = "{http}/pkg.tar.gz"; }}',
        "tree-name": f'builtins.fetchTree {{ type = "tarball"; url = "{http}/pkg.tar.gz"; '
                     'name = "x"; }',
        "tree-unknown-attr": f'builtins.fetchTree {{ type = "tarball"; url = "{http}/p.tar"; '
                             'hash = "x"; }',
        "tree-list-attr": f'builtins.fetchTree {{ type = "tarball"; url = "{http}/p.tar"; '
                          'x = [ ]; }',
        "tree-unknown-type": 'builtins.fetchTree { type = "file"; url = "https://x/y"; }',
        "tree-unsupported-url": f'builtins.fetchTree "{http}/hello.txt"',
        "tree-relative-path": 'builtins.fetchTree { type = "path"; path = "pkg-1.0"; }',
        "tree-nar-mismatch": f'builtins.fetchTree {{ type = "tarball"; '
                             f'url = "{http}/pkg.tar.gz"; narHash = "{sri}"; }}',
        "tree-git-nar-mismatch": f'builtins.fetchTree {{ type = "git"; url = {repo}; '
                                 f'ref = "main"; narHash = "{sri}"; }}',
        "tree-rev-count-mismatch": f'builtins.fetchTree {{ type = "git"; url = {repo}; '
                                   'revCount = 5; }',
    }


ERROR_CASES = [
    "url-missing", "url-not-string", "path-not-string", "hash-argument", "unknown-argument",
    "hash-mismatch", "empty-hash", "hash-other-type", "tarball-mismatch", "bad-name",
    "url-with-context", "two-top-level", "git-bad-ref", "git-unknown-ref", "git-unknown-rev",
    "git-short-rev", "git-unknown-attr", "git-no-url", "git-ref-not-string",
    "git-flag-not-bool", "git-type-given", "git-not-repo", "git-bad-name",
    "git-bare-default-master", "git-int", "tree-no-type", "tree-name", "tree-unknown-attr",
    "tree-list-attr", "tree-unknown-type", "tree-unsupported-url", "tree-relative-path",
    "tree-nar-mismatch", "tree-git-nar-mismatch", "tree-rev-count-mismatch"]


def test_every_error_case_is_checked(fx):
    assert list(_error_cases(fx)) == ERROR_CASES


@pytest.mark.parametrize("case", ERROR_CASES)
def test_same_error_as_nix(case, fx, nix_cache, dtx):
    expr = _error_cases(fx)[case]
    r = nix(expr, nix_cache, fx["root"])
    assert r.returncode != 0, r.stdout
    assert dtx.error(expr, fx["root"]) == first_error(r.stderr)


def test_hash_mismatch_shows_both_hashes(fx, dtx):
    expr = f'builtins.fetchurl {{ url = "{fx["http"]}/hello.txt"; sha256 = "{"0" * 52}"; }}'
    with pytest.raises(EvalError) as info:
        dtx.json(expr, fx["root"])
    got = hashlib.sha256(b"hello world\n").digest()
    from dtx.runtime.hashes import to_base32
    assert str(info.value) == (
        f"hash mismatch in file downloaded from '{fx['http']}/hello.txt':\n"
        f"  specified: sha256:{'0' * 52}\n"
        f"  got:       sha256:{to_base32(got)}")


# -- archives made to escape ----------------------------------------------------------------------

UNSAFE = {
    "dotdot": [_member("top/", tarfile.DIRTYPE), _member("top/../escaped")],
    "absolute": [_member("/top/", tarfile.DIRTYPE), _member("/top/escaped")],
    "through-symlink": [_member("top/", tarfile.DIRTYPE),
                        _member("top/l", tarfile.SYMTYPE, "@OUTSIDE@"),
                        _member("top/l/escaped")],
    "hardlink-outside": [_member("top/", tarfile.DIRTYPE),
                         _member("top/h", tarfile.LNKTYPE, "@OUTSIDE@/secret")],
    "hardlink-dotdot": [_member("top/", tarfile.DIRTYPE),
                        _member("top/h", tarfile.LNKTYPE, "../secret")],
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_archive_refused(name, fx, dtx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    members = []
    for info, data in UNSAFE[name]:
        info.linkname = info.linkname.replace("@OUTSIDE@", str(outside))
        members.append((info, data))
    fx["server"].files[f"/unsafe-{name}.tar.gz"] = _tar_of(members)
    message = dtx.error(f'fetchTarball "{fx["http"]}/unsafe-{name}.tar.gz"', tmp_path)
    assert message.startswith("error: failed to extract archive (")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "secret"
    assert not list(tmp_path.rglob("escaped")) and not Path("/escaped").exists()


def test_symlinks_pointing_out_are_data(fx, nix_cache, dtx):
    """A symlink to /etc is a symlink in the store, as Nix keeps it; it is never followed."""
    fx["server"].files["/symlink-out.tar.gz"] = _tar_of(
        [_member("top/", tarfile.DIRTYPE), _member("top/etc", tarfile.SYMTYPE, "/etc"),
         _member("top/up", tarfile.SYMTYPE, "../../..")])
    theirs, ours = both(f'fetchTarball "{fx["http"]}/symlink-out.tar.gz"', fx, nix_cache, dtx)
    assert ours == theirs
    assert os.readlink(os.path.join(dtx.store.real(ours), "etc")) == "/etc"


# -- the cache ------------------------------------------------------------------------------------

def _serve(fx, name: str, data: bytes) -> str:
    fx["server"].files["/" + name] = data
    return f'{fx["http"]}/{name}'


def test_second_fetch_uses_the_cache(fx, dtx, tmp_path, capfd):
    url = _serve(fx, "cached.tar.gz", _tar(_source_tree(tmp_path / "c"), "w:gz"))
    first = dtx.json(f'fetchTarball "{url}"', tmp_path)
    assert f"downloading '{url}'" in capfd.readouterr().err
    again = dtx.json(f'[ (fetchTarball "{url}") (fetchTarball "{url}") ]', tmp_path)
    assert again == [first, first]
    assert fx["server"].count("/cached.tar.gz") == 1
    assert "downloading" not in capfd.readouterr().err
    assert dtx.store.is_valid(first)


def test_known_hash_needs_no_download(fx, dtx, tmp_path):
    url = _serve(fx, "known.txt", b"known contents\n")
    sha = hashlib.sha256(b"known contents\n").hexdigest()
    path = dtx.json(f'builtins.fetchurl "{url}"', tmp_path)
    del fx["server"].files["/known.txt"]
    again = dtx.json(f'builtins.fetchurl {{ url = "{url}?other"; name = "known.txt"; '
                     f'sha256 = "{sha}"; }}', tmp_path)
    assert again == path
    assert fx["server"].count("/known.txt") == 1


def test_expired_entry_is_revalidated(fx, dtx, tmp_path, monkeypatch, capfd):
    """With the TTL over, the ETag is sent; "not modified" keeps the paths, new contents give
    a new path, and an unreachable server falls back on the cached copy with a warning."""
    url = _serve(fx, "ttl.tar.gz", _tar(_source_tree(tmp_path / "v1"), "w:gz"))
    first = dtx.json(f'fetchTarball "{url}"', tmp_path)
    monkeypatch.setenv("DTX_TARBALL_TTL", "0")
    assert dtx.json(f'fetchTarball "{url}"', tmp_path) == first
    assert fx["server"].count("/ttl.tar.gz", conditional=True) == 1
    tree = _source_tree(tmp_path / "v2")
    (tree / "a.txt").write_text("changed\n")
    _serve(fx, "ttl.tar.gz", _tar(tree, "w:gz"))
    second = dtx.json(f'fetchTarball "{url}"', tmp_path)
    assert second != first
    del fx["server"].files["/ttl.tar.gz"]
    capfd.readouterr()
    assert dtx.json(f'fetchTarball "{url}"', tmp_path) == second
    assert f"warning: unable to download '{url}': HTTP error 404; using cached version" \
        in capfd.readouterr().err


def test_default_ttl_is_nix_s(monkeypatch):
    from dtx.runtime.fetchcache import DEFAULT_TARBALL_TTL, tarball_ttl
    monkeypatch.delenv("DTX_TARBALL_TTL", raising=False)
    assert tarball_ttl() == DEFAULT_TARBALL_TTL == 3600
    monkeypatch.setenv("DTX_TARBALL_TTL", "60")
    assert tarball_ttl() == 60


def test_remote_repository_is_fetched_once_per_ttl(fx, dtx, tmp_path, monkeypatch, capfd):
    """A bare repository is cloned into the fetcher cache; within the TTL its branch is not
    fetched again (so a new commit is not seen, as in Nix), after it the new commit is."""
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(fx["repo"]), str(bare)], check=True)
    expr = f'(fetchGit {{ url = "file://{bare}"; ref = "main"; }}).rev'
    old = dtx.json(expr, tmp_path)
    assert capfd.readouterr().err.count("fetching Git repository") == 1
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True)
    (work / "f").write_text("pushed\n")
    git(work, "commit", "-qam", "pushed", date="2011-01-01T00:00:00Z")
    git(work, "push", "-q", "origin", "main")
    assert dtx.json(expr, tmp_path) == old
    assert "fetching Git repository" not in capfd.readouterr().err
    monkeypatch.setenv("DTX_TARBALL_TTL", "0")
    new = dtx.json(expr, tmp_path)
    assert new == git(bare, "rev-parse", "main") != old


# -- reporting and the command line ---------------------------------------------------------------

def _cli(command: str, *args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
    env.update(GIT_ENV, DTX_HOME=str(home))
    return subprocess.run([sys.executable, "-m", f"dtx.runtime.cli.{command}", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_eval_fetches_into_the_store(fx, tmp_path):
    """`dtx-instantiate --eval` fetches and adds to the store, as `nix-instantiate --eval`."""
    url = _serve(fx, "eval.tar.gz", _tar(_source_tree(tmp_path / "e"), "w:gz"))
    home = tmp_path / "home"
    r = _cli("instantiate", "--eval", "--strict", "-E",
             f'(import (fetchTarball "{url}")).answer', home=home, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr
    assert r.stderr == f"downloading '{url}'...\n"
    store = LocalStore(root=str(home))
    assert [p for p in store.all_valid_paths() if p.endswith("-source")]
    r = _cli("instantiate", "--eval", "-E", f'fetchTarball "{url}"', home=home, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""


def test_quiet_build_prints_no_progress(fx, tmp_path):
    url = _serve(fx, "quiet.txt", b"quiet\n")
    expr = (f'derivation {{ name = "q"; system = "builtin"; builder = "builtin:fetchurl"; '
            f'url = builtins.fetchurl "{url}"; outputHashMode = "flat"; '
            f'outputHashAlgo = "sha256"; outputHash = "{"0" * 64}"; }}')
    r = _cli("build", "--dry-run", "-E", expr, home=tmp_path / "loud", cwd=tmp_path)
    assert r.returncode == 0 and f"downloading '{url}'" in r.stderr, r.stderr
    r = _cli("build", "--quiet", "--dry-run", "-E", expr, home=tmp_path / "quiet",
             cwd=tmp_path)
    assert r.returncode == 0 and "downloading" not in r.stderr, r.stderr


def test_failures_are_errors_not_tracebacks(fx, tmp_path):
    r = _cli("instantiate", "--eval", "-E", f'builtins.fetchurl "{fx["http"]}/missing"',
             home=tmp_path / "h", cwd=tmp_path)
    assert r.returncode == 1
    assert first_error(r.stderr) == \
        f"error: unable to download '{fx['http']}/missing': HTTP error 404"
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("expr, message", [
    ('fetchMercurial "https://example.org/repo"', "'fetchMercurial' is not supported by dtx"),
    ('builtins.fetchTree { type = "github"; owner = "o"; repo = "r"; }',
     "'github' inputs are not supported by dtx"),
    ('builtins.fetchTree "hg+https://example.org/repo"',
     "'mercurial' inputs are not supported by dtx"),
])
def test_unsupported_fetchers_say_so(expr, message, dtx, tmp_path):
    assert dtx.error(expr, tmp_path) == f"error: {message}"


def test_connection_failures_are_said_in_curls_words(tmp_path):
    """Not requests' nested exception text: the reasons Nix (through curl) gives."""
    import socket

    from dtx.runtime import fetchurl
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logged: list[str] = []
    for url, reason in ((f"http://127.0.0.1:{port}/x", "Couldn't connect to server "
                         "(Connection refused)"),
                        ("http://no-such-host.invalid/x", "Couldn't resolve host name")):
        with pytest.raises(fetchurl.FetchError) as e:
            fetchurl.download(url, str(tmp_path / "dest"), logged.append)
        assert str(e.value) == f"unable to download '{url}': {reason}"
    assert logged and not any("HTTPConnectionPool" in line for line in logged)
