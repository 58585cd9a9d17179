"""NAR serialisation against Nix 2.8: `nar.dump_bytes` must equal `nix-store --dump` byte for byte,
`nar.nar_hash` must equal `nix-hash --type sha256` (base 16 and base 32), and `nar.restore` must
recreate the tree (round trip) while refusing archives that are malformed or that would write
outside their target. The malicious archives are also fed to `nix-store --restore`, which refuses
them as well (all but one: Nix 2.8 does not check the order of directory entries).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess

import pytest

from dtx.runtime import nar
from dtx.runtime.hashes import to_base32

NIX_STORE = shutil.which("nix-store")
NIX_HASH = shutil.which("nix-hash")
needs_nix = pytest.mark.skipif(NIX_STORE is None or NIX_HASH is None,
                               reason="nix-store / nix-hash are not on PATH")


# -- trees --------------------------------------------------------------------------------------

def _write(path, data: bytes, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _regular(root):
    _write(root, b"hello, world\n")


def _empty_file(root):
    _write(root, b"")


def _executable(root):
    _write(root, b"#!/bin/sh\necho hi\n", 0o755)


def _size_multiple_of_8(root):
    _write(root, b"12345678" * 3)


def _size_not_multiple_of_8(root):
    _write(root, b"123456789")


def _large_file(root):
    # Larger than the 64 KiB chunk nar.py reads with, and not a multiple of 8.
    _write(root, bytes(range(256)) * 781 + b"tail")


def _abs_symlink(root):
    os.symlink("/etc/hostname", root)


def _rel_symlink(root):
    os.symlink("../some/where/else", root)


def _dangling_symlink(root):
    os.symlink("does-not-exist", root)


def _empty_dir(root):
    os.mkdir(root)


SORT_NAMES = ["b", "a", "B", "A", "Z", "z", "a.b", "a-b", "a_b", "ab", "a.", ".dot", "_x",
              "10", "9", "~tilde", "caf\u00e9", "Zebra", "zebra", "a b"]


def _sorted_dir(root):
    os.mkdir(root)
    for i, name in enumerate(SORT_NAMES):
        _write(os.path.join(root, name), name.encode() * (i + 1))


def _nested(root):
    _write(os.path.join(root, "src", "main.c"), b"int main() { return 0; }\n")
    _write(os.path.join(root, "src", "Lib", "x.h"), b"")
    _write(os.path.join(root, "bin", "run"), b"#!/bin/sh\n", 0o755)
    os.makedirs(os.path.join(root, "share", "empty"))
    os.makedirs(os.path.join(root, "a", "b", "c", "d", "e"))
    _write(os.path.join(root, "a", "b", "c", "d", "e", "deep.txt"), b"deep" * 5)
    os.symlink("../src/main.c", os.path.join(root, "bin", "link"))
    os.symlink("/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x", os.path.join(root, "abs"))
    os.symlink("nowhere", os.path.join(root, "share", "dangling"))
    os.mkdir(os.path.join(root, "Upper"))
    _write(os.path.join(root, "upper.txt"), b"lower\n")
    _write(os.path.join(root, "v1.2.3"), b"x" * 8)
    _write(os.path.join(root, "v1.2"), b"x" * 7)


TREES = {
    "regular": _regular,
    "empty-file": _empty_file,
    "executable": _executable,
    "size-multiple-of-8": _size_multiple_of_8,
    "size-not-multiple-of-8": _size_not_multiple_of_8,
    "large-file": _large_file,
    "absolute-symlink": _abs_symlink,
    "relative-symlink": _rel_symlink,
    "dangling-symlink": _dangling_symlink,
    "empty-dir": _empty_dir,
    "sorted-dir": _sorted_dir,
    "nested": _nested,
}


@pytest.fixture(params=sorted(TREES))
def tree(request, tmp_path):
    root = str(tmp_path / "root")
    TREES[request.param](root)
    return root


# -- dumping --------------------------------------------------------------------------------------

@needs_nix
def test_dump_matches_nix_store_dump(tree):
    expected = subprocess.run([NIX_STORE, "--dump", tree], capture_output=True,
                              check=True).stdout
    assert nar.dump_bytes(tree) == expected


@needs_nix
def test_nar_hash_matches_nix_hash(tree):
    digest, size = nar.nar_hash(tree)
    base16 = subprocess.run([NIX_HASH, "--type", "sha256", tree], capture_output=True,
                            text=True, check=True).stdout.strip()
    base32 = subprocess.run([NIX_HASH, "--type", "sha256", "--base32", tree],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert digest.hex() == base16
    assert to_base32(digest) == base32
    assert size == len(nar.dump_bytes(tree))


def test_dump_layout_of_a_small_file(tmp_path):
    """The exact token stream of a 9-byte file: every string padded to 8 bytes."""
    p = tmp_path / "f"
    p.write_bytes(b"123456789")

    def s(b: bytes) -> bytes:
        return struct.pack("<Q", len(b)) + b + b"\0" * (-len(b) % 8)
    expected = (s(b"nix-archive-1") + s(b"(") + s(b"type") + s(b"regular") + s(b"contents")
                + s(b"123456789") + s(b")"))
    assert nar.dump_bytes(str(p)) == expected


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096])
@pytest.mark.parametrize("executable", [False, True])
def test_file_nar_hash_equals_hashing_the_written_file(tmp_path, size, executable):
    """The store hashes the text files it writes (.drv, toFile) from their bytes."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    p = tmp_path / "f"
    p.write_bytes(data)
    p.chmod(0o555 if executable else 0o444)
    assert nar.file_nar_hash(data, executable) == nar.nar_hash(str(p))


def test_sorted_dir_orders_entries_by_bytes(tmp_path):
    root = str(tmp_path / "root")
    _sorted_dir(root)
    data = nar.dump_bytes(root)
    positions = [data.index(struct.pack("<Q", len(n.encode())) + n.encode() + b"\0" *
                            (-len(n.encode()) % 8) + struct.pack("<Q", 4) + b"node")
                 for n in SORT_NAMES]
    by_position = [n for _, n in sorted(zip(positions, SORT_NAMES))]
    assert by_position == sorted(SORT_NAMES, key=lambda n: n.encode())
    assert by_position[:2] == [".dot", "10"] and by_position.index("A") < by_position.index("a")


# -- restoring ------------------------------------------------------------------------------------

def test_restore_round_trips(tree, tmp_path):
    data = nar.dump_bytes(tree)
    dest = str(tmp_path / "restored")
    nar.restore(io.BytesIO(data), dest)
    assert nar.dump_bytes(dest) == data
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            dst = os.path.join(dest, os.path.relpath(src, tree))
            if os.path.islink(src):
                assert os.readlink(dst) == os.readlink(src)
            elif os.path.isfile(src):
                assert bool(os.stat(dst).st_mode & 0o100) == bool(os.stat(src).st_mode & 0o100)


def _s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b + b"\0" * (-len(b) % 8)


def _file(contents: bytes) -> bytes:
    return _s(b"(") + _s(b"type") + _s(b"regular") + _s(b"contents") + _s(contents) + _s(b")")


def _dir(*entries: tuple[bytes, bytes]) -> bytes:
    out = _s(b"(") + _s(b"type") + _s(b"directory")
    for name, node in entries:
        out += _s(b"entry") + _s(b"(") + _s(b"name") + _s(name) + _s(b"node") + node + _s(b")")
    return out + _s(b")")


def _archive(node: bytes) -> bytes:
    return _s(b"nix-archive-1") + node


MALICIOUS = {
    "dotdot": _archive(_dir((b"..", _file(b"escaped")))),
    "dot": _archive(_dir((b".", _file(b"x")))),
    "slash": _archive(_dir((b"a/b", _file(b"x")))),
    "absolute": _archive(_dir((b"/etc", _file(b"x")))),
    "empty-name": _archive(_dir((b"", _file(b"x")))),
    "nul-name": _archive(_dir((b"a\0b", _file(b"x")))),
    "unsorted": _archive(_dir((b"b", _file(b"1")), (b"a", _file(b"2")))),
    "duplicate": _archive(_dir((b"a", _file(b"1")), (b"a", _file(b"2")))),
    "duplicate-dir-over-file": _archive(_dir((b"a", _file(b"1")), (b"a", _dir()))),
    "bad-magic": _s(b"nix-archive-2") + _file(b"x"),
    "unknown-type": _archive(_s(b"(") + _s(b"type") + _s(b"fifo") + _s(b")")),
    "nonzero-padding": _archive(_file(b"abc"))[:-16 - 5] + b"\x01" * 5 + _s(b")"),
    "truncated-contents": _archive(_file(b"0123456789abcdef"))[:-20],
    "missing-close": _archive(_file(b"x"))[:-16],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_restore_rejects(case, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    dest = parent / "out"
    with pytest.raises(nar.NarError):
        nar.restore(io.BytesIO(MALICIOUS[case]), str(dest))
    # Nothing escaped the target: the parent holds at most the (partial) target itself.
    assert set(os.listdir(parent)) <= {"out"}
    assert not (tmp_path / "escaped").exists()


# Nix 2.8 restores a directory whose entries are out of order (the check came later); dtx is
# stricter, since an unsorted archive cannot be the NAR of anything.
NIX_ACCEPTS = {"unsorted"}


@needs_nix
@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_nix_rejects_the_same_archives(case, tmp_path):
    r = subprocess.run([NIX_STORE, "--restore", str(tmp_path / "out")],
                       input=MALICIOUS[case], capture_output=True)
    assert (r.returncode == 0) == (case in NIX_ACCEPTS), r.stderr


def test_restore_rejects_every_truncation(tmp_path):
    """Cut a small archive at every byte offset: each prefix fails cleanly."""
    root = str(tmp_path / "root")
    _nested(root)
    data = nar.dump_bytes(root)
    for i, cut in enumerate(range(0, len(data), 7)):
        with pytest.raises(nar.NarError):
            nar.restore(io.BytesIO(data[:cut]), str(tmp_path / f"t{i}"))


def test_restore_refuses_existing_target(tmp_path):
    dest = tmp_path / "exists"
    dest.write_bytes(b"")
    with pytest.raises(OSError):
        nar.restore(io.BytesIO(_archive(_file(b"x"))), str(dest))
