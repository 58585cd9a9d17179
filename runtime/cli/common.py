"""What the dtx commands share: the evaluation flags (`-A`, `--arg`, `--argstr`, `-I`, `-E`,
`--show-trace`), automatic calling of functions with defaulted arguments, attribute-path
selection, and error reporting (Nix-style `error: …` on stderr, exit code 1, a Python traceback
only with `--debug`)."""

from __future__ import annotations

import gc
import os
import sys
import traceback

from ...lang.errors import ParseError
from ..errors import BuildFailed, EvalError
from ..derivation import DerivationParseError
from ..eval import Evaluator, parse_search_path, run_deep
from ..nar import NarError
from ..store import StoreError
from ..storepath import BadStorePath
from ..values import Attrs, Lambda, Thunk, force, show_type


GC_THRESHOLD = 20_000  # allocations between young-generation collections


def add_eval_flags(p) -> None:
    p.add_argument("-E", "--expr", action="store_true",
                   help="interpret the arguments as expressions rather than files")
    p.add_argument("-A", "--attr", action="append", default=[], metavar="ATTRPATH",
                   help="select an attribute of the result (may be repeated)")
    p.add_argument("--arg", nargs=2, action="append", default=[], metavar=("NAME", "EXPR"),
                   help="pass the value of EXPR as argument NAME to the top-level function")
    p.add_argument("--argstr", nargs=2, action="append", default=[], metavar=("NAME", "STRING"),
                   help="pass STRING as argument NAME to the top-level function")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="PATH",
                   help="add PATH (or prefix=PATH) to the search path")
    p.add_argument("--show-trace", action="store_true", help="show the evaluation trace on errors")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on internal errors")


def make_evaluator(args, read_only: bool = False) -> Evaluator:
    """An evaluator with the search path of `-I` and a store (read-only: paths are computed,
    nothing is written, as `nix-instantiate --eval` does)."""
    from ..glue import attach_store
    from ..store import LocalStore
    # Evaluation allocates millions of short-lived thunks, environments and lists; with the
    # default threshold (700) the cyclic collector runs so often that it takes a third of the
    # time of a large evaluation. Collecting less often keeps cycles (recursive sets) bounded.
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    entries = []
    for item in args.include:
        entries += parse_search_path(item)
    state = Evaluator(search_path=entries)
    attach_store(state, LocalStore(store_dir=state.store_dir, read_only=read_only))
    return state


def auto_args(state: Evaluator, args) -> dict:
    """Return the `--arg` / `--argstr` values, keyed by name (values are thunks or strings)."""
    out: dict = {}
    for name, expr in args.arg:
        node = state.parse(expr, "«string»", os.getcwd())
        code = state.compile(node)
        out[name] = Thunk(code, state.base_env)
    for name, value in args.argstr:
        out[name] = value
    return out


def auto_call(value, autoargs: dict):
    """Call a function whose argument is a set pattern with the auto arguments, as Nix does;
    other values are returned unchanged."""
    from ..apply import call
    value = force(value)
    if type(value) is Attrs and "__functor" in value.d:
        functor = force(value.d["__functor"])
        inner = call(functor, value)
        if type(inner) is Lambda and inner.node.formals is not None:
            return call(inner, _pattern_args(inner, autoargs))
        return value
    if type(value) is not Lambda or value.node.formals is None:
        return value
    return call(value, _pattern_args(value, autoargs))


def _pattern_args(fn: Lambda, autoargs: dict) -> Attrs:
    node = fn.node
    if node.ellipsis:
        return Attrs(dict(autoargs))
    d = {}
    for formal in node.formals:
        if formal.name in autoargs:
            d[formal.name] = autoargs[formal.name]
        elif formal.default is None:
            raise EvalError("cannot auto-call a function that has an argument without a default "
                            f"value ('{formal.name}')")
    return Attrs(d)


def parse_attr_path(path: str) -> list[str]:
    """Split `a.b."c.d".0` into its elements."""
    out, cur, quoted, i = [], "", False, 0
    while i < len(path):
        c = path[i]
        if c == '"':
            quoted = not quoted
        elif c == "." and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if quoted:
        raise EvalError(f"missing closing quote in selection path '{path}'")
    out.append(cur)
    return out


def find_along_attr_path(value, path: str, autoargs: dict):
    """Select `path` (an `-A` argument) from `value`, auto-calling functions along the way."""
    v = auto_call(value, autoargs)
    if path == "":
        return v
    for elem in parse_attr_path(path):
        if elem == "":
            raise EvalError(f"empty attribute name in selection path '{path}'")
        if elem.isdigit():
            if type(v) is not list:
                raise EvalError(f"the expression selected by the selection path '{path}' should "
                                f"be a list but is {show_type(v)}")
            index = int(elem)
            if index >= len(v):
                raise EvalError(f"list index {index} in selection path '{path}' is out of range")
            v = force(v[index])
        else:
            if type(v) is not Attrs:
                raise EvalError(f"the expression selected by the selection path '{path}' should "
                                f"be a set but is {show_type(v)}")
            if elem not in v.d:
                raise EvalError(f"attribute '{elem}' in selection path '{path}' not found")
            v = force(v.d[elem])
        v = auto_call(v, autoargs)
    return v


def select_and_call(root, args, autoargs: dict) -> list:
    """Apply auto-calling (with `autoargs`, from `auto_args`) and each `-A` path to a root
    value; return the selected values."""
    paths = args.attr or [""]
    return [auto_call(find_along_attr_path(root, p, autoargs), autoargs) for p in paths]


def report_errors(fn, args) -> int:
    """Run `fn` with a deep stack; print errors as Nix does and return the exit code."""
    try:
        return run_deep(fn) or 0
    except ParseError as e:
        print(str(e), file=sys.stderr)
    except EvalError as e:
        print(e.render(show_trace=args.show_trace), file=sys.stderr)
        return e.exit_status if isinstance(e, BuildFailed) else 1
    except (StoreError, NarError, DerivationParseError, BadStorePath) as e:
        print(f"error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted by the user", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # a file the command itself writes or reads (`-o`, `--add-root`, …)
        print(f"error: {os_error_message(e)}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - anything else is a bug in dtx: say so, briefly
        if args.debug:
            traceback.print_exception(e)
        else:
            print(f"error: internal error: {type(e).__name__}: {e}\n"
                  "(run with --debug to see the Python traceback)", file=sys.stderr)
    return 1


def os_error_message(e: OSError) -> str:
    """An operating-system error as one line: what failed on which files, and why."""
    if e.filename is not None and e.filename2 is not None:
        return f"'{e.filename}' -> '{e.filename2}': {e.strerror}"
    if e.filename is not None:
        return f"'{e.filename}': {e.strerror}"
    return e.strerror or str(e)
