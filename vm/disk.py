"""The guest's disk: an ext4 image made with `mke2fs -d`, read back with `debugfs rdump`.

One disk per build, written without privileges:
- `store/` holds the input closure, one directory entry per store path, staged with hard links
  into the store where the file system allows it (no data copied while staging; copies
  otherwise), plus an empty directory for each output that already exists on the host (a
  `preVM` hook may create one); the guest binds it at /nix/store and writes its outputs there;
- `build/` is a copy of the build directory the host prepared (`passAsFile` files, …);
- `dtx/` holds the step scripts;
- and the image has `free` bytes more than that (it is sparse: unused space costs nothing).
Inputs and outputs share the disk because the alternatives cost too much in the guest: an
overlayfs /nix/store refuses `mknod c 0 0` (whiteouts, which image builders make), and one bind
mount per input path costs about 40 ms under TCG. The guest may scribble on its copy of the
inputs; the host store never sees it, since only outputs are read back.

`read_back` copies `store/<name>` out with `debugfs rdump`, which keeps modes, owners (when the
host user may chown; as an ordinary user files end up owned by that user, and setuid bits are
dropped), symlinks and directories but skips device nodes, FIFOs and sockets: those come from a
manifest the guest writes (`special_files_command`) and are recreated with `os.mknod` (device
nodes need root on the host; the 0/0 character device, overlayfs' whiteout, also works in an
unprivileged user namespace).

e2fsprogs (mke2fs, debugfs) comes from the host (Debian package e2fsprogs).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass

BLOCK = 4096


class DiskError(Exception):
    """An image could not be made or read."""


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if found is None:
        raise DiskError(f"'{name}' is not installed (Debian package e2fsprogs)")
    return found


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", check=False)
    if proc.returncode != 0:
        raise DiskError(f"{os.path.basename(argv[0])} failed with exit code {proc.returncode}: "
                        f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stderr


# -- staging ------------------------------------------------------------------------------------

def link_tree(src: str, dest: str) -> int:
    """Reproduce the tree `src` at `dest` with hard links (copies where linking fails);
    return its size in bytes, rounded up to blocks, plus one block per entry."""
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        raise DiskError(f"'{src}' does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
        return BLOCK
    if stat.S_ISREG(st.st_mode):
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
        return -(-st.st_size // BLOCK) * BLOCK + BLOCK
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dest)
        total = BLOCK
        with os.scandir(src) as it:
            for entry in it:
                total += link_tree(entry.path, os.path.join(dest, entry.name))
        os.chmod(dest, stat.S_IMODE(st.st_mode))
        return total
    raise DiskError(f"'{src}' has an unsupported file type")


def image_size(payload: int, minimum: int = 16 << 20) -> int:
    """Return an image size comfortably holding `payload` bytes of staged files."""
    size = max(minimum, int(payload * 1.25) + (8 << 20))
    return -(-size // (1 << 20)) * (1 << 20)


def make_image(path: str, root: str | None, size: int, journal: bool = False) -> None:
    """Write an ext4 image of `size` bytes at `path`, filled with the tree `root`."""
    with open(path, "wb") as f:
        f.truncate(size)
    argv = [_tool("mke2fs"), "-q", "-F", "-t", "ext4", "-b", str(BLOCK), "-m", "0",
            "-E", "lazy_itable_init=1,root_owner=0:0", "-O", "^has_journal" if not journal
            else "has_journal", "-L", "dtx"]
    if root is not None:
        # More inodes than mke2fs's default ratio would give for many small files.
        inodes = sum(len(d) + len(f) for _, d, f in os.walk(root)) + 1024
        argv += ["-N", str(max(inodes * 2, 4096)), "-d", root]
    argv += [path, str(size // 1024) + "k"]
    _run(argv)


def make_build_disk(path: str, staging: str, store_paths: list[tuple[str, str]],
                    control: dict[str, bytes], build_dir: str | None, free: int,
                    existing_outputs: list[str] = ()) -> int:
    """Write the build's disk at `path` and return its size: `store_paths` are (real path,
    name) pairs placed under store/, `control` maps names under dtx/ to contents, build/ is a
    copy of `build_dir`, `existing_outputs` become empty directories under store/, and `free`
    bytes are left for the outputs."""
    for d in ("store", "dtx"):
        os.makedirs(os.path.join(staging, d))
    payload = 0
    for real, name in store_paths:
        payload += link_tree(real, os.path.join(staging, "store", name))
    for name in existing_outputs:
        os.makedirs(os.path.join(staging, "store", name))
    for name, data in control.items():
        with open(os.path.join(staging, "dtx", name), "wb") as f:
            f.write(data)
        payload += len(data) + BLOCK
    if build_dir is not None:
        shutil.copytree(build_dir, os.path.join(staging, "build"), symlinks=True)
        payload += sum(os.lstat(os.path.join(dp, n)).st_size + BLOCK
                       for dp, _, names in os.walk(build_dir) for n in names)
    else:
        os.makedirs(os.path.join(staging, "build"))
    size = image_size(payload) + -(-free // (1 << 20)) * (1 << 20)
    make_image(path, staging, size)
    return size


def remove(path: str) -> None:
    """Delete a staging or image directory (staged store directories are read-only)."""
    if not os.path.lexists(path):
        return
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    os.chmod(path, 0o755)
    shutil.rmtree(path)


# -- reading back -------------------------------------------------------------------------------

def special_files_command(dirs: list[str]) -> str:
    """Return the guest command listing device nodes, FIFOs and sockets under `dirs`, one
    `rawmode-hex major-hex minor-hex uid gid path` line each."""
    quoted = " ".join(f"'{d}'" for d in dirs)
    return (f"for d in {quoted}; do [ -e \"$d\" ] && find \"$d\" \\( -type c -o -type b "
            f"-o -type p -o -type s \\) -exec stat -c '%f %t %T %u %g %n' {{}} +; done; true")


@dataclass
class SpecialFile:
    path: str
    mode: int
    major: int
    minor: int
    uid: int
    gid: int


def parse_special_files(lines: list[str]) -> list[SpecialFile]:
    """Parse what `special_files_command` printed."""
    found = []
    for line in lines:
        parts = line.split(" ", 5)
        if len(parts) != 6:
            continue
        try:
            found.append(SpecialFile(parts[5], int(parts[0], 16), int(parts[1], 16),
                                     int(parts[2], 16), int(parts[3]), int(parts[4])))
        except ValueError:
            continue
    return found


def read_back(image: str, inside: str, dest: str, specials: list[SpecialFile] = (),
              guest_prefix: str = "") -> bool:
    """Copy the tree at `inside` in `image` to `dest` (which must not exist); recreate the
    `specials` whose guest path starts with `guest_prefix` + '/'. Return False when the image
    has no such tree."""
    debugfs = _tool("debugfs")
    check = subprocess.run([debugfs, "-R", f"stat {inside}", image], capture_output=True,
                           text=True, errors="replace", check=False)
    if "File not found" in check.stderr or "Inode:" not in check.stdout:
        return False
    parent = os.path.dirname(dest)
    tmp = os.path.join(parent, ".rdump-" + os.path.basename(dest))
    os.makedirs(tmp)
    try:
        _run([debugfs, "-R", f"rdump {inside} {tmp}", image])
        got = os.path.join(tmp, os.path.basename(inside))
        if not os.path.lexists(got):
            raise DiskError(f"debugfs did not dump '{inside}'")
        os.rename(got, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for sf in specials:
        if not sf.path.startswith(guest_prefix + "/"):
            continue
        target = os.path.join(dest, sf.path[len(guest_prefix) + 1:])
        make_special(target, sf)
    return True


def make_special(target: str, sf: SpecialFile) -> None:
    """Create the device node, FIFO or socket placeholder `sf` at `target`, owner included
    when the host user may set it."""
    kind = stat.S_IFMT(sf.mode)
    try:
        os.mknod(target, kind | stat.S_IMODE(sf.mode), os.makedev(sf.major, sf.minor))
    except PermissionError:
        raise DiskError(f"cannot recreate the {'device node' if kind in (stat.S_IFCHR, stat.S_IFBLK) else 'special file'} "
                        f"'{sf.path}' on the host without root") from None
    try:
        os.chown(target, sf.uid, sf.gid, follow_symlinks=False)
    except PermissionError:
        pass
