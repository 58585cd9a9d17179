"""dtx-hash against nix-hash (Nix 2.8): NAR and flat hashes of files, executables, symlinks and
nested directories in every type and format, hash conversions and their error messages."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from dtx.runtime.cli import hash as hash_cli

NIX_HASH = shutil.which("nix-hash")
needs_nix = pytest.mark.skipif(NIX_HASH is None, reason="nix-hash (nix-bin) is not installed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("hash")
    (root / "file").write_bytes(b"hello\n")
    (root / "empty").write_bytes(b"")
    exe = root / "exe"
    exe.write_bytes(b"#!/bin/sh\necho hi\n")
    exe.chmod(0o755)
    os.symlink("file", root / "link")
    d = root / "dir"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "emptydir").mkdir()
    (d / "a").write_bytes(b"a" * 1000)
    (d / "sub" / "run").write_bytes(b"binary\0data")
    (d / "sub" / "run").chmod(0o755)
    os.symlink("../a", d / "sub" / "up")
    os.symlink("/nonexistent/target", d / "dangling")
    return root


def dtx(argv, capsys):
    out = io.StringIO()
    status = hash_cli.run(argv, out)
    err = capsys.readouterr().err.replace("dtx-hash", "nix-hash")
    return status, out.getvalue(), err


def nix(argv):
    r = subprocess.run(["nix-hash", *argv], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


FORMS = [[], ["--base32"], ["--truncate"], ["--base32", "--truncate"]]
TYPES = [[], ["--type", "md5"], ["--type", "sha1"], ["--type", "sha256"], ["--type", "sha512"]]
PATHS = ["file", "empty", "exe", "link", "dir", "dir/sub", "dir/dangling"]


@needs_nix
@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("typ", TYPES, ids=lambda t: t[-1] if t else "default")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: "+".join(f) or "base16")
def test_paths_match_nix_hash(tree, capsys, flat, typ, form):
    paths = [p for p in PATHS if not flat or p in ("file", "empty", "exe", "link")]
    argv = typ + form + (["--flat"] if flat else []) + [str(tree / p) for p in paths]
    assert dtx(argv, capsys) == nix(argv)


@needs_nix
@pytest.mark.parametrize("argv", [
    ["--flat", "dir"], ["nonexistent"], ["--flat", "nonexistent"], ["--type", "sha3", "file"],
    ["--type"], ["--bogus"], [], ["file", "nonexistent", "exe"],
])
def test_errors_match_nix_hash(tree, capsys, argv, monkeypatch):
    monkeypatch.chdir(tree)
    assert dtx(argv, capsys) == nix(argv)


SHA256_HEX = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
SHA256_B32 = "1bp7cri8hplaz6hbz0v4f0nl44rl84q1sg25kgwqzipzd1mv89ic"
SHA256_SRI = "sha256-LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="

CONVERSIONS = [
    SHA256_HEX, SHA256_B32, SHA256_SRI, "sha256:" + SHA256_HEX, "sha256:" + SHA256_B32,
    SHA256_SRI.split("-", 1)[1], SHA256_SRI.rstrip("="),
    SHA256_HEX[:-1] + "z", SHA256_B32[:-1] + "e", SHA256_B32[:-1] + "z",
    "sha256-!!!!", "sha256-AAAA", "sha256-", SHA256_SRI.split("-", 1)[1][:-2] + "===",
    "abc", "blah:abc", "md5:abc", "sha1:" + "0" * 40,
]


@needs_nix
@pytest.mark.parametrize("to", ["--to-base16", "--to-base32"])
@pytest.mark.parametrize("text", CONVERSIONS)
def test_conversions_match_nix_hash(capsys, to, text):
    argv = ["--type", "sha256", to, text]
    assert dtx(argv, capsys) == nix(argv)


@needs_nix
@pytest.mark.parametrize("argv", [
    ["--to-base32", "--type", "md5", "d41d8cd98f00b204e9800998ecf8427e"],
    ["--to-base16", "--to-base32", "--type", "sha1", "sha1:" + "1" * 40],
    ["--type", "sha512", "--to-base16", "sha512-" + "A" * 86 + "=="],
    ["--type", "sha256", "--to-base32", SHA256_HEX, SHA256_B32, "bad"],
    ["--to-base32"],
])
def test_more_conversions_match_nix_hash(capsys, argv):
    assert dtx(argv, capsys) == nix(argv)


def test_extensions_sri_base64_and_untyped_sri(tree, capsys):
    assert dtx(["--type", "sha256", "--to-sri", SHA256_HEX], capsys) == (0, SHA256_SRI + "\n", "")
    assert dtx(["--to-base16", SHA256_SRI], capsys) == (0, SHA256_HEX + "\n", "")
    assert dtx(["--to-base32", "sha256:" + SHA256_HEX], capsys) == (0, SHA256_B32 + "\n", "")
    assert dtx(["--to-base64", "--type", "sha256", SHA256_B32], capsys)[1] == \
        SHA256_SRI.split("-", 1)[1] + "\n"
    status, out, _ = dtx(["--type", "sha256", "--sri", str(tree / "file")], capsys)
    hexed = dtx(["--type", "sha256", str(tree / "file")], capsys)[1].strip()
    assert status == 0
    assert dtx(["--to-base16", out.strip()], capsys)[1].strip() == hexed
    assert dtx(["--to-base16", "deadbeef"], capsys)[0] == 1  # a bare digest still needs a type


@needs_nix
def test_console_script(tree):
    r = subprocess.run(["dtx-hash", "--type", "sha256", "--base32", str(tree / "dir")],
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout) == nix(["--type", "sha256", "--base32",
                                            str(tree / "dir")])[:2]
    r = subprocess.run(["dtx-hash", "--nope"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr == ("error: unrecognised flag '--nope'\n"
                        "Try 'dtx-hash --help' for more information.\n")
