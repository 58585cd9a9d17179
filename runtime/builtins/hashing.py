"""The `hashString` builtin. The digest formats (base 16, Nix base 32, base 64, SRI) live in
runtime.hashes, shared with the store."""

from __future__ import annotations

from ..errors import EvalError
from ..hashes import HASH_SIZES, hash_bytes, to_base16
from ..values import want_string
from . import builtin
from .regex import want_string_no_context


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
