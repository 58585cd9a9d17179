"""The `builtin:docker-pull` builder: an image from a registry, as a docker-archive in the store.

`dockerTools.pullImage` (stdlib/build-support/docker/pull-image.dtx) makes a fixed-output
derivation with `builder = "builtin:docker-pull"` and these attributes:

  imageName      the image, `[registry/]name` as docker writes it (Docker Hub if no registry)
  imageDigest    the manifest (or index) digest to pull; empty: pull `imageTag`
  imageTag       the tag, when there is no digest
  imageId        if set, the image ID (config digest) the pulled image must have
  finalImageName, finalImageTag   the name and tag written into the archive
  os, arch, variant               the platform chosen from a manifest list or OCI index
  tlsVerify      "1" to verify TLS; "" also means plain HTTP, as for loopback registries
  registryUrl    where the registry's API is, overriding the host of `imageName`

`pull_image` does the work for the builder and for `dtx-prefetch-docker`: it resolves the
reference to one platform's manifest, fetches the configuration, then the layers on a small
thread pool. Each layer is checked against its digest as it streams (registry.py) and
decompressed on the fly into a plain tar, whose digest must be the configuration's diff_id.
The archive is then written deterministically: fixed mtime and owners, the configuration's bytes
as the registry sent them (so the image ID stays the registry's), layers in manifest order with
the legacy per-layer `json` and `VERSION` files and the `repositories` file. The same image and
parameters thus always give the same bytes, which the output hash pins.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import documents as d
from .archive import layer_ids
from .layers import DEFAULT_MTIME, LayerError
from .registry import (BytesSink, ImageRef, Progress, RegistryClient, RegistryError,
                       find_credentials)

Log = Callable[[str], None]


@dataclass
class PullRequest:
    """What to pull and how to name it."""
    image_name: str
    image_tag: str = "latest"
    image_digest: str | None = None
    final_name: str | None = None
    final_tag: str | None = None
    os: str = "linux"
    arch: str = "amd64"
    variant: str | None = None
    tls_verify: bool = True
    registry_url: str | None = None
    image_id: str | None = None

    def ref(self) -> ImageRef:
        registry = None
        if self.registry_url:
            registry = self.registry_url.split("://", 1)[-1].split("/", 1)[0]
        ref = ImageRef.parse(self.image_name, registry)
        if self.image_digest:
            return ImageRef(ref.registry, ref.repository, ref.tag, self.image_digest)
        return ImageRef(ref.registry, ref.repository, ref.tag or self.image_tag or "latest")

    def repo_tag(self) -> str:
        name = self.final_name or self.image_name
        tag = self.final_tag or self.image_tag or "latest"
        return f"{name}:{tag}"


@dataclass
class PullResult:
    digest: str           # what imageDigest pins (an index's digest for a multi-platform image)
    manifest_digest: str  # the platform's manifest
    image_id: str         # the configuration's digest
    size: int             # of the archive written


class LayerSink:
    """Writes a layer blob, decompressed (gzip or zstd, found by its magic), to a plain tar file
    and computes the digest of the plain tar (the diff_id)."""

    def __init__(self, path: str):
        self.path = path
        self.file = None
        self.reset()

    def reset(self) -> None:
        if self.file:
            self.file.close()
        self.file = open(self.path, "wb")
        self.hasher = hashlib.sha256()
        self.head = b""
        self.decoder = None
        self.kind = None
        self.error: Exception | None = None

    def write(self, data: bytes) -> None:
        if self.kind is None:
            self.head += data
            if len(self.head) < 4:
                return
            data, self.head = self.head, b""
            self._start(data[:4])
        if self.error is not None:
            return
        if self.decoder is None:
            self._out(data)
            return
        try:
            self._out(self.decoder(data))
        except Exception as e:  # noqa: BLE001 (zlib.error, zstandard.ZstdError)
            # Reported by finish(), after the blob's digest has been checked: a corrupted blob
            # is named as such rather than as a decompression failure.
            self.error = e

    def _start(self, magic: bytes) -> None:
        if magic[:2] == b"\x1f\x8b":
            self.kind = "gzip"
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.decoder = self._gunzip
        elif magic == b"\x28\xb5\x2f\xfd":
            self.kind = "zstd"
            try:
                import zstandard
            except ImportError:
                raise LayerError("a zstd-compressed layer needs the Python package "
                                 "'zstandard'") from None
            self.decoder = zstandard.ZstdDecompressor().decompressobj().decompress
        else:
            self.kind = "tar"

    def _gunzip(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._zlib.decompress(data))
            data = self._zlib.unused_data if self._zlib.eof else b""
            if data:  # a further gzip member
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return b"".join(out)

    def _out(self, data: bytes) -> None:
        if data:
            self.hasher.update(data)
            self.file.write(data)

    def finish(self) -> str:
        """Close the file; return the diff_id."""
        if self.error is not None:
            self.file.close()
            raise LayerError(f"the layer does not decompress ({self.kind}): {self.error}")
        if self.kind is None and self.head:
            self.kind = "tar"
            self._out(self.head)
        if self.kind == "gzip":
            if not self._zlib.eof and self.file.tell() > 0:
                raise LayerError("the layer's gzip stream is truncated")
            self._out(self._zlib.flush())
        self.file.close()
        return "sha256:" + self.hasher.hexdigest()


def pull_image(req: PullRequest, dest: str, workdir: str, log: Log,
               environ: Mapping[str, str] | None = None, retries: int = 4,
               backoff: float = 0.5, workers: int = 4) -> PullResult:
    """Pull `req` into a docker-archive at `dest`, using `workdir` for the layers."""
    ref = req.ref()
    credentials = find_credentials(ref.registry, environ, log)
    client = RegistryClient(ref, req.registry_url, req.tls_verify, log, credentials,
                            retries=retries, backoff=backoff, workers=workers)
    try:
        log(f"pulling {ref} from {client.base}")
        resolved = client.resolve(req.os, req.arch, req.variant)
        manifest = resolved.manifest.document
        config_sink = BytesSink()
        client.fetch_blob(manifest.config, config_sink, label="configuration")
        config_bytes = bytes(config_sink.data)
        try:
            config = d.from_json(d.ImageConfig, config_bytes)
        except Exception as e:  # noqa: BLE001 (cattrs raises several kinds)
            raise RegistryError(f"the configuration of {ref} is malformed: {e}") from None
        image_id = manifest.config.digest
        if req.image_id:
            want = req.image_id if ":" in req.image_id else "sha256:" + req.image_id
            if not image_id.startswith(want) or len(want) < 19:
                raise RegistryError(f"{ref} has image ID {image_id}, but imageId says "
                                    f"{req.image_id}")
        if resolved.index is None and (config.os != req.os
                                       or config.architecture != req.arch):
            log(f"warning: {ref} is a {config.os}/{config.architecture} image, not "
                f"{req.os}/{req.arch} (it has no index to choose from)")
        diff_ids = config.rootfs.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise RegistryError(f"{ref}: the manifest lists {len(manifest.layers)} layers but "
                                f"the configuration {len(diff_ids)} diff_ids")
        sinks = [LayerSink(os.path.join(workdir, f"layer-{i}.tar"))
                 for i in range(len(manifest.layers))]
        total = sum(layer.size for layer in manifest.layers)
        progress = Progress(log, str(ref), total, len(manifest.layers))
        client.fetch_blobs([(desc, sink, f"layer {i + 1}")
                            for i, (desc, sink) in enumerate(zip(manifest.layers, sinks))],
                           progress)
        for i, (sink, want) in enumerate(zip(sinks, diff_ids)):
            got = sink.finish()
            if got != want:
                raise RegistryError(f"layer {i + 1} of {ref} uncompresses to {got}, but the "
                                    f"configuration says {want}")
        write_archive(dest, config_bytes, config, [s.path for s in sinks], diff_ids,
                      [req.repo_tag()])
        for sink in sinks:
            os.unlink(sink.path)
    finally:
        client.close()
    return PullResult(resolved.digest, resolved.manifest.digest, image_id,
                      os.path.getsize(dest))


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = DEFAULT_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = size
    return info


def write_archive(dest: str, config_bytes: bytes, config: d.ImageConfig, layer_paths: list[str],
                  diff_ids: list[str], repo_tags: list[str]) -> None:
    """Write an uncompressed docker-archive: the configuration byte for byte, then the layers."""
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    ids = layer_ids(diff_ids, "sha256:" + config_hex)
    legacy_config = d.to_data(config.config) if config.config is not None else {}

    def add(tar, name: str, data: bytes) -> None:
        tar.addfile(_info(name, len(data)), io.BytesIO(data))

    with open(dest, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT,
                                             copybufsize=1 << 20) as tar:
        parent = None
        for i, (path, lid) in enumerate(zip(layer_paths, ids)):
            tar.addfile(_info(lid, directory=True))
            add(tar, f"{lid}/VERSION", b"1.0")
            legacy = {"id": lid, "created": config.created or "1970-01-01T00:00:01Z",
                      "os": config.os, "architecture": config.architecture,
                      "container_config": {}}
            if parent:
                legacy["parent"] = parent
            if i == len(ids) - 1:
                legacy["config"] = legacy_config
            add(tar, f"{lid}/json", d.canonical_json(legacy))
            with open(path, "rb") as lf:
                tar.addfile(_info(f"{lid}/layer.tar", os.fstat(lf.fileno()).st_size), lf)
            parent = lid
        add(tar, f"{config_hex}.json", config_bytes)
        entry = d.ArchiveEntry(Config=f"{config_hex}.json", RepoTags=repo_tags,
                               Layers=[f"{lid}/layer.tar" for lid in ids])
        add(tar, "manifest.json", d.canonical_json([d.to_data(entry)]))
        repositories: dict[str, dict[str, str]] = {}
        for tag in repo_tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = ids[-1] if ids else ""
        add(tar, "repositories", d.canonical_json(repositories))


def request_from_env(env: Mapping[str, str]) -> PullRequest:
    """The PullRequest a `builtin:docker-pull` derivation describes."""
    return PullRequest(
        image_name=env.get("imageName", ""),
        image_tag=env.get("imageTag") or "latest",
        image_digest=env.get("imageDigest") or None,
        final_name=env.get("finalImageName") or None,
        final_tag=env.get("finalImageTag") or None,
        os=env.get("os") or "linux",
        arch=env.get("arch") or "amd64",
        variant=env.get("variant") or None,
        tls_verify=env.get("tlsVerify", "1") == "1",
        registry_url=env.get("registryUrl") or None,
        image_id=env.get("imageId") or None)


def builtin_docker_pull(drv, env: dict, out: str, log: Log, store) -> None:
    """The `builtin:docker-pull` builder: pull into `out` (the output's scratch location)."""
    from ..build import BuildError

    req = request_from_env(env)
    if not req.image_name:
        raise BuildError("'builtin:docker-pull' requires an 'imageName' attribute")
    work = out + ".work"
    os.makedirs(work)
    safe_log = _locked(log)
    try:
        result = pull_image(req, out, work, safe_log)
        safe_log(f"pulled {req.ref()} ({result.digest}, image ID {result.image_id})")
    except (RegistryError, LayerError, OSError) as e:
        if os.path.lexists(out):
            os.unlink(out)
        raise BuildError(f"cannot pull image '{req.image_name}': {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _locked(log: Log) -> Log:
    import threading
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            log(line)
    return locked
