"""The fetcher cache: what the eval-time fetchers fetched, so that they need not fetch it again.

Like Nix's fetcher cache, one SQLite table maps an *input* — a JSON object such as
`{"name":"source","type":"tarball","url":"https://…"}` — to *information* about what was
fetched (its ETag, Git revision, lastModified, …), the store path holding it, whether the input
is locked, and when the entry was written. An entry of a locked input (a download with a
declared hash, a Git revision) never expires; any other entry expires `tarball_ttl()` seconds
after it was written (`DTX_TARBALL_TTL`, default 3600 s as Nix's `tarball-ttl`). An expired entry
can still be looked up, marked as such, so that the fetcher revalidates it (an ETag) or falls
back on it when the network fails. An entry whose store path is no longer valid (collected as
garbage) is ignored.

The cache is a file beside the store's database (`<state dir>/fetchers/cache-v1.sqlite`, with
the Git clones of remote repositories next to it), so it only ever names paths of its own store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass

DEFAULT_TARBALL_TTL = 3600

_SCHEMA = """
create table if not exists Cache (
    input     text not null primary key,
    info      text not null,
    path      text not null,
    immutable integer not null,
    timestamp integer not null
)
"""


def tarball_ttl() -> int:
    """How long (seconds) an unlocked entry stays fresh: `DTX_TARBALL_TTL`, default 3600."""
    text = os.environ.get("DTX_TARBALL_TTL", "")
    try:
        return int(text) if text else DEFAULT_TARBALL_TTL
    except ValueError:
        return DEFAULT_TARBALL_TTL


def cache_root(store) -> str:
    """The directory of the fetchers' files for `store`."""
    return os.path.join(store.state_dir, "fetchers")


@dataclass
class Entry:
    info: dict
    path: str
    expired: bool


def _key(inputs: dict) -> str:
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"))


class FetcherCache:
    """The fetcher cache of one (writable) store."""

    def __init__(self, store):
        self.store = store
        root = cache_root(store)
        os.makedirs(root, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(root, "cache-v1.sqlite"), timeout=60,
                                  isolation_level=None, check_same_thread=False)
        self.db.execute("pragma busy_timeout = 60000")
        self.db.execute(_SCHEMA)

    def add(self, inputs: dict, info: dict, path: str, locked: bool) -> None:
        """Record that `inputs` was fetched into `path`, with `info` about it."""
        self.db.execute("insert or replace into Cache (input, info, path, immutable, timestamp) "
                        "values (?, ?, ?, ?, ?)",
                        (_key(inputs), json.dumps(info, sort_keys=True), path, int(locked),
                         int(time.time())))

    def lookup_expired(self, inputs: dict) -> Entry | None:
        """The entry of `inputs`, expired or not, if its store path is still valid."""
        row = self.db.execute("select info, path, immutable, timestamp from Cache "
                              "where input = ?", (_key(inputs),)).fetchone()
        if row is None:
            return None
        info, path, immutable, timestamp = row
        if not self.store.is_valid(path):
            return None
        expired = not immutable and timestamp + tarball_ttl() < time.time()
        return Entry(json.loads(info), path, expired)

    def lookup(self, inputs: dict) -> Entry | None:
        """The entry of `inputs` if it is still fresh and its store path valid."""
        entry = self.lookup_expired(inputs)
        return None if entry is None or entry.expired else entry
