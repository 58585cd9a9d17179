"""The guest's boot files: the ELF kernel out of a Debian bzImage, and the initrd.

The initrd is a newc cpio archive written here in Python (no host `cpio`, no `depmod`):
- `/bin/busybox` (Debian's busybox-static) with applet links for what the init script uses;
- `/init`, the guest init (vm/guest_init.sh);
- the kernel modules the guest needs (`MODULES`) with everything they depend on, uncompressed,
  under `/lib/modules/`, and `/lib/modules/load-order` listing them dependencies first.

Debian's kernel packages ship no `modules.dep`, so dependencies are read from each module's
`.modinfo` section (`depends=` is what depmod itself records); `modules.builtin` says which
modules need no file at all. Modules may be plain `.ko` (cloud kernels) or `.ko.xz`/`.ko.zst`
(the generic kernel); xz is decompressed here, so the guest's busybox never has to.

Invariant: the archive is a pure function of its inputs (sorted entries, mtime 0, owner 0), so
the same kernel and busybox give the same bytes.
"""

from __future__ import annotations

import glob
import lzma
import os
import struct
from dataclasses import dataclass, field

# The modules the guest init loads: virtio disks and ext4 (built into cloud kernels), and what
# image-building steps mount (overlayfs, loop devices).
MODULES = ("virtio_pci", "virtio_blk", "ext4", "overlay", "loop")

# Busybox applets the guest init and the console protocol use.
APPLETS = ("sh", "mount", "umount", "mkdir", "insmod", "cat", "echo", "stty", "sync", "reboot",
           "poweroff", "ln", "env", "sleep", "ls", "find", "stat", "chmod", "mknod", "rm")


class InitrdError(Exception):
    """The kernel package lacks something the guest needs."""


def _norm(name: str) -> str:
    return name.replace("-", "_")


# -- kernel -------------------------------------------------------------------------------------

@dataclass
class Kernel:
    """A kernel package tree: its bzImage, release and modules directory."""
    bzimage: str
    release: str
    modules_dir: str

    @classmethod
    def find(cls, root: str) -> Kernel:
        """Locate the kernel in an unpacked `linux-image-*` package at `root`."""
        images = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-*")))
        if not images:
            raise InitrdError(f"no boot/vmlinuz-* in kernel package '{root}'")
        bzimage = images[-1]
        release = os.path.basename(bzimage)[len("vmlinuz-"):]
        for base in ("lib/modules", "usr/lib/modules"):
            mods = os.path.join(root, base, release)
            if os.path.isdir(mods):
                return cls(bzimage, release, mods)
        raise InitrdError(f"no modules directory for kernel {release} in '{root}'")


def extract_vmlinux(bzimage: str) -> bytes | None:
    """Return the ELF kernel inside an xz-compressed bzImage (QEMU boots it by PVH), or None
    when there is no such payload."""
    with open(bzimage, "rb") as f:
        data = f.read()
    start = 0
    while True:
        at = data.find(b"\xfd7zXZ\x00", start)
        if at < 0:
            return None
        try:
            elf = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[at:])
        except lzma.LZMAError:
            start = at + 1
            continue
        if elf[:4] == b"\x7fELF":
            return elf
        start = at + 1


# -- modules ------------------------------------------------------------------------------------

def _read_module(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".zst"):
        raise InitrdError(f"zstd-compressed module '{path}' is not supported")
    return data


def modinfo(elf: bytes) -> dict[str, str]:
    """Return the `.modinfo` fields of a kernel module (the last value of repeated keys)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise InitrdError("not a 64-bit ELF module")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    fields: dict[str, str] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = elf.index(b"\0", stroff + name)
        if elf[stroff + name:end] != b".modinfo":
            continue
        for item in elf[off:off + size].split(b"\0"):
            if b"=" in item:
                k, v = item.split(b"=", 1)
                fields[k.decode()] = v.decode("utf-8", "replace")
    return fields


@dataclass
class ModuleSet:
    """The modules of one kernel release, indexed by normalised name."""
    files: dict[str, str] = field(default_factory=dict)  # name -> path
    builtin: set[str] = field(default_factory=set)

    @classmethod
    def scan(cls, modules_dir: str) -> ModuleSet:
        """Index the module files and built-in modules under `modules_dir`."""
        ms = cls()
        for dirpath, _, names in os.walk(modules_dir):
            for n in names:
                for suffix in (".ko", ".ko.xz", ".ko.zst"):
                    if n.endswith(suffix):
                        ms.files[_norm(n[:-len(suffix)])] = os.path.join(dirpath, n)
        builtin = os.path.join(modules_dir, "modules.builtin")
        if os.path.exists(builtin):
            with open(builtin) as f:
                for line in f:
                    base = os.path.basename(line.strip())
                    if base.endswith(".ko"):
                        ms.builtin.add(_norm(base[:-3]))
        return ms

    def resolve(self, wanted: tuple[str, ...] | list[str]) -> list[tuple[str, bytes]]:
        """Return (name, module bytes) for `wanted` and their dependencies, dependencies
        first; built-in modules are skipped, missing ones are an error."""
        order: list[tuple[str, bytes]] = []
        seen: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            name = _norm(name)
            if name in seen or name in self.builtin:
                return
            if name in chain:
                raise InitrdError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
            path = self.files.get(name)
            if path is None:
                raise InitrdError(f"kernel module '{name}' is neither built in nor shipped")
            data = _read_module(path)
            for dep in filter(None, modinfo(data).get("depends", "").split(",")):
                visit(dep, chain + (name,))
            seen.add(name)
            order.append((name, data))

        for w in wanted:
            visit(w, ())
        return order


# -- cpio ---------------------------------------------------------------------------------------

class Cpio:
    """A newc ("070701") cpio archive built in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1,
               rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.parts.append(head + encoded + b"\0" * (-(len(head) + len(encoded)) % 4))
        self.parts.append(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, 0o040000 | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        """Return the archive with its trailer."""
        self._entry("TRAILER!!!", 0)
        return b"".join(self.parts)


def guest_init_script() -> bytes:
    with open(os.path.join(os.path.dirname(__file__), "guest_init.sh"), "rb") as f:
        return f.read()


def build_initrd(busybox: str, kernel: Kernel, modules: tuple[str, ...] = MODULES) -> bytes:
    """Return the initrd for `kernel`: busybox at `busybox` (a static binary), the guest init
    and the modules `modules` need."""
    with open(busybox, "rb") as f:
        bb = f.read()
    loaded = ModuleSet.scan(kernel.modules_dir).resolve(modules)
    a = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "nix", "lib", "lib/modules", "tmp", "build"):
        a.directory(d)
    a.char_device("dev/console", 5, 1)
    a.char_device("dev/null", 1, 3, 0o666)
    a.file("bin/busybox", bb, 0o755)
    for applet in APPLETS:
        a.symlink(f"bin/{applet}", "busybox")
    a.file("init", guest_init_script(), 0o755)
    for name, data in loaded:
        a.file(f"lib/modules/{name}.ko", data)
    a.file("lib/modules/load-order", "".join(f"{n}\n" for n, _ in loaded).encode())
    return a.finish()
