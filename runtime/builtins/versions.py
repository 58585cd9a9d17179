"""Version strings: `splitVersion` and `compareVersions`, with Nix's component rules.

A version is a sequence of components separated by `.` and `-` (several separators in a row
count as one). A component is a maximal run of digits or a maximal run of other characters.
Two components compare as follows, in order: two numbers (that fit in a C `int`) numerically;
an empty (missing) component is older than a number; `pre` is older than anything else; a
number is newer than a non-number (`2.3a` < `2.3.1`); otherwise bytewise. Comparison works on
bytes, like Nix: a digit is an ASCII digit and ordering is that of the UTF-8 encodings.
"""

from __future__ import annotations

from ..values import want_string
from . import builtin

_SEPARATORS = b".-"
_INT_MAX = 2**31 - 1


def next_component(v: bytes, p: int) -> tuple[bytes, int]:
    """Return the component of `v` at or after `p` (b"" at the end) and the position after it."""
    n = len(v)
    while p < n and v[p] in _SEPARATORS:
        p += 1
    start = p
    if p < n and 48 <= v[p] <= 57:
        while p < n and 48 <= v[p] <= 57:
            p += 1
    else:
        while p < n and not (48 <= v[p] <= 57) and v[p] not in _SEPARATORS:
            p += 1
    return v[start:p], p


def _as_int(c: bytes):
    # Nix parses components as a C `int`; longer digit runs are compared as strings.
    if c and c.isdigit():
        n = int(c)
        if n <= _INT_MAX:
            return n
    return None


def components_less(c1: bytes, c2: bytes) -> bool:
    """Return whether component `c1` is older than `c2`."""
    n1, n2 = _as_int(c1), _as_int(c2)
    if n1 is not None and n2 is not None:
        return n1 < n2
    if c1 == b"" and n2 is not None:
        return True
    if c1 == b"pre" and c2 != b"pre":
        return True
    if c2 == b"pre":
        return False
    if n2 is not None:
        return True
    if n1 is not None:
        return False
    return c1 < c2


def compare_versions(v1: str, v2: str) -> int:
    """Return -1, 0 or 1 as version `v1` is older than, equal to or newer than `v2`."""
    b1 = v1.encode("utf-8", "surrogateescape")
    b2 = v2.encode("utf-8", "surrogateescape")
    p1 = p2 = 0
    while p1 < len(b1) or p2 < len(b2):
        c1, p1 = next_component(b1, p1)
        c2, p2 = next_component(b2, p2)
        if components_less(c1, c2):
            return -1
        if components_less(c2, c1):
            return 1
    return 0


def split_version(v: str) -> list[str]:
    """Return the components of a version string."""
    b = v.encode("utf-8", "surrogateescape")
    out = []
    p = 0
    while p < len(b):
        c, p = next_component(b, p)
        if not c:
            break
        out.append(c.decode("utf-8", "surrogateescape"))
    return out


@builtin("compareVersions", 2)
def compare_versions_builtin(s1, s2):
    """`builtins.compareVersions s1 s2`

    Compare two version strings: `-1` if `s1` is older than `s2`, `0` if they are the same
    version and `1` if `s1` is newer. Components (see `builtins.splitVersion`) are compared in
    turn: numbers numerically, `pre` before anything else, a number after a word, words
    bytewise; a missing component is older than a number.

    ```nix
    builtins.compareVersions "2.3pre1" "2.3"
    # => -1
    builtins.compareVersions "2.3.1" "2.3a"
    # => 1
    ```
    """
    return compare_versions(str(want_string(s1)), str(want_string(s2)))


@builtin("splitVersion", 1)
def split_version_builtin(s):
    """`builtins.splitVersion s`

    Split a version string into its components, as `builtins.compareVersions` sees them:
    maximal runs of digits or of other characters, with `.` and `-` as separators.

    ```nix
    builtins.splitVersion "2.0pre1-rc.3"
    # => [ "2" "0" "pre" "1" "rc" "3" ]
    ```
    """
    return split_version(str(want_string(s)))
