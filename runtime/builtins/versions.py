"""Builtins: versions."""

from . import builtin  # noqa: F401
