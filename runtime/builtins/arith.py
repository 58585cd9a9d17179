"""Builtins for arithmetic: `add`, `sub`, `mul`, `div`, the bitwise operators, `lessThan`,
`ceil` and `floor`.

Nix desugars `-`, `*`, `/` and `<` into calls of these builtins, so their messages are the ones a
user sees for the operators too. As in Nix 2.8 the arithmetic is done in floats as soon as one
operand is a float (the other must then be a number: "… while a float was expected"), else in
64-bit integers that wrap on overflow.
"""

from __future__ import annotations

import math

from .. import operators
from ..operators import INT_MIN, less_than, want_float, wrap_int
from ..values import want_int
from . import builtin


@builtin("add", 2)
def add(a, b):
    """`builtins.add e1 e2`: return the sum of the numbers `e1` and `e2`.

    The result is a float if either operand is a float, else an integer (64 bits, wrapping).

    ```nix
    builtins.add 1 2.5  # 3.5
    ```"""
    if type(a) is float or type(b) is float:
        return want_float(a) + want_float(b)
    return wrap_int(want_int(a) + want_int(b))


@builtin("sub", 2)
def sub(a, b):
    """`builtins.sub e1 e2`: return the difference `e1 - e2` of two numbers.

    ```nix
    builtins.sub 10 3  # 7
    ```"""
    return operators.sub(a, b)


@builtin("mul", 2)
def mul(a, b):
    """`builtins.mul e1 e2`: return the product of the numbers `e1` and `e2`.

    ```nix
    builtins.mul 6 7  # 42
    ```"""
    return operators.mul(a, b)


@builtin("div", 2)
def div(a, b):
    """`builtins.div e1 e2`: return the quotient `e1 / e2`; integer division truncates toward
    zero. Dividing by zero is an error.

    ```nix
    builtins.div 7 2    # 3
    builtins.div 7.0 2  # 3.5
    ```"""
    return operators.div(a, b)


@builtin("bitAnd", 2)
def bit_and(a, b):
    """`builtins.bitAnd e1 e2`: return the bitwise AND of the integers `e1` and `e2`.

    ```nix
    builtins.bitAnd 12 10  # 8
    ```"""
    return want_int(a) & want_int(b)


@builtin("bitOr", 2)
def bit_or(a, b):
    """`builtins.bitOr e1 e2`: return the bitwise OR of the integers `e1` and `e2`.

    ```nix
    builtins.bitOr 12 10  # 14
    ```"""
    return want_int(a) | want_int(b)


@builtin("bitXor", 2)
def bit_xor(a, b):
    """`builtins.bitXor e1 e2`: return the bitwise exclusive OR of the integers `e1` and `e2`.

    ```nix
    builtins.bitXor 12 10  # 6
    ```"""
    return want_int(a) ^ want_int(b)


@builtin("lessThan", 2)
def less_than_(a, b):
    """`builtins.lessThan e1 e2`: return whether `e1 < e2`.

    Numbers compare by value, strings and paths byte-wise, lists lexicographically; other
    values cannot be compared.

    ```nix
    builtins.lessThan "abc" "abd"  # true
    ```"""
    return less_than(a, b)


def _to_int(x: float) -> int:
    # A C++ conversion of a double to a 64-bit integer: out-of-range values (and NaN) give the
    # "integer indefinite" value on x86-64.
    if x != x or not -9.223372036854775808e18 <= x < 9.223372036854775808e18:
        return INT_MIN
    return int(x)


@builtin("ceil", 1)
def ceil(x):
    """`builtins.ceil number`: round `number` up to the nearest integer and return it as an
    integer (integers go through a float, as in Nix).

    ```nix
    builtins.ceil 1.2   # 2
    builtins.ceil (-1.5)  # -1
    ```"""
    f = want_float(x)
    return _to_int(math.ceil(f) if math.isfinite(f) else f)


@builtin("floor", 1)
def floor(x):
    """`builtins.floor number`: round `number` down to the nearest integer and return it as an
    integer (integers go through a float, as in Nix).

    ```nix
    builtins.floor 1.8   # 1
    builtins.floor (-1.5)  # -2
    ```"""
    f = want_float(x)
    return _to_int(math.floor(f) if math.isfinite(f) else f)
