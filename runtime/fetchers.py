"""The eval-time fetchers: `builtins.fetchurl`, `fetchTarball`, `fetchGit` and `fetchTree`
(and a `fetchMercurial` that says dtx does not support Mercurial).

They run while evaluating, as Nix's do, and add what they fetch to the store even under
`dtx-instantiate --eval`, whose store is otherwise read-only: `nix-instantiate --eval` fetches
and adds too. For that the fetchers use a writable handle on the evaluator's store.

- `fetchurl` downloads into a flat fixed-output path named `baseNameOf url`, and `fetchTarball`
  unpacks into a recursive source path named "source" (runtime.downloads): the paths Nix gives
  for the same bytes and name. With `sha256` the path is known in advance; if it is already
  valid nothing is downloaded, otherwise the result must match ("hash mismatch in file
  downloaded from …"). Downloads are remembered in the fetcher cache (runtime.fetchcache) for
  the tarball TTL, then revalidated.
- `fetchGit` and `fetchTree` work on *inputs*: attribute sets such as
  `{ type = "git"; url = "file:///src"; ref = "main"; }`, checked per type as Nix 2.8 checks them
  (`git`, `tarball`, `path`; the URL forms `git+https://…?ref=…`, `https://…/x.tar.gz`). Git
  inputs are runtime.gitfetch's. After a fetch the store path's NAR hash is compared with a
  given `narHash` (and `lastModified`, `revCount`); a given `narHash` whose path is already
  valid skips the fetch. The results have Nix 2.8's attributes: `outPath`, `narHash`,
  `submodules` (git), `rev`, `shortRev`, `revCount`, `lastModified`, `lastModifiedDate`;
  `fetchGit` shows a dirty working tree with the all-zero revision and `revCount = 0`.
- Unlike Nix 2.8, `fetchTree` does not need the `flakes` experimental feature; `github`,
  `gitlab`, `sourcehut`, `mercurial` and registry (`indirect`) inputs are refused as not
  supported by dtx.
- Progress ("downloading '…'", "fetching Git repository '…'") goes to stderr unless the
  evaluator is quiet (`state.quiet`); warnings always do. Failures are `EvalError`s with Nix's
  wording, never Python tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.parse

from .builtins import builtin
from .builtins.regex import want_string_no_context
from .builtins.strings import base_name_of
from .errors import EvalError
from .hashes import Hash, UnknownHashAlgorithm
from .nar import dump_flat_hash
from .operators import coerce_to_string
from .store import LocalStore, StoreError
from .storepath import BadStorePath, make_fixed_output_path
from .values import Attrs, CStr, NixPath, force, show_type

NULL_REV = "0" * 40  # what fetchGit shows as the revision of a dirty working tree
TARBALL_EXTENSIONS = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst")
UNSUPPORTED_TYPES = ("github", "gitlab", "sourcehut", "mercurial", "indirect")


# -- the evaluator's side -------------------------------------------------------------------------

def fetch_store(state) -> LocalStore:
    """A writable handle on the evaluator's store (the store itself unless it is read-only)."""
    store = getattr(state, "store", None)
    if store is None:
        raise EvalError("this operation needs a store, and none is available")
    if not store.read_only:
        return store
    writable = getattr(state, "fetch_store", None)
    if writable is None:
        writable = state.fetch_store = LocalStore(store.root, store.store_dir)
    return writable


# The modules that fetch (git, downloads, archives, the cache) load when something is fetched,
# not when an evaluator starts.

def _failures() -> tuple:
    """The exceptions a fetch may end with, which become evaluation errors."""
    from .downloads import DownloadError
    from .fetchurl import FetchError
    from .gitfetch import GitFetchError
    return (DownloadError, FetchError, GitFetchError, BadStorePath, StoreError)


def _cache(state):
    cache = getattr(state, "fetcher_cache", None)
    if cache is None:
        from .fetchcache import FetcherCache
        cache = state.fetcher_cache = FetcherCache(fetch_store(state))
    return cache


def _progress(state):
    if getattr(state, "quiet", False):
        return lambda _line: None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _string_arg(state, v) -> str:
    """A string or path argument as a string (paths are not copied to the store)."""
    return coerce_to_string(state, force(v), set(), copy_to_store=False)


def _store_string(path: str) -> CStr:
    return CStr(path, {path})


# -- fetchurl and fetchTarball --------------------------------------------------------------------

@builtin("fetchurl", 1, state=True)
def fetchurl(state, arg):
    """`builtins.fetchurl url` or `builtins.fetchurl { url; sha256 ? …; name ? …; }`

    Download `url` while evaluating and return its store path: a flat fixed-output path named
    `name` (by default the URL's last component), the path Nix gives for the same contents.
    With `sha256`, a valid path of that hash is used without downloading, and a download that
    does not match is an error. Downloads are cached for an hour (`DTX_TARBALL_TTL` seconds).
    `url` is an `http://`, `https://` or `file://` URL.

    ```nix
    builtins.fetchurl "file://${toString ./file}"
    # => "/nix/store/…-file"
    ```
    """
    return _fetch(state, arg, "fetchurl", False, "")


@builtin("fetchTarball", 1, state=True)
def fetch_tarball(state, arg):
    """`fetchTarball url` or `fetchTarball { url; sha256 ? …; name ? "source"; }`

    Download an archive (tar, compressed with gzip, xz, bzip2 or zstd, or zip) while evaluating,
    unpack it and return the store path of its single top-level directory. With `sha256` (the
    NAR hash of the unpacked tree) a valid path is used without downloading, and a mismatch is
    an error. Downloads are cached for an hour (`DTX_TARBALL_TTL` seconds).

    ```nix
    import (fetchTarball "https://example.org/nixpkgs.tar.gz") { }
    ```
    """
    return _fetch(state, arg, "fetchTarball", True, "source")


def _fetch(state, arg, who: str, unpack: bool, name: str):
    url = None
    expected = None
    if type(arg) is Attrs:
        for key in sorted(arg.d):
            span = arg.pos.get(key) if arg.pos else None
            try:
                if key == "url":
                    url = str(want_string_no_context(force(arg.d[key])))
                elif key == "sha256":
                    expected = _expected_hash(want_string_no_context(force(arg.d[key])))
                elif key == "name":
                    name = str(want_string_no_context(force(arg.d[key])))
                else:
                    raise EvalError(f"unsupported argument '{key}' to '{who}'")
            except EvalError as e:
                raise e.at(span)
        if url is None:
            raise EvalError("'url' argument required")
    else:
        url = str(want_string_no_context(arg))
    if url.startswith("channel:"):
        url = f"https://nixos.org/channels/{url[len('channel:'):]}/nixexprs.tar.xz"
    if not name:
        name = base_name_of(url)
    store = fetch_store(state)
    from .downloads import download_file, download_tarball
    try:
        if expected is not None:
            path = make_fixed_output_path(unpack, expected, name, store.store_dir)
            if store.is_valid(path):
                return _store_string(path)
        log = _progress(state)
        if unpack:
            path = download_tarball(store, _cache(state), url, name, expected is not None, log,
                                    _warn)
        else:
            path = download_file(store, _cache(state), url, name, expected is not None, log,
                                 _warn)[0]
    except _failures() as e:
        raise EvalError(str(e)) from None
    if expected is not None:
        got = store.query_info(path).nar_hash if unpack else \
            Hash("sha256", dump_flat_hash(store.real(path), "sha256"))
        if got != expected:
            raise EvalError(f"hash mismatch in file downloaded from '{url}':\n"
                            f"  specified: sha256:{expected.base32()}\n"
                            f"  got:       sha256:{got.base32()}")
    return _store_string(path)


def _expected_hash(text: str) -> Hash:
    if not text:
        empty = Hash("sha256", bytes(32))
        _warn(f"found empty hash, assuming '{empty.sri()}'")
        return empty
    try:
        return Hash.parse(text, "sha256")
    except (ValueError, UnknownHashAlgorithm) as e:
        raise EvalError(str(e)) from None


# -- fetchTree and fetchGit -----------------------------------------------------------------------

@builtin("fetchTree", 1, state=True)
def fetch_tree(state, arg):
    """`fetchTree input`

    Fetch a source tree into the store while evaluating and return `{ outPath; narHash; … }`.
    `input` is a set with a `type`: `"git"` (`url`, `ref`, `rev`, `shallow`, `submodules`,
    `allRefs`, as `fetchGit`), `"tarball"` (`url`) or `"path"` (`path`), each with an optional
    `narHash` the result must have; or a URL (`git+https://…?ref=main`, `https://…/x.tar.gz`).
    Nix 2.8 keeps `fetchTree` behind the `flakes` experimental feature; dtx does not.

    ```nix
    (fetchTree { type = "tarball"; url = "https://example.org/src.tar.gz"; }).narHash
    ```
    """
    return _fetch_tree(state, arg, None, empty_rev_fallback=False, allow_name=False)


@builtin("fetchGit", 1, state=True)
def fetch_git(state, arg):
    """`fetchGit url` or `fetchGit { url; ref ? …; rev ? …; name ? "source"; submodules ? false;
    shallow ? false; allRefs ? false; }`

    Copy a revision of a Git repository into the store with `git` and return `{ outPath; rev;
    shortRev; revCount; lastModified; lastModifiedDate; narHash; submodules; }`. A local
    repository with uncommitted changes, fetched without `ref` or `rev`, is copied from its
    working tree (tracked files only; `rev` is all zeros). Without `ref`, a local repository's
    current branch is used, and "master" for any other URL.

    ```nix
    (fetchGit ./.).rev
    ```
    """
    return _fetch_tree(state, arg, "git", empty_rev_fallback=True, allow_name=True)


@builtin("fetchMercurial", 1, state=True)
def fetch_mercurial(state, arg):
    """`fetchMercurial url`

    Not supported by dtx: calling it is an error."""
    raise EvalError("'fetchMercurial' is not supported by dtx")


def _fetch_tree(state, arg, type_: str | None, empty_rev_fallback: bool, allow_name: bool):
    arg = force(arg)
    if type(arg) is Attrs:
        attrs: dict = {}
        if "type" in arg.d:
            if type_ is not None:
                raise EvalError("unexpected attribute 'type'")
            type_ = str(want_string_no_context(force(arg.d["type"])))
        elif type_ is None:
            raise EvalError("attribute 'type' is missing in call to 'fetchTree'")
        attrs["type"] = type_
        for key in sorted(arg.d):
            if key == "type":
                continue
            v = force(arg.d[key])
            if type(v) in (str, CStr, NixPath):
                s = _string_arg(state, v)
                if key == "url":
                    s = fix_uri_for_git(s) if type_ == "git" else fix_uri(s)
                attrs[key] = s
            elif type(v) is bool or type(v) is int:
                attrs[key] = v
            else:
                raise EvalError(f"fetchTree argument '{key}' is {show_type(v)} while a string, "
                                "Boolean or integer is expected")
        if not allow_name and "name" in attrs:
            raise EvalError("attribute 'name' isn't supported in call to 'fetchTree'")
        inp = input_from_attrs(attrs)
    else:
        url = _string_arg(state, arg)
        if type_ == "git":
            inp = input_from_attrs({"type": "git", "url": fix_uri_for_git(url)})
        else:
            inp = input_from_url(fix_uri(url))
    try:
        path, inp = _fetch_input(state, inp)
    except _failures() as e:
        raise EvalError(str(e)) from None
    return _tree_attrs(path, inp, empty_rev_fallback)


def fix_uri(uri: str) -> str:
    """Nix's fixURI: a string without a scheme is a `file://` URL."""
    return uri if "://" in uri else "file://" + uri


_SCP_URI = re.compile(r"([^/]*)@(.*):(.*)\Z", re.S)


def fix_uri_for_git(uri: str) -> str:
    """Nix's fixURIForGit: also turns scp-like `user@host:path` into `ssh://user@host/path`."""
    m = _SCP_URI.match(uri)
    if not uri.startswith("/") and m:
        rewritten = f"{m.group(1)}@{m.group(2)}/{m.group(3)}"
        return rewritten if "://" in rewritten else "ssh://" + rewritten
    return fix_uri(uri)


# -- inputs ---------------------------------------------------------------------------------------

_ALLOWED = {
    "git": ("Git", {"type", "url", "ref", "rev", "shallow", "submodules", "lastModified",
                    "revCount", "narHash", "allRefs", "name"}),
    "tarball": ("tarball", {"type", "url", "narHash", "name"}),
    "path": ("path", {"type", "path", "rev", "revCount", "lastModified", "narHash"}),
}


def _json(attrs: dict) -> str:
    import json
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"))


def _get(attrs: dict, name: str, kind: type, required: bool = False):
    """An input attribute of type `kind`, with Nix's messages for a missing or mistyped one."""
    if name not in attrs:
        if required:
            raise EvalError(f"input attribute '{name}' is missing")
        return None
    v = attrs[name]
    if kind is str and type(v) is not str:
        raise EvalError(f"input attribute '{name}' is not a string {_json(attrs)}")
    if kind is bool and type(v) is not bool:
        raise EvalError(f"input attribute '{name}' is not a Boolean")
    if kind is int and type(v) is not int:
        raise EvalError(f"input attribute '{name}' is not an integer")
    return v


def input_from_attrs(attrs: dict) -> dict:
    """Check an input's attributes as Nix 2.8 does; return the input (a dict)."""
    kind = attrs.get("type")
    if kind in _ALLOWED:
        label, allowed = _ALLOWED[kind]
        for name in sorted(attrs):
            if name not in allowed:
                raise EvalError(f"unsupported {label} input attribute '{name}'")
        if kind == "git":
            _get(attrs, "url", str, required=True)
            for flag in ("shallow", "submodules", "allRefs"):
                _get(attrs, flag, bool)
            ref = _get(attrs, "ref", str)
            if ref is not None:
                from .gitfetch import GitFetchError, check_ref
                try:
                    check_ref(ref)
                except GitFetchError as e:
                    raise EvalError(str(e)) from None
        elif kind == "tarball":
            _get(attrs, "url", str, required=True)
        else:
            _get(attrs, "path", str, required=True)
    _get(attrs, "type", str, required=True)
    _get(attrs, "ref", str)
    if "rev" in attrs:
        _rev(attrs)
    _get(attrs, "revCount", int)
    _get(attrs, "lastModified", int)
    if "narHash" in attrs:
        _nar_hash(attrs)
    return attrs


def _rev(attrs: dict) -> str | None:
    text = _get(attrs, "rev", str)
    if text is None:
        return None
    try:
        return Hash.parse(text, "sha1").base16()
    except (ValueError, UnknownHashAlgorithm) as e:
        raise EvalError(str(e)) from None


def _nar_hash(attrs: dict) -> Hash | None:
    text = _get(attrs, "narHash", str)
    if text is None:
        return None
    try:
        h = Hash("sha256", bytes(32)) if text == "" else Hash.parse(text)
    except (ValueError, UnknownHashAlgorithm) as e:
        raise EvalError(str(e)) from None
    if h.algo != "sha256":
        raise EvalError("narHash must use SHA-256")
    return h


def input_from_url(url: str) -> dict:
    """The input a URL denotes (Nix 2.8's `Input::fromURL`)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if scheme in ("git", "git+http", "git+https", "git+ssh", "git+file"):
        attrs: dict = {"type": "git"}
        rest = []
        for name, value in query:
            if name in ("rev", "ref"):
                attrs[name] = value
            elif name in ("shallow", "submodules"):
                attrs[name] = value == "1"
            else:
                rest.append((name, value))
        bare = scheme[4:] if scheme.startswith("git+") else scheme
        attrs["url"] = urllib.parse.urlunsplit(
            (bare, parts.netloc, parts.path, urllib.parse.urlencode(rest), parts.fragment))
        return input_from_attrs(attrs)
    if scheme == "path":
        attrs = {"type": "path", "path": urllib.parse.unquote(parts.path)}
        for name, value in query:
            if name in ("rev", "narHash"):
                attrs[name] = value
            elif name in ("revCount", "lastModified"):
                attrs[name] = int(value) if value.isdigit() else value
            else:
                raise EvalError(f"path URL '{url}' has invalid parameter '{name}'")
        return input_from_attrs(attrs)
    if scheme.startswith("hg+"):
        return input_from_attrs({"type": "mercurial", "url": url})
    if scheme in ("file", "http", "https") and parts.path.endswith(TARBALL_EXTENSIONS):
        attrs = {"type": "tarball", "url": url}
        nar_hash = dict(query).get("narHash")
        if nar_hash is not None:
            attrs["narHash"] = nar_hash
        return input_from_attrs(attrs)
    raise EvalError(f"input '{url}' is unsupported")


_URL_SAFE = "-._~!$&'()*+,;=:@"


def _percent_encode(s: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in _URL_SAFE) else
                   "".join(f"%{b:02x}" for b in c.encode()) for c in s)


def _query(pairs: dict) -> str:
    return "&".join(f"{_percent_encode(k)}={_percent_encode(str(v))}"
                    for k, v in sorted(pairs.items()))


def input_to_string(inp: dict) -> str:
    """The URL form of an input, as Nix's messages show it."""
    kind = inp.get("type")
    if kind == "git":
        url = inp["url"]
        if not url.startswith("git:"):
            url = "git+" + url
        q = {k: inp[k] for k in ("ref", "rev") if k in inp}
        if inp.get("shallow"):
            q["shallow"] = "1"
    elif kind == "tarball":
        url = inp["url"]
        q = {"narHash": inp["narHash"]} if "narHash" in inp else {}
    elif kind == "path":
        url = "path:" + inp["path"]
        q = {k: ("1" if v is True else "0" if v is False else v)
             for k, v in inp.items() if k not in ("type", "path")}
    else:
        return _json(inp)
    return url + ("?" + _query(q) if q else "")


def _fetch_input(state, inp: dict) -> tuple[str, dict]:
    """Nix's `Input::fetch`: fetch (or find) the input's tree; return (store path, the input
    with what the fetch learnt: narHash, rev, revCount, lastModified)."""
    kind = inp.get("type")
    if kind in UNSUPPORTED_TYPES:
        raise EvalError(f"'{kind}' inputs are not supported by dtx")
    if kind not in _ALLOWED:
        raise EvalError(f"cannot fetch unsupported input '{_json(inp)}'")
    store = fetch_store(state)
    name = inp.get("name", "source")
    wanted = _nar_hash(inp)
    if wanted is not None and _has_all_info(inp):
        path = make_fixed_output_path(True, wanted, name, store.store_dir)
        if store.is_valid(path):
            return path, dict(inp)
    try:
        if kind == "git":
            path, out = _fetch_git(state, store, inp)
        elif kind == "tarball":
            from .downloads import download_tarball
            path = download_tarball(store, _cache(state), inp["url"], name, False,
                                    _progress(state), _warn)
            out = dict(inp)
        else:
            path, out = _fetch_path(store, inp)
    except EvalError as e:
        e.add_trace(f"while fetching the input '{input_to_string(inp)}'")
        raise
    except _failures() as e:
        error = EvalError(str(e))
        error.add_trace(f"while fetching the input '{input_to_string(inp)}'")
        raise error from None
    got = store.query_info(path).nar_hash
    out["narHash"] = got.sri()
    if wanted is not None and got != wanted:
        raise EvalError(f"NAR hash mismatch in input '{input_to_string(inp)}' "
                        f"({path}), expected '{wanted.sri()}', "
                        f"got '{got.sri()}'")
    for key, what in (("lastModified", "'lastModified'"), ("revCount", "'revCount'")):
        if key in inp and out.get(key) != inp[key]:
            raise EvalError(f"{what} attribute mismatch in input '{input_to_string(out)}', "
                            f"expected {inp[key]}")
    return path, out


def _has_all_info(inp: dict) -> bool:
    if inp["type"] == "git":
        return "lastModified" in inp and (inp.get("shallow") is True or "ref" not in inp
                                          or "revCount" in inp)
    return True


def _fetch_git(state, store, inp: dict) -> tuple[str, dict]:
    from . import gitfetch
    request = gitfetch.GitInput(
        url=inp["url"], ref=inp.get("ref"), rev=_rev(inp),
        shallow=inp.get("shallow", False), submodules=inp.get("submodules", False),
        all_refs=inp.get("allRefs", False), name=inp.get("name", "source"))
    tree = gitfetch.fetch(store, _cache(state), request, _progress(state), _warn)
    out = dict(inp)
    if tree.ref is not None:
        out["ref"] = tree.ref
    if tree.rev is not None:
        out["rev"] = tree.rev
    if tree.rev_count is not None:
        out["revCount"] = tree.rev_count
    out["lastModified"] = tree.last_modified
    return tree.path, out


def _fetch_path(store, inp: dict) -> tuple[str, dict]:
    path = inp["path"]
    if not path.startswith("/"):
        raise EvalError(f"cannot fetch input '{input_to_string(inp)}' because it uses a "
                        "relative path")
    out = dict(inp)
    if path.startswith(store.store_dir + "/") and store.is_valid(path) and \
            path.endswith("-source") and "/" not in path[len(store.store_dir) + 1:]:
        out["lastModified"] = 0
        return path, out
    if not os.path.lexists(path):
        raise EvalError(f"getting status of '{path}': No such file or directory")
    out["lastModified"] = _newest_mtime(path)
    return store.add_path(path, "source"), out


def _newest_mtime(path: str) -> int:
    newest = int(os.lstat(path).st_mtime)
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                newest = max(newest, int(os.lstat(os.path.join(dirpath, name)).st_mtime))
    return newest


def _tree_attrs(path: str, inp: dict, empty_rev_fallback: bool) -> Attrs:
    """Nix's emitTreeAttrs: the set `fetchTree` and `fetchGit` return."""
    d: dict = {"outPath": _store_string(path), "narHash": inp["narHash"]}
    if inp["type"] == "git":
        d["submodules"] = inp.get("submodules", False)
    rev = _rev(inp)
    if rev is None and empty_rev_fallback:
        rev = NULL_REV
    if rev is not None:
        d["rev"] = rev
        d["shortRev"] = rev[:7]
    if "revCount" in inp:
        d["revCount"] = inp["revCount"]
    elif empty_rev_fallback:
        d["revCount"] = 0
    if "lastModified" in inp:
        d["lastModified"] = inp["lastModified"]
        d["lastModifiedDate"] = time.strftime("%Y%m%d%H%M%S",
                                              time.gmtime(inp["lastModified"]))
    return Attrs(d)
