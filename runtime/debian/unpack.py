"""`builtin:unpack-deb`: a Debian binary package (`.deb`) unpacked into a store path.

A `.deb` is an `ar` archive holding `debian-binary`, `control.tar.*` and `data.tar.*` (each tar
compressed with xz, gzip, zstd, bzip2, or not at all). The builder takes the derivation's `src`
(a store path of a `.deb`), extracts the data tarball into `$out` and writes the package's
`control` file to `$out/.deb-control`. Maintainer scripts are not extracted and never run.

What must stay true: nothing is ever written outside `$out`. Entry names that are absolute or
contain `..` are refused; no symbolic link is followed while extracting (a symlink the archive
created earlier cannot redirect a later entry, and hard links may only name regular files
already extracted inside `$out`); symbolic links themselves are kept verbatim, absolute ones
included (they are data: later build steps rewrite them). Owners, set-id bits, device nodes
and FIFOs are ignored.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from typing import BinaryIO, Callable, Iterator

AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


class DebError(Exception):
    pass


def ar_members(f: BinaryIO) -> Iterator[tuple[str, int, int]]:
    """Yield (name, offset, size) of each member of the `ar` archive open as `f`."""
    f.seek(0)
    if f.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebError("not a Debian package: no 'ar' archive signature")
    pos = len(AR_MAGIC)
    while True:
        f.seek(pos)
        header = f.read(_AR_HEADER)
        if not header:
            return
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise DebError("corrupt 'ar' archive: bad member header")
        name = header[0:16].decode("ascii", "replace").rstrip(" ")
        if name.endswith("/") and name != "/":
            name = name[:-1]  # GNU ar terminates names with '/'
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"corrupt 'ar' archive: bad size of member '{name}'") from None
        yield name, pos + _AR_HEADER, size
        pos += _AR_HEADER + size + (size & 1)


def _decompressor(name: str, raw: BinaryIO) -> BinaryIO:
    """Wrap `raw` (the member `name`) in the decompressor its suffix names."""
    if name.endswith(".tar"):
        return raw
    if name.endswith(".xz") or name.endswith(".lzma"):
        return lzma.open(raw)
    if name.endswith(".gz"):
        return gzip.open(raw)
    if name.endswith(".bz2"):
        return bz2.open(raw)
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise DebError(f"'{name}' is zstd-compressed: install the Python package "
                           "'zstandard' to unpack it") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    raise DebError(f"unsupported compression of '{name}'")


def _member(f: BinaryIO, stem: str) -> tuple[str, BinaryIO]:
    """Return the name and a decompressed stream of the member `stem` (`control.tar`…)."""
    for name, offset, size in ar_members(f):
        if name == stem or name.startswith(stem + "."):
            f.seek(offset)
            return name, _decompressor(name, io.BytesIO(f.read(size)))
    raise DebError(f"not a Debian package: no '{stem}' member")


def _clean_name(name: str) -> list[str]:
    """Split a tar entry name into components; refuse absolute names and `..`."""
    if name.startswith("/"):
        raise DebError(f"refusing absolute path '{name}' in the package")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DebError(f"refusing path '{name}' with '..' in the package")
    return parts


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
                raise DebError(f"cannot extract below '{'/'.join(parts)}': "
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
        raise DebError(f"cannot replace directory '{name}' with a non-directory")
    os.unlink(name, dir_fd=fd)


def extract_data(tar: tarfile.TarFile, out: str, log: Callable[[str], None]) -> int:
    """Extract the entries of `tar` below the existing directory `out`; return their count."""
    count = 0
    for entry in tar:
        parts = _clean_name(entry.name)
        if not parts:
            continue  # the archive's root directory
        if not (entry.isdir() or entry.isreg() or entry.issym() or entry.islnk()):
            log(f"skipping special file '{entry.name}'")
            continue
        fd = _parent_fd(out, parts, make=True)
        name = parts[-1]
        try:
            if entry.isdir():
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    if not stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                        raise DebError(f"'{entry.name}' exists and is not a directory") from None
            elif entry.issym():
                _remove_existing(fd, name)
                os.symlink(entry.linkname, name, dir_fd=fd)
            elif entry.islnk():
                _hard_link(out, entry, fd, name)
            else:
                _remove_existing(fd, name)
                mode = 0o755 if entry.mode & 0o111 else 0o644
                dest = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                               mode, dir_fd=fd)
                with os.fdopen(dest, "wb") as w:
                    src = tar.extractfile(entry)
                    while chunk := src.read(1 << 20):
                        w.write(chunk)
        finally:
            os.close(fd)
        count += 1
    return count


def _hard_link(out: str, entry: tarfile.TarInfo, fd: int, name: str) -> None:
    """Make `name` a copy of the regular file the hard link `entry` names (inside `out`)."""
    target = _clean_name(entry.linkname)
    if not target:
        raise DebError(f"hard link '{entry.name}' has an empty target")
    tfd = _parent_fd(out, target, make=False)
    try:
        try:
            src = os.open(target[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=tfd)
        except OSError as e:
            raise DebError(f"hard link '{entry.name}' names '{entry.linkname}', which is not "
                           f"a regular file in the package ({e.strerror})") from None
    finally:
        os.close(tfd)
    with os.fdopen(src, "rb") as r:
        st = os.fstat(r.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise DebError(f"hard link '{entry.name}' names '{entry.linkname}', which is not "
                           "a regular file")
        _remove_existing(fd, name)
        dest = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                       st.st_mode & 0o755, dir_fd=fd)
        with os.fdopen(dest, "wb") as w:
            while chunk := r.read(1 << 20):
                w.write(chunk)


def read_control(f: BinaryIO) -> bytes:
    """Return the `control` file of the `.deb` open as `f`."""
    name, stream = _member(f, "control.tar")
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for entry in tar:
            if _clean_name(entry.name) == ["control"] and entry.isreg():
                return tar.extractfile(entry).read()
    raise DebError(f"no 'control' file in '{name}'")


def unpack_deb(deb: str, out: str, log: Callable[[str], None] = lambda _: None) -> None:
    """Unpack the `.deb` file `deb` into the new directory `out`."""
    with open(deb, "rb") as f:
        if f.read(len(AR_MAGIC)) != AR_MAGIC:
            raise DebError(f"'{deb}' is not a Debian package")
        control = read_control(f)
        name, stream = _member(f, "data.tar")
        os.mkdir(out, 0o755)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            count = extract_data(tar, out, log)
    with open(os.path.join(out, ".deb-control"), "wb") as c:
        c.write(control)
    log(f"unpacked {count} entries of {name}")


def builtin_unpack_deb(drv, env: dict, out: str, log: Callable[[str], None]) -> None:
    """The `builtin:unpack-deb` builder: unpack the `.deb` named by `src` into `out`."""
    from ..build import BuildError

    src = env.get("src")
    if not src:
        raise BuildError("'builtin:unpack-deb' requires a 'src' attribute")
    real = _physical(src, env.get("NIX_STORE", "/nix/store"), out)
    if real is None:
        raise BuildError(f"'builtin:unpack-deb': input '{src}' is not in the store")
    try:
        unpack_deb(real, out, log)
    except (DebError, tarfile.TarError, lzma.LZMAError, EOFError, OSError) as e:
        raise BuildError(f"cannot unpack '{src}': {e}") from None


def _physical(logical: str, store_dir: str, out: str) -> str | None:
    """Find the host location of the store path `logical`. Builtin builders run in dtx's own
    process, outside the sandbox: the store's physical root is an ancestor of the build's
    scratch directory (`out`), so the first ancestor holding the path is the store's root."""
    if not logical.startswith(store_dir.rstrip("/") + "/"):
        return None
    rel = logical.lstrip("/")
    here = os.path.dirname(os.path.abspath(out))
    while True:
        candidate = os.path.join(here, rel)
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
