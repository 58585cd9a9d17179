"""Function application: lambdas, builtins (with partial application) and `__functor` sets."""

from __future__ import annotations

from .errors import EvalError
from .values import Attrs, Lambda, PrimOp, PrimOpApp, Thunk, force, show_type


def invoke(op: PrimOp, args: tuple):
    """Run a fully applied builtin and return its forced result."""
    if op.lazy:
        result = op.fn(*args)
        if type(result) is Thunk:
            return result.force()
        return result
    return op.fn(*[a.force() if type(a) is Thunk else a for a in args])


def call(f, arg):
    """Apply the forced function value `f` to `arg` (a value or thunk); return the forced result."""
    t = type(f)
    if t is Lambda:
        body = f.body
        if body is not None:
            return body([f.env, arg])
        return f.call(f.env, arg)
    if t is PrimOp:
        if f.arity == 1:
            return invoke(f, (arg,))
        return PrimOpApp(f, (arg,))
    if t is PrimOpApp:
        args = f.args + (arg,)
        op = f.op
        if len(args) == op.arity:
            return invoke(op, args)
        return PrimOpApp(op, args)
    if t is Attrs and "__functor" in f.d:
        return call(call(f.get("__functor"), f), arg)
    raise EvalError(f"attempt to call something which is not a function but {show_type(f)}")


def call2(f, a, b):
    """Apply `f` to two arguments."""
    return call(call(f, a), b)


def is_function(v) -> bool:
    t = type(v)
    return t is Lambda or t is PrimOp or t is PrimOpApp or (t is Attrs and "__functor" in v.d)


def force_function(v):
    v = force(v)
    if not is_function(v):
        raise EvalError(f"value is {show_type(v)} while a function was expected")
    return v
