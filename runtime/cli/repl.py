"""`dtx repl`: an interactive read-eval-print loop, like `nix repl` (Nix 2.8).

The REPL keeps a scope of its own on top of the builtins: `x = expr` binds a variable (lazily),
`:l FILE` and `:a EXPR` add the attributes of a set, `:r` starts over from the files loaded.
Each input is parsed as `«string»` in the current directory, resolved against that scope and
evaluated inside `run_deep` (deep stacks; Ctrl-C interrupts the evaluation and the REPL goes on).
Values print as nix repl prints them: one level deep (`{ ... }`, `[ ... ]` below), derivations as
`«derivation /nix/store/….drv»`, functions as `«lambda @ file:line:col»`; `:p` prints deeply.
An input that ends too early (`1 +`) continues on the next line.

Errors print as the other commands print them and never end the REPL. Tab completion (readline)
covers commands, variables in scope, builtins and attribute paths (`pkgs.re<TAB>` evaluates
`pkgs`); the history is kept in `$XDG_STATE_HOME/dtx/repl-history`
(`~/.local/state/dtx/repl-history` by default).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import traceback

from ...lang.errors import ParseError
from ...lang.resolve import Scope
from ..errors import AssertionFailed, EvalError
from ..eval import _interrupt, run_deep
from ..printer import format_float, quote_string
from ..values import (
    Attrs,
    CStr,
    Lambda,
    NixPath,
    PrimOp,
    PrimOpApp,
    Thunk,
    force,
    show_type,
)

VERSION = "0.1.0"
PROMPT = "dtx-repl> "
CONTINUATION = " " * len(PROMPT)

HELP = """\
The following commands are available:

  <expr>        Evaluate and print expression
  <x> = <expr>  Bind expression to variable
  :a <expr>     Add attributes from resulting set to scope
  :b <expr>     Build derivation
  :doc <expr>   Show documentation of a builtin function
  :l <path>     Load Nix expression and add it to scope
  :log <expr>   Show logs for a derivation
  :p <expr>     Evaluate and print expression recursively
  :q            Exit dtx repl
  :r            Reload all files
  :st [bool]    Enable, disable or toggle showing traces for errors
  :t <expr>     Describe result of evaluation
  :?            Show this help"""

COMMANDS = (":?", ":a", ":add", ":b", ":build", ":doc", ":help", ":l", ":load", ":log", ":p",
            ":print", ":q", ":quit", ":r", ":reload", ":st", ":showtrace", ":t", ":type")
# nix repl commands dtx does not offer, with the reason shown when they are used.
UNSUPPORTED = {
    ":e": "opening files in $EDITOR", ":edit": "opening files in $EDITOR",
    ":i": "installing into a profile", ":install": "installing into a profile",
    ":s": "nix-shell", ":shell": "nix-shell", ":u": "nix-shell",
    ":lf": "flakes", ":load-flake": "flakes",
}

_BINDING = re.compile(r"\A\s*([a-zA-Z_][a-zA-Z0-9_'-]*)\s*=(?!=)", re.DOTALL)
_VAR_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_'-]*\Z")
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit",
                       "or"})

_ANSI = {"int": "\x1b[36;1m", "str": "\x1b[35;1m", "path": "\x1b[32;1m", "fn": "\x1b[34;1m",
         "primop": "\x1b[35;1m", "error": "\x1b[31;1m"}
_NORMAL = "\x1b[0m"

DEEP = 1 << 30  # the depth `:p` prints to


class ReplExit(Exception):
    """Raised by `:q`."""


class Repl:
    """The REPL's state: the evaluator, the variables bound so far and the files loaded."""

    def __init__(self, state, files: list[str], autoargs: dict | None = None,
                 show_trace: bool = False, color: bool = False, jobs: int = 1,
                 debug: bool = False, out=None, err=None):
        self.state = state
        self.autoargs = autoargs or {}
        self.show_trace = show_trace
        self.color = color
        self.jobs = jobs
        self.debug = debug
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.loaded_files = list(files)
        self.variables: dict[str, object] = {}
        self._scope: tuple | None = None
        state.build_hook = self.realise  # import from derivation builds as :b does

    # -- the scope -------------------------------------------------------------------------------

    def add_variable(self, name: str, value) -> None:
        self.variables.pop(name, None)  # a rebinding moves to the end, like a new one
        self.variables[name] = value
        self._scope = None

    def scope(self) -> tuple[Scope, list]:
        """The static scope and the environment frame of the REPL's variables."""
        if self._scope is None:
            names = list(self.variables)
            static = Scope(self.state.base_scope, {n: i + 1 for i, n in enumerate(names)})
            env = [self.state.base_env, *self.variables.values()]
            self._scope = (static, env)
        return self._scope

    def names(self) -> list[str]:
        """Every name in scope: the REPL's variables and the global builtins."""
        return sorted(set(self.variables) | set(self.state.base_scope.names))

    def compile(self, text: str):
        """Parse and resolve `text` in the REPL's scope; return its code and environment."""
        node = self.state.parse(text, "«string»", os.getcwd())
        static, env = self.scope()
        return self.state.compile(node, static), env

    def evaluate(self, text: str):
        code, env = self.compile(text)
        return force(code(env))

    # -- files -----------------------------------------------------------------------------------

    def load_file(self, arg: str) -> None:
        """`:l`: evaluate a file (or `<name>`), call it if it is a function, add its attributes."""
        from .common import auto_call
        if arg in self.loaded_files:
            self.loaded_files.remove(arg)
        self.loaded_files.append(arg)
        if arg.startswith("<") and arg.endswith(">"):
            path = self.state.find_file(self.state.nix_path_value(), arg[1:-1])
        else:
            path = os.path.abspath(os.path.expanduser(arg))
        value = auto_call(self.state.eval_file(path), self.autoargs)
        self.add_attrs(value)

    def add_attrs(self, value) -> None:
        value = force(value)
        if type(value) is not Attrs:
            raise EvalError(f"value is {show_type(value)} while a set was expected")
        for name in sorted(value.d):
            self.add_variable(name, value.d[name])
        self.say(f"Added {len(value.d)} variables.")

    def reload(self) -> None:
        """`:r`: forget every binding and the import cache, then load the files again."""
        self.state.import_cache.clear()
        self.variables.clear()
        self._scope = None
        files, self.loaded_files = self.loaded_files, []
        for i, arg in enumerate(files):
            if i:
                self.say("")
            self.say(f"Loading '{arg}'...")
            self.load_file(arg)

    # -- output ----------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def paint(self, kind: str, text: str) -> str:
        return f"{_ANSI[kind]}{text}{_NORMAL}" if self.color else text

    def show(self, value, depth: int = 1) -> str:
        """Render a value as nix repl does, forcing it to `depth` levels."""
        out: list[str] = []
        self._show(value, depth, out, set())
        return "".join(out)

    def _show(self, v, depth: int, out: list, seen: set) -> None:
        v = force(v)
        t = type(v)
        if t is int:
            out.append(self.paint("int", str(v)))
        elif t is bool:
            out.append(self.paint("int", "true" if v else "false"))
        elif v is None:
            out.append(self.paint("int", "null"))
        elif t is str or t is CStr:
            out.append(self.paint("str", quote_string(v)))
        elif t is float:
            out.append(format_float(v))
        elif t is NixPath:
            out.append(self.paint("path", v.path))
        elif t is Attrs:
            seen.add(id(v))
            if v.is_derivation():
                drv = force(v.d["drvPath"]) if "drvPath" in v.d else "???"
                out.append(f"«derivation {drv}»")
            elif depth > 0:
                out.append("{ ")
                for name in sorted(v.d):
                    # As nix repl: keywords are not quoted (`{ if = 1; }`).
                    out.append(name if _VAR_NAME.match(name) else quote_string(name))
                    out.append(" = ")
                    self._show_item(v.d[name], depth, out, seen)
                    out.append("; ")
                out.append("}")
            else:
                out.append("{ ... }")
        elif t is list:
            seen.add(id(v))
            out.append("[ ")
            if depth > 0:
                for item in v:
                    self._show_item(item, depth, out, seen)
                    out.append(" ")
            else:
                out.append("... ")
            out.append("]")
        elif t is Lambda:
            span = v.node.span
            line, col = span.line_col()
            name = span.source.name
            where = f"{'(string)' if name == '«string»' else name}:{line}:{col}"
            out.append(self.paint("fn", f"«lambda @ {where}»"))
        elif t is PrimOp:
            out.append(self.paint("primop", "«primop»"))
        elif t is PrimOpApp:
            out.append(self.paint("fn", "«primop-app»"))
        else:
            out.append(self.paint("error", "«unknown»"))

    def _show_item(self, item, depth: int, out: list, seen: set) -> None:
        try:
            forced = force(item)
        except AssertionFailed as e:
            out.append(self.paint("error", f"«error: {e.render(self.show_trace)}»"))
            return
        if type(forced) in (Attrs, list) and id(forced) in seen:
            out.append("«repeated»")
            return
        self._show(forced, depth - 1, out, seen)

    @staticmethod
    def describe(v) -> str:
        """`:t`: the type of a value, in the words nix repl uses."""
        v = force(v)
        if type(v) is CStr and v.ctx:
            return "a string with context"
        if type(v) is PrimOp:
            return f"the built-in function '{v.name}'"
        if type(v) is PrimOpApp:
            return f"the partially applied built-in function '{v.op.name}'"
        return show_type(v)

    # -- commands --------------------------------------------------------------------------------

    def process(self, line: str) -> None:
        """Run one complete input: a command, a binding or an expression."""
        if line.startswith(":"):
            command, _, arg = line.partition(" ")
            command = command.strip()
            arg = arg.strip()
            self.command(command, arg)
            return
        m = _BINDING.match(line)
        if m and m.group(1) not in _KEYWORDS:
            code, env = self.compile(line[m.end():])
            self.add_variable(m.group(1), Thunk(code, env))
            return
        self.say(self.show(self.evaluate(line)))

    def command(self, command: str, arg: str) -> None:
        if command in (":?", ":help"):
            self.say(HELP)
        elif command in (":q", ":quit"):
            raise ReplExit()
        elif command in (":a", ":add"):
            self.add_attrs(self.evaluate(arg))
        elif command in (":l", ":load"):
            self.load_file(arg)
        elif command in (":r", ":reload"):
            self.reload()
        elif command in (":t", ":type"):
            self.say(self.describe(self.evaluate(arg)))
        elif command in (":p", ":print"):
            self.say(self.show(self.evaluate(arg), DEEP))
        elif command in (":b", ":build"):
            self.build(self.derivation_path(self.evaluate(arg)))
        elif command == ":log":
            self.show_log(self.derivation_path(self.evaluate(arg)))
        elif command == ":doc":
            self.doc(self.evaluate(arg))
        elif command in (":st", ":showtrace"):
            if arg in ("", "toggle"):
                self.show_trace = not self.show_trace
            elif arg in ("true", "false"):
                self.show_trace = arg == "true"
            else:
                raise EvalError(f"invalid value '{arg}' for ':st' (expected true or false)")
            self.say("showing error traces" if self.show_trace else "not showing error traces")
        elif command in UNSUPPORTED:
            raise EvalError(f"'{command}' ({UNSUPPORTED[command]}) is not supported by dtx")
        else:
            raise EvalError(f"unknown command '{command}'")

    def derivation_path(self, value) -> str:
        value = force(value)
        if type(value) is not Attrs or not value.is_derivation():
            raise EvalError("expression does not evaluate to a derivation, so I can't build it")
        drv = force(value.d["drvPath"]) if "drvPath" in value.d else None
        if not isinstance(drv, str):
            raise EvalError("expression did not evaluate to a valid derivation "
                            "(no 'drvPath' attribute)")
        return str(drv)

    def realise(self, drv_paths: list[str]) -> None:
        """Build derivations (and what they need), showing progress on the error stream; raise
        RealiseError if any fails."""
        from ..build import BuildOptions
        from ..scheduler import Progress, Scheduler
        opts = BuildOptions(cores=os.cpu_count() or 1)
        Scheduler(self.state.store, opts, jobs=self.jobs,
                  progress=Progress(stream=self.err)).realise(drv_paths)

    def build(self, drv_path: str) -> None:
        """`:b`: build a derivation (and what it needs) and show its outputs."""
        from ..scheduler import RealiseError
        try:
            self.realise([drv_path])
        except RealiseError as e:
            raise EvalError(e.message()) from None
        outputs = self.state.store.read_derivation(drv_path).outputs
        self.say("\nThis derivation produced the following outputs:")
        for name in sorted(outputs):
            self.say(f"  {name} -> {outputs[name].path}")

    def show_log(self, drv_path: str) -> None:
        from .store import read_log
        log = read_log(self.state.store, drv_path)
        if log is None:
            raise EvalError(f"build log of '{drv_path}' is not available")
        self.out.write(log.decode("utf-8", "replace"))
        self.out.flush()

    def doc(self, value) -> None:
        """`:doc`: a builtin's documentation, from its registration."""
        import textwrap
        value = force(value)
        op = value.op if type(value) is PrimOpApp else value
        if type(op) is not PrimOp or not op.doc:
            raise EvalError("value does not have documentation")
        first, _, rest = op.doc.partition("\n")
        m = re.match(r"`([^`]*)`:?\s*(.*)", first.strip())
        synopsis, lead = (m.group(1), m.group(2)) if m else (op.name, first.strip())
        body = (lead + "\n" + textwrap.dedent(rest)).strip("\n")
        self.say(f"Synopsis: {synopsis}\n")
        if body:
            self.say(textwrap.indent(body, "    "))

    # -- completion ------------------------------------------------------------------------------

    def completions(self, line: str, word: str) -> list[str]:
        """What `word` (the text before the cursor back to a delimiter) may complete to."""
        if line.lstrip() == word and word.startswith(":"):
            return [c for c in COMMANDS if c.startswith(word)]
        if line.lstrip().startswith((":l ", ":load ")):
            return _complete_file(word)
        if "/" in word:
            return _complete_file(word)
        dot = word.rfind(".")
        if dot == -1:
            return [n for n in self.names() if n.startswith(word)]
        expr, prefix = word[:dot], word[dot + 1:]
        try:
            value = run_deep(lambda: self.evaluate(expr))
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - completion never fails loudly
            return []
        if type(value) is not Attrs:
            return []
        return [f"{expr}.{n}" for n in sorted(value.d)
                if n.startswith(prefix) and _VAR_NAME.match(n)]

    # -- errors ----------------------------------------------------------------------------------

    def report(self, e: BaseException) -> None:
        from ..derivation import DerivationParseError
        from ..nar import NarError
        from ..store import StoreError
        from ..storepath import BadStorePath
        if isinstance(e, ParseError):
            text = str(e)
        elif isinstance(e, EvalError):
            text = e.render(show_trace=self.show_trace)
        elif isinstance(e, (StoreError, NarError, DerivationParseError, BadStorePath)):
            text = f"error: {e}"
        elif isinstance(e, KeyboardInterrupt):
            text = "error: interrupted by the user"
        else:
            text = f"error: internal error: {type(e).__name__}: {e}"
            if self.debug:
                text = "".join(traceback.format_exception(e)) + text
        print(text, file=self.err, flush=True)


def _complete_file(word: str) -> list[str]:
    expanded = os.path.expanduser(word)
    directory, base = os.path.split(expanded)
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return []
    head = word[: len(word) - len(base)]
    out = []
    for name in sorted(entries):
        if name.startswith(base) and (base.startswith(".") or not name.startswith(".")):
            full = os.path.join(directory or ".", name)
            out.append(head + name + ("/" if os.path.isdir(full) else ""))
    return out


def history_file() -> str:
    """Where the REPL keeps its history."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return os.path.join(state, "dtx", "repl-history")


class LineReader:
    """Reads input lines with readline (editing, completion, history) when it is available."""

    def __init__(self, repl: Repl):
        self.repl = repl
        self.history = history_file()
        try:
            import readline
        except ImportError:  # pragma: no cover - Python without readline
            self.readline = None
            return
        self.readline = readline
        self._matches: list[str] = []
        readline.set_completer_delims(" \t\n\"(){}[];=+*<>!&|,@?")
        readline.set_completer(self._complete)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
            # A second Tab lists the candidates even after the first one completed a part.
            readline.parse_and_bind("set show-all-if-unmodified on")
        try:
            os.makedirs(os.path.dirname(self.history), exist_ok=True)
            if os.path.exists(self.history):
                readline.read_history_file(self.history)
            else:
                open(self.history, "a").close()
        except OSError:
            pass
        readline.set_history_length(1000)

    def _complete(self, text: str, n: int):
        if n == 0:
            line = self.readline.get_line_buffer()[: self.readline.get_endidx()]
            try:
                self._matches = self.repl.completions(line, text)
            except Exception:  # noqa: BLE001 - completion never fails loudly
                self._matches = []
        return self._matches[n] if n < len(self._matches) else None

    def read(self, prompt: str) -> str:
        line = input(prompt)
        if self.readline is not None and line.strip():
            try:
                self.readline.append_history_file(1, self.history)
            except OSError:
                pass
        return line


def run_interruptibly(fn):
    """Run `fn` with `run_deep`, Ctrl-C interrupting the evaluation thread from a signal handler.

    The main thread is never interrupted while it waits for the evaluation: a KeyboardInterrupt
    raised inside `Thread.join` can leave the thread looking finished while it still runs
    (CPython), and the REPL would then go on beside a runaway evaluation."""
    holder: dict = {}

    def wrapped():
        holder["thread"] = threading.current_thread()
        if holder.get("interrupted"):
            raise KeyboardInterrupt
        value = fn()
        holder["finished"] = True
        return value

    def on_sigint(signum, frame):
        holder["interrupted"] = True
        thread = holder.get("thread")
        if thread is not None:
            _interrupt(thread)

    if threading.current_thread() is not threading.main_thread():
        return run_deep(fn)
    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        value = run_deep(wrapped)
    finally:
        signal.signal(signal.SIGINT, old)
    if not holder.get("finished"):
        raise KeyboardInterrupt  # the interrupt reached the thread after the evaluation failed
    return value


def main_loop(repl: Repl, reader: LineReader) -> int:
    buffer = ""
    while True:
        try:
            line = reader.read(PROMPT if not buffer else CONTINUATION)
        except EOFError:
            repl.say("")
            return 0
        except KeyboardInterrupt:
            # Ctrl-C at the prompt drops what was typed so far.
            repl.say("")
            buffer = ""
            continue
        buffer = f"{buffer}\n{line}" if buffer else line
        if not buffer.strip():
            buffer = ""
            continue
        try:
            run_interruptibly(lambda text=buffer: repl.process(text))
        except ReplExit:
            return 0
        except ParseError as e:
            if "unexpected end of file" in e.message and not buffer.startswith(":"):
                continue  # incomplete input: read another line
            repl.report(e)
        except BaseException as e:
            if isinstance(e, (SystemExit, GeneratorExit)):
                raise
            repl.report(e)
        buffer = ""
        repl.say("")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dtx repl",
        description="Evaluate Nix-language expressions interactively, like nix repl.")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="files (or <name>s) whose attributes are added to the scope")
    p.add_argument("--arg", nargs=2, action="append", default=[], metavar=("NAME", "EXPR"),
                   help="pass the value of EXPR as argument NAME to functions loaded")
    p.add_argument("--argstr", nargs=2, action="append", default=[], metavar=("NAME", "STRING"),
                   help="pass STRING as argument NAME to functions loaded")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="PATH",
                   help="add PATH (or prefix=PATH) to the search path")
    p.add_argument("-j", "--max-jobs", type=int, default=min(4, os.cpu_count() or 1),
                   metavar="N", help="number of builds :b runs at once")
    p.add_argument("--show-trace", action="store_true", help="show the evaluation trace on errors")
    p.add_argument("--no-color", action="store_true", help="do not colour values")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on internal errors")
    return p


def main(argv: list[str] | None = None) -> int:
    from .common import auto_args, make_evaluator
    args = build_parser().parse_args(argv)
    color = (not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
             and os.environ.get("TERM") != "dumb")
    state = make_evaluator(args)
    repl = Repl(state, [], show_trace=args.show_trace, color=color, jobs=args.max_jobs,
                debug=args.debug)
    try:
        repl.autoargs = run_deep(lambda: auto_args(state, args))
    except ParseError as e:
        repl.report(e)
        return 1
    reader = LineReader(repl)
    repl.say(f"Welcome to dtx {VERSION}. Type :? for help.\n")
    repl.loaded_files = list(args.files)
    if args.files:
        try:
            run_interruptibly(repl.reload)
        except BaseException as e:
            if isinstance(e, SystemExit):
                raise
            repl.report(e)
        repl.say("")
    return main_loop(repl, reader)


if __name__ == "__main__":
    sys.exit(main())
