"""Builtins that read files and the environment: `import`, `scopedImport`, `readFile`,
`readDir`, `pathExists`, `getEnv` and the search-path lookup behind `<…>` (`__findFile`)."""

from __future__ import annotations

import os
import stat

from ..errors import EvalError
from ..operators import canon_path, coerce_to_string
from ..values import Attrs, NixPath, make_string, want_attrs, want_list, want_string
from . import builtin


def want_path(state, v) -> str:
    """Return the file-system path a path or string argument denotes, as Nix's `realisePath`
    does: a string's context is realised first (the derivation outputs it names are built if
    they are missing: import from derivation), and a path in the store is then read where the
    store keeps it on disk (under `DTX_HOME`), as Nix's `toRealPath` does for its chroot
    stores."""
    if type(v) is NixPath:
        return v.path
    ctx: set = set()
    s = coerce_to_string(state, v, ctx, copy_to_store=False)
    if not s.startswith("/"):
        raise EvalError(f"string '{s}' doesn't represent an absolute path")
    path = canon_path(s)
    if not ctx:
        return path
    try:
        return state.realise_path(path, ctx)
    except EvalError as e:
        e.add_trace(f"while realising the context of path '{s}'")
        raise


@builtin("import", 1, state=True)
def import_(state, path):
    """`import path`: evaluate the Nix expression in the file `path` (for a directory,
    `path/default.dtx`, then `path/default.nix`). Each file is evaluated once per evaluation.

    Example: `import ./lib.dtx` or `import <dtx> { }`.

    `path` may be a derivation or a string that refers to one's output:
    `import (pkgs.writeText "x.nix" "1 + 1")` builds the derivation first if its output is
    missing, then reads the output (import from derivation). So do `scopedImport`, `readFile`,
    `readDir`, `pathExists`, `hashFile`, `filterSource`, `path` and `findFile`.
    `dtx-instantiate --eval` builds nothing, so there it fails with
    `path '/nix/store/….drv' is not valid` unless the output is built already."""
    return state.import_path(want_path(state, path))


@builtin("scopedImport", 2, state=True)
def scoped_import(state, scope, path):
    """`scopedImport attrs path`: like `import`, but the names of `attrs` are in scope in the
    file, ahead of the builtins (so `scopedImport { import = …; } ./f.nix` overrides `import`)."""
    return state.scoped_import(want_attrs(scope), want_path(state, path))


@builtin("readFile", 1, state=True)
def read_file(state, path):
    """`builtins.readFile path`: the contents of the file `path` as a string. A file in the
    store gives a string whose context is the references of its store path."""
    p = want_path(state, path)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise EvalError(f"opening file '{p}': No such file or directory") from None
    except IsADirectoryError:
        raise EvalError(f"reading file '{p}': Is a directory") from None
    except OSError as e:
        raise EvalError(f"opening file '{p}': {e.strerror}") from None
    if b"\0" in data:
        raise EvalError(f"the contents of the file '{p}' cannot be represented as a Nix string")
    return make_string(data.decode("utf-8", errors="surrogateescape"), state.file_references(p))


@builtin("readDir", 1, state=True)
def read_dir(state, path):
    """`builtins.readDir path`: the entries of the directory `path`, as a set mapping each name
    to `"regular"`, `"directory"`, `"symlink"` or `"unknown"`.

    Example: `builtins.readDir ./.` gives `{ "default.dtx" = "regular"; lib = "directory"; }`."""
    p = want_path(state, path)
    try:
        entries = os.scandir(p)
    except FileNotFoundError:
        raise EvalError(f"opening directory '{p}': No such file or directory") from None
    except NotADirectoryError:
        raise EvalError(f"opening directory '{p}': Not a directory") from None
    out = {}
    with entries:
        for entry in entries:
            out[entry.name] = _kind(entry.stat(follow_symlinks=False).st_mode)
    return Attrs(out)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "unknown"


def file_type(path: str) -> str:
    """The type `readDir` and source filters report for a path: `"regular"`, `"directory"`,
    `"symlink"` or `"unknown"`."""
    return _kind(os.lstat(path).st_mode)


@builtin("pathExists", 1, state=True)
def path_exists(state, path):
    """`builtins.pathExists path`: whether `path` exists (a dangling symlink counts)."""
    return os.path.lexists(want_path(state, path))


@builtin("getEnv", 1)
def get_env(name):
    """`builtins.getEnv name`: the value of the environment variable `name`, or `""`."""
    return os.environ.get(want_string(name), "")


@builtin("findFile", 2, state=True)
def find_file(state, search_path, name):
    """`builtins.findFile searchPath name`: look `name` up in a search path (a list of
    `{ prefix; path; }` sets, like `builtins.nixPath`). `<name>` means
    `__findFile __nixPath "name"`."""
    return NixPath(state.find_file(want_list(search_path), str(want_string(name))))
