"""Builtins: strings."""

from . import builtin  # noqa: F401
