"""XML: `builtins.toXML` and the printer behind `--xml`, in Nix 2.8's format.

The document is `<?xml version='1.0' encoding='utf-8'?>` then `<expr>` holding one element per
value, indented by two spaces per level: `<attrs>` of `<attr name=…>`, `<list>`, `<string>`,
`<int>`, `<float>` (printed as `%g`), `<bool>`, `<null />`, `<path>` (not copied to the store),
`<function>` with `<varpat>` or `<attrspat>` (its formals sorted by name) and `<derivation>`, which
lists its attributes only the first time its `drvPath` is met (`<repeated />` afterwards, and
always when it has no string `drvPath`). Built-in functions and, when not strict, unevaluated
thunks print as `<unevaluated />`. XML attributes come in name order; attribute values escape
`<`, `>`, `&`, `"` and newlines, and nothing else.

With `location` (the `--xml` output; `builtins.toXML` never has it) attributes and lambdas carry
`path`, `line` and `column`, where `path` is the file or, for an expression given as text, the
text itself, as Nix 2.8 prints it.
"""

from __future__ import annotations

from ..printer import format_float
from ..values import (Attrs, CStr, Lambda, NixPath, PrimOp, PrimOpApp, Thunk, force,
                      make_string)
from . import builtin

_HEADER = "<?xml version='1.0' encoding='utf-8'?>\n"


def escape_xml(s: str) -> str:
    """Escape an XML attribute value as Nix 2.8's XML writer does."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", "&#xA;"))


def _element(name: str, attrs: dict, empty: bool) -> str:
    parts = [name]
    for key in sorted(attrs):
        parts.append(f'{key}="{escape_xml(attrs[key])}"')
    return "<" + " ".join(parts) + (" />" if empty else ">")


class _Writer:
    def __init__(self, state, ctx: set, location: bool, strict: bool):
        self.state = state
        self.ctx = ctx
        self.location = location
        self.strict = strict
        self.out: list[str] = [_HEADER]
        self.depth = 0
        self.drvs_seen: set[str] = set()

    def empty(self, name: str, attrs: dict | None = None) -> None:
        self.out.append("  " * self.depth + _element(name, attrs or {}, True) + "\n")

    def open(self, name: str, attrs: dict | None = None) -> None:
        self.out.append("  " * self.depth + _element(name, attrs or {}, False) + "\n")
        self.depth += 1

    def close(self, name: str) -> None:
        self.depth -= 1
        self.out.append("  " * self.depth + f"</{name}>\n")

    def position(self, attrs: dict, span) -> None:
        if not self.location or span is None:
            return
        source = span.source
        line, column = span.line_col()
        attrs["path"] = source.path if source.path is not None else source.text
        attrs["line"] = str(line)
        attrs["column"] = str(column)

    def value(self, v) -> None:
        if type(v) is Thunk:
            if self.strict or v.code is None:
                v = v.force()
            else:
                self.empty("unevaluated")
                return
        t = type(v)
        if t is str:
            self.empty("string", {"value": v})
        elif t is CStr:
            self.ctx |= v.ctx
            self.empty("string", {"value": str(v)})
        elif t is bool:
            self.empty("bool", {"value": "true" if v else "false"})
        elif t is int:
            self.empty("int", {"value": str(v)})
        elif v is None:
            self.empty("null")
        elif t is float:
            self.empty("float", {"value": format_float(v)})
        elif t is NixPath:
            self.empty("path", {"value": v.path})
        elif t is list:
            self.open("list")
            for item in v:
                self.value(item)
            self.close("list")
        elif t is Attrs:
            if v.is_derivation():
                self.derivation(v)
            else:
                self.open("attrs")
                self.attrs(v)
                self.close("attrs")
        elif t is Lambda:
            self.function(v)
        elif t is PrimOp or t is PrimOpApp:
            self.empty("unevaluated")
        else:
            raise TypeError(f"not a Nix value: {v!r}")

    def attrs(self, v: Attrs) -> None:
        for name in sorted(v.d, key=lambda n: n.encode("utf-8", "surrogateescape")):
            xml_attrs = {"name": name}
            if v.pos is not None:
                self.position(xml_attrs, v.pos.get(name))
            self.open("attr", xml_attrs)
            self.value(v.d[name])
            self.close("attr")

    def derivation(self, v: Attrs) -> None:
        xml_attrs = {}
        drv_path = ""
        for key in ("drvPath", "outPath"):
            if key in v.d:
                x = v.d[key]
                if self.strict or type(x) is not Thunk or x.code is None:
                    x = force(x)
                if type(x) is str or type(x) is CStr:
                    xml_attrs[key] = str(x)
                    if key == "drvPath":
                        drv_path = str(x)
        self.open("derivation", xml_attrs)
        if drv_path and drv_path not in self.drvs_seen:
            self.drvs_seen.add(drv_path)
            self.attrs(v)
        else:
            self.empty("repeated")
        self.close("derivation")

    def function(self, v: Lambda) -> None:
        node = v.node
        xml_attrs: dict = {}
        self.position(xml_attrs, node.span)
        self.open("function", xml_attrs)
        if node.formals is not None:
            pat = {}
            if node.param:
                pat["name"] = node.param
            if node.ellipsis:
                pat["ellipsis"] = "1"
            self.open("attrspat", pat)
            for name in sorted((f.name for f in node.formals),
                               key=lambda n: n.encode("utf-8", "surrogateescape")):
                self.empty("attr", {"name": name})
            self.close("attrspat")
        else:
            self.empty("varpat", {"name": node.param})
        self.close("function")


def to_xml(state, value, ctx: set, location: bool = True, strict: bool = True) -> str:
    """Render a value as Nix's XML document, adding string contexts to `ctx`. With `location`,
    attributes and functions carry their source positions (as `--xml` prints them); without
    `strict`, thunks not yet forced print as `<unevaluated />`."""
    w = _Writer(state, ctx, location, strict)
    w.open("expr")
    w.value(value)
    w.close("expr")
    return "".join(w.out)


@builtin("toXML", 1, state=True)
def to_xml_builtin(state, e):
    """`builtins.toXML e`

    Return a string containing an XML representation of `e`, in the format of
    `nix-instantiate --eval --xml` (without source positions). Strings keep their context.

    ```nix
    builtins.toXML { a = [ 1 "x" ]; }
    # => "<?xml version='1.0' encoding='utf-8'?>\\n<expr>\\n  <attrs>\\n    <attr name=\\"a\\">…"
    ```
    """
    ctx: set = set()
    text = to_xml(state, e, ctx, location=False)
    return make_string(text, ctx)
