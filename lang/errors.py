"""Errors found before evaluation: syntax errors and undefined variables.

Both carry a span; `str()` renders them as Nix does: `error: message`, a blank line, and the code
frame with a caret under the position.
"""

from __future__ import annotations

from .source import Span


class ParseError(Exception):
    """A syntax error or another error Nix reports while parsing (undefined variable, duplicate
    attribute, dynamic attribute in `let`, …)."""

    def __init__(self, message: str, span: Span):
        super().__init__(message)
        self.message = message
        self.span = span

    def __str__(self) -> str:
        return f"error: {self.message}\n\n{self.span.frame()}"
