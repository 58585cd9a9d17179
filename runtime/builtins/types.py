"""Builtins: types."""

from . import builtin  # noqa: F401
