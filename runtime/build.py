"""Realising one derivation: from a `.drv` to registered, immutable outputs.

`build_derivation` does what Nix's derivation goal does for a local build:
1. take the locks of the output paths, and stop if the outputs are already valid;
2. lay out a scratch directory (the sandbox's store directory, `/build`, `/etc`) and the
   builder's environment exactly as Nix sets it (`passAsFile`, structured attributes,
   `exportReferencesGraph`);
3. run the builder — in the sandbox, or in Python for `builtin:` builders — logging its output
   to the store's log directory and keeping the last lines for the error message;
4. check the outputs (they must exist; a fixed-output result must match its hash, and the error
   shows both hashes in SRI form), normalise them, scan them for references, enforce
   `allowedReferences` and friends, move them into the store and register them in one
   transaction.
A failure or an interruption at any point leaves nothing registered and removes the scratch
directory (kept with `keep_failed`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .builders import lookup as lookup_builder
from .derivation import Derivation
from .eval import on_interrupt
from .hashes import Hash, hash_bytes, to_base32
from .nar import dump_flat_hash, nar_hash
from .refscan import scan_references
from .sandbox import BUILD_DIR, SandboxSpec, bwrap_argv, probe, write_etc
from .store import LocalStore, PathInfo, canonicalise, move_into_store, remove_tree
from .storepath import HASH_PART_LEN

LOG_TAIL = 25


class BuildError(Exception):
    """A build that failed; `log_tail` holds the last lines of its log. `kind` is how, for the
    exit status (`exit_status`): "failed", "timeout", "hash" (fixed-output hash mismatch) or
    "check" (`--check` found another output)."""

    def __init__(self, message: str, drv_path: str = "", log_tail: list[str] | None = None,
                 kept: str | None = None, kind: str = "failed"):
        super().__init__(message)
        self.message = message
        self.drv_path = drv_path
        self.log_tail = log_tail or []
        self.kept = kept
        self.kind = kind


# Nix's exit status of a build command that failed: 0x60 with a bit per kind of failure
# (build failure 100, +1 timed out, +2 hash mismatch, +8 not deterministic); 1 otherwise.
_STATUS_BITS = {"failed": 0x04, "timeout": 0x05, "hash": 0x06, "check": 0x08}


def exit_status(kinds) -> int:
    """The exit status of a command whose builds failed in these ways."""
    mask = 0
    for kind in kinds:
        mask |= _STATUS_BITS.get(kind, 0)
    return 0x60 | mask if mask else 1


@dataclass
class BuildOptions:
    cores: int = 1
    keep_failed: bool = False
    max_silent_time: float | None = None
    timeout: float | None = None
    check: bool = False
    on_line: Callable[[str, str], None] | None = None  # (drv path, log line)
    # Extra or replacement `builtin:` builders (name -> fn); runtime.builders has dtx's own.
    builtins: dict = field(default_factory=dict)


def log_path(store: LocalStore, drv_path: str) -> str:
    """Where the log of a derivation's build is kept (as nix-store --read-log finds it)."""
    base = os.path.basename(drv_path)
    return os.path.join(store.state_dir, "log", "drvs", base[:2], base[2:])


def input_paths(store: LocalStore, drv: Derivation) -> set[str]:
    """The store paths a build may see: the closure of its sources and input outputs."""
    roots = set(drv.input_srcs)
    for path, outputs in drv.input_drvs.items():
        produced = store.read_derivation(path).outputs
        for name in outputs:
            if name not in produced:
                raise BuildError(f"derivation '{path}' has no output '{name}'")
            out = produced[name].path
            if not store.is_valid(out):
                raise BuildError(f"dependency '{out}' of '{drv.name}' has not been built", path)
            roots.add(out)
    return store.closure(roots)


def build_derivation(store: LocalStore, drv_path: str, opts: BuildOptions) -> dict[str, str]:
    """Build `drv_path` unless its outputs are valid; return its output paths."""
    drv = store.read_derivation(drv_path)
    outputs = {name: o.path for name, o in drv.outputs.items()}
    if not opts.check and all(store.is_valid(p) for p in outputs.values()):
        return outputs
    with contextlib.ExitStack() as locks:
        for path in sorted(outputs.values()):
            locks.enter_context(store.lock_path(path))
        if not opts.check and all(store.is_valid(p) for p in outputs.values()):
            return outputs  # someone else built it while we waited
        _Build(store, drv_path, drv, opts).run()
    return outputs


class _Build:
    def __init__(self, store: LocalStore, drv_path: str, drv: Derivation, opts: BuildOptions):
        self.store = store
        self.drv_path = drv_path
        self.drv = drv
        self.opts = opts
        self.tail: list[str] = []

    # -- environment ----------------------------------------------------------------------------

    def environment(self, build_dir: str) -> dict[str, str]:
        drv = self.drv
        env = {"PATH": "/path-not-set", "HOME": "/homeless-shelter",
               "NIX_STORE": self.store.store_dir, "NIX_BUILD_CORES": str(self.opts.cores)}
        structured = "__json" in drv.env
        if not structured:
            pass_as_file = set(drv.env.get("passAsFile", "").split())
            for key, value in drv.env.items():
                if key in pass_as_file:
                    name = ".attr-" + to_base32(hash_bytes("sha256", key.encode()))
                    with open(os.path.join(build_dir, name), "w", encoding="utf-8",
                              errors="surrogateescape") as f:
                        f.write(value)
                    env[key + "Path"] = f"{BUILD_DIR}/{name}"
                else:
                    env[key] = value
        else:
            self.write_structured_attrs(build_dir)
        env.update(NIX_BUILD_TOP=BUILD_DIR, TMPDIR=BUILD_DIR, TEMPDIR=BUILD_DIR, TMP=BUILD_DIR,
                   TEMP=BUILD_DIR, PWD=BUILD_DIR)
        if drv.is_fixed_output():
            env["NIX_OUTPUT_CHECKED"] = "1"
            for var in drv.env.get("impureEnvVars", "").split():
                env[var] = os.environ.get(var, "")
        env["NIX_LOG_FD"] = "2"
        env["TERM"] = "xterm-256color"
        return env

    def write_structured_attrs(self, build_dir: str) -> None:
        attrs = json.loads(self.drv.env["__json"])
        attrs["outputs"] = {name: o.path for name, o in self.drv.outputs.items()}
        with open(os.path.join(build_dir, ".attrs.json"), "w") as f:
            json.dump(attrs, f, separators=(",", ":"), sort_keys=True)
        lines = []
        for key, value in sorted(attrs.items()):
            if not key.replace("_", "a").isalnum():
                continue
            if isinstance(value, bool):
                lines.append(f"declare {key}={'1' if value else ''}")
            elif isinstance(value, (str, int, float)):
                lines.append(f"declare {key}={shlex.quote(str(value))}")
            elif isinstance(value, list) and all(isinstance(v, (str, int, float, bool))
                                                 for v in value):
                items = " ".join(shlex.quote(str(v)) for v in value)
                lines.append(f"declare -a {key}=({items})")
            elif isinstance(value, dict) and all(isinstance(v, (str, int, float, bool))
                                                 for v in value.values()):
                items = " ".join(f"[{shlex.quote(k)}]={shlex.quote(str(v))}"
                                 for k, v in sorted(value.items()))
                lines.append(f"declare -A {key}=({items})")
        with open(os.path.join(build_dir, ".attrs.sh"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def export_references_graphs(self, build_dir: str, inputs: set[str]) -> None:
        spec = self.drv.env.get("exportReferencesGraph", "").split()
        if len(spec) % 2:
            raise BuildError("odd number of tokens in 'exportReferencesGraph'", self.drv_path)
        for name, path in zip(spec[::2], spec[1::2]):
            if "/" in name or name in ("", ".", ".."):
                raise BuildError(f"invalid file name '{name}' in 'exportReferencesGraph'",
                                 self.drv_path)
            root = self.store.to_store_path(path)
            if root not in inputs:
                raise BuildError(f"'exportReferencesGraph' refers to '{path}', which is not an "
                                 "input of the derivation", self.drv_path)
            closure = sorted(self.store.closure([root]))
            out = []
            for p in closure:
                info = self.store.query_info(p)
                out += [p, info.deriver or "", str(len(info.references)),
                        *sorted(info.references)]
            with open(os.path.join(build_dir, name), "w") as f:
                f.write("".join(line + "\n" for line in out))

    # -- running --------------------------------------------------------------------------------

    def run(self) -> None:
        store, drv = self.store, self.drv
        inputs = input_paths(store, drv)
        work_root = os.path.join(store.state_dir, "builds")
        os.makedirs(work_root, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f"{drv.name[:40]}-", dir=work_root)
        kept = None
        try:
            scratch = os.path.join(work, "store")
            build_dir = os.path.join(work, "build")
            etc_dir = os.path.join(work, "etc")
            os.mkdir(scratch)
            os.mkdir(build_dir, 0o700)
            write_etc(etc_dir)
            env = self.environment(build_dir)
            self.export_references_graphs(build_dir, inputs)
            log_file = log_path(store, self.drv_path)
            os.makedirs(os.path.dirname(log_file), exist_ok=True)
            with open(log_file, "w", encoding="utf-8", errors="replace") as log:
                try:
                    if drv.builder.startswith("builtin:"):
                        self.run_builtin(scratch, env, log)
                    else:
                        spec = SandboxSpec(
                            argv=[drv.builder, *drv.args], env=env,
                            store_dir=store.store_dir, store_scratch=scratch,
                            build_dir=build_dir, etc_dir=etc_dir,
                            inputs=[(store.real(p), p) for p in sorted(inputs)],
                            network=drv.is_fixed_output(),
                            extra_ro=[("/etc/resolv.conf", "/etc/resolv.conf"),
                                      ("/etc/services", "/etc/services")]
                            if drv.is_fixed_output() else [])
                        self.run_sandboxed(spec, log)
                except BuildError as e:
                    if self.opts.keep_failed:
                        kept = build_dir
                    e.drv_path = e.drv_path or self.drv_path
                    e.log_tail = e.log_tail or list(self.tail)
                    e.kept = kept
                    raise
            try:
                self.register_outputs(scratch, inputs)
            except BuildError as e:
                if self.opts.keep_failed:
                    e.kept = kept = build_dir
                raise
        finally:
            if kept is None:
                remove_tree(work)
            else:
                for name in ("store", "etc"):
                    remove_tree(os.path.join(work, name))

    def _line(self, line: str, log) -> None:
        log.write(line + "\n")
        self.tail.append(line)
        if len(self.tail) > LOG_TAIL:
            del self.tail[0]
        if self.opts.on_line is not None:
            self.opts.on_line(self.drv_path, line)

    def run_builtin(self, scratch: str, env: dict, log) -> None:
        name = self.drv.builder[len("builtin:"):]
        fn = self.opts.builtins.get(name) or lookup_builder(name)
        if fn is None:
            raise BuildError(f"unsupported builtin builder '{self.drv.builder}'", self.drv_path)
        out = os.path.join(scratch, os.path.basename(self.drv.outputs["out"].path))
        fn(self.drv, env, out, lambda line: self._line(line, log), self.store)

    def run_sandboxed(self, spec: SandboxSpec, log) -> None:
        argv = bwrap_argv(spec, probe())
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        with _running_lock:
            _running.add(proc)
        start = last_output = time.monotonic()
        buf = b""
        fd = proc.stdout.fileno()
        try:
            while True:
                now = time.monotonic()
                waits = [1.0]
                if self.opts.timeout:
                    waits.append(start + self.opts.timeout - now)
                if self.opts.max_silent_time:
                    waits.append(last_output + self.opts.max_silent_time - now)
                ready, _, _ = select.select([fd], [], [], max(0.0, min(waits)))
                now = time.monotonic()
                if ready:
                    data = os.read(fd, 65536)
                    if not data:
                        break
                    last_output = now
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self._line(line.decode("utf-8", "replace"), log)
                    continue
                if self.opts.timeout and now - start >= self.opts.timeout:
                    _kill(proc)
                    raise BuildError(f"building '{self.drv_path}' timed out after "
                                     f"{self.opts.timeout:g} seconds", self.drv_path,
                                     kind="timeout")
                if self.opts.max_silent_time and now - last_output >= self.opts.max_silent_time:
                    _kill(proc)
                    raise BuildError(f"building '{self.drv_path}' was silent for more than "
                                     f"{self.opts.max_silent_time:g} seconds", self.drv_path,
                                     kind="timeout")
            if buf:
                self._line(buf.decode("utf-8", "replace"), log)
            status = proc.wait()
        except BaseException:
            _kill(proc)
            raise
        finally:
            proc.stdout.close()
            with _running_lock:
                _running.discard(proc)
        if status != 0:
            how = (f"signal {-status}" if status < 0 else f"exit code {status}")
            raise BuildError(f"builder for '{self.drv_path}' failed with {how}", self.drv_path)

    # -- outputs --------------------------------------------------------------------------------

    def register_outputs(self, scratch: str, inputs: set[str]) -> None:
        store, drv = self.store, self.drv
        produced: dict[str, str] = {}
        for name, out in drv.outputs.items():
            tmp = os.path.join(scratch, os.path.basename(out.path))
            if not os.path.lexists(tmp):
                raise BuildError(f"builder for '{self.drv_path}' failed to produce output path "
                                 f"for output '{name}' at '{out.path}'", self.drv_path,
                                 list(self.tail))
            produced[name] = tmp
        if drv.is_fixed_output():
            self.check_fixed_output(produced["out"])
        candidates = {os.path.basename(p)[:HASH_PART_LEN]: p for p in inputs}
        for out in drv.outputs.values():
            candidates[os.path.basename(out.path)[:HASH_PART_LEN]] = out.path
        infos = []
        for name, tmp in produced.items():
            canonicalise(tmp)
            refs = scan_references(tmp, candidates)
            digest, size = nar_hash(tmp)
            infos.append(PathInfo(drv.outputs[name].path, Hash("sha256", digest), size, refs,
                                  deriver=self.drv_path))
        self.check_references(infos)
        if self.opts.check:
            self.compare_with_existing(infos)
            return
        for info, tmp in zip(infos, produced.values()):
            real = store.real(info.path)
            if os.path.lexists(real):
                remove_tree(real)  # an unregistered leftover
            move_into_store(tmp, real)
        store.register_many(infos)

    def check_fixed_output(self, tmp: str) -> None:
        out = self.drv.outputs["out"]
        recursive = out.hash_algo.startswith("r:")
        algo = out.hash_algo[2:] if recursive else out.hash_algo
        expected = Hash(algo, bytes.fromhex(out.hash))
        if recursive:
            got = Hash(algo, nar_hash(tmp, algo)[0])
        else:
            if not os.path.isfile(tmp) or os.path.islink(tmp):
                raise BuildError(f"output path '{out.path}' should be a non-executable regular "
                                 "file since recursive hashing is not enabled "
                                 "(outputHashMode=flat)", self.drv_path)
            got = Hash(algo, dump_flat_hash(tmp, algo))
        if got != expected:
            raise BuildError(f"hash mismatch in fixed-output derivation '{self.drv_path}':\n"
                             f"         specified: {expected.sri()}\n"
                             f"            got:    {got.sri()}", self.drv_path, kind="hash")

    def check_references(self, infos: list[PathInfo]) -> None:
        env = self.drv.env
        by_name = {name: o.path for name, o in self.drv.outputs.items()}

        def resolve(items: list[str]) -> set[str]:
            return {by_name.get(i, i) for i in items}

        for info in infos:
            allowed = env.get("allowedReferences")
            if allowed is not None:
                bad = info.references - resolve(allowed.split())
                if bad:
                    raise BuildError(f"output '{info.path}' is not allowed to refer to the "
                                     f"following paths:\n  {sorted(bad)[0]}", self.drv_path)
            disallowed = env.get("disallowedReferences")
            if disallowed is not None:
                bad = info.references & resolve(disallowed.split())
                if bad:
                    raise BuildError(f"output '{info.path}' is not allowed to refer to the "
                                     f"following paths:\n  {sorted(bad)[0]}", self.drv_path)
            for key, forbid in (("allowedRequisites", False), ("disallowedRequisites", True)):
                spec = env.get(key)
                if spec is None:
                    continue
                own = {i.path for i in infos}
                closure = set(info.references - own)
                closure = self.store.closure(closure) | (info.references & own)
                listed = resolve(spec.split())
                bad = (closure & listed) if forbid else (closure - listed - {info.path})
                if bad:
                    raise BuildError(f"output '{info.path}' is not allowed to refer to the "
                                     f"following paths:\n  {sorted(bad)[0]}", self.drv_path)

    def compare_with_existing(self, infos: list[PathInfo]) -> None:
        for info in infos:
            old = self.store.query(info.path)
            if old is None:
                raise BuildError(f"some outputs of '{self.drv_path}' are not valid, so checking "
                                 "is not possible", self.drv_path)
            if old.nar_hash != info.nar_hash:
                raise BuildError(f"derivation '{self.drv_path}' may not be deterministic: "
                                 f"output '{info.path}' differs", self.drv_path, kind="check")


_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


def kill_running_builds() -> None:
    """Kill every builder this process has running (on Ctrl-C)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


on_interrupt(kill_running_builds)


def _kill(proc: subprocess.Popen) -> None:
    """Kill a builder and everything it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
