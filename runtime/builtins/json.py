"""Builtins: json."""

from . import builtin  # noqa: F401
