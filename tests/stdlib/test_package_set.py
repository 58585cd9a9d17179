"""The package set `import <dtx> { … }` (stdlib/default.dtx) evaluated with dtx-instantiate:
arguments, overlays and the fixed point, `extend`, `callPackage` and `.override`, scopes,
`config.packageOverrides`, and the Debian packages merged in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

STDLIB = Path(__file__).resolve().parents[2] / "stdlib"


def test_import_with_no_arguments(store):
    assert store.eval("let p = import <dtx> { }; in [ (p ? stdenv) (p ? lib) (p ? fetchurl) "
                      "(p ? runCommand) (p ? writeText) (p ? symlinkJoin) (p ? buildEnv) "
                      "(p.lib.id 1) (p.pkgs ? stdenv) ]") == [True] * 7 + [1, True]
    assert store.eval("(import <nixpkgs> { }).lib.concatStringsSep \"-\" [ \"a\" \"b\" ]") \
        == "a-b"


def test_system_argument(store):
    assert store.eval('(import <dtx> { system = "aarch64-linux"; }).stdenv.hostPlatform.system') \
        == "aarch64-linux"
    assert store.eval('(import <dtx> { localSystem.system = "i686-linux"; }).system') \
        == "i686-linux"
    assert store.eval("(import <dtx> { }).system == builtins.currentSystem") is True


def test_overlays_apply_in_order_on_the_fixed_point(store):
    result = store.eval("""
      let
        pkgs = import <dtx> {
          overlays = [
            (final: prev: { greeting = "hello"; message = "${final.greeting}, world"; })
            (final: prev: { greeting = prev.greeting + " there"; })
          ];
        };
      in [ pkgs.greeting pkgs.message ]
    """)
    assert result == ["hello there", "hello there, world"]


def test_overlay_replaces_a_dependency_everywhere(store):
    result = store.eval("""
      let
        base = import <dtx> { overlays = [ (final: prev: {
          dep = final.writeText "dep" "one";
          app = final.runCommand "app" { } "cat ${final.dep} > $out";
        }) ]; };
        changed = base.extend (final: prev: { dep = final.writeText "dep" "two"; });
      in [ (base.app.drvPath == changed.app.drvPath) (changed ? extend)
           (builtins.length changed.overlays) ]
    """)
    assert result == [False, True, 2]


def test_call_package_and_override(store):
    store.write("hello-pkg.nix", """
      { runCommand, greeting ? "hello", lib }:
      runCommand "greeter" { inherit greeting; passthru.shout = lib.toUpper greeting; } ''
        echo $greeting > $out
      ''""")
    result = store.eval("""
      let
        pkgs = import <dtx> { };
        a = pkgs.callPackage ./hello-pkg.nix { };
        b = a.override { greeting = "bonjour"; };
        c = pkgs.callPackage ./hello-pkg.nix { greeting = "hola"; };
        d = b.override (old: { greeting = old.greeting + "!"; });
      in [ a.shout b.shout c.shout d.shout (a.drvPath != b.drvPath) (a ? overrideAttrs)
           (a.overrideAttrs (old: { name = "renamed"; })).name ]
    """)
    assert result == ["HELLO", "BONJOUR", "HOLA", "BONJOUR!", True, True, "renamed"]


def test_call_package_reports_missing_arguments(store):
    r = store.run("instantiate", "--eval", "-E",
                  "(import <dtx> { }).callPackage ({ noSuchPackage }: 1) { }")
    assert r.returncode != 0
    assert "noSuchPackage" in r.stderr


def test_scopes_and_callpackages(store):
    result = store.eval("""
      let
        pkgs = import <dtx> { };
        scope = pkgs.lib.makeScope pkgs.newScope (self: {
          base = "from scope";
          uses = self.callPackage ({ base, writeText }: writeText "x" base) { };
        });
        several = pkgs.callPackages ({ writeText }: {
          a = writeText "a" "a";
          b = writeText "b" "b";
        }) { };
      in [ scope.uses.name (several.a ? override) several.b.name
           (scope.overrideScope (final: prev: { base = "changed"; })).uses.drvAttrs.text ]
    """)
    assert result == ["x", True, "b", "changed"]


def test_config_package_overrides(store):
    result = store.eval("""
      let pkgs = import <dtx> {
        config = { packageOverrides = p: { extra = p.writeText "extra" "x"; }; allowUnfree = true; };
      };
      in [ pkgs.extra.name pkgs.config.allowUnfree ]
    """)
    assert result == ["extra", True]


def test_stdenv_shape(store):
    result = store.eval("""
      let pkgs = import <dtx> { }; in [
        (pkgs.lib.isDerivation pkgs.stdenv) (pkgs.stdenv.shell == pkgs.runtimeShell)
        pkgs.stdenv.hostPlatform.isLinux pkgs.stdenv.isLinux
        (builtins.isFunction pkgs.stdenv.mkDerivation)
      ]""")
    assert result == [True, True, True, True, True]


@pytest.mark.skipif(not (STDLIB / "packages" / "debian.dtx").exists(),
                    reason="stdlib/packages/debian.dtx is not there yet")
def test_debian_packages_are_merged(store):
    result = store.eval("""
      let pkgs = import <dtx> { }; in [
        (pkgs.lib.isDerivation pkgs.redis) (pkgs.redis.drvPath == pkgs.debianPackages.redis.drvPath)
        ((pkgs.extend (final: prev: { redis = "replaced"; })).redis)
      ]""")
    assert result == [True, True, "replaced"]


def test_placeholders_for_later_libraries(store):
    for name, folder in (("dockerTools", "docker"), ("vmTools", "vm")):
        r = store.run("instantiate", "--eval", "-E",
                      f"builtins.isAttrs (import <dtx> {{ }}).{name}")
        if (STDLIB / "build-support" / folder).exists():
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode != 0 and "not available yet" in r.stderr


DIFFERENTIAL = """
let pkgs = import %s { }; inherit (pkgs) lib; in [
  (pkgs.runCommand "rc" { a = 1; } "echo $a > $out")
  (pkgs.writeShellScriptBin "greet" "echo hi")
  (pkgs.writeReferencesToFile (pkgs.writeText "t" "t"))
  (pkgs.symlinkJoin { name = "j"; paths = [ (pkgs.writeTextDir "a" "a") ]; })
  (pkgs.buildEnv { name = "e"; paths = [ (lib.hiPrio (pkgs.writeTextDir "a" "a")) ]; })
  (pkgs.linkFarm "f" { x = pkgs.emptyFile; })
  (pkgs.fetchurl { url = "http://127.0.0.1/x.tar.gz"; sha256 = "%s"; })
  (pkgs.stdenv.mkDerivation { pname = "p"; version = "1"; outputs = [ "out" "dev" ];
     doCheck = true; buildInputs = [ null ]; passthru.x = 1; meta.y = 2; buildCommand = ""; })
]
"""


@pytest.mark.skipif(not shutil.which("nix-instantiate"), reason="Nix is not installed")
def test_same_derivations_as_nix(store):
    """Nix evaluates the stdlib to the same .drv paths (Nix reads the files by full name)."""
    expr = DIFFERENTIAL % (STDLIB / "default.dtx", "0" * 52)
    ours = store.run("instantiate", "-E", expr, check=True).stdout.split()
    theirs = subprocess.run(["nix-instantiate", "-E", expr], capture_output=True, text=True,
                            timeout=300, check=False)
    assert theirs.returncode == 0, theirs.stderr
    assert ours == theirs.stdout.split()
