"""Image files: the docker-archive format (`docker save`/`docker load`) and the OCI image layout.

A docker-archive is a tar holding
- `manifest.json`: a list of `ArchiveEntry` (config file name, repository tags, layer files);
- the configuration as `<sha256 of it>.json`;
- each layer as `<layer id>/layer.tar`, beside the legacy `<layer id>/json` and
  `<layer id>/VERSION` (`1.0`), and the legacy `repositories` file mapping name and tag to the
  top layer id. Layer ids are derived from the parent id, the layer's diff_id and (for the top
  layer) the config digest, so they are stable.
The archive's own tar is written like a layer (fixed mtime, numeric owners, fixed order) and then
compressed as a whole (`compressor`), as nixpkgs' `image.tar.gz`.

An OCI image layout is a directory: `oci-layout`, `index.json` (one manifest, its
`org.opencontainers.image.ref.name` annotation the tag) and `blobs/sha256/<hex>`; there the
layers are compressed one by one.

`read_docker_archive` opens a base image for `fromImage`: it picks the entry by name and tag,
checks each layer against the config's diff_ids, and keeps the layers byte for byte unless they
hold unsafe entries (see layers.MemberChecker), which are then dropped and the layer rewritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field

import attrs

from . import documents as d
from .layers import (LayerError, Log, compress, file_digest, layer_is_clean,
                     open_maybe_compressed, rewrite_clean)


@dataclass
class Layer:
    """An uncompressed layer tar on the host, with its diff_id."""
    path: str
    diff_id: str
    store_paths: set[str] = field(default_factory=set)


@dataclass
class BaseImage:
    config: d.ImageConfig
    layers: list[Layer]
    repo_tags: list[str]

    def store_paths(self) -> set[str]:
        return set().union(*(layer.store_paths for layer in self.layers)) if self.layers \
            else set()


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


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    tar.addfile(_tar_info(name, mtime, len(data)), io.BytesIO(data))


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
                         repo_tags: list[str], mtime: int) -> None:
    """Write an uncompressed docker-archive tar to `dest`."""
    config_bytes = d.canonical_json(config)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    ids = layer_ids([layer.diff_id for layer in layers], "sha256:" + config_hex)
    legacy_config = d.to_data(config.config) if config.config is not None else {}
    with open(dest, "wb") as f, tarfile.open(fileobj=f, mode="w",
                                             format=tarfile.GNU_FORMAT) as tar:
        parent = None
        for i, (layer, lid) in enumerate(zip(layers, ids)):
            tar.addfile(_tar_info(lid, mtime, directory=True))
            _add_bytes(tar, f"{lid}/VERSION", b"1.0", mtime)
            legacy = {"id": lid, "created": config.created or "1970-01-01T00:00:01Z",
                      "os": config.os, "architecture": config.architecture,
                      "container_config": {}}
            if parent:
                legacy["parent"] = parent
            if i == len(layers) - 1:
                legacy["config"] = legacy_config
            _add_bytes(tar, f"{lid}/json", d.canonical_json(legacy), mtime)
            with open(layer.path, "rb") as lf:
                tar.addfile(_tar_info(f"{lid}/layer.tar", mtime,
                                      os.fstat(lf.fileno()).st_size), lf)
            parent = lid
        _add_bytes(tar, f"{config_hex}.json", config_bytes, mtime)
        entry = d.ArchiveEntry(Config=f"{config_hex}.json", RepoTags=repo_tags,
                               Layers=[f"{lid}/layer.tar" for lid in ids])
        _add_bytes(tar, "manifest.json", d.canonical_json([d.to_data(entry)]), mtime)
        repositories: dict[str, dict[str, str]] = {}
        for tag in repo_tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = ids[-1] if ids else ""
        _add_bytes(tar, "repositories", d.canonical_json(repositories), mtime)


def read_docker_archive(path: str, workdir: str, log: Log, name: str | None = None,
                        tag: str | None = None) -> BaseImage:
    """Open the docker-archive at `path` (plain, gzip or zstd) and copy its layers, checked and
    uncompressed, into `workdir`. `name`/`tag` choose among several images (default: first)."""
    plain = os.path.join(workdir, "base.tar")
    with open_maybe_compressed(path) as src, open(plain, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    try:
        with tarfile.open(plain, "r:") as tar:
            entries = [d.from_json(d.ArchiveEntry, e)
                       for e in json.load(_member(tar, "manifest.json"))]
            if not entries:
                raise LayerError("the base image's manifest.json lists no image")
            entry = _choose(entries, name, tag)
            config = d.from_json(d.ImageConfig, _member(tar, entry.Config).read())
            diff_ids = config.rootfs.diff_ids
            if len(diff_ids) != len(entry.Layers):
                raise LayerError(f"the base image has {len(entry.Layers)} layers but its "
                                 f"config lists {len(diff_ids)} diff_ids")
            layers = []
            for i, (member, want) in enumerate(zip(entry.Layers, diff_ids)):
                layer_path = os.path.join(workdir, f"base-layer-{i}.tar")
                with _member(tar, member) as raw, open(layer_path + ".raw", "wb") as out:
                    shutil.copyfileobj(raw, out, 1 << 20)
                with open_maybe_compressed(layer_path + ".raw") as src, \
                        open(layer_path, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.unlink(layer_path + ".raw")
                got, _ = file_digest(layer_path)
                if got != want:
                    raise LayerError(f"base image layer {i} ('{member}') has digest {got}, "
                                     f"but its config says {want}")
                label = f"base image layer {i}"
                clean, names = layer_is_clean(layer_path, log, label)
                if not clean:
                    log(f"{label} holds unsafe entries: using a copy without them")
                    cleaned = layer_path + ".clean"
                    rewrite_clean(layer_path, cleaned, lambda _line: None, label)
                    os.replace(cleaned, layer_path)
                    got, _ = file_digest(layer_path)
                    diff_ids[i] = got
                layers.append(Layer(layer_path, got, _store_names(names)))
    finally:
        os.unlink(plain)
    return BaseImage(config, layers, entry.RepoTags or [])


def _member(tar: tarfile.TarFile, name: str):
    try:
        f = tar.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        raise LayerError(f"the base image has no file '{name}'")
    return f


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
        digest = compress(layer.path, tmp, compressor)
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
