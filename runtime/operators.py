"""The semantics of Nix's operators and coercions, shared by the evaluator and the builtins.

Integers are 64-bit signed and wrap on overflow, as they do in Nix 2.8; integer division truncates
toward zero. Equality follows Nix's `eqValues` (ints and floats compare by value, derivations by
`outPath`, functions are never equal — except that two list elements or attribute values that
are the very same value are, without looking at them). String coercion follows `coerceToString`,
with `coerce_more` for `toString`'s extra conversions.
"""

from __future__ import annotations


from .errors import EvalError
from .values import Attrs, CStr, NixPath, force, make_string, show_type, type_error, want_int

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1


def wrap_int(n: int) -> int:
    """Wrap an integer to signed 64 bits."""
    if INT_MIN <= n <= INT_MAX:
        return n
    return ((n - INT_MIN) & 0xFFFFFFFFFFFFFFFF) + INT_MIN


def add_numbers(a, b):
    if type(a) is int and type(b) is int:
        return wrap_int(a + b)
    return float(a) + float(b)


def want_float(v) -> float:
    """Return a number as a float, as Nix's `forceFloat` does; other types are an error."""
    t = type(v)
    if t is float:
        return v
    if t is int:
        return float(v)
    raise type_error(v, "a float")


# `-`, `*` and `/` are Nix's `__sub`, `__mul` and `__div`: as soon as one operand is a float the
# arithmetic is done in floats (the other must then be a number: "… while a float was
# expected"), else in 64-bit integers that wrap on overflow.

def sub(a, b):
    if type(a) is float or type(b) is float:
        return want_float(a) - want_float(b)
    return wrap_int(want_int(a) - want_int(b))


def mul(a, b):
    if type(a) is float or type(b) is float:
        return want_float(a) * want_float(b)
    return wrap_int(want_int(a) * want_int(b))


def div(a, b):
    divisor = want_float(b)
    if divisor == 0:
        raise EvalError("division by zero")
    if type(a) is float or type(b) is float:
        return want_float(a) / divisor
    x = want_int(a)
    if x == INT_MIN and b == -1:
        raise EvalError("overflow in integer division")
    q = abs(x) // abs(b)
    return q if (x < 0) == (b < 0) else -q


def canon_path(path: str) -> str:
    """Canonicalise an absolute path as Nix's canonPath does (no symlinks are resolved)."""
    if not path.startswith("/"):
        raise EvalError(f"not an absolute path: '{path}'")
    parts: list[str] = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def coerce_to_string(state, v, ctx: set, coerce_more: bool = False,
                     copy_to_store: bool = True) -> str:
    """Coerce a forced value to a string, adding its context to `ctx`."""
    t = type(v)
    if t is str:
        return v
    if t is CStr:
        ctx |= v.ctx
        return str(v)
    if t is NixPath:
        if copy_to_store:
            store_path = state.copy_path_to_store(v.path)
            ctx.add(store_path)
            return store_path
        return v.path
    if t is Attrs:
        to_string = v.d.get("__toString")
        if to_string is not None:
            from .apply import call
            result = call(force(to_string), v)
            return coerce_to_string(state, result, ctx, coerce_more, copy_to_store)
        out_path = v.d.get("outPath")
        if out_path is not None:
            return coerce_to_string(state, force(out_path), ctx, coerce_more, copy_to_store)
        raise EvalError("cannot coerce a set to a string")
    if coerce_more:
        if v is None or v is False:
            return ""
        if v is True:
            return "1"
        if t is int:
            return str(v)
        if t is float:
            return "%f" % v
        if t is list:
            out = []
            n = len(v)
            for i, item in enumerate(v):
                item = force(item)
                out.append(coerce_to_string(state, item, ctx, coerce_more, copy_to_store))
                if i < n - 1 and not (type(item) is list and not item):
                    out.append(" ")
            return "".join(out)
    raise EvalError(f"cannot coerce {show_type(v)} to a string")


class OperandError(EvalError):
    """An error about one operand of a binary operator: `operand` is 0 (left) or 1 (right),
    so the error can be reported at that operand's position, as Nix does."""

    def __init__(self, error: EvalError, operand: int):
        super().__init__(error.message, error.span)
        self.trace = error.trace
        self.operand = operand


def add(state, a, b):
    """`a + b` for forced operands: numbers, paths or strings, decided by the left operand."""
    ta = type(a)
    if ta is int or ta is float:
        tb = type(b)
        if tb is int or tb is float:
            return add_numbers(a, b)
        raise OperandError(EvalError(f"cannot add {show_type(b)} to {show_type(a)}"), 1)
    if ta is NixPath:
        ctx: set = set()
        try:
            s = coerce_to_string(state, b, ctx, copy_to_store=False)
        except EvalError as e:
            raise OperandError(e, 1) from None
        if ctx:
            raise EvalError("a string that refers to a store path cannot be appended to a path")
        return NixPath(canon_path(a.path + s))
    if ta is str and type(b) is str:
        return a + b
    ctx = set()
    try:
        left = coerce_to_string(state, a, ctx)
    except EvalError as e:
        raise OperandError(e, 0) from None
    try:
        right = coerce_to_string(state, b, ctx)
    except EvalError as e:
        raise OperandError(e, 1) from None
    return make_string(left + right, ctx)


def equal(a, b) -> bool:
    """Nix's `==` on two forced values."""
    ta, tb = type(a), type(b)
    if ta is CStr:
        ta = str
    if tb is CStr:
        tb = str
    if ta is not tb:
        if (ta is int and tb is float) or (ta is float and tb is int):
            return a == b
        return False
    if ta is str or ta is int or ta is float or ta is bool:
        return a == b
    if a is None:
        return True
    if ta is NixPath:
        return a.path == b.path
    if ta is list:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if x is y:
                continue
            if not equal(force(x), force(y)):
                return False
        return True
    if ta is Attrs:
        if a is b:
            return True
        da, db = a.d, b.d
        if a.is_derivation() and b.is_derivation():
            if "outPath" in da and "outPath" in db:
                return equal(a.get("outPath"), b.get("outPath"))
        if len(da) != len(db):
            return False
        for name, x in da.items():
            y = db.get(name, _MISSING)
            if y is _MISSING:
                return False
            if x is y:
                continue
            if not equal(force(x), force(y)):
                return False
        return True
    return False


_MISSING = object()


def less_than(a, b) -> bool:
    """Nix's `builtins.lessThan` / `<` on two forced values."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a < b
    if (ta is str or ta is CStr) and (tb is str or tb is CStr):
        return a.encode() < b.encode()
    if ta is NixPath and tb is NixPath:
        return a.path.encode() < b.path.encode()
    if ta is list and tb is list:
        for x, y in zip(a, b):
            x, y = force(x), force(y)
            if not equal(x, y):
                return less_than(x, y)
        return len(a) < len(b)
    raise EvalError(f"cannot compare {show_type(a)} with {show_type(b)}")


def concat_lists(a, b) -> list:
    if type(a) is not list:
        raise type_error(a, "a list")
    if type(b) is not list:
        raise type_error(b, "a list")
    if not a:
        return b
    if not b:
        return a
    return a + b


def update(a, b) -> Attrs:
    """`a // b`."""
    if type(a) is not Attrs:
        raise type_error(a, "a set")
    if type(b) is not Attrs:
        raise type_error(b, "a set")
    if not b.d:
        return a
    if not a.d:
        return b
    d = dict(a.d)
    d.update(b.d)
    pos = None
    if a.pos is not None or b.pos is not None:
        pos = dict(a.pos or {})
        pos.update(b.pos or {})
    return Attrs(d, pos)
