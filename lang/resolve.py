"""Name resolution: binds every variable to its scope before evaluation.

A scope is one environment frame at run time. `let`, `rec { }` and lambdas open scopes whose slots
are their names in source order (a lambda with formals: the formals, then the `@` name); `with`
opens a scope of one slot holding its attribute set. Each `Var` gets `level` (how many frames up)
and `index` (the slot, 1-based because slot 0 of a frame is its parent), or, when no enclosing
scope binds it statically, `with_levels`: the frames of the enclosing `with`s, innermost first.
As in Nix, a lexical binding always wins over a `with`, however deeply the `with` is nested, and a
name bound by neither is an error reported now, before anything is evaluated.

`inherit x;` in a `let` or `rec { }` looks `x` up in the enclosing scope, not the new one.
"""

from __future__ import annotations

from . import ast
from .errors import ParseError


class Scope:
    """A static scope: `names` maps a name to its slot, or is None for a `with` scope."""

    __slots__ = ("parent", "names")

    def __init__(self, parent: "Scope | None", names: dict[str, int] | None):
        self.parent = parent
        self.names = names


def base_scope(names) -> Scope:
    """Return the outermost scope, binding `names` (the global builtins) to slots 1…n."""
    return Scope(None, {name: i + 1 for i, name in enumerate(names)})


def slot_names(names) -> dict[str, int]:
    return {name: i + 1 for i, name in enumerate(names)}


def lambda_slots(node: ast.Lambda) -> dict[str, int]:
    """Return the slot of each name a lambda binds."""
    if node.formals is None:
        return {node.param: 1}
    names = [f.name for f in node.formals]
    if node.param is not None:
        names.append(node.param)
    return slot_names(names)


def resolve(node: ast.Node, scope: Scope) -> None:
    """Annotate `node` and everything under it; raise ParseError for an undefined variable."""
    _Resolver().visit(node, scope)


class _Resolver:
    def visit(self, node, scope: Scope) -> None:
        getattr(self, "visit_" + type(node).__name__)(node, scope)

    def visit_Int(self, node, scope):
        pass

    visit_Float = visit_Uri = visit_Int

    def visit_String(self, node, scope):
        for part in node.parts:
            if not isinstance(part, str):
                self.visit(part, scope)

    visit_Path = visit_String

    def visit_Interpolation(self, node, scope):
        self.visit(node.expr, scope)

    def visit_SearchPath(self, node, scope):
        node.find_file = ast.Var(node.span, "__findFile")
        node.nix_path = ast.Var(node.span, "__nixPath")
        self.visit(node.find_file, scope)
        self.visit(node.nix_path, scope)

    def visit_Var(self, node: ast.Var, scope: Scope):
        name = node.name
        level = 0
        withs = []
        s = scope
        while s is not None:
            if s.names is None:
                withs.append(level)
            else:
                index = s.names.get(name)
                if index is not None:
                    node.level = level
                    node.index = index
                    node.is_global = s.parent is None
                    return
            s = s.parent
            level += 1
        if not withs:
            raise ParseError(f"undefined variable '{name}'", node.span)
        node.with_levels = tuple(withs)

    def _attr_path(self, path, scope):
        for name in path:
            if not isinstance(name, str):
                self.visit(name, scope)

    def visit_Select(self, node, scope):
        self.visit(node.expr, scope)
        self._attr_path(node.path, scope)
        if node.default is not None:
            self.visit(node.default, scope)

    def visit_HasAttr(self, node, scope):
        self.visit(node.expr, scope)
        self._attr_path(node.path, scope)

    def _bindings(self, attrs: dict, inner: Scope, outer: Scope):
        for name, binding in attrs.items():
            value = binding.value
            if binding.inherited and type(value) is ast.Var:
                self.visit(value, outer)
            else:
                if type(value) is ast.Lambda and value.name is None:
                    value.name = name
                self.visit(value, inner)

    def visit_Attrs(self, node: ast.Attrs, scope):
        inner = Scope(scope, slot_names(node.attrs)) if node.rec else scope
        self._bindings(node.attrs, inner, scope)
        for name_expr, value, _ in node.dynamic:
            self.visit(name_expr, inner)
            self.visit(value, inner)

    def visit_List(self, node, scope):
        for item in node.items:
            self.visit(item, scope)

    def visit_Let(self, node: ast.Let, scope):
        inner = Scope(scope, slot_names(node.attrs))
        self._bindings(node.attrs, inner, scope)
        self.visit(node.body, inner)

    def visit_With(self, node, scope):
        self.visit(node.env, scope)
        self.visit(node.body, Scope(scope, None))

    def visit_Assert(self, node, scope):
        self.visit(node.cond, scope)
        self.visit(node.body, scope)

    def visit_If(self, node, scope):
        self.visit(node.cond, scope)
        self.visit(node.then, scope)
        self.visit(node.else_, scope)

    def visit_Lambda(self, node: ast.Lambda, scope):
        inner = Scope(scope, lambda_slots(node))
        if node.formals is not None:
            for formal in node.formals:
                if formal.default is not None:
                    self.visit(formal.default, inner)
        self.visit(node.body, inner)

    def visit_Call(self, node, scope):
        self.visit(node.fn, scope)
        for arg in node.args:
            self.visit(arg, scope)

    def visit_BinOp(self, node, scope):
        self.visit(node.left, scope)
        self.visit(node.right, scope)

    def visit_Not(self, node, scope):
        self.visit(node.expr, scope)

    visit_Neg = visit_Not
