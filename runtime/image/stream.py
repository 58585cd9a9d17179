"""Plans: the bytes of an archive as data, and the one writer that renders them.

A plan is a list of segments whose bytes, one after the other, are the archive:
- `bytes`: literal bytes (tar headers and padding, small documents);
- `FileRange(path, offset, length)`: `length` bytes of the file `path` from `offset`;
- `Gunzip(path, start, offset, length)`: `length` bytes from `offset` of the gzip stream that
  begins at byte `start` of the file `path` (a layer of a compressed base image);
- `Checked(digest, parts)`: the bytes of the plan `parts`, whose `sha256:` digest must be
  `digest` (a layer and its diff_id).
dtx describes every tar it writes as a plan (layers.tar_plan) and renders it with `write_plan`,
which reads each range as it goes and fails with `PlanError` when a file is shorter than the plan
says or a checked part has other bytes than it should.

This file is also the body of what `dockerTools.streamLayeredImage` builds: an executable
"stream script" made of `#!/usr/bin/env python3`, this module's source and the image's plan
(`write_script`). The plan is stored as `PLAN`, JSON with file paths as logical store paths in
plain text (so the store's reference scanner finds them and the script's closure keeps every
file it reads), and `LITERALS`, the literal bytes of the plan, zlib-compressed and base64-encoded.
Run, the script takes the directory holding itself as the store directory (the physical store
directory, or the logical one inside a sandbox), checks that every file it will read is there
with its size, then writes the archive to standard output, checking each layer's digest on the
way. Errors are one line on standard error and exit status 1; a closed pipe ends the script
quietly, as it ends `cat`. dtx reads a stream script without running it (`read_script`), so
`mergeImages` takes one like an archive.

So this module runs on Python 3.8 with only the standard library, and imports nothing from dtx.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
import stat
import sys
import zlib
from typing import Callable, NamedTuple, Optional

CHUNK = 1 << 20
FORMAT = 1  # of the PLAN document
MARKER = "# dtx stream script"  # the second line of every stream script


class PlanError(Exception):
    pass


class FileRange(NamedTuple):
    path: str
    offset: int
    length: int


class Gunzip(NamedTuple):
    path: str
    start: int
    offset: int
    length: int


class Checked(NamedTuple):
    digest: str
    parts: list


Resolve = Callable[[str], str]


def segment_size(segment) -> int:
    """The number of bytes a segment stands for."""
    if isinstance(segment, (bytes, bytearray, memoryview)):
        return len(segment)
    if isinstance(segment, Checked):
        return plan_size(segment.parts)
    return segment.length


def plan_size(plan: list) -> int:
    """The number of bytes of a plan."""
    return sum(segment_size(s) for s in plan)


def file_plan(path: str) -> list:
    """The plan of a whole file."""
    size = os.stat(path).st_size
    return [FileRange(path, 0, size)] if size else []


# -- writing ----------------------------------------------------------------------------------

class _Sources:
    """Opens the files of a plan; keeps one gzip stream open and reads it forward, since the
    layers of a compressed archive are read in order."""

    def __init__(self, resolve: Optional[Resolve]):
        self.resolve = resolve or (lambda p: p)
        self.gz_key = None
        self.gz_file = None
        self.gz = None
        self.gz_at = 0

    def copy(self, segment, sink: Callable[[bytes], None]) -> None:
        if isinstance(segment, FileRange):
            with open(self.resolve(segment.path), "rb") as f:
                f.seek(segment.offset)
                self._copy(f, segment.length, segment.path, sink)
            return
        key = (segment.path, segment.start)
        if key != self.gz_key or segment.offset < self.gz_at:
            self.close()
            self.gz_file = open(self.resolve(segment.path), "rb")
            self.gz_file.seek(segment.start)
            self.gz = gzip.GzipFile(fileobj=self.gz_file, mode="rb")
            self.gz_key, self.gz_at = key, 0
        try:
            self._copy(self.gz, segment.offset - self.gz_at, segment.path, lambda _: None)
            self._copy(self.gz, segment.length, segment.path, sink)
        except (OSError, EOFError, zlib.error) as e:
            raise PlanError(f"{segment.path}: cannot decompress: {e}") from None
        self.gz_at = segment.offset + segment.length

    @staticmethod
    def _copy(f, length: int, path: str, sink: Callable[[bytes], None]) -> None:
        while length > 0:
            data = f.read(min(CHUNK, length))
            if not data:
                raise PlanError(f"{path} is shorter than when the image was built: "
                                f"the store was changed")
            sink(data)
            length -= len(data)

    def close(self) -> None:
        if self.gz_file is not None:
            self.gz_file.close()
        self.gz_key = self.gz_file = self.gz = None


def write_plan(plan: list, out, resolve: Optional[Resolve] = None) -> None:
    """Write the bytes of `plan` to the binary file `out`, reading file `p` at `resolve(p)`."""
    _render(plan, out.write, resolve)


def plan_digest(plan: list, resolve: Optional[Resolve] = None) -> str:
    """The `sha256:` digest of the bytes of `plan`."""
    h = hashlib.sha256()
    _render(plan, h.update, resolve)
    return "sha256:" + h.hexdigest()


def _render(plan: list, sink: Callable[[bytes], None], resolve: Optional[Resolve]) -> None:
    sources = _Sources(resolve)
    try:
        _write(plan, sink, sources)
    finally:
        sources.close()


def _write(plan: list, sink: Callable[[bytes], None], sources: _Sources) -> None:
    for segment in plan:
        if isinstance(segment, (bytes, bytearray, memoryview)):
            sink(segment)
        elif isinstance(segment, Checked):
            h = hashlib.sha256()

            def both(data, h=h):
                h.update(data)
                sink(data)

            _write(segment.parts, both, sources)
            if "sha256:" + h.hexdigest() != segment.digest:
                raise PlanError(f"a layer has other bytes than when the image was built "
                                f"(it should have digest {segment.digest}): "
                                f"the store was changed")
        else:
            sources.copy(segment, sink)


# -- the PLAN document ------------------------------------------------------------------------

def encode_plan(plan: list, logical: Callable[[str], Optional[str]],
                resolve: Optional[Resolve] = None) -> tuple:
    """The document and the literal bytes that stand for `plan` in a stream script.

    `logical(p)` is the logical store path of file `p`, or None for a file outside the store,
    whose bytes become literal; consecutive literal bytes are merged. The document lists each
    file once, with its size, and the plan names files by their place in that list."""
    literals = bytearray()
    files: list = []  # [logical path, size]
    index: dict = {}
    sources = _Sources(resolve)

    def encode(parts: list) -> list:
        result: list = []
        pending = bytearray()

        def flush() -> None:
            if pending:
                result.append(["l", len(literals), len(pending)])
                literals.extend(pending)
                pending.clear()

        for segment in parts:
            if isinstance(segment, (bytes, bytearray, memoryview)):
                pending.extend(segment)
                continue
            if isinstance(segment, Checked):
                flush()
                result.append(["c", segment.digest, encode(segment.parts)])
                continue
            if segment.length == 0:
                continue
            path = logical(segment.path)
            if path is None:
                sources.copy(segment, pending.extend)
                continue
            flush()
            if path not in index:
                index[path] = len(files)
                files.append([path, os.stat((resolve or (lambda p: p))(segment.path)).st_size])
            if isinstance(segment, FileRange):
                result.append(["f", index[path], segment.offset, segment.length])
            else:
                result.append(["z", index[path], segment.start, segment.offset,
                               segment.length])
        flush()
        return result

    try:
        encoded = encode(plan)
    finally:
        sources.close()
    return {"files": files, "plan": encoded, "literalSize": len(literals)}, bytes(literals)


def decode_plan(doc: dict, literals: bytes) -> tuple:
    """The plan and the files (logical path -> size) of a PLAN document; a malformed document
    raises PlanError."""
    def nat(x) -> int:
        if type(x) is not int or x < 0:
            raise PlanError("malformed stream script: bad number in the plan")
        return x

    def text(x) -> str:
        if not isinstance(x, str):
            raise PlanError("malformed stream script: bad path in the plan")
        return x

    def file(x) -> str:
        if type(x) is not int or not 0 <= x < len(paths):
            raise PlanError("malformed stream script: bad file number in the plan")
        return paths[x]

    def decode(parts, depth: int) -> list:
        if not isinstance(parts, list) or depth > 4:
            raise PlanError("malformed stream script: bad plan")
        result: list = []
        for p in parts:
            kind = p[0] if isinstance(p, list) and p else None
            if kind == "l" and len(p) == 3:
                start, size = nat(p[1]), nat(p[2])
                if start + size > len(literals):
                    raise PlanError("malformed stream script: literal bytes out of range")
                result.append(literals[start:start + size])
            elif kind == "f" and len(p) == 4:
                result.append(FileRange(file(p[1]), nat(p[2]), nat(p[3])))
            elif kind == "z" and len(p) == 5:
                result.append(Gunzip(file(p[1]), nat(p[2]), nat(p[3]), nat(p[4])))
            elif kind == "c" and len(p) == 3:
                result.append(Checked(text(p[1]), decode(p[2], depth + 1)))
            else:
                raise PlanError("malformed stream script: unknown segment in the plan")
        return result

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanError("not a stream script of this version of dtx (unknown plan format)")
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, list) and len(f) == 2
                                              for f in files):
        raise PlanError("malformed stream script: bad file list")
    paths = [text(path) for path, _ in files]
    return decode(doc.get("plan"), 0), {text(path): nat(size) for path, size in files}


def _literals(text: str, size: int) -> bytes:
    try:
        d = zlib.decompressobj()
        data = d.decompress(base64.b64decode(text), size + 1)
    except (ValueError, zlib.error):
        raise PlanError("malformed stream script: bad literal bytes") from None
    if len(data) != size:
        raise PlanError("malformed stream script: literal bytes of the wrong size")
    return data


# -- stream scripts ---------------------------------------------------------------------------

def write_script(dest: str, doc: dict, literals: bytes, title: str) -> None:
    """Write the stream script for a PLAN document (see `encode_plan`) to `dest`, executable;
    `title` says what it writes."""
    doc = dict(doc, format=FORMAT)
    title = " ".join(title.split()).encode("ascii", "backslashreplace").decode()
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).replace("'", "\\u0027")
    packed = base64.b64encode(zlib.compress(literals, 9)).decode()
    with open(__file__, encoding="utf-8") as f:
        source = f.read()
    with open(dest, "w", encoding="utf-8") as f:
        f.write(f"#!/usr/bin/env python3\n{MARKER}: writes {title} to standard output\n"
                f"# as a docker-archive, e.g. `./result | podman load`. Made by dtx's\n"
                f"# dockerTools.streamLayeredImage; the code is dtx's runtime/image/stream.py.\n")
        f.write(source)
        f.write(f"\n\nPLAN = r'{data}'\nLITERALS = '{packed}'\n\n"
                f"if __name__ == \"__main__\":\n    main(__file__, PLAN, LITERALS)\n")
    os.chmod(dest, 0o755)


def is_script(path: str) -> bool:
    """Whether the file at `path` is a stream script."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        head = f.read(200)
    return head.startswith(b"#!/usr/bin/env python3\n" + MARKER.encode())


def read_script(path: str) -> tuple:
    """The PLAN document and the literal bytes of the stream script at `path`, read without
    running it."""
    plan_text = literals_text = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("PLAN = r'"):
                plan_text = line[len("PLAN = r'"):].rstrip("\n")[:-1]
            elif line.startswith("LITERALS = '"):
                literals_text = line[len("LITERALS = '"):].rstrip("\n")[:-1]
    if plan_text is None or literals_text is None:
        raise PlanError(f"{path}: not a stream script (no PLAN or LITERALS)")
    return _document(plan_text, literals_text)


def _document(plan_text: str, literals_text: str) -> tuple:
    try:
        doc = json.loads(plan_text)
    except ValueError:
        raise PlanError("malformed stream script: the plan is not JSON") from None
    if not isinstance(doc, dict):
        raise PlanError("malformed stream script: bad plan")
    size = doc.get("literalSize")
    if type(size) is not int or size < 0:
        raise PlanError("malformed stream script: bad literal size")
    return doc, _literals(literals_text, size)


def store_resolver(store_dir: str, here: str) -> Resolve:
    """A map from logical store paths under `store_dir` to files under the directory `here`."""
    prefix = store_dir.rstrip("/") + "/"

    def resolve(path: str) -> str:
        rest = path[len(prefix):]
        if not path.startswith(prefix) or not rest or ".." in rest.split("/"):
            raise PlanError(f"{path} is not a path in the store {store_dir}")
        return os.path.join(here, rest)
    return resolve


def check_files(files: dict, resolve: Resolve) -> None:
    """Fail unless every file of a plan is a regular file with the size it had at build time."""
    for path in sorted(files):
        real = resolve(path)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            where = "" if real == path else f" (looked for at {real})"
            raise PlanError(f"{path} is missing from the store{where}") from None
        if not stat.S_ISREG(st.st_mode):
            raise PlanError(f"{path} is not a regular file")
        if st.st_size != files[path]:
            raise PlanError(f"{path} has {st.st_size} bytes, but had {files[path]} when the "
                            f"image was built: the store was changed")


def render_script(doc: dict, literals: bytes, out, resolve: Resolve) -> None:
    """Write the archive a stream script stands for to `out`, after checking its files."""
    plan, files = decode_plan(doc, literals)
    check_files(files, resolve)
    write_plan(plan, out, resolve)


def main(script: str, plan_text: str, literals_text: str) -> None:
    """Run a stream script: write its archive to standard output."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a closed pipe ends us quietly, as `cat`
    name = os.path.basename(script)
    try:
        if sys.stdout.isatty():
            raise PlanError("standard output is a terminal: pipe the image archive into a "
                            "program, e.g. `| podman load`")
        doc, literals = _document(plan_text, literals_text)
        store_dir = doc.get("storeDir")
        if not isinstance(store_dir, str):
            raise PlanError("malformed stream script: no store directory")
        here = os.path.dirname(os.path.realpath(script))
        out = sys.stdout.buffer
        render_script(doc, literals, out, store_resolver(store_dir, here))
        out.flush()
    except (PlanError, OSError) as e:
        sys.stderr.write(f"{name}: error: {e}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
