"""The parser of the Nix language: text in, `lang.ast` tree out.

A table-driven LALR(1) loop (`_Driver`) reads lang.lexer's tokens and builds the AST directly from
reduction callbacks (`_Builder`), so no parse tree exists. The callbacks do the desugaring Nix does
while parsing (see lang.ast): merging nested attribute paths, stripping indented strings, making
paths absolute, the old `let { … }` form. Operator expressions arrive as flat sequences and are
resolved here with Nix's precedence table (`_resolve_ops`).

The tables come from lang/nix.lark, analysed by lark once at development time and checked in as
lang/nix_tables.py (`python3 -m dtx.lang.parser --write-tables`), so that a process parses without
importing lark or building tables. A checked-in module rather than a per-user cache: nothing is
written at run time (builds run with unwritable homes), no first run is slow, and a test keeps it
in step with the grammar. If nix.lark no longer matches the module's fingerprint, the tables are
built in memory with lark instead, so a stale module can never parse with an old grammar.

Every failure is a `ParseError` with a span, worded as Nix words it. Parsing holds a lock: the
callbacks are shared.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path as _FsPath

from . import ast
from .errors import ParseError
from .lexer import scan
from .source import Source, Span

__all__ = ["parse", "parse_file", "parse_source"]

# Binary operators: token type -> (precedence, associativity). Higher binds tighter.
_BINARY = {
    "IMPL": (1, "r"), "OR": (2, "l"), "AND": (3, "l"), "EQ": (4, "n"), "NEQ": (4, "n"),
    "LT": (5, "n"), "GT": (5, "n"), "LEQ": (5, "n"), "GEQ": (5, "n"), "UPDATE": (6, "r"),
    "PLUS": (8, "l"), "MINUS": (8, "l"), "STAR": (9, "l"), "SLASH": (9, "l"),
    "CONCAT": (10, "r"),
}
_NOT_PREC = 7      # `!e` absorbs operators binding tighter than 7
_HAS_PREC = 11     # `e ? a`
_NEG_PREC = 12     # unary minus absorbs nothing but application and selection

# Token names as Nix's bison parser prints them, in bison's symbol order.
_NIX_NAMES = [
    ("$END", "end of file"), ("CHAR", "invalid token"), ("ID", "ID"), ("STR", "STR"),
    ("IND_STR", "IND_STR"), ("IND_ESC", "IND_STR"), ("INT", "INT"), ("FLOAT", "FLOAT"),
    ("PATH", "PATH"), ("HPATH", "HPATH"), ("SPATH", "SPATH"), ("PATH_END", "PATH_END"),
    ("URI", "URI"), ("IF", "IF"), ("THEN", "THEN"), ("ELSE", "ELSE"), ("ASSERT", "ASSERT"),
    ("WITH", "WITH"), ("LET", "LET"), ("IN", "IN"), ("REC", "REC"), ("INHERIT", "INHERIT"),
    ("EQ", "EQ"), ("NEQ", "NEQ"), ("AND", "AND"), ("OR", "OR"), ("IMPL", "IMPL"),
    ("OR_KW", "OR_KW"), ("DOLLAR_CURLY", "DOLLAR_CURLY"), ("IND_STRING_OPEN", "IND_STRING_OPEN"),
    ("IND_STRING_CLOSE", "IND_STRING_CLOSE"), ("ELLIPSIS", "ELLIPSIS"), ("LT", "'<'"),
    ("GT", "'>'"), ("LEQ", "LEQ"), ("GEQ", "GEQ"), ("UPDATE", "UPDATE"), ("PLUS", "'+'"),
    ("MINUS", "'-'"), ("STAR", "'*'"), ("SLASH", "'/'"), ("CONCAT", "CONCAT"),
    ("QUESTION", "'?'"), ("COLON", "':'"), ("LBRACE", "'{'"), ("RBRACE", "'}'"), ("AT", "'@'"),
    ("SEMI", "';'"), ("BANG", "'!'"), ("DOT", "'.'"), ("QUOTE", "'\"'"), ("LPAR", "'('"),
    ("RPAR", "')'"), ("LBRACK", "'['"), ("RBRACK", "']'"), ("EQUALS", "'='"), ("COMMA", "','"),
]
_NIX_NAME = dict(_NIX_NAMES)
_NIX_ORDER = {name: i for i, (name, _) in enumerate(_NIX_NAMES)}


def _syntax_error(tok: tuple, span: Span, expected=()) -> ParseError:
    msg = f"syntax error, unexpected {_NIX_NAME.get(tok[0], tok[0])}"
    names: list[str] = []
    for t in sorted(expected, key=lambda t: _NIX_ORDER.get(t, 999)):
        name = _NIX_NAME.get(t)
        if name and name not in names:
            names.append(name)
    if names and len(names) <= 4:
        msg += ", expecting " + " or ".join(names)
    return ParseError(msg, span)


def _canon_path(path: str) -> str:
    """Canonicalise an absolute path as Nix's canonPath does: drop `.`, empty components and
    trailing slashes, resolve `..` lexically (never following symlinks)."""
    out: list[str] = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return "/" + "/".join(out)


class _Has:
    """A postfix `? attrpath` inside an operator sequence."""

    __slots__ = ("path", "end")

    def __init__(self, path, end):
        self.path, self.end = path, end


class _Binds:
    """The bindings of an attribute set or `let` under construction."""

    __slots__ = ("attrs", "dynamic", "inherited_from")

    def __init__(self):
        self.attrs: dict[str, ast.Binding] = {}
        self.dynamic: list[tuple[ast.Node, ast.Node, Span]] = []
        self.inherited_from: list[ast.Select] = []  # the selections of `inherit (e) …;`


def _show_path(path) -> str:
    from .printer import show_attr_name
    return ".".join(n if isinstance(n, str) else show_attr_name(n) for n in path)


def _where(span: Span) -> str:
    """Format a position as Nix 2.8 does inside messages (`(string):1:3`)."""
    name = span.source.name
    if name.startswith("«") and name.endswith("»"):
        name = f"({name[1:-1]})"
    line, col = span.line_col()
    return f"{name}:{line}:{col}"


class _Builder:
    """The parser callbacks: each receives the children of one reduction and returns its value.

    A rule of one symbol passes that symbol's value itself, an empty rule nothing, a longer rule
    the list of its values (tokens are `(type, value, start, end)` tuples)."""

    src: Source

    def __init__(self):
        self.src = None  # set by parse_source
        self.home = None
        # id(node) -> (node, start of its outermost parenthesis): Nix reports a call or a
        # selection at the start of its whole text, `(f) 1` at the `(`.
        self.parens: dict[int, tuple] = {}

    def start(self, node: ast.Node) -> int:
        """Where `node`'s text starts, counting the parentheses around it."""
        p = self.parens.get(id(node))
        if p is not None and p[0] is node:
            return p[1]
        return node.span.start

    # --- expressions -------------------------------------------------------------------------

    def lam_id(self, c):
        body = c[2]
        return ast.Lambda(Span(self.src, c[0][2], body.span.end), c[0][1], None, False, body)

    def _lambda(self, start, param, formals, body, at_span=None):
        items, ellipsis = formals
        items.reverse()
        seen = set()
        for f in items:
            if f.name in seen:
                raise ParseError(f"duplicate formal function argument '{f.name}'", f.span)
            seen.add(f.name)
        span = Span(self.src, start, body.span.end)
        if param is not None and param in seen:
            raise ParseError(f"duplicate formal function argument '{param}'", span)
        return ast.Lambda(span, param, items, ellipsis, body)

    def lam_set(self, c):
        return self._lambda(c[0][2], None, c[1], c[4])

    def lam_empty(self, c):
        return self._lambda(c[0][2], None, ([], False), c[3])

    def lam_set_at(self, c):
        return self._lambda(c[0][2], c[4][1], c[1], c[6])

    def lam_empty_at(self, c):
        return self._lambda(c[0][2], c[3][1], ([], False), c[5])

    def lam_at_set(self, c):
        return self._lambda(c[0][2], c[0][1], c[3], c[6])

    def lam_at_empty(self, c):
        return self._lambda(c[0][2], c[0][1], ([], False), c[5])

    def formals_one(self, formal):
        return [formal], False

    def formals_comma(self, c):
        return [c[0]], False

    def formals_more(self, c):
        items, ellipsis = c[2]
        items.append(c[0])
        return items, ellipsis

    def formals_ellipsis(self, tok):
        return [], True

    def formal_id(self, tok):
        return ast.Formal(tok[1], None, Span(self.src, tok[2], tok[3]))

    def formal(self, c):
        tok = c[0]
        return ast.Formal(tok[1], c[2], Span(self.src, tok[2], tok[3]))

    def assert_(self, c):
        return ast.Assert(Span(self.src, c[0][2], c[3].span.end), c[1], c[3])

    def with_(self, c):
        return ast.With(Span(self.src, c[0][2], c[3].span.end), c[1], c[3])

    def let(self, c):
        binds = c[1]
        if binds.inherited_from:
            _inherit_from_at(binds, Span(self.src, c[0][3], c[0][3]))
        if binds.dynamic:
            raise ParseError("dynamic attributes not allowed in let",
                             Span(self.src, c[0][2], c[0][3]))
        return ast.Let(Span(self.src, c[0][2], c[3].span.end), binds.attrs, c[3])

    def if_(self, c):
        return ast.If(Span(self.src, c[0][2], c[5].span.end), c[1], c[3], c[5])

    # --- operators ---------------------------------------------------------------------------

    def op(self, items):
        if type(items) is not list:
            return items
        if len(items) == 3:  # `a + b`, the most common sequence, needs no precedence
            left, tok, right = items
            if isinstance(left, ast.Node) and isinstance(right, ast.Node):
                return ast.BinOp(Span(self.src, left.span.start, right.span.end), tok[1], left,
                                 right)
        return self._resolve_ops(items)

    def ops_bin(self, c):
        items = c[0]
        if type(items) is not list:
            items = [items]
        items.append(c[1])
        if type(c[2]) is list:
            items.extend(c[2])
        else:
            items.append(c[2])
        return items

    def unit_has(self, c):
        items = c[0]
        if type(items) is not list:
            items = [items]
        path, _, end = c[2]
        items.append(_Has(path, end))
        return items

    def prefixed_op(self, c):
        items = c[1]
        if type(items) is not list:
            return [c[0], items]
        items.insert(0, c[0])
        return items

    def _resolve_ops(self, items):
        """Build the tree of an operator sequence with Nix's precedences and associativities."""
        pos = 0
        n = len(items)
        src = self.src

        def operand(min_prec):
            nonlocal pos
            it = items[pos]
            pos += 1
            if not isinstance(it, ast.Node):  # a prefix operator
                if it[0] == "BANG":
                    e = operand(_NOT_PREC + 1)
                    left = ast.Not(Span(src, it[2], e.span.end), e)
                else:
                    e = operand(_NEG_PREC + 1)
                    left = ast.Neg(Span(src, it[2], e.span.end), e)
            else:
                left = it
            while pos < n:
                it = items[pos]
                if isinstance(it, _Has):
                    if _HAS_PREC < min_prec:
                        break
                    pos += 1
                    left = ast.HasAttr(Span(src, left.span.start, it.end), left, it.path)
                    continue
                prec, assoc = _BINARY[it[0]]
                if prec < min_prec:
                    break
                pos += 1
                right = operand(prec if assoc == "r" else prec + 1)
                left = ast.BinOp(Span(src, left.span.start, right.span.end), it[1], left, right)
                if assoc == "n" and pos < n:
                    nxt = items[pos]
                    if not isinstance(nxt, _Has) and _BINARY[nxt[0]][0] == prec:
                        raise _syntax_error(nxt, Span(src, nxt[2], nxt[3]))
            return left

        return operand(0)

    # --- application and selection ----------------------------------------------------------

    def app_call(self, c):
        fn, arg = c
        if type(fn) is ast.Call:
            fn.args.append(arg)
            fn.span = Span(self.src, fn.span.start, arg.span.end)
            return fn
        return ast.Call(Span(self.src, self.start(fn), arg.span.end), fn, [arg])

    def select_path(self, c):
        e = c[0]
        path, _, end = c[2]
        return ast.Select(Span(self.src, self.start(e), end), e, path)

    def select_or(self, c):
        e = c[0]
        path = c[2][0]
        d = c[4]
        return ast.Select(Span(self.src, self.start(e), d.span.end), e, path, d)

    def select_orcall(self, c):
        e, tok = c
        var = ast.Var(Span(self.src, tok[2], tok[3]), "or")
        return ast.Call(Span(self.src, self.start(e), tok[3]), e, [var])

    def attrpath_id(self, tok):
        return [tok[1]], tok[2], tok[3]

    def attrpath_first(self, attr):
        name, span = attr
        return [name], span.start, span.end

    def attrpath_add(self, c):
        path, start, _ = c[0]
        name, span = c[2]
        path.append(name)
        return path, start, span.end

    def attr_id(self, tok):
        return tok[1], Span(self.src, tok[2], tok[3])

    def attr_string(self, c):
        span = Span(self.src, c[0][2], c[2][3])
        parts = c[1]
        if all(type(p) is str for p in parts) and len(parts) <= 1:
            return (parts[0] if parts else ""), span
        return ast.String(span, parts), span

    def attr_interp(self, c):
        e = c[1]
        span = Span(self.src, c[0][2], c[2][3])
        if type(e) is ast.String and len(e.parts) <= 1 and all(type(p) is str for p in e.parts):
            return (e.parts[0] if e.parts else ""), span
        if type(e) is ast.Uri:
            return e.value, span
        return e, span

    # --- simple expressions ------------------------------------------------------------------

    def var(self, tok):
        return ast.Var(Span(self.src, tok[2], tok[3]), tok[1])

    def int_(self, tok):
        return ast.Int(Span(self.src, tok[2], tok[3]), int(tok[1]))

    def float_(self, tok):
        return ast.Float(Span(self.src, tok[2], tok[3]), float(tok[1]))

    def string(self, c):
        return ast.String(Span(self.src, c[0][2], c[2][3]), c[1])

    def parts_empty(self):
        return []

    def sparts_one(self, tok):
        return [tok[1]]

    def parts_str(self, c):
        parts = c[0]
        parts.append(c[1][1])
        return parts

    def parts_ind(self, c):
        parts = c[0]
        parts.append(c[1])  # the token itself: its type tells text from escape
        return parts

    def parts_interp(self, c):
        parts = c[0]
        parts.append(ast.Interpolation(Span(self.src, c[1][2], c[3][3]), c[2]))
        return parts

    def iparts_first(self, c):
        return [ast.Interpolation(Span(self.src, c[0][2], c[2][3]), c[1])]

    def iparts_str_first(self, c):
        return [c[0][1], ast.Interpolation(Span(self.src, c[1][2], c[3][3]), c[2])]

    def ind_string(self, c):
        return ast.String(Span(self.src, c[0][2], c[2][3]), _strip_indentation(c[1]))

    def path_start(self, tok):
        text = tok[1]
        if tok[0] == "HPATH":  # noqa: the rule has no alias
            home = self.home if self.home is not None else os.environ.get("HOME", "")
            value = home + text[1:]
        else:
            value = _canon_path(text if text.startswith("/")
                                else self.src.base_dir + "/" + text)
            if text.endswith("/") and len(text) > 1:
                value += "/"
        return value, tok[2]

    def path(self, c):
        value, start = c[0]
        return ast.Path(Span(self.src, start, c[1][3]), [value])

    def path_interp(self, c):
        value, start = c[0]
        parts = c[1]
        parts.insert(0, value)
        return ast.Path(Span(self.src, start, c[2][3]), parts)

    def spath(self, tok):
        return ast.SearchPath(Span(self.src, tok[2], tok[3]), tok[1][1:-1])

    def uri(self, tok):
        return ast.Uri(Span(self.src, tok[2], tok[3]), tok[1])

    def paren(self, c):
        e = c[1]
        self.parens[id(e)] = (e, c[0][2])
        return e

    def old_let(self, c):
        binds = c[2]
        if binds.inherited_from:
            _inherit_from_at(binds, Span(self.src, c[1][3], c[1][3]))
        span = Span(self.src, c[0][2], c[3][3])
        attrs = ast.Attrs(Span(self.src, c[1][2], c[3][3]), True, binds.attrs,
                          binds.dynamic)
        return ast.Select(span, attrs, ["body"])

    def rec_set(self, c):
        binds = c[2]
        if binds.inherited_from:
            _inherit_from_at(binds, Span(self.src, c[1][3], c[1][3]))
        return ast.Attrs(Span(self.src, c[0][2], c[3][3]), True, binds.attrs,
                         binds.dynamic)

    def set(self, c):
        binds = c[1]
        if binds.inherited_from:
            _inherit_from_at(binds, Span(self.src, c[0][3], c[0][3]))
        return ast.Attrs(Span(self.src, c[0][2], c[2][3]), False, binds.attrs,
                         binds.dynamic)

    def empty_set(self, c):
        return ast.Attrs(Span(self.src, c[0][2], c[1][3]), False, {}, [])

    def list_(self, c):
        return ast.List(Span(self.src, c[0][2], c[2][3]), c[1])

    def items_empty(self):
        return []

    def items_add(self, c):
        items = c[0]
        items.append(c[1])
        return items

    # --- bindings ----------------------------------------------------------------------------

    def binds_empty(self):
        return _Binds()

    def bind_value_first(self, c):
        return self.bind_value([_Binds()] + c)

    def bind_value(self, c):
        path, start, end = c[1]
        _add_attr(c[0], path, c[3], Span(self.src, start, end))
        return c[0]

    def names_empty(self):
        return []

    def names_add(self, c):
        names = c[0]
        names.append(c[1])
        return names

    def bind_inherit_first(self, c):
        return self.bind_inherit([_Binds()] + c)

    def bind_inherit(self, c):
        self._inherit(c[0], c[2], c[1][3], None)
        return c[0]

    def bind_inherit_from_first(self, c):
        return self.bind_inherit_from([_Binds()] + c)

    def bind_inherit_from(self, c):
        self._inherit(c[0], c[5], c[4][3], c[3])
        return c[0]

    def _inherit(self, binds: _Binds, names, pos, src):
        attrs = binds.attrs
        for name, span in names:
            if not isinstance(name, str):
                raise ParseError("dynamic attributes not allowed in inherit", span)
            bspan = Span(self.src, pos, span.end)
            if name in attrs:
                raise ParseError(f"attribute '{name}' already defined at "
                                 f"{_where(attrs[name].span)}", Span(self.src, pos, pos))
            if src is None:
                value = ast.Var(span, name)
            else:
                value = ast.Select(Span(self.src, src.span.start, span.end), src, [name])
                binds.inherited_from.append(value)
            attrs[name] = ast.Binding(value, True, bspan)


def _inherit_from_at(binds: _Binds, span: Span) -> None:
    """Give each `inherit (e) name` selection Nix's position: that of its (empty) start of the
    bindings, i.e. just after the `{` or `let` that opens them."""
    for select in binds.inherited_from:
        select.span = span


def _add_attr(binds: _Binds, path: list, value: ast.Node, pspan: Span) -> None:
    """Add `path = value` to a set, creating and merging nested sets as Nix's addAttr does."""
    attrs = binds.attrs
    if len(path) == 1:  # `name = value;` with a new static name, the common case
        name = path[0]
        if type(name) is str and name not in attrs:
            attrs[name] = ast.Binding(value, False, pspan)
            return
    dynamic = binds.dynamic
    for name in path[:-1]:
        if isinstance(name, str):
            b = attrs.get(name)
            if b is not None:
                if b.inherited or type(b.value) is not ast.Attrs:
                    raise ParseError(f"attribute '{_show_path(path)}' already defined at "
                                     f"{_where(b.span)}", pspan)
                attrs, dynamic = b.value.attrs, b.value.dynamic
            else:
                nested = ast.Attrs(pspan, False, {}, [])
                attrs[name] = ast.Binding(nested, False, pspan)
                attrs, dynamic = nested.attrs, nested.dynamic
        else:
            nested = ast.Attrs(pspan, False, {}, [])
            dynamic.append((name, nested, pspan))
            attrs, dynamic = nested.attrs, nested.dynamic
    name = path[-1]
    if isinstance(name, str):
        b = attrs.get(name)
        if b is not None:
            if (type(value) is ast.Attrs and not b.inherited and type(b.value) is ast.Attrs):
                # Nix merges the static attributes of both sets (and drops the dynamic ones of
                # the second, as Nix 2.8 does).
                target = b.value.attrs
                for k, kb in value.attrs.items():
                    if k in target:
                        raise ParseError(f"attribute '{k}' already defined at {_where(kb.span)}",
                                         target[k].span)
                    target[k] = kb
            else:
                raise ParseError(f"attribute '{_show_path(path)}' already defined at "
                                 f"{_where(b.span)}", pspan)
        else:
            attrs[name] = ast.Binding(value, False, pspan)
    else:
        dynamic.append((name, value, pspan))


def _strip_indentation(parts: list) -> list:
    """Strip the common indentation of an indented string, exactly as Nix's stripIndentation.

    `parts` holds IND_STR tokens (raw text), IND_ESC tokens (escapes, which count as text) and
    interpolated nodes. Each piece stays a separate part, as in Nix."""
    if not parts:
        return []
    at_start = True
    min_indent = 1000000
    cur = 0
    for p in parts:
        if isinstance(p, ast.Node) or p[0] != "IND_STR":
            if at_start:
                at_start = False
                if cur < min_indent:
                    min_indent = cur
            continue
        # Line by line: a line's leading spaces count while at the start of a line, its first
        # other character ends the indentation, a newline starts a line again.
        first = True
        for line in p[1].split("\n"):
            if first:
                first = False
            else:
                at_start = True
                cur = 0
            if at_start:
                text = line.lstrip(" ")
                cur += len(line) - len(text)
                if text:
                    at_start = False
                    if cur < min_indent:
                        min_indent = cur

    out: list = []
    at_start = True
    dropped = 0
    last = len(parts) - 1
    for i, p in enumerate(parts):
        if isinstance(p, ast.Node):
            at_start = False
            dropped = 0
            out.append(p)
            continue
        s = p[1]
        if p[0] == "IND_STR":
            # Line by line: at the start of a line, spaces beyond the first `min_indent` are
            # kept (counting those dropped in earlier parts), up to the first other character.
            lines = s.split("\n")
            for k, line in enumerate(lines):
                if k:
                    at_start = True
                    dropped = 0
                if at_start:
                    text = line.lstrip(" ")
                    spaces = len(line) - len(text)
                    keep = spaces - max(0, min_indent - dropped)
                    dropped += spaces
                    if text:
                        at_start = False
                        dropped = 0
                    lines[k] = " " * keep + text if keep > 0 else text
            s = "\n".join(lines)
        else:
            # An escape is copied as is; Nix runs it through the same loop, where it can only
            # contain a newline (''\n is not one) or text.
            if at_start and s not in ("\n",):
                at_start = False
                dropped = 0
            elif not at_start and s == "\n":
                at_start = True
        if i == last:
            k = s.rfind("\n")
            if k != -1 and s[k + 1:].strip(" ") == "":
                s = s[:k + 1]
        out.append(s)
    if len(out) == 1 and type(out[0]) is str:
        return [out[0]] if out[0] else []
    return out


_lock = threading.RLock()

_GRAMMAR = _FsPath(__file__).with_name("nix.lark")
_TABLES = _FsPath(__file__).with_name("nix_tables.py")

# Rules of one symbol whose value is that symbol's: they have no callback.
_IDENTITY = {"start", "attr", "select_simple", "app_first", "prefixed_app", "unit_first", "ops_first",
             "binds_some", "sparts_many"}


def _grammar_crc(text: bytes) -> str:
    """Fingerprint the grammar text (a CRC catches edits; nothing here is adversarial)."""
    import zlib
    return "%08x-%d" % (zlib.crc32(text), len(text))


def build_tables(grammar: bytes | None = None) -> dict:
    """Compute the LALR(1) tables of nix.lark with lark, as plain data.

    The result maps `states` to one dict per state (terminal or nonterminal name -> a state
    number for shifts and gotos, or `-1 - i` for a reduction by `rules[i]`), `rules` to
    `(length, callback name, nonterminal)` triples, `defaults` to each state's default reduction
    as bison would pick it (its most frequent, then first-declared rule; None without any),
    and `start`/`end` to the initial and accepting states."""
    from lark import Lark
    from lark.lexer import Lexer
    from lark.parsers.lalr_analysis import Reduce

    class _NoLexer(Lexer):  # lark wants a lexer class; only the tables are used
        def __init__(self, conf):
            pass

        def lex(self, text):
            raise NotImplementedError

    if grammar is None:
        grammar = _GRAMMAR.read_bytes()
    lark = Lark(grammar.decode(), parser="lalr", lexer=_NoLexer, start="start",
                maybe_placeholders=False)
    table = lark.parser.parser.parser.parse_table
    rule_index = {rule: i for i, rule in enumerate(lark.rules)}
    # lark numbers states differently from run to run: renumber them breadth-first from the
    # start state, and rules in grammar order, so that the generated module is reproducible.
    start = table.start_states["start"]
    order = [start]
    number = {start: 0}
    for s in order:
        for key, (action, arg) in sorted(table.states[s].items(), key=lambda kv: "%s" % kv[0]):
            if action is not Reduce and arg not in number:
                number[arg] = len(order)
                order.append(arg)
    used = sorted({arg for acts in table.states.values() for action, arg in acts.values()
                   if action is Reduce}, key=rule_index.__getitem__)
    numbers = {rule: i for i, rule in enumerate(used)}
    rules = [(len(r.expansion), "%s" % (r.alias or r.origin.name), "%s" % r.origin.name)
             for r in used]
    states, defaults = [], []
    for s in order:
        acts = {}
        counts: Counter = Counter()
        for key, (action, arg) in table.states[s].items():
            key = "%s" % key  # lark's names can be Tokens
            if action is Reduce:
                acts[key] = -1 - numbers[arg]
                counts[arg] += 1
            else:
                acts[key] = number[arg]
        states.append(dict(sorted(acts.items())))
        if counts:
            rule = min(counts, key=lambda r: (-counts[r], rule_index[r]))
            defaults.append(numbers[rule])
        else:
            defaults.append(None)
    return {"grammar": _grammar_crc(grammar), "start": 0,
            "end": number[table.end_states["start"]], "rules": rules, "states": states,
            "defaults": defaults}


def render_tables(tables: dict) -> str:
    """Render tables as the source of lang/nix_tables.py.

    The tables are one JSON string rather than Python literals: compiling a big literal costs
    tens of milliseconds whenever no bytecode cache is available, decoding JSON well under one."""
    import json
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(tables[k], separators=(',', ':'))}"
                       for k in ("grammar", "start", "end", "rules", "defaults", "states"))
    return "\n".join([
        '"""The LALR(1) tables of lang/nix.lark, generated by lang.parser.build_tables.',
        "",
        "Do not edit: run `python3 -m dtx.lang.parser --write-tables` after changing nix.lark.",
        "While they are stale a test fails and the parser builds tables in memory with lark.",
        '"""',
        "",
        f"GRAMMAR = {tables['grammar']!r}",
        "",
        "# flake8: noqa",
        "TABLES = r\'\'\'{",
        body,
        "}\'\'\'",
        ""])


def _load_tables() -> dict:
    """Return the parse tables: the generated module when it matches nix.lark (no lark import),
    else tables built in memory with lark."""
    try:
        grammar = _GRAMMAR.read_bytes()
    except OSError:  # an installation without the grammar: trust the generated tables
        grammar = None
    try:
        from . import nix_tables
    except ImportError:
        nix_tables = None
    if nix_tables is not None and (grammar is None
                                   or nix_tables.GRAMMAR == _grammar_crc(grammar)):
        import json
        return json.loads(nix_tables.TABLES)
    return build_tables(grammar)


class _Driver:
    """A table-driven LALR loop over the tables of `_load_tables` and the `_Builder` callbacks.

    Each state is a dict from terminal or nonterminal name to an action: the next state's own
    dict for shifts and gotos (so the stack holds dicts and a step is one subscript), or a
    `(length, callback, nonterminal)` tuple for reductions, with no callback for identity rules.
    A run of one-symbol reductions depends only on the state below, the first rule's nonterminal
    and the lookahead: its callbacks after the first and its final state are cached in the state
    below under `(nonterminal, lookahead)`. On an error the loop emulates bison's default
    reductions so that messages match Nix's."""

    def __init__(self, tables: dict, builder: "_Builder"):
        rules = []
        for size, name, origin in tables["rules"]:
            cb = None if name in _IDENTITY and size == 1 else getattr(builder, name)
            rules.append((size, cb, origin))
        self.op = builder.op
        self.actions: list[dict] = [{} for _ in tables["states"]]
        for acts, raw in zip(self.actions, tables["states"]):
            for k, a in raw.items():
                acts[k] = self.actions[a] if a >= 0 else rules[-1 - a]
        self.number = {id(acts): i for i, acts in enumerate(self.actions)}
        self.start = self.actions[tables["start"]]
        self.end = self.actions[tables["end"]]
        self.defaults: list[tuple | None] = [None if d is None else rules[d]
                                             for d in tables["defaults"]]

    def chain(self, below: dict, origin: str, ttype: str) -> tuple:
        """Return the callbacks and the final state of the one-symbol reductions that follow a
        goto on `origin` from `below` with lookahead `ttype`, and cache them in `below`.

        `op` is left out once `unit: app` was reduced in the run: an `app` is always a node,
        which `op` returns unchanged."""
        top = below[origin]
        cbs = []
        node = False
        while True:
            a = top.get(ttype)
            if type(a) is not tuple or a[0] != 1:
                break
            cb = a[1]
            if cb is not None and not (node and cb == self.op):
                cbs.append(cb)
            if a[2] == "unit":
                node = True
            top = below[a[2]]
        below[(origin, ttype)] = entry = (tuple(cbs), top)
        return entry

    def run(self, tokens, source: Source):
        state = self.start
        stack = [state]
        values: list = []
        push = stack.append
        vpush = values.append
        chain = self.chain
        tok = None
        for tok in tokens:
            ttype = tok[0]
            while True:
                try:
                    act = state[ttype]
                except KeyError:
                    self.error(stack, values, tok, source, None)
                if type(act) is dict:  # shift
                    push(act)
                    vpush(tok)
                    state = act
                    break
                size, cb, origin = act
                if size == 1:
                    below = stack[-2]
                    cbs, state = below.get((origin, ttype)) or chain(below, origin, ttype)
                    stack[-1] = state
                    if cb is not None:
                        value = cb(values[-1])
                        for cb in cbs:
                            value = cb(value)
                        values[-1] = value
                    elif cbs:
                        value = values[-1]
                        for cb in cbs:
                            value = cb(value)
                        values[-1] = value
                    continue
                if size:
                    args = values[-size:]
                    del values[-size:]
                    del stack[-size:]
                    vpush(cb(args))
                else:
                    vpush(cb())
                state = stack[-1][origin]
                push(state)
        end = self.end
        while True:
            act = state.get("$END")
            if type(act) is not tuple:
                self.error(stack, values, None, source, tok)
            size, cb, origin = act
            value = self.reduce(stack, values, size, cb)
            state = stack[-1][origin]
            if state is end:
                return value
            push(state)
            vpush(value)

    @staticmethod
    def reduce(stack: list, values: list, size: int, cb):
        """Pop a rule's `size` symbols and return the value its callback makes of them."""
        if size == 1:
            value = values.pop()
            stack.pop()
            return value if cb is None else cb(value)
        if size:
            args = values[-size:]
            del values[-size:]
            del stack[-size:]
            return cb(args)
        return cb()

    def error(self, stack, values, tok, source: Source, last):
        """Raise the syntax error Nix reports for `tok` (None: end of file).

        Bison performs a state's default reduction (its most frequent one) before noticing an
        error. Do those reductions for real, callbacks included, since they can raise errors
        of their own (a duplicate attribute completed just before the bad token), then list
        what the final state accepts."""
        number = self.number
        stack = [number[id(acts)] for acts in stack]
        actions = self.actions
        end = number[id(self.end)]
        expected = None
        for _ in range(1000):
            act = self.defaults[stack[-1]]
            if act is None:
                break
            size, cb, origin = act
            value = self.reduce(stack, values, size, cb)
            target = number[id(actions[stack[-1]][origin])]
            if target == end:
                expected = {"$END"}
                break
            stack.append(target)
            values.append(value)
        if expected is None:
            expected = {k for k in actions[stack[-1]] if type(k) is str and k.isupper()}
        if tok is None:
            from .lexer import eof_position
            at = eof_position(source.text, last[2], last[3]) if last else 0
            tok = ("$END", "", at, at)
        raise _syntax_error(tok, Span(source, tok[2], tok[3]), expected)


_builder = _Builder()


@lru_cache(maxsize=None)
def _driver() -> _Driver:
    return _Driver(_load_tables(), _builder)


def parse_source(source: Source) -> ast.Node:
    """Parse a `Source` into an AST; raise `ParseError` on any error."""
    driver = _driver()
    builder = _builder
    with _lock:
        builder.src = source
        # The tree has no reference cycles, so the cyclic collector only slows parsing down:
        # the many new objects trigger full collections over the growing tree (~15 % of the
        # time on a large file). Reference counting still frees everything on the way.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return driver.run(scan(source), source)
        finally:
            builder.src = None
            builder.parens.clear()
            if collecting:
                gc.enable()


def parse(text: str, name: str = "«string»", base_dir: str | None = None,
          path: str | None = None) -> ast.Node:
    """Parse Nix source text; relative paths resolve against `base_dir` (default: the cwd)."""
    if base_dir is None:
        base_dir = os.getcwd()
    return parse_source(Source(name, text, base_dir, path))


def parse_file(path: str) -> ast.Node:
    """Parse a file; its absolute path is the source name and its directory the base."""
    path = os.path.abspath(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return parse(text, name=path, base_dir=os.path.dirname(path), path=path)


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["--write-tables"]:
        sys.exit("usage: python3 -m dtx.lang.parser --write-tables")
    _TABLES.write_text(render_tables(build_tables()))
    print(f"wrote {_TABLES}")
