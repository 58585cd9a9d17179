"""Builtins: toml."""

from . import builtin  # noqa: F401
