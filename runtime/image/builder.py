"""The `builtin:docker-image` builder: a container image from store paths, in dtx's own process.

`dockerTools.buildImage` and `buildLayeredImage` (stdlib/build-support/docker) make a derivation
with `builder = "builtin:docker-image"` and `__structuredAttrs = true`; its parameters are read
from the derivation's `__json`:

  imageName, tag       the image reference; a null tag becomes the hash part of `$out`
  created              RFC 3339 time, "now", or null (1970-01-01T00:00:01Z)
  architecture, os     of the image configuration
  config               the container config (`Cmd`, `Env`, …; unknown fields are kept)
  contents             store paths whose top-level contents are copied to the image root
  closureRoots         store paths whose closure goes under /nix/store in the image
  rootTar              a tar of the image root made by `extraCommands` (replaces `contents`'
                       copy; it already holds it)
  rootLayer            a layer tar made by `runAsRoot` in the VM (mkRootLayer's layer.tar):
                       merged, with its owners, device nodes and `.wh.` whiteouts, into the one
                       new layer beside the closure (`contents` is then empty: it holds them)
  tarballs             tars unpacked at the image root
  fromImage            a docker-archive to build on, with fromImageName / fromImageTag
  layering             "single" (buildImage) or "popularity" (buildLayeredImage), maxLayers
  compressor           none | gz | zstd: of the whole archive, or of each OCI blob
  format               docker-archive (a file) | oci (an OCI layout directory) |
                       stream-script (`streamLayeredImage`: an executable that writes the
                       uncompressed docker-archive, reading the layers' files from the store
                       as it runs: stream.py) |
                       root-tar (just the image root as a tar: the input of `extraCommands`,
                       and `mkTarball`) | pure-layer (`mkPureLayer`: a directory with
                       layer.tar, json, VERSION) | merged-archive (`mergeImages`)
  withClosure          root-tar: also put the closure of `closureRoots` under /nix/store
  uid, gid             root-tar, pure-layer: the owner of every entry (default 0)
  baseJson             pure-layer: a JSON file, written as `json` with a `checksum` added
  images               merged-archive: the docker-archives, OCI layouts or stream scripts to
                       merge, in order (a stream script is read, not run, and renders only
                       files of the inputs)

Store paths are found through the build's inputs: every path named above is a string with
context, so the derivation lists it as an input and the scheduler has built it. The builder
computes the closure of `closureRoots` from the store database and checks that it lies inside the
derivation's input closure, the same set a sandboxed builder would see, so a builtin build cannot
read anything a shell builder could not. (No `exportReferencesGraph` is needed: the builder runs
in dtx and can ask the store directly.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import time
from typing import Callable

from . import documents as d
from . import stream
from .archive import (BaseImage, Image, Layer, archive_plan, merge_container_config,
                      read_image, read_images, write_docker_archive,
                      write_docker_archive_images, write_oci_layout)
from .layers import (COMPRESSORS, LayerError, MemberChecker, Tree, add_host_tree,
                     add_root_contents, add_store_paths, compressing_writer, extract,
                     parse_created, tar_member, tar_plan, tree_members,
                     tree_plan, write_tar)
from .layers import _normal as normal_name
from .stream import FileRange, PlanError, plan_digest

FORMATS = ("docker-archive", "oci", "stream-script", "root-tar", "pure-layer", "merged-archive")


def builtin_docker_image(drv, env: dict, out: str, log: Callable[[str], None], store) -> None:
    """Build the image a `builtin:docker-image` derivation describes into `out`."""
    from ..build import BuildError, input_paths
    from ..store import make_writable

    if "__json" not in drv.env:
        raise BuildError("'builtin:docker-image' needs __structuredAttrs = true")
    params = json.loads(drv.env["__json"])
    allowed = input_paths(store, drv)
    work = out + ".work"
    os.makedirs(work)
    try:
        _build(params, drv, store, allowed, work, out, log)
    except (LayerError, PlanError, OSError, ValueError, KeyError) as e:
        raise BuildError(f"cannot build image '{params.get('name', '?')}': {e}") from None
    finally:
        make_writable(work)
        shutil.rmtree(work, ignore_errors=True)


def _render_stream_script(script: str, dest: str, store, allowed: set[str]) -> None:
    """Write the archive of a stream script to `dest`. The script is read, never run; every
    file its plan names must be a file of the derivation's inputs, symlinks followed."""
    doc, literals = stream.read_script(script)
    if doc.get("storeDir") != store.store_dir:
        raise LayerError(f"the stream script '{script}' is for the store "
                         f"'{doc.get('storeDir')}'")

    def resolve(path: str) -> str:
        if ".." in path.split("/"):
            raise LayerError(f"the stream script '{script}' names the path '{path}'")
        _checked(store, allowed, path, "file of the stream script")
        target = os.path.realpath(store.real(path))
        if not target.startswith(store.real_dir + "/"):
            raise LayerError(f"the stream script's file '{path}' leads out of the store")
        _checked(store, allowed, store.logical(target), "file of the stream script")
        return target

    with open(dest, "wb") as f:
        stream.render_script(doc, literals, f, resolve)


def _checked(store, allowed: set[str], path: str, what: str) -> str:
    """The store path `path` lies in (it may name a file inside one), checked to be an input."""
    top = store.to_store_path(path)
    if top not in allowed:
        raise LayerError(f"{what} '{path}' is not an input of the derivation")
    return top


def _build(params: dict, drv, store, allowed: set[str], work: str, out: str, log) -> None:
    name = params.get("imageName") or params["name"]
    tag = params.get("tag")
    if not tag:
        tag = os.path.basename(drv.outputs["out"].path).split("-", 1)[0]
    fmt = params.get("format") or "docker-archive"
    if fmt not in FORMATS:
        raise LayerError(f"unknown format '{fmt}' (expected one of {', '.join(FORMATS)})")
    compressor = params.get("compressor") or "none"
    if compressor not in COMPRESSORS:
        raise LayerError(f"unknown compressor '{compressor}' (expected one of "
                         f"{', '.join(COMPRESSORS)})")
    mtime, created = parse_created(params.get("created"), time.time)
    if fmt == "stream-script" and compressor != "none":
        raise LayerError("a stream script writes an uncompressed archive (compressor "
                         "\"none\")")
    if params.get("created") == "now":
        log("warning: created = \"now\" makes the image differ from build to build")

    def real(path: str) -> str:
        _checked(store, allowed, path, "path")
        return store.real(path)

    if fmt == "merged-archive":
        images = []
        for i, path in enumerate(params.get("images") or []):
            staged = os.path.join(work, f"image-{i}")
            os.mkdir(staged)
            host = real(path)
            if stream.is_script(host):
                _render_stream_script(host, os.path.join(staged, "streamed.tar"), store,
                                      allowed)
                host = os.path.join(staged, "streamed.tar")
            found = read_images(host, staged, log)
            log(f"{path}: {len(found)} images")
            images += found
        if not images:
            raise LayerError("mergeImages needs at least one image")
        write_docker_archive_images(out, images, mtime, compressor)
        return

    # The image root: contents (or the extraCommands tar, which holds them), then tarballs.
    root_tree = Tree()
    contents = [_checked(store, allowed, p, "contents path") and p
                for p in params.get("contents") or []]
    root_tar = params.get("rootTar")
    if root_tar:
        staged = os.path.join(work, "root")
        os.mkdir(staged)
        extract(real(root_tar), staged, log, "extraCommands result")
        for entry in sorted(os.listdir(staged)):
            add_host_tree(root_tree, os.path.join(staged, entry), entry)
    elif params.get("layering") == "popularity":
        _link_root_contents(root_tree, contents, real, log)
    else:
        add_root_contents(root_tree, contents, real, store.store_dir, log)
    for i, tarball in enumerate(params.get("tarballs") or []):
        staged = os.path.join(work, f"tarball-{i}")
        os.mkdir(staged)
        extract(real(tarball), staged, log, f"tarball {tarball}")
        for entry in sorted(os.listdir(staged)):
            add_host_tree(root_tree, os.path.join(staged, entry), entry)

    owner = int(params.get("uid") or 0), int(params.get("gid") or 0)
    if fmt == "root-tar":
        if params.get("withClosure"):
            roots = [_checked(store, allowed, p, "closure root")
                     for p in params.get("closureRoots") or []]
            closure = store.closure(roots)
            for p in closure:
                if p not in allowed:
                    raise LayerError(f"'{p}' is in the closure but not an input of the "
                                     f"derivation")
            add_store_paths(root_tree, closure, store.real)
        with open(out, "wb") as f, compressing_writer(f, compressor) as w:
            write_tar(root_tree, w, mtime, *owner)
        return
    if fmt == "pure-layer":
        _write_pure_layer(out, root_tree, params, real, mtime, owner)
        return

    base: BaseImage | None = None
    if params.get("fromImage"):
        base_dir = os.path.join(work, "base")
        os.mkdir(base_dir)
        base = read_image(real(params["fromImage"]), base_dir, log,
                          params.get("fromImageName"), params.get("fromImageTag"))
        log(f"base image: {len(base.layers)} layers, {len(base.store_paths())} store paths")

    roots = [_checked(store, allowed, p, "closure root") for p in params.get("closureRoots")
             or []]
    if root_tar:
        roots.append(_checked(store, allowed, root_tar, "rootTar"))
    root_layer = params.get("rootLayer")
    if root_layer:
        roots.append(_checked(store, allowed, root_layer, "rootLayer"))
    roots += _mentioned_paths(json.dumps(params.get("config") or {}), store.store_dir, allowed)
    closure = store.closure(roots)
    for p in closure:
        if p not in allowed:
            raise LayerError(f"'{p}' is in the closure but not an input of the derivation")
    closure.discard(store.to_store_path(root_tar) if root_tar else "")
    closure.discard(store.to_store_path(root_layer) if root_layer else "")
    for t in params.get("tarballs") or []:
        closure.discard(store.to_store_path(t))
    if base is not None:
        already = closure & base.store_paths()
        if already:
            log(f"{len(already)} store paths are already in the base image")
        closure -= already

    layers: list[Layer] = list(base.layers) if base else []
    if params.get("layering") == "popularity":
        budget = int(params.get("maxLayers") or 100) - len(layers)
        groups = popularity_groups(store, closure, max(1, budget - 1))
    else:
        groups = [sorted(closure)]
    new_layers = []
    for i, group in enumerate(groups):
        tree = Tree()
        add_store_paths(tree, group, store.real)
        if params.get("layering") != "popularity" and i == len(groups) - 1:
            for path, entry in root_tree.entries.items():
                tree.add(path, entry)
        if len(tree):
            new_layers.append(tree)
    if params.get("layering") == "popularity" and len(root_tree):
        new_layers.append(root_tree)
    if not new_layers and (not layers or root_layer):
        new_layers.append(Tree())
    for i, tree in enumerate(new_layers):
        if root_layer and i == len(new_layers) - 1:
            plan = _merge_root_layer(tree, real(root_layer), mtime, log)
        else:
            plan = tree_plan(tree, mtime)
        diff_id = plan_digest(plan)
        log(f"layer {len(layers) + 1}: {len(tree)} entries, {diff_id}")
        layers.append(Layer(plan, diff_id))

    new_config = d.from_json(d.ContainerConfig, params.get("config") or {})
    base_config = base.config if base else None
    history = list(base_config.history or []) if base_config else []
    for _ in new_layers:
        history.append(d.History(created=created, created_by="dtx dockerTools",
                                 comment=params.get("comment") or None))
    config = d.ImageConfig(
        architecture=params.get("architecture") or "amd64",
        os=params.get("os") or "linux",
        created=created,
        author=params.get("author") or None,
        config=merge_container_config(base_config.config if base_config else None,
                                      new_config) or d.ContainerConfig(),
        rootfs=d.RootFS(type="layers", diff_ids=[layer.diff_id for layer in layers]),
        history=history)

    if fmt == "oci":
        write_oci_layout(out, config, layers, tag, name, compressor)
    elif fmt == "stream-script":
        _write_stream_script(out, Image(config, layers, [f"{name}:{tag}"]), mtime, store,
                             closure)
    else:
        write_docker_archive(out, config, layers, [f"{name}:{tag}"], mtime, compressor)


def _write_stream_script(out: str, image: Image, mtime: int, store,
                         store_paths: set[str]) -> None:
    """Write the stream script of `image` to `out`. It reads the layers' files from the store
    when it runs (a base image's layers from the base image's file), except files outside the
    store (the build's work directory), whose bytes it holds; it names `store_paths` (the
    image's closure), so its own closure keeps them."""
    layers = []
    for i, layer in enumerate(image.layers):
        if layer.origin is None and layer.no_origin:
            raise LayerError(f"streamLayeredImage cannot stream layer {i + 1} of the base "
                             f"image: {layer.no_origin}; use buildLayeredImage")
        layers.append(Layer(layer.origin if layer.origin is not None else layer.plan,
                            layer.diff_id))
    prefix = store.real_dir + "/"

    def logical(path: str) -> str | None:
        return store.logical(path) if path.startswith(prefix) else None

    doc, literals = stream.encode_plan(
        archive_plan([Image(image.config, layers, image.repo_tags)], mtime), logical)
    doc.update(storeDir=store.store_dir, images=image.repo_tags,
               storePaths=sorted(store_paths))
    stream.write_script(out, doc, literals, " ".join(image.repo_tags))


def _merge_root_layer(tree: Tree, root_layer: str, mtime: int, log) -> list:
    """The plan of a layer of the entries of `tree` and of the runAsRoot layer `root_layer`
    (a tar file) sorted by path, the runAsRoot entry winning a clash.

    The runAsRoot entries keep their owners and modes, and device nodes and fifos too (the
    script ran as root in the VM); their names are checked like any foreign layer's."""
    checker = MemberChecker(log, "runAsRoot layer")
    chosen: dict[str, tuple[tarfile.TarInfo, list]] = {}
    for info, content in tree_members(tree, mtime):
        chosen[info.name] = (info, content)
    with tarfile.open(root_layer, "r:") as extra:
        for member in extra.getmembers():
            if member.ischr() or member.isblk() or member.isfifo():
                name = normal_name(member.name)
                if name is None:
                    log(f"runAsRoot layer: dropping entry '{member.name}': invalid path")
                    continue
            else:
                name = checker.check(member)
                if name is None:
                    continue
            if member.islnk():
                log(f"runAsRoot layer: dropping hard link '{member.name}'")
                continue
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = member.type, member.mode, member.linkname
            info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, "", ""
            info.devmajor, info.devminor = member.devmajor, member.devminor
            info.mtime = mtime
            content = []
            if member.isreg():
                info.size = member.size
                content = [FileRange(root_layer, member.offset_data, member.size)]
            chosen[name] = (info, content)
    return tar_plan(tar_member(*chosen[name]) for name in sorted(chosen))


def _write_pure_layer(out: str, tree: Tree, params: dict, real, mtime: int,
                      owner: tuple[int, int]) -> None:
    """`mkPureLayer`'s output: `layer.tar`, `json` (the base JSON with the layer's checksum)
    and `VERSION`, as a layer directory of the legacy docker-archive format."""
    os.mkdir(out)
    with open(os.path.join(out, "layer.tar"), "wb") as f:
        digest = write_tar(tree, f, mtime, *owner)
    base: dict = {}
    if params.get("baseJson"):
        with open(real(params["baseJson"]), "rb") as f:
            base = json.load(f)
        if not isinstance(base, dict):
            raise LayerError("mkPureLayer: baseJson must hold a JSON object")
    base["checksum"] = digest
    with open(os.path.join(out, "json"), "wb") as f:
        f.write(d.canonical_json(base))
    with open(os.path.join(out, "VERSION"), "wb") as f:
        f.write(b"1.0")


def _mentioned_paths(text: str, store_dir: str, allowed: set[str]) -> list[str]:
    """The input store paths that `text` (the config) names, as Nix finds references."""
    by_hash = {os.path.basename(p)[:32]: p for p in allowed}
    found = re.findall(re.escape(store_dir.rstrip("/")) + r"/([0-9a-df-np-sv-z]{32})-", text)
    return sorted({by_hash[h] for h in found if h in by_hash})


def _link_root_contents(tree: Tree, contents: list[str], real, log) -> None:
    """Put the files of `contents` at the image root as symlinks into the store (directories
    merged, a later path winning), as buildLayeredImage's customisation layer does."""
    from .layers import Entry
    for path in contents:
        log(f"linking contents of {path}")
        host = real(path)
        if not os.path.isdir(host) or os.path.islink(host):
            tree.add(os.path.basename(path), Entry("symlink", 0o777, target=path))
            continue
        for dirpath, dirnames, filenames in os.walk(host):
            rel = os.path.relpath(dirpath, host)
            rel = "" if rel == "." else rel
            for dname in list(dirnames):
                p = os.path.join(dirpath, dname)
                if os.path.islink(p):
                    dirnames.remove(dname)
                    filenames.append(dname)
                else:
                    tree.add(os.path.join(rel, dname), Entry("dir", 0o755))
            for fname in filenames:
                tree.add(os.path.join(rel, fname),
                         Entry("symlink", 0o777, target=os.path.join(path, rel, fname)))


def popularity_groups(store, paths: set[str], max_groups: int) -> list[list[str]]:
    """Split `paths` into at most `max_groups` layers, the most popular paths alone.

    A path's popularity is the number of paths of the set that depend on it, directly or not
    (glibc, needed by nearly everything, is the most popular). Paths are ranked by popularity,
    then by name; the first `max_groups - 1` get a layer each, the rest share the last one. Paths
    many images share thus sit alone in layers that stay the same from image to image."""
    if not paths:
        return []
    refs = {p: store.references(p) & paths for p in paths}
    dependents: dict[str, int] = {}
    for p in paths:
        for q in store.closure([p]) & paths:
            if q != p:
                dependents[q] = dependents.get(q, 0) + 1
    ranked = sorted(paths, key=lambda p: (-dependents.get(p, 0), p))
    del refs
    if len(ranked) <= max_groups:
        return [[p] for p in ranked]
    alone = ranked[:max_groups - 1]
    return [[p] for p in alone] + [sorted(ranked[max_groups - 1:])]
