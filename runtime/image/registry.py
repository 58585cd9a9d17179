"""A client for container registries: the registry HTTP API v2, alias the OCI distribution API.

What it covers, for pulling:
- image references as docker writes them (`ImageRef.parse`): `name[:tag][@digest]`, a registry
  named by its first component when that holds a `.` or `:` or is `localhost`, Docker Hub
  otherwise (`docker.io`, with `library/` before one-component names; its API lives at
  `registry-1.docker.io`, and `index.docker.io` is an old name of it, as docker documents);
- where a registry is reached (`endpoint_url`): `https://`, except `http://` for loopback
  registries and when TLS verification is off, as docker treats those registries as insecure; an
  explicit `registryUrl` wins;
- authentication on demand: a request is sent anonymously, and a 401 carries a `WWW-Authenticate`
  challenge: `Bearer` (a token fetched from the named realm for the repository's pull scope, with
  credentials if there are any) or `Basic`. Credentials come from `DTX_REGISTRY_USER` /
  `DTX_REGISTRY_PASSWORD`, else from a docker `config.json` (`$DOCKER_CONFIG/config.json` or
  `~/.docker/config.json`, `auths.<registry>.auth` = base64 of `user:password`);
- manifests: Docker schema 2 and OCI manifests, Docker manifest lists and OCI indexes, the latter
  two resolved to one platform (`select_platform`); every manifest fetched by digest is checked
  against it, and one fetched by tag against the registry's `Docker-Content-Digest`;
- blobs streamed to a sink while their digest and size are checked; an interrupted transfer resumes
  with `Range` where the server allows it, and is retried with back-off (as are 429 and 5xx);
  `fetch_blobs` fetches several at once on a small thread pool, reporting progress.

Invariants: a blob or manifest whose bytes do not match its digest is never handed on (the error
names both digests); every failure is a `RegistryError` whose message names the registry, the
repository and what was asked for.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

import cattrs
import requests

from . import documents as d

Log = Callable[[str], None]

DOCKER_HUB = "docker.io"
# Docker documents `registry-1.docker.io` as Docker Hub's API endpoint and `index.docker.io` as
# the name it had in the v1 era; both name the same registry as `docker.io`.
DOCKER_HUB_API = "https://registry-1.docker.io"
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

MANIFEST_TYPES = (d.MEDIA_OCI_INDEX, d.MEDIA_DOCKER_MANIFEST_LIST, d.MEDIA_OCI_MANIFEST,
                  d.MEDIA_DOCKER_MANIFEST)
MEDIA_DOCKER_MANIFEST_V1 = ("application/vnd.docker.distribution.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.v1+prettyjws")

CONNECT_TIMEOUT = 30
READ_TIMEOUT = 120
MAX_MANIFEST_SIZE = 4 << 20
CHUNK = 1 << 20
BLOB_CHUNK = 1 << 16  # small enough that an interrupted read loses little

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


class RegistryError(Exception):
    """A pull failed; the message says what, where, and when it helps, what to do."""


class BlobError(RegistryError):
    """A blob arrived with the wrong size or digest."""


class _Transient(Exception):
    """A failure worth retrying (connection lost, truncated body, 429, 5xx)."""


# -- references -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageRef:
    """An image reference, normalised: `registry` is a host[:port] (`docker.io` for Docker Hub)."""
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, registry: str | None = None) -> ImageRef:
        """Parse `[registry/]name[:tag][@digest]` as docker does. With `registry` given (from a
        `registryUrl`), the whole name is the repository on that registry."""
        rest, _, digest = text.partition("@")
        if digest and not _DIGEST_RE.match(digest):
            raise RegistryError(f"invalid digest '{digest}' in image reference '{text}' "
                                "(expected sha256: and 64 hex digits)")
        name, tag = rest, None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            name, tag = rest[:colon], rest[colon + 1:]
            if not _TAG_RE.match(tag):
                raise RegistryError(f"invalid tag '{tag}' in image reference '{text}'")
        if registry is None:
            first, sep, remainder = name.partition("/")
            if sep and ("." in first or ":" in first or first == "localhost"):
                registry, name = first, remainder
            else:
                registry = DOCKER_HUB
        if registry in DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in name:
                name = "library/" + name
        if not _REPOSITORY_RE.match(name):
            raise RegistryError(f"invalid repository name '{name}' in image reference '{text}' "
                                "(lower-case letters, digits and separators . _ __ - /)")
        return cls(registry, name, tag, digest or None)

    @property
    def reference(self) -> str:
        """What the manifest is asked for by: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(host: str) -> bool:
    """Whether `host` (host[:port], IPv6 in brackets) names this machine."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint_url(registry: str, registry_url: str | None = None,
                 tls_verify: bool = True) -> str:
    """The base URL of the registry's API (without `/v2`)."""
    if registry_url:
        url = registry_url.rstrip("/")
        if "://" not in url:
            secure = tls_verify and not is_loopback(url.partition("/")[0])
            url = ("https://" if secure else "http://") + url
        url = url.removesuffix("/v2")
        return url
    if registry == DOCKER_HUB:
        return DOCKER_HUB_API
    scheme = "https" if tls_verify and not is_loopback(registry) else "http"
    return f"{scheme}://{registry}"


# -- credentials ------------------------------------------------------------------------------

def find_credentials(registry: str, environ: Mapping[str, str] | None = None,
                     log: Log | None = None) -> tuple[str, str] | None:
    """User and password for `registry`: from DTX_REGISTRY_USER/DTX_REGISTRY_PASSWORD, else from
    the docker config.json; None when there are none."""
    environ = os.environ if environ is None else environ
    user = environ.get("DTX_REGISTRY_USER")
    if user:
        return user, environ.get("DTX_REGISTRY_PASSWORD", "")
    if environ.get("DOCKER_CONFIG"):
        path = os.path.join(environ["DOCKER_CONFIG"], "config.json")
    else:
        home = environ.get("HOME") or os.path.expanduser("~")
        path = os.path.join(home, ".docker", "config.json")
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RegistryError(f"cannot read the registry credentials in '{path}': {e}") from None
    auths = config.get("auths") or {}
    names = [registry, f"https://{registry}", f"http://{registry}",
             f"https://{registry}/v1/", f"https://{registry}/v2/"]
    if registry == DOCKER_HUB:
        names += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"]
    for name in names:
        entry = auths.get(name)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"]).decode()
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(f"'{path}': auths.\"{name}\".auth is not base64 of "
                                    "user:password") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise RegistryError(f"'{path}': auths.\"{name}\".auth is not base64 of "
                                    "user:password")
            return user, password
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
    if log and (config.get("credsStore") or registry in (config.get("credHelpers") or {})):
        log(f"note: '{path}' names a credential helper; dtx reads only 'auths' entries")
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a `WWW-Authenticate` header into its scheme and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in re.finditer(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


# -- platforms --------------------------------------------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def normalise_arch(arch: str) -> str:
    return _ARCH_ALIASES.get(arch, arch)


def platform_name(p: d.Platform | None) -> str:
    if p is None:
        return "unknown"
    return "/".join(x for x in (p.os, p.architecture, p.variant) if x)


def select_platform(manifests: list[d.Descriptor], os_name: str, arch: str,
                    variant: str | None) -> d.Descriptor:
    """The entry of a manifest list or index for os/arch[/variant], as docker chooses it."""
    arch = normalise_arch(arch)
    matching = [m for m in manifests if m.platform is not None
                and m.platform.os == os_name and normalise_arch(m.platform.architecture) == arch]
    default = _DEFAULT_VARIANT.get(arch)

    def variant_of(m: d.Descriptor) -> str | None:
        return m.platform.variant or default

    if variant:
        chosen = [m for m in matching if variant_of(m) == variant]
    else:
        chosen = (sorted(matching, key=lambda m: (m.platform.variant is not None
                                                  and variant_of(m) != default)))
    if not chosen:
        wanted = "/".join(x for x in (os_name, arch, variant) if x)
        have = ", ".join(platform_name(m.platform) for m in manifests) or "nothing"
        raise RegistryError(f"no image for platform {wanted} (the index has: {have})")
    return chosen[0]


# -- sinks and progress -----------------------------------------------------------------------

class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def reset(self) -> None: ...


class BytesSink:
    """Collects a small blob in memory."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def reset(self) -> None:
        self.data.clear()


class Progress:
    """Thread-safe byte counts of a pull, logged at most every `interval` seconds."""

    def __init__(self, log: Log, label: str, total: int, count: int, interval: float = 2.0):
        self.log, self.label, self.total, self.count = log, label, total, count
        self.interval = interval
        self.done = 0
        self.finished = 0
        self.lock = threading.Lock()
        self.next_report = time.monotonic() + interval

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now < self.next_report:
                return
            self.next_report = now + self.interval
            self._report()

    def blob_done(self) -> None:
        with self.lock:
            self.finished += 1

    def _report(self) -> None:
        self.log(f"pulling {self.label}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB, "
                 f"{self.finished} of {self.count} blobs done")


# -- the client -------------------------------------------------------------------------------

@dataclass
class Manifest:
    """A manifest or index as fetched: its bytes, media type, digest and parsed document."""
    raw: bytes
    media_type: str
    digest: str
    document: d.OCIManifest | d.DockerManifest | d.OCIIndex | d.DockerManifestList

    @property
    def is_index(self) -> bool:
        return isinstance(self.document, (d.OCIIndex, d.DockerManifestList))


@dataclass
class Resolved:
    """An image resolved to one platform's manifest."""
    ref: ImageRef
    digest: str                 # what the reference names (an index's digest, if an index)
    manifest: Manifest          # the platform's image manifest
    index: Manifest | None = None
    platform: d.Platform | None = None


@dataclass
class RegistryClient:
    """One repository on one registry, pulled from with one HTTP session."""
    ref: ImageRef
    registry_url: str | None = None
    tls_verify: bool = True
    log: Log = lambda _line: None
    credentials: tuple[str, str] | None = None
    retries: int = 4
    backoff: float = 0.5
    workers: int = 4
    _session: requests.Session = field(init=False, repr=False)
    _auth: dict = field(init=False, default_factory=dict, repr=False)
    _auth_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _abort: threading.Event = field(init=False, default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self.base = endpoint_url(self.ref.registry, self.registry_url, self.tls_verify)
        self._session = requests.Session()
        self._session.verify = self.tls_verify
        self._session.headers["User-Agent"] = "dtx"
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(self.workers, 4))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @property
    def where(self) -> str:
        return f"'{self.ref.repository}' on {self.base}"

    def close(self) -> None:
        self._session.close()

    # -- requests with authentication and retries ---------------------------------------------

    def _url(self, kind: str, reference: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{kind}/{reference}"

    def _send(self, url: str, headers: dict, stream: bool) -> requests.Response:
        """GET `url`, answering one authentication challenge; raise _Transient or
        RegistryError for failures, return the response otherwise (2xx or 416)."""
        try:
            r = self._get(url, headers, stream)
            if r.status_code == 401:
                challenge = r.headers.get("WWW-Authenticate", "")
                r.close()
                self._authenticate(challenge, url)
                r = self._get(url, headers, stream)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as e:
            raise _Transient(f"connection to {self.base} failed: {_short(e)}") from None
        if r.status_code < 400 or r.status_code == 416:
            return r
        try:
            self._status_error(r)
        finally:
            r.close()
        raise AssertionError("unreachable")

    def _get(self, url: str, headers: dict, stream: bool) -> requests.Response:
        auth = self._auth.get("header")
        all_headers = dict(headers)
        if auth:
            all_headers["Authorization"] = auth
        return self._session.get(url, headers=all_headers, stream=stream,
                                 timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))

    def _status_error(self, r: requests.Response) -> None:
        status = r.status_code
        codes, messages = _error_codes(r)
        detail = f" ({'; '.join(messages)})" if messages else ""
        if status == 401:
            hint = ("the credentials were rejected" if self._auth.get("user") else
                    "set DTX_REGISTRY_USER and DTX_REGISTRY_PASSWORD, or log in so that "
                    "~/.docker/config.json (or $DOCKER_CONFIG/config.json) holds them")
            raise RegistryError(f"authentication required for {self.where}: {hint}{detail}")
        if status == 403:
            raise RegistryError(f"access to {self.where} denied{detail}")
        if status == 404:
            if "NAME_UNKNOWN" in codes:
                raise RegistryError(f"repository '{self.ref.repository}' not found on "
                                    f"{self.base}{detail}")
            if "MANIFEST_UNKNOWN" in codes or "/manifests/" in r.url:
                what = (f"tag '{self.ref.tag}'" if not _is_digest(r.url.rsplit("/", 1)[-1])
                        else f"manifest {r.url.rsplit('/', 1)[-1]}")
                raise RegistryError(f"{what} of {self.where} not found (name or tag "
                                    f"unknown){detail}")
            raise RegistryError(f"{r.url.rsplit('/', 1)[-1]} of {self.where} not found"
                                f"{detail}")
        if status == 429 or status >= 500:
            retry_after = r.headers.get("Retry-After", "")
            err = _Transient(f"{self.base} answered HTTP {status}"
                             f"{' (too many requests)' if status == 429 else ''}{detail}")
            err.retry_after = float(retry_after) if retry_after.isdigit() else None
            raise err
        raise RegistryError(f"{self.base} answered HTTP {status} for {r.url}{detail}")

    def _authenticate(self, challenge: str, url: str) -> None:
        scheme, params = parse_challenge(challenge)
        with self._auth_lock:
            if self.credentials is None:
                self.credentials = find_credentials(self.ref.registry, log=self.log) or ()
            creds = self.credentials or None
            if scheme == "basic":
                if not creds:
                    raise RegistryError(f"authentication required for {self.where}: set "
                                        "DTX_REGISTRY_USER and DTX_REGISTRY_PASSWORD, or add the "
                                        "registry to the docker config.json")
                token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
                self._auth = {"header": f"Basic {token}", "user": creds[0]}
            elif scheme == "bearer":
                self._auth = {"header": "Bearer " + self._token(params, creds),
                              "user": creds[0] if creds else None}
            else:
                raise RegistryError(f"{self.base} asks for authentication of an unknown kind "
                                    f"('{challenge or 'no WWW-Authenticate header'}')")

    def _token(self, params: dict[str, str], creds: tuple[str, str] | None) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.base} asks for a bearer token but names no realm")
        query = {"scope": params.get("scope") or f"repository:{self.ref.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            r = self._session.get(realm, params=query, auth=creds,
                                  timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as e:
            raise RegistryError(f"cannot reach the token service {realm}: {_short(e)}") \
                from None
        with r:
            if r.status_code in (401, 403):
                what = "rejected the credentials" if creds else "wants credentials"
                raise RegistryError(f"the token service {realm} {what} for {self.where} "
                                    f"(HTTP {r.status_code})")
            if r.status_code >= 400:
                raise RegistryError(f"the token service {realm} answered HTTP {r.status_code}")
            try:
                body = r.json()
            except ValueError:
                raise RegistryError(f"the token service {realm} sent no JSON") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"the token service {realm} sent no token")
        return token

    def _retrying(self, what: str, attempt_fn):
        """Run `attempt_fn(attempt)` until it returns, retrying _Transient failures."""
        last = None
        for attempt in range(self.retries + 1):
            if self._abort.is_set():
                raise RegistryError("pull aborted")
            try:
                return attempt_fn(attempt)
            except _Transient as e:
                last = e
                if attempt == self.retries:
                    break
                delay = getattr(e, "retry_after", None) or self.backoff * (2 ** attempt)
                self.log(f"warning: {what}: {e}; retrying in {delay:g} s")
                time.sleep(delay)
        raise RegistryError(f"{what} failed after {self.retries + 1} attempts: {last}")

    # -- manifests ----------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> Manifest:
        """Fetch the manifest or index `reference` (a tag or digest), checked."""
        url = self._url("manifests", reference)
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}

        def attempt(_n):
            with self._send(url, headers, stream=True) as r:
                raw = bytearray()
                try:
                    for chunk in r.iter_content(BLOB_CHUNK):
                        raw += chunk
                        if len(raw) > MAX_MANIFEST_SIZE:
                            raise RegistryError(f"manifest {reference} of {self.where} is "
                                                f"larger than {MAX_MANIFEST_SIZE} bytes")
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.Timeout) as e:
                    raise _Transient(f"manifest transfer interrupted: {_short(e)}") from None
                return bytes(raw), r.headers.get("Content-Type", ""), \
                    r.headers.get("Docker-Content-Digest")

        raw, content_type, header_digest = self._retrying(
            f"fetching manifest {reference} of {self.where}", attempt)
        if _is_digest(reference):
            digest = _digest_of(raw, reference.split(":", 1)[0])
            if digest != reference:
                raise RegistryError(f"manifest {reference} of {self.where} is corrupted: its "
                                    f"content has digest {digest}")
        else:
            digest = _digest_of(raw, "sha256")
            if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
                raise RegistryError(f"manifest for tag '{reference}' of {self.where} is "
                                    f"corrupted: the registry says {header_digest}, the content "
                                    f"has digest {digest}")
        media_type, document = _parse_manifest(raw, content_type, f"{reference} of {self.where}")
        return Manifest(raw, media_type, digest, document)

    def resolve(self, os_name: str = "linux", arch: str = "amd64",
                variant: str | None = None) -> Resolved:
        """Fetch the reference's manifest, resolving an index to the platform's manifest."""
        top = self.get_manifest(self.ref.reference)
        if not top.is_index:
            return Resolved(self.ref, top.digest, top)
        entry = select_platform(top.document.manifests, os_name, arch, variant)
        self.log(f"{self.ref}: chose {platform_name(entry.platform)} ({entry.digest}) from "
                 f"the index")
        child = self.get_manifest(entry.digest)
        if child.is_index:
            raise RegistryError(f"{self.where}: an index entry ({entry.digest}) is itself an "
                                "index")
        return Resolved(self.ref, top.digest, child, top, entry.platform)

    # -- blobs --------------------------------------------------------------------------------

    def fetch_blob(self, desc: d.Descriptor, sink: Sink, progress: Progress | None = None,
                   label: str = "blob") -> None:
        """Stream the blob `desc` into `sink`, checking its size and digest as it arrives; resume
        or restart interrupted transfers. `sink` has seen exactly the blob when this returns."""
        algo, _, _ = desc.digest.partition(":")
        if not _is_digest(desc.digest):
            raise RegistryError(f"{label} of {self.where} has an unusable digest "
                                f"'{desc.digest}'")
        url = self._url("blobs", desc.digest)
        state = {"hasher": hashlib.new(algo), "got": 0}

        def restart():
            state["hasher"] = hashlib.new(algo)
            if progress:
                progress.add(-state["got"])
            state["got"] = 0
            sink.reset()

        def attempt(_n):
            headers = {"Accept-Encoding": "identity"}
            if state["got"]:
                headers["Range"] = f"bytes={state['got']}-"
            with self._send(url, headers, stream=True) as r:
                if state["got"] and not _resumes_at(r, state["got"]):
                    restart()
                if r.status_code == 416:
                    raise _Transient("the registry refused to resume")
                try:
                    for chunk in r.iter_content(BLOB_CHUNK):
                        if self._abort.is_set():
                            raise RegistryError("pull aborted")
                        state["got"] += len(chunk)
                        if state["got"] > desc.size:
                            raise BlobError(f"{label} {desc.digest} of {self.where} is corrupted:"
                                            f" the registry sent more than the {desc.size} bytes "
                                            "its manifest gives")
                        state["hasher"].update(chunk)
                        sink.write(chunk)
                        if progress:
                            progress.add(len(chunk))
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.Timeout, OSError) as e:
                    raise _Transient(f"{label} transfer interrupted at {state['got']} of "
                                     f"{desc.size} bytes: {_short(e)}") from None
            if state["got"] < desc.size:
                raise _Transient(f"{label} truncated: got {state['got']} of {desc.size} bytes")

        what = f"fetching {label} {desc.digest} of {self.where}"
        for check in range(2):
            self._retrying(what, attempt)
            got = f"{algo}:{state['hasher'].hexdigest()}"
            if got == desc.digest:
                if progress:
                    progress.blob_done()
                return
            if check == 0:
                self.log(f"warning: {label} {desc.digest} arrived with digest {got}; "
                         "fetching it again")
                restart()
        raise BlobError(f"{label} {desc.digest} of {self.where} is corrupted: the registry sent "
                        f"{desc.size} bytes with digest {got}")

    def fetch_blobs(self, jobs: list[tuple[d.Descriptor, Sink, str]],
                    progress: Progress | None = None) -> None:
        """Fetch several blobs on up to `workers` threads; the first failure stops the others."""
        if not jobs:
            return
        self._abort.clear()
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs)),
                                thread_name_prefix="dtx-pull") as pool:
            futures = [pool.submit(self.fetch_blob, desc, sink, progress, label)
                       for desc, sink, label in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                # The first failure is the one to report; the others only see the abort.
                self._abort.set()
                for f in pending:
                    f.cancel()
                wait(pending)
                raise failed[0].exception()
        if progress:
            progress._report()


# -- helpers ----------------------------------------------------------------------------------

def _is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def _digest_of(data: bytes, algo: str) -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


def _short(e: Exception) -> str:
    text = str(e)
    m = re.search(r"\(Caused by (\w+)\(", text)
    if m:
        return m.group(1) + (": " + text.rsplit(":", 1)[-1].strip(" ')\"")
                             if ":" in text else "")
    return text[:300]


def _resumes_at(r: requests.Response, offset: int) -> bool:
    """Whether a response to a Range request continues at `offset`."""
    if r.status_code != 206:
        return False
    m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
    return bool(m) and int(m.group(1)) == offset


def _error_codes(r: requests.Response) -> tuple[set[str], list[str]]:
    """The error codes and messages of a registry's JSON error body."""
    try:
        body = json.loads(r.content[:65536] or b"{}")
    except (ValueError, requests.RequestException):
        return set(), []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set(), []
    codes = {str(e.get("code")) for e in errors if isinstance(e, dict)}
    messages = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    return codes, messages


def _parse_manifest(raw: bytes, content_type: str, what: str):
    try:
        data = json.loads(raw)
    except ValueError:
        raise RegistryError(f"manifest {what} is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"manifest {what} is not a JSON object")
    media = data.get("mediaType") or content_type.split(";")[0].strip()
    if media in MEDIA_DOCKER_MANIFEST_V1 or data.get("schemaVersion") == 1:
        raise RegistryError(f"manifest {what} is a Docker schema 1 manifest, which is "
                            "deprecated and not supported; push the image again with a current "
                            "client")
    try:
        if media == d.MEDIA_DOCKER_MANIFEST_LIST:
            return media, d.from_json(d.DockerManifestList, data)
        if media == d.MEDIA_OCI_INDEX or (not media.startswith("application/vnd.docker")
                                          and "manifests" in data):
            return d.MEDIA_OCI_INDEX, d.from_json(d.OCIIndex, data)
        if media == d.MEDIA_DOCKER_MANIFEST:
            return media, d.from_json(d.DockerManifest, data)
        if media == d.MEDIA_OCI_MANIFEST or "layers" in data:
            return d.MEDIA_OCI_MANIFEST, d.from_json(d.OCIManifest, data)
    except (ValueError, TypeError, KeyError, cattrs.BaseValidationError) as e:
        raise RegistryError(f"manifest {what} is malformed: {e}") from None
    raise RegistryError(f"manifest {what} has an unsupported media type '{media}'")
