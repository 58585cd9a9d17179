"""Print an AST as `nix-instantiate --parse` (Nix 2.8) prints the parsed expression.

The output shows Nix's own desugaring: binary `-`, `*`, `/`, `<`, `>` become calls of `__sub`,
`__mul`, `__div`, `__lessThan`; `<=`/`>=` are negated comparisons; unary minus is `__sub 0`;
`<p>` is `__findFile __nixPath "p"`; consecutive calls print as one. Attribute sets list their
static attributes sorted by name. Nix 2.8 orders let bindings and formals by its symbol table,
i.e. by when each name was first seen; `_SymbolOrder` approximates that by the first occurrence
of the name in the tree (names Nix interns at start-up, such as builtins, come first).
"""

from __future__ import annotations

import re

from . import ast

__all__ = ["show", "show_attr_name", "show_string"]

_ID = re.compile(r"[a-zA-Z_][a-zA-Z0-9_'\-]*\Z")
_RESERVED = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"}

# Names interned by Nix before parsing (builtins and the evaluator's own symbols): they sort first.
_PREINTERNED = {
    "true", "false", "null", "builtins", "import", "map", "toString", "throw", "abort",
    "baseNameOf", "dirOf", "isNull", "removeAttrs", "derivation", "derivationStrict",
    "fetchTarball", "fetchGit", "fetchMercurial", "placeholder", "scopedImport", "fromTOML",
    "outPath", "drvPath", "type", "meta", "name", "value", "system", "overrides", "outputs",
    "outputName", "ignoreNulls", "file", "line", "column", "functor", "right", "wrong",
    "structuredAttrs", "builder", "args", "contentAddressed", "impure", "outputHash",
    "outputHashAlgo", "outputHashMode", "recurseForDerivations", "description", "self",
    "epsilon", "startSet", "operator", "key", "path", "prefix", "body", "or",
}

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\$"}
_NEEDS_ESC = re.compile(r'["\\\n\r\t$]')


def show_string(s: str) -> str:
    """Quote a string as Nix prints string literals."""
    return '"' + _NEEDS_ESC.sub(lambda m: _ESC[m.group()], s) + '"'


def _name(s: str) -> str:
    return s if _ID.match(s) and s not in _RESERVED else show_string(s)


def show_attr_name(name) -> str:
    """Show one attribute name of a path: an identifier, a quoted string or `"${e}"`."""
    if isinstance(name, str):
        return _name(name)
    return '"${' + show(name) + '}"'


def _float(v: float) -> str:
    return "%g" % v


class _SymbolOrder:
    """First-occurrence offsets of every name in a tree, standing in for Nix's symbol order."""

    def __init__(self, root: ast.Node):
        self.first: dict[str, int] = {}
        self._walk(root)

    def _see(self, name, offset: int) -> None:
        if isinstance(name, str):
            old = self.first.get(name)
            if old is None or offset < old:
                self.first[name] = offset

    def _walk(self, node) -> None:
        stack = [node]
        see = self._see
        while stack:
            n = stack.pop()
            if not isinstance(n, ast.Node):
                continue
            t = type(n)
            if t is ast.Var:
                see(n.name, n.span.start)
            elif t is ast.Lambda:
                if n.param is not None:
                    see(n.param, n.span.start)
                for f in n.formals or ():
                    see(f.name, f.span.start)
                    stack.append(f.default)
                stack.append(n.body)
            elif t is ast.Attrs or t is ast.Let:
                for k, b in n.attrs.items():
                    v = b.value
                    if b.inherited:
                        # The name is the last token of the binding; an `inherit (e)`
                        # selection's span is Nix's error position, not where the name is.
                        see(k, b.span.end - 1)
                        if type(v) is ast.Select:
                            v = v.expr
                    else:
                        see(k, b.span.start)
                    stack.append(v)
                if t is ast.Attrs:
                    for k, v, sp in n.dynamic:
                        stack.append(k)
                        stack.append(v)
                else:
                    stack.append(n.body)
            elif t is ast.Select or t is ast.HasAttr:
                for k in n.path:
                    if isinstance(k, str):
                        see(k, n.span.start)
                    else:
                        stack.append(k)
                stack.append(n.expr)
                if t is ast.Select:
                    stack.append(n.default)
            else:
                for slot in ("expr", "left", "right", "fn", "cond", "then", "else_", "env",
                             "body"):
                    child = getattr(n, slot, None)
                    if child is not None:
                        stack.append(child)
                for slot in ("args", "items", "parts"):
                    stack.extend(getattr(n, slot, ()))

    def key(self, name: str):
        if name in _PREINTERNED:
            return (0, name)
        return (1, self.first.get(name, 1 << 60), name)


_CALL_OPS = {"-": "__sub", "*": "__mul", "/": "__div"}


class _Printer:
    def __init__(self, root: ast.Node):
        self.root = root
        self._order: _SymbolOrder | None = None
        self.out: list[str] = []

    def order(self) -> _SymbolOrder:
        if self._order is None:
            self._order = _SymbolOrder(self.root)
        return self._order

    def call_parts(self, node):
        """Return (head words, args) if Nix represents `node` as an ExprCall, else None."""
        t = type(node)
        if t is ast.Call:
            return node.fn, list(node.args)
        if t is ast.BinOp:
            op = node.op
            if op in _CALL_OPS:
                return ast.Var(node.span, _CALL_OPS[op]), [node.left, node.right]
            if op == "<":
                return ast.Var(node.span, "__lessThan"), [node.left, node.right]
            if op == ">":
                return ast.Var(node.span, "__lessThan"), [node.right, node.left]
        elif t is ast.Neg:
            return ast.Var(node.span, "__sub"), [ast.Int(node.span, 0), node.expr]
        elif t is ast.SearchPath:
            return (ast.Var(node.span, "__findFile"),
                    [ast.Var(node.span, "__nixPath"), ast.String(node.span, [node.path])])
        return None

    def emit(self, node) -> None:
        w = self.out.append
        t = type(node)
        if t is ast.Var:
            w(node.name)
        elif t is ast.Int:
            w(str(node.value))
        elif t is ast.Float:
            w(_float(node.value))
        elif t is ast.String:
            parts = node.parts
            if not parts:
                w('""')
            elif len(parts) == 1 and type(parts[0]) is str:
                w(show_string(parts[0]))
            else:
                w("(")
                for i, p in enumerate(parts):
                    if i:
                        w(" + ")
                    if type(p) is str:
                        w(show_string(p))
                    else:
                        self.emit(p.expr)
                w(")")
        elif t is ast.Path:
            parts = node.parts
            if len(parts) == 1:
                w(parts[0])
            else:
                w("(")
                w(parts[0])
                for p in parts[1:]:
                    w(" + ")
                    if type(p) is str:
                        w(show_string(p))
                    else:
                        self.emit(p.expr)
                w(")")
        elif t is ast.Uri:
            w(show_string(node.value))
        elif t is ast.Select:
            w("(")
            self.emit(node.expr)
            w(").")
            self.attr_path(node.path)
            if node.default is not None:
                w(" or (")
                self.emit(node.default)
                w(")")
        elif t is ast.HasAttr:
            w("((")
            self.emit(node.expr)
            w(") ? ")
            self.attr_path(node.path)
            w(")")
        elif t is ast.Attrs:
            if node.rec:
                w("rec ")
            w("{ ")
            for k in sorted(node.attrs):
                self.binding(k, node.attrs[k], " ;")
            for k, v, _ in node.dynamic:
                self.attr_path([k])
                w(" = ")
                self.emit(v)
                w("; ")
            w("}")
        elif t is ast.List:
            w("[ ")
            for item in node.items:
                w("(")
                self.emit(item)
                w(") ")
            w("]")
        elif t is ast.Let:
            w("(let ")
            key = self.order().key
            for k in sorted(node.attrs, key=key):
                self.binding(k, node.attrs[k], ";")
            w("in ")
            self.emit(node.body)
            w(")")
        elif t is ast.With:
            w("(with ")
            self.emit(node.env)
            w("; ")
            self.emit(node.body)
            w(")")
        elif t is ast.Assert:
            w("assert ")
            self.emit(node.cond)
            w("; ")
            self.emit(node.body)
        elif t is ast.If:
            w("(if ")
            self.emit(node.cond)
            w(" then ")
            self.emit(node.then)
            w(" else ")
            self.emit(node.else_)
            w(")")
        elif t is ast.Lambda:
            w("(")
            if node.formals is not None:
                w("{ ")
                key = self.order().key
                first = True
                for f in sorted(node.formals, key=lambda f: key(f.name)):
                    if not first:
                        w(", ")
                    first = False
                    w(f.name)
                    if f.default is not None:
                        w(" ? ")
                        self.emit(f.default)
                if node.ellipsis:
                    if not first:
                        w(", ")
                    w("...")
                w(" }")
                if node.param is not None:
                    w(" @ ")
            if node.param is not None:
                w(node.param)
            w(": ")
            self.emit(node.body)
            w(")")
        elif t is ast.Not:
            w("(! ")
            self.emit(node.expr)
            w(")")
        elif t is ast.Call:
            fn, args = node.fn, node.args
            if type(fn) is not ast.Call:
                # Nix folds an application of an operator it represents as a call into that
                # call (`(a - b) c` is `__sub a b c`). A Call inside a Call only comes from
                # `(f a) or`, which Nix keeps nested.
                inner = self.call_parts(fn)
                if inner is not None:
                    fn, args = inner[0], inner[1] + list(args)
            self.call(fn, args)
        elif t is ast.Neg or t is ast.SearchPath:
            fn, args = self.call_parts(node)
            self.call(fn, args)
        elif t is ast.BinOp:
            op = node.op
            parts = self.call_parts(node)
            if parts is not None:
                self.call(*parts)
            elif op == "<=" or op == ">=":
                w("(! ")
                if op == "<=":
                    self.call(ast.Var(node.span, "__lessThan"), [node.right, node.left])
                else:
                    self.call(ast.Var(node.span, "__lessThan"), [node.left, node.right])
                w(")")
            else:
                w("(")
                self.emit(node.left)
                w(f" {op} ")
                self.emit(node.right)
                w(")")
        else:
            raise TypeError(f"cannot print {node!r}")

    def call(self, fn, args) -> None:
        w = self.out.append
        w("(")
        self.emit(fn)
        for a in args:
            w(" ")
            self.emit(a)
        w(")")

    def binding(self, name: str, b: ast.Binding, inherit_end: str) -> None:
        w = self.out.append
        if b.inherited and type(b.value) is ast.Var:
            w("inherit ")
            w(_name(name))
            w(inherit_end)
            w(" ")
        else:
            w(_name(name))
            w(" = ")
            self.emit(b.value)
            w("; ")

    def attr_path(self, path) -> None:
        w = self.out.append
        for i, n in enumerate(path):
            if i:
                w(".")
            if isinstance(n, str):
                w(_name(n))
            else:
                w('"${')
                self.emit(n)
                w('}"')


def show(node: ast.Node) -> str:
    """Return `node` printed as `nix-instantiate --parse` prints it."""
    p = _Printer(node)
    p.emit(node)
    return "".join(p.out)
