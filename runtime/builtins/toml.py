"""TOML: `builtins.fromTOML` (also bound at the top level), on top of Python's `tomllib`.

The conversion matches what Nix 2.8 (which uses toml11) returns: tables become sets, arrays and
arrays of tables lists; integers outside 64 bits are clamped to the nearest bound (toml11 reads
them with `strtoll`), floats that overflow become the largest finite double, `nan` keeps its sign,
strings are cut at the first NUL; any date or time makes the whole parse fail with "Dates and
times are not supported". Syntax errors carry tomllib's message, not toml11's.
"""

from __future__ import annotations

import datetime
import math
import sys

from ..errors import EvalError
from ..values import Attrs, want_string
from . import builtin

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1


class _DatesUnsupported(Exception):
    pass


def _parse_float(text: str) -> float:
    text = text.replace("_", "")
    bare = text.lstrip("+-")
    negative = text.startswith("-")
    if bare == "nan":
        return -math.nan if negative else math.nan
    value = float(text)
    if math.isinf(value) and bare != "inf":
        return -sys.float_info.max if negative else sys.float_info.max
    return value


def _to_nix(v):
    t = type(v)
    if t is dict:
        return Attrs({k: _to_nix(x) for k, x in v.items()})
    if t is list:
        return [_to_nix(x) for x in v]
    if t is str:
        i = v.find("\0")
        return v if i < 0 else v[:i]
    if t is int:
        return min(max(v, _INT_MIN), _INT_MAX)
    if t is bool or t is float:
        return v
    if isinstance(v, (datetime.date, datetime.time)):
        raise _DatesUnsupported()
    raise TypeError(f"unexpected TOML value: {v!r}")


def from_toml(text: str):
    """Parse a TOML document into a Nix set."""
    import tomllib  # imported on first use: it compiles a dozen regexes, a cost for start-up
    try:
        return _to_nix(tomllib.loads(text, parse_float=_parse_float))
    except tomllib.TOMLDecodeError as e:
        raise EvalError(f"while parsing a TOML string: {e}") from None
    except _DatesUnsupported:
        raise EvalError("while parsing a TOML string: Dates and times are not supported") from None


@builtin("fromTOML", 1)
def from_toml_builtin(e):
    """`builtins.fromTOML e`

    Convert a TOML document to a Nix set: tables become sets, arrays lists. Dates and times are
    not supported.

    ```nix
    builtins.fromTOML ''
      x = 1
      [s]
      y = [ "a", "b" ]
    ''
    # => { s = { y = [ "a" "b" ]; }; x = 1; }
    ```
    """
    return from_toml(str(want_string(e)))
