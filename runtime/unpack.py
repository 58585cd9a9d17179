"""Safe unpacking of archives made by others: tar (plain, gzip, bzip2, xz, lzma, zstd) and zip.

Used by `builtin:unpack-deb` (the data tarball of a `.deb`) and by the eval-time fetchers
(`builtins.fetchTarball`, `fetchTree { type = "tarball"; }`, `git archive` output), whose
archives come from anywhere.

What must stay true: nothing is ever written outside the destination directory. Entry names that
are absolute or contain `..` are refused (`ArchiveError`); no symbolic link is followed while
extracting — every parent directory is opened with `O_NOFOLLOW`, so a symlink the archive created
earlier cannot redirect a later entry — and a hard link may only name a regular file already
extracted inside the destination (it becomes a copy). Symbolic links themselves are data and are
kept verbatim, absolute ones and ones pointing above the root included: they are never followed
here, and a store path may hold any link. Owners, set-id bits, device nodes and FIFOs are
ignored; a regular file is executable (0755) when any execute bit is set, else 0644; directories
are 0755.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

_CHUNK = 1 << 20

Log = Callable[[str], None]


class ArchiveError(Exception):
    pass


class TopLevelError(Exception):
    """An archive that should hold one top-level entry holds another number of them."""


@dataclass
class Member:
    """One archive entry: `kind` is "dir", "file", "symlink", "hardlink" or "other"."""
    name: str
    kind: str
    mode: int = 0o644
    linkname: str = ""
    open: Callable[[], BinaryIO] | None = None


# -- formats ------------------------------------------------------------------------------------

def decompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap the seekable or peekable stream `raw` in the decompressor its first bytes name
    (gzip, bzip2, xz, lzma, zstd); an uncompressed stream is returned as it is."""
    magic = _peek(raw, 6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(raw)
    if magic[:3] == b"BZh":
        return bz2.open(raw)
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.open(raw, format=lzma.FORMAT_XZ)
    if magic[:3] == b"\x5d\x00\x00":
        return lzma.open(raw, format=lzma.FORMAT_ALONE)
    if magic[:4] == b"\x28\xb5\x2f\xfd":
        return zstd_reader(raw)
    return raw


def zstd_reader(raw: BinaryIO) -> BinaryIO:
    """A reader of the zstd-compressed stream `raw` (needs the Python package `zstandard`)."""
    try:
        import zstandard
    except ImportError:
        raise ArchiveError("the archive is zstd-compressed: install the Python package "
                           "'zstandard' to unpack it") from None
    return zstandard.ZstdDecompressor().stream_reader(raw)


def _peek(raw: BinaryIO, n: int) -> bytes:
    if hasattr(raw, "peek"):
        return raw.peek(n)[:n]
    pos = raw.tell()
    data = raw.read(n)
    raw.seek(pos)
    return data


def tar_members(tar: tarfile.TarFile) -> Iterator[Member]:
    """The entries of an open tar (a stream: each file's bytes are readable until the next)."""
    for entry in tar:
        if entry.isdir():
            kind = "dir"
        elif entry.isreg():
            kind = "file"
        elif entry.issym():
            kind = "symlink"
        elif entry.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        yield Member(entry.name, kind, entry.mode, entry.linkname,
                     (lambda e=entry: tar.extractfile(e)) if kind == "file" else None)


def zip_members(z: zipfile.ZipFile) -> Iterator[Member]:
    """The entries of an open zip file; symlinks are the entries whose Unix mode says so."""
    for info in z.infolist():
        unix = info.external_attr >> 16
        if info.is_dir():
            yield Member(info.filename, "dir", 0o755)
        elif stat.S_ISLNK(unix):
            target = z.read(info).decode("utf-8", "surrogateescape")
            yield Member(info.filename, "symlink", 0o777, target)
        elif unix == 0 or stat.S_ISREG(unix):
            yield Member(info.filename, "file", stat.S_IMODE(unix) or 0o644,
                         open=lambda i=info: z.open(i))
        else:
            yield Member(info.filename, "other")


def unpack_archive(path: str, out: str, log: Log = lambda _: None) -> int:
    """Unpack the archive file `path` (a zip, or a tar in any supported compression) into the
    existing directory `out`; return the number of entries written. Without the `zstandard`
    package, zstd is decompressed by the `zstd` command."""
    try:
        with open(path, "rb") as raw:
            magic = _peek(raw, 4)
            if magic in (b"PK\x03\x04", b"PK\x05\x06"):
                with zipfile.ZipFile(raw) as z:
                    return extract(zip_members(z), out, log)
            if magic == b"\x28\xb5\x2f\xfd" and not _have_zstandard():
                return _unpack_with_zstd_command(path, out, log)
            with decompressed(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                return extract(tar_members(tar), out, log)
    except tarfile.ReadError as e:
        raise ArchiveError(f"unrecognised archive format ({e})") from None
    except (tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError, zlib.error, EOFError,
            OSError) as e:
        raise ArchiveError(str(e)) from None


def unpack_top_level(path: str, workdir: str, url: str, log: Log = lambda _: None) -> str:
    """Unpack the archive `path` into the empty directory `workdir` and return the path of its
    one top-level entry: Nix's rule for the tarballs it unpacks (`fetchTarball`, the `unpack`
    of `builtin:fetchurl`). Raise ArchiveError, or TopLevelError naming `url`."""
    unpack_archive(path, workdir, log)
    entries = os.listdir(workdir)
    if len(entries) != 1:
        raise TopLevelError(f"tarball '{url}' contains an unexpected number of top-level files")
    return os.path.join(workdir, entries[0])


def _have_zstandard() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def _unpack_with_zstd_command(path: str, out: str, log: Log) -> int:
    if shutil.which("zstd") is None:
        raise ArchiveError("the archive is zstd-compressed: install the Python package "
                           "'zstandard' or the 'zstd' command to unpack it")
    proc = subprocess.Popen(["zstd", "-dcq", "--", path], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            count = extract(tar_members(tar), out, log)
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.stdout.close()
        status = proc.wait()
    if status != 0:
        raise ArchiveError(f"'zstd' failed with exit code {status}")
    return count


# -- extraction ---------------------------------------------------------------------------------

def clean_name(name: str) -> list[str]:
    """Split an entry name into components; refuse absolute names and `..`."""
    if name.startswith("/"):
        raise ArchiveError(f"refusing absolute path '{name}' in the archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"refusing path '{name}' with '..' in the archive")
    return parts


def extract(members: Iterable[Member], out: str, log: Log = lambda _: None) -> int:
    """Write `members` below the existing directory `out`; return how many were written."""
    count = 0
    for entry in members:
        parts = clean_name(entry.name)
        if not parts:
            continue  # the archive's root directory
        if entry.kind == "other":
            log(f"skipping special file '{entry.name}'")
            continue
        fd = _parent_fd(out, parts, make=True)
        name = parts[-1]
        try:
            if entry.kind == "dir":
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    if not stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                        raise ArchiveError(f"'{entry.name}' exists and is not a "
                                           "directory") from None
            elif entry.kind == "symlink":
                _remove_existing(fd, name)
                os.symlink(entry.linkname, name, dir_fd=fd)
            elif entry.kind == "hardlink":
                _hard_link(out, entry, fd, name)
            else:
                _remove_existing(fd, name)
                mode = 0o755 if entry.mode & 0o111 else 0o644
                dest = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                               mode, dir_fd=fd)
                with os.fdopen(dest, "wb") as w, entry.open() as src:
                    while chunk := src.read(_CHUNK):
                        w.write(chunk)
        finally:
            os.close(fd)
        count += 1
    return count


def _parent_fd(root: str, parts: list[str], make: bool) -> int:
    """Open the directory holding `parts` under `root` without following symlinks; return
    its file descriptor (the caller closes it)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            if make:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                raise ArchiveError(f"cannot extract below '{'/'.join(parts)}': "
                                   f"'{part}' is not a directory ({e.strerror})") from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _remove_existing(fd: int, name: str) -> None:
    try:
        st = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ArchiveError(f"cannot replace directory '{name}' with a non-directory")
    os.unlink(name, dir_fd=fd)


def _hard_link(out: str, entry: Member, fd: int, name: str) -> None:
    """Make `name` a copy of the regular file the hard link `entry` names (inside `out`)."""
    target = clean_name(entry.linkname)
    if not target:
        raise ArchiveError(f"hard link '{entry.name}' has an empty target")
    tfd = _parent_fd(out, target, make=False)
    try:
        try:
            src = os.open(target[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=tfd)
        except OSError as e:
            raise ArchiveError(f"hard link '{entry.name}' names '{entry.linkname}', which is "
                               f"not a regular file in the archive ({e.strerror})") from None
    finally:
        os.close(tfd)
    with os.fdopen(src, "rb") as r:
        st = os.fstat(r.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"hard link '{entry.name}' names '{entry.linkname}', which is "
                               "not a regular file")
        _remove_existing(fd, name)
        dest = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                       st.st_mode & 0o755, dir_fd=fd)
        with os.fdopen(dest, "wb") as w:
            while chunk := r.read(_CHUNK):
                w.write(chunk)
