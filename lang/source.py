"""Source texts and spans.

A `Source` is one parsed text (a file, a `-E` expression or stdin) together with the directory that
relative paths in it are resolved against. A `Span` is a half-open range of character offsets into
a source. Nodes keep spans; line and column numbers are computed only when something is reported,
which keeps parsing cheap.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(eq=False)
class Source:
    """A parsed text: its display name (`«string»`, `«stdin»` or a path), text and base directory."""

    name: str
    text: str
    base_dir: str
    path: str | None = None  # the file it was read from, if any
    _line_starts: list[int] | None = field(default=None, repr=False)

    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            starts = [0]
            text = self.text
            i = text.find("\n")
            while i != -1:
                starts.append(i + 1)
                i = text.find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """Return the 1-based line and column of a character offset."""
        starts = self.line_starts()
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        starts = self.line_starts()
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end]


class Span:
    """A range of characters in a source; `start` and `end` are offsets."""

    __slots__ = ("source", "start", "end")

    def __init__(self, source: Source, start: int, end: int):
        self.source = source
        self.start = start
        self.end = end

    def line_col(self) -> tuple[int, int]:
        return self.source.line_col(self.start)

    def location(self) -> str:
        """Format the span as Nix does in messages: `name:line:col`."""
        line, col = self.line_col()
        return f"{self.source.name}:{line}:{col}"

    def frame(self) -> str:
        """Render the code frame Nix prints under an error: `at name:l:c:`, the line with its
        neighbours, and a caret under the column."""
        line, col = self.line_col()
        n_lines = len(self.source.line_starts())
        out = [f"       at {self.location()}:", ""]
        for n in range(max(1, line - 1), min(n_lines, line + 1) + 1):
            text = self.source.line_text(n).replace("\t", " ")
            if n == line + 1 and not text.strip():
                continue
            out.append(f"{n:>13}| {text}".rstrip())
            if n == line:
                out.append(f"{'':>13}| {' ' * (col - 1)}^")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"Span({self.location()})"
