"""The VM layer's pure parts, without booting anything: QEMU argv, the accelerator verdict,
the cpio writer, module resolution from `.modinfo`, the step script, and the ext4 disks made
and read back (the latter need e2fsprogs; special files and owners need root)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess

import pytest
from dtx.runtime.vmbuild import step_script
from dtx.vm import disk, initrd, qemu


def spec(**kw) -> qemu.VMSpec:
    base = {"kernel": "/k/vmlinuz", "initrd": "/k/initrd", "disk": "/t/disk.img"}
    base.update(kw)
    return qemu.VMSpec(**base)


# -- QEMU command line --------------------------------------------------------------------------

def test_argv_serial_console_and_disks():
    argv = qemu.qemu_argv(spec())
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-machine") + 1] == "q35,accel=tcg"
    assert argv[argv.index("-chardev") + 1] == "stdio,id=s0,signal=off"
    assert argv[argv.index("-serial") + 1] == "chardev:s0"
    assert "-nographic" not in argv and "-no-reboot" in argv
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert len(drives) == 1 and drives[0].startswith("file=/t/disk.img,format=raw,if=virtio")
    append = argv[argv.index("-append") + 1].split()
    assert "console=ttyS0" in append and "dtx.disk=vda" in append


def test_argv_extra_disk_comes_first_and_knobs():
    argv = qemu.qemu_argv(spec(extra_disks=["/o/disk-image.img"], accel="kvm", memory_mb=1024,
                               qemu_opts=["-smp", "2"]))
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[0].startswith("file=/o/disk-image.img,")
    assert drives[1].startswith("file=/t/disk.img,")
    append = argv[argv.index("-append") + 1].split()
    assert "dtx.disk=vdb" in append
    assert argv[argv.index("-machine") + 1] == "q35,accel=kvm" and "host" in argv
    assert argv[argv.index("-m") + 1] == "1024"
    assert argv[-2:] == ["-smp", "2"]


def test_argv_rejects_unknown_accel():
    with pytest.raises(qemu.VMError, match="unknown accelerator"):
        qemu.qemu_argv(spec(accel="hvf"))


def test_accel_forced_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DTX_VM_ACCEL", "kvm")
    assert qemu.accel_verdict(str(tmp_path / "a.json"), lambda: False) == "kvm"
    monkeypatch.setenv("DTX_VM_ACCEL", "xen")
    with pytest.raises(qemu.VMError):
        qemu.accel_verdict(str(tmp_path / "a.json"), lambda: True)


def test_accel_probe_runs_once_and_is_cached(monkeypatch, tmp_path):
    monkeypatch.delenv("DTX_VM_ACCEL", raising=False)
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    calls, shown = [], []
    cache = str(tmp_path / "vm" / "accel.json")

    def probe():
        calls.append(1)
        return False

    assert qemu.accel_verdict(cache, probe, shown.append) == "tcg"
    assert qemu.accel_verdict(cache, probe, shown.append) == "tcg"
    assert len(calls) == 1
    assert len(shown) == 1 and "TCG" in shown[0]
    with open(cache) as f:
        assert json.load(f) == {qemu.host_key(): "tcg"}


def test_accel_without_kvm_device_is_tcg(monkeypatch, tmp_path):
    monkeypatch.delenv("DTX_VM_ACCEL", raising=False)
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    assert qemu.accel_verdict(str(tmp_path / "a.json"), lambda: 1 / 0, lambda m: None) == "tcg"


# -- initrd -------------------------------------------------------------------------------------

def read_cpio(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    entries, at = {}, 0
    while True:
        assert data[at:at + 6] == b"070701"
        f = [int(data[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_at = at + 110
        name = data[name_at:name_at + namesize - 1].decode()
        body_at = name_at + namesize + (-(110 + namesize) % 4)
        body = data[body_at:body_at + filesize]
        at = body_at + filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (f[1], body, (f[9], f[10]))


def test_cpio_newc_entries():
    a = initrd.Cpio()
    a.directory("bin")
    a.file("bin/x", b"hello", 0o755)
    a.symlink("bin/y", "x")
    a.char_device("dev/console", 5, 1)
    data = a.finish()
    assert len(data) % 4 == 0
    got = read_cpio(data)
    assert stat.S_ISDIR(got["bin"][0])
    assert got["bin/x"][1] == b"hello" and stat.S_IMODE(got["bin/x"][0]) == 0o755
    assert stat.S_ISLNK(got["bin/y"][0]) and got["bin/y"][1] == b"x"
    assert stat.S_ISCHR(got["dev/console"][0]) and got["dev/console"][2] == (5, 1)


def fake_module(fields: dict[str, str]) -> bytes:
    """A minimal ELF64 object with a .modinfo section."""
    modinfo = b"".join(f"{k}={v}".encode() + b"\0" for k, v in fields.items())
    shstr = b"\0.modinfo\0.shstrtab\0"
    body_at = 64
    shstr_at = body_at + len(modinfo)
    shoff = shstr_at + len(shstr)
    head = bytearray(64)
    head[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", head, 0x28, shoff)
    struct.pack_into("<HHH", head, 0x3A, 64, 3, 2)
    sections = bytes(64)
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, body_at, len(modinfo), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, shstr_at, len(shstr), 0, 0, 1, 0)
    return bytes(head) + modinfo + shstr + sections


def test_modules_resolved_dependencies_first(tmp_path):
    import lzma
    mods = tmp_path / "lib" / "modules" / "6.1.0-test" / "kernel"
    mods.mkdir(parents=True)
    (mods / "virtio_blk.ko").write_bytes(fake_module({"name": "virtio_blk",
                                                      "depends": "virtio,virtio_ring"}))
    (mods / "virtio.ko.xz").write_bytes(lzma.compress(fake_module({"depends": "virtio_ring"}),
                                                      format=lzma.FORMAT_XZ))
    (mods / "virtio_ring.ko").write_bytes(fake_module({"depends": ""}))
    (mods.parent / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
    ms = initrd.ModuleSet.scan(str(mods.parent))
    order = [n for n, _ in ms.resolve(["virtio_blk", "ext4"])]
    assert order == ["virtio_ring", "virtio", "virtio_blk"]
    with pytest.raises(initrd.InitrdError, match="neither built in nor shipped"):
        ms.resolve(["overlay"])


# -- the step script ----------------------------------------------------------------------------

def test_step_script_runs_builder_with_exact_environment(tmp_path):
    env = {"out": "/nix/store/x-y", "weird": "a 'b'\nc $d", "PATH": "/path-not-set"}
    script = step_script(["/usr/bin/env"], env).decode()
    assert script.startswith("cd /build")
    got = subprocess.run([shutil.which("sh"), "-c",
                          script.replace("cd /build || exit 1", f"cd {tmp_path}")],
                         capture_output=True, text=True, check=False)
    assert got.stdout.count("=") == 3
    assert "weird=a 'b'\nc $d\n" in got.stdout and "out=/nix/store/x-y\n" in got.stdout
    assert "it\\'s" not in step_script(["/bin/echo", "it's"], {}).decode()


# -- disks --------------------------------------------------------------------------------------

needs_e2fs = pytest.mark.skipif(
    not (shutil.which("mke2fs") or os.path.exists("/sbin/mke2fs")), reason="needs e2fsprogs")


@needs_e2fs
def test_disk_round_trip_keeps_owners_symlinks_and_special_files(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("owners and device nodes need root")
    src = tmp_path / "src" / "store" / "abc-out"
    (src / "sub").mkdir(parents=True)
    (src / "owned").write_text("data")
    os.chown(src / "owned", 999, 999)
    (src / "link").symlink_to("owned")
    os.mknod(src / "sub" / "wh", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    img = str(tmp_path / "out.img")
    disk.make_image(img, str(tmp_path / "src"), 32 << 20)
    # What the guest's special_files_command prints for this tree.
    specials = disk.parse_special_files(["2180 0 0 999 999 /nix/.disk/store/abc-out/sub/wh"])
    dest = tmp_path / "back"
    assert disk.read_back(img, "/store/abc-out", str(dest), specials, "/nix/.disk/store/abc-out")
    assert (dest / "owned").read_text() == "data"
    st = os.lstat(dest / "owned")
    assert (st.st_uid, st.st_gid) == (999, 999)
    assert os.readlink(dest / "link") == "owned"
    st = os.lstat(dest / "sub" / "wh")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0) and st.st_uid == 999
    assert not disk.read_back(img, "/store/missing", str(tmp_path / "none"))


@needs_e2fs
def test_build_disk_holds_closure_build_dir_and_room(tmp_path):
    store = tmp_path / "store" / "h-pkg"
    (store / "bin").mkdir(parents=True)
    (store / "bin" / "tool").write_text("#!/bin/sh\n")
    (store / "bin" / "tool").chmod(0o555)
    build = tmp_path / "build"
    build.mkdir()
    (build / ".attr-x").write_text("value")
    img = str(tmp_path / "disk.img")
    size = disk.make_build_disk(img, str(tmp_path / "stage"), [(str(store), "h-pkg")],
                                {"step.sh": b"echo hi\n"}, str(build), 64 << 20, ["h-out"])
    assert size >= 64 << 20 and os.path.getsize(img) == size
    assert os.stat(img).st_blocks * 512 < size  # sparse
    back = tmp_path / "back"
    assert disk.read_back(img, "/store/h-pkg", str(back))
    assert (back / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert os.stat(back / "bin" / "tool").st_mode & 0o111
    assert disk.read_back(img, "/dtx/step.sh", str(tmp_path / "step"))
    assert (tmp_path / "step").read_bytes() == b"echo hi\n"
    assert disk.read_back(img, "/build/.attr-x", str(tmp_path / "attr"))
    assert disk.read_back(img, "/store/h-out", str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []
    disk.remove(str(tmp_path / "stage"))
    assert not (tmp_path / "stage").exists()
