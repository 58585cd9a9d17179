"""The image modules on their own: documents, layer tars, safe reading, config merging."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pytest

from dtx.runtime.image import documents as d
from dtx.runtime.image.archive import (Image, Layer, layer_ids, merge_container_config,
                                       read_docker_archive, read_image, read_images,
                                       write_docker_archive, write_docker_archive_images,
                                       write_oci_layout)
from dtx.runtime.image.layers import (GZIP_BLOCK, Entry, GzipWriter, LayerError, Tree,
                                      add_host_tree, add_root_contents, compress, extract,
                                      parse_created, scan_layer, write_tar)
from dtx.runtime.image.stream import file_plan, write_plan

# -- documents --------------------------------------------------------------------------------

CONFIG = {
    "architecture": "arm64", "os": "linux", "variant": "v8",
    "created": "2024-01-02T03:04:05Z",
    "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}},
               "Memory": 0, "Domainname": ""},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
    "history": [{"created_by": "x", "empty_layer": True, "future": [1, 2]}],
    "container": "abc", "docker_version": "24.0",
}


def test_image_config_round_trip_keeps_unknown_fields():
    doc = d.from_json(d.ImageConfig, json.dumps(CONFIG))
    assert doc.config.Cmd == ["/bin/sh"]
    assert doc.config.extra == {"Memory": 0, "Domainname": ""}
    assert doc.history[0].empty_layer is True
    assert doc.extra == {"container": "abc", "docker_version": "24.0"}
    assert json.loads(d.canonical_json(doc)) == CONFIG


def test_canonical_json_is_sorted_and_compact():
    text = d.canonical_json(d.from_json(d.ImageConfig, CONFIG))
    assert b" " not in text.replace(b'"Domainname":""', b"")
    assert text == json.dumps(CONFIG, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("cls, data", [
    (d.OCIIndex, {"schemaVersion": 2, "manifests": [
        {"mediaType": d.MEDIA_OCI_MANIFEST, "digest": "sha256:1", "size": 3,
         "platform": {"architecture": "arm64", "os": "linux", "os.version": "x",
                      "variant": "v8"}, "annotations": {"a": "b"}}], "x-extra": 1}),
    (d.OCIManifest, {"schemaVersion": 2, "mediaType": d.MEDIA_OCI_MANIFEST,
                     "config": {"mediaType": d.MEDIA_OCI_CONFIG, "digest": "sha256:2",
                                "size": 1},
                     "layers": [{"mediaType": d.MEDIA_OCI_LAYER_GZIP, "digest": "sha256:3",
                                 "size": 9, "urls": ["http://x"]}]}),
    (d.DockerManifest, {"schemaVersion": 2, "mediaType": d.MEDIA_DOCKER_MANIFEST,
                        "config": {"mediaType": d.MEDIA_DOCKER_CONFIG, "digest": "sha256:4",
                                   "size": 1}, "layers": []}),
    (d.DockerManifestList, {"schemaVersion": 2, "mediaType": d.MEDIA_DOCKER_MANIFEST_LIST,
                            "manifests": []}),
    (d.ArchiveEntry, {"Config": "c.json", "RepoTags": None, "Layers": ["l/layer.tar"],
                      "LayerSources": {"sha256:5": {"size": 1}}}),
])
def test_documents_round_trip(cls, data):
    doc = d.from_json(cls, data)
    expected = {k: v for k, v in data.items() if v is not None}
    assert d.to_data(doc) == expected


def test_structure_errors_are_clear():
    with pytest.raises(ValueError, match="JSON object for ImageConfig"):
        d.from_json(d.ImageConfig, "[1]")


# -- config merging ---------------------------------------------------------------------------

def test_merge_container_config_as_docker_does():
    base = d.ContainerConfig(Cmd=["base"], Env=["A=1", "B=2"], Labels={"x": "1"},
                             WorkingDir="/base", extra={"Keep": 1})
    new = d.ContainerConfig(Env=["B=3", "C=4"], Labels={"y": "2"})
    merged = merge_container_config(base, new)
    assert merged.Env == ["A=1", "B=3", "C=4"]
    assert merged.Labels == {"x": "1", "y": "2"}
    assert merged.Cmd == ["base"] and merged.WorkingDir == "/base"
    assert merged.extra == {"Keep": 1}
    reset = merge_container_config(base, d.ContainerConfig(Entrypoint=["/e"]))
    assert reset.Entrypoint == ["/e"] and reset.Cmd is None


# -- layers -----------------------------------------------------------------------------------

def _tree_of(tmp_path):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text("#!/bin/sh\n")
    (src / "bin" / "tool").chmod(0o755)
    (src / "bin" / "link").symlink_to("tool")
    (src / "etc").mkdir()
    (src / "etc" / "conf").write_text("x")
    tree = Tree()
    for name in sorted(os.listdir(src)):
        add_host_tree(tree, str(src / name), name)
    return tree


def test_layer_tar_is_deterministic_and_normalised(tmp_path):
    tree = _tree_of(tmp_path)
    one, two = io.BytesIO(), io.BytesIO()
    assert write_tar(tree, one, 42) == write_tar(tree, two, 42)
    assert one.getvalue() == two.getvalue()
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as t:
        members = t.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 42)
        assert not m.pax_headers
    modes = {m.name: m.mode for m in members}
    assert modes["bin/tool"] == 0o755 and modes["etc/conf"] & 0o777 == 0o644


def test_tree_parents_and_later_wins():
    tree = Tree()
    tree.add("a/b/c", Entry("file", 0o644, source="/dev/null"))
    assert tree.entries["a"].kind == "dir" and tree.entries["a/b"].kind == "dir"
    tree.add("a/b", Entry("symlink", 0o777, target="x"))
    assert "a/b/c" not in tree.entries and tree.entries["a/b"].kind == "symlink"
    tree.add("a/b/d", Entry("file", 0o644, source="/dev/null"))
    assert tree.entries["a/b"].kind == "dir"
    with pytest.raises(LayerError):
        tree.add("../x", Entry("file", 0o644, source="/dev/null"))


def test_root_contents_merge_and_follow_store_dirlinks(tmp_path):
    store = tmp_path / "store"
    pkg, env, other = store / "aaa-pkg", store / "bbb-env", store / "ccc-other"
    (pkg / "bin").mkdir(parents=True)
    (pkg / "bin" / "p").write_text("p")
    env.mkdir()
    (env / "bin").symlink_to("/nix/store/aaa-pkg/bin")  # a buildEnv with a linked directory
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "p").write_text("later")
    real = lambda p: str(store / p[len("/nix/store/"):])  # noqa: E731
    tree = Tree()
    add_root_contents(tree, ["/nix/store/bbb-env", "/nix/store/ccc-other"], real,
                      "/nix/store", lambda _: None)
    assert tree.entries["bin"].kind == "dir"
    assert tree.entries["bin/p"].source == str(other / "bin" / "p")
    assert tree.entries["bin/p"].mode & 0o220 == 0o220


def test_gzip_is_reproducible(tmp_path):
    src = tmp_path / "data"
    src.write_bytes(b"x" * 100000)
    a, b = tmp_path / "a.gz", tmp_path / "b.gz"
    plan = file_plan(str(src))
    assert compress(plan, str(a), "gz") == compress(plan, str(b), "gz")
    header = a.read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0"  # no name, mtime 0
    assert gzip.decompress(a.read_bytes()) == src.read_bytes()
    with pytest.raises(LayerError, match="unknown compressor"):
        compress(plan, str(a), "lz4")


def test_parallel_gzip_bytes_depend_on_the_input_only():
    data = os.urandom(GZIP_BLOCK + 1000) + b"text " * (GZIP_BLOCK // 2) + os.urandom(77)
    outputs = set()
    for threads, step in ((1, len(data)), (2, 4096), (3, GZIP_BLOCK), (4, 999_999)):
        buf = io.BytesIO()
        with GzipWriter(buf, threads=threads) as w:
            for i in range(0, len(data), step):
                w.write(data[i:i + step])
            assert w.tell() == len(data)
        outputs.add(buf.getvalue())
    assert len(outputs) == 1
    out = outputs.pop()
    assert gzip.decompress(out) == data
    assert out[:10] == b"\x1f\x8b\x08\0\0\0\0\0\0\xff"
    assert len(out) < len(data) * 0.8  # the text compresses, across block boundaries too
    empty = io.BytesIO()
    with GzipWriter(empty):
        pass
    assert gzip.decompress(empty.getvalue()) == b""


@pytest.mark.parametrize("created, ts, text", [
    (None, 1, "1970-01-01T00:00:01Z"),
    ("2024-05-06T07:08:09Z", 1714979289, "2024-05-06T07:08:09Z"),
    ("2024-05-06T09:08:09+02:00", 1714979289, "2024-05-06T07:08:09Z"),
])
def test_parse_created(created, ts, text):
    assert parse_created(created, lambda: 0) == (ts, text)
    assert parse_created("now", lambda: 1000.5) == (1000, "1970-01-01T00:16:40Z")


# -- hostile tars -----------------------------------------------------------------------------

def _hostile_tar(path):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        def add(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("./", tarfile.DIRTYPE)
        add("ok/file", data=b"ok")
        add("../../outside", data=b"bad")
        add("/tmp/absolute", data=b"bad")
        add("ok/../../sneaky", data=b"bad")
        add("esc", tarfile.SYMTYPE, linkname="../..")
        add("esc/through", data=b"bad")
        add("abs-link", tarfile.SYMTYPE, linkname="/")
        add("abs-link/etc-passwd", data=b"bad")
        add("fine-link", tarfile.SYMTYPE, linkname="ok/file")
        add("dev", tarfile.CHRTYPE)
        add("blk", tarfile.BLKTYPE)
        add("fifo", tarfile.FIFOTYPE)
        add("hard-out", tarfile.LNKTYPE, linkname="/etc/passwd")
        add("hard-in", tarfile.LNKTYPE, linkname="ok/file")


def test_extract_never_leaves_the_destination(tmp_path):
    archive = tmp_path / "hostile.tar"
    _hostile_tar(archive)
    dest = tmp_path / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    lines = []
    extract(str(archive), str(dest), lines.append, "test")
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert found == ["a", "a/b", "a/b/dest", "a/b/dest/abs-link", "a/b/dest/fine-link",
                     "a/b/dest/hard-in", "a/b/dest/ok", "a/b/dest/ok/file", "hostile.tar"]
    assert (dest / "hard-in").read_text() == "ok"
    dropped_names = {line.split("'")[1] for line in lines}
    assert dropped_names == {"../../outside", "/tmp/absolute", "ok/../../sneaky", "esc",
                       "esc/through", "abs-link/etc-passwd", "dev", "blk", "fifo",
                       "hard-out"}
    _, dropped = scan_layer(str(archive), lambda _: None, "test")
    assert dropped == len(dropped_names)


def test_extract_refuses_symlinks_already_on_disk(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "lnk").symlink_to(outside)
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w") as t:
        info = tarfile.TarInfo("lnk/x")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    lines = []
    extract(str(archive), str(dest), lines.append, "test")
    assert not list(outside.iterdir())
    assert "parent is not a directory" in lines[0]


# -- docker-archive ---------------------------------------------------------------------------

def test_docker_archive_round_trip(tmp_path):
    tree = _tree_of(tmp_path)
    layer_path = tmp_path / "layer.tar"
    with open(layer_path, "wb") as f:
        diff_id = write_tar(tree, f)
    config = d.ImageConfig(created="1970-01-01T00:00:01Z",
                           config=d.ContainerConfig(Cmd=["/bin/tool"]),
                           rootfs=d.RootFS(diff_ids=[diff_id]))
    archive = tmp_path / "image.tar"
    write_docker_archive(str(archive), config, [Layer(file_plan(str(layer_path)), diff_id)],
                         ["one:a", "two:b"], 1)
    with tarfile.open(archive) as t:
        names = t.getnames()
        repos = json.load(t.extractfile("repositories"))
    top = layer_ids([diff_id], d.sha256_digest(d.canonical_json(config)))[-1]
    assert f"{top}/layer.tar" in names and f"{top}/VERSION" in names
    assert repos == {"one": {"a": top}, "two": {"b": top}}
    work = tmp_path / "work"
    work.mkdir()
    base = read_docker_archive(str(archive), str(work), lambda _: None, "two", "b")
    assert base.config == config
    assert base.layers[0].diff_id == diff_id
    with pytest.raises(LayerError, match="no image tagged 'three:\\*'"):
        read_docker_archive(str(archive), str(work), lambda _: None, "three", None)


def test_zstd_when_available(tmp_path):
    src = tmp_path / "data"
    src.write_bytes(b"zstd " * 10000)
    try:
        import zstandard
    except ImportError:
        with pytest.raises(LayerError, match="needs the Python package 'zstandard'"):
            compress(file_plan(str(src)), str(tmp_path / "a.zst"), "zstd")
        return
    a, b = tmp_path / "a.zst", tmp_path / "b.zst"
    assert compress(file_plan(str(src)), str(a), "zstd") == \
        compress(file_plan(str(src)), str(b), "zstd")
    assert zstandard.ZstdDecompressor().decompress(a.read_bytes()) == src.read_bytes()


# -- several images, OCI layouts as base images -----------------------------------------------

def _image(tmp_path, name: str, text: str, tags: list[str]) -> Image:
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / f"{name}.txt").write_text(text)
    tree = Tree()
    add_host_tree(tree, str(src / f"{name}.txt"), f"{name}.txt")
    path = tmp_path / f"{name}.tar"
    with open(path, "wb") as f:
        diff_id = write_tar(tree, f)
    config = d.ImageConfig(config=d.ContainerConfig(Cmd=[name]),
                           rootfs=d.RootFS(diff_ids=[diff_id]))
    return Image(config, [Layer(file_plan(str(path)), diff_id)], tags)


def test_multi_image_archive_stores_shared_layers_once(tmp_path):
    a = _image(tmp_path, "a", "shared", ["a:1"])
    b = _image(tmp_path, "b", "own", ["b:2"])
    b.layers.insert(0, a.layers[0])
    b.config.rootfs.diff_ids.insert(0, a.layers[0].diff_id)
    archive = tmp_path / "both.tar.gz"
    write_docker_archive_images(str(archive), [a, b], 1, "gz")
    with tarfile.open(archive) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))
    assert len(names) == len(set(names))
    assert manifest[0]["Layers"][0] == manifest[1]["Layers"][0]
    assert sum(n.endswith("/layer.tar") for n in names) == 2
    work = tmp_path / "work"
    work.mkdir()
    images = read_images(str(archive), str(work), lambda _: None)
    assert [i.repo_tags for i in images] == [["a:1"], ["b:2"]]
    assert [len(i.layers) for i in images] == [1, 2]
    assert images[1].config == b.config


def _oci(tmp_path, image: Image, tag: str = "v1"):
    layout = tmp_path / "layout"
    write_oci_layout(str(layout), image.config, image.layers, tag, "repo/x", "gz")
    return layout


def _bytes(plan: list) -> bytes:
    out = io.BytesIO()
    write_plan(plan, out)
    return out.getvalue()


def test_oci_layout_as_base_image(tmp_path):
    image = _image(tmp_path, "a", "in oci", [])
    layout = _oci(tmp_path, image)
    work = tmp_path / "work"
    work.mkdir()
    base = read_image(str(layout), str(work), lambda _: None, None, "v1")
    assert base.config == image.config
    assert base.repo_tags == ["repo/x:v1"]
    assert _bytes(base.layers[0].plan) == _bytes(image.layers[0].plan)
    assert read_image(str(layout), str(work), lambda _: None, "repo/x", None).config == \
        image.config
    with pytest.raises(LayerError, match="no image tagged '\\*:v2'"):
        read_image(str(layout), str(work), lambda _: None, None, "v2")


def test_oci_layout_tampering_is_refused(tmp_path):
    image = _image(tmp_path, "a", "in oci", [])
    layout = _oci(tmp_path, image)
    work = tmp_path / "work"
    work.mkdir()
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((blobs / manifest_hex).read_text())
    layer_blob = blobs / manifest["layers"][0]["digest"].split(":")[1]

    # A layer blob changed in place (same size).
    original = layer_blob.read_bytes()
    layer_blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(LayerError, match="does not match its digest"):
        read_image(str(layout), str(work), lambda _: None)
    layer_blob.write_bytes(original)

    # A digest that would name a file outside the blobs directory.
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayerError, match="unsupported digest"):
        read_image(str(layout), str(work), lambda _: None)

    # A blob that is a symlink to a host file.
    index["manifests"][0]["digest"] = "sha256:" + manifest_hex
    (layout / "index.json").write_text(json.dumps(index))
    (blobs / manifest_hex).unlink()
    (blobs / manifest_hex).symlink_to("/etc/hostname")
    with pytest.raises(LayerError, match="not a regular file"):
        read_image(str(layout), str(work), lambda _: None)
