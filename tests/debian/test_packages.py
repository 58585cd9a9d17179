"""Debian packages as store paths: builtin:unpack-deb on .debs made here with dpkg-deb (malicious
ones included), mirror:// resolution, and real builds of the package set against the host's
Debian archive whose programs then run in a sandbox holding nothing but their closure.

The real builds share one store (a module-scoped DTX_HOME) and happen in one `dtx-build -j 2`
call; they are skipped, with the reason, when the archive is not reachable.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from dtx.runtime.debian import mirror
from dtx.runtime.debian.unpack import DebError, ar_members, unpack_deb
from dtx.runtime.fetchurl import FetchError, expand_mirrors

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "stdlib" / "packages" / "debian-lock.json"
PACKAGES = ROOT / "stdlib" / "packages" / "debian.dtx"


def _dtx(command: str, *args: str, home: Path, cwd: Path, timeout: int = 1800):
    env = {k: v for k, v in os.environ.items() if k != "DTX_HOME"}
    env["DTX_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", f"dtx.runtime.cli.{command}", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# --- .debs made with dpkg-deb ------------------------------------------------------------------

def _make_deb(tmp: Path, compression: str = "xz") -> Path:
    """Build a small package with dpkg-deb: a script, a library, relative and absolute links."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (Debian package 'dpkg')")
    root = tmp / f"pkg-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: sample\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: dtx <dtx@localhost>\nDescription: a sample\n")
    (root / "DEBIAN" / "postinst").write_text("#!/bin/sh\nexit 1\n")
    (root / "DEBIAN" / "postinst").chmod(0o755)
    (root / "usr" / "bin").mkdir(parents=True)
    tool = root / "usr" / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    (root / "usr" / "bin" / "tool-link").symlink_to("tool")
    lib = root / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libsample.so.1.0").write_bytes(b"\x7fELF not really")
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "usr" / "lib" / "libsample.so").symlink_to("/lib/x86_64-linux-gnu/libsample.so.1.0")
    out = tmp / f"sample-{compression}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root),
                    str(out)], check=True, capture_output=True)
    return out


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    """Write an `ar` archive as dpkg-deb does."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = (f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n").encode()
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _with_data(deb: Path, dest: Path, entries: list[tarfile.TarInfo], files: dict | None = None):
    """Copy `deb` to `dest` with its data.tar replaced by one holding `entries`."""
    files = files or {}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info in entries:
            data = files.get(info.name)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    blob = deb.read_bytes()
    with open(deb, "rb") as f:
        members = [(n, blob[o:o + s]) for n, o, s in ar_members(f)]
    members = [(n, lzma.compress(raw.getvalue()) if n.startswith("data.tar") else d)
               for n, d in members]
    members = [("data.tar.xz" if n.startswith("data.tar") else n, d) for n, d in members]
    dest.write_bytes(_ar(members))
    return dest


def _entry(name: str, kind=tarfile.REGTYPE, linkname: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info


@pytest.mark.parametrize("compression", ["xz", "gzip", "none"])
def test_unpack_deb(tmp_path, compression):
    deb = _make_deb(tmp_path, compression)
    out = tmp_path / "out"
    unpack_deb(str(deb), str(out))
    assert (out / "usr" / "bin" / "tool").read_text() == "#!/bin/sh\necho tool\n"
    assert os.access(out / "usr" / "bin" / "tool", os.X_OK)
    assert os.readlink(out / "usr" / "bin" / "tool-link") == "tool"
    # absolute links are kept verbatim (not followed, not resolved against the host)
    assert os.readlink(out / "usr" / "lib" / "libsample.so") == \
        "/lib/x86_64-linux-gnu/libsample.so.1.0"
    control = (out / ".deb-control").read_text()
    assert "Package: sample\n" in control and "Version: 1.0-1\n" in control
    assert not (out / "DEBIAN").exists() and not (out / "postinst").exists()


def test_unpack_zstd_needs_zstandard(tmp_path):
    deb = _make_deb(tmp_path, "zstd")
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(DebError, match="zstandard"):
            unpack_deb(str(deb), str(tmp_path / "out"))
    else:
        unpack_deb(str(deb), str(tmp_path / "out"))
        assert (tmp_path / "out" / "usr" / "bin" / "tool").exists()


def test_unpack_not_a_deb(tmp_path):
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(DebError, match="not a Debian package"):
        unpack_deb(str(bad), str(tmp_path / "out"))


@pytest.mark.parametrize("name, entries", [
    ("dotdot", [_entry("./usr/"), _entry("./../escaped")]),
    ("deep-dotdot", [_entry("./usr/../../escaped")]),
    ("absolute", [_entry("/escaped")]),
    ("through-absolute-symlink",
     [_entry("./evil", tarfile.SYMTYPE, "@OUTSIDE@"), _entry("./evil/escaped")]),
    ("through-relative-symlink",
     [_entry("./a/", tarfile.DIRTYPE, mode=0o755), _entry("./a/up", tarfile.SYMTYPE, "../../outside"),
      _entry("./a/up/escaped")]),
    ("hardlink-outside", [_entry("./escaped", tarfile.LNKTYPE, "../outside/secret")]),
    ("hardlink-absolute", [_entry("./escaped", tarfile.LNKTYPE, "@OUTSIDE@/secret")]),
])
def test_malicious_deb_cannot_escape(tmp_path, name, entries):
    deb = _make_deb(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    fixed = []
    for e in entries:
        e.linkname = e.linkname.replace("@OUTSIDE@", str(outside))
        fixed.append(e)
    files = {e.name: b"pwned" for e in fixed if e.type == tarfile.REGTYPE}
    evil = _with_data(deb, tmp_path / f"{name}.deb", fixed, files)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DebError):
        unpack_deb(str(evil), str(work / "out"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "secret"
    assert not (tmp_path / "escaped").exists() and not (work / "escaped").exists()
    assert not Path("/escaped").exists()


def test_symlinks_are_data_and_special_files_skipped(tmp_path):
    deb = _make_deb(tmp_path)
    fifo = _entry("./fifo", tarfile.FIFOTYPE)
    dev = _entry("./null", tarfile.CHRTYPE)
    setuid = _entry("./usr/bin/su", mode=0o4755)
    evil = _with_data(deb, tmp_path / "odd.deb", [
        _entry("./usr/", tarfile.DIRTYPE, mode=0o755),
        _entry("./usr/bin/", tarfile.DIRTYPE, mode=0o755),
        _entry("./etc-link", tarfile.SYMTYPE, "/etc"), fifo, dev, setuid,
        _entry("./usr/bin/su2", tarfile.LNKTYPE, "./usr/bin/su")],
        {"./usr/bin/su": b"#!/bin/sh\n"})
    out = tmp_path / "out"
    unpack_deb(str(evil), str(out))
    assert os.readlink(out / "etc-link") == "/etc"
    assert not (out / "fifo").exists() and not (out / "null").exists()
    assert (out / "usr" / "bin" / "su").stat().st_mode & 0o7777 == 0o755
    assert (out / "usr" / "bin" / "su2").read_bytes() == b"#!/bin/sh\n"


def test_builtin_unpack_deb_through_dtx_build(tmp_path):
    """`builtin:unpack-deb` as dtx-build runs it: the .deb is a store path."""
    deb = _make_deb(tmp_path)
    expr = tmp_path / "unpack.dtx"
    expr.write_text(f"""derivation {{
      name = "sample-1.0-1-deb"; system = "builtin"; builder = "builtin:unpack-deb";
      src = {deb};
    }}""")
    r = _dtx("build", str(expr), "--no-out-link", home=tmp_path / "home", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "home" / r.stdout.strip().lstrip("/")
    assert (out / "usr" / "bin" / "tool").read_text().startswith("#!/bin/sh")
    assert os.readlink(out / "usr" / "lib" / "libsample.so").startswith("/lib/")
    assert "Package: sample" in (out / ".deb-control").read_text()


# --- mirror:// ---------------------------------------------------------------------------------

def test_mirror_from_environment():
    env = {"DTX_DEBIAN_MIRROR": "http://mirror.invalid/debian/"}
    assert mirror.base_urls("debian", env, "/nonexistent") == ["http://mirror.invalid/debian"]
    assert mirror.base_urls("debian-security", env, "/nonexistent") == [
        "http://mirror.invalid/debian-security", "http://mirror.invalid/debian"]
    env["DTX_DEBIAN_SECURITY_MIRROR"] = "http://sec.invalid/ds"
    assert mirror.expand("mirror://debian-security/pool/updates/x.deb", env, "/nonexistent") == [
        "http://sec.invalid/ds/pool/updates/x.deb"]


def test_mirror_from_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://a.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://b.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert mirror.expand("mirror://debian/pool/main/h/hello/h.deb", {}, str(tmp_path)) == [
        "http://a.invalid/debian/pool/main/h/hello/h.deb"]
    assert mirror.base_urls("debian-security", {}, str(tmp_path)) == [
        "http://b.invalid/debian-security"]
    with pytest.raises(mirror.MirrorError, match="DTX_DEBIAN_MIRROR"):
        mirror.base_urls("debian", {}, str(tmp_path / "empty"))


def test_fetchurl_uses_debian_mirror(monkeypatch):
    monkeypatch.setenv("DTX_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    assert expand_mirrors("mirror://debian/pool/x.deb", {}) == [
        "http://mirror.invalid/debian/pool/x.deb"]
    # an explicit table wins
    assert expand_mirrors("mirror://debian/pool/x.deb", {"debian": ["http://t.invalid"]}) == [
        "http://t.invalid/pool/x.deb"]
    with pytest.raises(FetchError):
        expand_mirrors("mirror://nope/x", {})


# --- the lock and the package set --------------------------------------------------------------

NIX_NAMES = ["bash", "coreutils", "busybox", "gnutar", "gzip", "findutils", "gnused", "gnugrep",
             "jq", "jshon", "shadow", "utillinux", "e2fsprogs", "curl", "cacert", "redis",
             "nginx", "hello", "python3", "patchelf"]


def test_lock_has_the_base_set():
    lock = json.loads(LOCK.read_text())
    names = {p["name"] for p in lock["packages"]}
    for wanted in ["bash", "coreutils", "busybox", "tar", "gzip", "findutils", "sed", "grep",
                   "jq", "jshon", "passwd", "util-linux", "e2fsprogs", "curl",
                   "ca-certificates", "redis-server", "hello", "python3", "patchelf",
                   "busybox-static", "bash-static", "libc-bin", "libc6"]:
        assert wanted in names
    assert "nginx" in names or "nginx-light" in names
    for p in lock["packages"]:
        assert set(p["depends"]) <= names, p["name"]


def test_package_set_instantiates_without_host_names(tmp_path):
    attrs = " ".join(NIX_NAMES)
    (tmp_path / "set.dtx").write_text(
        f"let p = import {PACKAGES} {{ }}; in {{ inherit (p) {attrs}; }}")
    r = _dtx("instantiate", str(tmp_path / "set.dtx"), home=tmp_path / "h", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == len(NIX_NAMES)
    drvs = list((tmp_path / "h" / "nix" / "store").glob("*.drv"))
    text = "".join(d.read_text() for d in drvs)
    assert "mirror://debian/pool/" in text and "mirror://debian-security/pool/" in text
    assert "http://" not in text and "https://" not in text


# --- real builds against the host's archive ----------------------------------------------------

def _archive_reachable() -> str | None:
    """Return why the host's Debian archive cannot be used, or None when it can."""
    import requests
    lock = json.loads(LOCK.read_text())
    hello = next(p for p in lock["packages"] if p["name"] == "hello")
    try:
        url = mirror.expand("mirror://debian/" + hello["filename"])[0]
    except mirror.MirrorError as e:
        return str(e)
    try:
        r = requests.head(url, timeout=5, allow_redirects=True)
    except requests.RequestException as e:
        return f"the Debian archive is not reachable ({url}): {e}"
    if r.status_code >= 400:
        return f"the Debian archive answered HTTP {r.status_code} for {url}"
    return None


RUNS = {
    # attribute: (program, arguments, expected in its output)
    "redis": ("bin/redis-server", ["--version"], "Redis server v=7"),
    "shadow": ("bin/useradd", ["--help"], "Usage: useradd"),
    "jq": ("bin/jq", ["--version"], "jq-1.6"),
    "python3": ("bin/python3", ["-c", "import json, ssl, sqlite3; print(1)"], "1"),
    "hello": ("bin/hello", [], "Hello, world!"),
    "bash": ("bin/bash", ["-c", "echo ok"], "ok"),
    "coreutils": ("bin/ls", ["--version"], "GNU coreutils"),
    "busybox": ("bin/busybox", ["echo", "ok"], "ok"),
    "gnutar": ("bin/tar", ["--version"], "GNU tar"),
    "gzip": ("bin/gzip", ["--version"], "gzip"),
    "findutils": ("bin/find", ["--version"], "GNU findutils"),
    "gnused": ("bin/sed", ["--version"], "GNU sed"),
    "gnugrep": ("bin/grep", ["--version"], "GNU grep"),
    "jshon": ("bin/jshon", ["--version"], "2013"),
    "utillinux": ("bin/lsblk", ["--version"], "util-linux"),
    "e2fsprogs": ("bin/mke2fs", ["-V"], "mke2fs 1.47"),
    "curl": ("bin/curl", ["--version"], "OpenSSL"),
    "nginx": ("bin/nginx", ["-v"], "nginx version"),
    "patchelf": ("bin/patchelf", ["--version"], "patchelf 0.14"),
}

EXTRA = ["cacert", "libc6"]


class Built:
    def __init__(self, home: Path, workdir: Path, paths: dict[str, str], seconds: float):
        self.home = home
        self.workdir = workdir
        self.paths = paths
        self.seconds = seconds

    def real(self, logical: str) -> Path:
        return self.home / logical.lstrip("/")

    def closure(self, path: str) -> list[str]:
        r = _dtx("store", "-q", "--requisites", path, home=self.home, cwd=self.workdir)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    def run(self, path: str, argv: list[str]) -> subprocess.CompletedProcess:
        """Run argv in bubblewrap with nothing but the closure of `path` at /nix/store."""
        mounts = []
        for p in self.closure(path):
            mounts += ["--ro-bind", str(self.real(p)), p]
        return subprocess.run(["bwrap", "--unshare-all", "--die-with-parent", "--clearenv",
                               "--tmpfs", "/", *mounts, "--dev", "/dev", "--proc", "/proc",
                               "--tmpfs", "/tmp", "--", *argv],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Build every package of RUNS (and a few runner derivations) in one dtx-build -j 2."""
    why = _archive_reachable()
    if why:
        pytest.skip(why)
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    work = tmp_path_factory.mktemp("debian-packages")
    home = work / "home"
    names = list(RUNS) + EXTRA
    (work / "set.dtx").write_text(f"""
      let
        p = import {PACKAGES} {{ }};
        run = name: pkg: command: derivation {{
          inherit name;
          system = "x86_64-linux";
          builder = "${{p.bash}}/bin/bash";
          args = [ "-c" command ];
        }};
      in p // {{
        libc6-unpacked = p.libc6.unpacked;
        bootstrap-busybox = p.bootstrap.busybox;
        bootstrap-bash = p.bootstrap.bash;
        run-bash = run "run-bash" p.bash "echo ok > $out";
        run-redis = run "run-redis" p.redis "${{p.redis}}/bin/redis-server --version > $out";
        run-hello = run "run-hello" p.hello "${{p.hello}}/bin/hello > $out";
      }}
    """)
    attrs = names + ["libc6-unpacked", "bootstrap-busybox", "bootstrap-bash", "run-bash", "run-redis", "run-hello"]
    args = [str(work / "set.dtx"), "-j", "2", "--no-out-link", "-Q"]
    for a in attrs:
        args += ["-A", a]
    start = time.monotonic()
    r = _dtx("build", *args, home=home, cwd=work)
    seconds = time.monotonic() - start
    assert r.returncode == 0, r.stderr[-5000:]
    paths = dict(zip(attrs, r.stdout.split()))
    assert len(paths) == len(attrs), r.stdout
    print(f"\nbuilt {len(attrs)} attributes in {seconds:.0f} s")
    return Built(home, work, paths, seconds)


@pytest.mark.parametrize("attr", list(RUNS))
def test_program_runs_with_only_its_closure(built, attr):
    program, args, expected = RUNS[attr]
    path = built.paths[attr]
    r = built.run(path, [f"{path}/{program}", *args])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert expected in r.stdout + r.stderr


@pytest.mark.parametrize("attr, expected", [("run-bash", "ok\n"), ("run-hello", "Hello, world!\n")])
def test_runner_derivations_in_dtx_sandbox(built, attr, expected):
    assert built.real(built.paths[attr]).read_text() == expected


def test_redis_in_dtx_sandbox(built):
    assert built.real(built.paths["run-redis"]).read_text().startswith("Redis server v=7")


def test_redis_closure_lists_its_libraries(built):
    closure = built.closure(built.paths["redis"])
    names = {os.path.basename(p).split("-", 1)[1] for p in closure}
    for lib in ("libc6-", "libssl3-", "libjemalloc2-", "liblzf1-", "libsystemd0-", "redis-tools-"):
        assert any(n.startswith(lib) for n in names), (lib, sorted(names))
    assert all(p.startswith("/nix/store/") for p in closure)
    assert built.paths["libc6"] in closure


def test_redis_server_links_into_redis_tools(built):
    redis = built.real(built.paths["redis"])
    target = os.readlink(redis / "bin" / "redis-server")
    assert target.startswith("/nix/store/") and "-redis-tools-" in target
    assert target.endswith("/bin/redis-check-rdb")
    deps = (redis / "nix-support" / "propagated-deps").read_text().split()
    assert any("-redis-tools-" in d for d in deps)


def test_interpreter_and_runpath_point_into_the_store(built):
    patchelf = built.paths["patchelf"]
    tools = built.real(built.paths["redis"]) / "bin" / "redis-server"
    tools_store = os.readlink(tools)
    # patchelf's closure does not hold redis: run it over the union of both closures
    mounts = []
    for p in set(built.closure(patchelf)) | set(built.closure(built.paths["redis"])):
        mounts += ["--ro-bind", str(built.real(p)), p]
    base = ["bwrap", "--unshare-all", "--tmpfs", "/", *mounts, "--dev", "/dev", "--proc", "/proc",
            "--", f"{patchelf}/bin/patchelf"]
    interp = subprocess.run(base + ["--print-interpreter", tools_store], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert interp == f"{built.paths['libc6']}/lib/ld-linux-x86-64.so.2"
    rpath = subprocess.run(base + ["--print-rpath", tools_store], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert rpath and all(e.startswith("/nix/store/") and e.endswith("/lib")
                         for e in rpath.split(":"))
    assert f"{built.paths['libc6']}/lib" in rpath.split(":")


def test_dynamic_loader_is_untouched(built):
    ours = built.real(built.paths["libc6"]) / "lib" / "ld-linux-x86-64.so.2"
    debian = (built.real(built.paths["libc6-unpacked"]) / "lib" / "x86_64-linux-gnu" /
              "ld-linux-x86-64.so.2")
    assert hashlib.sha256(ours.read_bytes()).digest() == \
        hashlib.sha256(debian.read_bytes()).digest()
    lib64 = built.real(built.paths["libc6"]) / "lib64" / "ld-linux-x86-64.so.2"
    assert os.readlink(lib64) == f"{built.paths['libc6']}/lib/ld-linux-x86-64.so.2"


def test_multiarch_paths_still_resolve(built):
    libc6 = built.real(built.paths["libc6"])
    assert os.readlink(libc6 / "lib" / "x86_64-linux-gnu") == "."
    assert (libc6 / "lib" / "libc.so.6").is_file()


def test_cacert_bundle(built):
    bundle = built.real(built.paths["cacert"]) / "etc" / "ssl" / "certs" / "ca-bundle.crt"
    assert bundle.read_text().count("BEGIN CERTIFICATE") > 100


@pytest.mark.parametrize("attr, argv", [
    ("bootstrap-busybox", ["bin/busybox", "sh", "-c", "echo ok"]),
    ("bootstrap-bash", ["bin/bash", "-c", "echo ok"]),
    ("bootstrap-bash", ["bin/sh", "-c", "echo ok"]),
])
def test_bootstrap_tools_run_alone(built, attr, argv):
    path = built.paths[attr]
    assert built.closure(path) == [path]
    r = built.run(path, [f"{path}/{argv[0]}", *argv[1:]])
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr


def test_package_builds_are_deterministic(built):
    r = _dtx("build", str(built.workdir / "set.dtx"), "--check", "--no-out-link", "-Q",
             "-A", "hello", "-A", "libc6", home=built.home, cwd=built.workdir)
    assert r.returncode == 0, r.stderr[-3000:]
