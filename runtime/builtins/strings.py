"""Builtins on strings and their contexts.

Nix strings are byte strings: lengths and offsets (`stringLength`, `substring`) and the scans of
`replaceStrings` count the bytes of the UTF-8 encoding. Here strings are Python `str`; bytes that
are not valid UTF-8 (a `substring` that cuts a character in two) are kept as lone surrogates
(`errors="surrogateescape"`), so encoding back gives the same bytes.

Context follows Nix 2.8: `substring`, `replaceStrings` (the subject's context and that of the
replacements actually used), `concatStringsSep`, `toString`, `baseNameOf`, `dirOf`, `toPath` keep
it; `unsafeDiscardStringContext` drops it. Context elements use the encoding described in
`runtime.values.CStr`: `/nix/store/…` (a path), `=/nix/store/….drv` (a derivation and all its
outputs), `!out!/nix/store/….drv` (one output).
"""

from __future__ import annotations

import re

from ..errors import EvalError
from ..operators import canon_path, coerce_to_string
from ..printer import attr_name
from ..values import (Attrs, NixPath, context_of, force, make_string, want_attrs, want_bool,
                      want_int, want_list, want_string)
from . import builtin
from .regex import want_string_no_context


def _encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _c_int(n: int) -> int:
    """Truncate an integer to a C `int`, as Nix 2.8's `substring` does with its arguments."""
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n >= (1 << 31) else n


@builtin("stringLength", 1, state=True)
def string_length(state, s):
    """`builtins.stringLength e`

    Return the length in bytes of the string `e` (its UTF-8 encoding). `e` may also be anything
    that coerces to a string without `toString`'s extra conversions (a path is copied to the
    store first).

    ```nix
    builtins.stringLength "héllo"
    # => 6
    ```
    """
    return len(_encode(coerce_to_string(state, s, set())))


@builtin("substring", 3, state=True)
def substring(state, start, length, s):
    """`builtins.substring start len s`

    Return the part of `s` that starts at byte offset `start` and is `len` bytes long. The
    result is shorter when `s` ends first; it is empty when `start` is past the end; a negative
    `len` means "to the end". A negative `start` is an error. The context of `s` is kept.

    ```nix
    builtins.substring 0 3 "nixos"
    # => "nix"
    builtins.substring 3 (-1) "nixos"
    # => "os"
    ```
    """
    start = _c_int(want_int(start))
    length = _c_int(want_int(length))
    ctx: set = set()
    text = coerce_to_string(state, s, ctx)
    if start < 0:
        raise EvalError("negative start position in 'substring'")
    data = _encode(text)
    if start >= len(data):
        return make_string("", ctx)
    end = len(data) if length < 0 else start + length
    return make_string(_decode(data[start:end]), ctx)


@builtin("replaceStrings", 3)
def replace_strings(froms, tos, s):
    """`builtins.replaceStrings from to s`

    Replace in `s` each occurrence of a string of the list `from` by the string at the same
    position in `to`. The string is scanned from the start; at each position the first element
    of `from` that occurs there is replaced and the scan continues after it. An empty string in
    `from` matches between every two bytes (and at both ends). The result keeps the context of
    `s` and of the replacements used.

    ```nix
    builtins.replaceStrings [ "oo" "a" ] [ "a" "i" ] "foobar"
    # => "fabir"
    builtins.replaceStrings [ "" ] [ "-" ] "ab"
    # => "-a-b-"
    ```
    """
    want_list(froms)
    want_list(tos)
    if len(froms) != len(tos):
        raise EvalError("'from' and 'to' arguments to 'replaceStrings' have different lengths")
    pats = [_encode(str(want_string(force(f)))) for f in froms]
    reps = [want_string(force(t)) for t in tos]
    want_string(s)
    ctx = set(context_of(s))
    if not pats:
        return s
    data = _encode(str(s))
    rep_bytes = [_encode(str(r)) for r in reps]
    used: set[int] = set()
    if all(pats):
        # Without empty patterns, an alternation tried in list order at each position from the
        # left is exactly Nix's scan.
        alternation = re.compile(b"|".join(b"(" + re.escape(p) + b")" for p in pats))

        def replace(m):
            k = m.lastindex - 1
            used.add(k)
            return rep_bytes[k]
        out = alternation.sub(replace, data)
    else:
        parts = []
        p = 0
        n = len(data)
        while p <= n:
            for k, pat in enumerate(pats):
                if data.startswith(pat, p):
                    used.add(k)
                    parts.append(rep_bytes[k])
                    if pat:
                        p += len(pat)
                    else:
                        parts.append(data[p:p + 1])
                        p += 1
                    break
            else:
                parts.append(data[p:p + 1])
                p += 1
        out = b"".join(parts)
    for k in used:
        ctx |= context_of(reps[k])
    return make_string(_decode(out), ctx)


@builtin("concatStringsSep", 2, state=True)
def concat_strings_sep(state, sep, items):
    """`builtins.concatStringsSep sep list`

    Concatenate the elements of `list`, with the string `sep` between each two. The elements
    are coerced to strings as in string interpolation (strings, paths, sets with `outPath` or
    `__toString`); the contexts of all of them and of `sep` are kept.

    ```nix
    builtins.concatStringsSep ", " [ "a" "b" "c" ]
    # => "a, b, c"
    ```
    """
    want_string(sep)
    ctx = set(context_of(sep))
    want_list(items)
    parts = [coerce_to_string(state, force(item), ctx) for item in items]
    return make_string(str(sep).join(parts), ctx)


@builtin("toString", 1, state=True)
def to_string(state, v):
    """`toString e`

    Convert `e` to a string: strings stay as they are (with their context), paths give their
    text (not copied to the store), sets their `__toString` result or `outPath`, integers
    their decimal form, floats six decimals, `true` `"1"`, `false` and `null` `""`, and lists
    their elements converted and joined by spaces.

    ```nix
    toString [ 1 "a" null true ]
    # => "1 a  1"
    ```
    """
    ctx: set = set()
    text = coerce_to_string(state, v, ctx, coerce_more=True, copy_to_store=False)
    return make_string(text, ctx)


@builtin("parseDrvName", 1)
def parse_drv_name(s):
    """`builtins.parseDrvName s`

    Split a package name `s` into `{ name; version; }` at the first `-` that is followed by a
    character other than a letter; without one, the version is empty. `s` must not have a
    context.

    ```nix
    builtins.parseDrvName "nix-0.12pre12876"
    # => { name = "nix"; version = "0.12pre12876"; }
    ```
    """
    text = want_string_no_context(s)
    data = _encode(text)
    name, version = data, b""
    for i in range(len(data) - 1):
        if data[i] == 0x2D and not (0x41 <= data[i + 1] <= 0x5A or 0x61 <= data[i + 1] <= 0x7A):
            name, version = data[:i], data[i + 1:]
            break
    return Attrs({"name": _decode(name), "version": _decode(version)})


@builtin("unsafeDiscardStringContext", 1, state=True)
def unsafe_discard_string_context(state, s):
    """`builtins.unsafeDiscardStringContext s`

    Return the string `s` without its context (the store paths it refers to). A path is copied
    to the store first.

    ```nix
    builtins.hasContext (builtins.unsafeDiscardStringContext "${./file}")
    # => false
    ```
    """
    return coerce_to_string(state, s, set())


@builtin("hasContext", 1)
def has_context(s):
    """`builtins.hasContext s`

    Return whether the string `s` has a context, that is, refers to store paths.

    ```nix
    builtins.hasContext "plain"
    # => false
    ```
    """
    return bool(context_of(want_string(s)))


@builtin("getContext", 1)
def get_context(s):
    """`builtins.getContext s`

    Return the context of the string `s` as a set keyed by store path. Each value says how the
    path is referred to: `path = true` for the path itself, `allOutputs = true` for a
    derivation with all its outputs, `outputs = [ … ]` for some outputs of a derivation.

    ```nix
    builtins.getContext "${derivation { name = "a"; builder = "b"; system = "s"; }}"
    # => { "/nix/store/…-a.drv" = { outputs = [ "out" ]; }; }
    ```
    """
    infos: dict[str, dict] = {}
    for elem in sorted(context_of(want_string(s)), key=_encode):
        if elem.startswith("="):
            info = infos.setdefault(elem[1:], {})
            info["allOutputs"] = True
        elif elem.startswith("!"):
            _, output, path = elem.split("!", 2)
            info = infos.setdefault(path, {})
            info.setdefault("outputs", []).append(output)
        else:
            infos.setdefault(elem, {})["path"] = True
    return Attrs({path: Attrs(info) for path, info in infos.items()})


_STORE_NAME = re.compile(r"[0-9a-zA-Z+\-._?=]{1,211}\Z")
_HASH_PART = re.compile(r"[0-9a-df-np-sv-z]{32}\Z")


def is_store_path(store_dir: str, path: str) -> bool:
    """Return whether `path` names a store object directly in `store_dir` (as Nix's
    `isStorePath`: a 32-character base-32 hash, one separator and a valid name)."""
    if not path.startswith("/"):
        return False
    p = canon_path(path)
    slash = p.rfind("/")
    if (p[:slash] or "/") != store_dir:
        return False
    base = p[slash + 1:]
    return (len(base) > 33 and bool(_HASH_PART.match(base[:32]))
            and bool(_STORE_NAME.match(base[33:])))


@builtin("appendContext", 2, state=True)
def append_context(state, s, context):
    """`builtins.appendContext s context`

    Return the string `s` with more context, given as `builtins.getContext` returns it: a set
    keyed by store path whose values may have `path = true`, `allOutputs = true` (derivations
    only) and `outputs = [ … ]` (derivations only).

    ```nix
    builtins.getContext (builtins.appendContext "x" {
      "/nix/store/ffffffffffffffffffffffffffffffff-a.drv" = { outputs = [ "out" ]; };
    })
    # => { "/nix/store/ffffffffffffffffffffffffffffffff-a.drv" = { outputs = [ "out" ]; }; }
    ```
    """
    want_string(s)
    ctx = set(context_of(s))
    want_attrs(context)
    for name in sorted(context.d):
        if not is_store_path(state.store_dir, name):
            raise EvalError(f"Context key '{attr_name(name)}' is not a store path")
        info = want_attrs(context.get(name))
        if "path" in info.d and want_bool(info.get("path")):
            ctx.add(name)
        if "allOutputs" in info.d and want_bool(info.get("allOutputs")):
            if not name.endswith(".drv"):
                raise EvalError(f"Tried to add all-outputs context of {attr_name(name)}, which "
                                "is not a derivation, to a string")
            ctx.add("=" + name)
        if "outputs" in info.d:
            outputs = want_list(info.get("outputs"))
            if outputs and not name.endswith(".drv"):
                raise EvalError(f"Tried to add derivation output context of {attr_name(name)}, "
                                "which is not a derivation, to a string")
            for output in outputs:
                ctx.add(f"!{want_string_no_context(force(output))}!{name}")
    return make_string(str(s), ctx)


@builtin("unsafeDiscardOutputDependency", 1, state=True)
def unsafe_discard_output_dependency(state, s):
    """`builtins.unsafeDiscardOutputDependency s`

    Return `s` with each "derivation and all its outputs" element of its context (as
    `"${drv.drvPath}"` has) turned into a plain reference to the `.drv` file, so that depending
    on the string no longer builds the derivation.

    ```nix
    builtins.getContext (builtins.unsafeDiscardOutputDependency drv.drvPath)
    # => { "/nix/store/…-a.drv" = { path = true; }; }
    ```
    """
    ctx: set = set()
    text = coerce_to_string(state, s, ctx)
    return make_string(text, {e[1:] if e.startswith("=") else e for e in ctx})


@builtin("toPath", 1, state=True)
def to_path(state, s):
    """`builtins.toPath s`

    Deprecated. Return the absolute path `s`, canonicalised (`.`, `..` and repeated slashes
    removed), as a string; a relative path is an error. Use `/. + s` to get a path value.

    ```nix
    builtins.toPath "/a//b/../c"
    # => "/a/c"
    ```
    """
    ctx: set = set()
    text = coerce_to_string(state, s, ctx, copy_to_store=False)
    if not text.startswith("/"):
        raise EvalError(f"string '{text}' doesn't represent an absolute path")
    return make_string(canon_path(text), ctx)


def base_name_of(path: str) -> str:
    """Return the last component of `path`, ignoring one trailing slash ("" for "" and "/")."""
    if not path:
        return ""
    last = len(path) - 1
    if path[last] == "/" and last > 0:
        last -= 1
    return path[path.rfind("/", 0, last + 1) + 1:last + 1]


def dir_of(path: str) -> str:
    """Return everything before the last slash of `path`: "." without one, "/" for the root."""
    pos = path.rfind("/")
    if pos < 0:
        return "."
    return "/" if pos == 0 else path[:pos]


@builtin("baseNameOf", 1, state=True)
def base_name_of_builtin(state, v):
    """`baseNameOf s`

    Return the last component of the path or string `s`: what follows its last slash,
    ignoring one trailing slash. The result is a string, with the context of `s`; a path is not
    copied to the store.

    ```nix
    baseNameOf "/nix/store/foo/"
    # => "foo"
    ```
    """
    ctx: set = set()
    text = coerce_to_string(state, v, ctx, copy_to_store=False)
    return make_string(base_name_of(text), ctx)


@builtin("dirOf", 1, state=True)
def dir_of_builtin(state, v):
    """`dirOf s`

    Return the directory part of `s`: everything before its last slash, `"/"` if that is the
    first character and `"."` if there is none. For a path the result is a path; for a string,
    a string with the context of `s`.

    ```nix
    dirOf "/a/b/c"
    # => "/a/b"
    dirOf ./foo/bar
    # => ./foo
    ```
    """
    ctx: set = set()
    text = coerce_to_string(state, v, ctx, copy_to_store=False)
    if type(v) is NixPath:
        return NixPath(dir_of(text))
    return make_string(dir_of(text), ctx)
