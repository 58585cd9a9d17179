"""Run-time values of the Nix language and the thunks that delay them.

Representation (chosen so that the common cases are plain Python objects and fast):

=============  ===============================================================================
Nix type       Python value
=============  ===============================================================================
null           None
bool           True / False (always test `type(v) is bool` before `int`)
int            int, kept within signed 64 bits by the arithmetic (wrapping as Nix 2.8 does)
float          float
string         str when it has no context; `CStr` (a str subclass with `.ctx`) when it has one
path           `NixPath` (an absolute, canonical path)
list           `list` of values or thunks; never mutated once built
set            `Attrs`: a dict of name -> value or thunk
lambda         `Lambda` (a closure over an environment)
primop         `PrimOp`, or `PrimOpApp` for a partial application
=============  ===============================================================================

A `Thunk` is an unevaluated expression with its environment. `force` turns anything into a value
in weak head normal form; while a thunk is being forced it is "black-holed", so a thunk that needs
itself raises "infinite recursion encountered" instead of looping.

Environments are Python lists: `env[0]` is the enclosing environment and `env[1:]` the slots of
the scope (see runtime.compile).
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import EvalError, InfiniteRecursion


def _blackhole(env):  # never called: a marker stored in Thunk.code while a thunk is forced
    raise AssertionError("black hole called")


class Thunk:
    """A delayed computation: `code(env)` gives its value. Once forced, `code` is None and
    `value` holds the result; while being forced, `code` is the black-hole marker."""

    __slots__ = ("code", "env", "value")

    def __init__(self, code: Callable[[list], Any], env: list | None):
        self.code = code
        self.env = env

    def force(self):
        code = self.code
        if code is None:
            return self.value
        if code is _blackhole:
            raise InfiniteRecursion()
        self.code = _blackhole
        try:
            value = code(self.env)
        except BaseException:
            # Leave the thunk re-forceable: forcing it again raises the same error, as in Nix
            # (`tryEval` can observe a failure and the thunk may be forced later).
            self.code = code
            raise
        self.value = value
        self.code = None
        self.env = None
        return value

    def forced(self) -> bool:
        return self.code is None


def force(v):
    """Return `v` evaluated to weak head normal form."""
    if type(v) is Thunk:
        return v.force()
    return v


def value_thunk(v) -> Thunk:
    """Wrap an already computed value as a forced thunk (for APIs that want a thunk)."""
    t = Thunk.__new__(Thunk)
    t.code = None
    t.env = None
    t.value = v
    return t


class CStr(str):
    """A string with a context: the set of store paths (and derivation outputs) it refers to.

    Context elements are strings in Nix's encoding: `/nix/store/…` for a plain path,
    `!out!/nix/store/….drv` for a derivation output and `=/nix/store/….drv` for a derivation with
    its whole closure. Strings without context are plain `str`."""

    ctx: frozenset

    def __new__(cls, s: str, ctx):
        if not ctx:
            return str(s)
        obj = str.__new__(cls, s)
        obj.ctx = frozenset(ctx)
        return obj

    def __reduce__(self):
        return (CStr, (str(self), self.ctx))


EMPTY_CTX: frozenset = frozenset()


def context_of(s: str) -> frozenset:
    """Return the context of a string value (empty for a plain `str`)."""
    return s.ctx if type(s) is CStr else EMPTY_CTX


def make_string(s: str, ctx) -> str:
    """Build a string value with the given context (a plain `str` when the context is empty)."""
    return CStr(s, ctx) if ctx else s


class NixPath:
    """A path value: an absolute, canonical file-system path."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def __eq__(self, other):
        return type(other) is NixPath and other.path == self.path

    def __hash__(self):
        return hash(self.path)

    def __repr__(self):
        return f"NixPath({self.path!r})"


class Attrs:
    """An attribute set: `d` maps names to values or thunks. `pos` optionally maps names to the
    span where they were defined (for error messages and `unsafeGetAttrPos`)."""

    __slots__ = ("d", "pos")

    def __init__(self, d: dict, pos: dict | None = None):
        self.d = d
        self.pos = pos

    def get(self, name: str):
        """Return the forced value of an attribute, or raise KeyError."""
        v = self.d[name]
        if type(v) is Thunk:
            return v.force()
        return v

    def is_derivation(self) -> bool:
        t = self.d.get("type")
        if t is None:
            return False
        t = force(t)
        return isinstance(t, str) and t == "derivation"

    def __repr__(self):
        return f"Attrs({sorted(self.d)!r})"


EMPTY_ATTRS = Attrs({})


class Lambda:
    """A user-defined function: the `ast.Lambda` node, its compiled body and its closure env."""

    __slots__ = ("node", "call", "env", "body")

    def __init__(self, node, call: Callable, env: list, body: Callable | None = None):
        self.node = node
        self.call = call  # call(env, arg) -> value, set up by runtime.compile
        self.env = env
        # For a lambda with a plain parameter: its compiled body, so calls can skip `call`.
        self.body = body

    def __repr__(self):
        return f"Lambda({self.node.span!r})"


class PrimOp:
    """A builtin function of `arity` arguments. `fn(*args)` receives the arguments unforced when
    `lazy` is set, else forced; it returns a value (or a thunk when `lazy`)."""

    __slots__ = ("name", "arity", "fn", "doc", "lazy", "args_doc")

    def __init__(self, name: str, arity: int, fn: Callable, doc: str = "", lazy: bool = False,
                 args_doc: tuple = ()):
        self.name = name
        self.arity = arity
        self.fn = fn
        self.doc = doc
        self.lazy = lazy
        self.args_doc = args_doc

    def __repr__(self):
        return f"PrimOp({self.name})"


class PrimOpApp:
    """A builtin applied to fewer arguments than its arity."""

    __slots__ = ("op", "args")

    def __init__(self, op: PrimOp, args: tuple):
        self.op = op
        self.args = args


def type_name(v) -> str:
    """Return the name `builtins.typeOf` gives a forced value."""
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is str or t is CStr:
        return "string"
    if t is Attrs:
        return "set"
    if t is list:
        return "list"
    if v is None:
        return "null"
    if t is float:
        return "float"
    if t is NixPath:
        return "path"
    if t is Lambda or t is PrimOp or t is PrimOpApp:
        return "lambda"
    raise TypeError(f"not a Nix value: {v!r}")


# Names used in Nix's "value is X while Y was expected" messages.
_SHOWN_TYPE = {
    "bool": "a Boolean", "int": "an integer", "string": "a string", "set": "a set",
    "list": "a list", "null": "null", "float": "a float", "path": "a path",
}


def show_type(v) -> str:
    """Describe a value's type as Nix's error messages do ("an integer", "a set", …)."""
    t = type(v)
    if t is Lambda:
        return "a function"
    if t is PrimOp:
        return "a built-in function"
    if t is PrimOpApp:
        return "a partially applied built-in function"
    return _SHOWN_TYPE[type_name(v)]


def type_error(v, expected: str) -> EvalError:
    return EvalError(f"value is {show_type(v)} while {expected} was expected")


# Uniform type checks for forced values: each returns the value or raises Nix's type error.

def want_int(v) -> int:
    if type(v) is not int:
        raise type_error(v, "an integer")
    return v


def want_bool(v) -> bool:
    if type(v) is not bool:
        raise type_error(v, "a Boolean")
    return v


def want_string(v) -> str:
    """Return a string value (with its context, if any); other types are an error."""
    t = type(v)
    if t is not str and t is not CStr:
        raise type_error(v, "a string")
    return v


def want_list(v) -> list:
    if type(v) is not list:
        raise type_error(v, "a list")
    return v


def want_attrs(v) -> "Attrs":
    if type(v) is not Attrs:
        raise type_error(v, "a set")
    return v
