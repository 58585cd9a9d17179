"""The JSON documents of container images, as typed attrs classes.

Covered: the Docker/OCI image configuration (`ImageConfig` with its `ContainerConfig`, `RootFS`
and `History`), the entries of a docker-archive's `manifest.json` (`ArchiveEntry`), content
descriptors, the OCI image manifest and index, the Docker schema-2 manifest and manifest list.
They are shared by the image builder and by anything that talks to registries.

Invariants:
- A field that is absent from a document is `None` here and stays absent when written; an empty
  list or mapping is written as given (Docker distinguishes `"Cmd": []` from no `Cmd`).
- Fields this module does not know survive a round trip: `from_json` keeps them in each class's
  `extra` mapping and `to_json` writes them back.
- `canonical_json` is the one serialisation: sorted keys, compact separators, UTF-8, so a
  document's digest depends only on its content.
"""

from __future__ import annotations

import hashlib
import json
import typing
from typing import Any, Optional

import attrs
import cattrs
from attrs import define, field

MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _key(name: str):
    """A field written under the JSON key `name`."""
    return {"key": name}


def _opt(name: str, default=None):
    return field(default=default, metadata=_key(name))


def _extra():
    return field(factory=dict, metadata={"extra": True})


@define
class ContainerConfig:
    """The `config` member of an image configuration: how a container of the image runs."""
    User: Optional[str] = _opt("User")
    ExposedPorts: Optional[dict[str, dict]] = _opt("ExposedPorts")
    Env: Optional[list[str]] = _opt("Env")
    Entrypoint: Optional[list[str]] = _opt("Entrypoint")
    Cmd: Optional[list[str]] = _opt("Cmd")
    Volumes: Optional[dict[str, dict]] = _opt("Volumes")
    WorkingDir: Optional[str] = _opt("WorkingDir")
    Labels: Optional[dict[str, str]] = _opt("Labels")
    StopSignal: Optional[str] = _opt("StopSignal")
    Healthcheck: Optional[dict[str, Any]] = _opt("Healthcheck")
    OnBuild: Optional[list[str]] = _opt("OnBuild")
    Shell: Optional[list[str]] = _opt("Shell")
    ArgsEscaped: Optional[bool] = _opt("ArgsEscaped")
    extra: dict[str, Any] = _extra()


@define
class RootFS:
    type: str = field(default="layers", metadata=_key("type"))
    diff_ids: list[str] = field(factory=list, metadata=_key("diff_ids"))
    extra: dict[str, Any] = _extra()


@define
class History:
    created: Optional[str] = _opt("created")
    created_by: Optional[str] = _opt("created_by")
    author: Optional[str] = _opt("author")
    comment: Optional[str] = _opt("comment")
    empty_layer: Optional[bool] = _opt("empty_layer")
    extra: dict[str, Any] = _extra()


@define
class ImageConfig:
    """An image configuration (Docker image spec v1.2 / OCI image config)."""
    architecture: str = field(default="amd64", metadata=_key("architecture"))
    os: str = field(default="linux", metadata=_key("os"))
    variant: Optional[str] = _opt("variant")
    created: Optional[str] = _opt("created")
    author: Optional[str] = _opt("author")
    config: Optional[ContainerConfig] = _opt("config")
    rootfs: RootFS = field(factory=RootFS, metadata=_key("rootfs"))
    history: Optional[list[History]] = _opt("history")
    extra: dict[str, Any] = _extra()


@define
class ArchiveEntry:
    """One image of a docker-archive's `manifest.json`."""
    Config: str = field(metadata=_key("Config"))
    RepoTags: Optional[list[str]] = _opt("RepoTags")
    Layers: list[str] = field(factory=list, metadata=_key("Layers"))
    extra: dict[str, Any] = _extra()


@define
class Platform:
    architecture: str = field(default="amd64", metadata=_key("architecture"))
    os: str = field(default="linux", metadata=_key("os"))
    os_version: Optional[str] = _opt("os.version")
    os_features: Optional[list[str]] = _opt("os.features")
    variant: Optional[str] = _opt("variant")
    extra: dict[str, Any] = _extra()


@define
class Descriptor:
    """A content descriptor: what a blob is, its digest and size."""
    mediaType: str = field(metadata=_key("mediaType"))
    digest: str = field(metadata=_key("digest"))
    size: int = field(metadata=_key("size"))
    urls: Optional[list[str]] = _opt("urls")
    annotations: Optional[dict[str, str]] = _opt("annotations")
    platform: Optional[Platform] = _opt("platform")
    extra: dict[str, Any] = _extra()


@define
class OCIManifest:
    config: Descriptor = field(metadata=_key("config"))
    layers: list[Descriptor] = field(factory=list, metadata=_key("layers"))
    schemaVersion: int = field(default=2, metadata=_key("schemaVersion"))
    mediaType: Optional[str] = _opt("mediaType")
    annotations: Optional[dict[str, str]] = _opt("annotations")
    subject: Optional[Descriptor] = _opt("subject")
    extra: dict[str, Any] = _extra()


@define
class OCIIndex:
    manifests: list[Descriptor] = field(factory=list, metadata=_key("manifests"))
    schemaVersion: int = field(default=2, metadata=_key("schemaVersion"))
    mediaType: Optional[str] = _opt("mediaType")
    annotations: Optional[dict[str, str]] = _opt("annotations")
    extra: dict[str, Any] = _extra()


@define
class DockerManifest:
    """A Docker image manifest, schema 2."""
    config: Descriptor = field(metadata=_key("config"))
    layers: list[Descriptor] = field(factory=list, metadata=_key("layers"))
    schemaVersion: int = field(default=2, metadata=_key("schemaVersion"))
    mediaType: str = field(default=MEDIA_DOCKER_MANIFEST, metadata=_key("mediaType"))
    extra: dict[str, Any] = _extra()


@define
class DockerManifestList:
    manifests: list[Descriptor] = field(factory=list, metadata=_key("manifests"))
    schemaVersion: int = field(default=2, metadata=_key("schemaVersion"))
    mediaType: str = field(default=MEDIA_DOCKER_MANIFEST_LIST, metadata=_key("mediaType"))
    extra: dict[str, Any] = _extra()


# -- (un)structuring ----------------------------------------------------------------------------

converter = cattrs.Converter()


def _is_document(cls) -> bool:
    return attrs.has(cls) and any(f.metadata.get("extra") for f in attrs.fields(cls))


def _make_unstructure(cls):
    hints = typing.get_type_hints(cls)
    fields = [(f.name, f.metadata.get("key"), hints[f.name]) for f in attrs.fields(cls)
              if not f.metadata.get("extra")]

    def unstructure(obj) -> dict:
        out = dict(obj.extra)
        for name, key, hint in fields:
            value = getattr(obj, name)
            if value is not None:
                out[key] = converter.unstructure(value, hint)
        return out
    return unstructure


def _make_structure(cls):
    hints = typing.get_type_hints(cls)
    fields = [(f.name, f.metadata.get("key"), hints[f.name]) for f in attrs.fields(cls)
              if not f.metadata.get("extra")]
    known = {key for _, key, _ in fields}

    def structure(data, _type) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object for {cls.__name__}, got "
                             f"{type(data).__name__}")
        kwargs = {}
        for name, key, hint in fields:
            if key in data:
                value = data[key]
                kwargs[name] = None if value is None else converter.structure(value, hint)
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)
    return structure


converter.register_unstructure_hook_factory(_is_document, _make_unstructure)
converter.register_structure_hook_factory(_is_document, _make_structure)
converter.register_structure_hook(Any, lambda v, _: v)

T = typing.TypeVar("T")


def from_json(cls: type[T], data: bytes | str | dict | list) -> T:
    """Read a document (JSON text or already decoded) as `cls`."""
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    return converter.structure(data, cls)


def to_data(doc) -> Any:
    """The JSON-ready value of a document (or a list of documents)."""
    if isinstance(doc, list):
        return [converter.unstructure(d) for d in doc]
    return converter.unstructure(doc)


def canonical_json(value) -> bytes:
    """Serialise a document or plain JSON value canonically: sorted keys, no spaces."""
    if attrs.has(type(value)) or (isinstance(value, list) and value
                                  and attrs.has(type(value[0]))):
        value = to_data(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    """The `sha256:<hex>` digest of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
