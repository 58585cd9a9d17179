"""dockerTools.pullImage and dtx-prefetch-docker against a real registry on 127.0.0.1.

The registry is Debian's `docker-registry` (tests/docker/registry.py), filled with `skopeo copy`
from an image dtx builds (busybox and a script) and with images the tests write and push through
the registry API themselves: a multi-platform OCI index (amd64 and arm64), a Docker manifest
list, and throwaway images whose blobs a test corrupts. Pulls go through `dtx-build` (the
fixed-output derivation, its hash check, the store) or, for the failure modes that need a proxy
in between, through `pull_image` directly with short back-offs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from conftest import Builder
from registry import FlakyProxy, LocalRegistry, missing_packages

from dtx.runtime.image import documents as d
from dtx.runtime.image.pull import PullRequest, pull_image
from dtx.runtime.image.registry import (ImageRef, RegistryClient, RegistryError,
                                        endpoint_url, find_credentials, parse_challenge,
                                        select_platform)

BASE = r"""
let
  pkgs = import <dtx> { };
  bb = builtins.path { path = @BB@; name = "busybox-standin"; };
  hello = derivation {
    name = "hello";
    system = builtins.currentSystem;
    builder = "${bb}/bin/sh";
    args = [ "-c" ''
      ${bb}/bin/busybox mkdir -p $out/bin
      printf '#!${bb}/bin/sh\necho "pulled hello, $GREETING"\n' > $out/bin/hello
      ${bb}/bin/busybox chmod +x $out/bin/hello
    '' ];
  };
in pkgs.dockerTools.buildImage {
  name = "dtx-test/pull-base";
  tag = "v1";
  copyToRoot = [ bb hello ];
  compressor = "none";
  config = { Cmd = [ "/bin/hello" ]; Env = [ "GREETING=registry" ]; };
}
"""


def _skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """A layer tar and its gzip form."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, mtime=0)


def push_image(reg: LocalRegistry, repo: str, tag: str | None, files: dict[str, bytes],
               arch: str = "amd64", variant: str | None = None, oci: bool = False) -> dict:
    """Push a one-layer image written here; return its manifest descriptor as a dict."""
    raw, gz = _layer(files)
    layer_digest = reg.push_blob(repo, gz)
    config = {"architecture": arch, "os": "linux",
              "rootfs": {"type": "layers",
                         "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
              "config": {"Cmd": ["/bin/sh"]}}
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = reg.push_blob(repo, config_bytes)
    media = d.MEDIA_OCI_MANIFEST if oci else d.MEDIA_DOCKER_MANIFEST
    manifest = {"schemaVersion": 2, "mediaType": media,
                "config": {"mediaType": d.MEDIA_OCI_CONFIG if oci else d.MEDIA_DOCKER_CONFIG,
                           "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": d.MEDIA_OCI_LAYER_GZIP if oci
                            else d.MEDIA_DOCKER_LAYER_GZIP,
                            "digest": layer_digest, "size": len(gz)}]}
    body = json.dumps(manifest).encode()
    digest = reg.push_manifest(repo, tag or "sha256:" + hashlib.sha256(body).hexdigest(),
                               body, media)
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {"mediaType": media, "digest": digest, "size": len(body), "platform": platform,
            "layer": layer_digest}


class Env:
    """The module's registry, its images and a store to build in."""

    def __init__(self, work: Path):
        self.work = work
        self.builder = Builder(work)
        self.reg = LocalRegistry(work / "registry").start()
        self.host = self.reg.host

    def build(self, expr: str, *args: str, check: bool = True, extra_env: dict | None = None,
              home: Path | None = None) -> subprocess.CompletedProcess:
        path = self.work / f"pull-{abs(hash(expr))}.dtx"
        path.write_text(expr.replace("@BB@", str(self.work / "bb")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        env["DTX_HOME"] = str(home or self.builder.home)
        env.update(extra_env or {})
        result = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.build", str(path),
                                 "--no-out-link", *args], cwd=self.work, env=env,
                                capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"dtx-build failed:\n{result.stderr[-4000:]}")
        return result

    def out(self, result: subprocess.CompletedProcess, home: Path | None = None) -> Path:
        logical = result.stdout.strip().splitlines()[-1]
        return (home or self.builder.home) / logical.lstrip("/")

    def pull_expr(self, **args) -> str:
        fields = "".join(f"  {k} = {_nix(v)};\n" for k, v in args.items())
        return f"(import <dtx> {{ }}).dockerTools.pullImage {{\n{fields}}}\n"

    def prefetch(self, *args: str, check: bool = True,
                 extra_env: dict | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **(extra_env or {})}
        result = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.prefetch_docker",
                                 *args], capture_output=True, text=True, timeout=300, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"dtx-prefetch-docker failed:\n{result.stderr[-3000:]}")
        return result


def _nix(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def _printed(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+) = "([^"]*)";', text))


@pytest.fixture(scope="module")
def env():
    missing = missing_packages(auth=True) + [p for p in ("skopeo", "podman")
                                             if shutil.which(p) is None]
    if missing:
        pytest.fail("missing Debian packages for the pull tests: " + " ".join(missing) +
                    " (see tests/docker/README.md)")
    work = Path(tempfile.mkdtemp(prefix="dtx-pull-test-"))
    work.chmod(0o755)
    e = Env(work)
    try:
        base = e.build(BASE)
        e.base_archive = e.out(base)
        src = f"docker-archive:{e.base_archive}"
        _skopeo("copy", "--dest-tls-verify=false", src, f"docker://{e.host}/dtx-test/base:v1")
        _skopeo("copy", "--dest-tls-verify=false", "--format", "oci", src,
                f"docker://{e.host}/dtx-test/oci:v1")
        # A multi-platform image: the dtx image for amd64, a written one for arm64.
        _skopeo("copy", "--dest-tls-verify=false", src, f"docker://{e.host}/dtx-test/multi:amd64")
        raw = _skopeo("inspect", "--raw", "--tls-verify=false",
                      f"docker://{e.host}/dtx-test/multi:amd64")
        amd64 = {"mediaType": json.loads(raw)["mediaType"],
                 "digest": "sha256:" + hashlib.sha256(raw.encode()).hexdigest(),
                 "size": len(raw.encode()),
                 "platform": {"architecture": "amd64", "os": "linux"}}
        arm64 = push_image(e.reg, "dtx-test/multi", None, {"arch.txt": b"arm64\n"},
                           arch="arm64", variant="v8", oci=True)
        arm64.pop("layer")
        index = json.dumps({"schemaVersion": 2, "mediaType": d.MEDIA_OCI_INDEX,
                            "manifests": [amd64, arm64]}).encode()
        e.index_digest = e.reg.push_manifest("dtx-test/multi", "latest", index,
                                             d.MEDIA_OCI_INDEX)
        mlist = json.dumps({"schemaVersion": 2, "mediaType": d.MEDIA_DOCKER_MANIFEST_LIST,
                            "manifests": [amd64, {**arm64, "mediaType": arm64["mediaType"]}]})
        e.reg.push_manifest("dtx-test/multi", "list", mlist.encode(),
                            d.MEDIA_DOCKER_MANIFEST_LIST)
        yield e
    finally:
        e.reg.stop()
        subprocess.run(["chmod", "-R", "u+w", str(work)])
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def pinned(env):
    """dtx-prefetch-docker's answer for dtx-test/base:v1."""
    result = env.prefetch(f"{env.host}/dtx-test/base:v1", "--arch", "amd64")
    return result.stdout


# -- references, challenges, platforms, credentials (no registry) ---------------------------

def test_references_are_normalised_as_docker_does():
    assert str(ImageRef.parse("busybox")) == "docker.io/library/busybox"
    assert ImageRef.parse("busybox").reference == "latest"
    assert str(ImageRef.parse("index.docker.io/foo/bar:1")) == "docker.io/foo/bar:1"
    ref = ImageRef.parse("localhost:5000/ns/name:2.0")
    assert (ref.registry, ref.repository, ref.tag) == ("localhost:5000", "ns/name", "2.0")
    digest = "sha256:" + "a" * 64
    ref = ImageRef.parse(f"reg.example:443/x/y@{digest}")
    assert (ref.registry, ref.repository, ref.digest) == ("reg.example:443", "x/y", digest)
    assert ImageRef.parse("ns/name", registry="127.0.0.1:5000").repository == "ns/name"
    assert endpoint_url("docker.io") == "https://registry-1.docker.io"
    assert endpoint_url("localhost:5000") == "http://localhost:5000"
    assert endpoint_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert endpoint_url("reg.example") == "https://reg.example"
    assert endpoint_url("reg.example", tls_verify=False) == "http://reg.example"
    assert endpoint_url("x", "reg.example:5000/") == "https://reg.example:5000"
    for bad in ("UPPER/case", "name@sha256:12", "a/b:bad tag"):
        with pytest.raises(RegistryError):
            ImageRef.parse(bad)


def test_challenges_platforms_and_credentials(tmp_path):
    scheme, params = parse_challenge('Bearer realm="https://auth.example/token",'
                                     'service="registry.example",scope="repository:a/b:pull"')
    assert scheme == "bearer" and params["service"] == "registry.example"
    assert params["scope"] == "repository:a/b:pull"
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})

    def desc(arch, variant=None, os_="linux"):
        return d.Descriptor(mediaType=d.MEDIA_OCI_MANIFEST, digest=f"sha256:{arch}{variant}",
                            size=1, platform=d.Platform(architecture=arch, os=os_,
                                                        variant=variant))
    entries = [desc("unknown", os_="unknown"), desc("amd64"), desc("arm", "v6"),
               desc("arm", "v7"), desc("arm64", "v8")]
    assert select_platform(entries, "linux", "amd64", None).platform.architecture == "amd64"
    assert select_platform(entries, "linux", "x86_64", None).platform.architecture == "amd64"
    assert select_platform(entries, "linux", "arm64", None).platform.variant == "v8"
    assert select_platform(entries, "linux", "arm", None).platform.variant == "v7"
    assert select_platform(entries, "linux", "arm", "v6").platform.variant == "v6"
    with pytest.raises(RegistryError, match=r"no image for platform linux/s390x .*"
                                            r"linux/amd64, linux/arm/v6"):
        select_platform(entries, "linux", "s390x", None)

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "reg.example:5000": {"auth": "dXNlcjpwYTpzcw=="},          # user:pa:ss
        "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="}}}))  # hub:secret
    environ = {"DOCKER_CONFIG": str(tmp_path)}
    assert find_credentials("reg.example:5000", environ) == ("user", "pa:ss")
    assert find_credentials("docker.io", environ) == ("hub", "secret")
    assert find_credentials("other.example", environ) is None
    environ.update(DTX_REGISTRY_USER="env", DTX_REGISTRY_PASSWORD="pw")
    assert find_credentials("other.example", environ) == ("env", "pw")


# -- pulling through dtx-build ----------------------------------------------------------------

def test_prefetch_prints_a_pinned_pull_image(env, pinned):
    fields = _printed(pinned)
    assert pinned.startswith("pullImage {")
    assert fields["imageName"] == f"{env.host}/dtx-test/base"
    digest = json.loads(_skopeo("inspect", "--tls-verify=false",
                                f"docker://{env.host}/dtx-test/base:v1"))["Digest"]
    assert fields["imageDigest"] == digest
    assert fields["hash"].startswith("sha256-")
    assert fields["finalImageTag"] == "v1"
    as_json = json.loads(env.prefetch(f"{env.host}/dtx-test/base:v1", "--arch", "amd64",
                                      "--json", "--quiet").stdout)
    assert as_json["hash"] == fields["hash"] and as_json["imageId"].startswith("sha256:")


def test_pull_by_digest_loads_runs_and_is_built_on(env, pinned, tmp_path):
    from podman_setup import Podman, ensure_containers_conf
    fields = _printed(pinned)
    result = env.build(env.pull_expr(**fields))
    archive = env.out(result)
    assert archive.name.endswith("-docker-image-127.0.0.1-"
                                 f"{env.reg.port}-dtx-test-base-v1.tar")
    assert "sha256-" + __import__("base64").b64encode(
        hashlib.sha256(archive.read_bytes()).digest()).decode() == fields["hash"]
    # The image ID is the registry's: the configuration is kept byte for byte.
    manifest = json.load(tarfile.open(archive).extractfile("manifest.json"))
    as_json = json.loads(env.prefetch(f"{env.host}/dtx-test/base:v1", "--arch", "amd64",
                                      "--json", "--quiet").stdout)
    assert manifest[0]["Config"] == as_json["imageId"].split(":")[1] + ".json"
    assert manifest[0]["RepoTags"] == [f"{env.host}/dtx-test/base:v1"]
    info = json.loads(_skopeo("inspect", "--config", f"docker-archive:{archive}"))
    assert info["config"]["Cmd"] == ["/bin/hello"]

    on_top = env.build(f"""
      let pkgs = import <dtx> {{ }}; in
      pkgs.dockerTools.buildImage {{
        name = "dtx-test/on-pulled";
        fromImage = {env.pull_expr(**fields)};
        compressor = "none";
        config.Env = [ "GREETING=on top" ];
      }}""")
    if os.geteuid() != 0:
        pytest.skip("podman runs as root here")
    ensure_containers_conf()
    podman = Podman(env.work / "pm")
    try:
        assert f"{env.host}/dtx-test/base:v1" in podman.load(archive)
        assert podman.run(f"{env.host}/dtx-test/base:v1").stdout.strip() == \
            "pulled hello, registry"
        podman.load(env.out(on_top))
        assert podman.run("dtx-test/on-pulled:latest").stdout.strip() == \
            "pulled hello, on top"
    finally:
        podman.cleanup()


def test_pull_by_tag_needs_and_checks_the_hash(env, pinned):
    fields = _printed(pinned)
    by_tag = env.build(env.pull_expr(imageName=fields["imageName"], imageTag="v1",
                                     hash=fields["hash"], arch="amd64"))
    by_digest = env.build(env.pull_expr(**fields))
    assert env.out(by_tag).read_bytes() == env.out(by_digest).read_bytes()

    alone = env.build(env.pull_expr(imageName=fields["imageName"], imageTag="v1"),
                      check=False)
    assert alone.returncode != 0
    assert "pinned neither by imageDigest nor by hash" in alone.stderr
    assert "dtx-prefetch-docker" in alone.stderr

    wrong = "sha256-" + "A" * 43 + "="
    other = env.build(env.pull_expr(imageName=fields["imageName"], imageTag="v1", hash=wrong,
                                    finalImageTag="other", arch="amd64"), check=False)
    assert other.returncode != 0
    assert "hash mismatch in fixed-output derivation" in other.stderr
    assert f"specified: {wrong}" in other.stderr
    assert re.search(r"got:\s+sha256-", other.stderr)


def test_v1_and_bad_digests_are_refused(env):
    v1 = env.build(env.pull_expr(imageName="busybox", registryVersion="v1",
                                 sha256="0" * 64), check=False)
    assert v1.returncode != 0
    assert 'registryVersion "v1" is retired' in v1.stderr
    assert "imageDigest and hash" in v1.stderr
    bad = env.build(env.pull_expr(imageName="busybox", imageDigest="sha256:12"), check=False)
    assert "is not a digest" in bad.stderr


def test_multi_platform_index_and_manifest_list(env):
    archives = {}
    for tag in ("latest", "list"):
        for arch, variant in (("amd64", None), ("arm64", None), ("arm64", "v8")):
            args = dict(imageName=f"{env.host}/dtx-test/multi", imageTag=tag, arch=arch)
            if variant:
                args["variant"] = variant
            pre = env.prefetch(f"{env.host}/dtx-test/multi:{tag}", "--arch", arch,
                               *(["--variant", variant] if variant else []), "--quiet")
            fields = _printed(pre.stdout)
            if tag == "latest":
                assert fields["imageDigest"] == env.index_digest
            archive = env.out(env.build(env.pull_expr(**{**args, **fields})))
            config = _skopeo("inspect", "--config", f"docker-archive:{archive}")
            assert json.loads(config)["architecture"] == arch
            archives[tag, arch, variant] = archive
    with tarfile.open(archives["latest", "arm64", None]) as tar:
        layer = json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]
        with tarfile.open(fileobj=tar.extractfile(layer)) as inner:
            assert inner.extractfile("arch.txt").read() == b"arm64\n"
    missing = env.prefetch(f"{env.host}/dtx-test/multi", "--arch", "s390x", check=False)
    assert missing.returncode == 1
    assert "no image for platform linux/s390x (the index has: linux/amd64, linux/arm64/v8)" \
        in missing.stderr


def test_oci_image(env):
    pre = _printed(env.prefetch(f"{env.host}/dtx-test/oci:v1", "--arch", "amd64").stdout)
    raw = json.loads(_skopeo("inspect", "--raw", "--tls-verify=false",
                             f"docker://{env.host}/dtx-test/oci:v1"))
    assert raw["mediaType"] == d.MEDIA_OCI_MANIFEST
    archive = env.out(env.build(env.pull_expr(**pre)))
    info = json.loads(_skopeo("inspect", "--config", f"docker-archive:{archive}"))
    assert info["config"]["Cmd"] == ["/bin/hello"]


def test_basic_auth_with_htpasswd(env, tmp_path):
    with LocalRegistry(tmp_path / "auth-registry", auth=("tester", "s3cret")) as reg:
        _skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "tester:s3cret",
                f"docker-archive:{env.base_archive}", f"docker://{reg.host}/private/img:v1")
        image = f"{reg.host}/private/img:v1"
        anonymous = env.prefetch(image, "--arch", "amd64",
                                 extra_env={"DOCKER_CONFIG": str(tmp_path)}, check=False)
        assert anonymous.returncode == 1
        assert "authentication required for 'private/img'" in anonymous.stderr
        assert "DTX_REGISTRY_USER" in anonymous.stderr
        wrong = env.prefetch(image, "--arch", "amd64", check=False,
                             extra_env={"DTX_REGISTRY_USER": "tester",
                                        "DTX_REGISTRY_PASSWORD": "nope"})
        assert "credentials were rejected" in wrong.stderr
        (tmp_path / "config.json").write_text(json.dumps(
            {"auths": {reg.host: {"auth": "dGVzdGVyOnMzY3JldA=="}}}))
        fields = _printed(env.prefetch(image, "--arch", "amd64",
                                       extra_env={"DOCKER_CONFIG": str(tmp_path)}).stdout)
        result = env.build(env.pull_expr(**fields),
                           extra_env={"DTX_REGISTRY_USER": "tester",
                                      "DTX_REGISTRY_PASSWORD": "s3cret"})
        assert tarfile.open(env.out(result)).extractfile("manifest.json")


def test_bearer_token_service(env, tmp_path):
    with FlakyProxy(env.reg.url, token_auth=("robot", "tok")) as proxy:
        req = PullRequest(f"{proxy.host}/dtx-test/base", "v1", arch="amd64")
        with pytest.raises(RegistryError, match="token service .* wants credentials"):
            pull_image(req, str(tmp_path / "a.tar"), str(tmp_path), lambda _l: None,
                       environ={"DOCKER_CONFIG": str(tmp_path)})
        before = len(proxy.requests)
        result = pull_image(req, str(tmp_path / "a.tar"), str(tmp_path), lambda _l: None,
                            environ={"DTX_REGISTRY_USER": "robot",
                                     "DTX_REGISTRY_PASSWORD": "tok"})
        assert result.image_id.startswith("sha256:")
        tokens = [p for p, _ in proxy.requests[before:] if p.startswith("/token")]
        assert len(tokens) == 1 and "scope=repository%3Adtx-test%2Fbase%3Apull" in tokens[0]


def test_unknown_names_and_tags(env, tmp_path):
    for image, needle in ((f"{env.host}/dtx-test/base:nope", "tag 'nope' of 'dtx-test/base'"),
                          (f"{env.host}/no/such", "'no/such'")):
        result = env.prefetch(image, check=False)
        assert result.returncode == 1
        assert needle in result.stderr and "not found" in result.stderr


def test_corrupted_blob_fails_and_registers_nothing(env, tmp_path):
    pushed = push_image(env.reg, "dtx-test/corrupt", "v1",
                        {"data.bin": os.urandom(200_000)})
    fields = _printed(env.prefetch(f"{env.host}/dtx-test/corrupt:v1", "--arch",
                                   "amd64").stdout)
    blob = env.reg.blob_path(pushed["layer"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    home = tmp_path / "fresh-home"
    result = env.build(env.pull_expr(**fields), check=False, home=home)
    assert result.returncode != 0
    assert "is corrupted: the registry sent" in result.stderr
    assert pushed["layer"] in result.stderr
    store = home / "nix" / "store"
    assert not any(p.name.endswith(".tar") for p in store.iterdir()) if store.exists() else True


def test_dropped_connections_resume_then_give_up(env, tmp_path):
    pushed = push_image(env.reg, "dtx-test/flaky", "v1", {"big.bin": os.urandom(3_000_000)})
    log: list[str] = []
    with FlakyProxy(env.reg.url, cut_blobs=2, cut_after=500_000) as proxy:
        req = PullRequest(f"{proxy.host}/dtx-test/flaky", "v1", arch="amd64")
        pull_image(req, str(tmp_path / "ok.tar"), str(tmp_path), log.append, backoff=0.05)
        ranges = [h.get("Range") for p, h in proxy.requests if pushed["layer"] in p]
        assert any(r and r != "bytes=0-" for r in ranges), ranges
        assert any("retrying" in line for line in log)
    with FlakyProxy(env.reg.url, cut_blobs=100, cut_after=1000) as proxy:
        req = PullRequest(f"{proxy.host}/dtx-test/flaky", "v1", arch="amd64")
        with pytest.raises(RegistryError, match=r"failed after 3 attempts: .*interrupted"):
            pull_image(req, str(tmp_path / "bad.tar"), str(tmp_path), log.append,
                       retries=2, backoff=0.05)
    # A registry that is gone altogether.
    stopped = LocalRegistry(tmp_path / "gone").start()
    stopped.stop()
    req = PullRequest(f"{stopped.host}/dtx-test/flaky", "v1", arch="amd64")
    with pytest.raises(RegistryError, match=r"failed after 2 attempts: connection to "
                                            r"http://127.0.0.1:\d+ failed"):
        pull_image(req, str(tmp_path / "gone.tar"), str(tmp_path), log.append,
                   retries=1, backoff=0.05)


def test_client_verifies_manifests_by_digest(env):
    client = RegistryClient(ImageRef.parse(f"{env.host}/dtx-test/multi@{env.index_digest}"))
    top = client.get_manifest(env.index_digest)
    assert top.is_index and top.digest == env.index_digest
    with pytest.raises(RegistryError, match="not found|corrupted"):
        client.get_manifest("sha256:" + "0" * 64)
    client.close()


def test_rate_limits_and_server_errors_are_retried(env, tmp_path):
    log: list[str] = []
    with FlakyProxy(env.reg.url, fail_status=429, fail_count=2) as proxy:
        req = PullRequest(f"{proxy.host}/dtx-test/base", "v1", arch="amd64")
        pull_image(req, str(tmp_path / "ok.tar"), str(tmp_path), log.append, backoff=0.05)
        assert sum("HTTP 429 (too many requests)" in line for line in log) == 2
    with FlakyProxy(env.reg.url, fail_status=503, fail_count=100) as proxy:
        req = PullRequest(f"{proxy.host}/dtx-test/base", "v1", arch="amd64")
        with pytest.raises(RegistryError, match=r"manifest v1 of 'dtx-test/base' on .* failed "
                                                r"after 3 attempts: .* answered HTTP 503"):
            pull_image(req, str(tmp_path / "bad.tar"), str(tmp_path), log.append,
                       retries=2, backoff=0.05)
