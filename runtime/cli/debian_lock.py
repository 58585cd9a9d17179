"""`dtx-debian-lock`: resolve Debian packages to a closure and write (or check) the lock file.

`dtx-debian-lock [--mirror URL] [--suite SUITE] [--components main,…] [-o FILE] PKG…` reads the
archive (the mirror from `--mirror`, `DTX_DEBIAN_MIRROR` or the host's apt sources), resolves the
packages and writes the lock (`-o -` prints it). `--check` instead verifies an existing lock
against the archive and exits 1, naming the exact refresh command, when it is stale.
Errors are printed Nix-style (`error: …`) with exit code 1; `--debug` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from ..debian.index import ARCH, ArchiveError, configured_sources, load_archive
from ..debian.lock import (DEFAULT_LOCK, LockError, check_lock, dump_lock, make_lock,
                           read_lock, refresh_command)
from ..debian.resolve import ResolveError, resolve

PROG = "dtx-debian-lock"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Resolve Debian packages and pin their closure in a lock file.")
    p.add_argument("packages", nargs="*", metavar="PKG",
                   help="package names (NAME, NAME=VERSION or NAME:ARCH)")
    p.add_argument("--mirror", metavar="URL",
                   help="the archive's base URL (default: $DTX_DEBIAN_MIRROR, else the host's "
                        "apt sources)")
    p.add_argument("--suite", help="the main suite (default: the lock's suite with --check, "
                                   "else the host's, else bookworm)")
    p.add_argument("--components", metavar="LIST",
                   help="comma-separated components (default: the sources', or main)")
    p.add_argument("--arch", default=ARCH, help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", default=DEFAULT_LOCK, metavar="FILE",
                   help=f"the lock file ('-' for stdout; default: {DEFAULT_LOCK})")
    p.add_argument("--check", action="store_true",
                   help="check the existing lock against the archive instead of writing it")
    p.add_argument("--verify-files", action="store_true",
                   help="with --check, download every .deb and compare its SHA-256")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.check:
            return _check(args)
        return _lock(args)
    except (ArchiveError, ResolveError, LockError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted by the user", file=sys.stderr)
        return 1


def _components(args, default=None) -> list[str] | None:
    if args.components:
        return [c for c in args.components.split(",") if c]
    return default


def _lock(args) -> int:
    if not args.packages:
        print(f"error: no packages given\nTry '{PROG} --help' for more information.",
              file=sys.stderr)
        return 1
    sources = configured_sources(args.suite, _components(args), args.mirror)
    archive = load_archive(sources, args.arch)
    main_source = next(s for s in sources if not s.optional)
    entries = resolve(archive, args.packages, args.arch)
    lock = make_lock(entries, archive, main_source.suite, list(main_source.components),
                     args.packages, args.arch)
    text = dump_lock(lock)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{args.output}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print(f"locked {len(entries)} packages of suite '{main_source.suite}' in '{args.output}'",
          file=sys.stderr)
    return 0


def _check(args) -> int:
    lock = read_lock(args.output)
    archive_info = lock["archive"]
    suite = args.suite or archive_info["suite"]
    components = _components(args, archive_info.get("components"))
    sources = configured_sources(suite, components, args.mirror)
    archive = load_archive(sources, archive_info.get("architecture", args.arch))
    problems = check_lock(lock, archive, verify_files=args.verify_files)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        print(f"error: the lock file '{args.output}' is stale:\n{lines}\n"
              f"refresh it with: {refresh_command(lock, args.output, args.mirror)}",
              file=sys.stderr)
        return 1
    print(f"'{args.output}': all {len(lock.get('packages', []))} locked packages are in the "
          "archive", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
