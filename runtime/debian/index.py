"""Reading a Debian archive: where it is, its Release files and its Packages indexes.

Where: `DTX_DEBIAN_MIRROR` (or an explicit mirror URL) names one archive for the main suite and
its `-updates` and `-security` suites (security is also looked for at `<mirror>-security`, the
layout of Debian's own mirrors, or at `DTX_DEBIAN_SECURITY_MIRROR`); otherwise the host's apt
sources (`sources.list`, `sources.list.d/*.list` and deb822 `*.sources`) say where each suite
lives. The project never names a host itself.

What: `dists/<suite>/InRelease` (or `Release`; signatures are not checked) lists the SHA-256 of
every index; each `<component>/binary-<arch>/Packages.xz` (or `.gz`, or plain) is downloaded,
checked against that hash, and kept in `$XDG_CACHE_HOME/dtx/debian` under its hash, so a cached
index is never stale: a new Release names a new hash. The stanzas become `Package` records.

What must stay true: no index is used unless its hash matches the Release file; every failure
(HTTP error, unreachable host, bad hash) is an `ArchiveError` whose message names the URL.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import lzma
import os
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Iterator

ARCH = "amd64"
CONNECT_TIMEOUT = 30
READ_TIMEOUT = 120
_INDEX_NAMES = ("Packages.xz", "Packages.gz", "Packages")
_FAMILY = ("", "-updates", "-security")
_FIELD = re.compile(r"^(Package|Version|Architecture|Depends|Pre-Depends|Provides|Filename|Size|"
                    r"SHA256|Multi-Arch|Essential|Priority|Source):[ \t]*(.*)$", re.M)


class ArchiveError(Exception):
    pass


class NotFound(ArchiveError):
    pass


@dataclass(frozen=True)
class Source:
    """One suite of one archive: `url` is the archive's base (it holds `dists/` and `pool/`).
    An optional source that has no Release file is skipped instead of failing."""
    url: str
    suite: str
    components: tuple[str, ...]
    optional: bool = False


@dataclass
class Package:
    """One stanza of a Packages index, with the suite and archive it came from."""
    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    multi_arch: str = ""
    essential: bool = False
    priority: str = ""
    source: str = ""
    suite: str = ""
    base_url: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """Return the full URL of the `.deb`."""
        return self.base_url + "/" + self.filename


@dataclass
class Archive:
    """The loaded suites and every package they list (in source order)."""
    sources: list[Source]
    packages: list[Package]
    releases: dict[str, dict] = field(default_factory=dict)


# --- where the archive is ----------------------------------------------------------------------

def configured_sources(suite: str | None = None, components: list[str] | None = None,
                       mirror: str | None = None, environ=None,
                       apt_dir: str = "/etc/apt") -> list[Source]:
    """Return the sources of the main suite and its `-updates` and `-security` suites: from
    `mirror`, else `DTX_DEBIAN_MIRROR`, else the host's apt sources."""
    environ = os.environ if environ is None else environ
    mirror = mirror or environ.get("DTX_DEBIAN_MIRROR") or None
    host = apt_sources(apt_dir)
    if mirror:
        mirror = mirror.rstrip("/")
        suite = suite or _main_suite(host) or "bookworm"
        comps = tuple(components or ("main",))
        out = [Source(mirror, suite, comps),
               Source(mirror, suite + "-updates", comps, optional=True)]
        security = environ.get("DTX_DEBIAN_SECURITY_MIRROR")
        for url in ([security.rstrip("/")] if security else [mirror, mirror + "-security"]):
            out.append(Source(url, suite + "-security", comps, optional=True))
        return out
    if not host:
        raise ArchiveError(f"no Debian archive configured: set DTX_DEBIAN_MIRROR (for example "
                           f"'http://HOST/debian') or add apt sources under {apt_dir}")
    suite = suite or _main_suite(host)
    if suite is None:
        raise ArchiveError(f"cannot tell the Debian suite from the apt sources under {apt_dir}: "
                           "pass --suite")
    out = []
    for url, s, comps in host:
        if s in (suite + f for f in _FAMILY):
            chosen = tuple(components) if components else comps
            out.append(Source(url.rstrip("/"), s, chosen, optional=s != suite))
    if not any(s.suite == suite for s in out):
        raise ArchiveError(f"the apt sources under {apt_dir} have no entry for suite '{suite}': "
                           "set DTX_DEBIAN_MIRROR or pass --mirror")
    return out


def apt_sources(apt_dir: str = "/etc/apt") -> list[tuple[str, str, tuple[str, ...]]]:
    """Return the enabled binary (`deb`) entries of the host's apt sources as
    (url, suite, components), in the order apt reads them."""
    entries: list[tuple[str, str, tuple[str, ...]]] = []
    files = [os.path.join(apt_dir, "sources.list")]
    files += sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.list")) +
                    glob.glob(os.path.join(apt_dir, "sources.list.d", "*.sources")))
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            entries += _deb822_sources(text)
        else:
            entries += _one_line_sources(text)
    return [e for e in entries if not e[1].endswith("/")]  # flat repositories have no dists/


def _one_line_sources(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "[" in line:  # options: deb [arch=amd64 signed-by=…] URI SUITE COMPONENT…
            head, _, rest = line.partition("[")
            _, _, rest = rest.partition("]")
            line = head + rest
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            out.append((words[1], words[2], tuple(words[3:])))
    return out


def _deb822_sources(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    out = []
    for stanza in parse_deb822("\n".join(lines)):
        fields = {k.lower(): v for k, v in stanza.items()}
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        comps = tuple(fields.get("components", "").split())
        for url in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append((url, suite, comps))
    return out


def _main_suite(host: list[tuple[str, str, tuple[str, ...]]]) -> str | None:
    """Pick the main suite: the one with the most members of its family (X, X-updates,
    X-security) in the sources; the first listed on a tie."""
    best, best_score = None, 0
    for _, s, _ in host:
        if any(s.endswith(f) for f in _FAMILY[1:]) or s.endswith("-backports"):
            continue
        score = len({x for _, x, _ in host if x in (s + f for f in _FAMILY)})
        if score > best_score:
            best, best_score = s, score
    return best


# --- fetching ----------------------------------------------------------------------------------

def fetch(url: str, log: Callable[[str], None] | None = None) -> bytes:
    """Download `url` into memory; raise NotFound on 404 and ArchiveError on other failures.
    Big downloads report progress through `log` (stderr by default)."""
    log = log or _stderr
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        try:
            with open(urllib.parse.unquote(parsed.path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"'{url}' does not exist") from None
        except OSError as e:
            raise ArchiveError(f"unable to read '{url}': {e.strerror}") from None
    import requests
    try:
        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                          headers={"User-Agent": "dtx"}) as r:
            if r.status_code == 404 or r.status_code == 410:
                raise NotFound(f"'{url}' was not found on the mirror (HTTP {r.status_code})")
            if r.status_code >= 400:
                raise ArchiveError(f"unable to download '{url}': HTTP error {r.status_code}")
            total = r.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            return _read_with_progress(r, url, total, log)
    except requests.RequestException as e:
        raise ArchiveError(f"unable to reach the Debian archive at '{url}': "
                           f"{_short_reason(e)}") from None


def head(url: str) -> tuple[int, int | None]:
    """Return (HTTP status, Content-Length or None) of a HEAD request; raise ArchiveError when
    the host cannot be reached."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = urllib.parse.unquote(parsed.path)
        return (200, os.path.getsize(path)) if os.path.isfile(path) else (404, None)
    import requests
    try:
        r = requests.head(url, allow_redirects=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                          headers={"User-Agent": "dtx"})
    except requests.RequestException as e:
        raise ArchiveError(f"unable to reach the Debian archive at '{url}': "
                           f"{_short_reason(e)}") from None
    length = r.headers.get("Content-Length")
    return r.status_code, int(length) if length and length.isdigit() else None


def _short_reason(e: Exception) -> str:
    text = str(e)
    for marker in ("Failed to establish a new connection: ", "Failed to resolve "):
        if marker in text:
            return text.split(marker, 1)[1].rstrip(")'\"")
    return text


def _read_with_progress(r, url: str, total: int | None, log) -> bytes:
    chunks = []
    done = 0
    big = total is None or total > (1 << 20)
    tty = sys.stderr.isatty()
    if big and not tty:
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        log(f"downloading '{url}'{size}...")
    for chunk in r.iter_content(1 << 16):
        chunks.append(chunk)
        done += len(chunk)
        if big and tty:
            size = f"/{total / 1e6:.1f}" if total else ""
            sys.stderr.write(f"\rdownloading '{url}': {done / 1e6:.1f}{size} MB")
    if big and tty:
        sys.stderr.write("\n")
    return b"".join(chunks)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# --- Release files -----------------------------------------------------------------------------

def parse_deb822(text: str) -> Iterator[dict[str, str]]:
    """Yield the stanzas of a deb822 document as {field: value}; continuation lines are joined
    with newlines (the first line of a multi-line field may be empty)."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        stanza: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if key is not None:
                    stanza[key] += "\n" + line.strip()
                continue
            if line.startswith("#"):
                continue
            key, _, value = line.partition(":")
            stanza[key] = value.strip()
        if stanza:
            yield stanza


def strip_signature(text: str) -> str:
    """Return the signed text of a clear-signed (InRelease) document, or `text` unchanged."""
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    i = 1
    while i < len(lines) and lines[i].strip():  # armor headers ("Hash: SHA512")
        i += 1
    body = []
    for line in lines[i + 1:]:
        if line.startswith("-----BEGIN PGP SIGNATURE-----"):
            break
        body.append(line[2:] if line.startswith("- ") else line)
    return "\n".join(body)


def parse_release(text: str) -> dict:
    """Parse a Release file: its fields, and `files` mapping each index path to
    (sha256, size)."""
    stanzas = list(parse_deb822(strip_signature(text)))
    if not stanzas:
        raise ArchiveError("empty Release file")
    fields = stanzas[0]
    files = {}
    for line in fields.get("SHA256", "").split("\n"):
        parts = line.split()
        if len(parts) == 3:
            files[parts[2]] = (parts[0].lower(), int(parts[1]))
    return {"fields": fields, "files": files}


def fetch_release(source: Source, log=None) -> dict | None:
    """Fetch and parse `dists/<suite>/InRelease` (or `Release`); return None for an optional
    source that has neither."""
    base = f"{source.url}/dists/{source.suite}"
    for name in ("InRelease", "Release"):
        try:
            data = fetch(f"{base}/{name}", log)
        except NotFound:
            continue
        release = parse_release(data.decode("utf-8", errors="replace"))
        if not release["files"]:
            raise ArchiveError(f"'{base}/{name}' lists no SHA256 hashes")
        return release
    if source.optional:
        return None
    raise NotFound(f"the archive at '{source.url}' has no suite '{source.suite}' "
                   f"(neither '{base}/InRelease' nor '{base}/Release' exists)")


# --- Packages indexes --------------------------------------------------------------------------

def cache_dir() -> str:
    """Return the directory of cached indexes: `$XDG_CACHE_HOME/dtx/debian`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dtx", "debian")


def fetch_index(source: Source, release: dict, component: str, arch: str = ARCH,
                log=None, cache: str | None = None) -> bytes:
    """Return the uncompressed Packages index of one component, verified against the Release
    file's SHA-256 and cached under that hash."""
    cache = cache or cache_dir()
    base = f"{source.url}/dists/{source.suite}"
    listed = [n for n in _INDEX_NAMES if f"{component}/binary-{arch}/{n}" in release["files"]]
    if not listed:
        raise ArchiveError(f"suite '{source.suite}' at '{source.url}' has no Packages index for "
                           f"component '{component}' on {arch}")
    missing = []
    for name in listed:
        rel = f"{component}/binary-{arch}/{name}"
        sha256, size = release["files"][rel]
        cached = os.path.join(cache, sha256 + "-" + name)
        data = _read_cached(cached, sha256)
        if data is None:
            url = f"{base}/{rel}"
            try:
                data = fetch(url, log)
            except NotFound as e:
                missing.append(str(e))
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != sha256 or len(data) != size:
                raise ArchiveError(f"hash mismatch for '{url}': the Release file lists sha256 "
                                   f"{sha256} ({size} bytes), the download has {got} "
                                   f"({len(data)} bytes); the mirror may be syncing, try again "
                                   "later")
            _write_cached(cached, data)
        return _decompress(data, name)
    raise NotFound("; ".join(missing))


def _read_cached(path: str, sha256: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _write_cached(path: str, data: bytes) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation


def _decompress(data: bytes, name: str) -> bytes:
    try:
        if name.endswith(".xz"):
            return lzma.decompress(data)
        if name.endswith(".gz"):
            return gzip.decompress(data)
    except (lzma.LZMAError, OSError, EOFError) as e:
        raise ArchiveError(f"corrupt index '{name}': {e}") from None
    return data


def parse_packages(text: str, source: Source) -> list[Package]:
    """Turn the stanzas of a Packages index into Package records (stanzas without a file or
    hash are skipped)."""
    out = []
    for block in text.split("\n\n"):
        # The fields used are single-line: a regex picks them and skips everything else.
        s = {k: v.strip() for k, v in _FIELD.findall(block)}
        if not s:
            continue
        try:
            out.append(Package(
                name=s["Package"], version=s["Version"], architecture=s.get("Architecture", ""),
                filename=s["Filename"], size=int(s.get("Size", "0")), sha256=s["SHA256"].lower(),
                depends=s.get("Depends", ""), pre_depends=s.get("Pre-Depends", ""),
                provides=s.get("Provides", ""), multi_arch=s.get("Multi-Arch", ""),
                essential=s.get("Essential", "").lower() == "yes",
                priority=s.get("Priority", ""), source=s.get("Source", ""),
                suite=source.suite, base_url=source.url))
        except (KeyError, ValueError):
            continue
    return out


def load_archive(sources: list[Source], arch: str = ARCH, log=None,
                 cache: str | None = None) -> Archive:
    """Fetch every source's Release and Packages indexes; optional sources that do not exist
    are skipped, and a suite found at one URL is not looked for at the next."""
    loaded: list[Source] = []
    packages: list[Package] = []
    releases: dict[str, dict] = {}
    for source in sources:
        if source.suite in releases:
            continue
        release = fetch_release(source, log)
        if release is None:
            continue
        releases[source.suite] = release
        loaded.append(source)
        for component in source.components:
            text = fetch_index(source, release, component, arch, log, cache)
            packages += parse_packages(text.decode("utf-8", errors="replace"), source)
    return Archive(loaded, packages, releases)
