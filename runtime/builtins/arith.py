"""Builtins: arith."""

from . import builtin  # noqa: F401
