"""What docs/differences.md marks *(tested)* stays true: each test here checks one statement,
quoting the page where the exact wording matters, so a change in dtx fails the test until the
page is updated too."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "differences.md").read_text(encoding="utf-8")


class Dtx:
    """Runs dtx commands in a scratch directory against a scratch store."""

    def __init__(self, tmp: Path):
        self.work = tmp / "work"
        self.work.mkdir()
        self.home = tmp / "home"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        self.env["DTX_HOME"] = str(self.home)

    def __call__(self, command: str, *args: str, env: dict | None = None,
                 stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", f"dtx.runtime.cli.{command}", *args],
                              cwd=self.work, env=env or self.env, capture_output=True,
                              text=True, timeout=300, input=stdin, check=False)

    def eval(self, expr: str) -> subprocess.CompletedProcess:
        return self("instantiate", "--eval", "--strict", "-E", expr)


@pytest.fixture
def dtx(tmp_path):
    d = Dtx(tmp_path)
    yield d
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], capture_output=True, check=False)


def _first_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, r.stdout
    return r.stderr.splitlines()[0]


@pytest.mark.parametrize("attr", ["__contentAddressed", "__impure"])
def test_ca_and_impure_derivations_are_refused(dtx, attr):
    message = f"error: '{attr}' derivations are not supported by dtx"
    assert f"`{message}`" in PAGE
    r = dtx("instantiate", "-E", f'derivation {{ name = "x"; builder = "b"; system = "s"; '
                                 f"{attr} = true; }}")
    assert _first_error(r) == message


@pytest.mark.parametrize("name", ["fetchGit", "fetchTree", "fetchTarball", "fetchurl"])
def test_fetchers_are_builtins(dtx, name):
    assert f"`{name}`" in PAGE or f"`builtins.{name}`" in PAGE
    assert dtx.eval(f"builtins ? {name}").stdout == "true\n"
    if name != "fetchurl":  # Nix binds the others at the top level too
        assert dtx.eval(f"builtins.isFunction {name}").stdout == "true\n"


def test_mercurial_and_hosted_inputs_are_refused(dtx):
    for expr, message in [
            ('fetchMercurial "https://example.org/r"',
             "error: 'fetchMercurial' is not supported by dtx"),
            ('builtins.fetchTree { type = "github"; owner = "o"; repo = "r"; }',
             "error: 'github' inputs are not supported by dtx")]:
        assert f"`{message}`" in PAGE
        assert _first_error(dtx.eval(expr)) == message


def test_fetch_tree_needs_no_experimental_feature(dtx):
    (dtx.work / "tree").mkdir()
    (dtx.work / "tree" / "f").write_text("f\n")
    expr = 'builtins.readFile "${builtins.fetchTree { type = "path"; path = ./tree; }}/f"'
    assert dtx.eval(expr).stdout == '"f\\n"\n'
    assert "**`fetchTree` needs no experimental feature**" in PAGE
    if shutil.which("nix-instantiate"):
        nix = subprocess.run(["nix-instantiate", "--eval", "-E", expr], cwd=dtx.work,
                             capture_output=True, text=True, timeout=60, check=False)
        assert "experimental Nix feature 'flakes' is disabled" in nix.stderr


def test_fetcher_cache_lives_with_the_store(dtx):
    from dtx.runtime.fetchcache import DEFAULT_TARBALL_TTL
    (dtx.work / "data.txt").write_text("data\n")
    r = dtx.eval(f'builtins.fetchurl "file://{dtx.work}/data.txt"')
    assert r.returncode == 0, r.stderr
    assert (dtx.home / "nix" / "var" / "nix" / "fetchers" / "cache-v1.sqlite").exists()
    assert "`$DTX_HOME/nix/var/nix/fetchers`" in PAGE
    assert DEFAULT_TARBALL_TTL == 3600 and "`DTX_TARBALL_TTL` (seconds,\n  default 3600)" in PAGE


def test_absolute_archive_members_are_refused(dtx):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("/top/f")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    (dtx.work / "abs.tar.gz").write_bytes(buf.getvalue())
    r = dtx.eval(f'fetchTarball "file://{dtx.work}/abs.tar.gz"')
    assert r.returncode == 1
    assert r.stderr.splitlines()[1] == ("error: failed to extract archive (refusing absolute "
                                        "path '/top/f' in the archive)")
    assert "**Archive members with absolute names are refused**" in PAGE


def test_no_flakes(dtx):
    assert dtx.eval("builtins ? getFlake").stdout == "false\n"


def test_builtins_are_nix_28s(dtx):
    """Every builtin of the installed Nix exists in dtx."""
    if shutil.which("nix-instantiate") is None:
        pytest.fail("nix-instantiate is missing: install the Debian package 'nix-bin'")
    names = "builtins.attrNames builtins"
    nix = subprocess.run(["nix-instantiate", "--eval", "--json", "-E", names],
                         capture_output=True, text=True, timeout=60, check=True)
    ours = dtx("instantiate", "--eval", "--strict", "--json", "-E", names)
    assert set(json.loads(nix.stdout)) - set(json.loads(ours.stdout)) == set()
    assert "Every builtin of Nix 2.8 exists in dtx *(tested" in PAGE


def test_no_option_flag(dtx):
    r = dtx("build", "--option", "substituters", "https://cache.nixos.org", "-E", "1")
    assert r.returncode == 2 and "unrecognized arguments: --option" in r.stderr


def test_no_chroot_is_ignored(dtx):
    """A `__noChroot` build still sees only its inputs: the host's /bin/sh is not there."""
    (dtx.work / "nc.nix").write_text(
        'derivation { name = "nc"; system = builtins.currentSystem; builder = "/bin/sh"; '
        'args = [ "-c" "echo hi > $out" ]; __noChroot = true; }\n')
    r = dtx("build", "--no-out-link", "nc.nix")
    assert r.returncode == 100
    assert "error: builder for '" in r.stderr and "/bin/sh" in r.stderr


def test_store_and_result_links_are_physical(dtx, tmp_path):
    """The store is under DTX_HOME (by default $XDG_DATA_HOME/dtx); `result` points there."""
    (dtx.work / "data.txt").write_text("some data\n")
    (dtx.work / "fetch.nix").write_text(
        'derivation {\n'
        '  name = "data.txt"; system = "builtin"; builder = "builtin:fetchurl";\n'
        '  url = "file://${toString ./data.txt}";\n'
        '  outputHashMode = "flat"; outputHashAlgo = "sha256";\n'
        '  outputHash = "sha256-WqA/lsd1NleRZvuhR5KWJsw6l5YOmUBXqdgCcac20Q8=";\n'
        '}\n')
    env = dict(dtx.env)
    del env["DTX_HOME"]
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    r = dtx("build", "fetch.nix", env=env)
    assert r.returncode == 0, r.stderr
    logical = r.stdout.strip()
    assert logical == "/nix/store/4njryya2z4qk14jm8djyi3414hcyilcc-data.txt"  # as Nix's
    physical = tmp_path / "xdg" / "dtx" / logical.lstrip("/")
    assert os.readlink(dtx.work / "result") == str(physical)
    assert physical.read_text() == "some data\n"
    assert not Path(logical).exists() or Path(logical).resolve() != physical
    assert "`result` links point at the physical path" in PAGE


def test_repl_says_what_it_does_not_do(dtx):
    r = dtx("repl", stdin=":s x\n:i x\n:u x\n:e x\n:lf x\n")
    for command in (":s", ":i", ":u", ":e", ":lf"):
        assert f"error: '{command}' (" in r.stderr
    assert r.stderr.count("is not supported by dtx") == 5


def test_build_takes_no_search_path_file(dtx):
    r = dtx("build", "--no-out-link", "<nixpkgs>", "-A", "emptyFile")
    assert r.returncode == 1 and "<nixpkgs>': No such file or directory" in r.stderr
    assert "`dtx-build '<nixpkgs>' -A x`" in PAGE


def test_package_names_are_debians(dtx):
    r = dtx.eval("(import <dtx> { }).redis.name")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('"redis-server-')
    assert f"`{json.loads(r.stdout)}`" in PAGE, "the page names another redis version"


def test_dtx_files_come_first(dtx):
    lib = dtx.work / "lib"
    lib.mkdir()
    (lib / "default.dtx").write_text('"dtx"')
    (lib / "default.nix").write_text('"nix"')
    assert dtx.eval("import ./lib").stdout == '"dtx"\n'


def test_nixpkgs_is_the_stdlib(dtx):
    assert dtx.eval("<nixpkgs> == <dtx>").stdout == "true\n"
    (dtx.work / "other").mkdir()
    r = dtx("instantiate", "--eval", "-I", f"nixpkgs={dtx.work / 'other'}", "-E",
            "<nixpkgs> == <dtx>")
    assert r.stdout == "false\n"
