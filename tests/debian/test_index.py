"""Reading an archive: where it is (mirror, apt sources), Release/InRelease, verified and
cached Packages indexes, and the errors for 404, unreachable hosts and bad hashes."""

from __future__ import annotations

import socket

import pytest

from dtx.runtime.debian.index import (ArchiveError, NotFound, Source, apt_sources,
                                      configured_sources, load_archive, parse_release,
                                      strip_signature)


def test_mirror_sources(monkeypatch):
    monkeypatch.setenv("DTX_DEBIAN_MIRROR", "http://mirror.invalid/debian/")
    got = configured_sources("trial", apt_dir="/nonexistent")
    assert [(s.url, s.suite, s.optional) for s in got] == [
        ("http://mirror.invalid/debian", "trial", False),
        ("http://mirror.invalid/debian", "trial-updates", True),
        ("http://mirror.invalid/debian", "trial-security", True),
        ("http://mirror.invalid/debian-security", "trial-security", True)]
    monkeypatch.setenv("DTX_DEBIAN_SECURITY_MIRROR", "http://sec.invalid/x")
    assert configured_sources("trial", apt_dir="/nonexistent")[2].url == "http://sec.invalid/x"


def test_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://a.invalid/debian trial main contrib\n"
        "deb-src http://a.invalid/debian trial main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://a.invalid/debian\nSuites: trial-updates\nComponents: main\n\n"
        "Types: deb deb-src\n# a comment\nURIs: http://s.invalid/debian-security\n"
        "Suites: trial-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.invalid/x\nSuites: trial\nComponents: main\nEnabled: no\n")
    (tmp_path / "sources.list.d" / "vendor.list").write_text(
        "deb http://vendor.invalid/apt vendor-trial main\n")
    (tmp_path / "sources.list.d" / "flat.list").write_text("deb http://flat.invalid/ ./\n")
    assert apt_sources(str(tmp_path))[0] == ("http://a.invalid/debian", "trial",
                                             ("main", "contrib"))
    got = configured_sources(apt_dir=str(tmp_path), environ={})
    assert [(s.url, s.suite, s.components, s.optional) for s in got] == [
        ("http://a.invalid/debian", "trial", ("main", "contrib"), False),
        ("http://a.invalid/debian", "trial-updates", ("main",), True),
        ("http://s.invalid/debian-security", "trial-security", ("main",), True)]
    with pytest.raises(ArchiveError, match="no entry for suite 'other'"):
        configured_sources("other", apt_dir=str(tmp_path), environ={})


def test_no_archive_configured(tmp_path):
    with pytest.raises(ArchiveError, match="set DTX_DEBIAN_MIRROR"):
        configured_sources(apt_dir=str(tmp_path), environ={})


def test_strip_signature_and_release():
    text = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSuite: x\nSHA256:\n"
            " " + "ab" * 32 + " 12 main/binary-amd64/Packages\n- -dash escaped\n"
            "-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n")
    assert "-dash escaped" in strip_signature(text).splitlines()
    release = parse_release(text)
    assert release["fields"]["Suite"] == "x"
    assert release["files"] == {"main/binary-amd64/Packages": ("ab" * 32, 12)}


def test_load_with_inrelease(archive):
    archive.publish(inrelease=True)
    got = load_archive(configured_sources("trial", mirror=archive.url()))
    assert [s.suite for s in got.sources] == ["trial", "trial-updates", "trial-security"]
    assert got.sources[2].url == archive.url("debian-security")
    hello = next(p for p in got.packages if p.name == "hello")
    assert (hello.version, hello.depends, hello.priority) == ("2.10-3", "libc6 (>= 2.34)",
                                                              "optional")
    assert hello.url == archive.url() + "/pool/main/h/hello/hello_2.10-3_amd64.deb"


def test_indexes_are_cached_by_hash(archive, scratch_cache):
    sources = configured_sources("trial", mirror=archive.url())
    load_archive(sources)
    cached = sorted(p.name for p in scratch_cache.iterdir())
    assert cached and all(name.endswith("-Packages.xz") for name in cached)
    for suite in ("trial", "trial-updates"):
        for name in ("Packages", "Packages.xz"):
            (archive.root / "debian/dists" / suite / "main/binary-amd64" / name).unlink()
    assert len(load_archive(sources).packages) > 20


def test_falls_back_to_plain_index(archive):
    (archive.root / "debian/dists/trial/main/binary-amd64/Packages.xz").unlink()
    got = load_archive([Source(archive.url(), "trial", ("main",))])
    assert any(p.name == "app" for p in got.packages)


def test_index_hash_mismatch(archive):
    index = archive.root / "debian/dists/trial/main/binary-amd64/Packages.xz"
    index.write_bytes(index.read_bytes()[:-1] + b"\0")
    with pytest.raises(ArchiveError, match=r"hash mismatch for '.*/dists/trial/main/"
                                           r"binary-amd64/Packages.xz': the Release file lists"):
        load_archive(configured_sources("trial", mirror=archive.url()))


def test_missing_suite_is_404(archive):
    with pytest.raises(NotFound, match=r"has no suite 'sid' \(neither '.*/dists/sid/InRelease'"):
        load_archive(configured_sources("sid", mirror=archive.url()))


def test_missing_optional_suites_are_skipped(archive):
    got = load_archive([Source(archive.url(), "trial", ("main",)),
                        Source(archive.url(), "nope-updates", ("main",), optional=True)])
    assert [s.suite for s in got.sources] == ["trial"]


def test_missing_component(archive):
    with pytest.raises(ArchiveError, match="no Packages index for component 'contrib'"):
        load_archive([Source(archive.url(), "trial", ("contrib",))])


def test_unreachable_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ArchiveError, match=f"unable to reach the Debian archive at "
                                           f"'http://127.0.0.1:{port}/debian/dists/trial/"):
        load_archive([Source(f"http://127.0.0.1:{port}/debian", "trial", ("main",))])
