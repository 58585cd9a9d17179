"""Real builds with `stdenv.mkDerivation` (stdlib/stdenv): the phases of stdenv/setup.sh, their
hooks and switches, sources from a directory and from a tarball, inputs on PATH, setup hooks,
outputs, and the Nix-side attributes (name, passthru, meta, overrideAttrs)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

PATCH = """--- a/greeting
+++ b/greeting
@@ -1 +1 @@
-hello
+hello, patched
"""

CASES = r"""
let
  pkgs = import <dtx> { };
  inherit (pkgs) stdenv lib;
  tool = pkgs.writeShellScriptBin "tool" "echo tool output";
in rec {
  phases = stdenv.mkDerivation {
    pname = "demo";
    version = "1.0";
    src = ./src;
    patches = [ ./fix.patch ];
    nativeBuildInputs = [ tool ];
    postUnpack = "echo postUnpack >> $NIX_BUILD_TOP/log";
    prePatch = "echo prePatch >> $NIX_BUILD_TOP/log";
    preConfigure = "echo preConfigure >> $NIX_BUILD_TOP/log";
    configurePhase = "runHook preConfigure; echo configure >> $NIX_BUILD_TOP/log; runHook postConfigure";
    buildPhase = ''
      runHook preBuild
      echo build >> $NIX_BUILD_TOP/log
      cat greeting > built
      tool > tool.txt
      runHook postBuild
    '';
    postBuild = "echo postBuild >> $NIX_BUILD_TOP/log";
    doCheck = true;
    checkPhase = "echo check >> $NIX_BUILD_TOP/log; grep -q patched built";
    preInstall = "echo preInstall >> $NIX_BUILD_TOP/log";
    installPhase = ''
      runHook preInstall
      mkdir -p $out/bin
      cp built tool.txt $out/
      printf '#!/bin/sh\necho script\n' > $out/bin/script
      chmod +x $out/bin/script
      runHook postInstall
    '';
    postInstall = "echo postInstall >> $NIX_BUILD_TOP/log";
    postFixup = "echo postFixup >> $NIX_BUILD_TOP/log; cp $NIX_BUILD_TOP/log $out/log";
  };

  switches = stdenv.mkDerivation {
    name = "switches";
    dontUnpack = true;
    dontBuild = true;
    buildPhase = "exit 1";
    checkPhase = "exit 1";  # doCheck is off by default
    installPhase = ''
      mkdir -p $out
      echo "$PWD" > $out/pwd
      substitute ${./template} $out/substituted --replace-fail OLD new --subst-var-by who tester
      cp ${./template} $out/in-place; chmod u+w $out/in-place
      substituteInPlace $out/in-place --replace-fail OLD newer
    '';
  };

  tarball = stdenv.mkDerivation {
    name = "from-tarball";
    src = ./pkg-1.0.tar.gz;
    installPhase = "mkdir $out; cp -r . $out/; echo $sourceRoot > $out/root";
  };

  hooked = stdenv.mkDerivation {
    name = "hooked";
    dontUnpack = true;
    setupHook = ./hook.sh;
    propagatedBuildInputs = [ tool ];
    installPhase = "mkdir -p $out";
  };
  usesHook = stdenv.mkDerivation {
    name = "uses-hook";
    dontUnpack = true;
    buildInputs = [ hooked ];
    installPhase = ''
      echo "$HOOKED_BY $(tool)" > $out
    '';
  };

  outputs = stdenv.mkDerivation {
    name = "outputs";
    outputs = [ "out" "dev" "doc" ];
    buildCommand = "mkdir -p $out $dev $doc; echo $prefix > $out/prefix; echo dev > $dev/d; echo doc > $doc/d";
  };

  custom = stdenv.mkDerivation {
    name = "custom-phases";
    dontUnpack = true;
    phases = [ "firstPhase" "installPhase" ];
    firstPhase = "echo first > $NIX_BUILD_TOP/first";
    installPhase = "mkdir $out; cp $NIX_BUILD_TOP/first $out/";
  };

  overridden = phases.overrideAttrs (old: {
    pname = "demo-overridden";
    postFixup = old.postFixup + "; echo overridden > $out/extra";
  });
}
"""

ATTRS = ["phases", "switches", "tarball", "usesHook", "outputs", "outputs.dev", "custom",
         "overridden"]


@pytest.fixture(scope="module")
def built(store):
    src = store.workdir / "src"
    src.mkdir(exist_ok=True)
    (src / "greeting").write_text("hello\n")
    store.write("fix.patch", PATCH)
    store.write("template", "OLD for @who@\n")
    store.write("hook.sh", "export HOOKED_BY=@out@\n")
    with tarfile.open(store.workdir / "pkg-1.0.tar.gz", "w:gz") as tar:
        data = b"from a tarball\n"
        info = tarfile.TarInfo("pkg-1.0/README")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    store.write("stdenv.nix", CASES)
    return store.build_attrs("stdenv.nix", ATTRS)


def read(store, path: str) -> str:
    return store.real(path).read_text()


def test_the_smallest_derivation(store):
    (out,) = store.build("-E", 'with import <dtx> { }; stdenv.mkDerivation '
                         '{ name = "x"; buildCommand = "echo hi > $out"; }')
    assert out.endswith("-x")
    assert read(store, out) == "hi\n"


def test_phases_and_hooks_run_in_order(store, built):
    out = built["phases"]
    assert out.endswith("-demo-1.0")
    assert read(store, out + "/log").split() == [
        "postUnpack", "prePatch", "preConfigure", "configure", "build", "postBuild", "check",
        "preInstall", "postInstall", "postFixup"]
    assert read(store, out + "/built") == "hello, patched\n"  # src directory, then patches
    assert read(store, out + "/tool.txt") == "tool output\n"  # nativeBuildInputs on PATH


def test_fixup_patches_shebangs(store, built):
    first = read(store, built["phases"] + "/bin/script").splitlines()[0]
    assert first.startswith("#!/nix/store/") and first.endswith("/bin/sh")


def test_switches_and_substitute(store, built):
    out = built["switches"]
    assert read(store, out + "/pwd") == "/build\n"  # dontUnpack: stays in the build dir
    assert read(store, out + "/substituted") == "new for tester\n"
    assert read(store, out + "/in-place") == "newer for @who@\n"


def test_tarball_source(store, built):
    out = built["tarball"]
    assert read(store, out + "/README") == "from a tarball\n"
    assert read(store, out + "/root") == "pkg-1.0\n"


def test_setup_hooks_and_propagation(store, built):
    hooked = store.eval("(import ./stdenv.nix).hooked.outPath")
    assert read(store, built["usesHook"]) == f"{hooked} tool output\n"
    assert read(store, hooked + "/nix-support/setup-hook") == f"export HOOKED_BY={hooked}\n"


def test_outputs(store, built):
    assert read(store, built["outputs"] + "/prefix") == built["outputs"] + "\n"
    assert read(store, built["outputs.dev"] + "/d") == "dev\n"
    names = store.eval("with (import ./stdenv.nix).outputs; [ outputName dev.outputName "
                       "doc.outputName (builtins.length all) ]")
    assert names == ["out", "dev", "doc", 3]


def test_custom_phases(store, built):
    assert read(store, built["custom"] + "/first") == "first\n"


def test_override_attrs(store, built):
    out = built["overridden"]
    assert out.endswith("-demo-overridden-1.0")
    assert read(store, out + "/extra") == "overridden\n"
    assert read(store, out + "/built") == "hello, patched\n"


def test_failing_phase_fails_the_build(store):
    r = store.run("build", "--no-out-link", "-E", 'with import <dtx> { }; stdenv.mkDerivation '
                  '{ name = "fails"; dontUnpack = true; buildPhase = "echo about to fail; false"; }')
    assert r.returncode != 0
    assert "about to fail" in r.stderr


def test_attributes(store):
    result = store.eval("""
      let
        pkgs = import <dtx> { };
        d = pkgs.stdenv.mkDerivation (finalAttrs: {
          pname = "thing";
          version = "2.0";
          passthru.greeting = "hi ${finalAttrs.pname}";
          meta.description = "a thing";
          buildCommand = "touch $out";
        });
        o = d.overrideAttrs (final: prev: { version = "3.0"; });
      in [ d.name d.greeting d.meta.description d.meta.outputsToInstall o.name o.greeting
           (builtins.hasAttr "passthru" d.drvAttrs) (builtins.hasAttr "meta" d.drvAttrs)
           (pkgs.lib.hasSuffix "/bin/bash" pkgs.stdenv.shell) d.drvAttrs.builder ]
    """)
    assert result[:6] == ["thing-2.0", "hi thing", "a thing", ["out"], "thing-3.0", "hi thing"]
    assert result[6:9] == [False, False, True]
    assert result[9].endswith("/bin/bash")


@pytest.mark.skipif(not (os.path.exists("/usr/bin/busybox") or os.path.exists("/bin/busybox")),
                    reason="the host has no busybox-static")
def test_host_stand_in_bootstrap_with_ash(store, built):
    """stdenv from the host's busybox alone (the fallback bootstrap): setup.sh runs under ash."""
    (out,) = store.build("-E", """
      let
        lib = import <dtx/lib>;
        host = import <dtx/stdenv/host-bootstrap.dtx> { };
        stdenv = import <dtx/stdenv/default.dtx> {
          inherit lib; inherit (host) busybox; bash = null; system = builtins.currentSystem;
        };
      in stdenv.mkDerivation {
        name = "on-ash";
        src = ./src;
        patches = [ ./fix.patch ];
        postPatch = "echo bash=$BASH_VERSION > shell";
        installPhase = "mkdir $out; cp greeting shell $out/";
      }""")
    assert read(store, out + "/greeting") == "hello, patched\n"
    assert read(store, out + "/shell") == "bash=\n"  # busybox ash, not bash
