"""The lexer of the Nix language, feeding the LALR parser of lang.parser.

It follows Nix 2.8's flex rules (`src/libexpr/lexer.l`): a stack of start conditions for plain
code, strings, indented strings and paths, with `${` and `{` pushing a code state that the matching
`}` pops. Plain code is scanned with one compiled regex whose alternatives are ordered so that the
first match is also flex's longest match. Tokens carry start and end offsets; line and column are
computed by spans on demand.

Token values are already decoded: `STR` holds the unescaped text, `IND_STR` the raw text of an
indented-string chunk (indentation is stripped by the parser), `IND_ESC` an indented-string escape
(`'''`, `''$`, `''\\x`, a lone `$` or `'`), which Nix treats as text that ends the indentation.

Invariants: every token's `start_pos`/`end_pos` index the source text; `PATH_END` tokens are
zero-width and mark where a path literal stops; errors are `ParseError`s with a span.
"""

from __future__ import annotations

import re

from .errors import ParseError
from .source import Source, Span

_PC = r"[a-zA-Z0-9._+\-]"  # PATH_CHAR

KEYWORDS = {
    "if": "IF", "then": "THEN", "else": "ELSE", "assert": "ASSERT", "with": "WITH",
    "let": "LET", "in": "IN", "rec": "REC", "inherit": "INHERIT", "or": "OR_KW",
}

# Multi-character operators and single characters of plain code, by token type.
OPERATORS = {
    "...": "ELLIPSIS", "==": "EQ", "!=": "NEQ", "<=": "LEQ", ">=": "GEQ", "&&": "AND",
    "||": "OR", "->": "IMPL", "//": "UPDATE", "++": "CONCAT", "${": "DOLLAR_CURLY",
    "{": "LBRACE", "}": "RBRACE", "(": "LPAR", ")": "RPAR", "[": "LBRACK", "]": "RBRACK",
    ";": "SEMI", ":": "COLON", ",": "COMMA", "@": "AT", ".": "DOT", "=": "EQUALS", "?": "QUESTION",
    "!": "BANG", "-": "MINUS", "+": "PLUS", "*": "STAR", "/": "SLASH", "<": "LT", ">": "GT",
}

# Whitespace and comments, skipped before each token (flex eats them as separate lexemes).
_SKIP = r"(?:[ \t\r\n]+|\#[^\r\n]*|/\*(?:[^*]|\*+[^*/])*\*+/)*"
_SKIP_ONE = re.compile(r"[ \t\r\n]+|\#[^\r\n]*|/\*(?:[^*]|\*+[^*/])*\*+/")

# The order matters: Python takes the first alternative that matches, flex the longest match.
# Paths come before numbers and identifiers (`1/2`, `a/b` are paths), URIs before identifiers,
# floats before ints, `...` before `.`.
_NORMAL = re.compile(
    _SKIP +
    r"(?:(?P<word>[a-zA-Z_][a-zA-Z0-9_'\-]*(?![a-zA-Z0-9._+\-]*/[a-zA-Z0-9._+\-$]"
    r"|[a-zA-Z0-9+\-.]*:[a-zA-Z0-9%/?:@&=+$,\-_.!~*'])"
    r"|==|!=|<=|>=|&&|\|\||->|//|[()\[\];:,@=?!*>])"
    r"|(?P<open>\{|\$\{)"
    r"|(?P<close>\})"
    rf"|(?P<pathseg>{_PC}*/)(?=\$\{{)"
    r"|(?P<hpathseg>~/)(?=\$\{)"
    rf"|(?P<path>{_PC}*(?:/{_PC}+)+/?)"
    rf"|(?P<hpath>~(?:/{_PC}+)+/?)"
    rf"|(?P<spath><{_PC}+(?:/{_PC}+)*>)"
    r"|(?P<uri>[a-zA-Z][a-zA-Z0-9+\-.]*:[a-zA-Z0-9%/?:@&=+$,\-_.!~*']+)"
    r"|(?P<float>(?:[1-9][0-9]*\.[0-9]*|0?\.[0-9]+)(?:[Ee][+-]?[0-9]+)?)"
    r"|(?P<int>[0-9]+)"
    r"|(?P<word2>[a-zA-Z_][a-zA-Z0-9_'\-]*|\.\.\.|\+\+|[.\-+/<])"
    r"|(?P<indopen>''(?:\ *\n)?)"
    r"|(?P<quote>\")"
    r"|(?P<other>[\s\S])"
    r"|(?P<eof>\Z))"
)

_STR = re.compile(r'(?:[^$"\\]|\$[^{"\\]|\\[\s\S]|\$\\[\s\S])*(?:\$(?="))?')
_STR_ESC = re.compile(r"\\([\s\S])|\r\n?")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}

_IND = re.compile(
    r"(?P<text>(?:[^$']|\$[^{']|'[^'$])+)"
    r"|(?P<q3>''')"
    r"|(?P<dollar>''\$|\$(?!\{))"
    r"|(?P<esc>''\\[\s\S])"
    r"|(?P<dc>\$\{)"
    r"|(?P<close>'')"
    r"|(?P<quote1>')"
)

_INPATH = re.compile(rf"{_PC}*(?:/{_PC}+)*/?")

INT_MAX = 2**63 - 1

# Start conditions.
_CODE, _STRING, _IND_STRING, _INPATH_S, _INPATH_SLASH = range(5)


def _unescape(s: str) -> str:
    """Decode the escapes of a double-quoted string chunk as Nix does (also CR/LF -> LF)."""
    if "\\" not in s and "\r" not in s:
        return s

    def repl(m: re.Match) -> str:
        c = m.group(1)
        if c is None:
            return "\n"
        return _ESCAPES.get(c, c)

    return _STR_ESC.sub(repl, s)


def _float_error(text: str, value: float) -> bool:
    """Tell whether strtod would report a range error for `text`."""
    if value == float("inf"):
        return True
    mantissa = text.split("e")[0].split("E")[0]
    if any(c in "123456789" for c in mantissa):
        return value == 0.0 or value < 2.2250738585072014e-308
    return False


class Tok:
    """A token: its type (a terminal of lang/nix.lark), decoded value and start/end offsets."""

    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type_: str, value: str, start: int, end: int):
        self.type = type_
        self.value = value
        self.start_pos = start
        self.end_pos = end

    def __repr__(self) -> str:
        return f"Tok({self.type}, {self.value!r}, {self.start_pos})"


def eof_position(text: str, last_start: int, last_end: int) -> int:
    """Return where Nix reports end of file: the start of the last lexeme, i.e. of the last
    token or of the whitespace run or comment after it."""
    pos, last = last_end, last_start
    while pos < len(text):
        m = _SKIP_ONE.match(text, pos)
        if m is None:
            break
        last, pos = pos, m.end()
    return last


# Group numbers of _NORMAL, dispatched on `Match.lastindex`.
(_G_WORD, _G_OPEN, _G_CLOSE, _G_PATHSEG, _G_HPATHSEG, _G_PATH, _G_HPATH, _G_SPATH, _G_URI,
 _G_FLOAT, _G_INT, _G_WORD2, _G_INDOPEN, _G_QUOTE, _G_OTHER, _G_EOF) = (
    _NORMAL.groupindex[name] for name in (
        "word", "open", "close", "pathseg", "hpathseg", "path", "hpath", "spath", "uri",
        "float", "int", "word2", "indopen", "quote", "other", "eof"))

# The token types of the `word` groups (identifiers, keywords, operators) other than `ID`.
_WORDS = {**KEYWORDS, **OPERATORS}


def tokenize(source: Source, eof: list[int] | None = None, make=Tok):
    """Yield the tokens of `source` built with `make(type, value, start, end)` (see `scan`)."""
    for t in scan(source, eof):
        yield make(*t)


def scan(source: Source, eof: list[int] | None = None):
    """Yield the tokens of `source` as `(type, value, start, end)` tuples; the parser adds the
    end-of-file token itself.

    When the text is exhausted, `eof[0]` is set to where Nix reports end of file: the start of
    the last lexeme, whitespace and comments included."""
    text = source.text
    n = len(text)
    pos = 0
    stack = [_CODE]  # the bottom entry is flex's INITIAL: `}` never pops it
    normal_match = _NORMAL.match
    str_match = _STR.match
    ind_match = _IND.match
    words_get = _WORDS.get
    operators = OPERATORS
    g_word, g_word2, g_close, g_quote, g_open, g_int, g_eof = (
        _G_WORD, _G_WORD2, _G_CLOSE, _G_QUOTE, _G_OPEN, _G_INT, _G_EOF)
    state = _CODE
    start = last_start = last_end = 0  # the last token

    def err(msg: str, at: int, end: int | None = None):
        return ParseError(msg, Span(source, at, at if end is None else end))

    while True:
        if state == _CODE:
            # The hot loop: plain code, where most tokens are, without leaving it per token.
            # The group numbers are locals and the branches ordered by frequency.
            while True:
                m = normal_match(text, pos)
                i = m.lastindex
                start, end = m.span(i)
                if i == g_word or i == g_word2:
                    value = m[i]
                    yield (words_get(value, "ID"), value, start, end)
                elif i == g_close:
                    if len(stack) > 1:
                        stack.pop()
                        state = stack[-1]
                    yield ("RBRACE", "}", start, end)
                    if state != _CODE:
                        break
                elif i == g_quote:
                    stack.append(_STRING)
                    state = _STRING
                    yield ("QUOTE", '"', start, end)
                    break
                elif i == g_open:
                    stack.append(_CODE)
                    value = m[i]
                    yield (operators[value], value, start, end)
                elif i == g_int:
                    value = m[i]
                    if int(value) > INT_MAX:
                        raise err(f"invalid integer '{value}'", start, end)
                    yield ("INT", value, start, end)
                elif i == g_eof:
                    break
                elif i == _G_PATH or i == _G_HPATH:
                    value = m[i]
                    stack.append(_INPATH_SLASH if value[-1] == "/" else _INPATH_S)
                    state = stack[-1]
                    yield ("PATH" if i == _G_PATH else "HPATH", value, start, end)
                    break
                elif i == _G_FLOAT:
                    value = m[i]
                    if _float_error(value, float(value)):
                        raise err(f"invalid float '{value}'", start, end)
                    yield ("FLOAT", value, start, end)
                elif i == _G_INDOPEN:
                    stack.append(_IND_STRING)
                    state = _IND_STRING
                    yield ("IND_STRING_OPEN", m[i], start, end)
                    break
                elif i == _G_PATHSEG or i == _G_HPATHSEG:
                    stack.append(_INPATH_SLASH)
                    state = _INPATH_SLASH
                    yield ("PATH" if i == _G_PATHSEG else "HPATH", m[i], start, end)
                    break
                elif i == _G_SPATH:
                    yield ("SPATH", m[i], start, end)
                elif i == _G_URI:
                    yield ("URI", m[i], start, end)
                else:
                    yield ("CHAR", m[i], start, end)
                pos = end
                last_start = start
            if i == g_eof:
                last_end = pos
                break
            pos = last_end = end
            last_start = start
            continue

        if state == _STRING:
            if pos >= n:
                break
            m = str_match(text, pos)
            end = m.end()
            if end > pos:
                yield ("STR", _unescape(m.group()), pos, end)
            elif text.startswith("${", pos):
                stack.append(_CODE)
                state = _CODE
                end = pos + 2
                yield ("DOLLAR_CURLY", "${", pos, end)
            elif text[pos] == '"':
                stack.pop()
                state = stack[-1]
                end = pos + 1
                yield ("QUOTE", '"', pos, end)
            else:  # a lone `$`, `\` or `$\` at end of file
                end = n
                yield ("STR", text[pos:], pos, n)
            last_start = pos
            pos = last_end = end

        elif state == _IND_STRING:
            if pos >= n:
                break
            m = ind_match(text, pos)
            kind = m.lastgroup
            end = m.end()
            if kind == "text":
                yield ("IND_STR", m.group(), pos, end)
            elif kind == "close":
                stack.pop()
                state = stack[-1]
                yield ("IND_STRING_CLOSE", "''", pos, end)
            elif kind == "dc":
                stack.append(_CODE)
                state = _CODE
                yield ("DOLLAR_CURLY", "${", pos, end)
            elif kind == "q3":
                yield ("IND_ESC", "''", pos, end)
            elif kind == "dollar":
                yield ("IND_ESC", "$", pos, end)
            elif kind == "esc":
                yield ("IND_ESC", _unescape(m.group()[2:]), pos, end)
            else:
                yield ("IND_ESC", "'", pos, end)
            last_start = pos
            pos = last_end = end

        else:  # inside a path literal
            if text.startswith("${", pos):
                stack[-1] = _INPATH_S
                stack.append(_CODE)
                state = _CODE
                yield ("DOLLAR_CURLY", "${", pos, pos + 2)
                last_start = pos
                pos = last_end = pos + 2
                continue
            m = _INPATH.match(text, pos)
            end = m.end()
            if end > pos:
                value = m.group()
                stack[-1] = state = _INPATH_SLASH if value[-1] == "/" else _INPATH_S
                yield ("STR", value, pos, end)
                last_start = pos
                pos = last_end = end
                continue
            if state == _INPATH_SLASH:
                at = pos if pos < n else eof_position(text, last_start, last_end)
                raise err("path has a trailing slash", at, at + 1)
            stack.pop()
            state = stack[-1]
            yield ("PATH_END", "", pos, pos)

    if eof is not None:
        eof[0] = eof_position(text, last_start, last_end)
