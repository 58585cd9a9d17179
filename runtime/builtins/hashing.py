"""Builtins: hashing."""

from . import builtin  # noqa: F401
