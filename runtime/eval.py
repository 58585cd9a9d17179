"""The evaluator: global state of one evaluation and its entry points.

An `Evaluator` owns the builtins (built from the registry in runtime.builtins), the global scope,
the search path (`-I`, `DTX_PATH`, then `<dtx>` and `<nixpkgs>` for the bundled stdlib), the cache
of imported files, and the hooks that the glue layer fills in to reach the store
(`copy_path_to_store`; `realise_path`, which builds what a path's string context names before a
builtin reads the file; `file_references`). It parses, resolves and compiles sources and
evaluates them.

Deep recursion: Nix programs recurse deeply (a non-tail recursive function 50 000 calls deep is
fine in Nix). `run_deep` runs an evaluation on a thread with a large stack and a high recursion
limit, and turns Python's RecursionError into Nix's "stack overflow" error.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Callable

from ..lang import ast
from ..lang.resolve import Scope, base_scope, resolve
from .builtins import GLOBAL_NAMES, load_all
from .compile import Compiler
from .errors import EvalError, InvalidPathError, StackOverflow
from .operators import coerce_to_string
from .values import Attrs, NixPath, PrimOp, Thunk, force, value_thunk

STDLIB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stdlib")

_RECURSION_LIMIT = 600_000
_THREAD_STACK = 4 << 30


_interrupt_hooks: list[Callable[[], None]] = []


def on_interrupt(hook: Callable[[], None]) -> None:
    """Register a function run when the user interrupts a `run_deep` computation (Ctrl-C),
    e.g. to kill builder processes the computation is waiting for."""
    _interrupt_hooks.append(hook)


def _interrupt(thread: threading.Thread) -> None:
    """Raise KeyboardInterrupt inside `thread` (at its next Python instruction) and run the
    interrupt hooks so that whatever it waits for returns."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(KeyboardInterrupt))
    for hook in _interrupt_hooks:
        hook()


def run_deep(fn: Callable):
    """Run `fn()` on a thread with a deep stack; return its result or raise its exception.
    Ctrl-C interrupts the computation itself, which cleans up before the interrupt returns."""
    result: dict = {}
    done = threading.Event()

    def target():
        try:
            result["value"] = fn()
        except RecursionError:
            result["error"] = StackOverflow()
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            result["error"] = e
        finally:
            done.set()

    old_limit = sys.getrecursionlimit()
    old_size = threading.stack_size()
    sys.setrecursionlimit(_RECURSION_LIMIT)
    threading.stack_size(_THREAD_STACK)
    try:
        thread = threading.Thread(target=target, name="dtx-eval", daemon=True)
        thread.start()
    finally:
        threading.stack_size(old_size)
    # Wait on an Event, not Thread.join: a KeyboardInterrupt inside join can leave the thread
    # looking finished while it still runs, and restoring the small recursion limit under a
    # deep computation would then crash the interpreter.
    try:
        try:
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            if not done.is_set():
                _interrupt(thread)
            while not done.wait(0.1):
                pass
            if "error" not in result or isinstance(result["error"], KeyboardInterrupt):
                raise
    finally:
        if done.is_set():
            sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def parse_search_path(text: str) -> list[tuple[str, str]]:
    """Split a `NIX_PATH`-style string (`a=/x:/y:b=https://…`) into (prefix, path) pairs."""
    entries = []
    for item in _split_path_list(text):
        if not item:
            continue
        prefix, eq, path = item.partition("=")
        if not eq:
            prefix, path = "", item
        entries.append((prefix, path))
    return entries


def _split_path_list(text: str) -> list[str]:
    # Colons inside URLs (`https://`) do not separate entries, as in Nix.
    out, cur = [], ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == ":" and not text.startswith("//", i + 1):
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return out


class Evaluator:
    """The state of one evaluation."""

    def __init__(self, search_path: list[tuple[str, str]] | None = None,
                 env_search_path: str | None = None, pure: bool = False):
        self.pure = pure
        entries = list(search_path or [])
        if env_search_path is None:
            env_search_path = os.environ.get("DTX_PATH", "")
        entries += parse_search_path(env_search_path)
        entries += [("dtx", STDLIB_DIR), ("nixpkgs", STDLIB_DIR)]
        self.search_path = entries
        self.import_cache: dict[str, object] = {}
        self.compiler = Compiler(self)
        self.store_dir = os.environ.get("DTX_STORE_DIR", "/nix/store")
        # Filled in by the glue layer when a store is available.
        self.copy_path_to_store: Callable[[str], str] = self._no_store
        # (path, its string context) -> the file to read, once what the context names exists.
        self.realise_path: Callable[[str, set], str] = lambda path, ctx: path
        # A file's path -> the context `readFile` gives its contents (the references of the
        # store object it lies in).
        self.file_references: Callable[[str], set] = lambda path: set()
        self.trace_out = sys.stderr
        self._build_globals()

    # -- builtins and the global scope ----------------------------------------------------------

    def _build_globals(self) -> None:
        registry = load_all()
        builtins: dict[str, object] = {}
        for name, b in registry.items():
            if b.fn is None:
                value = b.value(self) if b.state else b.value
                builtins[name] = value
            else:
                fn = b.fn
                if b.state:
                    fn = _bind_state(fn, self)
                builtins[name] = PrimOp(name, b.arity, fn, b.doc, b.lazy)
        self.builtins = Attrs(builtins)
        builtins["builtins"] = self.builtins
        names: list[str] = []
        values: list[object] = []
        for name, value in builtins.items():
            names.append(self._global_name(name))
            values.append(value)
        self.global_names = names
        self.base_scope = base_scope(names)
        self.base_env = [None, *values]

    @staticmethod
    def _global_name(name: str) -> str:
        """Return the name a builtin has in the global scope: itself or `__name`, as in Nix."""
        return name if name in GLOBAL_NAMES or name == "builtins" else "__" + name

    def register_builtin(self, name: str, value) -> None:
        """Add or replace a builtin after start-up (used by the glue layer)."""
        self.builtins.d[name] = value
        key = self._global_name(name)
        index = self.base_scope.names.get(key)
        if index is None:
            self.base_scope.names[key] = len(self.base_env)
            self.base_env.append(value)
        else:
            self.base_env[index] = value

    @staticmethod
    def _no_store(path: str) -> str:
        raise EvalError(f"cannot copy '{path}' to the store: no store is available")

    # -- parsing and evaluation -----------------------------------------------------------------

    def parse(self, text: str, name: str = "«string»", base_dir: str | None = None,
              path: str | None = None) -> ast.Node:
        from ..lang.parser import parse
        return parse(text, name, base_dir or os.getcwd(), path)

    def compile(self, node: ast.Node, scope: Scope | None = None):
        resolve(node, scope or self.base_scope)
        return self.compiler.strict(node)

    def eval_node(self, node: ast.Node):
        """Resolve, compile and evaluate a parsed expression in the global scope (to WHNF)."""
        return self.compile(node)(self.base_env)

    def eval_string(self, text: str, base_dir: str | None = None, name: str = "«string»"):
        return self.eval_node(self.parse(text, name, base_dir))

    def eval_file(self, path: str):
        """Evaluate a file (with `import`'s caching and directory rules)."""
        return self.import_path(os.path.abspath(path))

    # -- files ----------------------------------------------------------------------------------

    @staticmethod
    def resolve_import_path(path: str) -> str:
        """Return the file `import path` reads: `path`, or `path/default.dtx` / `default.nix`."""
        if os.path.isdir(path):
            for name in ("default.dtx", "default.nix"):
                candidate = os.path.join(path, name)
                if os.path.exists(candidate):
                    return candidate
            return os.path.join(path, "default.nix")
        return path

    def read_source(self, path: str) -> ast.Node:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except FileNotFoundError:
            raise EvalError(f"getting status of '{path}': No such file or directory") from None
        except OSError as e:
            raise EvalError(f"reading '{path}': {e.strerror}") from None
        return self.parse(text, path, os.path.dirname(path), path)

    def import_path(self, path: str):
        path = self.resolve_import_path(path)
        cached = self.import_cache.get(path)
        if cached is not None:
            return force(cached)
        node = self.read_source(path)
        code = self.compile(node)
        thunk = Thunk(code, self.base_env)
        self.import_cache[path] = thunk
        return thunk.force()

    def scoped_import(self, scope: Attrs, path: str):
        """`scopedImport scope path`: the file sees the names of `scope` ahead of the globals."""
        node = self.read_source(self.resolve_import_path(path))
        names = list(scope.d)
        static = Scope(self.base_scope, {name: i + 1 for i, name in enumerate(names)})
        resolve(node, static)
        code = self.compiler.strict(node)
        return code([self.base_env, *[scope.d[n] for n in names]])

    def find_file(self, search_path: list, name: str) -> str:
        """Look `name` (as in `<name>`) up in a `__nixPath`-shaped list; return the file."""
        for entry in search_path:
            entry = force(entry)
            prefix = force(entry.d.get("prefix", "")) if type(entry) is Attrs else ""
            target = force(entry.d["path"]) if type(entry) is Attrs and "path" in entry.d else None
            if target is None:
                continue
            target = self._search_path_entry(target)
            if prefix:
                if name == prefix:
                    rest = ""
                elif name.startswith(prefix + "/"):
                    rest = name[len(prefix) + 1:]
                else:
                    continue
            else:
                rest = name
            candidate = os.path.join(target, rest) if rest else target
            if os.path.exists(candidate):
                return os.path.normpath(candidate)
        raise EvalError(f"file '{name}' was not found in the Nix search path "
                        f"(add it using $NIX_PATH or -I)")

    def _search_path_entry(self, value) -> str:
        """The directory a search-path entry's `path` names, its string context realised (a
        derivation output is built if it is missing)."""
        if type(value) is NixPath:
            return value.path
        ctx: set = set()
        path = coerce_to_string(self, value, ctx, copy_to_store=False)
        if not ctx:
            return path
        try:
            return self.realise_path(path, ctx)
        except InvalidPathError as e:
            raise EvalError(f"cannot find '{path}', since path '{e.path}' is not valid") from None

    def nix_path_value(self) -> list:
        return [value_thunk(Attrs({"path": path, "prefix": prefix}))
                for prefix, path in self.search_path]


def _bind_state(fn, state):
    def bound(*args):
        return fn(state, *args)
    bound.__name__ = fn.__name__
    bound.__doc__ = fn.__doc__
    return bound
