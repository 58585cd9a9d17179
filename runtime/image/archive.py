"""Image files: the docker-archive format (`docker save`/`docker load`) and the OCI image layout.

A docker-archive is a tar holding
- `manifest.json`: a list of `ArchiveEntry` (config file name, repository tags, layer files);
- the configuration as `<sha256 of it>.json`;
- each layer as `<layer id>/layer.tar`, beside the legacy `<layer id>/json` and
  `<layer id>/VERSION` (`1.0`), and the legacy `repositories` file mapping name and tag to the
  top layer id. Layer ids are derived from the parent id, the layer's diff_id and (for the top
  layer) the config digest, so they are stable.
The archive's own tar is made like a layer (fixed mtime, numeric owners, fixed order): a plan
(`archive_plan`, see stream.py) whose layers are the layers' own plans, each checked against its
diff_id as it is written. It is written compressed as a whole (`compressor`), as nixpkgs'
`image.tar.gz`, or it becomes a stream script (`streamLayeredImage`).

An OCI image layout is a directory: `oci-layout`, `index.json` (one manifest, its
`org.opencontainers.image.ref.name` annotation the tag) and `blobs/sha256/<hex>`; there the
layers are compressed one by one.

`read_docker_archive` opens a base image for `fromImage`: it picks the entry by name and tag,
checks each layer against the config's diff_ids, and keeps the layers byte for byte unless they
hold unsafe entries (see layers.MemberChecker), which are then left out of the layer's plan.
Each base layer also gets its `origin`: the plan of its bytes in the base image's own file (a
range of an uncompressed archive, or of the gunzipped bytes of a gzip-compressed one or of a
gzip-compressed layer), which a stream script reads; zstd is beyond it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Callable

import attrs

from . import documents as d
from .layers import (LayerError, Log, compress, compressing_writer, compression_of,
                     file_digest, members_plan, open_maybe_compressed, scan_layer, tar_member,
                     tar_plan)
from .stream import Checked, FileRange, Gunzip, file_plan, plan_digest, plan_size, write_plan


@dataclass
class Layer:
    """An uncompressed layer: the plan of its bytes (files on the host: the store, the build's
    work directory) and its diff_id. A layer read from a base image also has `origin`, the plan
    of its bytes in the base image's store files, which a stream script reads; when it has
    none, `no_origin` says why."""
    plan: list
    diff_id: str
    store_paths: set[str] = field(default_factory=set)
    origin: list | None = None
    no_origin: str = ""


@dataclass
class Image:
    """One image on the host: its config, its uncompressed layers and its repository tags."""
    config: d.ImageConfig
    layers: list[Layer]
    repo_tags: list[str]

    def store_paths(self) -> set[str]:
        return set().union(*(layer.store_paths for layer in self.layers)) if self.layers \
            else set()


BaseImage = Image  # an image read for `fromImage`


# -- configuration ----------------------------------------------------------------------------

_MAPS = ("ExposedPorts", "Volumes", "Labels")


def merge_container_config(base: d.ContainerConfig | None,
                           new: d.ContainerConfig | None) -> d.ContainerConfig | None:
    """The config of an image built on `base`, as Docker derives it: fields set in `new`
    override; `Env` is merged by variable name; ports, volumes and labels are merged; a new
    `Entrypoint` without a new `Cmd` clears the inherited `Cmd`."""
    if base is None:
        return new
    if new is None:
        return base
    result = attrs.evolve(base, extra={**base.extra, **new.extra})
    for f in attrs.fields(d.ContainerConfig):
        if f.metadata.get("extra"):
            continue
        value = getattr(new, f.name)
        if value is None:
            continue
        old = getattr(base, f.name)
        if f.name == "Env" and old:
            merged = {e.split("=", 1)[0]: e for e in old}
            for e in value:
                merged[e.split("=", 1)[0]] = e
            value = list(merged.values())
        elif f.name in _MAPS and old:
            value = {**old, **value}
        setattr(result, f.name, value)
    if new.Entrypoint is not None and new.Cmd is None:
        result.Cmd = None
    return result


# -- docker-archive ---------------------------------------------------------------------------

def _tar_info(name: str, mtime: int, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
        info.size = size
    return info


def _file(name: str, content: list | bytes, mtime: int) -> list:
    """The plan of an archive member holding `content` (a plan, or bytes)."""
    if isinstance(content, bytes):
        content = [content] if content else []
    return tar_member(_tar_info(name, mtime, plan_size(content)), content)


def layer_ids(diff_ids: list[str], config_digest: str) -> list[str]:
    """The legacy (v1) ids of the layers: a chain over parent id and diff_id; the top one also
    covers the config, so two images differing only in config get different top ids."""
    ids, parent = [], ""
    for i, diff_id in enumerate(diff_ids):
        text = f"{parent}\n{diff_id}"
        if i == len(diff_ids) - 1:
            text += f"\n{config_digest}"
        parent = hashlib.sha256(text.encode()).hexdigest()
        ids.append(parent)
    return ids


def write_docker_archive(dest: str, config: d.ImageConfig, layers: list[Layer],
                         repo_tags: list[str], mtime: int, compressor: str = "none") -> None:
    """Write a docker-archive holding one image to `dest`, compressed with `compressor`."""
    write_docker_archive_images(dest, [Image(config, layers, repo_tags)], mtime, compressor)


def write_docker_archive_images(dest: str, images: list[Image], mtime: int,
                                compressor: str = "none") -> None:
    """Write a docker-archive holding `images` (see `archive_plan`) to `dest`, compressed with
    `compressor` as it is written."""
    with open(dest, "wb") as f, compressing_writer(f, compressor) as stream:
        write_plan(archive_plan(images, mtime), stream)


def archive_plan(images: list[Image], mtime: int) -> list:
    """The plan of a docker-archive holding `images` (one `manifest.json` entry each, in
    order). A layer that several images share (same diff_id) is stored once, in the directory
    of the first image that has it, and a config file once; each layer's bytes are checked
    against its diff_id as they are written."""
    members: list[list] = []
    layer_dirs: dict[str, str] = {}  # diff_id -> the directory holding it
    configs: set[str] = set()
    entries, repositories = [], {}
    for image in images:
        entry = _add_image(members, image, mtime, layer_dirs, configs)
        entries.append(d.to_data(entry))
        top = entry.Layers[-1].split("/", 1)[0] if entry.Layers else ""
        for tag in image.repo_tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = top
    members.append(_file("manifest.json", d.canonical_json(entries), mtime))
    members.append(_file("repositories", d.canonical_json(repositories), mtime))
    return tar_plan(members)


def _add_image(members: list[list], image: Image, mtime: int, layer_dirs: dict[str, str],
               configs: set[str]) -> d.ArchiveEntry:
    """Add the members of one image's new layers and config; return its manifest entry."""
    config, layers = image.config, image.layers
    config_bytes = d.canonical_json(config)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    ids = layer_ids([layer.diff_id for layer in layers], "sha256:" + config_hex)
    legacy_config = d.to_data(config.config) if config.config is not None else {}
    parent = None
    dirs = []
    for i, (layer, lid) in enumerate(zip(layers, ids)):
        if layer.diff_id not in layer_dirs:
            layer_dirs[layer.diff_id] = lid
            members.append(tar_member(_tar_info(lid, mtime, directory=True)))
            members.append(_file(f"{lid}/VERSION", b"1.0", mtime))
            legacy = {"id": lid, "created": config.created or "1970-01-01T00:00:01Z",
                      "os": config.os, "architecture": config.architecture,
                      "container_config": {}}
            if parent:
                legacy["parent"] = parent
            if i == len(layers) - 1:
                legacy["config"] = legacy_config
            members.append(_file(f"{lid}/json", d.canonical_json(legacy), mtime))
            members.append(_file(f"{lid}/layer.tar", [Checked(layer.diff_id, layer.plan)],
                                 mtime))
        dirs.append(layer_dirs[layer.diff_id])
        parent = lid
    if config_hex not in configs:
        configs.add(config_hex)
        members.append(_file(f"{config_hex}.json", config_bytes, mtime))
    return d.ArchiveEntry(Config=f"{config_hex}.json", RepoTags=image.repo_tags,
                          Layers=[f"{lid}/layer.tar" for lid in dirs])


def read_image(path: str, workdir: str, log: Log, name: str | None = None,
               tag: str | None = None) -> Image:
    """Open a base image: a docker-archive file or an OCI image layout directory."""
    if os.path.isdir(path):
        return read_oci_layout(path, workdir, log, name, tag)
    return read_docker_archive(path, workdir, log, name, tag)


def read_images(path: str, workdir: str, log: Log) -> list[Image]:
    """Open every image of a docker-archive file or an OCI image layout directory."""
    if os.path.isdir(path):
        return read_oci_layout(path, workdir, log, every=True)
    return read_docker_archive(path, workdir, log, every=True)


def read_docker_archive(path: str, workdir: str, log: Log, name: str | None = None,
                        tag: str | None = None, every: bool = False):
    """Open the docker-archive at `path` (plain, gzip or zstd) and copy its layers, checked and
    uncompressed, into `workdir`. `name`/`tag` choose among several images (default: first);
    with `every`, all images are read and returned as a list."""
    compression = compression_of(path)
    plain = os.path.join(workdir, "base.tar")
    with open_maybe_compressed(path) as src, open(plain, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    try:
        with tarfile.open(plain, "r:") as tar:
            entries = [d.from_json(d.ArchiveEntry, e)
                       for e in json.load(_member(tar, "manifest.json"))]
            if not entries:
                raise LayerError("the base image's manifest.json lists no image")
            chosen = entries if every else [_choose(entries, name, tag)]
            images = []
            for n, entry in enumerate(chosen):
                config = d.from_json(d.ImageConfig, _member(tar, entry.Config).read())
                diff_ids = config.rootfs.diff_ids
                if len(diff_ids) != len(entry.Layers):
                    raise LayerError(f"the base image has {len(entry.Layers)} layers but its "
                                     f"config lists {len(diff_ids)} diff_ids")
                layers = []
                for i, member in enumerate(entry.Layers):
                    layer_path = os.path.join(workdir, f"base-{n}-layer-{i}.tar")
                    info = _data_member(tar, member)
                    where = _Where(path, compression, info.offset_data, info.sparse is not None)
                    with _member(tar, member) as raw:
                        layers.append(_take_layer(raw, layer_path, config, i, f"'{member}'",
                                                  log, where))
                images.append(Image(config, layers, entry.RepoTags or []))
    finally:
        os.unlink(plain)
    return images if every else images[0]


@dataclass
class _Where:
    """Where the bytes of a foreign layer (maybe compressed) lie in the image's file: from
    `offset` of the file, or of its uncompressed bytes when the file is compressed."""
    path: str
    compression: str  # of the file: none, gz, zstd
    offset: int = 0
    sparse: bool = False

    def origin(self, layer_compression: str) -> tuple[Callable[[int, int], object] | None, str]:
        """A function giving the segment of `n` bytes from `o` of the uncompressed layer, or
        None and why no stream script can read it."""
        path, offset = self.path, self.offset
        if self.sparse:
            return None, "it is stored as a sparse file in the archive"
        if self.compression == "none" and layer_compression == "none":
            return (lambda o, n: FileRange(path, offset + o, n)), ""
        if self.compression == "none" and layer_compression == "gz":
            return (lambda o, n: Gunzip(path, offset, o, n)), ""
        if self.compression == "gz" and layer_compression == "none":
            return (lambda o, n: Gunzip(path, 0, offset + o, n)), ""
        if "zstd" in (self.compression, layer_compression):
            return None, ("it is zstd-compressed (a stream script reads plain and "
                          "gzip-compressed base images)")
        return None, "it is a gzip-compressed layer inside a gzip-compressed archive"


def _take_layer(raw, layer_path: str, config: d.ImageConfig, i: int, what: str,
                log: Log, where: _Where) -> Layer:
    """Copy layer `i` of a foreign image from the stream `raw` (maybe compressed) to
    `layer_path`, uncompressed; check it against the config's diff_id and leave out its unsafe
    entries (updating the diff_id then). `where` locates `raw` in the image's file, for the
    layer's origin."""
    with open(layer_path + ".raw", "wb") as out:
        shutil.copyfileobj(raw, out, 1 << 20)
    range_of, why = where.origin(compression_of(layer_path + ".raw"))
    with open_maybe_compressed(layer_path + ".raw") as src, open(layer_path, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.unlink(layer_path + ".raw")
    want = config.rootfs.diff_ids[i]
    got, size = file_digest(layer_path)
    if got != want:
        raise LayerError(f"base image layer {i} ({what}) has digest {got}, "
                         f"but its config says {want}")
    label = f"base image layer {i}"
    members, dropped = scan_layer(layer_path, log, label)
    names = {name for name, _ in members}
    if not dropped:
        origin = None
        if range_of is not None:
            origin = [range_of(0, size)] if size else []
        return Layer(file_plan(layer_path), got, _store_names(names), origin, why)
    log(f"{label} holds unsafe entries: using a copy without them")
    kept = [m for _, m in members]
    plan = members_plan(kept, lambda m: [FileRange(layer_path, m.offset_data, m.size)])
    got = plan_digest(plan)
    config.rootfs.diff_ids[i] = got
    origin = members_plan(kept, lambda m: [range_of(m.offset_data, m.size)]) if range_of \
        else None
    return Layer(plan, got, _store_names(names), origin, why)


def _member(tar: tarfile.TarFile, name: str):
    try:
        f = tar.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        raise LayerError(f"the base image has no file '{name}'")
    return f


def _data_member(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    """The member holding the bytes of `name`, following links as `extractfile` does."""
    for _ in range(40):
        try:
            member = tar.getmember(name)
        except KeyError:
            raise LayerError(f"the base image has no file '{name}'") from None
        if member.issym():
            name = posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                     member.linkname))
        elif member.islnk():
            name = member.linkname
        else:
            return member
    raise LayerError(f"the base image's '{name}' is a loop of links")


def _choose(entries: list[d.ArchiveEntry], name: str | None, tag: str | None):
    if not name and not tag:
        return entries[0]
    for e in entries:
        for repo_tag in e.RepoTags or []:
            repo, _, t = repo_tag.rpartition(":")
            if (not name or repo == name) and (not tag or t == tag):
                return e
    wanted = f"{name or '*'}:{tag or '*'}"
    known = ", ".join(t for e in entries for t in (e.RepoTags or [])) or "none"
    raise LayerError(f"the base image has no image tagged '{wanted}' (it has: {known})")


def _store_names(names: set[str], store_dir: str = "nix/store") -> set[str]:
    prefix = store_dir + "/"
    return {"/" + prefix + n[len(prefix):].split("/", 1)[0]
            for n in names if n.startswith(prefix) and len(n) > len(prefix)}


# -- OCI layout -------------------------------------------------------------------------------

_OCI_LAYER_TYPES = {"none": d.MEDIA_OCI_LAYER, "gz": d.MEDIA_OCI_LAYER_GZIP,
                    "zstd": d.MEDIA_OCI_LAYER_ZSTD}


def write_oci_layout(dest: str, config: d.ImageConfig, layers: list[Layer], ref_name: str,
                     image_name: str, compressor: str) -> None:
    """Write an OCI image layout directory at `dest`, each layer compressed with `compressor`."""
    blobs = os.path.join(dest, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data: bytes) -> tuple[str, int]:
        digest = d.sha256_digest(data)
        with open(os.path.join(blobs, digest.split(":", 1)[1]), "wb") as f:
            f.write(data)
        return digest, len(data)

    descriptors = []
    for layer in layers:
        tmp = os.path.join(blobs, "incoming")
        digest = compress(layer.plan, tmp, compressor)
        size = os.path.getsize(tmp)
        os.replace(tmp, os.path.join(blobs, digest.split(":", 1)[1]))
        descriptors.append(d.Descriptor(mediaType=_OCI_LAYER_TYPES[compressor], digest=digest,
                                        size=size))
    config_digest, config_size = put(d.canonical_json(config))
    manifest = d.OCIManifest(
        config=d.Descriptor(mediaType=d.MEDIA_OCI_CONFIG, digest=config_digest,
                            size=config_size),
        layers=descriptors, mediaType=d.MEDIA_OCI_MANIFEST)
    manifest_digest, manifest_size = put(d.canonical_json(manifest))
    index = d.OCIIndex(manifests=[d.Descriptor(
        mediaType=d.MEDIA_OCI_MANIFEST, digest=manifest_digest, size=manifest_size,
        annotations={"org.opencontainers.image.ref.name": ref_name,
                     "io.containerd.image.name": f"{image_name}:{ref_name}"},
        platform=d.Platform(architecture=config.architecture, os=config.os))],
        mediaType=d.MEDIA_OCI_INDEX)
    with open(os.path.join(dest, "index.json"), "wb") as f:
        f.write(d.canonical_json(index))
    with open(os.path.join(dest, "oci-layout"), "wb") as f:
        f.write(d.canonical_json({"imageLayoutVersion": "1.0.0"}))


_MANIFEST_TYPES = (d.MEDIA_OCI_MANIFEST, d.MEDIA_DOCKER_MANIFEST)
_INDEX_TYPES = (d.MEDIA_OCI_INDEX, d.MEDIA_DOCKER_MANIFEST_LIST)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def read_oci_layout(path: str, workdir: str, log: Log, name: str | None = None,
                    tag: str | None = None, every: bool = False):
    """Open the OCI image layout directory at `path` as `read_docker_archive` opens an
    archive. Manifests are found through `index.json` (nested indexes followed); `tag` matches
    the `org.opencontainers.image.ref.name` annotation, `name` the repository part of
    `io.containerd.image.name`. Every blob read is checked against its descriptor's digest and
    size; blobs are looked up by digest only, so a layout cannot make dtx read outside it."""
    index = d.from_json(d.OCIIndex, _blob_or_file(path, os.path.join(path, "index.json")))
    found = []  # (descriptor, annotations of the outermost descriptor)
    _collect_manifests(path, index, None, found, 0)
    if not found:
        raise LayerError("the base image's index.json lists no image manifest")
    if every:
        chosen = found
    else:
        chosen = [_choose_oci(found, name, tag)]
    images = []
    for n, (desc, notes) in enumerate(chosen):
        manifest = d.from_json(d.OCIManifest, _blob(path, desc))
        config = d.from_json(d.ImageConfig, _blob(path, manifest.config))
        if len(config.rootfs.diff_ids) != len(manifest.layers):
            raise LayerError(f"the base image has {len(manifest.layers)} layers but its "
                             f"config lists {len(config.rootfs.diff_ids)} diff_ids")
        layers = []
        for i, layer_desc in enumerate(manifest.layers):
            blob = _blob_path(path, layer_desc)
            layer_path = os.path.join(workdir, f"base-{n}-layer-{i}.tar")
            with open(blob, "rb") as raw:
                layer = _take_layer(_Verifying(raw, layer_desc), layer_path, config, i,
                                    f"'{layer_desc.digest}'", log, _Where(blob, "none"))
            layers.append(layer)
        images.append(Image(config, layers, _oci_repo_tags(notes)))
    return images if every else images[0]


def _collect_manifests(root: str, index: d.OCIIndex, outer: dict | None, found: list,
                       depth: int) -> None:
    if depth > 4:
        raise LayerError("the base image's indexes nest too deeply")
    for desc in index.manifests or []:
        notes = outer if outer is not None else (desc.annotations or {})
        if desc.mediaType in _INDEX_TYPES:
            nested = d.from_json(d.OCIIndex, _blob(root, desc))
            _collect_manifests(root, nested, notes, found, depth + 1)
        elif desc.mediaType in _MANIFEST_TYPES or desc.mediaType is None:
            found.append((desc, notes))


def _choose_oci(found: list, name: str | None, tag: str | None):
    if not name and not tag:
        return found[0]
    for desc, notes in found:
        ref = notes.get("org.opencontainers.image.ref.name", "")
        full = notes.get("io.containerd.image.name", "")
        repo, _, full_tag = full.rpartition(":")
        ref_tag = ref.rpartition(":")[2] if ":" in ref else ref
        if (not tag or tag in (ref_tag, full_tag)) and (not name or name == repo):
            return desc, notes
    wanted = f"{name or '*'}:{tag or '*'}"
    known = ", ".join(a.get("io.containerd.image.name")
                      or a.get("org.opencontainers.image.ref.name", "?")
                      for _, a in found)
    raise LayerError(f"the base image has no image tagged '{wanted}' (it has: {known})")


def _oci_repo_tags(notes: dict) -> list[str]:
    full = notes.get("io.containerd.image.name")
    if full and ":" in full:
        return [full]
    ref = notes.get("org.opencontainers.image.ref.name")
    if ref and ":" in ref and "/" not in ref.rpartition(":")[2]:
        return [ref]
    return []


def _blob_path(root: str, desc: d.Descriptor) -> str:
    """The file of a blob, by its descriptor's digest (which must be a plain sha256)."""
    if not isinstance(desc.digest, str) or not _DIGEST.fullmatch(desc.digest):
        raise LayerError(f"the base image names a blob by an unsupported digest "
                         f"'{desc.digest}'")
    blob = os.path.join(root, "blobs", "sha256", desc.digest.split(":", 1)[1])
    try:
        st = os.lstat(blob)
    except FileNotFoundError:
        raise LayerError(f"the base image has no blob {desc.digest}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LayerError(f"the base image's blob {desc.digest} is not a regular file")
    if desc.size is not None and st.st_size != desc.size:
        raise LayerError(f"the base image's blob {desc.digest} has {st.st_size} bytes, "
                         f"but its descriptor says {desc.size}")
    return blob


def _blob(root: str, desc: d.Descriptor) -> bytes:
    """A small blob's bytes, checked against its digest."""
    data = _blob_or_file(root, _blob_path(root, desc))
    if d.sha256_digest(data) != desc.digest:
        raise LayerError(f"the base image's blob {desc.digest} does not match its digest")
    return data


def _blob_or_file(root: str, path: str, limit: int = 16 << 20) -> bytes:
    if os.path.islink(path) or not os.path.isfile(path):
        raise LayerError(f"the base image has no regular file "
                         f"'{os.path.relpath(path, root)}'")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise LayerError(f"the base image's '{os.path.relpath(path, root)}' is too large")
    return data


class _Verifying:
    """A reader of a blob that checks its digest once the blob has been read to the end."""

    def __init__(self, f, desc: d.Descriptor):
        self.f = f
        self.desc = desc
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        if (not data or n < 0) and "sha256:" + self.h.hexdigest() != self.desc.digest:
            raise LayerError(f"the base image's blob {self.desc.digest} does not match "
                                 f"its digest")
        return data
