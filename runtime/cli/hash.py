"""`dtx-hash`: compute and convert hashes, with the flags, output and errors of `nix-hash`.

`dtx-hash [--type ALGO] [--flat] [--base32|--base64|--sri] [--truncate] PATH…` prints one hash
per path: the hash of the path's NAR serialisation, or of the file's contents with `--flat`.
`dtx-hash --to-base16|--to-base32|--to-base64|--to-sri [--type ALGO] HASH…` converts hashes.

Nix 2.8's `nix-hash` is the reference: md5 by default, base 16 by default, the last of several
format flags wins, usage errors say "Try 'nix-hash --help'" (here 'dtx-hash --help'), and hash
parsing errors quote the digest as Nix 2.8 does. Two extensions follow newer Nix: the `--base64`,
`--sri`, `--to-base64` and `--to-sri` flags, and hashes that carry their own type (`sha256-…`,
`sha256:…`) are accepted without `--type` when converting.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys

from ..hashes import (HASH_SIZES, base32_len, compress_hash, to_base16, to_base32, to_base64,
                      to_sri)
from ..nar import dump

PROG = "dtx-hash"

USAGE = """\
Usage: dtx-hash [OPTIONS] PATH...
       dtx-hash [--type ALGO] --to-base16|--to-base32|--to-base64|--to-sri HASH...

Compute the cryptographic hash of a path (its NAR serialisation), or of a file's contents.

Options:
  --type ALGO     md5 (default), sha1, sha256 or sha512
  --flat          hash the file's contents instead of its NAR serialisation
  --base32        print the hash in Nix's base 32 (default: base 16)
  --base64        print the hash in base 64
  --sri           print the hash as an SRI string (ALGO-BASE64)
  --truncate      truncate hashes longer than 160 bits (as store paths do)
  --to-base16, --to-base32, --to-base64, --to-sri
                  convert the given hashes instead of hashing paths
  --debug         show Python tracebacks on internal errors
"""


class UsageError(Exception):
    pass


class HashError(Exception):
    pass


_B64_INDEX = {c: i for i, c in
              enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _base64_decode(text: str) -> bytes:
    """Decode base 64 leniently, as Nix 2.8 does: stop at '=', skip newlines."""
    out = bytearray()
    bits = acc = 0
    for c in text:
        if c == "=":
            break
        if c == "\n":
            continue
        digit = _B64_INDEX.get(c)
        if digit is None:
            # Nix 2.8 formats the offending character as an empty string.
            raise HashError("invalid character in Base64 string: ''")
        acc = (acc << 6) | digit
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def _base32_decode(text: str, size: int, shown: str) -> bytes:
    chars = "0123456789abcdfghijklmnpqrsvwxyz"
    out = bytearray(size)
    for n, ch in enumerate(reversed(text)):
        digit = chars.find(ch)
        if digit < 0:
            raise HashError(f"invalid base-32 hash '{shown}'")
        i, j = divmod(n * 5, 8)
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if i + 1 < size:
            out[i + 1] |= carry
        elif carry:
            raise HashError(f"invalid base-32 hash '{shown}'")
    return bytes(out)


def parse_hash(text: str, algo: str | None) -> tuple[str, bytes]:
    """Parse a hash the way Nix 2.8's `Hash(s, type)` does; return (algo, digest)."""
    rest, is_sri, prefixed = text, False, None
    sep = rest.find(":")
    if sep < 0:
        sep = rest.find("-")
        is_sri = sep >= 0
    if sep >= 0:
        prefixed = rest[:sep]
        if prefixed not in HASH_SIZES:
            raise UsageError(f"unknown hash algorithm '{prefixed}'")
        rest = rest[sep + 1:]
    if prefixed is None and algo is None:
        raise HashError(f"hash '{text}' does not include a type, nor is the type otherwise known "
                        "from context")
    if prefixed is not None and algo is not None and prefixed != algo:
        raise HashError(f"hash '{text}' should have type '{algo}'")
    algo = prefixed or algo
    size = HASH_SIZES[algo]
    if not is_sri and len(rest) == 2 * size:
        try:
            return algo, bytes.fromhex(rest)
        except ValueError:
            raise HashError(f"invalid base-16 hash '{rest}'") from None
    if not is_sri and len(rest) == base32_len(size):
        return algo, _base32_decode(rest, size, rest)
    if is_sri or len(rest) == len(to_base64(bytes(size))):
        digest = _base64_decode(rest)
        if len(digest) != size:
            raise HashError(f"invalid {'SRI' if is_sri else 'base-64'} hash '{rest}'")
        return algo, digest
    raise HashError(f"hash '{rest}' has wrong length for hash type '{algo}'")


def format_hash(algo: str, digest: bytes, form: str) -> str:
    if form == "base32":
        return to_base32(digest)
    if form == "base64":
        return to_base64(digest)
    if form == "sri":
        return to_sri(algo, digest)
    return to_base16(digest)


def hash_path(path: str, algo: str, flat: bool) -> bytes:
    """Hash a path's NAR serialisation, or (flat) a file's contents, following a symlink."""
    h = hashlib.new(algo)
    if flat:
        try:
            f = open(path, "rb")
        except IsADirectoryError:
            raise HashError("reading from file: Is a directory") from None
        except OSError as e:
            raise HashError(f"opening file '{path}': {e.strerror}") from None
        with f:
            try:
                for chunk in iter(lambda: f.read(1 << 16), b""):
                    h.update(chunk)
            except IsADirectoryError:
                raise HashError("reading from file: Is a directory") from None
        return h.digest()
    try:
        os.lstat(path)
    except OSError as e:
        raise HashError(f"getting status of '{path}': {e.strerror}") from None
    dump(path, h.update)
    return h.digest()


def parse_args(argv: list[str]) -> dict:
    opts = {"algo": "md5", "algo_given": False, "flat": False, "form": "base16",
            "truncate": False, "convert": None, "args": [], "debug": False, "help": False}
    it = iter(argv)
    for arg in it:
        if arg == "--type":
            value = next(it, None)
            if value is None:
                raise UsageError("'--type' requires an argument")
            if value not in HASH_SIZES:
                raise UsageError(f"unknown hash algorithm '{value}'")
            opts["algo"], opts["algo_given"] = value, True
        elif arg == "--flat":
            opts["flat"] = True
        elif arg in ("--base32", "--base64", "--sri"):
            opts["form"] = arg[2:]
        elif arg == "--truncate":
            opts["truncate"] = True
        elif arg in ("--to-base16", "--to-base32", "--to-base64", "--to-sri"):
            opts["convert"] = arg[len("--to-"):]
        elif arg == "--debug":
            opts["debug"] = True
        elif arg == "--help":
            opts["help"] = True
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unrecognised flag '{arg}'")
        else:
            opts["args"].append(arg)
    return opts


def run(argv: list[str], out=None) -> int:
    """Run dtx-hash with `argv`, printing to `out` (stdout); return the exit status."""
    out = out or sys.stdout
    try:
        opts = parse_args(argv)
        if opts["help"]:
            out.write(USAGE)
            return 0
        if opts["convert"]:
            algo = opts["algo"] if opts["algo_given"] else None
            for text in opts["args"]:
                parsed_algo, digest = parse_hash(text, algo or None)
                out.write(format_hash(parsed_algo, digest, opts["convert"]) + "\n")
            return 0
        for path in opts["args"]:
            digest = hash_path(path, opts["algo"], opts["flat"])
            if opts["truncate"] and len(digest) > 20:
                digest = compress_hash(digest, 20)
            out.write(format_hash(opts["algo"], digest, opts["form"]) + "\n")
        return 0
    except UsageError as e:
        out.flush()
        print(f"error: {e}\nTry '{PROG} --help' for more information.", file=sys.stderr)
        return 1
    except HashError as e:
        out.flush()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        out.flush()
        print(f"error: {e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--debug" in argv:
        return run(argv)
    try:
        return run(argv)
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - a bug in dtx: say so, briefly
        print(f"error: internal error: {type(e).__name__}: {e}\n"
              "(run with --debug to see the Python traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
