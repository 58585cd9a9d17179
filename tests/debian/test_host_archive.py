"""Resolution against the host's real Debian archive (its apt sources), when reachable."""

from __future__ import annotations

import pytest

from dtx.runtime.debian.index import ArchiveError, configured_sources, load_archive
from dtx.runtime.debian.resolve import resolve


@pytest.fixture
def host_sources():
    """The host's apt sources; skip (with the reason) unless their Release is reachable."""
    import requests
    try:
        sources = configured_sources(environ={})
    except ArchiveError as e:
        pytest.skip(f"no usable host apt sources: {e}")
    main = next(s for s in sources if not s.optional)
    url = f"{main.url}/dists/{main.suite}/InRelease"
    try:
        r = requests.head(url, timeout=5, allow_redirects=True)
    except requests.RequestException as e:
        pytest.skip(f"the host's Debian archive is not reachable ({url}): {e}")
    if r.status_code >= 400:
        pytest.skip(f"the host's Debian archive answered HTTP {r.status_code} for {url}")
    return sources


def test_redis_server_closure(host_sources):
    entries = {e.name: e for e in resolve(load_archive(host_sources), ["redis-server"])}
    assert "libc6" in entries and "redis-tools" in entries
    assert "redis-tools" in entries["redis-server"].depends
    for e in entries.values():
        assert e.filename.startswith("pool/") and len(e.sha256) == 64 and e.size > 0
