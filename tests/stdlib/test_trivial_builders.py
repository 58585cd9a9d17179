"""Real builds of the trivial builders (stdlib/build-support/trivial-builders.dtx), buildEnv and
fetchurl, through dtx-build with the package set `import <dtx> { }`."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading

import pytest

CASES = r"""
let
  pkgs = import <dtx> { };
  inherit (pkgs) lib;
in rec {
  rc = pkgs.runCommand "rc" { who = "world"; } "echo hello $who > $out";
  rcLocal = pkgs.runCommandLocal "rc-local" { } "mkdir $out; echo local > $out/file";

  text = pkgs.writeText "motd" "line one\nline two\n";
  textDir = pkgs.writeTextDir "share/doc/readme" "read me";
  textFile = pkgs.writeTextFile {
    name = "tool";
    text = "#!${pkgs.runtimeShell}\necho tool ran\n";
    executable = true;
    destination = "/bin/tool";
    checkPhase = "echo checked > $out/checked";
  };

  script = pkgs.writeScript "script" "#!${pkgs.runtimeShell}\necho script says $1";
  scriptBin = pkgs.writeScriptBin "scriptbin" "#!${pkgs.runtimeShell}\necho scriptbin";
  shellScript = pkgs.writeShellScript "shell-script" "echo shell-script $# args";
  shellBin = pkgs.writeShellScriptBin "greet" ''
    echo "greetings, $1"
  '';
  app = pkgs.writeShellApplication {
    name = "app";
    runtimeInputs = [ shellBin ];
    text = "greet app";
  };
  ran = pkgs.runCommand "ran" { nativeBuildInputs = [ shellBin scriptBin textFile app ]; } ''
    ${script} one > $out
    ${shellScript} a b >> $out
    greet tester >> $out
    scriptbin >> $out
    tool >> $out
    app >> $out
  '';

  # A chain: top -> middle -> leaf, and top -> text.
  leaf = pkgs.writeText "leaf" "leaf";
  middle = pkgs.runCommand "middle" { } "echo ${leaf} > $out";
  top = pkgs.runCommand "top" { } "echo ${middle} ${text} > $out";
  refs = pkgs.writeReferencesToFile top;
  closure = pkgs.writeClosure [ middle text ];
  directRefs = pkgs.writeDirectReferencesToFile top;

  first = pkgs.runCommand "first" { } ''
    mkdir -p $out/bin $out/share/first; echo 1 > $out/bin/same; echo a > $out/share/first/a
  '';
  second = pkgs.runCommand "second" { } ''
    mkdir -p $out/bin $out/share/second; echo 2 > $out/bin/same; echo b > $out/share/second/b
    echo only > $out/bin/only-second
  '';
  joined = pkgs.symlinkJoin {
    name = "joined";
    paths = [ first second ];
    postBuild = "echo done > $out/post";
  };

  multi = pkgs.stdenv.mkDerivation {
    name = "multi";
    outputs = [ "out" "dev" ];
    buildCommand = ''
      mkdir -p $out/bin $dev/include
      echo prog > $out/bin/prog
      echo header > $dev/include/h.h
    '';
  };
  env = pkgs.buildEnv {
    name = "env";
    paths = [ first (lib.hiPrio second) multi ];
    pathsToLink = [ "/bin" "/include" ];
    extraOutputsToInstall = [ "dev" ];
  };
  envSame = pkgs.buildEnv {
    name = "env-same";
    paths = [ (pkgs.writeTextDir "etc/x" "same") (pkgs.writeTextDir "etc/x" "same\n") ];
    ignoreCollisions = true;
  };
  envIdentical = pkgs.buildEnv {
    name = "env-identical";
    paths = [ first (pkgs.runCommand "first-copy" { } "mkdir -p $out/bin; echo 1 > $out/bin/same") ];
  };

  farm = pkgs.linkFarm "farm" { "bin/greet" = "${shellBin}/bin/greet"; motd = text; };
  farmList = pkgs.linkFarm "farm-list" [ { name = "a/leaf"; path = leaf; } ];
  concat = pkgs.concatText "concat" [ leaf text ];
  hook = pkgs.makeSetupHook {
    name = "greeting-hook";
    substitutions = { greeting = "hi from hook"; };
  } (pkgs.writeText "hook.sh" "export HOOK_GREETING='@greeting@'");
  usesHook = pkgs.runCommand "uses-hook" { nativeBuildInputs = [ hook ]; } ''
    echo "$HOOK_GREETING" > $out
  '';
}
"""

ATTRS = ["rc", "rcLocal", "text", "textDir", "textFile", "script", "ran", "top", "refs",
         "closure", "directRefs", "joined", "env", "envSame", "envIdentical", "farm",
         "farmList", "concat", "usesHook", "middle", "leaf", "first", "second", "multi",
         "shellBin"]


@pytest.fixture(scope="module")
def built(store):
    store.write("trivial.nix", CASES)
    return store.build_attrs("trivial.nix", ATTRS)


def read(store, path: str) -> str:
    return store.real(path).read_text()


def test_run_command(store, built):
    assert read(store, built["rc"]) == "hello world\n"
    assert read(store, built["rcLocal"] + "/file") == "local\n"
    flags = store.eval('let d = (import <dtx> { }).runCommandLocal "x" { } ""; in '
                       '[ d.preferLocalBuild d.allowSubstitutes ]')
    assert flags == [True, False]


def test_write_text_and_text_dir(store, built):
    assert read(store, built["text"]) == "line one\nline two\n"
    assert os.access(store.real(built["text"]), os.X_OK) is False
    assert read(store, built["textDir"] + "/share/doc/readme") == "read me"


def test_write_text_file_destination_executable_check(store, built):
    tool = store.real(built["textFile"] + "/bin/tool")
    assert os.access(tool, os.X_OK)
    assert read(store, built["textFile"] + "/checked") == "checked\n"
    assert store.eval('((import <dtx> { }).writeShellScriptBin "greet" "").meta.mainProgram') \
        == "greet"


def test_scripts_run(store, built):
    assert os.access(store.real(built["script"]), os.X_OK)
    assert read(store, built["ran"]).splitlines() == [
        "script says one", "shell-script 2 args", "greetings, tester", "scriptbin",
        "tool ran", "greetings, app"]
    text = read(store, built["shellBin"] + "/bin/greet")
    assert text.startswith("#!/nix/store/") and "/bin/bash\n" in text.splitlines()[0] + "\n"


def test_write_shell_script_checks_syntax(store):
    store.write("bad-script.nix", 'let pkgs = import <dtx> { }; in '
                'pkgs.writeShellScript "bad" "if then fi"')
    r = store.run("build", "--no-out-link", "bad-script.nix")
    assert r.returncode != 0
    assert "syntax error" in r.stderr


def requisites(store, path: str) -> list[str]:
    r = store.run("store", "-q", "--requisites", path, check=True)
    return sorted(r.stdout.split())


def test_write_references_to_file_lists_the_closure(store, built):
    listed = read(store, built["refs"]).splitlines()
    assert listed == requisites(store, built["top"])
    assert listed == sorted([built["top"], built["middle"], built["leaf"], built["text"]])


def test_write_closure_of_several_paths(store, built):
    listed = read(store, built["closure"]).splitlines()
    assert listed == sorted(set(requisites(store, built["middle"]))
                            | set(requisites(store, built["text"])))


def test_write_direct_references(store, built):
    assert read(store, built["directRefs"]).splitlines() == sorted([built["middle"],
                                                                     built["text"]])


def test_symlink_join(store, built):
    out = store.real(built["joined"])
    assert os.readlink(out / "bin" / "same") == built["first"] + "/bin/same"  # first wins
    assert os.readlink(out / "bin" / "only-second") == built["second"] + "/bin/only-second"
    assert (out / "share").is_dir() and not (out / "share").is_symlink()
    assert sorted(os.listdir(out / "share")) == ["first", "second"]
    assert (out / "post").read_text() == "done\n"


def test_build_env(store, built):
    out = store.real(built["env"])
    assert sorted(os.listdir(out)) == ["bin", "include"]  # pathsToLink
    # `second` has the higher priority, so its `same` wins over `first`'s
    assert os.readlink(out / "bin" / "same") == built["second"] + "/bin/same"
    assert os.readlink(out / "bin" / "prog") == built["multi"] + "/bin/prog"
    dev = store.eval('(import ./trivial.nix).multi.dev.outPath')
    assert os.readlink(out / "include" / "h.h") == dev + "/include/h.h"  # extraOutputsToInstall


def test_build_env_collisions(store, built):
    # identical files do not collide; ignoreCollisions keeps the first
    assert os.readlink(store.real(built["envIdentical"]) / "bin" / "same") == \
        built["first"] + "/bin/same"
    target = os.readlink(store.real(built["envSame"]) / "etc" / "x")
    assert store.real(target).read_text() == "same"
    store.write("collide.nix", """
      let pkgs = import <dtx> { }; in pkgs.buildEnv {
        name = "collide";
        paths = [ (pkgs.writeTextDir "bin/x" "one") (pkgs.writeTextDir "bin/x" "two") ];
      }""")
    r = store.run("build", "--no-out-link", "collide.nix")
    assert r.returncode != 0
    assert "collision between" in r.stderr and "/bin/x" in r.stderr


def test_link_farm(store, built):
    out = store.real(built["farm"])
    assert os.readlink(out / "motd") == built["text"]
    assert os.readlink(out / "bin" / "greet") == built["shellBin"] + "/bin/greet"
    assert os.readlink(store.real(built["farmList"]) / "a" / "leaf") == built["leaf"]


def test_concat_text(store, built):
    assert read(store, built["concat"]) == "leafline one\nline two\n"


def test_make_setup_hook(store, built):
    assert read(store, built["usesHook"]) == "hi from hook\n"


# -- fetchurl ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    files = {"/hello.txt": b"hello, fetchurl\n", "/tool.sh": b"#!/bin/sh\necho tool\n"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sri_sha256(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_fetchurl_with_the_right_hash(store, server):
    base, files = server
    sri = sri_sha256(files["/hello.txt"])
    store.write("fetch-ok.nix", f"""
      let pkgs = import <dtx> {{ }}; in {{
        hex = pkgs.fetchurl {{ url = "{base}/hello.txt?x=1"; sha256 = "{sha256(files['/hello.txt'])}"; }};
        sri = pkgs.fetchurl {{ urls = [ "{base}/missing" "{base}/hello.txt" ]; hash = "{sri}"; name = "greeting"; }};
      }}""")
    out = store.build_attrs("fetch-ok.nix", ["hex", "sri"])
    assert out["hex"].endswith("-hello.txt")
    assert out["sri"].endswith("-greeting")
    for path in out.values():
        assert store.real(path).read_bytes() == files["/hello.txt"]


def test_fetchurl_executable(store, server):
    base, files = server
    store.write("fetch-exe.nix", f"""
      let pkgs = import <dtx> {{ }}; in pkgs.fetchurl {{
        url = "{base}/tool.sh"; executable = true; hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
      }}""")
    r = store.run("build", "--no-out-link", "fetch-exe.nix")
    # the recursive (NAR) hash is not known in advance: read it from the mismatch, then build
    got = r.stderr.split("got:")[1].split()[0]
    store.write("fetch-exe.nix", f"""
      let pkgs = import <dtx> {{ }}; in pkgs.fetchurl {{
        url = "{base}/tool.sh"; executable = true; hash = "{got}";
      }}""")
    (out,) = store.build("fetch-exe.nix")
    assert os.access(store.real(out), os.X_OK)
    assert store.real(out).read_bytes() == files["/tool.sh"]


def test_fetchurl_with_a_wrong_hash(store, server):
    base, files = server
    wrong = "0" * 64
    store.write("fetch-bad.nix", f"""
      let pkgs = import <dtx> {{ }}; in pkgs.fetchurl {{
        url = "{base}/hello.txt?wrong"; name = "wrong"; sha256 = "{wrong}";
      }}""")
    r = store.run("build", "--no-out-link", "fetch-bad.nix")
    assert r.returncode != 0
    assert "hash mismatch" in r.stderr
    assert "specified: sha256-AAAAAAAA" in r.stderr
    right = sri_sha256(files["/hello.txt"])
    assert "got:" in r.stderr and right in r.stderr.split("got:")[1]
