"""Real builds through dtx-build: sandboxing, scheduling, fixed-output fetches, references,
caching and garbage collection. Every test runs as root and as an ordinary user."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

PRELUDE = """
let
  bb = builtins.path { path = @BB@; name = "busybox"; };
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "${bb}/bin/sh";
    args = [ "-c" script ];
    PATH = "${bb}/bin";
  };
in
"""


def paths_of(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("/")]


def test_diamond_graph_builds_in_order(dtx):
    dtx.write("default.nix", PRELUDE + """
    let
      a = mk "a" "busybox mkdir $out; echo A > $out/a";
      b = mk "b" "busybox mkdir $out; busybox cat ${a}/a > $out/b; echo B >> $out/b";
      c = mk "c" "busybox mkdir $out; busybox cat ${a}/a > $out/c; echo C >> $out/c";
      d = mk "d" "busybox cat ${b}/b ${c}/c > $out";
    in d
    """)
    r = dtx.run("build", check=True)
    (out,) = paths_of(r)
    assert dtx.real(out).read_text() == "A\nB\nA\nC\n"
    link = dtx.workdir / "result"
    assert link.is_symlink() and Path(os.readlink(link)) == dtx.real(out)
    assert r.stderr.count("building '") == 4


def test_second_build_does_no_work(dtx):
    dtx.write("default.nix", PRELUDE + 'mk "once" "echo built > $out"')
    first = dtx.run("build", check=True)
    second = dtx.run("build", check=True)
    assert paths_of(first) == paths_of(second)
    assert "building" not in second.stderr


def test_failing_builder_reports_status_and_log(dtx):
    dtx.write("default.nix", PRELUDE + """
    mk "fails" "echo line one; echo line two >&2; exit 3"
    """)
    r = dtx.run("build")
    assert r.returncode == 100  # Nix's status for a failed build
    assert "failed with exit code 3" in r.stderr
    assert "> line one" in r.stderr and "> line two" in r.stderr
    assert not (dtx.workdir / "result").exists()


def test_dependents_of_a_failure_are_reported(dtx):
    dtx.write("default.nix", PRELUDE + """
    let bad = mk "bad" "exit 1"; in mk "top" "echo ${bad} > $out"
    """)
    r = dtx.run("build")
    assert r.returncode == 100
    assert "1 dependencies of derivation" in r.stderr and "top.drv" in r.stderr


def test_builder_has_no_network(dtx):
    server, port = _http_server({"/x": b"secret"})
    try:
        dtx.write("default.nix", PRELUDE + f"""
        mk "net" "busybox wget -T 3 -O $out http://127.0.0.1:{port}/x"
        """)
        r = dtx.run("build")
    finally:
        server.shutdown()
    assert r.returncode == 100
    assert "failed with exit code" in r.stderr


def test_builder_cannot_read_host_files(dtx):
    secret = dtx.workdir / "secret.txt"
    secret.write_text("host data")
    os.chmod(secret, 0o644)
    dtx.write("default.nix", PRELUDE + f"""
    mk "peek" "busybox cat {secret} > $out"
    """)
    r = dtx.run("build")
    assert r.returncode == 100
    assert "No such file or directory" in r.stderr


def test_sandbox_environment_is_nix_like(dtx):
    dtx.write("default.nix", PRELUDE + """
    mk "env" "busybox mkdir $out; busybox env | busybox sort > $out/env; busybox id -u > $out/uid; busybox hostname > $out/host; busybox pwd > $out/pwd"
    """)
    (out,) = paths_of(dtx.run("build", check=True))
    env = dict(line.split("=", 1) for line in (dtx.real(out) / "env").read_text().splitlines()
               if "=" in line)
    assert env["HOME"] == "/homeless-shelter"
    assert env["NIX_BUILD_TOP"] == env["TMPDIR"] == "/build"
    assert env["NIX_STORE"] == "/nix/store"
    assert env["out"] == out
    assert env["name"] == "env"
    assert (dtx.real(out) / "uid").read_text().strip() == "1000"
    assert (dtx.real(out) / "host").read_text().strip() == "localhost"
    assert (dtx.real(out) / "pwd").read_text().strip() == "/build"


def test_references_are_registered(dtx):
    dtx.write("default.nix", PRELUDE + """
    let dep = mk "dep" "echo dep > $out";
        nodep = mk "nodep" "echo nothing > $out";
    in mk "user" "echo ${dep} > $out; echo ${builtins.substring 0 5 "${nodep}"} >> $out"
    """)
    (out,) = paths_of(dtx.run("build", check=True))
    refs = dtx.run("store", "-q", "--references", out, check=True).stdout.split()
    assert len(refs) == 1 and refs[0].endswith("-dep")


def test_fixed_output_fetch_checks_the_hash(dtx):
    payload = b"hello from the test server\n"
    good = hashlib.sha256(payload).hexdigest()
    bad = hashlib.sha256(b"something else").hexdigest()
    server, port = _http_server({"/file.txt": payload})
    try:
        template = """derivation {{
          name = "file.txt"; system = "x86_64-linux"; builder = "builtin:fetchurl";
          url = "http://127.0.0.1:{port}/file.txt";
          outputHashAlgo = "sha256"; outputHash = "{h}"; outputHashMode = "flat";
        }}"""
        dtx.write("good.nix", template.format(port=port, h=good))
        dtx.write("bad.nix", template.format(port=port, h=bad))
        ok = dtx.run("build", "good.nix", "--no-out-link", check=True)
        wrong = dtx.run("build", "bad.nix", "--no-out-link")
    finally:
        server.shutdown()
    (out,) = paths_of(ok)
    assert dtx.real(out).read_bytes() == payload
    assert wrong.returncode == 102  # Nix's status for a hash mismatch
    assert "hash mismatch" in wrong.stderr
    assert "specified: sha256-" in wrong.stderr and "got:    sha256-" in wrong.stderr


def test_two_jobs_run_at_once(dtx):
    dtx.write("default.nix", PRELUDE + """
    let t = n: mk "t${n}" "busybox mkdir $out; busybox date +%s > $out/start; busybox sleep 2; busybox date +%s > $out/end";
    in [ (t "1") (t "2") ]
    """)
    r = dtx.run("build", "-j", "2", check=True)
    a, b = paths_of(r)
    sa, ea = (int((dtx.real(a) / f).read_text()) for f in ("start", "end"))
    sb, eb = (int((dtx.real(b) / f).read_text()) for f in ("start", "end"))
    assert sa < eb and sb < ea, "the two builds did not overlap"


def test_garbage_collection_keeps_roots(dtx):
    dtx.write("kept.nix", PRELUDE + 'mk "kept" "echo kept > $out"')
    dtx.write("dropped.nix", PRELUDE + 'mk "dropped" "echo dropped > $out"')
    (kept,) = paths_of(dtx.run("build", "kept.nix", check=True))
    (dropped,) = paths_of(dtx.run("build", "dropped.nix", "--no-out-link", check=True))
    dtx.run("store", "--gc", check=True)
    assert dtx.real(kept).exists()
    assert not dtx.real(dropped).exists()
    (dtx.workdir / "result").unlink()
    dtx.run("store", "--gc", check=True)
    assert not dtx.real(kept).exists()


def test_dry_run_builds_nothing(dtx):
    dtx.write("default.nix", PRELUDE + 'mk "dry" "echo x > $out"')
    r = dtx.run("build", "--dry-run", check=True)
    assert "would be built" in r.stderr and "dry.drv" in r.stderr
    assert not (dtx.workdir / "result").exists()


def _http_server(files: dict[str, bytes]):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_keep_failed_keeps_the_build_directory(dtx):
    dtx.write("default.nix", PRELUDE + """
    mk "kept" "echo partial > /build/note; exit 1"
    """)
    r = dtx.run("build", "--keep-failed")
    assert r.returncode == 100
    kept = [line.split("'")[1] for line in r.stderr.splitlines()
            if "keeping build directory" in line]
    assert kept, r.stderr
    assert (Path(kept[0]) / "note").read_text() == "partial\n"


def test_timeout_and_silence_limits_kill_the_builder(dtx):
    dtx.write("default.nix", PRELUDE + 'mk "slow" "busybox sleep 60; echo > $out"')
    r = dtx.run("build", "--timeout", "1")
    assert r.returncode == 101 and "timed out after 1 seconds" in r.stderr
    r = dtx.run("build", "--max-silent-time", "1")
    assert r.returncode == 101 and "was silent for more than 1 seconds" in r.stderr


def test_check_rebuilds_and_compares(dtx):
    dtx.write("same.nix", PRELUDE + 'mk "same" "echo fixed > $out"')
    dtx.write("random.nix", PRELUDE + """
    mk "random" "busybox head -c 16 /dev/urandom | busybox od -x > $out"
    """)
    dtx.run("build", "same.nix", check=True)
    assert dtx.run("build", "same.nix", "--check").returncode == 0
    dtx.run("build", "random.nix", check=True)
    r = dtx.run("build", "random.nix", "--check")
    assert r.returncode == 104 and "may not be deterministic" in r.stderr


# Signalling is the same whoever owns the build; run it in the root variant only.
@pytest.mark.parametrize("dtx", ["root"], indirect=True)
def test_interrupted_build_leaves_the_store_consistent(dtx):
    import subprocess
    dtx.write("default.nix", PRELUDE + 'mk "interrupted" "busybox sleep 60; echo > $out"')
    r = dtx.interrupt_build("build")
    assert r.returncode != 0
    assert not any(dtx.builds_dir().iterdir()), "the scratch directory was left behind"
    leftover = subprocess.run(["pgrep", "-f", "busybox sleep 60"], capture_output=True)
    assert leftover.returncode == 1, "the builder outlived the interrupted dtx-build"
    verify = dtx.run("store", "--verify", "--check-contents")
    assert verify.returncode == 0, verify.stderr
