"""Deterministic layer tarballs, and safe reading of layers made by others.

A layer is described by a `Tree`: a mapping from relative paths (`nix/store/…-x/bin/y`, no
leading `/` or `./`) to entries (directory, file, symlink). Trees are filled from store paths
(kept as they are in the store: read-only modes), from `contents`/`copyToRoot` paths merged at the
image root (as nixpkgs' `rsync -ak` then `chmod -R ug+w`: files and symlinks copied, directories
merged, symlinks to directories followed, a conflict won by the later path) and from staged
directories. `tree_plan` turns a tree into the plan of a tar (stream.py: the tar's bytes as
literal headers and ranges of the entries' files), which `write_tar` writes; the bytes depend
only on the tree and the timestamp:
- entries sorted by path, every parent directory present;
- mtime fixed (the image's `created`), uid/gid 0 with empty user and group names;
- GNU format (long names without pax headers, so no pax timestamps);
- hard links written as separate regular files.
Every tar is built from `tar_member` (a header exactly as `tarfile` writes it, the content,
the padding) and `tar_plan` (the end blocks), so a plan's bytes are `tarfile`'s.

Layers read from elsewhere (a base image, `tarballs`, the output of `extraCommands`) go through
`check_member`: absolute names, `..` components, device nodes, fifos, names that pass through a
symlink and hard links to anything but an earlier safe entry are dropped with a line in the build
log, and `extract` never writes outside its destination (it also refuses to create anything under
a symlink on disk).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import struct
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

from ..store import remove_tree
from .stream import file_plan, plan_size, write_plan

DEFAULT_MTIME = 1  # 1970-01-01T00:00:01Z, what nixpkgs' images use
COMPRESSORS = ("none", "gz", "zstd")
_CHUNK = 1 << 20

Log = Callable[[str], None]


class LayerError(Exception):
    pass


@dataclass
class Entry:
    kind: str  # "dir", "file" or "symlink"
    mode: int  # permission bits (with setuid/setgid/sticky)
    source: str | None = None  # host path holding a file's bytes
    target: str = ""  # a symlink's target


class Tree:
    """The entries of one layer, by relative path."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, path: str, entry: Entry) -> None:
        """Put `entry` at `path`, making parents directories; a later entry wins, except that
        a directory added over a directory merges with it (taking the later mode)."""
        path = _normal(path)
        if path is None:
            raise LayerError("invalid layer path")
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = self.entries.get(parent)
            if existing is None or existing.kind != "dir":
                if existing is not None:
                    self._remove(parent)
                self.entries[parent] = Entry("dir", 0o755)
        existing = self.entries.get(path)
        if existing is not None and not (existing.kind == "dir" and entry.kind == "dir"):
            self._remove(path)
        self.entries[path] = entry

    def _remove(self, path: str) -> None:
        prefix = path + "/"
        for p in [p for p in self.entries if p == path or p.startswith(prefix)]:
            del self.entries[p]

    def store_paths(self, store_dir: str) -> set[str]:
        """The top-level store paths this tree holds (as logical paths)."""
        prefix = store_dir.strip("/") + "/"
        found = set()
        for p in self.entries:
            if p.startswith(prefix):
                name = p[len(prefix):].split("/", 1)[0]
                if name:
                    found.add("/" + prefix + name)
        return found


def _normal(name: str) -> str | None:
    """A member name as a clean relative path, or None when it is unsafe (absolute, `..`)."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


# -- filling trees ----------------------------------------------------------------------------

def add_host_tree(tree: Tree, src: str, dest: str, mode_fn: Callable[[int], int] = lambda m: m,
                  resolve_dirlink: Callable[[str, str], str | None] | None = None) -> None:
    """Add the file tree at host path `src` under `dest` in `tree`. `mode_fn` maps each
    entry's permission bits; `resolve_dirlink(host_link, target)` returns the host directory a
    symlink stands for when it should be copied as that directory (rsync's `-k`), else None."""
    st = os.lstat(src)
    perm = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(src)
        real_dir = resolve_dirlink(src, target) if resolve_dirlink else None
        if real_dir is not None:
            _add_dir(tree, real_dir, dest, mode_fn, resolve_dirlink, 0o755)
        else:
            tree.add(dest, Entry("symlink", 0o777, target=target))
    elif stat.S_ISDIR(st.st_mode):
        _add_dir(tree, src, dest, mode_fn, resolve_dirlink, perm)
    elif stat.S_ISREG(st.st_mode):
        tree.add(dest, Entry("file", mode_fn(perm), source=src))
    else:
        raise LayerError(f"'{src}' is not a file, directory or symlink")


def _add_dir(tree, src, dest, mode_fn, resolve_dirlink, perm, depth=0) -> None:
    if depth > 40:
        raise LayerError(f"too many levels of directory symlinks at '{src}'")
    if dest:
        tree.add(dest, Entry("dir", mode_fn(perm)))
    for name in sorted(os.listdir(src)):
        child_src = os.path.join(src, name)
        child_dest = f"{dest}/{name}" if dest else name
        st = os.lstat(child_src)
        if stat.S_ISDIR(st.st_mode):
            _add_dir(tree, child_src, child_dest, mode_fn, resolve_dirlink,
                     stat.S_IMODE(st.st_mode), depth + 1)
        elif stat.S_ISLNK(st.st_mode) and resolve_dirlink is not None:
            real_dir = resolve_dirlink(child_src, os.readlink(child_src))
            if real_dir is not None:
                _add_dir(tree, real_dir, child_dest, mode_fn, resolve_dirlink, 0o755, depth + 1)
            else:
                tree.add(child_dest, Entry("symlink", 0o777, target=os.readlink(child_src)))
        else:
            add_host_tree(tree, child_src, child_dest, mode_fn, None)


def add_store_paths(tree: Tree, paths: Iterable[str], real: Callable[[str], str]) -> None:
    """Add store paths (logical names) as they are in the store, with their parents."""
    for path in sorted(paths):
        add_host_tree(tree, real(path), path.lstrip("/"))


def add_root_contents(tree: Tree, paths: Iterable[str], real: Callable[[str], str],
                      store_dir: str, log: Log) -> None:
    """Copy the top-level contents of each path to the image root, as nixpkgs does with
    `rsync -ak` and `chmod -R ug+w`: symlinks to directories of the store become directories."""
    store_prefix = store_dir.rstrip("/") + "/"

    def resolve_dirlink(host_link: str, target: str) -> str | None:
        if target.startswith("/"):
            if not target.startswith(store_prefix):
                return None
            try:
                host = real(target)
            except Exception:
                return None
        else:
            host = os.path.normpath(os.path.join(os.path.dirname(host_link), target))
        host = _resolve_in_store(host, real, store_prefix)
        return host if host is not None and os.path.isdir(host) else None

    writable = lambda m: m | 0o220  # noqa: E731  (chmod -R ug+w)
    for path in paths:
        host = real(path)
        log(f"adding contents of {path}")
        if os.path.isdir(host):
            for name in sorted(os.listdir(host)):
                add_host_tree(tree, os.path.join(host, name), name, writable, resolve_dirlink)
        else:
            add_host_tree(tree, host, os.path.basename(path), writable, resolve_dirlink)


def _resolve_in_store(host: str, real, store_prefix: str, depth: int = 0) -> str | None:
    """Follow symlinks of a host path whose absolute targets are logical store paths."""
    if depth > 40:
        return None
    if os.path.islink(host):
        target = os.readlink(host)
        if target.startswith("/"):
            if not target.startswith(store_prefix):
                return None
            try:
                nxt = real(target)
            except Exception:
                return None
        else:
            nxt = os.path.normpath(os.path.join(os.path.dirname(host), target))
        return _resolve_in_store(nxt, real, store_prefix, depth + 1)
    return host


# -- writing ----------------------------------------------------------------------------------

class _HashingWriter:
    def __init__(self, f: BinaryIO):
        self.f = f
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.f.flush()


def tar_member(info: tarfile.TarInfo, content: list | None = None) -> list:
    """The plan of one tar member as `tarfile` writes it in GNU format: the header (long names
    in `././@LongLink` entries), then `content` (a plan of `info.size` bytes) padded to a
    block."""
    plan: list = [info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")]
    if content:
        if plan_size(content) != info.size:
            raise LayerError(f"tar member '{info.name}': {plan_size(content)} bytes of "
                             f"content for a size of {info.size}")
        plan += content
        if info.size % tarfile.BLOCKSIZE:
            plan.append(bytes(tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE))
    return plan


def tar_plan(members: Iterable[list]) -> list:
    """The plan of a tar of the given member plans (`tar_member`), ended as `tarfile` ends one:
    two zero blocks, then zeros up to a multiple of the record size."""
    plan = [segment for member in members for segment in member]
    size = plan_size(plan) + 2 * tarfile.BLOCKSIZE
    plan.append(bytes(2 * tarfile.BLOCKSIZE + -size % tarfile.RECORDSIZE))
    return plan


def tree_members(tree: Tree, mtime: int = DEFAULT_MTIME, uid: int = 0,
                 gid: int = 0) -> Iterator[tuple[tarfile.TarInfo, list]]:
    """The tar members of `tree`, sorted by path, every entry owned by `uid`:`gid`, each with
    the plan of its content."""
    for path in sorted(tree.entries):
        entry = tree.entries[path]
        info = tarfile.TarInfo(path)
        info.mtime = mtime
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mode = entry.mode
        content: list = []
        if entry.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif entry.kind == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = entry.target
        else:
            info.type = tarfile.REGTYPE
            content = file_plan(entry.source)
            info.size = plan_size(content)
        yield info, content


def tree_plan(tree: Tree, mtime: int = DEFAULT_MTIME, uid: int = 0, gid: int = 0) -> list:
    """The plan of `tree` as a tar (see `tree_members`)."""
    return tar_plan(tar_member(info, content)
                    for info, content in tree_members(tree, mtime, uid, gid))


def write_tar(tree: Tree, f: BinaryIO, mtime: int = DEFAULT_MTIME, uid: int = 0,
              gid: int = 0) -> str:
    """Write `tree` as a tar to `f`, every entry owned by `uid`:`gid`; return its `sha256:`
    digest (the layer's diff_id)."""
    out = _HashingWriter(f)
    write_plan(tree_plan(tree, mtime, uid, gid), out)
    return "sha256:" + out.h.hexdigest()


GZIP_LEVEL = 6  # gzip's and pigz's default
GZIP_BLOCK = 1 << 20  # bytes of input per independently compressed deflate block
_DICT = 32 << 10  # deflate's window: each block is primed with the input before it


class GzipWriter:
    """A gzip stream written reproducibly and in parallel, as pigz does.

    The input is cut into `GZIP_BLOCK`-sized blocks; each is deflated on its own (zlib releases
    the GIL, so threads run in parallel) with the 32 KiB of input before it as its dictionary and
    ends with a sync flush, the last one with the final block. The bytes depend only on the input
    and the level, never on the number of threads or on how the input was split into `write`
    calls. The header has no file name, mtime 0 and OS 255 (unknown), as Python's gzip writes it.
    """

    def __init__(self, out: BinaryIO, level: int = GZIP_LEVEL, threads: int | None = None):
        from concurrent.futures import ThreadPoolExecutor
        self.out = out
        self.level = level
        self.threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.pending: list = []  # futures of compressed blocks, in order
        self.buffer = bytearray()
        self.dictionary = b""
        self.crc = 0
        self.size = 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 255]))

    def write(self, data) -> int:
        self.buffer += data
        while len(self.buffer) >= GZIP_BLOCK:
            block = bytes(self.buffer[:GZIP_BLOCK])
            del self.buffer[:GZIP_BLOCK]
            self._submit(block, last=False)
        return len(data)

    def tell(self) -> int:
        """The number of bytes written so far (uncompressed), as tarfile wants to know."""
        return self.size + len(self.buffer)

    def flush(self) -> None:
        pass

    def _submit(self, block: bytes, last: bool) -> None:
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        args = (block, self.dictionary, last)
        self.dictionary = (self.dictionary + block)[-_DICT:]
        if self.pool is None:
            self.out.write(self._deflate(*args))
            return
        self.pending.append(self.pool.submit(self._deflate, *args))
        while len(self.pending) > 2 * self.threads:
            self.out.write(self.pending.pop(0).result())

    def _deflate(self, block: bytes, dictionary: bytes, last: bool) -> bytes:
        if dictionary:
            c = zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS, 9,
                                 zlib.Z_DEFAULT_STRATEGY, dictionary)
        else:
            c = zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
        return c.compress(block) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    def close(self) -> None:
        """Write the last block and the trailer (CRC-32 and length); does not close `out`."""
        self._submit(bytes(self.buffer), last=True)
        self.buffer = bytearray()
        for future in self.pending:
            self.out.write(future.result())
        self.pending = []
        if self.pool is not None:
            self.pool.shutdown()
        self.out.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        elif self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def compressing_writer(out: BinaryIO, compressor: str):
    """A context manager writing to `out` compressed with `compressor` (none, gz, zstd)."""
    import contextlib
    if compressor == "none":
        return contextlib.nullcontext(out)
    if compressor == "gz":
        return GzipWriter(out)
    if compressor == "zstd":
        zstandard = _zstandard()
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=0)
        return cctx.stream_writer(out, closefd=False)
    raise LayerError(f"unknown compressor '{compressor}' (expected one of "
                     f"{', '.join(COMPRESSORS)})")


def compress(plan: list, dest: str, compressor: str) -> str:
    """Write the bytes of `plan` to `dest` compressed reproducibly; return the `sha256:` digest
    of `dest`."""
    if compressor not in COMPRESSORS:
        raise LayerError(f"unknown compressor '{compressor}' (expected one of "
                         f"{', '.join(COMPRESSORS)})")
    with open(dest, "wb") as raw:
        out = _HashingWriter(raw)
        if compressor == "zstd":
            zstandard = _zstandard()
            cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=0)
            with cctx.stream_writer(out, closefd=False, size=plan_size(plan)) as zw:
                write_plan(plan, zw)
        else:
            with compressing_writer(out, compressor) as w:
                write_plan(plan, w)
    return "sha256:" + out.h.hexdigest()


def _zstandard():
    try:
        import zstandard
    except ImportError:
        raise LayerError("the zstd compressor needs the Python package 'zstandard'") from None
    return zstandard


def compression_of(path: str) -> str:
    """How the file at `path` is compressed, by its first bytes: none, gz or zstd."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return "gz"
    if magic == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


def open_maybe_compressed(path: str) -> BinaryIO:
    """Open a file that may be plain, gzip- or zstd-compressed, for reading its bytes."""
    compression = compression_of(path)
    if compression == "gz":
        return gzip.open(path, "rb")
    if compression == "zstd":
        zstandard = _zstandard()
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def file_digest(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


# -- reading layers made by others ------------------------------------------------------------

class MemberChecker:
    """Decides, member by member in archive order, which entries of a foreign layer are safe."""

    def __init__(self, log: Log, label: str):
        self.log = log
        self.label = label
        self.symlinks: set[str] = set()
        self.seen: set[str] = set()
        self.dropped = 0
        self.dropped_links: set[str] = set()

    def check(self, member: tarfile.TarInfo) -> str | None:
        """The member's clean relative name, or None (logged) when it must be dropped."""
        reason = self._reason(member)
        if reason is None:
            name = _normal(member.name)
            if name is not None:
                self.seen.add(name)
                if member.issym():
                    self.symlinks.add(name)
                else:
                    self.symlinks.discard(name)
            return name
        self.dropped += 1
        if member.issym() and _normal(member.name) is not None:
            self.dropped_links.add(_normal(member.name))
        self.log(f"{self.label}: dropping entry '{member.name}': {reason}")
        return None

    def _reason(self, member: tarfile.TarInfo) -> str | None:
        if member.name.startswith("/"):
            return "absolute path"
        name = _normal(member.name)
        if name is None:
            if member.isdir() and member.name.strip("./") == "":
                return None  # the root directory itself ("./")
            return "path with '..'"
        if member.ischr() or member.isblk():
            return "device node"
        if member.isfifo():
            return "fifo"
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            return "unsupported entry type"
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.symlinks:
                return "path through a symlink"
            if "/".join(parts[:i]) in self.dropped_links:
                return "path through a dropped symlink"
        if member.issym():
            target = member.linkname
            if not target.startswith("/"):
                depth = len(parts) - 1
                for part in target.split("/"):
                    if part == "..":
                        depth -= 1
                        if depth < 0:
                            return f"symlink pointing outside the image ('{target}')"
                    elif part not in ("", "."):
                        depth += 1
        if member.islnk():
            target = _normal(member.linkname)
            if target is None or target not in self.seen or target in self.symlinks:
                return f"hard link to '{member.linkname}' outside the layer"
        return None


def scan_layer(path: str, log: Log, label: str) -> tuple[list[tuple[str, tarfile.TarInfo]], int]:
    """The safe members of a foreign layer, in order, with their clean names, and the number of
    members dropped (each logged)."""
    checker = MemberChecker(log, label)
    kept = []
    with open_maybe_compressed(path) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for member in tar:
            name = checker.check(member)
            if name is not None:
                kept.append((name, member))
    return kept, checker.dropped


def members_plan(members: Iterable[tarfile.TarInfo],
                 content: Callable[[tarfile.TarInfo], list]) -> list:
    """The plan of a tar of members read from another tar, as they were (owners, modes, times),
    `content(member)` giving the plan of a regular file's bytes."""
    return tar_plan(tar_member(m, content(m) if m.isreg() and m.size else None)
                    for m in members)


def extract(path: str, dest: str, log: Log, label: str) -> None:
    """Unpack a foreign tar into the directory `dest`, never writing outside it: unsafe members
    are dropped (and logged) and nothing is created below a symlink that exists on disk.
    Ownership is not kept; modes are, with directories made writable until the end."""
    checker = MemberChecker(log, label)
    dest = os.path.abspath(dest)
    dir_modes: dict[str, int] = {}
    with open_maybe_compressed(path) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for member in tar:
            name = checker.check(member)
            if name is None:
                continue
            target = os.path.join(dest, name)
            if not _parents_are_dirs(dest, name):
                checker.dropped += 1
                log(f"{label}: dropping entry '{member.name}': its parent is not a directory")
                continue
            if member.isdir():
                if os.path.lexists(target) and not os.path.isdir(target):
                    remove_tree(target)
                if not os.path.lexists(target):
                    os.mkdir(target, 0o700)
                os.chmod(target, 0o700)
                dir_modes[target] = stat.S_IMODE(member.mode)
                continue
            if os.path.lexists(target):
                remove_tree(target)
            if member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                os.link(os.path.join(dest, _normal(member.linkname)), target,
                        follow_symlinks=False)
            else:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(member), out, _CHUNK)
                os.chmod(target, stat.S_IMODE(member.mode))
    for d in sorted(dir_modes, reverse=True):
        os.chmod(d, dir_modes[d])


def _parents_are_dirs(dest: str, name: str) -> bool:
    here = dest
    parts = name.split("/")
    for part in parts[:-1]:
        here = os.path.join(here, part)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            os.mkdir(here, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True


def parse_created(created: str | int | None, now: Callable[[], float]) -> tuple[int, str]:
    """The layer mtime and RFC 3339 string for an image's `created` ("now" reads the clock)."""
    import datetime
    if created is None or created == "":
        ts = DEFAULT_MTIME
    elif created == "now":
        ts = int(now())
    elif isinstance(created, int):
        ts = created
    else:
        text = created.replace("Z", "+00:00")
        try:
            dt = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise LayerError(f"cannot parse created time '{created}'") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        ts = int(dt.timestamp())
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return ts, dt.strftime("%Y-%m-%dT%H:%M:%SZ")

