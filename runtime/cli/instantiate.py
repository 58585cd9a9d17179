"""`dtx-instantiate`: evaluate expressions (and, with a store, instantiate derivations), with the
flags and output of `nix-instantiate`."""

from __future__ import annotations

import argparse
import os
import sys

from ..gc import add_root_link
from .common import add_eval_flags, auto_args, make_evaluator, report_errors, select_and_call


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dtx-instantiate",
        description="Evaluate Nix-language expressions and instantiate store derivations.")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="files to evaluate ('-' reads standard input); default: ./default.dtx "
                        "or ./default.nix")
    p.add_argument("--eval", action="store_true", help="evaluate and print the result")
    p.add_argument("--parse", action="store_true", help="parse and print the syntax tree")
    p.add_argument("--strict", action="store_true", help="evaluate the result completely")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--xml", action="store_true", help="print the result as XML")
    p.add_argument("--no-location", action="store_true",
                   help="omit source locations from --xml output")
    p.add_argument("--add-root", metavar="PATH",
                   help="make PATH a garbage-collector root of the derivation (and print it)")
    p.add_argument("--indirect", action="store_true",
                   help="accepted for compatibility: roots are always indirect")
    add_eval_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(lambda: _run(args), args)


def _run(args) -> int:
    state = make_evaluator(args, read_only=args.eval or args.parse)
    from ...lang.printer import show

    if args.parse:
        for source in _sources(args):
            print(show(_parse_source(state, args, source)))
        return 0
    roots = 0
    autoargs = auto_args(state, args)
    for root in eval_sources(state, args):
        for value in select_and_call(root, args, autoargs):
            if args.eval:
                # nix-instantiate ends JSON output without a newline.
                print(_format(state, value, args), end="" if args.json else "\n")
                continue
            for drv_path, output in dict.fromkeys(derivation_outputs_of(value, autoargs)):
                shown = drv_path
                if args.add_root is None:
                    _warn_no_root()
                else:
                    roots += 1
                    # As nix-instantiate: the first root is PATH, the next PATH-2, PATH-3, …
                    link = args.add_root + (f"-{roots}" if roots > 1 else "")
                    shown = add_root_link(state.store, link, drv_path)
                # As nix-instantiate does, an output other than `out` is named after a `!`.
                print(shown if output == "out" else f"{shown}!{output}")
    return 0


_warned_no_root = False


def _warn_no_root() -> None:
    global _warned_no_root
    if not _warned_no_root:
        _warned_no_root = True
        print("warning: you did not specify '--add-root'; the result might be removed by the "
              "garbage collector", file=sys.stderr)


def eval_sources(state, args):
    """Evaluate each file or expression the command line names; yield the values."""
    for source in _sources(args):
        yield _eval_source(state, args, source)


def derivation_outputs_of(value, autoargs: dict) -> list[tuple[str, str]]:
    """The (drv path, output name) pairs a value denotes, as nix-instantiate and nix-build find
    them (Nix's getDerivations): a derivation; the derivations among a set's attributes, in
    name order, recursing into sets whose `recurseForDerivations` is true; the derivations of a
    list's elements, recursing into every element that is not one. Functions met on the way
    are auto-called with `autoargs`. Anything else, a list element included, is "not a
    derivation"."""
    from ..errors import EvalError
    from ..values import Attrs, force
    from .common import auto_call

    out: list[tuple[str, str]] = []

    def add_if_derivation(v) -> bool:
        if type(v) is not Attrs or not v.is_derivation():
            return False
        if "name" not in v.d:  # Nix reads the name first
            raise EvalError("derivation name missing")
        drv = force(v.d.get("drvPath"))
        if not isinstance(drv, str):
            raise EvalError("derivation has no 'drvPath' string attribute")
        output = force(v.d["outputName"]) if "outputName" in v.d else "out"
        out.append((str(drv), str(output)))
        return True

    def visit(v) -> None:
        v = auto_call(v, autoargs)
        if add_if_derivation(v):
            return
        if type(v) is Attrs:
            for name in sorted(v.d):
                x = force(v.d[name])
                if add_if_derivation(x) or type(x) is not Attrs:
                    continue
                recurse = x.d.get("recurseForDerivations")
                if recurse is not None and force(recurse) is True:
                    visit(x)
        elif type(v) is list:
            for item in v:
                visit(item)
        else:
            raise EvalError("expression does not evaluate to a derivation (or a set or list of "
                            "those)")
    visit(value)
    return out


def _format(state, value, args) -> str:
    from .. import printer
    from ..builtins.control import deep_force
    # Without --strict, Nix prints JSON and XML of what is evaluated already and fails (JSON)
    # or shows `<unevaluated />` (XML) for the rest.
    if args.strict:
        deep_force(value)
    if args.json:
        from ..builtins.json import to_json
        return to_json(state, value, set(), strict=args.strict)
    if args.xml:
        from ..builtins.xml import to_xml
        return to_xml(state, value, set(), location=not args.no_location,
                      strict=args.strict).rstrip("\n")
    return printer.print_value(value, strict=args.strict)


def _sources(args) -> list[tuple[str, str]]:
    """Return (kind, text-or-path) for each expression to evaluate."""
    if args.expr:
        return [("expr", f) for f in args.files] or [("expr", "")]
    if not args.files:
        for name in ("default.dtx", "default.nix"):
            if os.path.exists(name):
                return [("file", name)]
        return [("file", "default.nix")]
    return [("stdin", "") if f == "-" else ("file", f) for f in args.files]


def _parse_source(state, args, source):
    kind, arg = source
    if kind == "expr":
        return state.parse(arg, "«string»", os.getcwd())
    if kind == "stdin":
        return state.parse(sys.stdin.read(), "«stdin»", os.getcwd())
    return state.read_source(state.resolve_import_path(os.path.abspath(arg)))


def _eval_source(state, args, source):
    kind, arg = source
    if kind == "file":
        return state.eval_file(arg)
    return state.eval_node(_parse_source(state, args, source))


if __name__ == "__main__":
    sys.exit(main())
