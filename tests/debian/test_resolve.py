"""Resolution against the local archive: alternatives, virtual packages, versions, Pre-Depends,
architecture qualifiers, suite overrides and the errors that name the chain."""

from __future__ import annotations

import pytest

from dtx.runtime.debian.index import configured_sources, load_archive
from dtx.runtime.debian.resolve import ResolveError, parse_relations, resolve


@pytest.fixture
def loaded(archive):
    return load_archive(configured_sources("trial", mirror=archive.url()))


def closure(loaded, *names):
    return {e.name: e for e in resolve(loaded, list(names))}


def test_app_closure(loaded):
    got = closure(loaded, "app")
    # Pre-Depends is followed; the first alternative is missing, so a provider of the virtual
    # mail-transport-agent is chosen (the standard-priority one); awk comes from mawk.
    assert sorted(got) == ["app", "exim", "libfoo", "mawk", "prelib"]
    assert got["app"].depends == ["exim", "libfoo", "mawk", "prelib"]
    assert got["app"].filename == "pool/main/a/app/app_1.0_amd64.deb"
    assert got["app"].url == got["app"].filename


def test_entries_sorted_with_hashes(loaded, archive):
    entries = resolve(loaded, ["app"])
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    import hashlib
    for e in entries:
        data = (archive.root / "debian" / e.filename).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e.sha256 and len(data) == e.size


def test_updates_suite_overrides_main(loaded):
    got = closure(loaded, "libfoo")
    assert got["libfoo"].version == "1.1" and got["libfoo"].suite == "trial-updates"


def test_security_suite_on_sibling_archive(loaded):
    got = closure(loaded, "libsec")
    assert got["libsec"].version == "1.0+deb1u1" and got["libsec"].suite == "trial-security"


def test_explicit_older_version(loaded):
    assert closure(loaded, "libfoo=1.0")["libfoo"].version == "1.0"


def test_versioned_provides(loaded):
    got = closure(loaded, "needs-vp")
    assert "new-provider" in got and "old-provider" not in got
    assert got["needs-vp"].depends == ["new-provider"]


def test_alternative_first_missing(loaded):
    assert sorted(closure(loaded, "alt-user")) == ["alt-user", "libfoo"]


def test_alternative_backtracks_when_its_closure_fails(loaded):
    assert sorted(closure(loaded, "deep-alt")) == ["deep-alt", "prelib"]


def test_alternative_prefers_chosen(loaded):
    got = closure(loaded, "both")
    assert "other-lib" not in got and got["both"].depends == ["libfoo"]


def test_arch_qualifiers_and_arch_all(loaded):
    got = closure(loaded, "arch-dep")
    assert sorted(got) == ["arch-dep", "data-all", "libfoo", "prelib"]
    assert got["data-all"].architecture == "all"


def test_foreign_architecture_fails(loaded):
    with pytest.raises(ResolveError, match=r"foreign depends on libx:i386 is for another arch"):
        resolve(loaded, ["foreign"])


def test_missing_dependency_names_the_chain(loaded):
    with pytest.raises(ResolveError) as e:
        resolve(loaded, ["top"])
    assert str(e.value) == ("broken-app depends on libmissing (>= 2) which is not in the archive "
                            "(dependency chain: top -> broken-app)")


def test_unsatisfiable_version(loaded):
    with pytest.raises(ResolveError, match=r"wants-new depends on prelib \(>= 3\) but the "
                                           r"archive has only prelib 2\.0"):
        resolve(loaded, ["wants-new"])


def test_unknown_request(loaded):
    with pytest.raises(ResolveError, match="package 'nope' is not in the archive"):
        resolve(loaded, ["nope"])


def test_fixture_tree_package(loaded):
    got = closure(loaded, "hello")
    assert sorted(got) == ["hello", "libc6"] and got["hello"].version == "2.10-3"


@pytest.mark.parametrize("text,expected", [
    ("a, b (>= 1) | c:any, d [!amd64], e [amd64 i386], f [i386] | g <!nocheck>",
     [["a"], ["b (>= 1)", "c:any"], ["e"], ["g"]]),
    ("x (<< 2:1.0~rc1)", [["x (<< 2:1.0~rc1)"]]),
    ("", []),
])
def test_parse_relations(text, expected):
    assert [[str(a) for a in g] for g in parse_relations(text)] == expected
