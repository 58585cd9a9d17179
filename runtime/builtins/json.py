"""JSON: `builtins.toJSON`, `builtins.fromJSON` and the printer behind `--json`.

`to_json` follows Nix 2.8's `printValueAsJSON`: attribute names sorted by their bytes, a set with
`__toString` becomes that string (without copying paths), a set with `outPath` becomes the JSON of
its `outPath`, paths are copied to the store, floats print as a C++ stream prints them (`%g`),
strings escape `"`, `\\`, `\\n`, `\\r`, `\\t` and other control characters as `\\u00xx`, and
everything else is kept byte for byte.

`from_json` reproduces the nlohmann::json parser that Nix 2.8 uses, error messages included
("[json.exception.parse_error.101] parse error at line 1, column 4: …"): it works on the UTF-8
bytes of the text, counts lines and columns the way that parser does, and reports the "last read"
text it would. Numbers without a fraction or exponent are integers (an unsigned value above the
64-bit range wraps, as Nix's cast does; one that does not fit in 64 bits is a float); string
values (not attribute names) are cut at the first NUL, as Nix's C strings are.
"""

from __future__ import annotations

import math

from ..errors import EvalError
from ..operators import coerce_to_string, wrap_int
from ..printer import format_float
from ..values import (Attrs, CStr, Lambda, NixPath, PrimOp, PrimOpApp, Thunk,
                      make_string, want_string)
from . import builtin


# -- toJSON -------------------------------------------------------------------------------------

def format_json_float(f: float) -> str:
    """Format a float as Nix 2.8's JSON writer does (a C++ stream's default `%g`)."""
    if math.isnan(f):
        return "-nan" if math.copysign(1.0, f) < 0 else "nan"
    return format_float(f)


def escape_json_string(s: str) -> str:
    """Quote a string as Nix 2.8 writes JSON strings."""
    out = ['"']
    for c in s:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c < " ":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def describe_function(v) -> str:
    """Name a function value as Nix's `showType` does in conversion errors."""
    if type(v) is PrimOp:
        return f"the built-in function '{v.name}'"
    if type(v) is PrimOpApp:
        return f"the partially applied built-in function '{v.op.name}'"
    return "a function"


def to_json(state, value, ctx: set, strict: bool = True) -> str:
    """Render a value as JSON, adding string contexts to `ctx`. With `strict` it forces what it
    needs; without (`--json` without `--strict`), a thunk not yet forced is an error."""
    out: list[str] = []
    _to_json(state, value, ctx, out, None, strict)
    return "".join(out)


def _to_json(state, v, ctx: set, out: list, span, strict: bool = True) -> None:
    if type(v) is Thunk:
        if not strict and v.code is not None:
            error = EvalError("cannot convert a thunk to JSON", span)
            error.add_trace("message for the trace", span)
            raise error
        v = v.force()
    t = type(v)
    if t is str:
        out.append(escape_json_string(v))
    elif t is CStr:
        ctx |= v.ctx
        out.append(escape_json_string(v))
    elif t is bool:
        out.append("true" if v else "false")
    elif t is int:
        out.append(str(v))
    elif v is None:
        out.append("null")
    elif t is float:
        out.append(format_json_float(v))
    elif t is NixPath:
        out.append(escape_json_string(coerce_to_string(state, v, ctx)))
    elif t is list:
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _to_json(state, item, ctx, out, span, strict)
        out.append("]")
    elif t is Attrs:
        d = v.d
        if "__toString" in d:
            out.append(escape_json_string(coerce_to_string(state, v, ctx, copy_to_store=False)))
        elif "outPath" in d:
            _to_json(state, d["outPath"], ctx, out, _attr_span(v, "outPath", span), strict)
        else:
            out.append("{")
            for i, name in enumerate(sorted(d, key=_name_key)):
                if i:
                    out.append(",")
                out.append(escape_json_string(name))
                out.append(":")
                _to_json(state, d[name], ctx, out, _attr_span(v, name, span), strict)
            out.append("}")
    elif t is Lambda or t is PrimOp or t is PrimOpApp:
        error = EvalError(f"cannot convert {describe_function(v)} to JSON",
                          v.node.span if t is Lambda else span)
        error.add_trace("message for the trace", span)  # sic: Nix 2.8's wording
        raise error
    else:
        raise TypeError(f"not a Nix value: {v!r}")


def _name_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _attr_span(attrs: Attrs, name: str, default):
    if attrs.pos is not None:
        return attrs.pos.get(name, default)
    return default


@builtin("toJSON", 1, state=True)
def to_json_builtin(state, e):
    """`builtins.toJSON e`

    Return a string containing a JSON representation of `e`. Strings, integers, floats, Booleans,
    nulls and lists are mapped to their JSON equivalents. Sets (except derivations) are represented
    as objects, with their attributes sorted by name; a derivation (a set with `outPath`) becomes
    its output path and a set with `__toString` the string that gives. Paths are copied to the
    store and represented as a JSON string of the resulting store path. Functions cannot be
    converted.

    ```nix
    builtins.toJSON { b = [ 1 2.5 ]; a = null; }
    # => "{\\"a\\":null,\\"b\\":[1,2.5]}"
    ```
    """
    ctx: set = set()
    text = to_json(state, e, ctx)
    return make_string(text, ctx)


# -- fromJSON -----------------------------------------------------------------------------------

class JSONError(EvalError):
    """A JSON text that does not parse, with nlohmann::json's message. As in Nix, it has no
    position of its own; the call site appears only as a trace frame."""

    @property
    def span(self):
        return None

    @span.setter
    def span(self, _value) -> None:
        pass  # call sites that fill in a missing position leave this error without one


_EOF = -1

# Token kinds, and the names nlohmann::json gives them in its messages.
(_T_TRUE, _T_FALSE, _T_NULL, _T_STRING, _T_UNSIGNED, _T_INTEGER, _T_FLOAT, _T_BEGIN_ARRAY,
 _T_BEGIN_OBJECT, _T_END_ARRAY, _T_END_OBJECT, _T_NAME_SEP, _T_VALUE_SEP, _T_ERROR, _T_EOF,
 _T_LITERAL_OR_VALUE) = range(16)
_TOKEN_NAMES = ("true literal", "false literal", "null literal", "string literal",
                "number literal", "number literal", "number literal", "'['", "'{'", "']'", "'}'",
                "':'", "','", "<parse error>", "end of input", "'[', '{', or a literal")

_CONTROL_NAMES = ("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT",
                  "FF", "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB",
                  "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US")
_SHORT_ESCAPES = {8: "b", 9: "t", 10: "n", 12: "f", 13: "r"}
_ESCAPES = {ord('"'): ord('"'), ord("\\"): ord("\\"), ord("/"): ord("/"), ord("b"): 8,
            ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9}


def _utf8_ranges(first: int):
    """Return the allowed ranges of the continuation bytes after a UTF-8 lead byte, or None if
    the byte cannot start a character."""
    if 0xC2 <= first <= 0xDF:
        return ((0x80, 0xBF),)
    if first == 0xE0:
        return ((0xA0, 0xBF), (0x80, 0xBF))
    if 0xE1 <= first <= 0xEC or first in (0xEE, 0xEF):
        return ((0x80, 0xBF), (0x80, 0xBF))
    if first == 0xED:
        return ((0x80, 0x9F), (0x80, 0xBF))
    if first == 0xF0:
        return ((0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF))
    if 0xF1 <= first <= 0xF3:
        return ((0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF))
    if first == 0xF4:
        return ((0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF))
    return None


class _Lexer:
    """A byte-for-byte model of nlohmann::json's lexer (its positions and "last read" text)."""

    def __init__(self, data: bytes):
        self.data = data
        self.i = 0  # index of the next byte to read
        self.current = _EOF
        self.next_unget = False
        self.chars_total = 0
        self.chars_line = 0
        self.lines = 0
        self.token = bytearray()  # the "last read" text
        self.buf = bytearray()  # the decoded string or number text
        self.error_message = ""
        self.value = None

    def get(self) -> int:
        self.chars_total += 1
        self.chars_line += 1
        if self.next_unget:
            self.next_unget = False
        elif self.i < len(self.data):
            self.current = self.data[self.i]
            self.i += 1
        else:
            self.current = _EOF
        if self.current != _EOF:
            self.token.append(self.current)
        if self.current == 10:
            self.lines += 1
            self.chars_line = 0
        return self.current

    def unget(self) -> None:
        self.next_unget = True
        self.chars_total -= 1
        if self.chars_line == 0:
            if self.lines > 0:
                self.lines -= 1
        else:
            self.chars_line -= 1
        if self.current != _EOF:
            self.token.pop()

    def reset(self) -> None:
        self.buf.clear()
        self.token.clear()
        self.token.append(self.current)

    def token_string(self) -> str:
        out = []
        for b in self.token:
            if b <= 0x1F:
                out.append("<U+%04X>" % b)
            else:
                out.append(bytes([b]).decode("latin-1"))
        # Bytes are shown as they are (an ill-formed one stays a lone surrogate escape).
        return "".join(out).encode("latin-1").decode("utf-8", "surrogateescape")

    def fail(self, message: str) -> int:
        self.error_message = message
        return _T_ERROR

    # -- scanning --

    def scan(self) -> int:
        if self.chars_total == 0 and not self.skip_bom():
            return self.fail("invalid BOM; must be 0xEF 0xBB 0xBF if given")
        c = self.get()
        while c in (32, 9, 10, 13):
            c = self.get()
        if c == 0x5B:
            return _T_BEGIN_ARRAY
        if c == 0x5D:
            return _T_END_ARRAY
        if c == 0x7B:
            return _T_BEGIN_OBJECT
        if c == 0x7D:
            return _T_END_OBJECT
        if c == 0x3A:
            return _T_NAME_SEP
        if c == 0x2C:
            return _T_VALUE_SEP
        if c == 0x74:
            return self.scan_literal(b"true", _T_TRUE)
        if c == 0x66:
            return self.scan_literal(b"false", _T_FALSE)
        if c == 0x6E:
            return self.scan_literal(b"null", _T_NULL)
        if c == 0x22:
            return self.scan_string()
        if c == 0x2D or 0x30 <= c <= 0x39:
            return self.scan_number()
        if c == 0 or c == _EOF:
            return _T_EOF
        return self.fail("invalid literal")

    def skip_bom(self) -> bool:
        if self.get() == 0xEF:
            return self.get() == 0xBB and self.get() == 0xBF
        self.unget()
        return True

    def scan_literal(self, word: bytes, kind: int) -> int:
        for expected in word[1:]:
            if self.get() != expected:
                return self.fail("invalid literal")
        return kind

    def get_codepoint(self) -> int:
        codepoint = 0
        for shift in (12, 8, 4, 0):
            c = self.get()
            if 0x30 <= c <= 0x39:
                codepoint += (c - 0x30) << shift
            elif 0x41 <= c <= 0x46:
                codepoint += (c - 0x37) << shift
            elif 0x61 <= c <= 0x66:
                codepoint += (c - 0x57) << shift
            else:
                return -1
        return codepoint

    def scan_string(self) -> int:
        self.reset()
        buf = self.buf
        while True:
            c = self.get()
            if c == _EOF:
                return self.fail("invalid string: missing closing quote")
            if c == 0x22:
                self.value = buf.decode("utf-8", "surrogateescape")
                return _T_STRING
            if c == 0x5C:
                c = self.get()
                if c == 0x75:
                    cp = self.get_codepoint()
                    if cp == -1:
                        return self.fail("invalid string: '\\u' must be followed by 4 hex digits")
                    if 0xD800 <= cp <= 0xDBFF:
                        if self.get() == 0x5C and self.get() == 0x75:
                            low = self.get_codepoint()
                            if low == -1:
                                return self.fail(
                                    "invalid string: '\\u' must be followed by 4 hex digits")
                            if not 0xDC00 <= low <= 0xDFFF:
                                return self.fail("invalid string: surrogate U+D800..U+DBFF must "
                                                 "be followed by U+DC00..U+DFFF")
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                        else:
                            return self.fail("invalid string: surrogate U+D800..U+DBFF must be "
                                             "followed by U+DC00..U+DFFF")
                    elif 0xDC00 <= cp <= 0xDFFF:
                        return self.fail("invalid string: surrogate U+DC00..U+DFFF must follow "
                                         "U+D800..U+DBFF")
                    buf += chr(cp).encode("utf-8")
                elif c in _ESCAPES:
                    buf.append(_ESCAPES[c])
                else:
                    return self.fail("invalid string: forbidden character after backslash")
                continue
            if c <= 0x1F:
                short = _SHORT_ESCAPES.get(c)
                message = (f"invalid string: control character U+{c:04X} ({_CONTROL_NAMES[c]}) "
                           f"must be escaped to \\u{c:04X}")
                if short:
                    message += f" or \\{short}"
                return self.fail(message)
            if c < 0x80:
                buf.append(c)
                continue
            ranges = _utf8_ranges(c)
            if ranges is None:
                return self.fail("invalid string: ill-formed UTF-8 byte")
            buf.append(c)
            for low, high in ranges:
                c = self.get()
                if not low <= c <= high:
                    return self.fail("invalid string: ill-formed UTF-8 byte")
                buf.append(c)

    def scan_number(self) -> int:
        self.reset()
        buf = self.buf
        c = self.current
        buf.append(c)
        is_float = False
        negative = c == 0x2D
        if negative:
            c = self.get()
            if not 0x30 <= c <= 0x39:
                return self.fail("invalid number; expected digit after '-'")
            buf.append(c)
        if c != 0x30:  # more digits may follow a non-zero first digit
            c = self.get()
            while 0x30 <= c <= 0x39:
                buf.append(c)
                c = self.get()
        else:
            c = self.get()
        if c == 0x2E:
            is_float = True
            buf.append(c)
            c = self.get()
            if not 0x30 <= c <= 0x39:
                return self.fail("invalid number; expected digit after '.'")
            while 0x30 <= c <= 0x39:
                buf.append(c)
                c = self.get()
        if c in (0x45, 0x65):
            is_float = True
            buf.append(c)
            c = self.get()
            if c in (0x2B, 0x2D):
                buf.append(c)
                c = self.get()
                if not 0x30 <= c <= 0x39:
                    return self.fail("invalid number; expected digit after exponent sign")
            elif not 0x30 <= c <= 0x39:
                return self.fail("invalid number; expected '+', '-', or digit after exponent")
            while 0x30 <= c <= 0x39:
                buf.append(c)
                c = self.get()
        self.unget()
        text = buf.decode("ascii")
        if not is_float:
            n = int(text)
            if negative and n >= -(1 << 63):
                self.value = n
                return _T_INTEGER
            if not negative and n < (1 << 64):
                self.value = wrap_int(n)
                return _T_UNSIGNED
        self.value = float(text)  # Python, like strtod, gives inf on overflow and 0 on underflow
        return _T_FLOAT


class _Parser:
    """nlohmann::json's parser driving the lexer: builds Nix values and reports its errors."""

    def __init__(self, data: bytes):
        self.lexer = _Lexer(data)
        self.last = self.lexer.scan()

    def next(self) -> int:
        self.last = self.lexer.scan()
        return self.last

    def error(self, expected: int | None, context: str) -> JSONError:
        lx = self.lexer
        msg = f"syntax error while parsing {context} - "
        if self.last == _T_ERROR:
            msg += f"{lx.error_message}; last read: '{lx.token_string()}'"
        else:
            msg += f"unexpected {_TOKEN_NAMES[self.last]}"
        if expected is not None:
            msg += f"; expected {_TOKEN_NAMES[expected]}"
        return JSONError(f"[json.exception.parse_error.101] parse error at line {lx.lines + 1}, "
                         f"column {lx.chars_line}: {msg}")

    def parse(self):
        value = self.parse_value()
        if self.next() != _T_EOF:
            raise self.error(_T_EOF, "value")
        return value

    def parse_value(self):
        # Iterative like the original, so deeply nested input does not exhaust the stack.
        stack: list = []  # (container, pending key) pairs; container is a list or a dict
        while True:
            kind = self.last
            if kind == _T_BEGIN_OBJECT:
                if self.next() == _T_END_OBJECT:
                    value = Attrs({})
                else:
                    key = self.object_key()
                    stack.append(({}, key))
                    self.next()
                    continue
            elif kind == _T_BEGIN_ARRAY:
                if self.next() == _T_END_ARRAY:
                    value = []
                else:
                    stack.append(([], None))
                    continue
            elif kind == _T_FLOAT:
                value = self.lexer.value
                if math.isinf(value):
                    raise JSONError(f"[json.exception.out_of_range.406] number overflow parsing "
                                    f"'{self.lexer.token_string()}'")
            elif kind in (_T_INTEGER, _T_UNSIGNED):
                value = self.lexer.value
            elif kind == _T_STRING:
                value = _cut_at_nul(self.lexer.value)
            elif kind == _T_TRUE:
                value = True
            elif kind == _T_FALSE:
                value = False
            elif kind == _T_NULL:
                value = None
            elif kind == _T_ERROR:
                raise self.error(None, "value")
            else:
                raise self.error(_T_LITERAL_OR_VALUE, "value")
            # A complete value: store it in its container and close finished containers.
            while True:
                if not stack:
                    return value
                container, key = stack[-1]
                if type(container) is list:
                    container.append(value)
                    if self.next() == _T_VALUE_SEP:
                        self.next()
                        break
                    if self.last != _T_END_ARRAY:
                        raise self.error(_T_END_ARRAY, "array")
                    stack.pop()
                    value = container
                else:
                    container[key] = value
                    if self.next() == _T_VALUE_SEP:
                        self.next()
                        stack[-1] = (container, self.object_key())
                        self.next()
                        break
                    if self.last != _T_END_OBJECT:
                        raise self.error(_T_END_OBJECT, "object")
                    stack.pop()
                    value = Attrs(container)

    def object_key(self) -> str:
        if self.last != _T_STRING:
            raise self.error(_T_STRING, "object key")
        key = self.lexer.value  # names are kept whole, NULs included, as Nix's symbols are
        if self.next() != _T_NAME_SEP:
            raise self.error(_T_NAME_SEP, "object separator")
        return key


def _cut_at_nul(s: str) -> str:
    i = s.find("\0")
    return s if i < 0 else s[:i]


def from_json(text: str):
    """Parse a JSON text into a Nix value, failing with nlohmann::json's messages."""
    return _Parser(text.encode("utf-8", "surrogateescape")).parse()


@builtin("fromJSON", 1)
def from_json_builtin(e):
    """`builtins.fromJSON e`

    Convert a JSON string to a Nix value. Numbers without a fraction or exponent become
    integers, the others floats; objects become sets (a repeated key keeps its last value).

    ```nix
    builtins.fromJSON ''{"x": [1, 2.5, "foo"], "y": null}''
    # => { x = [ 1 2.5 "foo" ]; y = null; }
    ```
    """
    s = want_string(e)
    if type(s) is CStr:
        raise EvalError(f"the string '{s}' is not allowed to refer to a store path "
                        f"(such as '{min(s.ctx)}')")
    try:
        return from_json(s)
    except JSONError as error:
        error.add_trace("while decoding a JSON string")
        raise
