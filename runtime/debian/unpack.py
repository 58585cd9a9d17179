"""`builtin:unpack-deb`: a Debian binary package (`.deb`) unpacked into a store path.

A `.deb` is an `ar` archive holding `debian-binary`, `control.tar.*` and `data.tar.*` (each tar
compressed with xz, gzip, zstd, bzip2, or not at all). The builder takes the derivation's `src`
(a store path of a `.deb`), extracts the data tarball into `$out` and writes the package's
`control` file to `$out/.deb-control`. Maintainer scripts are not extracted and never run.

What must stay true: nothing is ever written outside `$out`. The extraction is
`runtime.unpack`'s: entry names that are absolute or contain `..` are refused; no symbolic link
is followed while extracting (a symlink the archive created earlier cannot redirect a later
entry, and hard links may only name regular files already extracted inside `$out`); symbolic
links themselves are kept verbatim, absolute ones included (they are data: later build steps
rewrite them). Owners, set-id bits, device nodes and FIFOs are ignored.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from typing import BinaryIO, Callable, Iterator

from ..unpack import ArchiveError, clean_name, extract, tar_members

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


def read_control(f: BinaryIO) -> bytes:
    """Return the `control` file of the `.deb` open as `f`."""
    name, stream = _member(f, "control.tar")
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for entry in tar:
            if clean_name(entry.name) == ["control"] and entry.isreg():
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
            try:
                count = extract(tar_members(tar), out, log)
            except ArchiveError as e:
                raise DebError(str(e)) from None
    with open(os.path.join(out, ".deb-control"), "wb") as c:
        c.write(control)
    log(f"unpacked {count} entries of {name}")


def builtin_unpack_deb(drv, env: dict, out: str, log: Callable[[str], None], store) -> None:
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
