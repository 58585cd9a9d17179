"""Builtins for control and evaluation order: errors, `tryEval`, `seq`, `trace` and constants
that describe the evaluator."""

from __future__ import annotations

import time

from ..errors import Abort, AssertionFailed, EvalError, ThrownError
from ..operators import coerce_to_string
from ..values import Attrs, Thunk, force, value_thunk, want_string
from . import builtin, constant

constant("true", True, "The Boolean true.")
constant("false", False, "The Boolean false.")
constant("null", None, "The null value.")
constant("currentSystem", "x86_64-linux", "The platform dtx evaluates for, e.g. `\"x86_64-linux\"`.")
constant("nixVersion", "2.8.0", "The version of Nix whose language dtx implements.")
constant("langVersion", 6, "The version of the Nix language dtx implements.")
constant("storeDir", lambda state: state.store_dir,
         "The logical store directory, `/nix/store` unless `DTX_STORE_DIR` says otherwise.",
         state=True)
constant("currentTime", lambda state: int(time.time()),
         "The current time in seconds since the epoch (fixed for one evaluation).", state=True)
constant("nixPath", lambda state: state.nix_path_value(),
         "The search path as a list of `{ prefix; path; }` sets.", state=True)


@builtin("throw", 1)
def throw(msg):
    """`throw s`: fail with the message `s`; `tryEval` can catch it."""
    raise ThrownError(str(want_string(msg)))


@builtin("abort", 1, state=True)
def abort(state, msg):
    """`abort s`: stop evaluation with the message `s`; nothing catches it."""
    raise Abort(coerce_to_string(state, msg, set(), coerce_more=True))


@builtin("seq", 2, lazy=True)
def seq(a, b):
    """`builtins.seq e1 e2`: evaluate `e1` to weak head normal form, then return `e2`."""
    force(a)
    return b


def deep_force(v, seen=None) -> None:
    """Force a value and everything in it (lists and attribute sets, recursively)."""
    stack = [v]
    seen = set() if seen is None else seen
    while stack:
        v = force(stack.pop())
        t = type(v)
        if t is list or t is Attrs:
            if id(v) in seen:
                continue
            seen.add(id(v))
            items = v if t is list else v.d.values()
            stack.extend(reversed(list(items)))


@builtin("deepSeq", 2, lazy=True)
def deep_seq(a, b):
    """`builtins.deepSeq e1 e2`: evaluate `e1` completely, then return `e2`."""
    deep_force(a)
    return b


@builtin("tryEval", 1, lazy=True)
def try_eval(e):
    """`builtins.tryEval e`: `{ success = true; value = e; }`, or `{ success = false; value =
    false; }` if evaluating `e` throws or fails an assertion (not for other errors)."""
    try:
        v = force(e)
    except (ThrownError, AssertionFailed):
        return Attrs({"success": False, "value": False})
    return Attrs({"success": True, "value": value_thunk(v) if type(e) is Thunk else v})


@builtin("trace", 2, lazy=True, state=True)
def trace(state, msg, value):
    """`builtins.trace e1 e2`: print `e1` on stderr (strings as they are, other values printed
    like `--eval` does) and return `e2`."""
    from ..printer import print_value
    m = force(msg)
    text = str(m) if isinstance(m, str) else print_value(m, strict=True)
    print(f"trace: {text}", file=state.trace_out, flush=True)
    return value


@builtin("addErrorContext", 2, lazy=True)
def add_error_context(context, value):
    """`builtins.addErrorContext s e`: evaluate `e`; if that fails, add `s` to the error's
    trace."""
    try:
        return force(value)
    except EvalError as e:
        try:
            e.add_trace(str(force(context)))
        except EvalError:
            pass
        raise
