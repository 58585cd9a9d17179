"""Builtins that inspect the type of a value: `typeOf`, the `is…` predicates and
`functionArgs`."""

from __future__ import annotations

from ..errors import EvalError
from ..values import Attrs, CStr, Lambda, NixPath, PrimOp, PrimOpApp, type_name
from . import builtin


@builtin("typeOf", 1)
def type_of(v):
    """`builtins.typeOf e`: return the type of `e` as a string: `"int"`, `"bool"`,
    `"string"`, `"path"`, `"null"`, `"set"`, `"list"`, `"lambda"` or `"float"`.

    ```nix
    builtins.typeOf { }  # "set"
    ```"""
    return type_name(v)


@builtin("isNull", 1)
def is_null(v):
    """`isNull e`: return whether `e` is `null` (the same as `e == null`).

    ```nix
    isNull null  # true
    ```"""
    return v is None


@builtin("isFunction", 1)
def is_function(v):
    """`builtins.isFunction e`: return whether `e` is a function (a lambda or a builtin, not a
    set with `__functor`).

    ```nix
    builtins.isFunction (x: x)  # true
    ```"""
    t = type(v)
    return t is Lambda or t is PrimOp or t is PrimOpApp


@builtin("isInt", 1)
def is_int(v):
    """`builtins.isInt e`: return whether `e` is an integer.

    ```nix
    builtins.isInt 1.0  # false
    ```"""
    return type(v) is int


@builtin("isFloat", 1)
def is_float(v):
    """`builtins.isFloat e`: return whether `e` is a float.

    ```nix
    builtins.isFloat 1.0  # true
    ```"""
    return type(v) is float


@builtin("isBool", 1)
def is_bool(v):
    """`builtins.isBool e`: return whether `e` is a Boolean.

    ```nix
    builtins.isBool false  # true
    ```"""
    return type(v) is bool


@builtin("isString", 1)
def is_string(v):
    """`builtins.isString e`: return whether `e` is a string (paths are not strings).

    ```nix
    builtins.isString "x"  # true
    ```"""
    t = type(v)
    return t is str or t is CStr


@builtin("isAttrs", 1)
def is_attrs(v):
    """`builtins.isAttrs e`: return whether `e` is an attribute set.

    ```nix
    builtins.isAttrs { a = 1; }  # true
    ```"""
    return type(v) is Attrs


@builtin("isList", 1)
def is_list(v):
    """`builtins.isList e`: return whether `e` is a list.

    ```nix
    builtins.isList [ ]  # true
    ```"""
    return type(v) is list


@builtin("isPath", 1)
def is_path(v):
    """`builtins.isPath e`: return whether `e` is a path.

    ```nix
    builtins.isPath ./.  # true
    ```"""
    return type(v) is NixPath


@builtin("functionArgs", 1)
def function_args(f):
    """`builtins.functionArgs f`: return the formal arguments of the function `f` as a set
    mapping each name to whether it has a default. Functions with a plain argument (`x: …`) and
    builtins give `{ }`.

    ```nix
    builtins.functionArgs ({ a, b ? 1, ... }: a)  # { a = false; b = true; }
    ```"""
    t = type(f)
    if t is Lambda:
        formals = f.node.formals
        if formals is None:
            return Attrs({})
        return Attrs({x.name: x.default is not None for x in formals},
                     {x.name: x.span for x in formals})
    if t is PrimOp or t is PrimOpApp:
        return Attrs({})
    raise EvalError("'functionArgs' requires a function")
