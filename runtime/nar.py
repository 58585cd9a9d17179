"""NAR, the Nix ARchive format: a canonical serialisation of a file system tree.

A NAR holds only what the store keeps of a file: its type, its contents, whether it is
executable, and symlink targets; no owners, permissions or times. Directory entries are sorted
by name, so the same tree always gives the same bytes, and a path's NAR hash identifies its
contents. Every string is written as a 64-bit little-endian length, the bytes, and zero padding
to a multiple of 8.

`dump` streams a tree to a writer, `restore` recreates one from a reader and refuses archives that
would write outside their target (names with `/`, `.`, `..` or NUL, or out of order).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from typing import BinaryIO, Callable

MAGIC = b"nix-archive-1"
_CHUNK = 1 << 16


class NarError(ValueError):
    pass


def _str(data: bytes) -> bytes:
    n = len(data)
    return struct.pack("<Q", n) + data + b"\0" * (-n % 8)


_OPEN = _str(b"(")
_CLOSE = _str(b")")
_TYPE = _str(b"type")


def dump(path: str, write: Callable[[bytes], object],
         path_filter: Callable[[str], bool] | None = None) -> None:
    """Write the NAR of `path` through `write`. `path_filter(p)` (for filterSource and
    builtins.path) decides which entries below the root are included."""
    write(_str(MAGIC))
    _dump(path, write, path_filter)


def _dump(path: str, write, path_filter) -> None:
    st = os.lstat(path)
    mode = st.st_mode
    write(_OPEN)
    if stat.S_ISREG(mode):
        write(_TYPE + _str(b"regular"))
        if mode & stat.S_IXUSR:
            write(_str(b"executable") + _str(b""))
        size = st.st_size
        write(_str(b"contents") + struct.pack("<Q", size))
        written = 0
        with open(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                write(chunk)
        if written != size:
            raise NarError(f"file '{path}' changed while it was being archived")
        write(b"\0" * (-size % 8))
    elif stat.S_ISLNK(mode):
        write(_TYPE + _str(b"symlink") + _str(b"target") + _str(os.fsencode(os.readlink(path))))
    elif stat.S_ISDIR(mode):
        write(_TYPE + _str(b"directory"))
        names = sorted(os.listdir(os.fsencode(path)))
        for name in names:
            child = os.path.join(path, os.fsdecode(name))
            if path_filter is not None and not path_filter(child):
                continue
            write(_str(b"entry") + _OPEN + _str(b"name") + _str(name) + _str(b"node"))
            _dump(child, write, path_filter)
            write(_CLOSE)
    else:
        raise NarError(f"file '{path}' has an unsupported type")
    write(_CLOSE)


def dump_bytes(path: str, path_filter=None) -> bytes:
    buf = io.BytesIO()
    dump(path, buf.write, path_filter)
    return buf.getvalue()


class _HashSink:
    __slots__ = ("h", "size")

    def __init__(self, algo: str):
        self.h = hashlib.new(algo)
        self.size = 0

    def __call__(self, data: bytes) -> None:
        self.h.update(data)
        self.size += len(data)


def nar_hash(path: str, algo: str = "sha256", path_filter=None) -> tuple[bytes, int]:
    """Return the digest and size of the NAR of `path`."""
    sink = _HashSink(algo)
    dump(path, sink, path_filter)
    return sink.h.digest(), sink.size


def file_nar_hash(data: bytes, executable: bool = False) -> tuple[bytes, int]:
    """Return the SHA-256 digest and size of the NAR of a regular file holding `data` (what
    `nar_hash` gives for such a file, without reading it back)."""
    head = _str(MAGIC) + _OPEN + _TYPE + _str(b"regular")
    if executable:
        head += _str(b"executable") + _str(b"")
    head += _str(b"contents") + struct.pack("<Q", len(data))
    tail = b"\0" * (-len(data) % 8) + _CLOSE
    h = hashlib.sha256(head)
    h.update(data)
    h.update(tail)
    return h.digest(), len(head) + len(data) + len(tail)


def dump_flat_hash(path: str, algo: str) -> bytes:
    """Hash a regular file's contents (a "flat" content hash)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.digest()


# -- reading --------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def exact(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise NarError("unexpected end of archive")
        return data

    def int(self) -> int:
        return struct.unpack("<Q", self.exact(8))[0]

    def string(self, limit: int = 1 << 20) -> bytes:
        n = self.int()
        if n > limit:
            raise NarError("string in archive is too long")
        data = self.exact(n)
        pad = self.exact(-n % 8)
        if pad.strip(b"\0"):
            raise NarError("non-zero padding in archive")
        return data

    def expect(self, token: bytes) -> None:
        got = self.string()
        if got != token:
            raise NarError(f"expected '{token.decode()}' in archive, got '{got[:40]!r}'")


def restore(stream: BinaryIO, dest: str) -> None:
    """Recreate the tree a NAR describes at `dest` (which must not exist)."""
    r = _Reader(stream)
    r.expect(MAGIC)
    _restore(r, dest)


def _restore(r: _Reader, dest: str) -> None:
    r.expect(b"(")
    r.expect(b"type")
    kind = r.string()
    if kind == b"regular":
        tag = r.string()
        executable = False
        if tag == b"executable":
            r.expect(b"")
            executable = True
            tag = r.string()
        if tag != b"contents":
            raise NarError("expected 'contents' in archive")
        size = r.int()
        with open(dest, "xb") as f:
            left = size
            while left:
                chunk = r.exact(min(left, _CHUNK))
                f.write(chunk)
                left -= len(chunk)
        if r.exact(-size % 8).strip(b"\0"):
            raise NarError("non-zero padding in archive")
        os.chmod(dest, 0o755 if executable else 0o644)
        r.expect(b")")
    elif kind == b"symlink":
        r.expect(b"target")
        os.symlink(os.fsdecode(r.string(4096)), dest)
        r.expect(b")")
    elif kind == b"directory":
        os.mkdir(dest, 0o755)
        previous = None
        while True:
            tag = r.string()
            if tag == b")":
                break
            if tag != b"entry":
                raise NarError("expected 'entry' in archive")
            r.expect(b"(")
            r.expect(b"name")
            name = r.string(4096)
            if (not name or name in (b".", b"..") or b"/" in name or b"\0" in name):
                raise NarError(f"invalid file name '{name!r}' in archive")
            if previous is not None and name <= previous:
                raise NarError("archive entries are not sorted or not unique")
            previous = name
            r.expect(b"node")
            _restore(r, os.path.join(dest, os.fsdecode(name)))
            r.expect(b")")
    else:
        raise NarError(f"unknown file type '{kind!r}' in archive")
