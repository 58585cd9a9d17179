"""Images built by dockerTools, checked with the tools that consume them: skopeo, umoci, podman."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, Builder

IMAGES = r"""
let
  pkgs = import <dtx> { };
  inherit (pkgs) dockerTools;
  bb = builtins.path { path = @BB@; name = "busybox-standin"; };
  # A program in its own store path, run by the busybox shell (a reference to bb).
  script = name: text: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/bin/sh";
    args = [ "-c" ''
      ${bb}/bin/busybox mkdir -p $out/bin
      printf '#!${bb}/bin/sh\n%s\n' ${pkgs.lib.escapeShellArg text} > $out/bin/${name}
      ${bb}/bin/busybox chmod +x $out/bin/${name}
    '' ];
  };
  hello = script "hello" ''echo "hello from $GREETING in $(pwd)"'';
  second = script "second" ''echo "second says $A and $B"'';
in rec {
  base = dockerTools.buildImage {
    name = "dtx-test/base";
    tag = "v1";
    copyToRoot = [ bb hello ];
    config = {
      Cmd = [ "/bin/hello" ];
      Env = [ "GREETING=dtx" "A=base" ];
      WorkingDir = "/work";
      Volumes = { "/work" = { }; };
      Labels = { "org.example.kind" = "test"; };
    };
  };
  plain = dockerTools.buildImage {
    name = "dtx-test/plain";
    copyToRoot = [ bb hello ];
    compressor = "none";
    config.Cmd = [ "/bin/hello" ];
  };
  oci = dockerTools.buildImage {
    name = "dtx-test/oci";
    tag = "v2";
    copyToRoot = [ bb hello ];
    format = "oci";
    config = { Cmd = [ "/bin/hello" ]; Env = [ "GREETING=oci" ]; };
  };
  onTop = dockerTools.buildImage {
    name = "dtx-test/on-top";
    fromImage = base;
    copyToRoot = [ bb second ];
    compressor = "none";
    config = { Cmd = [ "/bin/second" ]; Env = [ "B=top" ]; };
  };
  extra = dockerTools.buildImage {
    name = "dtx-test/extra";
    tag = null;
    copyToRoot = bb;
    compressor = "none";
    extraCommands = ''
      mkdir -m 1777 tmp
      mkdir -p etc
      echo made-by-extra > etc/marker
      ln -s ${hello}/bin/hello bin/hello-link
      rm bin/sh && ln -s busybox bin/sh
    '';
    config.Cmd = [ "/bin/sh" "-c" "cat /etc/marker; ls -ld /tmp; /bin/hello-link" ];
  };
  hostile = dockerTools.buildImage {
    name = "dtx-test/on-hostile";
    fromImage = ./hostile.tar;
    copyToRoot = [ bb ];
    compressor = "none";
    config.Cmd = [ "/bin/sh" "-c" "cat /good.txt; ls /" ];
  };
  streamArgs = {
    name = "dtx-test/Stream";
    contents = [ dockerTools.binSh dockerTools.usrBinEnv dockerTools.fakeNss ];
    config.Cmd = [ "/bin/sh" "-c" "read -r line < /etc/passwd; echo $line; /usr/bin/env true && echo env-ok" ];
  };
  stream = dockerTools.streamLayeredImage streamArgs;
  streamTwin = dockerTools.buildLayeredImage (streamArgs // { compressor = "none"; });
  # Stream scripts on base images, each beside the buildLayeredImage it must equal.
  onArgs = {
    name = "dtx-test/stream-on";
    contents = [ bb second ];
    config.Cmd = [ "/bin/second" ];
  };
  streamOn = args: dockerTools.streamLayeredImage (onArgs // args);
  layeredOn = args: dockerTools.buildLayeredImage (onArgs // args // { compressor = "none"; });
  bases = {
    gzipArchive = { fromImage = base; };
    plainArchive = { fromImage = plain; };
    ociLayout = { fromImage = oci; fromImageTag = "v2"; };
    unsafeEntries = { fromImage = ./hostile.tar; };
    gzipLayer = { fromImage = ./gzip-layer.tar; };
    gzipLayerInGzip = { fromImage = ./gzip-layer.tar.gz; };
  };
  streamOnBases = builtins.mapAttrs (_: streamOn) bases;
  layeredOnBases = builtins.mapAttrs (_: layeredOn) bases;
  layered = dockerTools.buildLayeredImage {
    name = "dtx-test/layered";
    contents = [ bb hello ];
    compressor = "none";
    config.Cmd = [ "/bin/hello" ];
  };
  # An OCI layout as the base, with a layer of its own.
  onOci = dockerTools.buildImage {
    name = "dtx-test/on-oci";
    fromImage = oci;
    fromImageTag = "v2";
    copyToRoot = [ bb second ];
    compressor = "none";
    config = { Cmd = [ "/bin/second" ]; Env = [ "A=oci-top" ]; };
  };
  merged = dockerTools.mergeImages [ base layered stream onTop ];
  tarball = dockerTools.mkTarball { name = "hello-tar"; contents = hello; };
  tarballDeps = dockerTools.mkTarball { name = "hello-deps"; contents = hello; onlyDeps = true; };
  pureLayer = dockerTools.mkPureLayer {
    name = "pure";
    baseJson = builtins.toFile "base.json" (builtins.toJSON { os = "linux"; });
    copyToRoot = [ hello ];
    extraCommands = "mkdir -p etc && echo pure > etc/pure";
    uid = 1000;
    gid = 100;
  };
  mergedDrvs = dockerTools.mergeDrvs { derivations = [ hello second ]; };
  mergedDeps = dockerTools.mergeDrvs { derivations = [ hello second ]; onlyDeps = true; };
  script = dockerTools.shellScript "greet" "echo greet-$((1 + 2))";
}
"""


def _images(builder: Builder) -> Path:
    return builder.write("images.dtx", IMAGES)


def _plain_archive(path: Path, workdir: Path) -> Path:
    """An uncompressed copy of a docker-archive (podman 4.3 and skopeo 1.9 want it plain)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if not gz:
        return path
    plain = workdir / (path.name + ".plain.tar")
    with gzip.open(path) as src, open(plain, "wb") as out:
        shutil.copyfileobj(src, out)
    return plain


def _archive_docs(path: Path) -> tuple[list, dict, tarfile.TarFile]:
    tar = tarfile.open(path)
    manifest = json.load(tar.extractfile("manifest.json"))
    config = json.load(tar.extractfile(manifest[0]["Config"]))
    return manifest, config, tar


def _layer_names(tar: tarfile.TarFile, member: str) -> list[str]:
    with tarfile.open(fileobj=tar.extractfile(member)) as layer:
        return layer.getnames()


def _store_names(names: list[str]) -> set[str]:
    return {n.split("/")[2] for n in names if n.startswith("nix/store/") and n.count("/") >= 2}


def test_docker_archive_config_and_run(builder, podman, workdir):
    image = builder.out(_images(builder), "base")
    assert image.name.endswith("-docker-image-base.tar.gz")
    plain = _plain_archive(image, workdir)
    info = json.loads(subprocess.run(["skopeo", "inspect", "--config",
                                      f"docker-archive:{plain}"], check=True,
                                     capture_output=True, text=True).stdout)
    cfg = info["config"]
    assert cfg["Cmd"] == ["/bin/hello"]
    assert cfg["Env"] == ["GREETING=dtx", "A=base"]
    assert cfg["WorkingDir"] == "/work"
    assert cfg["Volumes"] == {"/work": {}}
    assert cfg["Labels"] == {"org.example.kind": "test"}
    assert info["created"] == "1970-01-01T00:00:01Z"
    assert info["architecture"] == "amd64" and info["os"] == "linux"
    manifest, config, tar = _archive_docs(plain)
    assert manifest[0]["RepoTags"] == ["dtx-test/base:v1"]
    assert json.load(tar.extractfile("repositories")) == {
        "dtx-test/base": {"v1": manifest[0]["Layers"][-1].split("/")[0]}}
    for member in tar.getmembers():
        assert (member.uid, member.gid, member.mtime) == (0, 0, 1)
    names = _layer_names(tar, manifest[0]["Layers"][0])
    assert names == sorted(names)
    assert "bin/hello" in names and "bin/busybox" in names

    assert "dtx-test/base:v1" in podman.load(plain)
    run = podman.run("dtx-test/base:v1")
    assert run.stdout.strip() == "hello from dtx in /work"


def test_uncompressed_archive_loads_directly(builder, podman):
    image = builder.out(_images(builder), "plain")
    assert image.name.endswith(".tar")
    podman.load(image)
    assert podman.run("dtx-test/plain:latest").stdout.strip() == "hello from  in /"


def test_oci_layout_with_skopeo_and_umoci(builder, tools, workdir):
    layout = builder.out(_images(builder), "oci")
    assert (layout / "oci-layout").is_file()
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v2"
    info = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:v2"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["config"]["Env"] == ["GREETING=oci"]
    # umoci wants a writable layout; unpack a copy.
    copy = workdir / "layout"
    shutil.copytree(layout, copy)
    subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)
    bundle = workdir / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{copy}:v2", str(bundle)],
                   check=True, capture_output=True)
    assert (bundle / "rootfs" / "bin" / "hello").is_file()
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    # Each blob is named by its digest.
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_two_stores_give_identical_images(workdir, tools):
    one, two = Builder(workdir, "home-one"), Builder(workdir, "home-two")
    file = _images(one)
    for attr in ("base", "extra"):
        a, b = one.out(file, attr), two.out(file, attr)
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), attr
    a, b = one.out(file, "oci"), two.out(file, "oci")
    for path in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / path).read_bytes() == (b / path).read_bytes(), path


def test_from_image_adds_one_layer_without_base_store_paths(builder, podman, workdir):
    file = _images(builder)
    base = _plain_archive(builder.out(file, "base"), workdir)
    on_top = builder.out(file, "onTop")
    base_manifest, _, base_tar = _archive_docs(base)
    manifest, config, tar = _archive_docs(on_top)
    layers = manifest[0]["Layers"]
    assert len(layers) == 2
    base_layer = base_manifest[0]["Layers"][0]
    assert tar.extractfile(layers[0]).read() == base_tar.extractfile(base_layer).read()
    base_paths = _store_names(_layer_names(base_tar, base_layer))
    new_paths = _store_names(_layer_names(tar, layers[1]))
    assert any(p.endswith("-second") for p in new_paths)
    assert not base_paths & new_paths
    assert len(config["history"]) == 2
    assert config["config"]["Env"] == ["GREETING=dtx", "A=base", "B=top"]
    assert config["config"]["WorkingDir"] == "/work"
    podman.load(on_top)
    assert podman.run("dtx-test/on-top:latest").stdout.strip() == "second says base and top"
    assert podman.run("dtx-test/on-top:latest", "/bin/hello").stdout.strip() == \
        "hello from dtx in /work"


def test_oci_layout_as_from_image(builder, podman, workdir):
    file = _images(builder)
    image = builder.out(file, "onOci")
    manifest, config, tar = _archive_docs(image)
    assert len(manifest[0]["Layers"]) == 2
    base_paths = _store_names(_layer_names(tar, manifest[0]["Layers"][0]))
    new_paths = _store_names(_layer_names(tar, manifest[0]["Layers"][1]))
    assert any(p.endswith("-second") for p in new_paths)
    assert base_paths and not base_paths & new_paths
    assert config["config"]["Env"] == ["GREETING=oci", "A=oci-top"]
    podman.load(image)
    assert podman.run("dtx-test/on-oci:latest").stdout.strip() == "second says oci-top and"


def test_merge_images_loads_several_images(builder, podman, workdir):
    file = _images(builder)
    merged = builder.out(file, "merged")
    assert merged.name.endswith("-merge-docker-images")
    plain = _plain_archive(merged, workdir)
    manifest, _, tar = _archive_docs(plain)
    tags = [e["RepoTags"] for e in manifest]
    assert tags == [["dtx-test/base:v1"], ["dtx-test/layered:latest"],
                    ["dtx-test/stream:latest"], ["dtx-test/on-top:latest"]]
    # The base image's layer, shared with on-top, is stored once.
    names = tar.getnames()
    assert len(names) == len(set(names))
    assert manifest[0]["Layers"][0] == manifest[3]["Layers"][0]
    repositories = json.load(tar.extractfile("repositories"))
    assert set(repositories) == {"dtx-test/base", "dtx-test/layered", "dtx-test/stream",
                                 "dtx-test/on-top"}
    # The same images, one by one, give the same config files.
    for attr, entry in (("base", manifest[0]), ("onTop", manifest[3])):
        single, _, _ = _archive_docs(_plain_archive(builder.out(file, attr), workdir))
        assert single[0]["Config"] == entry["Config"]
    loaded = podman.load(plain)
    for t in tags:
        assert t[0] in loaded, loaded
    assert podman.run("dtx-test/layered:latest").stdout.startswith("hello from")
    assert podman.run("dtx-test/on-top:latest").stdout.strip() == "second says base and top"
    assert builder.out(file, "merged").read_bytes() == merged.read_bytes()


def test_seed_helpers(builder, workdir):
    file = _images(builder)
    with tarfile.open(builder.out(file, "tarball")) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert "bin/hello" in names
    stores = _store_names(names)
    assert any(n.endswith("-hello") for n in stores)
    assert any(n.endswith("-busybox-standin") for n in stores)
    assert all((m.uid, m.gid, m.mtime) == (0, 0, 1) for m in members)
    with tarfile.open(builder.out(file, "tarballDeps")) as t:
        deps = t.getnames()
    assert "bin/hello" not in deps and _store_names(deps) == stores

    layer = builder.out(file, "pureLayer")
    assert (layer / "VERSION").read_text() == "1.0"
    data = (layer / "layer.tar").read_bytes()
    meta = json.loads((layer / "json").read_text())
    assert meta == {"os": "linux", "checksum": "sha256:" + hashlib.sha256(data).hexdigest()}
    with tarfile.open(layer / "layer.tar") as t:
        members = {m.name: m for m in t.getmembers()}
    assert set(members) == {"bin", "bin/hello", "etc", "etc/pure"}
    assert all((m.uid, m.gid) == (1000, 100) for m in members.values())

    merged = builder.out(file, "mergedDrvs")
    assert (merged / "bin" / "hello").is_file() and (merged / "bin" / "second").is_file()
    deps = builder.out(file, "mergedDeps").read_text().split()
    assert [p.rsplit("-", 1)[1] for p in deps] == ["hello", "second"]

    script = builder.out(file, "script")
    assert subprocess.run(["sh", "-c", f"head -1 {script}"], capture_output=True,
                          text=True).stdout.startswith("#!/nix/store/")
    assert "echo greet-$((1 + 2))" in script.read_text()


def test_extra_commands_and_null_tag(builder, podman):
    image = builder.out(_images(builder), "extra")
    manifest, _, tar = _archive_docs(image)
    tag = image.name.split("-", 1)[0]
    assert manifest[0]["RepoTags"] == [f"dtx-test/extra:{tag}"]
    with tarfile.open(fileobj=tar.extractfile(manifest[0]["Layers"][0])) as layer:
        tmp = layer.getmember("tmp")
        assert tmp.isdir() and tmp.mode == 0o1777
        assert layer.getmember("bin/sh").linkname == "busybox"
        assert layer.getmember("bin/hello-link").issym()
        names = layer.getnames()
    # The closure of what extraCommands linked to is in the image.
    assert any(n.endswith("-hello/bin/hello") for n in names)
    podman.load(image)
    out = podman.run(f"dtx-test/extra:{tag}").stdout
    assert "made-by-extra" in out and "drwxrwxrwt" in out and "hello from" in out


def _hostile_archive(path: Path) -> None:
    """A docker-archive whose one layer tries to escape: `..`, absolute names, a symlink out of
    the root and a file through it, a device node, a hard link to a host file."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add(info, data=b""):
            info.size = len(data) if info.isreg() else 0
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
        add(tarfile.TarInfo("good.txt"), b"good\n")
        add(tarfile.TarInfo("../escape.txt"), b"bad\n")
        add(tarfile.TarInfo("/abs.txt"), b"bad\n")
        sym = tarfile.TarInfo("up")
        sym.type, sym.linkname = tarfile.SYMTYPE, "../../../../tmp"
        add(sym)
        through = tarfile.TarInfo("etc-link")
        through.type, through.linkname = tarfile.SYMTYPE, "/etc"
        add(through)
        add(tarfile.TarInfo("etc-link/evil.txt"), b"bad\n")
        dev = tarfile.TarInfo("null")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        add(dev)
        hard = tarfile.TarInfo("passwd")
        hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/passwd"
        add(hard)
    _docker_archive(path, layer.getvalue(), "hostile:latest", {"Env": ["FROM_HOSTILE=1"]})


def _docker_archive(path: Path, layer: bytes, tag: str, config: dict, gzip_layer=False,
                    gzip_archive=False) -> None:
    """A docker-archive of one image with one layer, as other tools write them: the layer
    maybe gzip-compressed inside the archive, the archive maybe gzip-compressed as a whole."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_bytes = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                               "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": ["l1/layer.tar"]}]).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as t:
        for name, blob in (("l1/layer.tar", gzip.compress(layer) if gzip_layer else layer),
                           (config_name, config_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
    data = archive.getvalue()
    path.write_bytes(gzip.compress(data) if gzip_archive else data)


def test_hostile_base_image(builder, podman, workdir):
    _hostile_archive(workdir / "hostile.tar")
    file = _images(builder)
    result = builder.build(file, "-A", "hostile")
    log = result.stderr
    for name in ("../escape.txt", "/abs.txt", "up", "etc-link/evil.txt", "null", "passwd"):
        assert f"dropping entry '{name}'" in log, name
    image = builder.home / result.stdout.strip().lstrip("/")
    manifest, config, tar = _archive_docs(image)
    names = _layer_names(tar, manifest[0]["Layers"][0])
    assert sorted(names) == ["etc-link", "good.txt"]
    assert config["config"]["Env"] == ["FROM_HOSTILE=1"]
    assert not (workdir.parent / "escape.txt").exists()
    podman.load(image)
    out = podman.run("dtx-test/on-hostile:latest").stdout
    assert out.startswith("good\n")


def test_layered_image(builder, podman):
    image = builder.out(_images(builder), "layered")
    manifest, config, tar = _archive_docs(image)
    layers = manifest[0]["Layers"]
    # One layer per store path (busybox stand-in, hello) and the customisation layer.
    assert len(layers) == 3
    per_layer = [_store_names(_layer_names(tar, layer)) for layer in layers]
    assert len(per_layer[0]) == 1 and len(per_layer[1]) == 1 and not per_layer[2]
    # The most popular path (busybox: hello refers to it) comes first.
    assert next(iter(per_layer[0])).endswith("-busybox-standin")
    top = {n: m for n, m in ((m.name, m) for m in tarfile.open(
        fileobj=tar.extractfile(layers[2])).getmembers())}
    assert top["bin/hello"].issym() and "/nix/store/" in top["bin/hello"].linkname
    podman.load(image)
    assert podman.run("dtx-test/layered:latest").stdout.startswith("hello from")


def test_redis_example_answers_ping(builder, podman, workdir):
    probe = builder.write("probe.dtx", "(import <dtx> { }) ? redis")
    has = subprocess.run(
        [__import__("sys").executable, "-m", "dtx.runtime.cli.instantiate", "--eval",
         str(probe)], capture_output=True, text=True,
        env={"DTX_HOME": str(builder.home), "PATH": "/usr/bin:/bin"})
    if has.stdout.strip() != "true":
        pytest.fail("the redis example needs the package 'redis' in the package set "
                    "(stdlib/packages/debian.dtx)")
    result = builder.build(ROOT / "examples" / "docker-redis.dtx")
    image = builder.home / result.stdout.strip().lstrip("/")
    plain = _plain_archive(image, workdir)
    manifest, config, tar = _archive_docs(plain)
    cli = [n for n in _layer_names(tar, manifest[0]["Layers"][0])
           if n.endswith("/bin/redis-cli")]
    assert cli, "redis-cli is in the closure (redis-server refers to redis-tools)"
    assert config["config"]["WorkingDir"] == "/data"
    podman.load(plain)
    cid = podman("run", "-d", "--runtime", "runc", "--network", "none",
                 "redis:latest").stdout.strip()
    deadline = time.monotonic() + 30
    while True:
        ping = podman("exec", cid, "/" + cli[0], "ping", check=False)
        if ping.stdout.strip() == "PONG" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ping.stdout.strip() == "PONG", ping.stderr


def test_stream_layered_image_with_helpers(builder, podman, workdir):
    file = _images(builder)
    result = builder.build(file, "-A", "stream", link=True)
    script = workdir / "result"
    assert script.is_symlink() and os.access(script, os.X_OK)
    # What the script writes is what buildLayeredImage stores, every time.
    twin = builder.out(file, "streamTwin")
    first = subprocess.run([str(script)], capture_output=True, check=True).stdout
    assert first == twin.read_bytes()
    again = subprocess.run([str(builder.home / result.stdout.strip().lstrip("/"))],
                           capture_output=True, check=True).stdout
    assert again == first
    manifest, _, _ = _archive_docs(twin)
    assert manifest[0]["RepoTags"] == ["dtx-test/stream:latest"]
    load = subprocess.run(f"./result | {shlex.join(podman.argv('load'))}", shell=True,
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    assert load.returncode == 0 and "dtx-test/stream:latest" in load.stdout, load.stderr
    out = podman.run("dtx-test/stream:latest").stdout.split()
    assert out == ["root:x:0:0:root", "user:/var/empty:/bin/sh", "env-ok"]


def test_stream_script_stores_no_archive(builder, workdir):
    file = _images(builder)
    script = builder.out(file, "stream")
    archive = subprocess.run([str(script)], capture_output=True, check=True).stdout
    assert script.is_file() and script.stat().st_size < len(archive) // 20
    env = {"DTX_HOME": str(builder.home), "PATH": os.environ["PATH"]}
    closure = subprocess.run(
        [sys.executable, "-m", "dtx.runtime.cli.store", "-q", "--requisites",
         "/nix/store/" + script.name], capture_output=True, text=True, check=True,
        env=env).stdout.split()
    # The closure holds the image's store paths (the script reads them)...
    assert any(p.endswith("-fake-nss") for p in closure)
    assert any(p.endswith("-bin-sh") for p in closure)
    # ... and no archive of the image: no file is one, and all of them together weigh about
    # what the image holds (a stored archive would double that).
    total = 0
    for path in closure:
        real = builder.home / path.lstrip("/")
        files = [real] if real.is_file() else [p for p in real.rglob("*") if p.is_file()]
        for f in files:
            if f.is_symlink():
                continue
            total += f.stat().st_size
            if tarfile.is_tarfile(f):
                with tarfile.open(f) as t:
                    assert "manifest.json" not in t.getnames(), f
    assert total < len(archive) * 1.2


def test_stream_script_fails_clearly_when_the_store_changed(builder, workdir):
    from dtx.runtime.image import stream
    script = builder.out(_images(builder), "stream")
    doc, _ = stream.read_script(str(script))
    logical = next(p for p, _ in doc["files"] if p.endswith("-fake-nss/etc/passwd"))
    passwd = builder.home / logical.lstrip("/")
    original = passwd.read_bytes()
    subprocess.run(["chmod", "-R", "u+w", str(passwd.parent)], check=True)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([str(script)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=120)

    passwd.write_bytes(original + b"x")
    failed = run()
    assert failed.returncode == 1
    assert failed.stderr == (f"{script.name}: error: {logical} has {len(original) + 1} bytes, "
                             f"but had {len(original)} when the image was built: the store "
                             f"was changed\n")
    passwd.unlink()
    failed = run()
    assert failed.returncode == 1 and "is missing from the store" in failed.stderr
    assert len(failed.stderr.splitlines()) == 1
    passwd.write_bytes(original.replace(b"root", b"toor"))
    failed = run()
    assert failed.returncode == 1 and "other bytes" in failed.stderr
    assert "Traceback" not in failed.stderr
    passwd.write_bytes(original)
    quiet = subprocess.run(f"'{script}' | head -c 1000 > /dev/null", shell=True,
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_stream_layered_image_on_base_images(builder, podman, workdir):
    _hostile_archive(workdir / "hostile.tar")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("from-gzip-layer.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"gz\n"))
    for name, whole in (("gzip-layer.tar", False), ("gzip-layer.tar.gz", True)):
        _docker_archive(workdir / name, layer.getvalue(), "gz:latest", {"Env": ["GZ=1"]},
                        gzip_layer=True, gzip_archive=whole)
    file = _images(builder)
    for base in ("gzipArchive", "plainArchive", "ociLayout", "unsafeEntries", "gzipLayer"):
        script = builder.out(file, f"streamOnBases.{base}")
        streamed = subprocess.run([str(script)], capture_output=True, check=True).stdout
        assert streamed == builder.out(file, f"layeredOnBases.{base}").read_bytes(), base
        with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
        assert len(manifest[0]["Layers"]) >= 2, base
    # A gzip-compressed layer inside a gzip-compressed archive is for buildLayeredImage only.
    failed = builder.build(file, "-A", "streamOnBases.gzipLayerInGzip", check=False)
    assert failed.returncode != 0
    assert ("streamLayeredImage cannot stream layer 1 of the base image: it is a "
            "gzip-compressed layer inside a gzip-compressed archive") in failed.stderr
    builder.out(file, "layeredOnBases.gzipLayerInGzip")
    # The base image's layer comes out of the gzip-compressed archive as the script runs.
    script = builder.out(file, "streamOnBases.gzipArchive")
    load = subprocess.run(f"'{script}' | {shlex.join(podman.argv('load'))}", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert load.returncode == 0, load.stderr
    out = podman.run("dtx-test/stream-on:latest", "/bin/sh", "-c", "/bin/hello; /bin/second")
    assert out.stdout.splitlines() == ["hello from dtx in /work", "second says base and "]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_layered_web_example_serves_a_page(builder, podman, workdir):
    import urllib.request
    result = builder.build(ROOT / "examples" / "docker-layered-web.dtx")
    image = _plain_archive(builder.home / result.stdout.strip().lstrip("/"), workdir)
    manifest, config, _ = _archive_docs(image)
    layers = manifest[0]["Layers"]
    assert len(layers) > 3  # nginx's closure, one store path a layer, and the root layer
    assert config["config"]["ExposedPorts"] == {"80/tcp": {}}
    podman.load(image)
    port = _free_port()
    cid = podman("run", "-d", "--runtime", "runc", "-p", f"127.0.0.1:{port}:80",
                 "web:latest").stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status, body = r.status, r.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    logs = podman("logs", cid, check=False)
                    raise AssertionError(f"no answer from nginx:\n{logs.stdout}{logs.stderr}")
                time.sleep(0.5)
        assert status == 200
        assert "Served by nginx from an image built by dtx." in body
    finally:
        podman("stop", "-t", "5", cid, check=False)
        podman("rm", "-f", cid, check=False)


def test_hello_example(builder, podman):
    result = builder.build(ROOT / "examples" / "docker-hello.dtx")
    podman.load(builder.home / result.stdout.strip().lstrip("/"))
    assert podman.run("hello:latest").stdout.strip() == "hello from root in /tmp"
