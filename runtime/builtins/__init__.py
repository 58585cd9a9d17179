"""The registry of builtins.

Every builtin is registered once, with its name, arity, a Markdown doc (its docstring, whose
first line is the signature as `builtins.name a b`), whether it takes its arguments unforced
(`lazy`) and whether it needs the evaluator (`state`, passed as the first argument). The
evaluator builds `builtins` and the global scope from this registry; the reference docs are
generated from it. Store-touching builtins (derivation, toFile, path, …) are registered from the
glue layer through the same decorator, so the pure evaluator never imports the store.

As in Nix, a few builtins are also bound at the top level (`GLOBAL_NAMES`); every other one is
reachable as `__name` too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Builtin:
    name: str
    arity: int  # 0 for a constant
    fn: Callable | None
    doc: str
    lazy: bool = False
    state: bool = False
    value: Any = None  # for constants: the value, or a factory taking the evaluator when `state`


REGISTRY: dict[str, Builtin] = {}

# The names Nix 2.8 binds at the top level besides `builtins` itself.
GLOBAL_NAMES = frozenset({
    "abort", "baseNameOf", "derivation", "derivationStrict", "dirOf", "false", "fetchGit",
    "fetchMercurial", "fetchTarball", "fetchTree", "fromTOML", "import", "isNull", "map", "null",
    "placeholder", "removeAttrs", "scopedImport", "throw", "toString", "true",
})


def builtin(name: str, arity: int, *, lazy: bool = False, state: bool = False):
    """Register the decorated function as `builtins.<name>`."""
    def register(fn: Callable) -> Callable:
        REGISTRY[name] = Builtin(name, arity, fn, (fn.__doc__ or "").strip(), lazy, state)
        return fn
    return register


def constant(name: str, value: Any, doc: str, *, state: bool = False) -> None:
    """Register a constant; with `state`, `value` is a function of the evaluator."""
    REGISTRY[name] = Builtin(name, 0, None, doc, state=state, value=value)


_MODULES = ("control", "types", "arith", "strings", "lists", "attrsets", "versions", "regex",
            "hashing", "json", "toml", "xml", "files")


def load_all() -> dict[str, Builtin]:
    """Import every module that registers builtins and return the registry."""
    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return REGISTRY
