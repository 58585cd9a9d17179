"""Several processes on one store: the store's locking and atomic writes.

(a) Two processes add many objects at the same time (toFile texts, copied trees and derivations,
    half of them the same in both): both succeed, agree on every path, and the database is
    consistent afterwards: every valid path exists on disk with the NAR hash it was registered
    with, every reference is valid, every `.drv` parses.
(b) A process killed with SIGKILL while it writes a large store object leaves no registered
    partial path: the path is not valid afterwards, and adding it again gives the complete,
    correct object. The same holds for a leftover found at the final location (a crash between
    the rename and the registration).

The workers are forked with `multiprocessing`, so they share nothing with the test process but
the store directory.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from dtx.runtime import nar
from dtx.runtime.apply import call
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.glue import attach_store
from dtx.runtime.store import LocalStore
from dtx.runtime.values import force

FORK = multiprocessing.get_context("fork")

# `who` differs between the workers: paths built from `shared` are the same in both.
EXPR = """
who:
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  files = tag: builtins.genList (i: builtins.toFile "f-${tag}-${toString i}" "file ${toString i} of ${tag}\\n") 40;
  chain = tag: builtins.foldl' (prev: i: mk { name = "d-${tag}-${toString i}"; inherit prev; src = builtins.elemAt (files tag) i; })
    (mk { name = "root-${tag}"; }) (builtins.genList (i: i) 25);
  refs = tag: builtins.genList (i: builtins.toFile "r-${tag}-${toString i}" "see ${builtins.elemAt (files tag) i}") 15;
  all = tag: files tag ++ refs tag ++ [ (chain tag).drvPath (chain tag).outPath ];
in all "shared" ++ all who
"""


def _make_tree(root: str, n_files: int, size: int, seed: str) -> None:
    for i in range(n_files):
        d = os.path.join(root, f"d{i % 17:02d}", f"e{i % 5}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
            f.write((f"{seed}:{i}:".encode() * (size // 8 + 1))[:size])
    os.symlink("d00", os.path.join(root, "link"))


def _worker(root: str, who: str, trees: list[str], go, out) -> None:
    store = LocalStore(root=root)
    ev = Evaluator()
    attach_store(ev, store)
    fn = force(ev.eval_string(EXPR, "/"))
    go.wait()
    paths = []
    for i, tree in enumerate(trees):
        paths.append(store.add_path(tree, f"tree-{i}"))
    value = run_deep(lambda: [str(force(x)) for x in force(call(fn, who))])
    out.put((who, paths + value))


def check_consistent(store: LocalStore) -> list[str]:
    """Return the valid paths after asserting the database and the disk agree."""
    db = store.db
    valid = store.all_valid_paths()
    assert valid
    for path in valid:
        real = store.real(path)
        assert os.path.lexists(real), f"valid path {path} is missing on disk"
        info = store.query_info(path)
        digest, size = nar.nar_hash(real)
        assert (digest, size) == (info.nar_hash.digest, info.nar_size), path
        for ref in info.references:
            assert store.is_valid(ref), f"{path} refers to invalid {ref}"
        if path.endswith(".drv"):
            store._drv_cache.clear()
            store.read_derivation(path)
    (dangling,) = db.execute(
        "select count(*) from Refs where reference not in (select id from ValidPaths) "
        "or referrer not in (select id from ValidPaths)").fetchone()
    assert dangling == 0
    (fk,) = db.execute("select count(*) from pragma_foreign_key_check").fetchone()
    assert fk == 0
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    return valid


def test_two_processes_add_many_paths(tmp_path):
    root = str(tmp_path / "store")
    shared = str(tmp_path / "shared-tree")
    _make_tree(shared, 150, 300, "shared")
    trees = {}
    for who in ("a", "b"):
        own = str(tmp_path / f"tree-{who}")
        _make_tree(own, 150, 300, who)
        trees[who] = [shared, own]
    go, out = FORK.Event(), FORK.Queue()
    procs = [FORK.Process(target=_worker, args=(root, who, trees[who], go, out))
             for who in ("a", "b")]
    for p in procs:
        p.start()
    go.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    a, b = results["a"], results["b"]
    assert len(a) == len(b) == 2 + 2 * (40 + 15 + 2)
    half = 1 + 40 + 15 + 2  # the shared tree, then everything built from "shared"
    assert a[:1] == b[:1] and a[2:2 + half - 1] == b[2:2 + half - 1]
    assert set(a[1:2]).isdisjoint(b) and set(a[2 + half - 1:]).isdisjoint(b)

    store = LocalStore(root=root)
    valid = set(check_consistent(store))
    outputs = {p for p in a + b if not store.is_valid(p)}
    # Everything except derivation outputs (never built) is valid.
    assert all(not p.endswith(".drv") for p in outputs)
    assert len(outputs) == 3  # the final outPath of each chain: shared, a, b
    assert set(a + b) - outputs <= valid
    assert not [n for n in os.listdir(store.real_dir) if n.startswith(".tmp")]


def _slow_adder(root: str, src: str) -> None:
    LocalStore(root=root).add_path(src, "big")


def test_killed_writer_leaves_no_valid_partial_path(tmp_path):
    root = str(tmp_path / "store")
    src = str(tmp_path / "big")
    _make_tree(src, 1500, 1024, "big")
    store = LocalStore(root=root)
    path, _ = store.compute_path(src, "big")
    expected = nar.nar_hash(src)

    proc = FORK.Process(target=_slow_adder, args=(root, src))
    proc.start()
    deadline = time.monotonic() + 60
    partial = None
    while time.monotonic() < deadline and proc.is_alive():
        names = os.listdir(store.real_dir) if os.path.isdir(store.real_dir) else []
        tmps = [n for n in names if n.startswith(".tmp")]
        # The object is written under a temporary name (".tmp-…") next to its final place.
        if tmps and os.path.exists(os.path.join(store.real_dir, tmps[0], "d03")):
            partial = tmps[0]
            break
        time.sleep(0.001)
    assert partial is not None, "the writer finished before it could be interrupted"
    proc.kill()
    proc.join()
    assert proc.exitcode == -9

    assert not store.is_valid(path)
    # Whatever the writer left (a temporary tree) is not the object.
    assert not os.path.exists(store.real(path)) or not store.is_valid(path)

    assert store.add_path(src, "big") == path
    assert store.is_valid(path)
    assert nar.nar_hash(store.real(path)) == expected
    info = store.query_info(path)
    assert (info.nar_hash.digest, info.nar_size) == expected
    check_consistent(store)


def test_unregistered_leftover_at_final_path_is_replaced(tmp_path):
    """A crash between the rename into place and the registration leaves a complete-looking
    but unregistered object: it is not valid, and the next add replaces it."""
    store = LocalStore(root=str(tmp_path / "store"))
    src = str(tmp_path / "src")
    _make_tree(src, 20, 100, "src")
    path, _ = store.compute_path(src, "src")
    os.makedirs(store.real_dir, exist_ok=True)
    os.makedirs(os.path.join(store.real(path), "d00"))
    with open(os.path.join(store.real(path), "d00", "junk"), "w") as f:
        f.write("partial")
    assert not store.is_valid(path)
    assert store.add_path(src, "src") == path
    assert nar.nar_hash(store.real(path)) == nar.nar_hash(src)
    check_consistent(store)


@pytest.mark.parametrize("n", [4])
def test_many_processes_add_the_same_text(tmp_path, n):
    """n processes race to add the same texts: one object each, registered once."""
    root = str(tmp_path / "store")
    go = FORK.Event()

    def add():
        s = LocalStore(root=root)
        go.wait()
        for i in range(50):
            s.add_text(f"same-{i}", f"contents {i}\n")
    procs = [FORK.Process(target=add) for _ in range(n)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = LocalStore(root=root)
    assert len(check_consistent(store)) == 50
