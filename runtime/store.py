"""The local store: store objects on disk and their metadata in SQLite.

Layout, like a Nix chroot store: the logical store directory (`/nix/store` by default) lives
physically under a root directory (`DTX_HOME`, default `$XDG_DATA_HOME/dtx`), at
`<root>/nix/store`, with the state at `<root>/nix/var/nix` (the database `db/db.sqlite`, build
logs, GC roots, locks). Store paths are always *logical*; `real(path)` gives the file on disk.

Invariants:
- a path is valid iff it is registered in `ValidPaths`; only valid paths are trusted;
- an object is written under a temporary name, normalised (read-only, mtime 1), renamed into
  place, and only then registered, all under the path's lock: a crash leaves at worst an
  unregistered path, which the next writer replaces, never a registered half-written one;
- the references of a registered path are registered before it (closure invariant);
- many processes may use one store: per-path lock files serialise writers of the same path and
  SQLite (WAL, busy timeout) serialises metadata updates.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shutil
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from .derivation import Derivation, parse_derivation
from .hashes import Hash
from .nar import dump_flat_hash, file_nar_hash, nar_hash
from .storepath import (make_fixed_output_path, make_text_path, split_store_path,
                        to_store_path)

_SCHEMA = """
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);
create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);
create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);
create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
"""


_tmp_counter = itertools.count()


class StoreError(Exception):
    pass


@dataclass
class PathInfo:
    path: str
    nar_hash: Hash
    nar_size: int
    references: set[str]
    deriver: str | None = None
    registration_time: int = 0
    ca: str | None = None


def _retry_locked(fn, attempts: int = 600):
    """Run `fn`, retrying for up to a minute while SQLite says the database is locked."""
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def default_root() -> str:
    home = os.environ.get("DTX_HOME")
    if home:
        return os.path.abspath(home)
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "dtx")


def default_store_dir() -> str:
    return os.environ.get("DTX_STORE_DIR", "/nix/store").rstrip("/") or "/nix/store"


def canonicalise(path: str) -> None:
    """Make a freshly written tree read-only with mtime 1, as the store keeps everything."""
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            _canonicalise_one(os.path.join(dirpath, name))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                _canonicalise_one(p)
            else:
                os.chmod(p, 0o555)
                os.utime(p, (1, 1))
    _canonicalise_one(path)


def _canonicalise_one(p: str) -> None:
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        os.utime(p, (1, 1), follow_symlinks=False)
        return
    if stat.S_ISDIR(st.st_mode):
        os.chmod(p, 0o555)
    elif stat.S_ISREG(st.st_mode):
        os.chmod(p, 0o555 if st.st_mode & stat.S_IXUSR else 0o444)
    else:
        raise StoreError(f"file '{p}' has an unsupported type")
    os.utime(p, (1, 1))


def move_into_store(tmp: str, real: str) -> None:
    """Rename a canonicalised tree into place. A directory needs write permission to be
    renamed (its `..` changes), so its own mode is restored only after the move."""
    is_dir = os.path.isdir(tmp) and not os.path.islink(tmp)
    if is_dir:
        os.chmod(tmp, 0o755)
    os.rename(tmp, real)
    if is_dir:
        os.chmod(real, 0o555)
        os.utime(real, (1, 1))


def make_writable(path: str) -> None:
    """Give the owner write access to a tree again (before deleting it)."""
    if os.path.islink(path) or not os.path.exists(path):
        return
    if os.path.isdir(path):
        os.chmod(path, 0o755)
        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)


def remove_tree(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        make_writable(path)
        shutil.rmtree(path)


class LocalStore:
    """A store rooted at `root` whose logical directory is `store_dir`. With `read_only`, paths
    are computed but nothing is written (what `--eval` and `--dry-run` need)."""

    def __init__(self, root: str | None = None, store_dir: str | None = None,
                 read_only: bool = False):
        self.root = os.path.abspath(root or default_root())
        self.store_dir = (store_dir or default_store_dir()).rstrip("/")
        self.real_dir = os.path.join(self.root, self.store_dir.lstrip("/"))
        self.state_dir = os.path.join(self.root, "nix", "var", "nix")
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._drv_cache: dict[str, Derivation] = {}
        # References of paths computed but not written (read-only mode), for closures.
        self._unwritten_refs: dict[str, set[str]] = {}
        self._local = threading.local()
        self._dirs_ready = False

    # -- set-up -----------------------------------------------------------------------------

    def _ensure_dirs(self) -> None:
        if self._dirs_ready:
            return
        for d in (self.real_dir, os.path.join(self.state_dir, "db"),
                  os.path.join(self.state_dir, "locks"),
                  os.path.join(self.state_dir, "gcroots", "auto"),
                  os.path.join(self.state_dir, "log")):
            os.makedirs(d, exist_ok=True)
        self._dirs_ready = True

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "db", None)
        if conn is None:
            self._ensure_dirs()
            conn = sqlite3.connect(os.path.join(self.state_dir, "db", "db.sqlite"),
                                   timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("pragma busy_timeout = 60000")
            # Switching a new database to WAL needs an exclusive lock, and SQLite reports
            # "database is locked" at once (without waiting) when another process opens the
            # database at that moment; retry until one of them has done it.
            _retry_locked(lambda: conn.execute("pragma journal_mode = wal"))
            conn.execute("pragma synchronous = normal")
            conn.execute("pragma foreign_keys = on")

            def create_schema():
                with self._transaction(conn):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
            _retry_locked(create_schema)
            self._local.db = conn
        return conn

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection):
        conn.execute("begin immediate")
        try:
            yield conn
        except BaseException:
            conn.execute("rollback")
            raise
        else:
            conn.execute("commit")

    def transaction(self):
        return self._transaction(self.db)

    # -- paths ------------------------------------------------------------------------------

    def real(self, path: str) -> str:
        """The physical location of a logical store path (or a file inside one)."""
        if not path.startswith(self.store_dir + "/"):
            raise StoreError(f"path '{path}' is not in the Nix store")
        return self.real_dir + path[len(self.store_dir):]

    def logical(self, real_path: str) -> str:
        """The logical path of a physical location inside the store directory."""
        real_path = os.path.abspath(real_path)
        if real_path.startswith(self.real_dir + "/"):
            return self.store_dir + real_path[len(self.real_dir):]
        return real_path

    def check_store_path(self, path: str) -> str:
        split_store_path(path, self.store_dir)
        return path

    def to_store_path(self, path: str) -> str:
        return to_store_path(path, self.store_dir)

    @contextlib.contextmanager
    def lock_path(self, path: str):
        """Hold the exclusive lock of a store path (a lock file under the state directory)."""
        self._ensure_dirs()
        name = os.path.basename(path)
        fd = os.open(os.path.join(self.state_dir, "locks", name + ".lock"),
                     os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- queries ----------------------------------------------------------------------------

    def is_valid(self, path: str) -> bool:
        if self.read_only and not os.path.exists(os.path.join(self.state_dir, "db",
                                                              "db.sqlite")):
            return False  # do not create a store just to learn that it is empty
        row = self.db.execute("select 1 from ValidPaths where path = ?", (path,)).fetchone()
        return row is not None

    def query(self, path: str) -> PathInfo | None:
        row = self.db.execute(
            "select id, hash, narSize, deriver, registrationTime, ca from ValidPaths "
            "where path = ?", (path,)).fetchone()
        if row is None:
            return None
        pid, h, size, deriver, reg, ca = row
        refs = {r for (r,) in self.db.execute(
            "select v.path from Refs r join ValidPaths v on r.reference = v.id "
            "where r.referrer = ?", (pid,))}
        return PathInfo(path, Hash.parse(h), size, refs, deriver, reg, ca)

    def query_info(self, path: str) -> PathInfo:
        info = self.query(path)
        if info is None:
            raise StoreError(f"path '{path}' is not valid")
        return info

    def references(self, path: str) -> set[str]:
        refs = self._unwritten_refs.get(path)
        if refs is not None:
            return refs
        return self.query_info(path).references

    def referrers(self, path: str) -> set[str]:
        return {r for (r,) in self.db.execute(
            "select v.path from Refs r join ValidPaths v on r.referrer = v.id "
            "where r.reference = (select id from ValidPaths where path = ?)", (path,))}

    def all_valid_paths(self) -> list[str]:
        return [p for (p,) in self.db.execute("select path from ValidPaths order by path")]

    def closure(self, paths: Iterable[str], include_outputs: bool = False) -> set[str]:
        """All paths reachable from `paths` through references (the paths included); with
        `include_outputs`, a derivation's valid outputs too."""
        return self._walk(paths, self.references, include_outputs)

    def referrers_closure(self, paths: Iterable[str], include_outputs: bool = False) -> set[str]:
        """All paths from which `paths` are reachable through references (the paths
        included); with `include_outputs`, a derivation's valid outputs too."""
        return self._walk(paths, self.referrers, include_outputs)

    def _walk(self, paths: Iterable[str], step, include_outputs: bool) -> set[str]:
        seen: set[str] = set()
        todo = list(paths)
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            todo.extend(step(p))
            if include_outputs and p.endswith(".drv") and self.is_valid(p):
                todo.extend(o for o in self.derivation_outputs(p).values() if self.is_valid(o))
        return seen

    def derivation_outputs(self, drv_path: str) -> dict[str, str]:
        return {name: o.path for name, o in self.read_derivation(drv_path).outputs.items()}

    def valid_derivers(self, path: str) -> list[str]:
        return [d for (d,) in self.db.execute(
            "select v.path from DerivationOutputs d join ValidPaths v on d.drv = v.id "
            "where d.path = ?", (path,))]

    # -- adding -----------------------------------------------------------------------------

    def register(self, info: PathInfo) -> None:
        """Record a path (already in place on disk) as valid, with its references."""
        self.register_many([info])

    def register_many(self, infos: list[PathInfo]) -> None:
        """Record several paths as valid in one transaction; they may refer to each other."""
        conn = self.db
        with self._transaction(conn):
            self._insert(conn, infos)

    def _insert(self, conn, infos: list[PathInfo]) -> None:
        ids = {}
        for info in infos:
            conn.execute(
                "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, "
                "ultimate, ca) values (?, ?, ?, ?, ?, ?, ?) on conflict(path) do update set "
                "hash = excluded.hash, registrationTime = excluded.registrationTime, "
                "deriver = excluded.deriver, narSize = excluded.narSize, ca = excluded.ca",
                (info.path, f"{info.nar_hash.algo}:{info.nar_hash.base16()}",
                 info.registration_time or int(time.time()), info.deriver,
                 info.nar_size, 1, info.ca))
            (ids[info.path],) = conn.execute("select id from ValidPaths where path = ?",
                                             (info.path,)).fetchone()
        for info in infos:
            pid = ids[info.path]
            conn.execute("delete from Refs where referrer = ?", (pid,))
            for ref in info.references:
                row = conn.execute("select id from ValidPaths where path = ?",
                                   (ref,)).fetchone()
                if row is None:
                    raise StoreError(f"cannot register '{info.path}': its reference "
                                     f"'{ref}' is not valid")
                conn.execute("insert or ignore into Refs (referrer, reference) "
                             "values (?, ?)", (pid, row[0]))
            if info.path.endswith(".drv"):
                drv = self.read_derivation(info.path)
                for name, out in drv.outputs.items():
                    conn.execute("insert or replace into DerivationOutputs (drv, id, path) "
                                 "values (?, ?, ?)", (pid, name, out.path))

    def _install(self, path: str, write: Callable[[str], None], references: set[str],
                 deriver: str | None = None, ca: str | None = None,
                 nar: tuple[bytes, int] | None = None) -> str:
        """Write a store object with `write(tmp_real_path)` unless it is already valid.

        The object is written and hashed under a temporary name (`nar`, the NAR's digest and
        size, when the caller knows them: a text file); then, inside one database write
        transaction (which serialises installers across processes), it is moved into place and
        registered unless someone else registered it meanwhile."""
        if self.read_only:
            if not self.is_valid(path):
                self._unwritten_refs[path] = set(references)
            return path
        if self.is_valid(path):
            return path
        self._ensure_dirs()
        tmp = os.path.join(self.real_dir,
                           f".tmp-{os.getpid()}-{next(_tmp_counter)}-{os.path.basename(path)}")
        try:
            write(tmp)
            canonicalise(tmp)
            digest, size = nar if nar is not None else nar_hash(tmp)
            info = PathInfo(path, Hash("sha256", digest), size, set(references), deriver, ca=ca)
            conn = self.db
            with self._transaction(conn):
                if conn.execute("select 1 from ValidPaths where path = ?",
                                (path,)).fetchone() is None:
                    real = self.real(path)
                    if os.path.lexists(real):
                        remove_tree(real)  # left by an interrupted write: never registered
                    move_into_store(tmp, real)
                    self._insert(conn, [info])
        finally:
            if os.path.lexists(tmp):
                remove_tree(tmp)
        return path

    def add_text(self, name: str, text: str | bytes, references: Iterable[str] = ()) -> str:
        """Add a text file (toFile, `.drv` files); return its path."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        refs = set(references)
        path = make_text_path(name, data, refs, self.store_dir)

        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data)
        return self._install(path, write, refs,
                             ca=f"text:sha256:{Hash.of('sha256', data).base32()}",
                             nar=file_nar_hash(data))

    def compute_path(self, src: str, name: str, recursive: bool = True, algo: str = "sha256",
                     path_filter: Callable[[str], bool] | None = None,
                     references: Iterable[str] = ()) -> tuple[str, Hash]:
        """The store path `add_path` would give, and the content hash it is based on."""
        if recursive:
            h = Hash(algo, nar_hash(src, algo, path_filter)[0])
        else:
            if not os.path.isfile(src) or os.path.islink(src):
                raise StoreError(f"cannot add '{src}' flat: it is not a regular file")
            h = Hash(algo, dump_flat_hash(src, algo))
        return make_fixed_output_path(recursive, h, name, self.store_dir, sorted(references)), h

    def add_path(self, src: str, name: str | None = None, recursive: bool = True,
                 algo: str = "sha256",
                 path_filter: Callable[[str], bool] | None = None,
                 references: Iterable[str] = ()) -> str:
        """Copy a file or tree into the store (content-addressed, referring to `references`,
        which only a recursive SHA-256 path may have); return its path."""
        name = name or os.path.basename(src.rstrip("/"))
        refs = set(references)
        path, h = self.compute_path(src, name, recursive, algo, path_filter, refs)

        def write(tmp):
            _copy_tree(src, tmp, path_filter)
        ca = f"fixed:{'r:' if recursive else ''}{algo}:{h.base32()}"
        return self._install(path, write, refs, ca=ca)

    def write_derivation(self, drv: Derivation) -> str:
        text = drv.unparse()
        path = make_text_path(drv.name + ".drv", text.encode(), drv.references(),
                              self.store_dir)
        self._drv_cache[path] = drv
        return self.add_text(drv.name + ".drv", text, drv.references())

    def read_derivation(self, path: str) -> Derivation:
        drv = self._drv_cache.get(path)
        if drv is None:
            try:
                with open(self.real(path), encoding="utf-8", errors="surrogateescape") as f:
                    text = f.read()
            except FileNotFoundError:
                raise StoreError(f"derivation '{path}' does not exist in the store") from None
            name = split_store_path(path, self.store_dir)[1][:-len(".drv")]
            drv = parse_derivation(text, name)
            self._drv_cache[path] = drv
        return drv

    # -- removing ---------------------------------------------------------------------------

    def delete_path(self, path: str) -> None:
        """Remove a valid path that nothing valid refers to (the caller checks roots). The
        files are moved aside inside the transaction that unregisters the path, so no
        concurrent writer can see the path invalid while its old files are still in place."""
        with self.lock_path(path):
            trash = None
            with self.transaction() as conn:
                others = self.referrers(path) - {path}
                if others:
                    raise StoreError(f"cannot delete path '{path}' since it is still alive "
                                     f"(referenced by '{sorted(others)[0]}')")
                # A path may refer to itself: drop its own references first, or the reference
                # side of that row would forbid deleting it.
                conn.execute("delete from Refs where referrer = (select id from ValidPaths "
                             "where path = ?)", (path,))
                conn.execute("delete from ValidPaths where path = ?", (path,))
                real = self.real(path)
                if os.path.lexists(real):
                    trash = os.path.join(self.real_dir,
                                         f".trash-{os.getpid()}-{next(_tmp_counter)}")
                    if os.path.isdir(real) and not os.path.islink(real):
                        os.chmod(real, 0o755)
                    os.rename(real, trash)
            if trash is not None:
                remove_tree(trash)


def _copy_tree(src: str, dest: str, path_filter) -> None:
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o755 if st.st_mode & stat.S_IXUSR else 0o644)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dest, 0o755)
        for name in sorted(os.listdir(src)):
            child = os.path.join(src, name)
            if path_filter is not None and not path_filter(child):
                continue
            _copy_tree(child, os.path.join(dest, name), path_filter)
    else:
        raise StoreError(f"file '{src}' has an unsupported type")
