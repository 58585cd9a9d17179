"""Import from derivation: the builtins that read files (`import`, `scopedImport`, `readFile`,
`readDir`, `pathExists`, `hashFile`, `path`, `filterSource`, `findFile`) first build the
derivation outputs their argument's string context names, as Nix 2.8 does with
`allow-import-from-derivation` (its default); `--eval` builds nothing and says so in Nix's words.

The expressions need no standard library (a static busybox is the builders' toolbox), so real
Nix evaluates and builds the same files: values, drvPaths and error messages are compared with
`nix-instantiate` and `nix-build`. Every test runs as root and as an ordinary user."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

LIB = """
let bb = builtins.path { path = @BB@; name = "busybox"; }; in {
  # A derivation whose builder runs `script` with busybox's commands on PATH.
  mk = name: script: derivation {
    inherit name; system = "x86_64-linux"; builder = "${bb}/bin/sh";
    args = [ "-c" script ]; PATH = "${bb}/bin";
  };
  inherit bb;
}
"""

# Every reading builtin, each given a build output; `final` is a derivation whose build script
# was computed by reading an output whose own script was computed the same way (two levels).
GRAPH = """
let
  inherit (import ./lib.nix) mk bb;
  expr = mk "expr.nix" "echo '{ a = 1 + 2; s = \\"generated\\"; }' > $out";
  tree = mk "tree" "mkdir -p $out/sub; echo hello > $out/file; ln -s file $out/link";
  fn = mk "fn.nix" "echo 'x * 2' > $out";
  level1 = mk "level1" "echo -n level-one > $out";
  level2 = mk "level2" "echo -n ${builtins.readFile level1}-and-two > $out";
  withRef = mk "with-ref" "echo -n ${bb} > $out";
in rec {
  values = {
    imported = import expr;
    read = builtins.readFile "${tree}/file";
    dir = builtins.readDir tree;
    exists = builtins.pathExists "${tree}/file";
    absent = builtins.pathExists "${tree}/absent";
    hash = builtins.hashFile "sha256" "${tree}/file";
    scoped = scopedImport { x = 21; } fn;
    twoLevels = builtins.readFile level2;
    refs = builtins.getContext (builtins.readFile withRef);
    copied = builtins.path { path = tree; name = "copied"; };
    copiedWithRefs = builtins.path { path = withRef; name = "copied-ref"; };
    filtered = builtins.filterSource (p: t: baseNameOf p != "link") tree;
    found = builtins.readFile (builtins.findFile [ { prefix = "gen"; path = tree; } ] "gen/file");
  };
  final = builtins.deepSeq values (mk "final" "echo ${builtins.readFile level2} > $out");
}
"""


def nix(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run one of real Nix's commands (no binary cache: everything is built here)."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: install the Debian package 'nix-bin' (install.sh does)")
    return subprocess.run([tool, "--option", "substituters", "", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def write_files(write, graph: str) -> None:
    write("lib.nix", LIB)
    write("default.nix", graph)


@pytest.fixture(scope="module")
def nix_dir():
    """A directory with busybox and the library, for Nix to evaluate expressions in."""
    workdir = Path(tempfile.mkdtemp(prefix="dtx-ifd-nix-"))
    (workdir / "bb" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, workdir / "bb" / "bin" / "busybox")
    (workdir / "bb" / "bin" / "sh").symlink_to("busybox")

    def write(name: str, text: str) -> None:
        (workdir / name).write_text(text.replace("@BB@", str(workdir / "bb")))
    write_files(write, GRAPH)
    yield workdir, write
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def oracle(nix_dir):
    """What Nix gives for GRAPH: the values (as JSON) and the drvPath of `final`."""
    workdir, _ = nix_dir
    values = nix("nix-instantiate", "--read-write-mode", "--eval", "--strict", "--json",
                 "-A", "values", cwd=workdir)
    assert values.returncode == 0, values.stderr
    final = nix("nix-instantiate", "-A", "final", cwd=workdir)
    assert final.returncode == 0, final.stderr
    return json.loads(values.stdout), final.stdout.strip()


def test_reading_builtins_build_what_they_read_as_nix_does(dtx, oracle):
    nix_values, nix_final = oracle
    write_files(dtx.write, GRAPH)
    r = dtx.run("instantiate", "-A", "final", check=True)
    assert r.stdout.strip() == nix_final
    for name in ("expr.nix", "tree", "fn.nix", "level1", "level2", "with-ref"):
        assert f"-{name}.drv'..." in r.stderr, r.stderr
    # Now that the outputs exist, the read-only --eval reads them too.
    r = dtx.run("instantiate", "--eval", "--strict", "--json", "-A", "values", check=True)
    assert json.loads(r.stdout) == nix_values
    assert nix_values["imported"] == {"a": 3, "s": "generated"}
    assert nix_values["twoLevels"] == "level-one-and-two"


def test_dtx_build_builds_evaluation_inputs_once(dtx):
    write_files(dtx.write, GRAPH)
    first = dtx.run("build", "-A", "final", check=True)
    assert "level1.drv'..." in first.stderr and "final.drv'..." in first.stderr
    assert (dtx.workdir / "result").read_text() == "level-one-and-two\n"
    second = dtx.run("build", "-A", "final", check=True)
    assert "building" not in second.stderr
    assert second.stdout == first.stdout


def test_eval_builds_nothing_and_says_so_as_nix_does(dtx, nix_dir):
    """Nix's read-only --eval reports a derivation that is not written yet, then (once it is)
    an output it would have to build; a search-path entry says what it cannot find."""
    nonce = uuid.uuid4().hex
    graph = f"""
    let inherit (import ./lib.nix) mk; in rec {{
      gen = mk "gen.nix" "echo {nonce}; echo 7 > $out";
      imported = import gen;
      found = builtins.findFile [ {{ prefix = "g"; path = gen; }} ] "g";
    }}
    """
    nix_workdir, nix_write = nix_dir
    nix_write("eval.nix", graph)
    write_files(dtx.write, graph)

    def both(*args: str):
        """Run dtx-instantiate here and nix-instantiate on the same expression."""
        ours = dtx.run("instantiate", *args)
        theirs = nix("nix-instantiate", *args, "eval.nix", cwd=nix_workdir)
        return ours, theirs

    for attr in ("imported", "found"):
        ours, theirs = both("--eval", "-A", attr)
        assert ours.returncode == 1 and theirs.returncode == 1
        assert error_lines(ours.stderr)[0] == error_lines(theirs.stderr)[0]
        assert "is not valid" in ours.stderr and "Traceback" not in ours.stderr
    assert "cannot find '/nix/store/" in ours.stderr
    ours, theirs = both("-A", "gen")  # writes the .drv file
    assert ours.stdout == theirs.stdout
    ours, theirs = both("--eval", "-A", "imported")
    assert error_lines(ours.stderr)[0] == error_lines(theirs.stderr)[0]
    assert "no write access to the Nix store" in ours.stderr
    # Without --eval it builds what it reads, then finds a number, not a derivation.
    ours, theirs = both("-A", "imported")
    assert ours.returncode == theirs.returncode == 1
    assert error_lines(ours.stderr)[-1] == error_lines(theirs.stderr)[-1] == (
        "error: expression does not evaluate to a derivation (or a set or list of those)")
    assert dtx.run("instantiate", "--eval", "-A", "imported").stdout == "7\n"


def test_failing_build_during_evaluation(dtx, nix_dir):
    graph = """
    let inherit (import ./lib.nix) mk; in
    import (mk "bad.nix" "echo partial > note; echo oops; exit 3")
    """
    nix_workdir, nix_write = nix_dir
    nix_write("bad.nix", graph)
    theirs = nix("nix-build", "--no-out-link", "bad.nix", cwd=nix_workdir)
    write_files(dtx.write, graph)
    r = dtx.run("build", "--keep-failed")
    assert r.returncode == theirs.returncode == 100 and "Traceback" not in r.stderr
    first = error_lines(r.stderr)[0]
    # Nix leaves out the log lines it has just shown; dtx repeats the last ones.
    assert first.startswith(error_lines(theirs.stderr)[0])
    assert "-bad.nix.drv' failed with exit code 3" in first
    assert "> oops" in r.stderr
    kept = [line.split("'")[1] for line in r.stderr.splitlines()
            if "keeping build directory" in line]
    assert kept and (Path(kept[0]) / "note").read_text() == "partial\n"
    quiet = dtx.run("build", "--quiet")
    assert quiet.returncode == 100 and "building" not in quiet.stderr
    assert error_lines(quiet.stderr)[0] == first
    assert not (dtx.workdir / "result").exists()


def test_dry_run_still_builds_what_evaluation_reads(dtx, nix_dir):
    nonce = uuid.uuid4().hex
    graph = f"""
    let
      inherit (import ./lib.nix) mk;
      input = mk "dry-input" "echo -n {nonce} > $out";
    in mk "dry-final" "echo ${{builtins.readFile input}} > $out"
    """
    nix_workdir, nix_write = nix_dir
    nix_write("dry.nix", graph)
    theirs = nix("nix-build", "--dry-run", "dry.nix", cwd=nix_workdir)
    assert theirs.returncode == 0, theirs.stderr
    assert "dry-input.drv'..." in theirs.stderr and "dry-final.drv" in theirs.stderr
    write_files(dtx.write, graph)
    r = dtx.run("build", "--dry-run", check=True)
    assert "building '" in r.stderr and "dry-input.drv'..." in r.stderr
    assert "would be built" in r.stderr and "dry-final.drv" in r.stderr
    assert "dry-final.drv'..." not in r.stderr
    assert not (dtx.workdir / "result").exists()


def test_repl_builds_what_evaluation_reads(dtx):
    write_files(dtx.write, GRAPH)
    r = dtx.run("repl", input="(import ./default.nix).values.twoLevels\n")
    assert r.returncode == 0, r.stderr
    assert '"level-one-and-two"' in r.stdout
    assert "level1.drv'..." in r.stderr


# Signalling is the same whoever owns the build; run it in the root variant only.
@pytest.mark.parametrize("dtx", ["root"], indirect=True)
def test_interrupt_kills_a_build_during_evaluation(dtx):
    write_files(dtx.write, """
    let inherit (import ./lib.nix) mk; in
    import (mk "slow.nix" "busybox sleep 67; echo 1 > $out")
    """)
    r = dtx.interrupt_build("instantiate")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not any(dtx.builds_dir().iterdir()), "the scratch directory was left behind"
    leftover = subprocess.run(["pgrep", "-f", "busybox sleep 67"], capture_output=True)
    assert leftover.returncode == 1, "the builder outlived the interrupted evaluation"
