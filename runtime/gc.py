"""Garbage collection: which store paths are roots, which are live, and deleting the rest.

Roots are found as Nix finds them, under `<state_dir>/gcroots/` and `<state_dir>/profiles/`,
followed recursively:
- a symlink pointing into the store (logical `/nix/store/…` or the physical store under the
  store's root) is a direct root;
- a symlink pointing elsewhere is an indirect root: `gcroots/auto/<hash>` points at a link
  somewhere on disk (a `result` link) which points into the store. If that link is gone, the
  auto link is stale and is removed; if it exists but is not a symlink into the store, it roots
  nothing;
- a regular file whose name is a valid store path's base name roots that path.

Live paths are the closure of the roots, plus (Nix's default `keep-derivations`) the derivers of
live outputs and their closures. A `.drv` being live keeps nothing extra (`keep-outputs` off).
Everything else valid is dead.

Deletion runs under the store's GC lock, in reverse topological order (referrers before the paths
they refer to), each path under its own lock through `LocalStore.delete_path`, which refuses a
path some valid path still refers to: a path registered concurrently that refers to a dead path
keeps it alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import sys
from typing import Iterable

from .hashes import hash_bytes, to_base32
from .store import LocalStore, StoreError
from .storepath import BadStorePath, split_store_path, to_store_path


class PathAlive(StoreError):
    pass


def _in_store(store: LocalStore, target: str) -> str | None:
    """The logical store path a link target (logical or physical) lies in, or None."""
    target = os.path.normpath(target)
    if target.startswith(store.real_dir + "/"):
        target = store.logical(target)
    if not target.startswith(store.store_dir + "/"):
        return None
    try:
        path = to_store_path(target, store.store_dir)
        split_store_path(path, store.store_dir)
    except BadStorePath:
        return None
    return path


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def find_roots(store: LocalStore, quiet: bool = False) -> dict[str, set[str]]:
    """Map each rooted valid store path to the links (files) that root it."""
    roots: dict[str, set[str]] = {}
    auto_dir = os.path.join(store.state_dir, "gcroots", "auto")

    def found(link: str, target: str) -> None:
        path = _in_store(store, target)
        if path is None:
            return
        if store.is_valid(path):
            roots.setdefault(path, set()).add(link)
        elif not quiet:
            _note(f"skipping invalid root from '{link}' to '{target}'")

    def visit(path: str) -> None:
        try:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                for name in sorted(os.listdir(path)):
                    visit(os.path.join(path, name))
            elif stat.S_ISLNK(st.st_mode):
                target = os.path.join(os.path.dirname(path), os.readlink(path))
                if _in_store(store, target) is not None:
                    found(path, target)
                    return
                target = os.path.normpath(target)
                if not os.path.lexists(target):
                    if os.path.dirname(path) == auto_dir:
                        if not quiet:
                            _note(f"removing stale link from '{path}' to '{target}'")
                        os.unlink(path)
                    return
                if os.path.islink(target):
                    found(target, os.path.join(os.path.dirname(target), os.readlink(target)))
            elif stat.S_ISREG(st.st_mode):
                candidate = f"{store.store_dir}/{os.path.basename(path)}"
                if _in_store(store, candidate) == candidate and store.is_valid(candidate):
                    roots.setdefault(candidate, set()).add(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            if not quiet:
                _note(f"cannot read potential root '{path}'")

    for top in ("gcroots", "profiles"):
        d = os.path.join(store.state_dir, top)
        if os.path.isdir(d):
            visit(d)
    return roots


def add_root_link(store: LocalStore, link: str, path: str) -> str:
    """Point the symlink `link` at the store path `path` (where the store keeps it) and
    register it as an indirect root (`result` of dtx-build, `--add-root`); return its path."""
    link = os.path.abspath(link)
    tmp = f"{link}.tmp-{os.getpid()}"
    os.symlink(store.real(path), tmp)
    os.replace(tmp, link)
    add_indirect_root(store, link)
    return link


def add_indirect_root(store: LocalStore, link_path: str) -> str:
    """Register `link_path` (a `result`-style symlink) as an indirect root; return the auto link.
    The root lasts as long as the link exists and points into the store."""
    link_path = os.path.abspath(link_path)
    name = to_base32(hash_bytes("sha1", link_path.encode()))
    auto_dir = os.path.join(store.state_dir, "gcroots", "auto")
    os.makedirs(auto_dir, exist_ok=True)
    auto = os.path.join(auto_dir, name)
    tmp = f"{auto}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(link_path, tmp)
    os.replace(tmp, auto)
    return auto


def live_paths(store: LocalStore, roots: Iterable[str]) -> set[str]:
    """The closure of `roots`, with the derivers of live outputs kept (keep-derivations)."""
    live = store.closure(roots)
    todo = list(live)
    while todo:
        path = todo.pop()
        info = store.query(path)
        deriver = info.deriver if info else None
        if deriver and deriver not in live and store.is_valid(deriver):
            try:
                outputs = set(store.derivation_outputs(deriver).values())
            except StoreError:
                continue
            if path in outputs:
                new = store.closure([deriver]) - live
                live |= new
                todo.extend(new)
    return live


def topo_sort(store: LocalStore, paths: Iterable[str]) -> list[str]:
    """Sort `paths` so that each path comes before the paths (of the set) it refers to, as
    Nix's topoSortPaths does (a depth-first search over the sorted set)."""
    items = set(paths)
    order: list[str] = []
    visited: set[str] = set()
    for start in sorted(items, key=_base):
        if start in visited:
            continue
        # Iterative post-order DFS: children (references) first.
        visited.add(start)
        stack = [(start, iter(sorted((store.references(start) & items) - {start}, key=_base)))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(sorted((store.references(child) & items)
                                                     - {child}, key=_base))))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@contextlib.contextmanager
def gc_lock(store: LocalStore):
    """Hold the store's garbage collector lock (one collector at a time)."""
    os.makedirs(store.state_dir, exist_ok=True)
    fd = os.open(os.path.join(store.state_dir, "gc.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tree_size(real: str) -> int:
    total = 0
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    for dirpath, dirnames, filenames in os.walk(real):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _delete(store: LocalStore, path: str, quiet: bool) -> int:
    """Delete one path (valid or not); return the bytes freed."""
    if not quiet:
        _note(f"deleting '{path}'")
    real = store.real(path)
    size = _tree_size(real)
    if store.is_valid(path):
        store.delete_path(path)
    else:
        from .store import remove_tree
        with store.lock_path(path):
            remove_tree(real)
    return size


def dead_paths(store: LocalStore, quiet: bool = False) -> tuple[set[str], set[str]]:
    """Return (live, dead) valid paths."""
    roots = find_roots(store, quiet)
    live = live_paths(store, roots)
    dead = set(store.all_valid_paths()) - live
    return live, dead


def collect_garbage(store: LocalStore, print_dead: bool = False,
                    quiet: bool = True) -> tuple[list[str], int]:
    """Delete every valid path not reachable from a root; return (deleted paths, bytes freed).
    With `print_dead`, delete nothing and return the dead paths (and 0)."""
    with gc_lock(store):
        if not quiet:
            _note("finding garbage collector roots...")
        _, dead = dead_paths(store, quiet=quiet)
        if print_dead:
            return topo_sort(store, dead), 0
        if not quiet:
            _note("deleting garbage...")
        deleted: list[str] = []
        freed = 0
        for path in topo_sort(store, dead):
            try:
                freed += _delete(store, path, quiet)
            except StoreError:
                continue  # something new refers to it: it stays
            deleted.append(path)
        return deleted, freed


def delete_paths(store: LocalStore, paths: Iterable[str],
                 quiet: bool = True) -> tuple[list[str], int, PathAlive | None]:
    """Delete specific paths, refusing live ones (reachable from a root, or referred to by a path
    not being deleted). Return (deleted, bytes freed, the error that stopped it or None)."""
    wanted = set(paths)
    deleted: list[str] = []
    freed = 0
    with gc_lock(store):
        if not quiet:
            _note("finding garbage collector roots...")
        live = live_paths(store, find_roots(store, quiet=True))
        valid = {p for p in wanted if store.is_valid(p)}
        order = topo_sort(store, valid) + sorted(wanted - valid, key=_base)
        for path in order:
            alive = path in live
            if not alive and path in valid:
                alive = any(r not in wanted or r in live
                            for r in store.referrers(path) - {path})
            if alive:
                return deleted, freed, PathAlive(
                    f"Cannot delete path '{path}' since it is still alive. To find out why, use: "
                    "dtx-store --query --roots")
            try:
                freed += _delete(store, path, quiet)
            except StoreError as e:
                return deleted, freed, PathAlive(str(e))
            deleted.append(path)
    return deleted, freed, None


def show_bytes(n: int) -> str:
    """Format a byte count as Nix's summary lines do."""
    return f"{n / (1024 * 1024):.2f} MiB"
