"""Debian version numbers: parsing, ordering and relations, as Debian policy §5.6.12 and dpkg
define them.

A version is `[epoch:]upstream[-revision]`. The epoch is a number (0 when absent); the revision
is what follows the last hyphen ("" when absent, which compares equal to "0"). Upstream and
revision compare by alternating runs: a run of non-digits compares character by character with
`~` before everything (even the end of the string), the end before letters, letters before other
characters; then a run of digits compares numerically (leading zeros do not count).

What must stay true: `compare` agrees with `dpkg --compare-versions` on every valid version
(tests/debian/test_version.py checks it on generated pairs).
"""

from __future__ import annotations

import functools
import re

RELATIONS = ("<<", "<=", "=", ">=", ">>", "<", ">")

_VALID_UPSTREAM = re.compile(r"[A-Za-z0-9.+~:-]+\Z")  # policy wants a leading digit; dpkg only warns
_VALID_REVISION = re.compile(r"[A-Za-z0-9.+~]+\Z")


class VersionError(ValueError):
    pass


@functools.total_ordering
class Version:
    """A parsed Debian version; instances order as dpkg orders them."""

    __slots__ = ("text", "epoch", "upstream", "revision")

    def __init__(self, text: str):
        self.text = text
        self.epoch, self.upstream, self.revision = split_version(text)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def _key(self):
        return (self.epoch, self.upstream, self.revision)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _compare_parts(self._key(), other._key()) == 0

    def __lt__(self, other) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _compare_parts(self._key(), other._key()) < 0

    def __hash__(self) -> int:
        # Equal versions may be spelled differently ("1.0" and "0:1.0-0"): hash a canonical form.
        return hash((self.epoch, _canonical(self.upstream), _canonical(self.revision or "0")))


def split_version(text: str) -> tuple[int, str, str]:
    """Split a version into (epoch, upstream, revision); raise VersionError if it is invalid."""
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise VersionError(f"invalid version '{text}'")
    epoch = 0
    rest = text
    if ":" in text:
        head, rest = text.split(":", 1)
        if not head.isdigit():
            raise VersionError(f"invalid epoch in version '{text}'")
        epoch = int(head)
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    if not upstream or not _VALID_UPSTREAM.match(upstream):
        raise VersionError(f"invalid upstream version in '{text}'")
    if sep and not _VALID_REVISION.match(revision):
        raise VersionError(f"invalid revision in version '{text}'")
    return epoch, upstream, revision


def _order(c: str) -> int:
    """Return the sort weight of one character of a non-digit run ("" is the end)."""
    if c == "~":
        return -1
    if c == "" or c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def compare_part(a: str, b: str) -> int:
    """Compare two upstream versions or revisions; return <0, 0 or >0."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        # A run of non-digits, character by character.
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ca = a[i] if i < la else ""
            cb = b[j] if j < lb else ""
            oa, ob = _order(ca), _order(cb)
            if oa != ob:
                return oa - ob
            i += 1
            j += 1
        # A run of digits, numerically.
        si = i
        while i < la and a[i].isdigit():
            i += 1
        sj = j
        while j < lb and b[j].isdigit():
            j += 1
        na = int(a[si:i]) if i > si else 0
        nb = int(b[sj:j]) if j > sj else 0
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _compare_parts(a: tuple[int, str, str], b: tuple[int, str, str]) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    return compare_part(a[1], b[1]) or compare_part(a[2], b[2])


def _canonical(part: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group())), part)


def compare(a: str | Version, b: str | Version) -> int:
    """Compare two versions as `dpkg --compare-versions` does; return -1, 0 or 1."""
    va = a if isinstance(a, Version) else Version(a)
    vb = b if isinstance(b, Version) else Version(b)
    c = _compare_parts(va._key(), vb._key())
    return (c > 0) - (c < 0)


def satisfies(version: str | Version, relation: str, wanted: str | Version) -> bool:
    """Return whether `version relation wanted` holds; `<` and `>` are the obsolete spellings
    of `<=` and `>=`."""
    c = compare(version, wanted)
    if relation == "<<":
        return c < 0
    if relation in ("<=", "<"):
        return c <= 0
    if relation == "=":
        return c == 0
    if relation in (">=", ">"):
        return c >= 0
    if relation == ">>":
        return c > 0
    raise VersionError(f"unknown version relation '{relation}'")
