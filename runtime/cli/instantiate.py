"""`dtx-instantiate`: evaluate expressions (and, with a store, instantiate derivations), with the
flags and output of `nix-instantiate`."""

from __future__ import annotations

import argparse
import os
import sys

from .common import add_eval_flags, make_evaluator, report_errors, select_and_call


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
    for root in eval_sources(state, args):
        for value in select_and_call(state, root, args):
            if args.eval:
                # nix-instantiate ends JSON output without a newline.
                print(_format(state, value, args), end="" if args.json else "\n")
                continue
            # As nix-instantiate does, an output other than `out` is named after a `!`.
            for drv_path, output in dict.fromkeys(derivation_outputs_of(value)):
                print(drv_path if output == "out" else f"{drv_path}!{output}")
    return 0


def eval_sources(state, args):
    """Evaluate each file or expression the command line names; yield the values."""
    for source in _sources(args):
        yield _eval_source(state, args, source)


def derivation_outputs_of(value) -> list[tuple[str, str]]:
    """The (drv path, output name) pairs a value denotes, as nix-instantiate and nix-build find
    them: a derivation; the derivations among a set's attributes (recursing where
    `recurseForDerivations` is true) or a list's elements."""
    from ..errors import EvalError
    from ..values import Attrs, force

    out: list[tuple[str, str]] = []

    def visit(v, top: bool) -> None:
        v = force(v)
        if type(v) is Attrs:
            if v.is_derivation():
                drv = force(v.d.get("drvPath"))
                if not isinstance(drv, str):
                    raise EvalError("derivation has no 'drvPath' string attribute")
                output = force(v.d["outputName"]) if "outputName" in v.d else "out"
                out.append((str(drv), str(output)))
                return
            recurse = "recurseForDerivations" in v.d and force(v.d["recurseForDerivations"])
            if top or recurse is True:
                for name in sorted(v.d):
                    visit(v.d[name], False)
        elif type(v) is list and top:
            for item in v:
                visit(item, False)
    visit(value, True)
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
