"""The `builtin:run-in-vm` builder: a derivation's builder run as root inside a QEMU guest.

`vmTools.runInLinuxVM drv` (stdlib/build-support/vm) turns `drv` into a derivation with
`builder = "builtin:run-in-vm"` and `args = [ origBuilder ] ++ origArgs`, plus these attributes:

  vmKernel     an unpacked Debian `linux-image-*` package (boot/vmlinuz-*, lib/modules/)
  vmBusybox    a static busybox binary (the initrd's only program)
  memSize      guest memory in MiB (default 512)
  diskSize     size of the output disk in MiB (default 2048; the image is sparse)
  QEMU_OPTS    extra QEMU arguments (split like a shell would)
  preVM        shell code run on the host before the VM, in the build sandbox with busybox's
               applets on PATH; it may set `diskImage` to a raw image (under $out or /build)
               that the guest sees as /dev/vda (`vmTools.hd`)
  postVM       shell code run the same way after the VM (the outputs are back by then)
  vmTimeout    seconds for boot plus step before QEMU is killed (default 3600)
  vmModules    more kernel modules for the initrd to load (names, space-separated)

What happens (DESIGN.md, "VM steps"): preVM runs; the input closure (without the kernel), the
build directory and the step script go onto an ext4 disk with `diskSize` MiB to spare
(vm/disk.py); QEMU boots the kernel with an initrd made here (vm/initrd.py, cached per kernel and
busybox under the state directory's vm/); the guest binds the disk's store/ at /nix/store and
runs the builder as root in /build with the derivation's environment, its output streamed into
the build log (vm/console.py); then each output is read back from the disk into the build's
scratch store, with owners, modes and symlinks as vm/disk.py describes, and the usual
registration follows in runtime/build.py. A non-zero guest status fails the build with that
status.

The store keeps what a NAR can hold: an output holding a device node, FIFO or socket fails with
a message saying so (Nix refuses those too); archive such trees inside the guest instead.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable

from ..vm import console, disk, initrd, qemu
from .eval import on_interrupt
from .sandbox import BUILD_DIR, SandboxSpec, bwrap_argv, probe

GUEST_STEP = "/nix/.disk/dtx/step.sh"
GUEST_STORE = "/nix/.disk/store"

on_interrupt(console.kill_all)


def _error(message: str):
    from .build import BuildError
    return BuildError(message)


def _number(env: dict, key: str, default: float) -> float:
    value = env.get(key, "")
    if value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise _error(f"'{key}' must be a number, not '{value}'") from None


# -- boot files ---------------------------------------------------------------------------------

def _cached(cache_dir: str, key: str, suffix: str, make: Callable[[], bytes | None]) -> str | None:
    """Return a file in `cache_dir` named after `key`, made by `make` the first time."""
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + suffix
    path = os.path.join(cache_dir, name)
    if os.path.exists(path):
        return path
    if os.path.exists(path + ".none"):
        return None
    os.makedirs(cache_dir, exist_ok=True)
    data = make()
    if data is None:
        open(path + ".none", "w").close()
        return None
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def boot_files(cache_dir: str, kernel_pkg: str, busybox: str,
               extra_modules: tuple[str, ...] = ()) -> tuple[str, str]:
    """Return (kernel image, initrd) for a kernel package and busybox, cached in `cache_dir`.
    The kernel is the ELF vmlinux when the bzImage's payload is xz (slow to unpack under
    TCG), else the bzImage itself."""
    kern = initrd.Kernel.find(kernel_pkg)
    vmlinux = _cached(cache_dir, f"vmlinux {kern.bzimage}", ".vmlinux",
                      lambda: initrd.extract_vmlinux(kern.bzimage))
    modules = initrd.MODULES + tuple(m for m in extra_modules if m not in initrd.MODULES)
    rd = _cached(cache_dir, f"initrd 3 {kern.bzimage} {busybox} {' '.join(modules)} "
                 f"{initrd.guest_init_script().hex()}", ".initrd",
                 lambda: initrd.build_initrd(busybox, kern, modules))
    return vmlinux or kern.bzimage, rd


def probe_kvm(cache_dir: str, kernel: str, rd: str) -> bool:
    """Boot a guest with KVM and tell whether it reached its init within the deadline."""
    with tempfile.TemporaryDirectory(prefix="kvm-probe-", dir=cache_dir) as tmp:
        empty = os.path.join(tmp, "root")
        os.makedirs(os.path.join(empty, "store"))
        os.makedirs(os.path.join(empty, "dtx"))
        os.makedirs(os.path.join(empty, "build"))
        disk.make_image(os.path.join(tmp, "disk.img"), empty, 16 << 20)
        spec = qemu.VMSpec(kernel=kernel, initrd=rd, disk=os.path.join(tmp, "disk.img"),
                           accel="kvm", qemu=qemu.find_qemu())
        guest = console.Guest(qemu.qemu_argv(spec))
        try:
            guest.start()
            guest.wait_ready(time.monotonic() + qemu.PROBE_DEADLINE)
            return True
        except qemu.VMError:
            return False
        finally:
            guest.kill()


# -- the step -----------------------------------------------------------------------------------

def step_script(argv: list[str], env: dict[str, str]) -> bytes:
    """Return the guest script running `argv` in /build with exactly `env`."""
    assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    return (f"cd {BUILD_DIR} || exit 1\n"
            f"exec env -i {assigns} {' '.join(shlex.quote(a) for a in argv)}\n").encode(
        "utf-8", "surrogateescape")


def _host_hook(name: str, code: str, env: dict, drv, work: str, scratch: str, inputs: set[str],
               busybox: str, store_dir: str, real: Callable[[str], str],
               log: Callable[[str], None]) -> dict[str, str]:
    """Run `preVM`/`postVM` in the build sandbox; return the shell variables it exports
    for the VM (`diskImage`)."""
    build_dir = os.path.join(work, "build")
    report = f"{BUILD_DIR}/.dtx-{name}-vars"
    script = ("bb=\"$1\"; \"$bb\" mkdir -p /build/.dtx-bin && \"$bb\" --install -s /build/.dtx-bin"
              " && export PATH=/build/.dtx-bin:$PATH || exit 1\n"
              f"eval \"$2\" || exit $?\n"
              f"echo \"${{diskImage-}}\" > {report}\n")
    spec = SandboxSpec(argv=[busybox, "sh", "-c", script, "sh", busybox, code], env=env,
                       store_dir=store_dir, store_scratch=scratch, build_dir=build_dir,
                       etc_dir=os.path.join(work, "etc"),
                       inputs=[(real(p), p) for p in sorted(inputs)])
    proc = subprocess.Popen(bwrap_argv(spec, probe()), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for raw in proc.stdout:
            log(raw.decode("utf-8", "replace").rstrip("\n"))
        status = proc.wait()
    except BaseException:
        os.killpg(proc.pid, 9)
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        shutil.rmtree(os.path.join(build_dir, ".dtx-bin"), ignore_errors=True)
    if status != 0:
        raise _error(f"{name} of '{drv.name}' failed with exit code {status}")
    host_report = os.path.join(build_dir, os.path.basename(report))
    with open(host_report) as f:
        image = f.read().strip()
    os.unlink(host_report)
    return {"diskImage": image} if image else {}


def _host_path(logical: str, store_dir: str, scratch: str, work: str) -> str:
    """Map a path the sandbox saw (under the store or /build) to the host."""
    if logical.startswith(store_dir + "/"):
        return os.path.join(scratch, logical[len(store_dir) + 1:])
    if logical == BUILD_DIR or logical.startswith(BUILD_DIR + "/"):
        return os.path.join(work, "build", logical[len(BUILD_DIR):].lstrip("/"))
    raise _error(f"diskImage '{logical}' is neither under $out nor under {BUILD_DIR}")


def _merge(src: str, dest: str) -> None:
    """Move the entries of directory `src` into directory `dest`, replacing what is there."""
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(d) and not os.path.islink(d) and os.path.isdir(s) \
                and not os.path.islink(s):
            _merge(s, d)
            continue
        if os.path.lexists(d):
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d)
            else:
                os.unlink(d)
        os.rename(s, d)


def builtin_run_in_vm(drv, env: dict, out: str, log: Callable[[str], None], store) -> None:
    """Run the derivation's original builder (`args`) inside a QEMU guest (see the module
    docstring); the outputs end up in the build's scratch store."""
    from .build import input_paths

    if not drv.args:
        raise _error("'builtin:run-in-vm' needs the builder to run as its first argument")
    for key in ("vmKernel", "vmBusybox"):
        if not env.get(key):
            raise _error(f"'builtin:run-in-vm' needs the attribute '{key}'")
    store_dir = store.store_dir
    inputs = input_paths(store, drv)
    scratch = os.path.dirname(out)
    work = os.path.dirname(scratch)
    vm_dir = os.path.join(store.state_dir, "vm")
    memory = int(_number(env, "memSize", 512))
    disk_mb = int(_number(env, "diskSize", 2048))
    timeout = _number(env, "vmTimeout", 3600)
    try:
        qemu_opts = shlex.split(env.get("QEMU_OPTS", ""))
    except ValueError as e:
        raise _error(f"cannot parse QEMU_OPTS: {e}") from None

    def real(p: str) -> str:
        return store.real(p)

    busybox = env["vmBusybox"]  # as the sandbox sees it
    bb_top = store.to_store_path(busybox)
    busybox_real = store.real(bb_top) + busybox[len(bb_top):]
    kernel_path = store.to_store_path(env["vmKernel"])
    hook_vars: dict[str, str] = {}
    if env.get("preVM", "").strip():
        hook_vars = _host_hook("preVM", env["preVM"], env, drv, work, scratch, inputs,
                               busybox, store_dir, real, log)

    vm = tempfile.mkdtemp(prefix="vm-", dir=work)
    try:
        try:
            kernel, rd = boot_files(vm_dir, store.real(kernel_path), busybox_real,
                                    tuple(env.get("vmModules", "").split()))
            accel = qemu.accel_verdict(os.path.join(vm_dir, "accel.json"),
                                       lambda: probe_kvm(vm_dir, kernel, rd), log)
            t0 = time.monotonic()
            names = {n: os.path.basename(o.path) for n, o in drv.outputs.items()}
            existing = [b for b in names.values() if os.path.isdir(os.path.join(scratch, b))]
            guest_env = dict(env)
            img = os.path.join(vm, "disk.img")
            disk.make_build_disk(
                img, os.path.join(vm, "stage"),
                [(real(p), os.path.basename(p)) for p in sorted(inputs) if p != kernel_path],
                {"step.sh": step_script(list(drv.args), guest_env)},
                os.path.join(work, "build"), disk_mb << 20, existing)
            disk.remove(os.path.join(vm, "stage"))
            extra = []
            if hook_vars.get("diskImage"):
                extra.append(_host_path(hook_vars["diskImage"], store_dir, scratch, work))
            spec = qemu.VMSpec(kernel=kernel, initrd=rd, disk=img, extra_disks=extra,
                               accel=accel,
                               memory_mb=memory, qemu_opts=qemu_opts, qemu=qemu.find_qemu())
            log(f"vm: disks ready in {time.monotonic() - t0:.1f} s; booting ({accel})")
            deadline = time.monotonic() + timeout
            guest = console.Guest(qemu.qemu_argv(spec))
            try:
                guest.start()
                t1 = time.monotonic()
                try:
                    guest.wait_ready(deadline)
                except qemu.VMError:
                    for line in guest.boot_text[-20:]:
                        log(f"vm: {line}")
                    raise
                log(f"vm: booted in {time.monotonic() - t1:.1f} s")
                status = guest.run(GUEST_STEP, log, deadline)
                specials: list[disk.SpecialFile] = []
                if status == 0:
                    lines: list[str] = []
                    guest.run_command(disk.special_files_command(
                        [f"{GUEST_STORE}/{b}" for b in names.values()]), lines.append,
                        deadline)
                    specials = disk.parse_special_files(lines)
                guest.shutdown()
            except BaseException:
                guest.kill()
                raise
            if specials:
                _refuse_special(specials[0], store_dir)
            if status != 0:
                raise _error(f"builder for '{drv.name}' failed in the VM with exit code "
                             f"{status}")
            for b in names.values():
                dest = os.path.join(scratch, b)
                tmp = os.path.join(vm, "back-" + b)
                if not disk.read_back(img, f"/store/{b}", tmp):
                    continue
                if os.path.isdir(dest) and not os.path.islink(dest) and os.path.isdir(tmp):
                    _merge(tmp, dest)
                else:
                    os.rename(tmp, dest)
            log(f"vm: done in {time.monotonic() - t0:.1f} s")
        except console.VMTimeout as e:
            raise _error(f"building '{drv.name}' in the VM timed out after {timeout:g} "
                         f"seconds ({e})") from None
        except (qemu.VMError, disk.DiskError, initrd.InitrdError) as e:
            raise _error(f"cannot run '{drv.name}' in a VM: {e}") from None
    finally:
        disk.remove(vm)
    if env.get("postVM", "").strip():
        _host_hook("postVM", env["postVM"], env, drv, work, scratch, inputs, busybox,
                   store_dir, real, log)


def _refuse_special(sf: disk.SpecialFile, store_dir: str) -> None:
    """Fail for a device node, FIFO or socket in an output: the store, like Nix's, keeps only
    what a NAR holds (files, directories, symlinks)."""
    kind = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
            stat.S_IFIFO: "FIFO"}.get(stat.S_IFMT(sf.mode), "socket")
    logical = store_dir + sf.path[len(GUEST_STORE):]
    raise _error(f"the VM step left the {kind} '{logical}' ({sf.major}:{sf.minor}) in an output; "
                 "the store cannot keep it (a NAR holds only files, directories and symlinks): "
                 "archive such trees inside the VM, e.g. with tar")
