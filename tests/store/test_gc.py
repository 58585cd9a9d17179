"""Garbage collection: roots (direct, indirect `result` links, profiles), liveness, deletion
order, and `dtx-store --gc` / `--delete` output."""

from __future__ import annotations

import io
import os

import pytest

from dtx.runtime import gc
from dtx.runtime.cli import store as store_cli
from dtx.runtime.derivation import Derivation, Output
from dtx.runtime.store import LocalStore


@pytest.fixture
def store(tmp_path):
    return LocalStore(str(tmp_path / "home"))


@pytest.fixture
def chain(store):
    """leaf <- mid <- top (each refers to the previous), and an unrelated path."""
    leaf = store.add_text("leaf", "leaf")
    mid = store.add_text("mid", f"mid {leaf}", [leaf])
    top = store.add_text("top", f"top {mid}", [mid])
    other = store.add_text("other", "unrelated")
    return leaf, mid, top, other


def cli(store, argv):
    out = io.BytesIO()
    status = store_cli.run(argv, out=out, stdin=io.BytesIO(), store=store)
    return status, out.getvalue().decode()


def test_no_roots_everything_is_dead(store, chain):
    deleted, freed = gc.collect_garbage(store)
    assert set(deleted) == set(chain)
    # Referrers are deleted before what they refer to.
    leaf, mid, top, _ = chain
    assert deleted.index(top) < deleted.index(mid) < deleted.index(leaf)
    assert freed > 0
    assert store.all_valid_paths() == []
    assert not any(os.path.exists(store.real(p)) for p in chain)


def test_direct_root_keeps_its_closure(store, chain):
    leaf, mid, top, other = chain
    os.symlink(store.real(mid), os.path.join(store.state_dir, "gcroots", "mine"))
    dead = gc.collect_garbage(store, print_dead=True)[0]
    assert set(dead) == {top, other}
    assert store.is_valid(top)  # print_dead deletes nothing
    deleted, _ = gc.collect_garbage(store)
    assert set(deleted) == {top, other}
    assert set(store.all_valid_paths()) == {leaf, mid}


def test_logical_root_and_profiles(store, chain):
    leaf, mid, top, other = chain
    profiles = os.path.join(store.state_dir, "profiles")
    os.makedirs(profiles)
    os.symlink(other, os.path.join(profiles, "default-1-link"))  # a logical target
    os.symlink(store.real(leaf) + "/", os.path.join(store.state_dir, "gcroots", "l"))
    assert set(gc.find_roots(store)) == {other, leaf}
    assert set(gc.collect_garbage(store)[0]) == {top, mid}


def test_indirect_root(store, chain, tmp_path):
    leaf, mid, top, other = chain
    result = tmp_path / "result"
    os.symlink(store.real(top), result)
    auto = gc.add_indirect_root(store, str(result))
    assert os.readlink(auto) == str(result)
    assert gc.find_roots(store) == {top: {str(result)}}
    assert cli(store, ["-q", "--roots", leaf]) == (0, f"{result} -> {top}\n")
    assert gc.collect_garbage(store)[0] == [other]
    # Repointing the link elsewhere unroots the store path but keeps the auto link (as Nix).
    os.unlink(result)
    os.symlink(tmp_path, result)
    assert gc.find_roots(store) == {}
    assert os.path.islink(auto)
    # Once the link is gone, the auto link is stale and removed.
    os.unlink(result)
    deleted, _ = gc.collect_garbage(store)
    assert set(deleted) == {leaf, mid, top}
    assert not os.path.lexists(auto)


def test_keep_derivations(store):
    """A live output keeps its deriver and the deriver's closure (Nix's keep-derivations); a live
    .drv keeps nothing extra (keep-outputs is off)."""
    src = store.add_text("builder.sh", "echo hi")
    out = store.add_text("thing-out", "output")
    drv_path = store.write_derivation(Derivation(
        name="thing", outputs={"out": Output(out)}, input_srcs={src},
        platform="x86_64-linux", builder="/bin/sh", args=[src], env={"out": out}))
    info = store.query_info(out)
    info.deriver = drv_path
    store.register(info)
    other_out = store.add_text("other-out", "other output")
    other_drv = store.write_derivation(Derivation(
        name="other", outputs={"out": Output(other_out)}, platform="x86_64-linux",
        builder="/bin/sh", env={"out": other_out}))
    roots = os.path.join(store.state_dir, "gcroots")
    os.symlink(store.real(out), os.path.join(roots, "out"))
    os.symlink(store.real(other_drv), os.path.join(roots, "drv"))
    dead = set(gc.collect_garbage(store, print_dead=True)[0])
    assert dead == {other_out}
    assert gc.live_paths(store, [out]) == {out, drv_path, src}


def test_concurrent_referrer_keeps_a_dead_path(store, chain, monkeypatch):
    leaf, mid, top, other = chain
    real_sort = gc.topo_sort

    def sort_then_register(st, paths):
        order = real_sort(st, paths)
        # Another process registers a path referring to `other` after liveness was decided.
        st.add_text("late", f"late {other}", [other])
        return order
    monkeypatch.setattr(gc, "topo_sort", sort_then_register)
    deleted, _ = gc.collect_garbage(store)
    assert other not in deleted and store.is_valid(other)


def test_cli_gc_and_delete(store, chain, capsys, tmp_path):
    leaf, mid, top, other = chain
    os.symlink(store.real(mid), os.path.join(store.state_dir, "gcroots", "mine"))
    assert cli(store, ["--gc", "--print-dead"]) == (0, "".join(
        p + "\n" for p in sorted([top, other])))
    assert cli(store, ["--gc", "--print-live"]) == (0, "".join(
        p + "\n" for p in sorted([leaf, mid])))
    status, out = cli(store, ["--delete", leaf])
    assert (status, out) == (1, "0 store paths deleted, 0.00 MiB freed\n")
    assert (f"error: Cannot delete path '{leaf}' since it is still alive. To find out why, use: "
            "dtx-store --query --roots") in capsys.readouterr().err
    # top is dead and nothing refers to it: deleting it alone works (given as a physical path)
    assert cli(store, ["--delete", store.real(top)]) == (
        0, "1 store paths deleted, 0.00 MiB freed\n")
    assert f"deleting '{top}'" in capsys.readouterr().err
    os.unlink(os.path.join(store.state_dir, "gcroots", "mine"))
    # mid is referred to by nothing now but is asked for with its reference: both go
    assert cli(store, ["--delete", leaf, mid])[0] == 0
    status, out = cli(store, ["--gc"])
    assert (status, out) == (0, "1 store paths deleted, 0.00 MiB freed\n")
    assert cli(store, ["--gc", "--bogus"])[0] == 1


def test_delete_refuses_path_with_other_referrer(store, chain, capsys):
    leaf, mid, top, other = chain
    assert cli(store, ["--delete", mid])[0] == 1
    assert "since it is still alive" in capsys.readouterr().err
    assert store.is_valid(mid)
    assert cli(store, ["--delete", mid, top])[0] == 0
    assert not store.is_valid(mid) and store.is_valid(leaf)


def test_show_bytes():
    assert gc.show_bytes(0) == "0.00 MiB"
    assert gc.show_bytes(3 * 1024 * 1024 + 512 * 1024) == "3.50 MiB"


def test_path_that_refers_to_itself_is_collected(store):
    # Build outputs often mention their own path (a RUNPATH into their own lib/).
    from dtx.runtime.hashes import Hash
    from dtx.runtime.store import PathInfo
    path = store.store_dir + "/" + "1" * 32 + "-selfref"
    os.makedirs(store.real_dir, exist_ok=True)
    with open(store.real(path), "w") as f:
        f.write(path)
    store.register(PathInfo(path, Hash.of("sha256", b"x"), 1, {path}))
    assert store.references(path) == {path}
    deleted, _ = gc.collect_garbage(store)
    assert deleted == [path]
    assert not store.is_valid(path) and not os.path.exists(store.real(path))
