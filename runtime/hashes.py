"""Hash digests and the textual forms Nix writes them in.

Nix writes digests in base 16 (lowercase hex), in its own base 32, or in base 64 (which SRI
strings `algo-base64` use). Its base 32 is not RFC 4648's: the alphabet
`0123456789abcdfghijklmnpqrsvwxyz` omits `e o u t`, and the digest is read as one little-endian
number whose 5-bit groups are written most significant first. `Hash.parse` accepts every form
Nix accepts for `outputHash`, `nix-hash --to-*` and fetchers: base 16, base 32, base 64, and SRI,
optionally prefixed with `algo:`.
"""

from __future__ import annotations

import base64
import hashlib

BASE32_CHARS = "0123456789abcdfghijklmnpqrsvwxyz"
_BASE32_INDEX = {c: i for i, c in enumerate(BASE32_CHARS)}

HASH_SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


def base32_len(size: int) -> int:
    """Return the length of the base-32 form of a digest of `size` bytes."""
    return (size * 8 - 1) // 5 + 1


def to_base32(digest: bytes) -> str:
    """Format a digest in Nix's base 32."""
    n = int.from_bytes(digest, "little")
    chars = BASE32_CHARS
    return "".join(chars[(n >> (5 * i)) & 0x1F] for i in range(base32_len(len(digest)) - 1, -1, -1))


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


class UnknownHashAlgorithm(ValueError):
    def __init__(self, algo: str):
        super().__init__(f"unknown hash algorithm '{algo}'")
        self.algo = algo


def hash_bytes(algo: str, data: bytes) -> bytes:
    """Return the digest of `data` with one of Nix's algorithms (md5, sha1, sha256, sha512)."""
    if algo not in HASH_SIZES:
        raise UnknownHashAlgorithm(algo)
    return hashlib.new(algo, data).digest()


def compress_hash(digest: bytes, size: int) -> bytes:
    """Fold a digest to `size` bytes by XOR, as Nix does for store path hashes."""
    out = bytearray(size)
    for i, b in enumerate(digest):
        out[i % size] ^= b
    return bytes(out)


class Hash:
    """A digest together with its algorithm."""

    __slots__ = ("algo", "digest")

    def __init__(self, algo: str, digest: bytes):
        if algo not in HASH_SIZES:
            raise UnknownHashAlgorithm(algo)
        self.algo = algo
        self.digest = digest

    @classmethod
    def of(cls, algo: str, data: bytes) -> "Hash":
        return cls(algo, hash_bytes(algo, data))

    def base16(self) -> str:
        return to_base16(self.digest)

    def base32(self) -> str:
        return to_base32(self.digest)

    def base64(self) -> str:
        return to_base64(self.digest)

    def sri(self) -> str:
        return to_sri(self.algo, self.digest)

    def __eq__(self, other):
        return isinstance(other, Hash) and (self.algo, self.digest) == (other.algo, other.digest)

    def __hash__(self):
        return hash((self.algo, self.digest))

    def __repr__(self):
        return f"Hash({self.sri()})"

    @classmethod
    def parse(cls, text: str, algo: str | None = None) -> "Hash":
        """Parse a hash in any form Nix accepts: SRI (`sha256-…`), `algo:digest`, or a bare
        base-16, base-32 or base-64 digest when `algo` is given. Raise ValueError otherwise."""
        rest = text
        prefixed = None
        if ":" in text:
            prefixed, rest = text.split(":", 1)
        elif "-" in text and text.split("-", 1)[0] in HASH_SIZES:
            sri_algo, b64 = text.split("-", 1)
            if algo is not None and algo != sri_algo:
                raise ValueError(f"hash '{text}' should have type '{algo}'")
            try:
                digest = base64.b64decode(b64, validate=True)
            except (ValueError, TypeError):
                raise ValueError(f"invalid SRI hash '{text}'") from None
            if len(digest) != HASH_SIZES[sri_algo]:
                raise ValueError(f"invalid SRI hash '{b64}'")
            return cls(sri_algo, digest)
        if prefixed is not None:
            if prefixed not in HASH_SIZES:
                raise UnknownHashAlgorithm(prefixed)
            if algo is not None and algo != prefixed:
                raise ValueError(f"hash '{text}' should have type '{algo}'")
            algo = prefixed
        if algo is None:
            raise ValueError(f"hash '{text}' does not include a type, nor is the type otherwise "
                             "known from context")
        if algo not in HASH_SIZES:
            raise UnknownHashAlgorithm(algo)
        size = HASH_SIZES[algo]
        if len(rest) == size * 2:
            try:
                return cls(algo, bytes.fromhex(rest))
            except ValueError:
                raise ValueError(f"invalid base-16 hash '{text}'") from None
        if len(rest) == base32_len(size):
            return cls(algo, from_base32(rest, size))
        if len(rest) == len(to_base64(bytes(size))):
            try:
                return cls(algo, base64.b64decode(rest, validate=True))
            except (ValueError, TypeError):
                raise ValueError(f"invalid base-64 hash '{text}'") from None
        raise ValueError(f"hash '{text}' has wrong length for hash type '{algo}'")
