"""Debian version ordering and relations, checked against `dpkg --compare-versions`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from dtx.runtime.debian.version import Version, VersionError, compare, satisfies

DPKG = shutil.which("dpkg")
needs_dpkg = pytest.mark.skipif(DPKG is None, reason="dpkg is not installed")


def dpkg_compare(a: str, b: str) -> int:
    """Return -1, 0 or 1 as dpkg orders `a` and `b`."""
    for rel, result in (("lt", -1), ("eq", 0)):
        if subprocess.run([DPKG, "--compare-versions", a, rel, b]).returncode == 0:
            return result
    return 1


PAIRS = [
    ("1.0", "1.0"), ("1.0", "1.0-0"), ("1.0", "1.0.0"), ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"),
    ("1.0~~a", "1.0~~"), ("1.0a", "1.0"), ("1.0a", "1.0+"), ("1.0+", "1.0."), ("1.0-1", "1.0-1+b1"),
    ("1:0.1", "2.0"), ("0:2.0", "2.0"), ("2:1", "10:0"), ("1.01", "1.1"), ("1.010", "1.9"),
    ("2.36-9+deb12u7", "2.36-9+deb12u10"), ("7.0.15-1~deb12u1", "7.0.15-1"), ("1.2.3-4", "1.2.3-04"),
    ("a", "b"), ("1.0-a", "1.0-B"), ("1.0-1~bpo1", "1.0-1"), ("3.0.11-1~deb12u2", "3.0.11-1"),
    ("1.2-3-4", "1.2-3"), ("1:1.2:3-4", "1:1.2:3"), ("9", "10"), ("0.9", "0.10"), ("1.0", "1"),
    ("1~", "1"), ("1~", "1~~"), ("1+dfsg", "1"), ("1.0-0.1", "1.0-0"), ("2.0", "2.0-"),
]


@needs_dpkg
@pytest.mark.parametrize("a,b", PAIRS)
def test_known_pairs(a, b):
    if a.endswith("-"):
        pytest.skip("not a valid version")
    try:
        Version(b)
    except VersionError:
        with pytest.raises(VersionError):
            compare(a, b)
        return
    assert compare(a, b) == dpkg_compare(a, b), (a, b)
    assert compare(b, a) == -dpkg_compare(a, b), (b, a)


_chunk = st.text(alphabet="0123456789", min_size=1, max_size=3) | \
    st.text(alphabet="abzAZ.+~", min_size=1, max_size=2)
_upstream = st.builds(lambda d, rest: d + "".join(rest),
                      st.text(alphabet="0123456789", min_size=1, max_size=2),
                      st.lists(_chunk, max_size=4))
_revision = st.lists(st.text(alphabet="0123456789", min_size=1, max_size=2) |
                     st.text(alphabet="ab.+~", min_size=1, max_size=2), min_size=1, max_size=3) \
    .map("".join)


@st.composite
def versions(draw) -> str:
    epoch = draw(st.sampled_from(["", "", "", "0:", "1:", "2:"]))
    up = draw(_upstream)
    rev = draw(st.one_of(st.just(""), _revision.map(lambda r: "-" + r)))
    return epoch + up + rev


@st.composite
def close_pairs(draw) -> tuple[str, str]:
    """Two versions that often share a prefix, so the interesting comparisons happen."""
    a = draw(versions())
    if draw(st.booleans()):
        return a, draw(versions())
    cut = draw(st.integers(0, len(a)))
    b = a[:cut] + draw(st.sampled_from(["", "~", "a", "0", "1", ".", "+", "~a", "-1"]))
    try:
        Version(b)
    except VersionError:
        b = a
    return a, b


@needs_dpkg
@settings(max_examples=300, deadline=None)
@given(close_pairs())
def test_random_pairs_agree_with_dpkg(pair):
    a, b = pair
    assert compare(a, b) == dpkg_compare(a, b)


@settings(max_examples=300, deadline=None)
@given(versions(), versions(), versions())
def test_total_order(a, b, c):
    assert compare(a, b) == -compare(b, a)
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0
    if compare(a, b) == 0:
        assert hash(Version(a)) == hash(Version(b))


@pytest.mark.parametrize("v,rel,w,ok", [
    ("1.0", "<<", "1.1", True), ("1.1", "<<", "1.1", False),
    ("1.1", "<=", "1.1", True), ("1.2", "<=", "1.1", False),
    ("1.1", "=", "1.1-0", True), ("1.1", "=", "1.1-1", False),
    ("1.1", ">=", "1.1", True), ("1.0", ">=", "1.1", False),
    ("1.2", ">>", "1.1", True), ("1.1", ">>", "1.1", False),
    ("1.1", "<", "1.1", True), ("1.0", "<", "1.1", True), ("1.2", "<", "1.1", False),
    ("1.1", ">", "1.1", True), ("1.2", ">", "1.1", True), ("1.0", ">", "1.1", False),
])
def test_relations(v, rel, w, ok):
    assert satisfies(v, rel, w) is ok


@needs_dpkg
@pytest.mark.parametrize("v,rel,w", [
    ("1.0", "<<", "1.1"), ("1.1", "<=", "1.1"), ("1.2", "<", "1.1"), ("1.1", ">", "1.1"),
    ("1.0", ">", "1.1"), ("1.1", "=", "1.1-0"), ("2", ">>", "1:1"),
])
def test_relations_agree_with_dpkg(v, rel, w):
    expected = subprocess.run([DPKG, "--compare-versions", v, rel, w],
                              stderr=subprocess.DEVNULL).returncode == 0
    assert satisfies(v, rel, w) is expected


@pytest.mark.parametrize("bad", ["", "1 0", "x:1.0", "1.0-", "1.0-a_b", ":1"])
def test_invalid_versions(bad):
    with pytest.raises(VersionError):
        Version(bad)


def test_unknown_relation():
    with pytest.raises(VersionError, match="unknown version relation"):
        satisfies("1", "!=", "1")
