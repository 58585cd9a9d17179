"""`dtx-prefetch-docker`: pin an image for `dockerTools.pullImage`, as `nix-prefetch-docker` does.

    dtx-prefetch-docker IMAGE[:TAG|@DIGEST] [--os OS] [--arch ARCH] [--variant V]
                        [--registry URL] [--final-image-name NAME] [--final-image-tag TAG]
                        [--no-tls-verify] [--json] [--quiet]

resolves the reference to its digest (an index's digest for a multi-platform image, as
`imageDigest` pins it), pulls the image once exactly as `builtin:docker-pull` would, and prints
the `pullImage { … }` call with `imageDigest` and `hash` (SRI) that reproduces the archive. With
`--json` it prints the same facts as a JSON object. Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile

from ..hashes import Hash
from ..image.layers import LayerError
from ..image.pull import PullRequest, pull_image
from ..image.registry import ImageRef, RegistryError

PROG = "dtx-prefetch-docker"


def _host_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine)


def _nix_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Print the dockerTools.pullImage "
                                     "call that pins an image by digest and output hash.")
    parser.add_argument("image", help="IMAGE[:TAG|@DIGEST], e.g. localhost:5000/ns/name:1.0")
    parser.add_argument("--os", default="linux")
    parser.add_argument("--arch", default=None, help="default: this machine's")
    parser.add_argument("--variant", default=None)
    parser.add_argument("--registry", default=None, metavar="URL",
                        help="the registry's URL, when IMAGE does not name its host")
    parser.add_argument("--final-image-name", default=None)
    parser.add_argument("--final-image-tag", default=None)
    parser.add_argument("--no-tls-verify", action="store_true",
                        help="do not verify TLS (plain HTTP)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Nix")
    parser.add_argument("--quiet", action="store_true", help="no progress on standard error")
    opts = parser.parse_args(argv)

    log = (lambda _line: None) if opts.quiet else \
        (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        registry = None
        if opts.registry:
            registry = opts.registry.split("://", 1)[-1].split("/", 1)[0]
        ref = ImageRef.parse(opts.image, registry)
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    # The name as pullImage gets it: what the user wrote, without tag or digest.
    name = opts.image.partition("@")[0]
    if ref.tag and name.endswith(":" + ref.tag):
        name = name[:-len(ref.tag) - 1]
    tag = ref.tag or "latest"
    arch = opts.arch or _host_arch()
    req = PullRequest(image_name=name, image_tag=tag, image_digest=ref.digest,
                      final_name=opts.final_image_name or name,
                      final_tag=opts.final_image_tag or tag, os=opts.os, arch=arch,
                      variant=opts.variant, tls_verify=not opts.no_tls_verify,
                      registry_url=opts.registry)
    work = tempfile.mkdtemp(prefix="dtx-prefetch-docker-")
    try:
        dest = os.path.join(work, "image.tar")
        layers = os.path.join(work, "layers")
        os.mkdir(layers)
        result = pull_image(req, dest, layers, log)
        h = hashlib.sha256()
        with open(dest, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        sri = Hash("sha256", h.digest()).sri()
    except (RegistryError, LayerError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)

    fields = [("imageName", name), ("imageDigest", result.digest), ("hash", sri),
              ("finalImageName", req.final_name), ("finalImageTag", req.final_tag)]
    if opts.os != "linux":
        fields.append(("os", opts.os))
    if opts.arch:
        fields.append(("arch", arch))
    if opts.variant:
        fields.append(("variant", opts.variant))
    if opts.registry:
        fields.append(("registryUrl", opts.registry))
    if opts.no_tls_verify:
        fields.append(("tlsVerify", False))
    if opts.json:
        print(json.dumps(dict(fields, imageId=result.image_id), indent=2))
    else:
        print("pullImage {")
        for key, value in fields:
            text = ("true" if value else "false") if isinstance(value, bool) \
                else _nix_string(value)
            print(f"  {key} = {text};")
        print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
