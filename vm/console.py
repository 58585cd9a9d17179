"""Driving a guest through its serial console with pexpect.

Protocol (the facts in DESIGN.md, "VM steps"): QEMU's serial port is on its stdio
(`-chardev stdio,…,signal=off`), which pexpect gives a pty. The guest init prints a ready marker
and leaves a shell on the console. Each step is a script file on the input disk, run as

    stty -echo; echo <begin>; sh SCRIPT </dev/null 2>&1; echo <end>-$?

The markers carry a random nonce and are written in the command with an empty quoted string
inside them, so the terminal's echo of the command itself never matches; the end marker carries
the step's exit status. Output between the markers is the step's log, split into lines (the
serial line ends them with `\\r\\r\\n` or `\\r\\n`; carriage returns are dropped).

Every guest runs in its own session (pexpect's pty fork) and is listed in `_running` until it
has exited, so `kill_all` (hooked to Ctrl-C by runtime/vmbuild.py) leaves no QEMU behind;
`Guest.kill` is called on every failure path.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable

import pexpect

from .qemu import VMError

READY = b"DTX-GUEST-READY"


class VMTimeout(VMError):
    """The guest did not finish within its deadline (it has been killed)."""


_running: set[Guest] = set()
_running_lock = threading.Lock()


def kill_all() -> None:
    """Kill every guest this process has running."""
    with _running_lock:
        guests = list(_running)
    for g in guests:
        g.kill()


class Guest:
    """A running QEMU whose serial console is ours."""

    def __init__(self, argv: list[str], on_boot_line: Callable[[str], None] | None = None):
        self.argv = argv
        self.on_boot_line = on_boot_line
        self.boot_text: list[str] = []
        self.child: pexpect.spawn | None = None
        self._buf = b""

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start QEMU (it runs in a session of its own)."""
        try:
            self.child = pexpect.spawn(self.argv[0], self.argv[1:], timeout=None, echo=False,
                                       env={**os.environ, "TERM": "dumb"})
        except pexpect.ExceptionPexpect as e:
            raise VMError(f"cannot start QEMU: {e}") from None
        with _running_lock:
            _running.add(self)

    def kill(self) -> None:
        """Kill QEMU (SIGKILL to its session) and reap it."""
        child = self.child
        if child is None:
            return
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.close(force=True)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
        with _running_lock:
            _running.discard(self)

    def _read(self, deadline: float | None) -> bytes | None:
        """Return more console output; b"" at EOF, None when `deadline` passed."""
        assert self.child is not None
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return None
        except pexpect.EOF:
            return b""

    def _lines(self, data: bytes) -> list[bytes]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [line.replace(b"\r", b"") for line in lines]

    def wait_ready(self, deadline: float) -> None:
        """Wait for the guest init's ready marker; raise VMTimeout or VMError otherwise."""
        while True:
            data = self._read(deadline)
            if data is None:
                raise VMTimeout("the guest did not boot in time")
            if data == b"":
                raise VMError("QEMU exited while the guest was booting")
            for line in self._lines(data):
                text = line.decode("utf-8", "replace")
                if READY in line:
                    self._buf = b""
                    return
                self.boot_text.append(text)
                del self.boot_text[:-50]
                if self.on_boot_line is not None:
                    self.on_boot_line(text)

    def run(self, script: str, on_line: Callable[[str], None], deadline: float | None) -> int:
        """Run the guest file `script` as a step; stream its output lines; return its status."""
        return self.run_command(f"sh {script} </dev/null 2>&1", on_line, deadline)

    def run_command(self, command: str, on_line: Callable[[str], None],
                    deadline: float | None) -> int:
        """Run one line of shell in the guest between markers; stream its output lines to
        `on_line`; return its exit status. Raise VMTimeout after `deadline`."""
        assert self.child is not None
        nonce = secrets.token_hex(6)
        begin = f"DTX-STEP-BEGIN-{nonce}".encode()
        end = re.compile(rb"DTX-STEP-END-" + nonce.encode() + rb"-(\d+)")
        self.child.send(f"stty -echo; echo DTX-STEP-BEG''IN-{nonce}; "
                        f"{command}; echo DTX-STEP-E''ND-{nonce}-$?\n")
        started = False
        while True:
            data = self._read(deadline)
            if data is None:
                raise VMTimeout("the guest step did not finish in time")
            if data == b"":
                raise VMError("QEMU exited during the step")
            for line in self._lines(data):
                if not started:
                    started = begin in line
                    continue
                m = end.search(line)
                if m:
                    if m.start():
                        on_line(line[:m.start()].decode("utf-8", "replace"))
                    self._buf = b""
                    return int(m.group(1))
                on_line(line.decode("utf-8", "replace"))

    def shutdown(self, grace: float = 20.0) -> None:
        """Unmount the disks, power off, and wait for QEMU to exit (killing it after `grace`)."""
        assert self.child is not None
        self.child.send("cd /; umount /build /nix/store; umount /nix/.disk || "
                        "mount -o remount,ro /nix/.disk; sync; reboot -f\n")
        deadline = time.monotonic() + grace
        while True:
            data = self._read(deadline)
            if data is None:
                self.kill()
                raise VMTimeout("the guest did not power off in time")
            if data == b"":
                break
        self.child.close()
        with _running_lock:
            _running.discard(self)
