"""The Debian lock file: a resolved closure pinned by name, version, pool file and SHA-256.

The lock records what was asked for (`request`), the archive's shape (`suite`, the `suites`
that were read, `components`, `architecture`) and, per package, `name`, `version`,
`architecture`, `filename` (the pool path, relative to the mirror's base), `size`, `sha256`,
`depends` (the names of the locked packages it depends on) and `suite` (which suite it came
from, so a user of the lock knows which archive base — e.g. the security mirror — serves it).
It never records a host: the mirror is configured where the lock is used.

What must stay true: the same closure always serialises to the same bytes (sorted keys, 2-space
indent, packages sorted by name, a trailing newline).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Callable

from .index import Archive, ArchiveError, fetch, head
from .resolve import Entry

LOCK_VERSION = 1
DEFAULT_LOCK = "stdlib/packages/debian-lock.json"
_ENTRY_KEYS = ("name", "version", "architecture", "filename", "size", "sha256", "depends")


class LockError(Exception):
    pass


def make_lock(entries: list[Entry], archive: Archive, suite: str, components: list[str],
              request: list[str], arch: str) -> dict:
    """Build the lock document of a resolved closure."""
    return {
        "version": LOCK_VERSION,
        "request": list(request),
        "archive": {
            "suite": suite,
            "suites": [s.suite for s in archive.sources],
            "components": list(components),
            "architecture": arch,
        },
        "packages": [
            {"name": e.name, "version": e.version, "architecture": e.architecture,
             "filename": e.filename, "size": e.size, "sha256": e.sha256,
             "depends": list(e.depends), "suite": e.suite}
            for e in sorted(entries, key=lambda e: e.name)],
    }


def dump_lock(lock: dict) -> str:
    """Serialise a lock deterministically."""
    return json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def read_lock(path: str) -> dict:
    """Read and check the shape of a lock file; raise LockError."""
    try:
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
    except FileNotFoundError:
        raise LockError(f"lock file '{path}' does not exist") from None
    except (OSError, ValueError) as e:
        raise LockError(f"cannot read lock file '{path}': {e}") from None
    if not isinstance(lock, dict) or lock.get("version") != LOCK_VERSION:
        raise LockError(f"'{path}' is not a version {LOCK_VERSION} Debian lock file")
    archive = lock.get("archive")
    if not isinstance(archive, dict) or not isinstance(archive.get("suite"), str):
        raise LockError(f"lock file '{path}' has no archive suite")
    for entry in lock.get("packages", []):
        if not isinstance(entry, dict) or any(k not in entry for k in _ENTRY_KEYS):
            raise LockError(f"lock file '{path}' has a malformed package entry: {entry!r}")
    return lock


def refresh_command(lock: dict, output: str, mirror: str | None = None) -> str:
    """Return the exact command that regenerates `lock` into `output`."""
    archive = lock["archive"]
    argv = ["dtx-debian-lock"]
    if mirror:
        argv += ["--mirror", mirror]
    argv += ["--suite", archive["suite"]]
    components = archive.get("components") or ["main"]
    if list(components) != ["main"]:
        argv += ["--components", ",".join(components)]
    argv += ["-o", output] + list(lock.get("request", []))
    return shlex.join(argv)


def check_lock(lock: dict, archive: Archive, verify_files: bool = False,
               log: Callable[[str], None] | None = None) -> list[str]:
    """Return what no longer holds of `lock` against the archive: packages the indexes no
    longer list (or list with another hash), pool files the mirror no longer has, and, with
    `verify_files`, files whose contents do not match the locked SHA-256."""
    listed: dict[tuple[str, str], list] = {}
    versions: dict[str, set[str]] = {}
    for p in archive.packages:
        listed.setdefault((p.name, p.version), []).append(p)
        versions.setdefault(p.name, set()).add(p.version)
    problems = []
    for entry in lock.get("packages", []):
        name, version = entry["name"], entry["version"]
        what = f"{name} {version} ({entry['filename']})"
        candidates = listed.get((name, version), [])
        same = [p for p in candidates if p.filename == entry["filename"]]
        if not same:
            now = sorted(versions.get(name, ()))
            has = f"; the archive now has {name} {', '.join(now)}" if now else ""
            problems.append(f"{what} is no longer in the archive's indexes{has}")
            continue
        same.sort(key=lambda p: p.suite != entry.get("suite"))
        p = same[0]
        if p.sha256 != entry["sha256"] or p.size != entry["size"]:
            problems.append(f"the archive lists {what} with sha256 {p.sha256} ({p.size} bytes), "
                            f"the lock has {entry['sha256']} ({entry['size']} bytes)")
            continue
        status, length = head(p.url)
        if status == 404 or status == 410:
            problems.append(f"{what} is no longer on the mirror ('{p.url}': HTTP {status})")
            continue
        if status >= 400:
            raise ArchiveError(f"unable to check '{p.url}': HTTP error {status}")
        if length is not None and length != entry["size"]:
            problems.append(f"{what} on the mirror has {length} bytes, the lock says "
                            f"{entry['size']}: its hash has changed")
            continue
        if verify_files:
            got = hashlib.sha256(fetch(p.url, log)).hexdigest()
            if got != entry["sha256"]:
                problems.append(f"{what} on the mirror has sha256 {got}, the lock says "
                                f"{entry['sha256']}")
    return problems
