"""Plans and stream scripts on their own: tar plans against tarfile, ranges of plain and gzip
files, checks, and a stream script run from a scratch store directory (no dtx-build, no
podman)."""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtx.runtime.image import stream
from dtx.runtime.image.layers import members_plan, tar_member, tar_plan
from dtx.runtime.image.stream import (Checked, FileRange, Gunzip, PlanError, encode_plan,
                                      plan_digest, plan_size, write_plan)


def _bytes(plan: list, resolve=None) -> bytes:
    out = io.BytesIO()
    write_plan(plan, out, resolve)
    return out.getvalue()


# -- tar plans against tarfile ----------------------------------------------------------------

_names = st.text(st.sampled_from("ab/é\udcff-._"), min_size=1, max_size=180).filter(
    lambda n: n.strip("/") and not n.startswith("/"))
_member = st.tuples(_names, st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE,
                                             tarfile.SYMTYPE, tarfile.CHRTYPE]),
                    st.integers(0, 3 * tarfile.RECORDSIZE // 2), _names,
                    st.integers(0, 0o7777), st.integers(0, 70000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_member, max_size=12))
def test_tar_plan_bytes_are_tarfiles(tmp_path_factory, members):
    src = tmp_path_factory.mktemp("src") / "content"
    src.write_bytes(os.urandom(3 * tarfile.RECORDSIZE // 2))
    expected = io.BytesIO()
    plans = []
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, size, target, mode, owner in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, owner, owner + 1
            info.mtime, info.uname, info.gname = 1, "", ""
            if kind == tarfile.SYMTYPE:
                info.linkname = target
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            if kind == tarfile.REGTYPE:
                info.size = size
                with open(src, "rb") as f:
                    tar.addfile(info, f)
                plans.append(tar_member(info, [FileRange(str(src), 0, size)] if size else []))
            else:
                tar.addfile(info)
                plans.append(tar_member(info))
    plan = tar_plan(plans)
    assert plan_size(plan) == len(expected.getvalue())
    assert _bytes(plan) == expected.getvalue()


def test_members_plan_copies_members_of_another_tar(tmp_path):
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in (("a", b"x" * 700), ("long/" * 30 + "b", b""), ("c", b"yz")):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.uname, info.mtime = len(data), 7, "seven", 99
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(layer, "r:") as tar:
        members = tar.getmembers()
    plan = members_plan(members, lambda m: [FileRange(str(layer), m.offset_data, m.size)])
    assert _bytes(plan) == layer.read_bytes()
    plan = members_plan([m for m in members if m.name != "a"],
                        lambda m: [FileRange(str(layer), m.offset_data, m.size)])
    with tarfile.open(fileobj=io.BytesIO(_bytes(plan))) as tar:
        assert [(m.name, m.uname, m.mtime) for m in tar] == [
            ("long/" * 30 + "b", "seven", 99), ("c", "seven", 99)]
        assert tar.extractfile("c").read() == b"yz"


def test_tar_member_refuses_content_of_the_wrong_size():
    info = tarfile.TarInfo("x")
    info.size = 3
    with pytest.raises(Exception, match="2 bytes of content for a size of 3"):
        tar_member(info, [b"ab"])


# -- segments ---------------------------------------------------------------------------------

def test_ranges_of_plain_and_gzip_files(tmp_path):
    data = os.urandom(300_000) + b"text " * 100_000
    plain = tmp_path / "plain"
    plain.write_bytes(b"head" + data)
    packed = tmp_path / "packed"
    packed.write_bytes(b"junk" + gzip.compress(data) + bytes(512) + b"next member")
    for start, length in ((0, 10), (1000, 400_000), (799_990, 10), (5, 0)):
        want = data[start:start + length]
        assert _bytes([FileRange(str(plain), 4 + start, length)]) == want
        assert _bytes([Gunzip(str(packed), 4, start, length)]) == want
    # Forward reads of one gzip stream, then one behind (which starts it again).
    plan = [Gunzip(str(packed), 4, 0, 100), b"|", Gunzip(str(packed), 4, 500_000, 7),
            Gunzip(str(packed), 4, 50, 5)]
    assert _bytes(plan) == data[:100] + b"|" + data[500_000:500_007] + data[50:55]
    whole = [b"ab", FileRange(str(plain), 4, 1000), Checked(plan_digest(plan), plan)]
    assert _bytes(whole) == b"ab" + data[:1000] + _bytes(plan)
    assert plan_size(whole) == 2 + 1000 + 113


def test_checks_and_short_files_fail(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"0123456789")
    good = [FileRange(str(f), 0, 10)]
    assert _bytes([Checked(plan_digest(good), good)]) == b"0123456789"
    with pytest.raises(PlanError, match="other bytes"):
        _bytes([Checked("sha256:" + "0" * 64, good)])
    with pytest.raises(PlanError, match="shorter than when the image was built"):
        _bytes([FileRange(str(f), 5, 6)])
    (tmp_path / "g").write_bytes(b"not gzip")
    with pytest.raises(PlanError, match="cannot decompress"):
        _bytes([Gunzip(str(tmp_path / "g"), 0, 0, 1)])


def test_the_streamer_runs_on_python_3_8():
    source = Path(stream.__file__).read_text()
    ast.parse(source, feature_version=(3, 8))
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert imports <= set(sys.stdlib_module_names)


# -- stream scripts ---------------------------------------------------------------------------

class Store:
    """A scratch store directory: `/nix/store/<name>` lives at `self.dir/<name>`."""

    def __init__(self, root: Path):
        self.dir = root / "store"
        self.dir.mkdir()

    def add(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"/nix/store/{name}"

    def real(self, logical: str) -> str:
        return str(self.dir / logical[len("/nix/store/"):])

    def logical(self, real: str) -> str | None:
        prefix = str(self.dir) + "/"
        return "/nix/store/" + real[len(prefix):] if real.startswith(prefix) else None


def _script(tmp_path: Path) -> tuple[Store, Path, bytes]:
    store = Store(tmp_path)
    big = os.urandom(200_000)
    a = store.real(store.add("aaa-one/bin/tool", big))
    b = store.real(store.add("bbb-base/image.tar.gz", b"pad" + gzip.compress(big)))
    outside = tmp_path / "work-file"
    outside.write_bytes(b"from the work directory")
    layer = [b"H" * 512, FileRange(a, 10, 150_000), FileRange(str(outside), 5, 4),
             Gunzip(b, 3, 100, 1000)]
    plan = [b"archive:", Checked(plan_digest(layer), layer), b"end"]
    doc, literals = encode_plan(plan, store.logical)
    doc.update(storeDir="/nix/store", images=["x:y"], storePaths=["/nix/store/aaa-one"])
    script = store.dir / "ccc-stream-x"
    stream.write_script(str(script), doc, literals, "x:y")
    return store, script, _bytes(plan)


def _run(script: Path, shell: str = "") -> subprocess.CompletedProcess:
    command = f"'{script}'{shell}"
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60,
                          env={"PATH": os.environ["PATH"]})


def test_stream_script_writes_the_plan_from_beside_itself(tmp_path):
    store, script, expected = _script(tmp_path)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env python3\n# dtx stream script: writes x:y")
    assert "/nix/store/aaa-one/bin/tool" in text and "/nix/store/bbb-base/image.tar.gz" in text
    assert "from the work directory" not in text  # literal bytes are compressed
    assert os.access(script, os.X_OK)
    run = _run(script)
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected
    # dtx reads it without running it.
    doc, literals = stream.read_script(str(script))
    out = io.BytesIO()
    stream.render_script(doc, literals, out, store.real)
    assert out.getvalue() == expected
    assert stream.is_script(str(script)) and not stream.is_script(__file__)
    # Through a symlink (a `result` link), the store is still where the script really is.
    link = tmp_path / "result"
    link.symlink_to(script)
    assert _run(link).stdout == expected


def test_stream_script_errors_are_one_line(tmp_path):
    store, script, _ = _script(tmp_path)
    tool = store.dir / "aaa-one" / "bin" / "tool"
    original = tool.read_bytes()

    tool.write_bytes(original[:-1])
    run = _run(script)
    assert run.returncode == 1 and run.stdout == b""
    assert run.stderr.decode() == (
        "ccc-stream-x: error: /nix/store/aaa-one/bin/tool has 199999 bytes, but had 200000 "
        "when the image was built: the store was changed\n")

    tool.unlink()
    run = _run(script)
    assert run.returncode == 1
    assert run.stderr.decode().startswith(
        "ccc-stream-x: error: /nix/store/aaa-one/bin/tool is missing from the store (looked "
        f"for at {tool})")
    assert len(run.stderr.splitlines()) == 1

    tool.write_bytes(original[:20] + bytes([original[20] ^ 1]) + original[21:])
    run = _run(script)
    assert run.returncode == 1
    assert b"a layer has other bytes than when the image was built" in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_stream_script_into_a_closed_pipe_is_quiet(tmp_path):
    _, script, expected = _script(tmp_path)
    run = _run(script, " | head -c 100")
    assert run.stdout == expected[:100]
    assert run.stderr == b""


def test_malformed_stream_scripts_are_refused(tmp_path):
    _, script, _ = _script(tmp_path)
    text = script.read_text()
    plan_line = next(line for line in text.splitlines() if line.startswith("PLAN = r'"))
    doc = json.loads(plan_line[len("PLAN = r'"):-1])
    for change, message in (
            (lambda d: d.update(format=99), "unknown plan format"),
            (lambda d: d["plan"].append(["x"]), "unknown segment"),
            (lambda d: d["plan"].append(["f", 99, 0, 1]), "bad file number"),
            (lambda d: d.update(files={"a": 1}), "bad file list"),
            (lambda d: d["plan"].append(["l", 0, 10**9]), "literal bytes out of range"),
            (lambda d: d.update(literalSize=1), "literal bytes of the wrong size")):
        bad = json.loads(json.dumps(doc))
        change(bad)
        broken = tmp_path / "broken"
        broken.write_text(text.replace(plan_line, "PLAN = r'" + json.dumps(bad) + "'"))
        with pytest.raises(PlanError, match=message):
            stream.decode_plan(*stream.read_script(str(broken)))
    resolve = stream.store_resolver("/nix/store", str(tmp_path))
    with pytest.raises(PlanError, match="not a path in the store"):
        resolve("/nix/store/aaa/../../etc/passwd")
    with pytest.raises(PlanError, match="not a path in the store"):
        resolve("/etc/passwd")
