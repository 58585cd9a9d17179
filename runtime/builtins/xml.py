"""Builtins: xml."""

from . import builtin  # noqa: F401
