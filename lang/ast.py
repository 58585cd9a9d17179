"""The abstract syntax tree of the Nix expression language.

Every node carries a `span` (lang.source.Span). The parser desugars only what Nix itself desugars at
parse time and what has no meaning of its own:

- nested attribute paths in bindings (`a.b.c = 1; a.b.d = 2;`) are merged into nested `Attrs`
  nodes, as Nix does, so `Attrs.attrs` maps each static name to exactly one `Binding`;
- indented strings are stripped of their common indentation and become `String` nodes;
- the old `let { body = …; }` form becomes `Select(Attrs(rec=True, …), ["body"])`;
- relative and home paths are made absolute against the source's base directory.

Everything else (operators, `<path>` lookups, interpolation) is kept as written so the evaluator
and the `--parse` printer can treat it faithfully. Name resolution (lang.resolve) annotates `Var`,
`Lambda`, `Let`, `Attrs` and `With` nodes in place with scope information.
"""

from __future__ import annotations

from typing import Union

from .source import Span


class Node:
    """Base class of all expression nodes."""

    __slots__ = ("span",)
    span: Span


# An attribute name in a path or binding: a static string, or an expression (`${e}` or `"a${b}"`)
# evaluated to a string at run time. Static quoted names without interpolation are plain strings.
AttrName = Union[str, Node]


class Int(Node):
    __slots__ = ("value",)

    def __init__(self, span: Span, value: int):
        self.span, self.value = span, value


class Float(Node):
    __slots__ = ("value",)

    def __init__(self, span: Span, value: float):
        self.span, self.value = span, value


class String(Node):
    """A string literal; `parts` are `str` pieces and `Interpolation`s (`${e}`), with
    escapes already decoded. A literal without interpolation has exactly one `str` part (or none
    for the empty string)."""

    __slots__ = ("parts",)

    def __init__(self, span: Span, parts: list[str | Node]):
        self.span, self.parts = span, parts


class Interpolation(Node):
    """`${expr}` inside a string or path: its span starts at `${`, which is where Nix reports a
    value that cannot be coerced to a string (the expression keeps its own span)."""

    __slots__ = ("expr",)

    def __init__(self, span: Span, expr: Node):
        self.span, self.expr = span, expr


class Path(Node):
    """A path literal. Without interpolation, `parts` is one absolute, canonical `str`. With
    interpolation (`./a/${b}`), the first part is the absolute prefix and the rest alternate as
    written; the evaluator canonicalises the result."""

    __slots__ = ("parts",)

    def __init__(self, span: Span, parts: list[str | Node]):
        self.span, self.parts = span, parts


class SearchPath(Node):
    """`<nixpkgs/lib>`: `path` is the text between the angle brackets."""

    __slots__ = ("path", "find_file", "nix_path")

    def __init__(self, span: Span, path: str):
        self.span, self.path = span, path
        # Nix evaluates `<p>` as `__findFile __nixPath "p"` with both names looked up in scope;
        # resolution sets these to the two `Var` nodes.
        self.find_file = self.nix_path = None


class Uri(Node):
    """An unquoted URI such as `http://example.org/x`; it evaluates to a string."""

    __slots__ = ("value",)

    def __init__(self, span: Span, value: str):
        self.span, self.value = span, value


class Var(Node):
    """A variable reference. After resolution: `level` is how many scopes up the binding is and
    `index` its slot there; `level is None` means a dynamic lookup in the enclosing `with` scopes
    (`with_levels` lists how many scopes up each enclosing `with` is, innermost first)."""

    __slots__ = ("name", "level", "index", "with_levels", "is_global")

    def __init__(self, span: Span, name: str):
        self.span, self.name = span, name
        self.level = self.index = self.with_levels = None
        self.is_global = False  # bound in the outermost scope (the builtins)


class Select(Node):
    """`e.a.b` or `e.a.b or default`."""

    __slots__ = ("expr", "path", "default")

    def __init__(self, span: Span, expr: Node, path: list[AttrName], default: Node | None = None):
        self.span, self.expr, self.path, self.default = span, expr, path, default


class HasAttr(Node):
    """`e ? a.b`."""

    __slots__ = ("expr", "path")

    def __init__(self, span: Span, expr: Node, path: list[AttrName]):
        self.span, self.expr, self.path = span, expr, path


class Binding:
    """One static attribute of an attribute set or `let`.

    `value` is the expression; for `inherit x;` it is a `Var` and `inherited` is True; for
    `inherit (e) x;` it is `Select(e, ["x"])` and `inherited` is True as well. `span` is the span of
    the attribute name, used for "while evaluating the attribute" and duplicate-attribute errors.
    """

    __slots__ = ("value", "inherited", "span")

    def __init__(self, value: Node, inherited: bool, span: Span):
        self.value, self.inherited, self.span = value, inherited, span


class Attrs(Node):
    """`{ … }` or `rec { … }`. `attrs` maps static names to bindings in source order;
    `dynamic` holds `(name_expr, value_expr, span)` for `${e} = …;` and interpolated string names.
    In a `rec` set, the static names occupy the scope's slots in the order of `attrs`."""

    __slots__ = ("rec", "attrs", "dynamic")

    def __init__(self, span: Span, rec: bool, attrs: dict[str, Binding],
                 dynamic: list[tuple[Node, Node, Span]]):
        self.span, self.rec, self.attrs, self.dynamic = span, rec, attrs, dynamic


class List(Node):
    __slots__ = ("items",)

    def __init__(self, span: Span, items: list[Node]):
        self.span, self.items = span, items


class Let(Node):
    """`let bindings in body`; dynamic attribute names are not allowed in `let` (a parse error)."""

    __slots__ = ("attrs", "body")

    def __init__(self, span: Span, attrs: dict[str, Binding], body: Node):
        self.span, self.attrs, self.body = span, attrs, body


class With(Node):
    __slots__ = ("env", "body")

    def __init__(self, span: Span, env: Node, body: Node):
        self.span, self.env, self.body = span, env, body


class Assert(Node):
    __slots__ = ("cond", "body")

    def __init__(self, span: Span, cond: Node, body: Node):
        self.span, self.cond, self.body = span, cond, body


class If(Node):
    __slots__ = ("cond", "then", "else_")

    def __init__(self, span: Span, cond: Node, then: Node, else_: Node):
        self.span, self.cond, self.then, self.else_ = span, cond, then, else_


class Formal:
    """One formal of a set pattern: `name` or `name ? default`."""

    __slots__ = ("name", "default", "span")

    def __init__(self, name: str, default: Node | None, span: Span):
        self.name, self.default, self.span = name, default, span


class Lambda(Node):
    """`x: body`, `{ a, b ? d, ... }: body`, `args@{ … }: body` or `{ … }@args: body`.

    `param` is the simple or `@` name (or None); `formals` is None for a simple lambda, else the list
    of formals in source order, with `ellipsis` telling whether `...` was given."""

    __slots__ = ("param", "formals", "ellipsis", "body", "name")

    def __init__(self, span: Span, param: str | None, formals: list[Formal] | None,
                 ellipsis: bool, body: Node):
        self.span, self.param, self.formals, self.ellipsis, self.body = (
            span, param, formals, ellipsis, body)
        self.name = None  # the attribute or `let` name it is bound to, for error messages


class Call(Node):
    """Function application `f a b …`; consecutive applications are gathered into one node."""

    __slots__ = ("fn", "args")

    def __init__(self, span: Span, fn: Node, args: list[Node]):
        self.span, self.fn, self.args = span, fn, args


class BinOp(Node):
    """A binary operator: one of `+ - * / ++ // == != < <= > >= && || ->`."""

    __slots__ = ("op", "left", "right")

    def __init__(self, span: Span, op: str, left: Node, right: Node):
        self.span, self.op, self.left, self.right = span, op, left, right


class Not(Node):
    __slots__ = ("expr",)

    def __init__(self, span: Span, expr: Node):
        self.span, self.expr = span, expr


class Neg(Node):
    __slots__ = ("expr",)

    def __init__(self, span: Span, expr: Node):
        self.span, self.expr = span, expr
