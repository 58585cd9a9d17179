"""Builtins: lists."""

from . import builtin  # noqa: F401
