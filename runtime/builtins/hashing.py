"""Hashes: the `hashString` builtin and the textual forms of a digest Nix uses.

Nix writes digests in base 16 (lowercase hex), in its own base 32, or in base 64 (which SRI
strings `algo-base64` use). Its base 32 is not RFC 4648's: the alphabet
`0123456789abcdfghijklmnpqrsvwxyz` omits `e o u t`, and the digest is read as one little-endian
number whose 5-bit groups are written most significant first. These formatters and parsers are
plain functions so that the store reuses them; `hashFile` belongs to the store layer.
"""

from __future__ import annotations

import base64
import hashlib

from ..errors import EvalError
from ..values import want_string
from . import builtin
from .regex import want_string_no_context

BASE32_CHARS = "0123456789abcdfghijklmnpqrsvwxyz"
_BASE32_INDEX = {c: i for i, c in enumerate(BASE32_CHARS)}

HASH_SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


def base32_len(size: int) -> int:
    """Return the length of the base-32 form of a digest of `size` bytes."""
    return (size * 8 - 1) // 5 + 1


def to_base32(digest: bytes) -> str:
    """Format a digest in Nix's base 32."""
    out = []
    for n in range(base32_len(len(digest)) - 1, -1, -1):
        b = n * 5
        i, j = divmod(b, 8)
        c = digest[i] >> j
        if i + 1 < len(digest):
            c |= digest[i + 1] << (8 - j)
        out.append(BASE32_CHARS[c & 0x1F])
    return "".join(out)


def from_base32(text: str, size: int) -> bytes:
    """Parse Nix's base 32 into a digest of `size` bytes; raise ValueError if malformed."""
    if len(text) != base32_len(size):
        raise ValueError(f"invalid base-32 length for {size} bytes: '{text}'")
    out = bytearray(size)
    for n, ch in enumerate(reversed(text)):
        digit = _BASE32_INDEX.get(ch)
        if digit is None:
            raise ValueError(f"invalid base-32 character '{ch}'")
        b = n * 5
        i, j = divmod(b, 8)
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if i + 1 < size:
            out[i + 1] |= carry
        elif carry:
            raise ValueError(f"invalid base-32 hash '{text}'")
    return bytes(out)


def to_base16(digest: bytes) -> str:
    """Format a digest in lowercase hexadecimal."""
    return digest.hex()


def to_base64(digest: bytes) -> str:
    """Format a digest in standard (padded) base 64."""
    return base64.b64encode(digest).decode("ascii")


def to_sri(algo: str, digest: bytes) -> str:
    """Format a digest as an SRI hash, `sha256-…`."""
    return f"{algo}-{to_base64(digest)}"


def hash_bytes(algo: str, data: bytes) -> bytes:
    """Return the digest of `data` with one of Nix's algorithms (md5, sha1, sha256, sha512)."""
    if algo not in HASH_SIZES:
        raise EvalError(f"unknown hash algorithm '{algo}'")
    return hashlib.new(algo, data).digest()


@builtin("hashString", 2)
def hash_string(algo, s):
    """`builtins.hashString type s`

    Return the hash of the string `s` (its UTF-8 bytes) in lowercase hexadecimal. `type` is one
    of `"md5"`, `"sha1"`, `"sha256"` or `"sha512"`. The result has no context.

    ```nix
    builtins.hashString "sha256" "abc"
    # => "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    ```
    """
    name = want_string_no_context(algo)
    if name not in HASH_SIZES:
        raise EvalError(f"unknown hash algorithm '{name}'")
    data = str(want_string(s)).encode("utf-8", "surrogateescape")
    return to_base16(hash_bytes(name, data))
