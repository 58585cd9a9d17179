"""`dtx-store`: manipulate the store, with the operations, flags and output formats of
`nix-store` (Nix 2.8).

Operations: `--add`, `--add-fixed`, `--dump`, `--restore`, `--query`/`-q` (`--outputs`,
`--requisites`/`-R`, `--references`, `--referrers`, `--referrers-closure`, `--tree`, `--graph`,
`--deriver`, `--hash`, `--size`, `--roots`, with `--include-outputs` and `--use-output`),
`--verify [--check-contents]`, `--read-log`, `--gc [--print-dead|--print-live]`, `--delete`,
`--export` and `--import`.

Store path arguments may be logical (`/nix/store/…`, or a file inside a store path) or physical
(the store under DTX_HOME), or symlinks leading to either (`result` links): they are followed
until they reach the store, as nix-store's followLinksToStorePath does.

The export format is Nix's: for each path, in dependency order, the number 1, the path's NAR,
the magic 0x4558494e, the path, its references (count, then each), its deriver ("" if none) and
0 (no signature); then a final 0. Numbers are 64-bit little-endian; strings are a length,
the bytes and zero padding to 8.
"""

from __future__ import annotations

import bz2
import hashlib
import os
import struct
import sys
import tempfile
import traceback
from typing import BinaryIO, Callable

from .. import gc
from ..derivation import DerivationParseError
from ..hashes import Hash
from ..nar import NarError, dump, restore
from ..store import LocalStore, PathInfo, StoreError, canonicalise, remove_tree
from ..storepath import BadStorePath, split_store_path, to_store_path

PROG = "dtx-store"
EXPORT_MAGIC = 0x4558494E

USAGE = """\
Usage: dtx-store OPERATION [OPTIONS...] [ARGUMENTS...]

Operations:
  --add PATH...                    add paths to the store, print their store paths
  --add-fixed [--recursive] ALGO PATH...
                                   add paths with the given content hash algorithm
  --dump PATH                      write the NAR serialisation of PATH to stdout
  --restore PATH                   recreate PATH from a NAR on stdin
  --query, -q QUERY [--include-outputs] [--use-output] PATH...
                                   QUERY: --outputs, --requisites (-R), --references,
                                   --referrers, --referrers-closure, --tree, --graph,
                                   --deriver (-d), --hash, --size, --roots
  --verify [--check-contents]      check the store database against the files
  --read-log, -l PATH...           print the build log of a derivation
  --gc [--print-dead|--print-live] delete (or list) unreachable paths
  --delete PATH...                 delete paths that are not alive
  --export PATH...                 write paths in Nix's export format to stdout
  --import                         read paths in export format from stdin, register them

Global options:
  --store-dir DIR                  the logical store directory (default /nix/store)
  --debug                          show Python tracebacks on internal errors
"""


class UsageError(Exception):
    pass


class Exit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


_OPERATIONS = {
    "--add": "add", "--add-fixed": "add-fixed", "--dump": "dump", "--restore": "restore",
    "--query": "query", "-q": "query", "--verify": "verify", "--read-log": "read-log",
    "-l": "read-log", "--gc": "gc", "--delete": "delete", "--export": "export",
    "--import": "import", "--help": "help",
}

_QUERIES = {
    "--outputs": "outputs", "--requisites": "requisites", "-R": "requisites",
    "--references": "references", "--referrers": "referrers",
    "--referrers-closure": "referrers-closure", "--tree": "tree", "--graph": "graph",
    "--deriver": "deriver", "-d": "deriver", "--hash": "hash", "--size": "size",
    "--roots": "roots",
}


# -- path arguments ---------------------------------------------------------------------------

def follow_links_to_store_path(store: LocalStore, arg: str) -> str:
    """The logical store path `arg` denotes: a logical or physical path in the store, or a chain
    of symlinks that leads into it."""
    p = os.path.abspath(arg)
    for _ in range(64):
        if p.startswith(store.store_dir + "/"):
            break
        if p.startswith(store.real_dir + "/"):
            p = store.logical(p)
            break
        if not os.path.islink(p):
            break
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    if not p.startswith(store.store_dir + "/"):
        raise StoreError(f"path '{p}' is not in the Nix store")
    path = to_store_path(p, store.store_dir)
    split_store_path(path, store.store_dir)
    return path


def _use_outputs(store: LocalStore, path: str, use_output: bool) -> list[str]:
    if use_output and path.endswith(".drv"):
        return sorted(set(store.derivation_outputs(path).values()), key=_base)
    return [path]


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _info(store: LocalStore, path: str) -> PathInfo:
    info = store.query(path) if _store_exists(store) else None
    if info is None:
        raise StoreError(f"path '{path}' is not valid")
    return info


def _store_exists(store: LocalStore) -> bool:
    return os.path.exists(os.path.join(store.state_dir, "db", "db.sqlite")) or not store.read_only


# -- export / import --------------------------------------------------------------------------

def _num(n: int) -> bytes:
    return struct.pack("<Q", n)


def _string(data: bytes) -> bytes:
    return _num(len(data)) + data + b"\0" * (-len(data) % 8)


def export_paths(store: LocalStore, paths, write: Callable[[bytes], object]) -> None:
    """Write `paths` in Nix's export format, references before their referrers."""
    for path in reversed(gc.topo_sort(store, set(paths))):
        info = _info(store, path)
        write(_num(1))
        h = hashlib.sha256()

        def tee(data: bytes) -> None:
            h.update(data)
            write(data)
        dump(store.real(path), tee)
        if h.digest() != info.nar_hash.digest and info.nar_hash.algo == "sha256":
            raise StoreError(f"hash of path '{path}' has changed from "
                             f"'{info.nar_hash.algo}:{info.nar_hash.base32()}' to "
                             f"'sha256:{Hash('sha256', h.digest()).base32()}'!")
        out = _num(EXPORT_MAGIC) + _string(path.encode())
        refs = sorted(info.references, key=_base)
        out += _num(len(refs)) + b"".join(_string(r.encode()) for r in refs)
        out += _string((info.deriver or "").encode()) + _num(0)
        write(out)
    write(_num(0))


class _Source:
    """A reader over a binary stream that hashes and counts what the NAR reader consumes."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.hash: hashlib._Hash | None = None
        self.count = 0

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        while len(data) < n:
            more = self.stream.read(n - len(data))
            if not more:
                break
            data += more
        if self.hash is not None:
            self.hash.update(data)
            self.count += len(data)
        return data

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise StoreError("unexpected end-of-file")
        return data

    def num(self) -> int:
        return struct.unpack("<Q", self.exact(8))[0]

    def string(self) -> bytes:
        n = self.num()
        data = self.exact(n)
        self.exact(-n % 8)
        return data


def import_paths(store: LocalStore, stream: BinaryIO) -> list[str]:
    """Read paths in export format, restore and register each; return their store paths."""
    src = _Source(stream)
    imported: list[str] = []
    while True:
        n = src.num()
        if n == 0:
            break
        if n != 1:
            raise StoreError("input doesn't look like something created by 'nix-store --export'")
        os.makedirs(store.real_dir, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=".tmp-import-", dir=store.real_dir)
        try:
            tmp = os.path.join(tmp_dir, "x")
            src.hash, src.count = hashlib.sha256(), 0
            try:
                restore(src, tmp)
            except NarError as e:
                if "unexpected end" in str(e):
                    raise StoreError("unexpected end-of-file") from None
                raise
            digest, size = src.hash.digest(), src.count
            src.hash = None
            if src.num() != EXPORT_MAGIC:
                raise StoreError("Nix archive cannot be imported; wrong format")
            path = src.string().decode("utf-8", "surrogateescape")
            split_store_path(path, store.store_dir)
            refs = {src.string().decode("utf-8", "surrogateescape") for _ in range(src.num())}
            deriver = src.string().decode("utf-8", "surrogateescape") or None
            if src.num() == 1:
                src.string()  # a legacy signature: ignored, as Nix does
            if not store.is_valid(path):
                with store.lock_path(path):
                    if not store.is_valid(path):
                        real = store.real(path)
                        if os.path.lexists(real):
                            remove_tree(real)
                        canonicalise(tmp)
                        os.rename(tmp, real)
                        store.register(PathInfo(path, Hash("sha256", digest), size, refs,
                                                deriver))
            imported.append(path)
        finally:
            remove_tree(tmp_dir)
    return imported


# -- verify -----------------------------------------------------------------------------------

def verify_store(store: LocalStore, check_contents: bool, err=None) -> bool:
    """Check that every valid path exists (forgetting vanished ones nothing valid refers to)
    and, with `check_contents`, that its NAR hash is unchanged. Return True if errors remain."""
    err = err or sys.stderr
    errors = False
    print("reading the Nix store...", file=err)
    present = set(os.listdir(store.real_dir)) if os.path.isdir(store.real_dir) else set()
    print("checking path existence...", file=err)
    done: set[str] = set()
    valid: set[str] = set()

    def verify_path(path: str) -> None:
        nonlocal errors
        if path in done:
            return
        done.add(path)
        if _base(path) in present:
            valid.add(path)
            return
        can_invalidate = True
        for r in store.referrers(path) - {path}:
            verify_path(r)
            if r in valid:
                can_invalidate = False
        if can_invalidate:
            print(f"path '{path}' disappeared, removing from database...", file=err)
            with store.transaction() as conn:
                conn.execute("delete from ValidPaths where path = ?", (path,))
        else:
            print(f"path '{path}' disappeared, but it still has valid referrers!", file=err)
            errors = True

    for path in store.all_valid_paths():
        verify_path(path)
    if check_contents:
        print("checking store hashes...", file=err)
        for path in sorted(valid):
            info = store.query(path)
            if info is None:
                continue
            h = hashlib.new(info.nar_hash.algo)
            dump(store.real(path), h.update)
            if h.digest() != info.nar_hash.digest:
                got = Hash(info.nar_hash.algo, h.digest())
                print(f"path '{path}' was modified! expected hash "
                      f"'{info.nar_hash.algo}:{info.nar_hash.base32()}', got "
                      f"'{got.algo}:{got.base32()}'", file=err)
                errors = True
    return errors


# -- logs -------------------------------------------------------------------------------------

def read_log(store: LocalStore, path: str) -> bytes | None:
    """The build log of a derivation (or of the deriver of an output), plain or bz2."""
    if not path.endswith(".drv"):
        info = store.query(path) if _store_exists(store) else None
        if info is None or not info.deriver:
            return None
        path = info.deriver
    base = _base(path)
    log_dir = os.path.join(store.state_dir, "log")
    for candidate in (os.path.join(log_dir, "drvs", base[:2], base[2:]),
                      os.path.join(log_dir, base)):
        if os.path.isfile(candidate):
            with open(candidate, "rb") as f:
                return f.read()
        if os.path.isfile(candidate + ".bz2"):
            with open(candidate + ".bz2", "rb") as f:
                return bz2.decompress(f.read())
    return None


# -- queries ----------------------------------------------------------------------------------

def _print_tree(store: LocalStore, path: str, first: str, tail: str, done: set[str],
                out) -> None:
    if path in done:
        out.write(f"{first}{path} [...]\n")
        return
    done.add(path)
    out.write(f"{first}{path}\n")
    refs = list(reversed(gc.topo_sort(store, _info(store, path).references)))
    for n, ref in enumerate(refs):
        last = n + 1 == len(refs)
        _print_tree(store, ref, tail + ("└───" if last else "├───"),
                    tail + ("    " if last else "│   "), done, out)


def _print_graph(store: LocalStore, roots: set[str], out) -> None:
    colours = ["black", "red", "green", "blue", "magenta", "burlywood"]
    counter = 0
    work = set(roots)
    done: set[str] = set()
    out.write("digraph G {\n")
    while work:
        path = min(work, key=_base)
        work.discard(path)
        if path in done:
            continue
        done.add(path)
        name = split_store_path(path, store.store_dir)[1]
        out.write(f'"{_base(path)}" [label = "{name}", shape = box, style = filled, '
                  f'fillcolor = "#ff0000"];\n')
        for ref in sorted(_info(store, path).references, key=_base):
            if ref != path:
                work.add(ref)
                out.write(f'"{_base(ref)}" -> "{_base(path)}" '
                          f'[color = "{colours[counter % len(colours)]}"];\n')
                counter += 1
    out.write("}\n")


def op_query(store: LocalStore, flags: list[str], args: list[str], out) -> None:
    query = None
    include_outputs = use_output = False
    for flag in flags:
        if flag in _QUERIES:
            if query is not None and query != _QUERIES[flag]:
                raise UsageError(f"query type '{flag}' conflicts with earlier flag")
            query = _QUERIES[flag]
        elif flag == "--include-outputs":
            include_outputs = True
        elif flag in ("--use-output", "-u"):
            use_output = True
        elif flag in ("--force-realise", "--force-realize", "-f"):
            raise UsageError(f"'{flag}' is not supported: dtx-store does not build")
        else:
            raise UsageError(f"unknown flag '{flag}'")
    query = query or "outputs"
    paths = [follow_links_to_store_path(store, a) for a in args]

    if query == "outputs":
        for p in paths:
            for o in _use_outputs(store, p, True):
                out.write(o + "\n")
    elif query in ("requisites", "references", "referrers", "referrers-closure"):
        result: set[str] = set()
        for p in paths:
            for q in _use_outputs(store, p, use_output):
                if query == "requisites":
                    _info(store, q)
                    result |= store.closure([q], include_outputs=include_outputs)
                elif query == "references":
                    result |= _info(store, q).references
                elif query == "referrers":
                    result |= store.referrers(q)
                else:
                    result |= store.referrers_closure([q])
        for p in reversed(gc.topo_sort(store, result)):
            out.write(p + "\n")
    elif query == "deriver":
        for p in paths:
            for q in _use_outputs(store, p, use_output):
                out.write((_info(store, q).deriver or "unknown-deriver") + "\n")
    elif query in ("hash", "size"):
        for p in paths:
            for q in _use_outputs(store, p, use_output):
                info = _info(store, q)
                out.write((f"sha256:{info.nar_hash.base32()}" if query == "hash"
                           else str(info.nar_size)) + "\n")
    elif query == "tree":
        done: set[str] = set()
        for p in paths:
            for q in _use_outputs(store, p, use_output):
                _print_tree(store, q, "", "", done, out)
    elif query == "graph":
        roots: set[str] = set()
        for p in paths:
            for q in _use_outputs(store, p, use_output):
                _info(store, q)
                roots.add(q)
        _print_graph(store, roots, out)
    elif query == "roots":
        targets: set[str] = set()
        for p in paths:
            targets |= set(_use_outputs(store, p, use_output))
        referrers = store.referrers_closure(targets, include_outputs=True)
        roots_map = gc.find_roots(store, quiet=True)
        for target in sorted(roots_map, key=_base):
            if target in referrers:
                for link in sorted(roots_map[target]):
                    out.write(f"{link} -> {target}\n")


# -- the command ------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> tuple[str | None, list[str], list[str], dict]:
    """Split argv into (operation, operation flags, arguments, global options)."""
    op = None
    flags: list[str] = []
    args: list[str] = []
    opts = {"store_dir": None, "debug": False}
    it = iter(argv)
    only_args = False
    for arg in it:
        if only_args or not arg.startswith("-") or arg == "-":
            args.append(arg)
        elif arg == "--":
            only_args = True
        elif arg in _OPERATIONS:
            if op is not None and arg != "--help":
                raise UsageError("only one operation may be specified")
            op = _OPERATIONS[arg] if op is None or arg != "--help" else op
            if arg == "--help":
                op = "help"
        elif arg == "--store-dir":
            value = next(it, None)
            if value is None:
                raise UsageError("'--store-dir' requires an argument")
            opts["store_dir"] = value
        elif arg == "--debug":
            opts["debug"] = True
        elif len(arg) > 2 and arg[0] == "-" and arg[1] != "-":
            # Short flags may be combined, as in -qR.
            for c in arg[1:]:
                short = "-" + c
                if short in _OPERATIONS:
                    if op is not None:
                        raise UsageError("only one operation may be specified")
                    op = _OPERATIONS[short]
                else:
                    flags.append(short)
        else:
            flags.append(arg)
    return op, flags, args, opts


def run(argv: list[str], out: BinaryIO | None = None, stdin: BinaryIO | None = None,
        store: LocalStore | None = None) -> int:
    """Run dtx-store; `out` and `stdin` are binary streams (default: the process's)."""
    out = out or sys.stdout.buffer
    stdin = stdin or sys.stdin.buffer
    text = _TextOut(out)
    debug = "--debug" in argv
    try:
        op, flags, args, opts = parse_args(argv)
        if op is None:
            raise UsageError("no operation specified")
        if op == "help":
            text.write(USAGE)
            return 0
        if store is None:
            store = LocalStore(store_dir=opts["store_dir"])
        return _dispatch(store, op, flags, args, text, out, stdin) or 0
    except UsageError as e:
        text.flush()
        print(f"error: {e}\nTry '{PROG} --help' for more information.", file=sys.stderr)
        return 1
    except Exit as e:
        text.flush()
        return e.status
    except (StoreError, NarError, DerivationParseError, BadStorePath) as e:
        text.flush()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        text.flush()
        if isinstance(e, BrokenPipeError):
            return 1
        print(f"error: {_os_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted by the user", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug in dtx: say so, briefly
        if debug:
            traceback.print_exception(e)
        else:
            print(f"error: internal error: {type(e).__name__}: {e}\n"
                  "(run with --debug to see the Python traceback)", file=sys.stderr)
        return 1
    finally:
        text.flush()


def _os_message(e: OSError) -> str:
    if e.filename is not None:
        return f"getting status of '{e.filename}': {e.strerror}"
    return str(e)


class _TextOut:
    """Text written to a binary stream, in order with raw bytes written to it."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def write(self, s: str) -> None:
        self.stream.write(s.encode("utf-8", "surrogateescape"))

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass


def _no_flags(op: str, flags: list[str], allowed: tuple[str, ...] = ()) -> None:
    for f in flags:
        if f not in allowed:
            raise UsageError(f"unknown flag '{f}'")


def _dispatch(store, op, flags, args, text, out, stdin) -> int:
    if op == "add":
        _no_flags(op, flags)
        for a in args:
            text.write(store.add_path(os.path.abspath(a), os.path.basename(a.rstrip("/")))
                       + "\n")
    elif op == "add-fixed":
        _no_flags(op, flags, ("--recursive",))
        if not args:
            raise UsageError("first argument must be hash algorithm")
        algo, rest = args[0], args[1:]
        from ..hashes import HASH_SIZES
        if algo not in HASH_SIZES:
            raise UsageError(f"unknown hash algorithm '{algo}'")
        for a in rest:
            text.write(store.add_path(os.path.abspath(a), os.path.basename(a.rstrip("/")),
                                      recursive="--recursive" in flags, algo=algo) + "\n")
    elif op == "dump":
        _no_flags(op, flags)
        if len(args) != 1:
            raise UsageError("only one argument allowed")
        path = args[0]
        if path.startswith(store.store_dir + "/"):
            path = store.real(path)
        os.lstat(path)
        dump(path, out.write)
    elif op == "restore":
        _no_flags(op, flags)
        if len(args) != 1:
            raise UsageError("only one argument allowed")
        try:
            restore(stdin, args[0])
        except FileExistsError as e:
            kind = "directory" if os.path.isdir(e.filename) else "file"
            raise StoreError(f"creating {kind} '{e.filename}': File exists") from None
        except NarError as e:
            if "unexpected end" in str(e):
                raise StoreError("unexpected end-of-file") from None
            raise
    elif op == "query":
        op_query(store, flags, args, text)
    elif op == "verify":
        _no_flags(op, flags, ("--check-contents", "--repair"))
        if "--repair" in flags:
            raise UsageError("'--repair' is not supported")
        if args:
            raise UsageError("no arguments expected")
        text.flush()
        if verify_store(store, "--check-contents" in flags):
            print("warning: not all store errors were fixed", file=sys.stderr)
            raise Exit(1)
    elif op == "read-log":
        _no_flags(op, flags)
        for a in args:
            path = follow_links_to_store_path(store, a)
            log = read_log(store, path)
            if log is None:
                raise StoreError(f"build log of derivation '{path}' is not available")
            text.flush()
            out.write(log)
    elif op == "gc":
        return _op_gc(store, flags, args, text)
    elif op == "delete":
        _no_flags(op, flags, ("--ignore-liveness",))
        if "--ignore-liveness" in flags:
            raise UsageError("'--ignore-liveness' is not supported")
        paths = [follow_links_to_store_path(store, a) for a in args]
        text.flush()
        deleted, freed, error = gc.delete_paths(store, paths, quiet=False)
        text.write(f"{len(deleted)} store paths deleted, {gc.show_bytes(freed)} freed\n")
        if error is not None:
            raise error
    elif op == "export":
        _no_flags(op, flags)
        paths = [follow_links_to_store_path(store, a) for a in args]
        export_paths(store, paths, out.write)
    elif op == "import":
        _no_flags(op, flags)
        for p in import_paths(store, stdin):
            text.write(p + "\n")
    return 0


def _op_gc(store, flags, args, text) -> int:
    action = "delete"
    for f in flags:
        if f == "--print-dead":
            action = "print-dead"
        elif f == "--print-live":
            action = "print-live"
        elif f == "--print-roots":
            action = "print-roots"
        else:
            raise UsageError(f"bad sub-operation '{f}' in GC")
    if args:
        raise UsageError("no arguments expected")
    if action == "print-roots":
        for target, links in sorted(gc.find_roots(store, quiet=True).items(),
                                    key=lambda kv: _base(kv[0])):
            for link in sorted(links):
                text.write(f"{link} -> {target}\n")
        return 0
    if action in ("print-dead", "print-live"):
        print("finding garbage collector roots...", file=sys.stderr)
        print("determining live/dead paths...", file=sys.stderr)
        with gc.gc_lock(store):
            live, dead = gc.dead_paths(store, quiet=True)
        for p in sorted(dead if action == "print-dead" else live):
            text.write(p + "\n")
        return 0
    text.flush()
    deleted, freed = gc.collect_garbage(store, quiet=False)
    text.write(f"{len(deleted)} store paths deleted, {gc.show_bytes(freed)} freed\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
