"""runAsRoot and exportImage, which run as root in a QEMU guest (stdlib/build-support/docker/
run-as-root.dtx), checked by running the results with podman.

VM boots are slow under TCG (10-20 s each), so one scratch store is shared by the module and
every image is built by a single dtx-build call (the VM steps run side by side with -j).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, Builder, _need_tools
from podman_setup import Podman, ensure_containers_conf

IMAGES = r"""
let
  pkgs = import <dtx> { };
  inherit (pkgs) dockerTools;
  shadow = import @ROOT@/examples/docker-shadow.dtx { inherit pkgs; };
  # A base with files the next image deletes, and a directory it replaces as a whole.
  base = dockerTools.buildImage {
    name = "dtx-test/wh-base";
    copyToRoot = [ pkgs.stdenv.applets ];
    compressor = "none";
    extraCommands = ''
      mkdir -p etc/doomed opq
      echo bye > etc/doomed/file
      echo gone > etc/gone
      echo stays > etc/keep
      echo old > opq/old
    '';
  };
  top = dockerTools.buildImage {
    name = "dtx-test/wh-top";
    fromImage = base;
    runAsRoot = ''
      rm -rf /etc/doomed /etc/gone
      echo changed > /etc/keep
      rm -rf /opq
      mkdir /opq
      echo new > /opq/new
      mkdir /owned
      chown 123:456 /owned
    '';
    config.Cmd = [ "/bin/sh" ];
  };
in {
  inherit shadow base top;
  exported = dockerTools.exportImage { fromImage = top; name = "wh-top.tar"; };
}
"""


class Built:
    def __init__(self, builder: Builder, file: Path):
        self.builder = builder
        self.file = file

    def out(self, attr: str) -> Path:
        return self.builder.out(self.file, attr)

    def archive(self, attr: str) -> Path:
        """The image `attr` as an uncompressed docker-archive, for `podman load`."""
        image = self.out(attr)
        if not image.name.endswith(".gz"):
            return image
        plain = self.builder.workdir / (attr + ".tar")
        if not plain.exists():
            with gzip.open(image) as src, open(plain, "wb") as dest:
                shutil.copyfileobj(src, dest)
        return plain


@pytest.fixture(scope="module")
def built():
    if os.geteuid() != 0:
        pytest.skip("the VM and podman tests run as root (the suite runs as root in CI)")
    workdir = Path(tempfile.mkdtemp(prefix="dtx-run-as-root-test-"))
    workdir.chmod(0o755)
    builder = Builder(workdir)
    file = builder.write("images.dtx", IMAGES.replace("@ROOT@", str(ROOT)))
    builder.build(file, "-A", "shadow", "-A", "top", "-A", "exported")
    yield Built(builder, file)
    subprocess.run(["chmod", "-R", "u+w", str(workdir)], check=False)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def podman():
    _need_tools()
    ensure_containers_conf()
    p = Podman(Path(tempfile.mkdtemp(prefix="dtx-podman-")))  # podman's runroot: < 50 chars
    yield p
    p.cleanup()


def test_shadow_example_creates_the_user_and_owned_data(built, podman):
    podman.load(built.archive("shadow"))
    passwd = podman.run("shadow-basic:latest", "cat", "/etc/passwd").stdout
    users = {line.split(":")[0]: line.split(":") for line in passwd.splitlines()}
    assert "root" in users and "redis" in users
    uid, gid = users["redis"][2], users["redis"][3]
    group = podman.run("shadow-basic:latest", "cat", "/etc/group").stdout
    assert f"redis:x:{gid}:" in group
    owner = podman.run("shadow-basic:latest", "stat", "-c", "%u:%g", "/data").stdout.strip()
    assert owner == f"{uid}:{gid}"
    # The image's User is redis: the container runs as its uid.
    assert podman.run("shadow-basic:latest", "id", "-u").stdout.strip() == uid
    version = podman.run("shadow-basic:latest", "redis-server", "--version").stdout
    assert "Redis server v=" in version


def test_run_as_root_layer_is_one_layer_with_owners_and_whiteouts(built):
    with tarfile.open(built.archive("top")) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        layers = manifest[0]["Layers"]
        assert len(layers) == 2  # the base's layer and one new layer
        with tarfile.open(fileobj=archive.extractfile(layers[1])) as layer:
            members = {m.name.rstrip("/"): m for m in layer.getmembers()}
    assert "etc/.wh.doomed" in members and "etc/.wh.gone" in members
    assert "opq/.wh..wh..opq" in members and "opq/new" in members
    assert (members["owned"].uid, members["owned"].gid) == (123, 456)
    assert "etc/keep" in members and "etc/doomed/file" not in members
    assert not any(m.ischr() for m in members.values())


def test_run_as_root_changes_show_in_the_container(built, podman):
    podman.load(built.archive("top"))
    listing = podman.run("dtx-test/wh-top:latest", "sh", "-c",
                         "ls /etc /opq; cat /etc/keep; stat -c %u:%g /owned").stdout.split()
    assert "doomed" not in listing and "gone" not in listing and "old" not in listing
    assert "new" in listing and "changed" in listing and "123:456" in listing


def test_export_image_is_the_merged_file_system(built, podman):
    exported = built.out("exported")
    with tarfile.open(exported) as tar:
        names = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
    assert "etc/keep" in names and "opq/new" in names
    assert "etc/doomed" not in names and "etc/gone" not in names and "opq/old" not in names
    assert not any(".wh." in n for n in names)
    assert (names["owned"].uid, names["owned"].gid) == (123, 456)
    assert any(n.startswith("nix/store/") for n in names)
    imported = podman("import", str(exported), "dtx-test/exported:latest").stdout
    assert imported.strip()
    out = podman.run("dtx-test/exported:latest", "/bin/sh", "-c",
                     "cat /etc/keep /opq/new; ls /etc").stdout.split()
    assert out[:2] == ["changed", "new"] and "doomed" not in out


def test_root_layer_merges_with_the_closure_keeping_owners_and_devices(tmp_path):
    from dtx.runtime.image.builder import _merge_root_layer
    from dtx.runtime.image.layers import Entry, Tree
    from dtx.runtime.image.stream import plan_digest, write_plan

    (tmp_path / "f").write_text("store file\n")
    tree = Tree()
    tree.add("nix/store/abc-x/bin/x", Entry("file", 0o555, source=str(tmp_path / "f")))
    tree.add("etc/passwd", Entry("file", 0o644, source=str(tmp_path / "f")))
    with tarfile.open(tmp_path / "root.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, extra in [("./", tarfile.DIRTYPE, {}),
                                  ("./data/", tarfile.DIRTYPE, {"uid": 999, "gid": 998}),
                                  ("./dev/null", tarfile.CHRTYPE, {"devmajor": 1,
                                                                   "devminor": 3}),
                                  ("./etc/.wh.gone", tarfile.REGTYPE, {}),
                                  ("./etc/passwd", tarfile.REGTYPE, {}),
                                  ("../escape", tarfile.REGTYPE, {})]:
            info = tarfile.TarInfo(name)
            info.type, info.mtime = kind, 12345
            for key, value in extra.items():
                setattr(info, key, value)
            data = b"redis:x:999:998::/:/bin/sh\n" if name.endswith("passwd") else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    log: list[str] = []
    plan = _merge_root_layer(tree, str(tmp_path / "root.tar"), 1, log.append)
    with open(tmp_path / "merged.tar", "wb") as f:
        write_plan(plan, f)
    data = (tmp_path / "merged.tar").read_bytes()
    digest = plan_digest(plan)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    with tarfile.open(tmp_path / "merged.tar") as tar:
        members = tar.getmembers()
        names = [m.name.rstrip("/") for m in members]
        by_name = {m.name.rstrip("/"): m for m in members}
        passwd = tar.extractfile("etc/passwd").read()
    assert names == sorted(names) and "escape" not in " ".join(names)
    assert any("../escape" in line for line in log)
    assert (by_name["data"].uid, by_name["data"].gid) == (999, 998)
    assert by_name["dev/null"].ischr() and by_name["dev/null"].devmajor == 1
    assert "etc/.wh.gone" in by_name and "nix/store/abc-x/bin/x" in by_name
    assert passwd.startswith(b"redis:")  # the runAsRoot entry wins the clash
    assert all(m.mtime == 1 for m in members)
