"""dockerTools' helpers as values: what evaluates, what throws and when (no builds, no podman)."""

from __future__ import annotations

import os
import subprocess
import sys


def _eval(tmp_path, expr: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
    env["DTX_HOME"] = str(tmp_path / "home")
    program = f"let dt = (import <dtx> {{ }}).dockerTools; in {expr}"
    return subprocess.run([sys.executable, "-m", "dtx.runtime.cli.instantiate", "--eval",
                           "--strict", "--expr", program],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_the_seed_api_is_there(tmp_path):
    names = ["buildImage", "buildLayeredImage", "streamLayeredImage", "mergeImages",
             "pullImage", "exportImage", "shadowSetup", "mergeDrvs", "mkTarball",
             "mkPureLayer", "mkRootLayer", "runWithOverlay", "shellScript", "binSh",
             "mergeTarballs",
             "usrBinEnv", "fakeNss", "caCertificates"]
    quoted = " ".join(f'"{n}"' for n in names)
    expr = f"builtins.all (n: builtins.hasAttr n dt) [ {quoted} ]"
    result = _eval(tmp_path, expr)
    assert result.stdout.strip() == "true", result.stderr


def test_vm_helpers_are_lazy_functions(tmp_path):
    # mkRootLayer and runWithOverlay run in the VM (run-as-root.dtx); naming them, or the
    # derivation's name, needs no VM.
    expr = ('[ (builtins.isFunction dt.mkRootLayer) (builtins.isFunction dt.runWithOverlay) '
            '(builtins.isFunction dt.exportImage) ]')
    assert _eval(tmp_path, expr).stdout.split() == ["[", "true", "true", "true", "]"]


def test_helper_derivations_are_named_as_in_nixpkgs(tmp_path):
    expr = ('let p = (import <dtx> { }).writeText "x" "x"; in map (d: d.name) [ '
            '(dt.mkTarball { contents = p; }) (dt.mkTarball { name = "z"; contents = p; '
            'compressor = "gz"; }) (dt.mkPureLayer { name = "l"; contents = p; }) '
            '(dt.mergeDrvs { derivations = [ p ]; }) (dt.mergeImages [ ]) '
            '(dt.shellScript "s" "true") ]')
    result = _eval(tmp_path, expr)
    assert result.stdout.split() == ['[', '"docker-tar.tar"', '"z.tar.gz"',
                                     '"docker-layer-l"', '"merge-drvs"',
                                     '"merge-docker-images"', '"s"', ']'], result.stderr


def test_merge_images_takes_a_stream_script_itself(tmp_path):
    # The builder reads the script's plan (no archive of it is stored).
    expr = ('let s = dt.streamLayeredImage { name = "s"; tag = null; }; '
            'm = dt.mergeImages [ s ]; in '
            '[ (m.images == [ s.outPath ]) (s ? image) s.name s.imageName '
            '(s.imageTag == builtins.substring 11 32 s.outPath) ]')
    result = _eval(tmp_path, expr)
    assert result.stdout.split() == ["[", "true", "false", '"stream-s"', '"s"', "true", "]"], \
        result.stderr


def test_merge_tarballs_unpacks_in_order_and_repacks_reproducibly(tmp_path):
    import gzip
    import io
    import tarfile
    expr = """
    let pkgs = import <dtx> { }; dt = pkgs.dockerTools;
        a = pkgs.runCommand "a" { } "mkdir -p $out/etc; echo first > $out/etc/f; echo a > $out/a";
        b = pkgs.runCommand "b" { } "mkdir -p $out/etc; echo second > $out/etc/f; echo b > $out/b";
    in dt.mergeTarballs [ (dt.mkTarball { contents = a; }) (dt.mkTarball { contents = b; }) ]
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
    env["DTX_HOME"] = str(tmp_path / "home")
    build = [sys.executable, "-m", "dtx.runtime.cli.build", "--no-out-link", "-Q", "-E", expr]
    first = subprocess.run(build, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    out = first.stdout.split()[-1]
    data = (tmp_path / "home" / out.lstrip("/")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        files = {m.name.lstrip("./"): m for m in tar.getmembers()}
        assert {"a", "b", "etc/f"} <= set(files)
        assert tar.extractfile(files["etc/f"]).read() == b"first\n"  # the first tarball wins
    again = subprocess.run(build + ["--check"], capture_output=True, text=True, env=env,
                           timeout=600)
    assert again.returncode == 0, again.stderr  # the same inputs give the same bytes
