"""Builtins: attrsets."""

from . import builtin  # noqa: F401
