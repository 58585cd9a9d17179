"""dtx-store against nix-store (Nix 2.8): --dump byte for byte, --restore, --add/--add-fixed paths,
queries on a derivation graph built with dtx-instantiate, --export/--import (both ways with Nix),
--verify, --read-log, and store path arguments given as physical paths or `result` links."""

from __future__ import annotations

import bz2
import io
import os
import shutil
import subprocess

import pytest

from dtx.runtime.cli import store as store_cli
from dtx.runtime.store import LocalStore

NIX_STORE = shutil.which("nix-store")
needs_nix = pytest.mark.skipif(NIX_STORE is None, reason="nix-store (nix-bin) is not installed")


def dtx(store, argv, stdin=b""):
    """Run dtx-store in-process; return (status, stdout bytes)."""
    out = io.BytesIO()
    status = store_cli.run(argv, out=out, stdin=io.BytesIO(stdin), store=store)
    return status, out.getvalue()


def nix(argv, stdin=b""):
    r = subprocess.run(["nix-store", *argv], input=stdin, capture_output=True)
    return r.returncode, r.stdout


@pytest.fixture
def store(tmp_path):
    return LocalStore(str(tmp_path / "home"))


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "tree"
    (t / "nested" / "deeper").mkdir(parents=True)
    (t / "empty").mkdir()
    (t / "nested" / "emptier").mkdir()
    (t / "file").write_bytes(b"contents\n")
    (t / "nested" / "deeper" / "odd-size").write_bytes(b"x" * 13)
    exe = t / "nested" / "tool"
    exe.write_bytes(b"#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    os.symlink("file", t / "link")
    os.symlink("../file", t / "nested" / "uplink")
    os.symlink("/does/not/exist", t / "dangling")
    return t


# -- dump / restore / add --------------------------------------------------------------------

@needs_nix
def test_dump_equals_nix_store_dump(store, tree):
    assert dtx(store, ["--dump", str(tree)]) == nix(["--dump", str(tree)])
    assert dtx(store, ["--dump", str(tree / "nested" / "tool")]) == \
        nix(["--dump", str(tree / "nested" / "tool")])
    path = dtx(store, ["--add", str(tree)])[1].decode().strip()
    assert dtx(store, ["--dump", path])[1] == nix(["--dump", str(tree)])[1]


def test_restore_round_trip(store, tree, tmp_path):
    status, nar = dtx(store, ["--dump", str(tree)])
    assert status == 0
    assert dtx(store, ["--restore", str(tmp_path / "copy")], stdin=nar)[0] == 0
    assert dtx(store, ["--dump", str(tmp_path / "copy")])[1] == nar
    assert os.readlink(tmp_path / "copy" / "dangling") == "/does/not/exist"
    assert os.access(tmp_path / "copy" / "nested" / "tool", os.X_OK)
    assert dtx(store, ["--restore", str(tmp_path / "copy")], stdin=nar)[0] == 1
    assert dtx(store, ["--restore", str(tmp_path / "short")], stdin=nar[:100])[0] == 1


@needs_nix
def test_add_gives_nix_store_path(store, tree, tmp_path):
    copy = tmp_path / "copy-for-nix" / "tree"
    shutil.copytree(tree, copy, symlinks=True)
    status, out = dtx(store, ["--add", str(tree), str(tree / "file")])
    assert status == 0
    assert out == nix(["--add", str(copy), str(copy / "file")])[1]
    first = out.decode().split()[0]
    assert dtx(store, ["-q", "--hash", first]) == nix(["-q", "--hash", first])
    assert dtx(store, ["-q", "--size", first]) == nix(["-q", "--size", first])
    for argv in (["sha256", str(tree / "file")], ["sha1", str(tree / "file")],
                 ["--recursive", "sha256", str(tree)], ["--recursive", "sha512", str(tree)]):
        nix_argv = [a.replace(str(tree), str(copy)) for a in argv]
        assert dtx(store, ["--add-fixed", *argv]) == nix(["--add-fixed", *nix_argv])


def test_errors(store, capsys):
    assert dtx(store, [])[0] == 1
    assert "no operation specified" in capsys.readouterr().err
    assert dtx(store, ["-q", "--hash", "--size", "/nix/store/x"])[0] == 1
    assert "query type '--size' conflicts with earlier flag" in capsys.readouterr().err
    missing = "/nix/store/" + "a" * 32 + "-x"
    assert dtx(store, ["-q", "--hash", missing])[0] == 1
    assert capsys.readouterr().err == f"error: path '{missing}' is not valid\n"
    assert dtx(store, ["-q", "--hash", "/tmp"])[0] == 1
    assert capsys.readouterr().err == "error: path '/tmp' is not in the Nix store\n"


# -- queries on a derivation graph ------------------------------------------------------------

GRAPH = """
let
  f = builtins.toFile "dtx-store-test-input.txt" "dtx-store query test";
  a = derivation { name = "qa"; system = "x86_64-linux"; builder = "/bin/sh";
                   args = [ "-c" "echo" f ]; };
  b = derivation { name = "qb"; system = "x86_64-linux"; builder = "/bin/sh";
                   args = [ "-c" "${a}" ]; outputs = [ "out" "dev" ]; };
  c = derivation { name = "qc"; system = "x86_64-linux"; builder = "/bin/sh";
                   args = [ "${a} ${b.dev} ${f}" ]; };
  d = derivation { name = "qd"; system = "x86_64-linux"; builder = "/bin/sh";
                   args = [ "${c} ${b}" ]; };
in { inherit a b c d; }
"""


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """A dtx store holding the graph (made by dtx-instantiate), and the real store holding the
    same graph (made by nix-instantiate), with the top .drv path."""
    root = tmp_path_factory.mktemp("graph")
    (root / "graph.nix").write_text(GRAPH)
    env = dict(os.environ, DTX_HOME=str(root / "home"))
    r = subprocess.run(["dtx-instantiate", str(root / "graph.nix"), "-A", "d"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    drv = r.stdout.strip()
    if NIX_STORE is not None:
        r = subprocess.run(["nix-instantiate", str(root / "graph.nix"), "-A", "d"],
                           capture_output=True, text=True)
        assert r.stdout.strip() == drv
    return LocalStore(str(root / "home")), drv


QUERIES = [["--tree"], ["-R"], ["--requisites", "--include-outputs"], ["--graph"],
           ["--references"], ["--outputs"], ["--deriver"], ["--hash"], ["--size"]]


@needs_nix
@pytest.mark.parametrize("query", QUERIES, ids=" ".join)
def test_queries_match_nix_store(graph, query):
    store, drv = graph
    assert dtx(store, ["-q", *query, drv]) == nix(["-q", *query, drv])


@needs_nix
def test_referrers_match_nix_store(graph):
    store, drv = graph
    inputs = [p for p in dtx(store, ["-qR", drv])[1].decode().split() if p.endswith(".txt")]
    assert len(inputs) == 1
    for q in ("--referrers", "--referrers-closure"):
        assert dtx(store, ["-q", q, inputs[0]]) == nix(["-q", q, inputs[0]])


def test_query_outputs_and_tree_shape(graph):
    store, drv = graph
    tree = dtx(store, ["-q", "--tree", drv])[1].decode().splitlines()
    assert tree[0] == drv
    assert tree[1].startswith("├───") and any(t.startswith("└───") for t in tree)
    assert any(line.endswith(" [...]") for line in tree)
    outs = dtx(store, ["-q", "--outputs", drv])[1].decode().split()
    assert len(outs) == 1 and outs[0].endswith("-qd")


def test_physical_paths_and_result_links(graph, tmp_path):
    store, drv = graph
    physical = store.real(drv)
    link = tmp_path / "result"
    os.symlink(physical, link)
    chain = tmp_path / "result2"
    os.symlink(link, chain)
    expected = dtx(store, ["-qR", drv])
    assert dtx(store, ["-qR", physical]) == expected
    assert dtx(store, ["-qR", str(link)]) == expected
    assert dtx(store, ["-qR", str(chain)]) == expected


# -- export / import --------------------------------------------------------------------------

def test_export_import_round_trip(graph, tmp_path):
    store, drv = graph
    closure = dtx(store, ["-qR", drv])[1].decode().split()
    status, exported = dtx(store, ["--export", *closure])
    assert status == 0
    other = LocalStore(str(tmp_path / "other"))
    status, out = dtx(other, ["--import"], stdin=exported)
    assert status == 0
    assert sorted(out.decode().split()) == sorted(closure)
    for q in (["--tree"], ["--graph"], ["-R"], ["--hash"]):
        assert dtx(other, ["-q", *q, drv]) == dtx(store, ["-q", *q, drv])
    assert dtx(other, ["--verify", "--check-contents"])[0] == 0
    assert dtx(other, ["--import"], stdin=exported)[0] == 0  # importing again is a no-op
    assert dtx(other, ["--import"], stdin=b"\x02" + b"\0" * 7)[0] == 1


@needs_nix
def test_export_matches_nix_and_nix_imports_it(graph, store, tmp_path):
    g_store, drv = graph
    closure = dtx(g_store, ["-qR", drv])[1].decode().split()
    assert dtx(g_store, ["--export", *closure]) == nix(["--export", *closure])
    # A path only dtx has: nix-store --import must accept dtx's export of it.
    src = tmp_path / f"only-dtx-{os.getpid()}"
    src.write_bytes(os.urandom(64))
    path = dtx(store, ["--add", str(src)])[1].decode().strip()
    exported = dtx(store, ["--export", path])[1]
    try:
        assert nix(["--import"], stdin=exported) == (0, (path + "\n").encode())
        assert nix(["-q", "--hash", path]) == dtx(store, ["-q", "--hash", path])
    finally:
        nix(["--delete", path])


# -- verify / read-log ------------------------------------------------------------------------

def test_verify_detects_modified_and_missing_paths(store, tree, capsys):
    a = dtx(store, ["--add", str(tree)])[1].decode().strip()
    b = dtx(store, ["--add", str(tree / "file")])[1].decode().strip()
    assert dtx(store, ["--verify", "--check-contents"])[0] == 0
    real_file = os.path.join(store.real(a), "file")
    os.chmod(store.real(a), 0o755)
    os.chmod(real_file, 0o644)
    with open(real_file, "ab") as f:
        f.write(b"corrupted")
    capsys.readouterr()
    assert dtx(store, ["--verify"])[0] == 0  # without --check-contents nothing is read
    assert dtx(store, ["--verify", "--check-contents"])[0] == 1
    err = capsys.readouterr().err
    assert f"path '{a}' was modified! expected hash 'sha256:" in err
    assert "warning: not all store errors were fixed" in err
    os.chmod(store.real(b), 0o755)
    os.unlink(store.real(b))
    assert dtx(store, ["--verify"])[0] == 0
    assert f"path '{b}' disappeared, removing from database..." in capsys.readouterr().err
    assert not store.is_valid(b)


def test_read_log_plain_and_bz2(graph, tmp_path):
    store, drv = graph
    base = os.path.basename(drv)
    log_dir = os.path.join(store.state_dir, "log", "drvs", base[:2])
    os.makedirs(log_dir, exist_ok=True)
    log_file = os.path.join(log_dir, base[2:])
    with open(log_file, "wb") as f:
        f.write(b"building...\ndone\n")
    try:
        assert dtx(store, ["--read-log", drv]) == (0, b"building...\ndone\n")
        os.unlink(log_file)
        with open(log_file + ".bz2", "wb") as f:
            f.write(bz2.compress(b"compressed log\n"))
        assert dtx(store, ["-l", drv]) == (0, b"compressed log\n")
    finally:
        for name in (log_file, log_file + ".bz2"):
            if os.path.exists(name):
                os.unlink(name)
    assert dtx(store, ["--read-log", drv])[0] == 1


def test_console_script(tree, tmp_path):
    env = dict(os.environ, DTX_HOME=str(tmp_path / "cli-home"))
    r = subprocess.run(["dtx-store", "--add", str(tree)], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("/nix/store/")
    r2 = subprocess.run(["dtx-store", "--dump", r.stdout.strip()], env=env, capture_output=True)
    assert r2.returncode == 0 and r2.stdout[8:21] == b"nix-archive-1"
    r3 = subprocess.run(["dtx-store", "--frobnicate"], env=env, capture_output=True, text=True)
    assert r3.returncode == 1 and "Traceback" not in r3.stderr


DRV = '(derivation { name = "d"; system = "x86_64-linux"; builder = "/bin/sh"; })'


@needs_nix
@pytest.mark.parametrize("expr", [
    "1", "x: 1", "[ 1 ]", "{ a = 1; }", "[ [ ] { } ]", "[ { a = 1; } ]",
    "{ a = { recurseForDerivations = true; b = [ 2 ]; }; }",
    f"{{ z = {DRV}; a = [ {DRV} ]; }}", f"[ [ {DRV} ] ]",
    f"{{ a = {{ recurseForDerivations = true; b = {DRV}; }}; c = {{ d = {DRV}; }}; }}",
    f"[ ({{ x ? 1 }}: {DRV}) ]", '[ derivation { name = "q"; } ]',
])
def test_instantiate_finds_derivations_as_nix_does(tmp_path, expr):
    """Which values are (sets or lists of) derivations, and the error for the others."""
    env = dict(os.environ, DTX_HOME=str(tmp_path / "home"))
    ours = subprocess.run(["dtx-instantiate", "-E", expr], env=env, capture_output=True,
                          text=True)
    theirs = subprocess.run(["nix-instantiate", "-E", expr], capture_output=True, text=True)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.stderr.splitlines()[:1] == theirs.stderr.splitlines()[:1]


@needs_nix
def test_instantiate_add_root(tmp_path):
    """--add-root: the first root is PATH, then PATH-2, …; the roots are printed; without it
    Nix's warning, once."""
    env = dict(os.environ, DTX_HOME=str(tmp_path / "home"))
    expr = f'[ {DRV} (derivation {{ name = "e"; system = "x"; builder = "/b"; }}) ]'
    for tool, root in (("dtx-instantiate", tmp_path / "ours"), ("nix-instantiate",
                                                                  tmp_path / "theirs")):
        plain = subprocess.run([tool, "-E", expr], env=env, capture_output=True, text=True)
        assert plain.stderr.count("you did not specify '--add-root'") == 1
        rooted = subprocess.run([tool, "--add-root", str(root), "-E", expr], env=env,
                                capture_output=True, text=True)
        assert rooted.returncode == 0 and "warning" not in rooted.stderr
        assert rooted.stdout.split() == [str(root), f"{root}-2"]
        targets = [os.path.basename(os.readlink(p)) for p in rooted.stdout.split()]
        assert targets == [os.path.basename(p) for p in plain.stdout.split()]
    from dtx.runtime.gc import find_roots
    links = set().union(*find_roots(LocalStore(root=str(tmp_path / "home"))).values())
    assert {str(tmp_path / "ours"), str(tmp_path / "ours-2")} <= links
