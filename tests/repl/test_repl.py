"""`dtx repl`, driven through a pseudo-terminal with pexpect as a person would use it: values,
bindings, commands, errors, completion, history, Ctrl-C and Ctrl-D, loading files and building a
derivation; plus the printing rules checked in-process and the umbrella `dtx` command."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

PROMPT = "dtx-repl> "
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Session:
    """One REPL process on a pseudo-terminal; `run` sends a line and returns what it printed
    (colours removed, line ends normalised) up to the next prompt."""

    def __init__(self, tmp: Path, *args: str, home: Path | None = None):
        self.state = tmp / "state"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DTX_") or k == "DTX_DEBIAN_MIRROR"}
        env.update(DTX_HOME=str(home or tmp / "home"), XDG_STATE_HOME=str(self.state),
                   TERM="xterm", HOME=str(tmp))
        env.pop("NO_COLOR", None)
        self.child = pexpect.spawn(sys.executable, ["-m", "dtx.runtime.cli.repl", *args],
                                   cwd=str(tmp), env=env, encoding="utf-8", timeout=60,
                                   dimensions=(50, 200))
        self.banner = self.wait()

    @staticmethod
    def clean(text: str) -> str:
        return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")

    def wait(self, timeout: float = 60) -> str:
        self.child.expect_exact(PROMPT, timeout=timeout)
        return self.clean(self.child.before)

    def run(self, line: str, timeout: float = 60) -> str:
        """Send `line`; return the output without the echoed line and the blank line after."""
        self.child.sendline(line)
        out = self.wait(timeout)
        _echoed, _, rest = out.partition("\n")
        return rest.rstrip("\n")

    def raw(self, line: str, timeout: float = 60) -> str:
        """Send `line`; return the output without colours removed."""
        self.child.sendline(line)
        self.child.expect_exact(PROMPT, timeout=timeout)
        return self.child.before

    def close(self) -> int:
        self.child.sendeof()
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def repl(tmp_path):
    sessions = []

    def start(*args, **kw) -> Session:
        s = Session(tmp_path, *args, **kw)
        sessions.append(s)
        return s
    yield start
    for s in sessions:
        if s.child.isalive():
            s.child.terminate(force=True)


def test_evaluate_bind_type_print(repl):
    s = repl()
    assert "Welcome to dtx" in s.banner and "Type :? for help." in s.banner
    assert s.run("1 + 1") == "2"
    assert s.run("x = 20") == ""
    assert s.run("x + 1") == "21"
    assert s.run("y = x * 2") == ""
    assert s.run("x = 1") == ""  # rebinding: y keeps the x it was defined with
    assert s.run("[ x y ]") == "[ 1 40 ]"
    assert s.run('{ a = 1; b = [ 1 2 ]; c = { d = "e"; }; }') == "{ a = 1; b = [ ... ]; c = { ... }; }"
    assert s.run('{ c = { d = "e"; }; "a b" = null; }') == '{ "a b" = null; c = { ... }; }'
    assert s.run(':p { a = 1; b = [ 1 2 ]; c = { d = "e"; }; }') == \
        '{ a = 1; b = [ 1 2 ]; c = { d = "e"; }; }'
    assert s.run("let a = { b = 1; }; in [ a a ]") == "[ { ... } «repeated» ]"
    assert s.run(":t x") == "an integer"
    assert s.run(":t { }") == "a set"
    assert s.run(":t builtins.map") == "the built-in function 'map'"
    assert s.run(":t builtins.add 1") == "the partially applied built-in function 'add'"
    assert s.run(":t a: a") == "a function"
    assert s.run("builtins.map") == "«primop»"
    assert s.run("a: a") == "«lambda @ (string):1:1»"
    assert s.run('"a\\nb${"c"}"') == '"a\\nbc"'
    assert s.run("1.5 * 2") == "3"
    assert s.run("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 30000") == "30000"
    assert s.run("derivation { name = \"x\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }") \
        == "«derivation /nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv»"
    assert s.close() == 0


def test_colours_on_a_terminal(repl):
    s = repl()
    assert s.raw("42").strip().endswith("\x1b[36;1m42\x1b[0m")
    s.close()


def test_errors_do_not_end_the_repl(repl):
    s = repl()
    out = s.run("foo")
    assert out.startswith("error: undefined variable 'foo'")
    assert "at «string»:1:1:" in out and "1| foo" in out
    assert s.run('throw "boom"') == "error: boom"
    out = s.run("1 + \"a\"")
    assert out.startswith("error: cannot add a string to an integer")
    assert s.run("z = z + 1").startswith("error: undefined variable 'z'")
    assert s.run(":zz") == "error: unknown command ':zz'"
    assert s.run(":b 1") == "error: expression does not evaluate to a derivation, so I can't build it"
    assert s.run(":a 1") == "error: value is an integer while a set was expected"
    out = s.run("{ a = assert false; 1; b = 2; }")
    assert out.startswith("{ a = «error: error: assertion 'false' failed") and out.endswith("b = 2; }")
    assert s.run("2 + 2") == "4"
    assert s.close() == 0


def test_incomplete_input_continues(repl):
    s = repl()
    s.child.sendline("1 +")
    s.child.expect_exact(" " * len(PROMPT))
    assert s.run("2") == "3"
    s.child.sendline("{ a = 1;")
    s.child.expect_exact(" " * len(PROMPT))
    assert s.run("}") == "{ a = 1; }"
    s.close()


def test_commands(repl, tmp_path):
    (tmp_path / "f.nix").write_text('{ greeting ? "hi" }: { g = greeting; h = "there"; n = 1; }\n')
    s = repl()
    help_text = s.run(":?")
    for command in (":a", ":b", ":l", ":log", ":p", ":q", ":r", ":t", ":doc"):
        assert f"  {command} " in help_text
    assert s.run(":l ./f.nix") == "Added 3 variables."
    assert s.run("g + \" \" + h") == '"hi there"'
    assert s.run(":a { n = 2; m = 3; }") == "Added 2 variables."
    assert s.run("n + m") == "5"
    (tmp_path / "f.nix").write_text('{ g = "hello"; h = "world"; }\n')
    assert s.run(":r") == "Loading './f.nix'...\nAdded 2 variables."
    assert s.run("g") == '"hello"'
    assert s.run("m").startswith("error: undefined variable 'm'")  # :r starts over
    doc = s.run(":doc builtins.attrNames")
    assert doc.startswith("Synopsis: builtins.attrNames set")
    assert "sorted" in doc
    assert s.run(":doc x: x") == "error: value does not have documentation"
    assert s.run(":st") == "showing error traces"
    assert s.run(":st false") == "not showing error traces"
    assert s.run(":e x") == "error: ':e' (opening files in $EDITOR) is not supported by dtx"
    s.child.sendline(":q")
    s.child.expect(pexpect.EOF)
    s.child.close()
    assert s.child.exitstatus == 0


def test_files_on_the_command_line_and_search_path(repl, tmp_path):
    (tmp_path / "a.nix").write_text("{ a = 1; }")
    (tmp_path / "b.nix").write_text("{ b = 2; }")
    s = repl("a.nix", "b.nix")
    assert "Loading 'a.nix'...\nAdded 1 variables.\n\nLoading 'b.nix'...\nAdded 1 variables." \
        in s.banner
    assert s.run("a + b") == "3"
    assert s.run(":l <dtx/lib>").startswith("Added ")
    assert s.run("toUpper \"x\"") == '"X"'
    s.close()


def test_tab_completion(repl):
    s = repl()
    s.run("xs = { foo = 1; foobar = 2; other.inner = 3; }")
    s.child.send("buil\t")
    s.child.expect_exact("builtins")
    s.child.send(".attrNa\t")
    s.child.expect_exact("attrNames")
    assert s.run(" { q = 1; }") == '[ "q" ]'
    s.child.send("xs.foob\t")
    s.child.expect_exact("xs.foobar")
    assert s.run("") == "2"
    s.child.send("xs.other.in\t")
    s.child.expect_exact("xs.other.inner")
    assert s.run("") == "3"
    s.child.send(":ty\t")
    s.child.expect_exact(":type")
    assert s.run(" 1") == "an integer"
    # Two candidates: the second Tab lists them.
    s.child.send("xs.fo\t")
    time.sleep(0.3)
    s.child.send("\t")
    s.child.expect(r"xs\.foo\s+xs\.foobar")
    s.child.expect_exact(PROMPT)  # the line is drawn again under the list
    s.child.send("\x15")  # clear the line
    assert s.run("1") == "1"
    s.close()


def test_ctrl_c_cancels_evaluation_and_ctrl_d_exits(repl):
    s = repl()
    s.child.sendline("let f = n: if n == 0 then 0 else f (n - 1) + f (n - 1); in f 60")
    time.sleep(1.5)
    s.child.sendintr()
    out = s.wait()
    assert "error: interrupted by the user" in out
    assert s.run("6 * 7") == "42"
    # Ctrl-C at the prompt drops the line being typed.
    s.child.send("1 + ")
    # (Python's readline notices a signal only while it waits for input: a Ctrl-C arriving
    # while it handles the typed characters waits for the next key. People type slower.)
    s.child.expect_exact("1 + ")
    time.sleep(0.5)
    s.child.sendintr()
    s.wait()
    assert s.run("5") == "5"
    time.sleep(1)  # the interrupted evaluation's thread must not come back
    assert s.run("1") == "1"
    assert s.close() == 0


def test_history_is_written(repl, tmp_path):
    s = repl()
    s.run("histVar = 123")
    s.run("histVar")
    assert s.close() == 0
    history = tmp_path / "state" / "dtx" / "repl-history"
    lines = history.read_text().splitlines()
    assert lines[-2:] == ["histVar = 123", "histVar"]
    s2 = repl()
    s2.child.send("\x1b[A")  # up arrow: the previous session's last line
    s2.child.expect_exact("histVar")
    s2.child.send("\x15")
    s2.close()


def test_build_and_log(repl, tmp_path):
    """`:b` builds a derivation of the package set (the first build fetches the bootstrap
    tools) and shows its outputs; `:log` shows what the builder printed."""
    s = repl()
    assert s.run("pkgs = import <dtx> { }") == ""
    s.child.send("pkgs.writeShellApplicat\t")
    s.child.expect_exact("pkgs.writeShellApplication")
    s.child.send("\x15")
    s.run("")
    s.run('d = with pkgs; runCommand "x" { } "echo building-x; echo hi > $out"')
    out = s.run(":b d", timeout=600)
    m = re.search(r"This derivation produced the following outputs:\n  out -> (/nix/store/\S+-x)$",
                  out)
    assert m, out
    out_path = m.group(1)
    assert (tmp_path / "home" / out_path.lstrip("/")).read_text() == "hi\n"
    assert "building-x" in s.run(":log d")
    assert s.run("d.outPath") == f'"{out_path}"'
    # Built already: nothing to do, the same outputs.
    assert s.run(":b d").endswith(f"out -> {out_path}")
    assert s.close() == 0


def test_reads_a_pipe_without_a_terminal(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
    env.update(DTX_HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    r = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.main", "repl"],
                       input="x = 2\nx * 21\n:t x\n", env=env, capture_output=True,
                       text=True, timeout=60, cwd=tmp_path, check=False)
    assert r.returncode == 0
    assert "\x1b" not in r.stdout
    assert "42\n" in r.stdout and "an integer\n" in r.stdout


def test_umbrella_command(tmp_path):
    def dtx(*args):
        return subprocess.run([sys.executable, "-m", "dtx.runtime.cli.main", *args],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert dtx("instantiate", "--eval", "-E", "1 + 2").stdout == "3\n"
    assert dtx("hash", "--type", "sha256", "--to-base32",
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").stdout == \
        "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\n"
    r = dtx("--version")
    assert r.returncode == 0 and r.stdout.startswith("dtx ")
    for name in ("repl", "build", "instantiate", "store", "hash"):
        assert f"  {name} " in dtx("--help").stdout
    r = dtx("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


# -- printing, in-process ----------------------------------------------------------------------

def _repl():
    from argparse import Namespace

    from dtx.runtime.cli.common import make_evaluator
    from dtx.runtime.cli.repl import Repl
    from dtx.runtime.eval import run_deep
    state = make_evaluator(Namespace(include=[]), read_only=True)
    r = Repl(state, [], out=io.StringIO(), err=io.StringIO())
    return r, run_deep


@pytest.mark.parametrize("expr, shown", [
    ("null", "null"),
    ("true", "true"),
    ("-3", "-3"),
    ("0.1", "0.1"),
    ("/a/b", "/a/b"),
    ('"${"$"}{x}"', '"\\${x}"'),
    ("[ ]", "[ ]"),
    ("{ }", "{ }"),
    ("[ [ 1 ] { } ]", "[ [ ... ] { ... } ]"),
    ('{ "if" = 1; "a-b" = 2; "1x" = 3; }', '{ "1x" = 3; a-b = 2; if = 1; }'),
    ("builtins.add 1", "«primop-app»"),
])
def test_show(expr, shown):
    r, run_deep = _repl()
    assert run_deep(lambda: r.show(r.evaluate(expr))) == shown


def test_completions():
    r, _ = _repl()
    r.add_variable("myVar", 1)
    assert r.completions("myV", "myV") == ["myVar"]
    assert "builtins" in r.completions("buil", "buil")
    assert r.completions("builtins.attrNa", "builtins.attrNa") == ["builtins.attrNames"]
    assert r.completions(":l", ":l") == [":l", ":load", ":log"]
    assert r.completions("nope.x", "nope.x") == []
