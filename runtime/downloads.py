"""Downloads into the store for the eval-time fetchers, remembered in the fetcher cache.

`download_file` fetches a URL into a flat fixed-output path (SHA-256 of the bytes, the given
name): the path Nix's `downloadFile` gives for the same bytes and name. `download_tarball`
downloads the same way (the archive stays in the store as a flat path named like the result, as
in Nix), unpacks it with runtime.unpack and adds its single top-level entry as a recursive
source path.

Both consult the fetcher cache (runtime.fetchcache), keyed by URL and name:
- a fresh entry is used without touching the network;
- an expired one is revalidated: the request carries the ETag and Last-Modified the server gave
  last time, and a "not modified" answer keeps the cached paths (the unpacked tree too, when the
  ETag is unchanged); if the server cannot be reached, the cached copy is used with a warning;
- `locked` entries (the caller declared a hash) never expire.
The transfer itself is runtime.fetchurl's `download` (retries, resumption, progress, size
limit, `file://`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable

from .fetchcache import FetcherCache
from .fetchurl import FetchError, download
from .unpack import ArchiveError, TopLevelError, unpack_top_level

Log = Callable[[str], None]


class DownloadError(Exception):
    pass


def download_file(store, cache: FetcherCache, url: str, name: str, locked: bool, log: Log,
                  warn: Log) -> tuple[str, str]:
    """Fetch `url` into a flat store path named `name`; return (store path, ETag)."""
    inputs = {"type": "file", "url": url, "name": name}
    cached = cache.lookup_expired(inputs)
    if cached is not None and not cached.expired:
        return cached.path, cached.info.get("etag", "")
    tmp_dir = tempfile.mkdtemp(prefix="dtx-download-")
    try:
        tmp = os.path.join(tmp_dir, "file")
        log(f"downloading '{url}'...")
        try:
            got = download(url, tmp, log,
                           etag=cached.info.get("etag", "") if cached else "",
                           last_modified=cached.info.get("lastModifiedHeader", "")
                           if cached else "")
        except FetchError as e:
            if cached is None:
                raise DownloadError(str(e)) from None
            warn(f"{e}; using cached version")
            return cached.path, cached.info.get("etag", "")
        if got.not_modified:
            path = cached.path
        else:
            path = store.add_path(tmp, name, recursive=False)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    info = {"etag": got.etag, "url": got.url}
    if got.last_modified:
        info["lastModifiedHeader"] = got.last_modified
    cache.add(inputs, info, path, locked)
    if got.url != url:
        cache.add({"type": "file", "url": got.url, "name": name}, info, path, locked)
    return path, got.etag


def download_tarball(store, cache: FetcherCache, url: str, name: str, locked: bool,
                     log: Log, warn: Log) -> str:
    """Fetch and unpack the archive at `url` into a store path named `name`; return it."""
    inputs = {"type": "tarball", "url": url, "name": name}
    cached = cache.lookup_expired(inputs)
    if cached is not None and not cached.expired:
        return cached.path
    archive, etag = download_file(store, cache, url, name, locked, log, warn)
    if cached is not None and etag and cached.info.get("etag") == etag:
        path = cached.path
    else:
        path = _unpack_into_store(store, store.real(archive), url, name, log)
    cache.add(inputs, {"etag": etag}, path, locked)
    return path


def _unpack_into_store(store, archive: str, url: str, name: str, log: Log) -> str:
    tmp_dir = tempfile.mkdtemp(prefix="dtx-unpack-")
    try:
        try:
            top = unpack_top_level(archive, tmp_dir, url, log)
        except ArchiveError as e:
            raise DownloadError(f"failed to extract archive ({e})") from None
        except TopLevelError as e:
            raise DownloadError(str(e)) from None
        return store.add_path(top, name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
