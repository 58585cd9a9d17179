"""Glue between the evaluator and the store: the builtins that touch the store.

The pure evaluator knows nothing of the store; this module registers `derivationStrict`,
`derivation` (written in the language over `derivationStrict`, as Nix does), `toFile`, `path`,
`filterSource`, `storePath`, `placeholder` and `hashFile` in the same builtin registry (and
imports runtime.fetchers, which registers the eval-time fetchers), and `attach_store` gives an
evaluator its store, the hook that copies paths into it when a path is used as a string
(`"${./file}"`) and the one that realises a path's context before a builtin reads the file
(`import`, `readFile`, `readDir`, `pathExists`, `hashFile`, `filterSource`, `path`,
`findFile`): derivation outputs it names are built during evaluation if they are missing
(import from derivation, "IFD"), with the build options of the command that evaluates.

String contexts say which store objects a string refers to: a plain store path, `=<drv>` (a
derivation and its whole closure: what `drvPath` carries) or `!<output>!<drv>` (one output of a
derivation: what `outPath` carries). `derivationStrict` turns the context of its attributes into
the derivation's input sources and input derivations.
"""

from __future__ import annotations

import os

from . import fetchers  # noqa: F401 - registers fetchurl, fetchTarball, fetchGit, fetchTree
from .builtins import builtin, constant
from .builtins.files import want_path
from .derivation import Derivation, Output, hash_derivation_modulo
from .errors import BuildFailed, EvalError, InvalidPathError
from .hashes import (HASH_SIZES, Hash, UnknownHashAlgorithm, hash_bytes, to_base16,
                     to_base32)
from .operators import coerce_to_string
from .store import StoreError
from .storepath import BadStorePath, make_fixed_output_path, make_output_path
from .values import (Attrs, CStr, Thunk, context_of, force, make_string, want_attrs,
                     want_list, want_string)

# `derivation` as Nix 2.8 defines it (corepkgs/derivation.nix), over `derivationStrict`.
DERIVATION_NIX = """
drvAttrs @ { outputs ? [ "out" ], ... }:
let
  strict = derivationStrict drvAttrs;
  commonAttrs = drvAttrs // (builtins.listToAttrs outputsList) //
    { all = map (x: x.value) outputsList;
      inherit drvAttrs;
    };
  outputToAttrListElement = outputName:
    { name = outputName;
      value = commonAttrs // {
        outPath = builtins.getAttr outputName strict;
        drvPath = strict.drvPath;
        type = "derivation";
        inherit outputName;
      };
    };
  outputsList = map outputToAttrListElement outputs;
in (builtins.head outputsList).value
"""


def attach_store(state, store, build=None) -> None:
    """Give an evaluator a store: path coercion copies into it, derivations are written to it,
    and the derivation outputs a read path's context names are built in it during evaluation
    by `build` (a function of a list of `.drv` paths that raises RealiseError, e.g. a CLI's
    `Scheduler.realise`; by default a scheduler with default options)."""
    state.store = store
    state.store_dir = store.store_dir
    state.drv_hashes = {}
    state.copied_paths = {}
    state.build_hook = build
    state.copy_path_to_store = lambda path: copy_path_to_store(state, path)
    state.realise_path = lambda path, ctx: realise_path(state, path, ctx)
    state.file_references = lambda path: file_references(state, path)


def _store(state):
    store = getattr(state, "store", None)
    if store is None:
        raise EvalError("this operation needs a store, and none is available")
    return store


def copy_path_to_store(state, path: str) -> str:
    """Add a source path to the store (once per evaluation) and return its store path."""
    store = _store(state)
    if path.startswith(store.store_dir + "/"):
        return store.to_store_path(path)
    cached = state.copied_paths.get(path)
    if cached is not None:
        return cached
    if not os.path.lexists(path):
        raise EvalError(f"getting status of '{path}': No such file or directory")
    name = os.path.basename(path)
    try:
        result = store.add_path(path, name)
    except BadStorePath as e:
        raise EvalError(str(e)) from None
    state.copied_paths[path] = result
    return result


# -- import from derivation -----------------------------------------------------------------------

def realise_context(state, ctx) -> None:
    """Make every store object a string context names valid, as Nix's `realiseContext` does
    before a builtin reads a file: a path that is not valid is an error (what `--eval`, which
    writes nothing, reports), and the derivation outputs named by `!<output>!<drv>` elements
    that are missing are built now (import from derivation), through `state.build_hook`."""
    store = _store(state)
    wanted: dict[str, set[str]] = {}
    for c in sorted(ctx):
        output = None
        if c.startswith("!"):
            _, output, path = c.split("!", 2)
        else:
            path = c.removeprefix("=")
        if not store.is_valid(path):
            raise InvalidPathError(path)
        if output is not None and path.endswith(".drv"):
            wanted.setdefault(path, set()).add(output)
    missing = []
    for drv_path, outputs in wanted.items():
        produced = store.read_derivation(drv_path).outputs
        for output in sorted(outputs):
            if output not in produced:
                raise EvalError(f"derivation '{drv_path}' does not have an output named "
                                f"'{output}'")
            if not store.is_valid(produced[output].path):
                if store.read_only:
                    raise EvalError(f"cannot substitute path '{produced[output].path}' - no "
                                    "write access to the Nix store")
                missing.append(drv_path)
    if not missing:
        return
    from .scheduler import RealiseError
    build = state.build_hook or _default_scheduler(store).realise
    try:
        build(list(dict.fromkeys(missing)))
    except RealiseError as e:
        raise BuildFailed(e.message(), e.exit_status()) from None


def _default_scheduler(store):
    from .build import BuildOptions
    from .scheduler import Progress, Scheduler
    return Scheduler(store, BuildOptions(cores=os.cpu_count() or 1), progress=Progress())


def realise_path(state, path: str, ctx) -> str:
    """Realise `ctx` (see realise_context) and return where the file `path` is on disk: a
    path in the store is read where the store keeps it (under `DTX_HOME`)."""
    realise_context(state, ctx)
    store = state.store
    if path.startswith(store.store_dir + "/"):
        return store.real(path)
    return path


def file_references(state, real_path: str) -> set[str]:
    """The references of the valid store object a file on disk lies in (none outside the
    store): the context `readFile` gives the file's contents."""
    store = state.store
    if not real_path.startswith(store.real_dir + "/"):
        return set()
    try:
        path = store.to_store_path(store.logical(real_path))
    except BadStorePath:
        return set()
    return set(store.references(path)) if store.is_valid(path) else set()


# -- derivations ----------------------------------------------------------------------------------

@builtin("derivationStrict", 1, state=True)
def derivation_strict(state, attrs):
    """`derivationStrict attrs`

    Instantiate a derivation: write its `.drv` file to the store and return
    `{ drvPath = …; <output> = …; }`. `derivation` is the friendly wrapper around it; use that.
    """
    store = _store(state)
    d = want_attrs(attrs).d
    if "name" not in d:
        raise EvalError("attribute 'name' missing for call to 'derivationStrict'")
    try:
        drv_name = str(want_string(force(d["name"])))
    except EvalError as e:
        e.add_trace("while evaluating the derivation attribute 'name'")
        raise
    if drv_name.endswith(".drv"):
        raise EvalError("derivation names are not allowed to end in '.drv'")
    try:
        return _derivation_strict(state, store, d, drv_name)
    except EvalError as e:
        e.add_trace(f"while evaluating the derivation '{drv_name}'")
        raise


def _derivation_strict(state, store, d: dict, drv_name: str) -> Attrs:
    ignore_nulls = "__ignoreNulls" in d and force(d["__ignoreNulls"]) is True
    structured = "__structuredAttrs" in d and force(d["__structuredAttrs"]) is True
    json_attrs: dict = {}
    ctx: set = set()
    drv = Derivation(drv_name)
    outputs: list[str] = ["out"]
    output_hash = output_hash_algo = None
    output_hash_mode = "flat"
    builder_set = system_set = False

    for key in sorted(d):
        if key == "__ignoreNulls":
            continue
        try:
            v = force(d[key])
            if ignore_nulls and v is None:
                continue
            if key in ("__contentAddressed", "__impure") and v is True:
                raise EvalError(f"'{key}' derivations are not supported by dtx")
            if key == "args":
                for item in want_list(v):
                    drv.args.append(coerce_to_string(state, force(item), ctx, coerce_more=True))
                continue
            if structured:
                if key == "__structuredAttrs":
                    continue
                json_attrs[key] = v
                if key == "outputs":
                    outputs = [str(want_string(force(o))) for o in want_list(v)]
                    continue
                s = None
                if key in ("builder", "system", "outputHash", "outputHashAlgo",
                           "outputHashMode"):
                    s = str(want_string(v))
                    ctx |= context_of(v)
            else:
                s = coerce_to_string(state, v, ctx, coerce_more=True)
                drv.env[key] = s
                if key == "outputs":
                    outputs = s.split()
                    continue
            if key == "builder":
                drv.builder, builder_set = s, True
            elif key == "system":
                drv.platform, system_set = s, True
            elif key == "outputHash":
                output_hash = s
            elif key == "outputHashAlgo":
                output_hash_algo = s
            elif key == "outputHashMode":
                output_hash_mode = s
        except EvalError as e:
            e.add_trace(f"while evaluating the attribute '{key}' of the derivation "
                        f"'{drv_name}'")
            raise

    if structured:
        from .builtins.json import to_json
        drv.env["__json"] = to_json(state, Attrs(json_attrs), ctx)

    for c in ctx:
        if c.startswith("="):
            path = c[1:]
            for p in store.closure([path]):
                drv.input_srcs.add(p)
                if p.endswith(".drv"):
                    drv.input_drvs[p] = set(store.read_derivation(p).outputs)
        elif c.startswith("!"):
            _, output, path = c.split("!", 2)
            drv.input_drvs.setdefault(path, set()).add(output)
        else:
            drv.input_srcs.add(c)

    if not builder_set:
        raise EvalError("required attribute 'builder' missing")
    if not system_set:
        raise EvalError("required attribute 'system' missing")

    seen: set[str] = set()
    for o in outputs:
        if o in seen:
            raise EvalError(f"duplicate derivation output '{o}'")
        if o == "drv":
            raise EvalError("invalid derivation output name 'drv'")
        seen.add(o)
    if not outputs:
        raise EvalError("derivation cannot have an empty set of outputs")

    if output_hash is not None:
        if outputs != ["out"]:
            raise EvalError("multiple outputs are not supported in fixed-output derivations")
        if output_hash_mode not in ("flat", "recursive"):
            raise EvalError(f"invalid value '{output_hash_mode}' for 'outputHashMode' "
                            "attribute")
        try:
            # As Nix's parseHashTypeOpt: an unknown algorithm counts as none given.
            algo = output_hash_algo if output_hash_algo in HASH_SIZES else None
            h = Hash.parse(output_hash, algo)
        except (ValueError, UnknownHashAlgorithm) as e:
            raise EvalError(str(e)) from None
        recursive = output_hash_mode == "recursive"
        try:
            path = make_fixed_output_path(recursive, h, drv_name, store.store_dir)
        except BadStorePath as e:
            raise EvalError(str(e)) from None
        drv.env["out"] = path
        drv.outputs["out"] = Output(path, ("r:" if recursive else "") + h.algo, h.base16())
    else:
        for o in outputs:
            drv.env[o] = ""
            drv.outputs[o] = Output("")
        h = hash_derivation_modulo(drv, store.read_derivation, True, state.drv_hashes)
        try:
            for o in outputs:
                path = make_output_path(o, h, drv_name, store.store_dir)
                drv.outputs[o].path = path
                drv.env[o] = path
        except BadStorePath as e:
            raise EvalError(str(e)) from None

    # Its own modulo hash is computed when a dependent needs it (and cached then).
    drv_path = store.write_derivation(drv)
    result = {"drvPath": make_string(drv_path, {"=" + drv_path})}
    for o, out in drv.outputs.items():
        result[o] = make_string(out.path, {f"!{o}!{drv_path}"})
    return Attrs(result)


def _derivation_value(state):
    def evaluate(_env):
        return state.eval_string(DERIVATION_NIX, "/", "«derivation.nix»")
    return Thunk(evaluate, None)


constant("derivation", _derivation_value,
         "`derivation attrs`: describe how to build store paths (the `name`, `system`, "
         "`builder`, `args` and environment of a build). Returns the derivation as a set with "
         "`drvPath`, `outPath` and one attribute per output.", state=True)


# -- other store builtins -------------------------------------------------------------------------

@builtin("toFile", 2, state=True)
def to_file(state, name, contents):
    """`builtins.toFile name s`

    Store the string `s` in a file `name` in the store and return its path. The file may refer
    to other store paths (its references come from the string's context) but not to
    derivation outputs.

    ```nix
    builtins.toFile "hello.txt" "Hello"
    # => "/nix/store/…-hello.txt"
    ```
    """
    store = _store(state)
    name_s = str(want_string(name))
    text = want_string(contents)
    refs = set()
    for c in context_of(text):
        if c.startswith("=") or c.startswith("!"):
            raise EvalError(f"in 'toFile': the file named '{name_s}' must not contain a "
                            f"reference to a derivation but contains ({c})")
        refs.add(c)
    try:
        path = store.add_text(name_s, str(text), refs)
    except BadStorePath as e:
        raise EvalError(str(e)) from None
    return CStr(path, {path})


def _make_filter(state, fn):
    from .apply import call
    from .builtins.files import file_type

    def keep(path: str) -> bool:
        r = force(call(call(fn, path), file_type(path)))
        if type(r) is not bool:
            raise EvalError(f"value is {r!r} while a Boolean was expected")
        return r
    return keep


def _add_source(state, src: str, name: str | None, fn, recursive: bool = True,
                expected: Hash | None = None) -> str:
    store = _store(state)
    path_filter = _make_filter(state, fn) if fn is not None else None
    name = name if name is not None else os.path.basename(src)
    # As Nix does, a copy of (part of) a store object keeps all that object's references.
    refs = file_references(state, src)
    try:
        if expected is not None:
            path, h = store.compute_path(src, name, recursive, expected.algo, path_filter, refs)
            if h != expected:
                raise EvalError(f"hash mismatch in file added to the store '{src}':\n"
                                f"  specified: {expected.sri()}\n  got:       {h.sri()}")
            if expected.algo != "sha256" or not recursive:
                return store.add_path(src, name, recursive, expected.algo, path_filter, refs)
        return store.add_path(src, name, recursive, "sha256", path_filter, refs)
    except (BadStorePath, StoreError) as e:
        raise EvalError(str(e)) from None
    except FileNotFoundError:
        raise EvalError(f"getting status of '{src}': No such file or directory") from None


@builtin("filterSource", 2, state=True)
def filter_source(state, fn, path):
    """`builtins.filterSource filter path`

    Copy `path` into the store, keeping only the files for which `filter path type` is true
    (`type` is `"regular"`, `"directory"`, `"symlink"` or `"unknown"`); return the store path.

    ```nix
    builtins.filterSource (path: type: type != "directory" || baseNameOf path != ".git") ./.
    ```
    """
    src = want_path(state, path)
    result = _add_source(state, src, None, fn)
    return CStr(result, {result})


@builtin("path", 1, state=True)
def path_(state, args):
    """`builtins.path { path; name ? baseNameOf path; filter ? …; recursive ? true;
    sha256 ? …; }`

    Copy `path` into the store like `filterSource`, with a chosen name, an optional filter, flat
    (`recursive = false`) or recursive hashing, and an optional expected SHA-256 hash that the
    contents must match.
    """
    d = want_attrs(args).d
    if "path" not in d:
        raise EvalError("missing required 'path' attribute in the first argument to "
                        "builtins.path")
    src = want_path(state, force(d["path"]))
    name = str(want_string(force(d["name"]))) if "name" in d else None
    fn = force(d["filter"]) if "filter" in d else None
    recursive = force(d["recursive"]) if "recursive" in d else True
    expected = None
    if "sha256" in d:
        try:
            expected = Hash.parse(str(want_string(force(d["sha256"]))), "sha256")
        except ValueError as e:
            raise EvalError(str(e)) from None
    for key in d:
        if key not in ("path", "name", "filter", "recursive", "sha256"):
            raise EvalError(f"unsupported argument '{key}' to 'addPath'")
    result = _add_source(state, src, name, fn, recursive is True, expected)
    return CStr(result, {result})


@builtin("storePath", 1, state=True)
def store_path(state, path):
    """`builtins.storePath path`

    Return `path` (which must lie in the store) as a string whose context refers to it, so a
    derivation using it depends on that path."""
    store = _store(state)
    ctx: set = set()
    s = coerce_to_string(state, path, ctx, copy_to_store=False)
    if not s.startswith(store.store_dir + "/"):
        raise EvalError(f"path '{s}' is not in the Nix store")
    p = store.to_store_path(s)
    if not store.read_only and not store.is_valid(p):
        raise EvalError(f"path '{p}' is not valid")
    return CStr(s, ctx | {p})


@builtin("placeholder", 1)
def placeholder(output):
    """`builtins.placeholder output`

    The placeholder string Nix substitutes with the path of output `output` at build time.

    ```nix
    builtins.placeholder "out"
    # => "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"
    ```
    """
    name = str(want_string(output))
    return "/" + to_base32(hash_bytes("sha256", f"nix-output:{name}".encode()))


@builtin("hashFile", 2, state=True)
def hash_file(state, algo, path):
    """`builtins.hashFile type path`

    The hash of the file `path` in lowercase hexadecimal; `type` is `"md5"`, `"sha1"`,
    `"sha256"` or `"sha512"`."""
    name = str(want_string(algo))
    p = want_path(state, path)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise EvalError(f"opening file '{p}': No such file or directory") from None
    try:
        return to_base16(hash_bytes(name, data))
    except UnknownHashAlgorithm as e:
        raise EvalError(str(e)) from None
