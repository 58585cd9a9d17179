"""`builtin:fetchurl`: the download builder, implemented in Python as Nix implements it in C++.

A derivation with `builder = "builtin:fetchurl"` is fixed-output; this builder downloads its
`url` (or the first of `urls` that works, `mirror://` URLs expanded from the `DTX_MIRRORS`-style
table in `mirrors`) to the output path, optionally marks it executable or unpacks it, and the
build then checks the declared hash before anything is registered. Downloads go through
`requests`: redirects are followed, failures retried with resumption (`Range`), a stalled
transfer times out, progress is reported, and a size limit stops runaway downloads. `file://`
URLs are read directly. `download` also serves the eval-time fetchers (runtime.downloads): given
the ETag or Last-Modified of a cached copy it asks the server whether that copy is still
current, and it reports the validators and the URL it ended at.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

RETRIES = 3
CONNECT_TIMEOUT = 30
READ_TIMEOUT = 300
MAX_SIZE = int(os.environ.get("DTX_MAX_DOWNLOAD_SIZE", str(16 << 30)))


class FetchError(Exception):
    pass


@dataclass
class Downloaded:
    """What a download ended with: the server's validators, the URL after redirects, and
    whether the server said the copy the caller has is current (nothing was written then)."""
    url: str
    etag: str = ""
    last_modified: str = ""
    not_modified: bool = False


def download(url: str, dest: str, log: Callable[[str], None], etag: str = "",
             last_modified: str = "") -> Downloaded:
    """Download `url` to the file `dest`, retrying with resumption; raise FetchError. With the
    `etag` or `last_modified` of a copy the caller has, the request is conditional."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = urllib.parse.unquote(parsed.path)
        try:
            shutil.copyfile(path, dest)
        except OSError as e:
            raise FetchError(f"unable to download '{url}': {e.strerror}") from None
        return Downloaded(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"unsupported URL scheme in '{url}'")
    import requests

    last_error = None
    for attempt in range(RETRIES + 1):
        have = os.path.getsize(dest) if os.path.exists(dest) else 0
        headers = {"User-Agent": "dtx", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            with requests.get(url, headers=headers, stream=True, allow_redirects=True,
                              timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as r:
                done = Downloaded(r.url, r.headers.get("ETag", ""),
                                  r.headers.get("Last-Modified", ""))
                if r.status_code == 304 and (etag or last_modified):
                    done.not_modified = True
                    return done
                if r.status_code == 416 and have:
                    return done  # the server says we already have everything
                if r.status_code >= 400:
                    error = FetchError(f"unable to download '{url}': HTTP error "
                                       f"{r.status_code}")
                    if r.status_code in (408, 429) or r.status_code >= 500:
                        last_error = error
                        raise _Retry()
                    raise error
                mode = "ab" if have and r.status_code == 206 else "wb"
                if mode == "wb":
                    have = 0
                total = r.headers.get("Content-Length")
                total = int(total) + have if total and total.isdigit() else None
                _stream(r, dest, mode, have, total, url, log)
                if total is not None and os.path.getsize(dest) < total:
                    last_error = FetchError(f"unable to download '{url}': transfer closed "
                                            "with data remaining")
                    raise _Retry()
                return done
        except _Retry:
            pass
        except requests.RequestException as e:
            last_error = FetchError(f"unable to download '{url}': {_describe(e)}")
        if attempt < RETRIES:
            delay = 0.25 * (2 ** attempt)
            log(f"warning: {last_error}; retrying in {delay:g} s")
            time.sleep(delay)
    raise last_error or FetchError(f"unable to download '{url}'")


def _describe(e) -> str:
    """Say what went wrong with a request in curl's words (which Nix prints), not with the
    nested exception text of requests and urllib3."""
    import requests
    if isinstance(e, requests.Timeout):
        return "Timeout was reached"
    if isinstance(e, requests.exceptions.SSLError):
        return "SSL connect error"
    if not isinstance(e, requests.ConnectionError):
        return str(e)
    for cause in _causes(e):
        if type(cause).__name__ in ("NameResolutionError", "gaierror"):
            return "Couldn't resolve host name"
    for cause in _causes(e):
        if isinstance(cause, OSError) and cause.strerror:
            return f"Couldn't connect to server ({cause.strerror})"
    return "Couldn't connect to server"


def _causes(e: BaseException):
    """`e` and every exception it wraps (causes, contexts, urllib3's `reason`, arguments)."""
    seen: set[int] = set()
    todo = [e]
    while todo:
        c = todo.pop()
        if not isinstance(c, BaseException) or id(c) in seen:
            continue
        seen.add(id(c))
        yield c
        todo += [c.__cause__, c.__context__, getattr(c, "reason", None), *c.args]


class _Retry(Exception):
    pass


def _stream(r, dest: str, mode: str, have: int, total: int | None, url: str, log) -> None:
    done = have
    next_report = time.monotonic() + 2  # a short download needs no progress line
    with open(dest, mode) as f:
        for chunk in r.iter_content(1 << 16):
            f.write(chunk)
            done += len(chunk)
            if done > MAX_SIZE:
                raise FetchError(f"unable to download '{url}': larger than the limit of "
                                 f"{MAX_SIZE} bytes (DTX_MAX_DOWNLOAD_SIZE)")
            now = time.monotonic()
            if now >= next_report:
                next_report = now + 2
                size = f" of {total / 1e6:.1f} MB" if total else ""
                log(f"downloading '{url}': {done / 1e6:.1f} MB{size}")


def expand_mirrors(url: str, mirrors: dict[str, list[str]]) -> list[str]:
    """Expand `mirror://name/rest` into one URL per configured mirror of `name`."""
    if not url.startswith("mirror://"):
        return [url]
    name, _, rest = url[len("mirror://"):].partition("/")
    bases = mirrors.get(name)
    if not bases and name in ("debian", "debian-security"):
        from .debian import mirror  # the host's archive, decided at build time
        try:
            return mirror.expand(url)
        except mirror.MirrorError as e:
            raise FetchError(str(e)) from None
    if not bases:
        raise FetchError(f"unknown mirror 'mirror://{name}' in '{url}'")
    return [base.rstrip("/") + "/" + rest for base in bases]


def builtin_fetchurl(drv, env: dict, out: str, log: Callable[[str], None], store) -> None:
    """The `builtin:fetchurl` builder: fetch to `out` (the output's scratch location)."""
    urls = env.get("urls", "").split() or ([env["url"]] if env.get("url") else [])
    if not urls:
        raise _build_error(drv, "'builtin:fetchurl' requires a 'url' attribute")
    mirrors = _parse_mirrors(env.get("mirrors", ""))
    errors = []
    tmp = out + ".part"
    for u in urls:
        try:
            for candidate in expand_mirrors(u, mirrors):
                log(f"downloading '{candidate}'...")
                try:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    download(candidate, tmp, log)
                    _finish(tmp, out, env, candidate)
                    return
                except FetchError as e:
                    errors.append(str(e))
                    log(f"error: {e}")
        except FetchError as e:
            errors.append(str(e))
    raise _build_error(drv, errors[-1] if errors else "download failed")


def _finish(tmp: str, out: str, env: dict, url: str) -> None:
    if env.get("unpack") == "1":
        # As Nix's builtin fetchurl: the archive must hold exactly one top-level entry, which
        # becomes the output.
        from .unpack import ArchiveError, TopLevelError, unpack_top_level
        unpack_dir = out + ".unpack"
        os.mkdir(unpack_dir)
        try:
            os.rename(unpack_top_level(tmp, unpack_dir, url), out)
        except ArchiveError as e:
            raise FetchError(f"failed to extract archive '{url}' ({e})") from None
        except TopLevelError as e:
            raise FetchError(str(e)) from None
        finally:
            os.unlink(tmp)
            shutil.rmtree(unpack_dir, ignore_errors=True)
        return
    os.rename(tmp, out)
    os.chmod(out, 0o755 if env.get("executable") == "1" else 0o644)


def _parse_mirrors(text: str) -> dict[str, list[str]]:
    """Parse `name=url url …;name2=…` mirror tables."""
    table: dict[str, list[str]] = {}
    for item in text.split(";"):
        name, eq, urls = item.partition("=")
        if eq:
            table[name.strip()] = urls.split()
    return table


def _build_error(drv, message: str):
    from .build import BuildError
    return BuildError(message)
