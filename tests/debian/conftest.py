"""Fixtures for the Debian tests: a scratch index cache and a local archive served on 127.0.0.1.

The standard archive (suite `trial`, with `trial-updates` in the same archive and
`trial-security` in a sibling `debian-security` archive, as Debian lays them out):

  app          Pre-Depends prelib; Depends libfoo (>= 1.0), default-mta | mail-transport-agent, awk
  libfoo       1.0 in trial, 1.1 in trial-updates
  prelib       2.0
  postfix      Provides mail-transport-agent (optional);  exim  Provides it too (standard)
  mawk         Provides awk;  data-all  Architecture: all
  needs-vp     Depends libvirt-api (>= 2): old-provider provides 1, new-provider provides 2.5
  alt-user     Depends missing-pkg | libfoo
  deep-alt     Depends broken | prelib, where broken needs a package nobody has
  both         Depends libfoo, other-lib | libfoo
  top          Depends broken-app, which Depends libmissing (>= 2)
  wants-new    Depends prelib (>= 3)
  arch-dep     Depends libfoo:any, prelib:native, data-all
  foreign      Depends libx:i386
  libsec       1.0 in trial, 1.0+deb1u1 in trial-security
  hello        from fixtures/hello, Depends libc6 (>= 2.34);  libc6 2.36
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from debian_archive import LocalArchive, fixture_tree  # noqa: E402


@pytest.fixture(autouse=True)
def scratch_cache(tmp_path, monkeypatch):
    """Keep downloaded indexes out of the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("DTX_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("DTX_DEBIAN_SECURITY_MIRROR", raising=False)
    return cache / "dtx" / "debian"


def populate(a: LocalArchive, tmp: Path) -> None:
    add = a.add
    add("trial", "app", "1.0", pre_depends="prelib",
        depends="libfoo (>= 1.0), default-mta | mail-transport-agent, awk")
    add("trial", "libfoo", "1.0")
    add("trial-updates", "libfoo", "1.1")
    add("trial", "prelib", "2.0")
    add("trial", "postfix", "3.7", provides="mail-transport-agent", priority="optional")
    add("trial", "exim", "4.96", provides="mail-transport-agent", priority="standard")
    add("trial", "mawk", "1.3.4", provides="awk", priority="required")
    add("trial", "data-all", "1", arch="all")
    add("trial", "needs-vp", "1", depends="libvirt-api (>= 2)")
    add("trial", "old-provider", "1", provides="libvirt-api (= 1)")
    add("trial", "new-provider", "1", provides="libvirt-api (= 2.5)")
    add("trial", "alt-user", "1", depends="missing-pkg | libfoo")
    add("trial", "deep-alt", "1", depends="broken | prelib")
    add("trial", "broken", "1", depends="nobody-has-this")
    add("trial", "both", "1", depends="libfoo, other-lib | libfoo")
    add("trial", "other-lib", "1")
    add("trial", "top", "1", depends="broken-app")
    add("trial", "broken-app", "1", depends="libmissing (>= 2)")
    add("trial", "wants-new", "1", depends="prelib (>= 3)")
    add("trial", "arch-dep", "1", depends="libfoo:any, prelib:native, data-all")
    add("trial", "foreign", "1", depends="libx:i386")
    add("trial", "libx", "1", arch="i386")
    add("trial", "libsec", "1.0")
    add("trial-security", "libsec", "1.0+deb1u1", base="debian-security")
    add("trial", "libc6", "2.36")
    a.add_tree("trial", fixture_tree("hello", tmp))


@pytest.fixture(scope="session")
def archive_template(tmp_path_factory):
    """The standard archive's `.deb`s, built once per session."""
    tmp = tmp_path_factory.mktemp("debian-template")
    a = LocalArchive(tmp / "archive")
    populate(a, tmp)
    return a


@pytest.fixture
def archive(tmp_path, archive_template):
    """A private copy of the standard archive, published and served; stopped after the test."""
    a = archive_template.copy(tmp_path / "archive")
    a.publish()
    a.start()
    yield a
    a.stop()
