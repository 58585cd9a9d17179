"""Regular expressions as Nix uses them (`builtins.match`, `builtins.split`), and those builtins.

Nix compiles patterns with C++ `std::regex` in the POSIX *extended* grammar (libstdc++), and
matches them against the bytes of a string. This module translates such a pattern into a Python
`re` pattern over bytes, so that `.` and bracket expressions match one byte, as in Nix, and caches
the compiled result per pattern text.

What the translation follows (each point checked against Nix 2.8):

- special characters are `.[\\()*+?{|^$`; a backslash makes one of them literal, and any other
  escape (`\\d`, `\\n`, `\\]`, `\\1`, a trailing `\\`) is an invalid regular expression;
- there are no back-references and no lazy quantifiers: `a+?` is `(a+)?`, and quantifiers stack
  (`a**`); a quantifier with nothing to repeat (`*a`, `(*a)`, `a|*b`, `^*`) is invalid;
- `{` always opens an interval `{m}`, `{m,}` or `{m,n}` (digits only, `m <= n`);
- bracket expressions: `]` first is literal, `-` first or last is literal, ranges must not be
  reversed, a range or a class may not be followed by `-x`, backslash is literal, and the classes
  are those of the C locale plus libstdc++'s `[:d:]`, `[:w:]`, `[:s:]`; `[.x.]` and `[=x=]` name
  single characters;
- `^` and `$` only match at the very start and end of the string (`$` does not match before a
  final newline, unlike Python's);
- `.` matches every byte (newlines included);
- a pattern that would need more than libstdc++'s 100 000 automaton states fails with "memory
  limit exceeded" (the count is estimated with libstdc++'s construction).

Leftmost-longest versus leftmost-first: libstdc++ searches depth-first like Python, with two
twists in the POSIX grammars. A repetition (`*`, `+`, `?`, `{m,n}`) is greedy and, as soon as one
way of repeating more reaches a match, never tries repeating less (`a*(ab)?` on `"aab"` matches
`"aa"`, as in Python). But an alternation tries *every* branch and keeps the longest match found
(`a|ab` on `"ab"` matches `"ab"`, where Python matches `"a"`); on equal lengths the first wins.
Hence:

- `match` needs the whole string to match, so all solutions have the same length and the first
  one found wins in both engines: `fullmatch` gives the same answer;
- `split` searches: for a pattern with an alternation whose branches can match different
  lengths, the first match Python finds is extended to the longest `fullmatch` at the same start
  (bounded by the pattern's maximum width). This agrees with libstdc++ for alternations that are
  not themselves inside a repetition followed by more pattern; it is quadratic on long strings
  for such patterns, while other patterns (`[ \\t]+`, `\\n`, `(a)(b)?`) take Python's match as
  it is. A `$` in the middle of such a pattern can also match at a tried end that is not the end
  of the string.
"""

from __future__ import annotations

import re

from ..errors import EvalError
from ..values import context_of, make_string, want_string
from . import builtin

_STATE_LIMIT = 100_000
_INF = float("inf")


class RegexError(Exception):
    """An invalid pattern; `space` marks libstdc++'s "too many states" error."""

    def __init__(self, space: bool = False):
        super().__init__("invalid regular expression")
        self.space = space


# Character classes of the C locale, as sets of bytes.
def _bytes_where(pred) -> frozenset:
    return frozenset(b for b in range(128) if pred(chr(b)))


_ALPHA = _bytes_where(str.isalpha)
_DIGIT = _bytes_where(str.isdigit)
_ALNUM = _ALPHA | _DIGIT
_SPACE = frozenset(b" \t\n\v\f\r")
_CLASSES = {
    b"alpha": _ALPHA, b"digit": _DIGIT, b"alnum": _ALNUM, b"space": _SPACE,
    b"upper": _bytes_where(str.isupper), b"lower": _bytes_where(str.islower),
    b"blank": frozenset(b" \t"), b"cntrl": frozenset(list(range(32)) + [127]),
    b"graph": frozenset(range(33, 127)), b"print": frozenset(range(32, 127)),
    b"punct": frozenset(range(33, 127)) - _ALNUM,
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
    b"d": _DIGIT, b"w": _ALNUM | {ord("_")}, b"s": _SPACE,
}

# POSIX names of collating elements (`[[.hyphen.]]`), besides single characters.
_COLLATING_NAMES = dict(zip(
    ("NUL SOH STX ETX EOT ENQ ACK alert backspace tab newline vertical-tab form-feed "
     "carriage-return SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC IS4 IS3 IS2 IS1 "
     "space exclamation-mark quotation-mark number-sign dollar-sign percent-sign ampersand "
     "apostrophe left-parenthesis right-parenthesis asterisk plus-sign comma hyphen period "
     "slash zero one two three four five six seven eight nine colon semicolon less-than-sign "
     "equals-sign greater-than-sign question-mark commercial-at").split(),
    range(65)))
_COLLATING_NAMES.update({
    "left-square-bracket": 91, "backslash": 92, "right-square-bracket": 93, "circumflex": 94,
    "underscore": 95, "grave-accent": 96, "left-curly-bracket": 123, "vertical-line": 124,
    "right-curly-bracket": 125, "tilde": 126, "DEL": 127,
})

_SPECIAL = frozenset(b".[\\()*+?{|^$")


class _Node:
    """A translated piece of pattern: Python source, width bounds, state count, and whether
    backtracking's first match may be shorter than the longest (`ambiguous`)."""

    __slots__ = ("src", "lo", "hi", "states", "ambiguous", "atomic")

    def __init__(self, src: bytes, lo, hi, states: int, ambiguous: bool = False,
                 atomic: bool = True):
        self.src = src
        self.lo = lo
        self.hi = hi
        self.states = states
        self.ambiguous = ambiguous
        self.atomic = atomic  # safe to quantify without a (?:…) wrapper


class _Parser:
    def __init__(self, pattern: bytes):
        self.p = pattern
        self.i = 0
        self.groups = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.p[j] if j < len(self.p) else None

    def parse(self) -> _Node:
        node = self.alternation()
        if self.i != len(self.p):  # an unbalanced `)`
            raise RegexError()
        return node

    def alternation(self) -> _Node:
        branches = [self.branch()]
        while self.peek() == ord("|"):
            self.i += 1
            branches.append(self.branch())
        if len(branches) == 1:
            return branches[0]
        lo = min(b.lo for b in branches)
        hi = max(b.hi for b in branches)
        states = sum(b.states for b in branches) + len(branches) - 1
        return _Node(b"|".join(b.src for b in branches), lo, hi, states,
                     ambiguous=lo != hi or any(b.ambiguous for b in branches), atomic=False)

    def branch(self) -> _Node:
        pieces = []
        while True:
            c = self.peek()
            if c is None or c == ord("|") or c == ord(")"):
                break
            pieces.append(self.piece())
        src = b"".join(p.src for p in pieces)
        lo = sum(p.lo for p in pieces)
        hi = sum(p.hi for p in pieces)
        states = sum(p.states for p in pieces) + 1  # libstdc++ ends each branch with a dummy
        ambiguous = any(p.ambiguous for p in pieces)
        return _Node(src, lo, hi, states, ambiguous, atomic=len(pieces) == 1 and pieces[0].atomic)

    def piece(self) -> _Node:
        node = self.atom()
        if node.states == 0:  # an anchor: nothing may follow it as a quantifier
            return node
        while True:
            c = self.peek()
            if c == ord("*"):
                lo_n, hi_n = 0, None
                self.i += 1
            elif c == ord("+"):
                lo_n, hi_n = 1, None
                self.i += 1
            elif c == ord("?"):
                lo_n, hi_n = 0, 1
                self.i += 1
            elif c == ord("{"):
                lo_n, hi_n = self.interval()
            else:
                return node
            node = self.quantify(node, lo_n, hi_n)

    def interval(self):
        self.i += 1
        m = self.number()
        if m is None:
            raise RegexError()
        n = m
        if self.peek() == ord(","):
            self.i += 1
            n = self.number()
        if self.peek() != ord("}"):
            raise RegexError()
        self.i += 1
        if n is not None and n < m:
            raise RegexError()
        return m, n

    def number(self):
        start = self.i
        while self.peek() is not None and 48 <= self.peek() <= 57:
            self.i += 1
        if self.i == start:
            return None
        return int(self.p[start:self.i])

    @staticmethod
    def quantify(node: _Node, m: int, n) -> _Node:
        inner = node.src if node.atomic else b"(?:" + node.src + b")"
        if m == 0 and n is None:
            q = b"*"
        elif m == 1 and n is None:
            q = b"+"
        elif m == 0 and n == 1:
            q = b"?"
        elif n is None:
            q = b"{%d,}" % m
        elif m == n:
            q = b"{%d}" % m
        else:
            q = b"{%d,%d}" % (m, n)
        c = node.states
        if (m, n) in ((0, None), (1, None)):
            states = c + 1
        elif (m, n) == (0, 1):
            states = c + 2
        else:
            states = c + m * c + 1 + (c + 1 if n is None else (n - m) * (c + 1))
        if states > _STATE_LIMIT:
            raise RegexError(space=True)
        hi = _INF if n is None or node.hi == _INF else node.hi * n
        ambiguous = node.ambiguous
        # Wrap again so that a further quantifier applies to the whole (`a**`, `a+?`).
        return _Node(b"(?:" + inner + q + b")", node.lo * m, hi, states, ambiguous)

    def atom(self) -> _Node:
        c = self.peek()
        if c in (ord("*"), ord("+"), ord("?"), ord("{")):
            raise RegexError()
        self.i += 1
        if c == ord("("):
            self.groups += 1
            inner = self.alternation()
            if self.peek() != ord(")"):
                raise RegexError()
            self.i += 1
            return _Node(b"(" + inner.src + b")", inner.lo, inner.hi, inner.states + 2,
                         inner.ambiguous)
        if c == ord("["):
            return self.bracket()
        if c == ord("."):
            return _Node(b".", 1, 1, 1)
        if c == ord("^"):
            return _Node(b"^", 0, 0, 0)
        if c == ord("$"):
            return _Node(rb"\Z", 0, 0, 0)
        if c == ord("\\"):
            e = self.peek()
            if e is None or e not in _SPECIAL:
                raise RegexError()
            self.i += 1
            return _Node(b"\\x%02x" % e, 1, 1, 1)
        return _Node(b"\\x%02x" % c, 1, 1, 1)

    def bracket(self) -> _Node:
        negate = False
        if self.peek() == ord("^"):
            negate = True
            self.i += 1
        chars: set[int] = set()
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise RegexError()
            if c == ord("]") and not first:
                self.i += 1
                break
            first = False
            kind, value = self.bracket_element()
            if kind == "class":
                chars |= value
                if self.peek() == ord("-") and self.peek(1) != ord("]"):
                    raise RegexError()
                continue
            if self.peek() == ord("-") and self.peek(1) not in (ord("]"), None):
                self.i += 1
                kind2, end = self.bracket_element()
                if kind2 == "class" or end < value:
                    raise RegexError()
                chars.update(range(value, end + 1))
                if self.peek() == ord("-") and self.peek(1) != ord("]"):
                    raise RegexError()
                continue
            chars.add(value)
        if negate:
            chars = set(range(256)) - chars
        return _Node(_byte_class(chars), 1, 1, 1)

    def bracket_element(self):
        """Read one bracket element: ("class", set of bytes) or ("char", byte)."""
        c = self.peek()
        if c == ord("[") and self.peek(1) in (ord(":"), ord("."), ord("=")):
            delim = self.peek(1)
            end = self.p.find(bytes([delim, ord("]")]), self.i + 2)
            if end < 0:
                raise RegexError()
            name = self.p[self.i + 2:end]
            self.i = end + 2
            if delim == ord(":"):
                cls = _CLASSES.get(name)
                if cls is None:
                    raise RegexError()
                return "class", cls
            if len(name) == 1:
                return "char", name[0]
            code = _COLLATING_NAMES.get(name.decode("latin-1"))
            if code is None:
                raise RegexError()
            return "char", code
        self.i += 1
        return "char", c


def _byte_class(chars) -> bytes:
    """Write a set of bytes as a Python character class."""
    if not chars:
        return rb"(?!)"
    out = []
    run_start = prev = None
    for b in sorted(chars) + [None]:
        if prev is not None and b == prev + 1:
            prev = b
            continue
        if run_start is not None:
            lo, hi = b"\\x%02x" % run_start, b"\\x%02x" % prev
            out.append(lo if run_start == prev else lo + b"-" + hi)
        run_start = prev = b
    return b"[" + b"".join(out) + b"]"


class Regex:
    """A compiled Nix regular expression."""

    __slots__ = ("pattern", "compiled", "ambiguous", "max_width")

    def __init__(self, pattern: str):
        self.pattern = pattern
        tree = _Parser(pattern.encode("utf-8", "surrogateescape")).parse()
        if tree.states + 3 > _STATE_LIMIT:
            raise RegexError(space=True)
        try:
            self.compiled = re.compile(tree.src, re.DOTALL)
        except (re.error, OverflowError, RecursionError) as e:
            raise RegexError() from e
        self.ambiguous = tree.ambiguous
        self.max_width = tree.hi

    def fullmatch(self, data: bytes):
        return self.compiled.fullmatch(data)

    def search_longest(self, data: bytes, pos: int):
        """Find the leftmost-longest match starting the search at `pos`, or None."""
        m = self.compiled.search(data, pos)
        if m is None or not self.ambiguous:
            return m
        start = m.start()
        last = len(data) if self.max_width == _INF else min(len(data), start + self.max_width)
        for end in range(last, m.end(), -1):
            longer = self.compiled.fullmatch(data, start, end)
            if longer is not None:
                return longer
        return m

    def finditer(self, data: bytes):
        """Yield the matches `std::sregex_iterator` yields: leftmost-longest, non-overlapping,
        and after an empty match the search resumes one byte further."""
        pos = 0
        n = len(data)
        while pos <= n:
            m = self.search_longest(data, pos)
            if m is None:
                return
            yield m
            if m.end() == m.start():
                # The longest match here is empty, so no non-empty one starts here either.
                if m.end() == n:
                    return
                pos = m.end() + 1
            else:
                pos = m.end()


_CACHE: dict[str, Regex] = {}


def compile_regex(pattern: str) -> Regex:
    """Return the compiled form of a Nix regular expression, raising Nix's error if invalid."""
    r = _CACHE.get(pattern)
    if r is None:
        try:
            r = Regex(pattern)
        except RegexError as e:
            if e.space:
                raise EvalError(f"memory limit exceeded by regular expression '{pattern}'") from None
            raise EvalError(f"invalid regular expression '{pattern}'") from None
        if len(_CACHE) > 1000:
            _CACHE.clear()
        _CACHE[pattern] = r
    return r


def want_string_no_context(v) -> str:
    """Return a string value that must have no context, with Nix's error otherwise."""
    s = want_string(v)
    ctx = context_of(s)
    if ctx:
        raise EvalError(f"the string '{s}' is not allowed to refer to a store path "
                        f"(such as '{_context_path(min(ctx))}')")
    return str(s)


def _context_path(elem: str) -> str:
    if elem.startswith("="):
        return elem[1:]
    if elem.startswith("!"):
        return elem.split("!", 2)[2]
    return elem


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _groups(m) -> list:
    return [None if g is None else _decode(g) for g in m.groups()]


@builtin("match", 2)
def match(regex, s):
    """`builtins.match regex str`

    Return `null` if the POSIX extended regular expression `regex` does not match the *whole* of
    `str`, and otherwise the list of what its parenthesised groups matched (`null` for a group
    that took no part in the match). The result strings have no context.

    ```nix
    builtins.match "([a-z]+)-([0-9.]+)" "hello-2.10"
    # => [ "hello" "2.10" ]
    builtins.match "a(b)?" "a"
    # => [ null ]
    ```
    """
    r = compile_regex(want_string_no_context(regex))
    m = r.fullmatch(str(want_string(s)).encode("utf-8", "surrogateescape"))
    if m is None:
        return None
    return _groups(m)


@builtin("split", 2)
def split(regex, s):
    """`builtins.split regex str`

    Split `str` at the matches of the POSIX extended regular expression `regex`: the result
    alternates the unmatched pieces (strings) with, for each match, the list of its groups.
    When nothing matches, the result is `[ str ]`, keeping `str`'s context; otherwise the pieces
    have no context.

    ```nix
    builtins.split "(,)|;" "a,b;c"
    # => [ "a" [ "," ] "b" [ null ] "c" ]
    ```
    """
    r = compile_regex(want_string_no_context(regex))
    want_string(s)
    data = str(s).encode("utf-8", "surrogateescape")
    out: list = []
    prev = 0
    for m in r.finditer(data):
        out.append(_decode(data[prev:m.start()]))
        out.append(_groups(m))
        prev = m.end()
    if not out:
        return [make_string(str(s), context_of(s))]
    out.append(_decode(data[prev:]))
    return out
