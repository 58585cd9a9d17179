"""`dtx-debian-lock`: the lock file's content and determinism, and `--check` on stale locks."""

from __future__ import annotations

import json
import shutil

import pytest

from dtx.runtime.cli.debian_lock import main


def lock(archive, tmp_path, *names, out="lock.json"):
    path = tmp_path / out
    assert main(["--mirror", archive.url(), "--suite", "trial", "-o", str(path), *names]) == 0
    return path


def test_lock_contents(archive, tmp_path):
    path = lock(archive, tmp_path, "app", "libsec")
    data = json.loads(path.read_text())
    assert data["archive"] == {"architecture": "amd64", "components": ["main"], "suite": "trial",
                               "suites": ["trial", "trial-updates", "trial-security"]}
    assert data["request"] == ["app", "libsec"]
    names = [p["name"] for p in data["packages"]]
    assert names == sorted(names) == ["app", "exim", "libfoo", "libsec", "mawk", "prelib"]
    app = data["packages"][0]
    assert set(app) == {"name", "version", "architecture", "filename", "size", "sha256",
                        "depends", "suite"}
    assert app["depends"] == ["exim", "libfoo", "mawk", "prelib"]
    assert data["packages"][2]["version"] == "1.1"
    assert "127.0.0.1" not in path.read_text()


def test_lock_is_deterministic(archive, tmp_path):
    a = lock(archive, tmp_path, "app", "hello", out="a.json").read_text()
    b = lock(archive, tmp_path, "hello", "app", out="b.json").read_text()
    text = json.loads(a)
    assert a.endswith("}\n") and not a.endswith("\n\n")
    assert a == json.dumps(text, sort_keys=True, indent=2) + "\n"
    del text["request"]
    assert text == {k: v for k, v in json.loads(b).items() if k != "request"}
    assert lock(archive, tmp_path, "app", "hello", out="c.json").read_text() == a


def test_lock_to_stdout(archive, capsys):
    assert main(["--mirror", archive.url(), "--suite", "trial", "-o", "-", "prelib"]) == 0
    assert json.loads(capsys.readouterr().out)["packages"][0]["name"] == "prelib"


def test_mirror_from_environment(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("DTX_DEBIAN_MIRROR", archive.url())
    path = tmp_path / "env.json"
    assert main(["--suite", "trial", "-o", str(path), "prelib"]) == 0


def test_missing_dependency_error(archive, tmp_path, capsys):
    assert main(["--mirror", archive.url(), "--suite", "trial", "-o", str(tmp_path / "x.json"),
                 "top"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: broken-app depends on libmissing (>= 2) which is not in the "
                          "archive (dependency chain: top -> broken-app)")
    assert not (tmp_path / "x.json").exists()


def test_no_packages_is_a_usage_error(capsys):
    assert main(["--mirror", "http://127.0.0.1:9/debian"]) == 1
    assert "no packages given" in capsys.readouterr().err


def check(archive, path, *extra):
    return main(["--mirror", archive.url(), "--check", "-o", str(path), *extra])


def test_check_fresh_lock(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    assert check(archive, path) == 0
    assert "all 5 locked packages are in the archive" in capsys.readouterr().err


def refresh(archive, path, *names):
    return (f"refresh it with: dtx-debian-lock --mirror {archive.url()} --suite trial "
            f"-o {path} {' '.join(names)}")


def test_check_file_removed_from_pool(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    archive.deb("prelib", "2.0").unlink()
    assert check(archive, path) == 1
    err = capsys.readouterr().err
    assert f"error: the lock file '{path}' is stale:" in err
    assert "prelib 2.0 (pool/main/p/prelib/prelib_2.0_amd64.deb) is no longer on the mirror" in err
    assert refresh(archive, path, "app") in err


def test_check_version_replaced(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    archive.remove("trial-updates", "libfoo", "1.1")
    archive.deb("libfoo", "1.1").unlink()
    archive.add("trial-updates", "libfoo", "1.2")
    archive.publish()
    assert check(archive, path) == 1
    err = capsys.readouterr().err
    assert ("libfoo 1.1 (pool/main/l/libfoo/libfoo_1.1_amd64.deb) is no longer in the archive's "
            "indexes; the archive now has libfoo 1.0, 1.2") in err
    assert refresh(archive, path, "app") in err


def test_check_index_lists_another_hash(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    archive.add("trial", "prelib", "2.0", priority="optional")  # rebuilt: same name, new bytes
    archive.publish()
    assert check(archive, path) == 1
    err = capsys.readouterr().err
    assert "the archive lists prelib 2.0 (pool/main/p/prelib/prelib_2.0_amd64.deb) with sha256" in err
    assert "is stale" in err


def test_check_deb_hash_mismatch(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    deb = archive.deb("mawk", "1.3.4")
    data = bytearray(deb.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: only a download can tell
    deb.write_bytes(bytes(data))
    assert check(archive, path) == 0
    capsys.readouterr()
    assert check(archive, path, "--verify-files") == 1
    err = capsys.readouterr().err
    assert "mawk 1.3.4 (pool/main/m/mawk/mawk_1.3.4_amd64.deb) on the mirror has sha256" in err
    assert "is stale" in err and refresh(archive, path, "app") in err


def test_check_deb_size_changed(archive, tmp_path, capsys):
    path = lock(archive, tmp_path, "app")
    deb = archive.deb("mawk", "1.3.4")
    deb.write_bytes(deb.read_bytes() + b"junk")
    assert check(archive, path) == 1
    assert "its hash has changed" in capsys.readouterr().err


def test_check_index_hash_mismatch(archive, tmp_path, capsys, scratch_cache):
    path = lock(archive, tmp_path, "app")
    shutil.rmtree(scratch_cache)  # a cached index (keyed by its good hash) would be used
    index = archive.root / "debian/dists/trial/main/binary-amd64/Packages.xz"
    index.write_bytes(b"\0" + index.read_bytes()[1:])
    assert check(archive, path) == 1
    assert "error: hash mismatch for '" in capsys.readouterr().err


def test_check_missing_lock(archive, tmp_path, capsys):
    assert check(archive, tmp_path / "none.json") == 1
    assert "does not exist" in capsys.readouterr().err
