"""Store paths: how Nix names things in the store, byte for byte.

A store path is `<store dir>/<hash>-<name>`, where `<hash>` is 32 characters of Nix base 32: the
SHA-256 of a description string, folded to 160 bits. The description says what kind of object it
is (`source`, `text`, `output:<name>`), which references it has and, for content-addressed
objects, their content hash; so equal inputs give equal paths in dtx and in Nix.
"""

from __future__ import annotations

import re

from .hashes import Hash, compress_hash, hash_bytes, to_base32

HASH_PART_LEN = 32
_NAME_RE = re.compile(r"[a-zA-Z0-9+\-._?=]+\Z")
MAX_NAME_LEN = 211


class BadStorePath(ValueError):
    pass


def check_name(name: str, base: str | None = None) -> None:
    """Raise BadStorePath if `name` is not a valid store path name (Nix 2.8's rules: a leading
    period is allowed). `base`, the whole `<hash>-<name>`, is what the messages show, as Nix's."""
    shown = name if base is None else base
    if not name:
        raise BadStorePath(f"store path '{shown}' has an empty name")
    if len(name) > MAX_NAME_LEN:
        raise BadStorePath(f"store path '{shown}' has a name longer than {MAX_NAME_LEN} "
                           "characters")
    if not _NAME_RE.match(name):
        bad = next(c for c in name if not _NAME_RE.match(c))
        raise BadStorePath(f"store path '{shown}' contains illegal character '{bad}'")


def make_store_path(kind: str, digest: Hash, name: str, store_dir: str) -> str:
    """`makeStorePath`: the path for an object of `kind` whose identifying hash is `digest`."""
    description = f"{kind}:{digest.algo}:{digest.base16()}:{store_dir}:{name}"
    base = f"{to_base32(compress_hash(hash_bytes('sha256', description.encode()), 20))}-{name}"
    check_name(name, base)
    return f"{store_dir}/{base}"


def make_type(kind: str, references=(), self_reference: bool = False) -> str:
    """The `kind` of a content-addressed path: `text` or `source` plus its references."""
    out = kind
    for ref in sorted(references):
        out += ":" + ref
    if self_reference:
        out += ":self"
    return out


def make_text_path(name: str, contents: bytes, references, store_dir: str) -> str:
    """The path `builtins.toFile` and `.drv` files get: text with known references."""
    return make_store_path(make_type("text", references), Hash.of("sha256", contents), name,
                           store_dir)


def make_fixed_output_path(recursive: bool, h: Hash, name: str, store_dir: str,
                           references=(), self_reference: bool = False) -> str:
    """The path of a fixed-output or added path with content hash `h`."""
    if recursive and h.algo == "sha256":
        return make_store_path(make_type("source", references, self_reference), h, name,
                               store_dir)
    if references:
        raise BadStorePath("a flat or non-SHA-256 fixed-output path cannot have references")
    inner = f"fixed:out:{'r:' if recursive else ''}{h.algo}:{h.base16()}:"
    return make_store_path("output:out", Hash.of("sha256", inner.encode()), name, store_dir)


def make_output_path(output: str, hash_modulo: Hash, drv_name: str, store_dir: str) -> str:
    """The path of output `output` of an input-addressed derivation."""
    name = drv_name if output == "out" else f"{drv_name}-{output}"
    return make_store_path(f"output:{output}", hash_modulo, name, store_dir)


def split_store_path(path: str, store_dir: str) -> tuple[str, str]:
    """Return (hash part, name) of a store path; raise BadStorePath if it is not one."""
    prefix = store_dir.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise BadStorePath(f"path '{path}' is not in the Nix store")
    base = path[len(prefix):]
    if "/" in base:
        raise BadStorePath(f"path '{path}' is not a store path (it is inside one)")
    if len(base) < HASH_PART_LEN + 2 or base[HASH_PART_LEN] != "-":
        raise BadStorePath(f"path '{path}' is not a valid store path")
    name = base[HASH_PART_LEN + 1:]
    check_name(name, base)
    return base[:HASH_PART_LEN], name


def to_store_path(path: str, store_dir: str) -> str:
    """Return the store path that `path` (a store path or something inside one) lies in."""
    prefix = store_dir.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise BadStorePath(f"path '{path}' is not in the Nix store")
    base = path[len(prefix):].split("/", 1)[0]
    return prefix + base


def is_derivation(path: str) -> bool:
    return path.endswith(".drv")
