"""Reference scanning: which store paths a build output mentions.

As Nix does, a build's output is searched for the 32-character hash parts of the paths it could
refer to (its input closure and its own outputs); every hash part found makes the corresponding
path a reference. Contents of regular files and symlink targets are searched, in chunks that
overlap so a hash part straddling two chunks is still found.
"""

from __future__ import annotations

import os
import re
import stat

from .storepath import HASH_PART_LEN

_HASH_RE = re.compile(rb"[0-9a-df-np-sv-z]{32}")
_CHUNK = 1 << 20


def scan_references(path: str, candidates: dict[str, str]) -> set[str]:
    """Return the values of `candidates` (hash part -> store path) whose hash part occurs in
    the file tree at `path`."""
    wanted = {h.encode(): p for h, p in candidates.items()}
    found: set[str] = set()

    def scan_bytes(data: bytes) -> None:
        for m in _HASH_RE.finditer(data):
            p = wanted.get(m.group())
            if p is not None:
                found.add(p)

    def visit(p: str) -> None:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            scan_bytes(os.fsencode(os.readlink(p)))
        elif stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                tail = b""
                while True:
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    scan_bytes(tail + chunk)
                    tail = chunk[-(HASH_PART_LEN - 1):]
        elif stat.S_ISDIR(st.st_mode):
            for name in os.listdir(p):
                visit(os.path.join(p, name))

    visit(path)
    return found
