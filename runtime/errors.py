"""Evaluation errors, their positions and their "while evaluating" traces.

An `EvalError` is raised without a position by whatever finds the problem (a builtin, a type
check); the innermost expression that knows its span attaches it on the way out (`at()`), and
forcing sites further out append trace frames (`add_trace()`), innermost first, as Nix does. The
CLI prints the message and position always, and the frames with `--show-trace`.

`ThrownError` (`throw`) and `AssertionFailed` (`assert`) are the errors `builtins.tryEval` catches;
`Abort` (`abort`) and everything else are not.
"""

from __future__ import annotations


class EvalError(Exception):
    """An error during evaluation: a message, the span it happened at (once known) and the trace."""

    def __init__(self, message: str, span=None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.trace: list[tuple[str, object]] = []

    def at(self, span) -> "EvalError":
        """Attach a position if the error has none yet."""
        if self.span is None:
            self.span = span
        return self

    def add_trace(self, message: str, span=None) -> None:
        self.trace.append((message, span))

    def render(self, show_trace: bool = False) -> str:
        """Format the error as Nix prints it on stderr."""
        out = [f"error: {self.message}"]
        if self.span is not None:
            out.append("")
            out.append(self.span.frame())
        if show_trace:
            for message, span in self.trace:
                out.append("")
                out.append(f"       … {message}")
                if span is not None:
                    out.append("")
                    out.append(span.frame())
        elif self.trace:
            out.append("(use '--show-trace' to show detailed location information)")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.message


class BuildFailed(EvalError):
    """Building what evaluation reads (import from derivation) failed; the command exits with
    Nix's status for those failures (100, 101, …) rather than 1."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class ThrownError(EvalError):
    """`throw msg`: caught by `tryEval`."""


class AssertionFailed(EvalError):
    """A failed `assert`: caught by `tryEval`."""


class Abort(EvalError):
    """`abort msg`: never caught."""

    def __init__(self, message: str, span=None):
        super().__init__(f"evaluation aborted with the following error message: '{message}'", span)


class InvalidPathError(EvalError):
    """A string context names a store path that is not valid (`--eval` writes nothing)."""

    def __init__(self, path: str, span=None):
        super().__init__(f"path '{path}' is not valid", span)
        self.path = path


class InfiniteRecursion(EvalError):
    def __init__(self, span=None):
        super().__init__("infinite recursion encountered", span)


class StackOverflow(EvalError):
    def __init__(self, span=None):
        super().__init__("stack overflow (possible infinite recursion)", span)
