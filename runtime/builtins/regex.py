"""Builtins: regex."""

from . import builtin  # noqa: F401
