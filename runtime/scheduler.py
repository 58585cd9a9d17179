"""Realising a graph of derivations: order, parallelism, progress and failure reports.

`Scheduler.realise` finds the derivations whose outputs are not yet valid (never rebuilding a
valid path, and not looking behind a derivation that is already built), then builds them in
dependency order with up to `jobs` builds at once. A failed build marks everything that depends
on it as not buildable; without `keep_going` no new build starts after a failure. Progress goes
to stderr: a live status line on a terminal, plain "building '…'" lines otherwise, nothing in
quiet mode; builders' output is shown unless `show_build_output` is off.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .build import (BuildError, BuildOptions, build_derivation, exit_status,
                    kill_running_builds)
from .store import LocalStore


@dataclass
class Failure:
    drv_path: str
    message: str
    log_tail: list[str] = field(default_factory=list)
    kept: str | None = None
    kind: str = "failed"  # BuildError.kind


class RealiseError(Exception):
    """Some derivations could not be built; `failures` says which and why."""

    def __init__(self, failures: list[Failure], blocked: dict[str, int]):
        super().__init__("build failed")
        self.failures = failures
        self.blocked = blocked  # derivation -> number of failed dependencies

    def render(self) -> str:
        out = []
        for f in self.failures:
            lines = [f"error: {f.message}"]
            if f.log_tail:
                lines[0] += ";"
                lines.append(f"       last {len(f.log_tail)} log lines:")
                lines += [f"       > {line}" for line in f.log_tail]
                lines.append(f"       For full logs, run 'dtx-store --read-log {f.drv_path}'.")
            if f.kept:
                lines.append(f"note: keeping build directory '{f.kept}'")
            out.append("\n".join(lines))
        for drv, n in sorted(self.blocked.items()):
            out.append(f"error: {n} dependencies of derivation '{drv}' failed to build")
        return "\n".join(out)

    def exit_status(self) -> int:
        """Nix's exit status for these failures (100 for a failed build, 101 timed out, …)."""
        return exit_status(f.kind for f in self.failures)

    def message(self) -> str:
        """The report as the message of one error (without its leading `error: `)."""
        return self.render().removeprefix("error: ")


class Progress:
    """Reports what the scheduler does on a stream (stderr)."""

    def __init__(self, stream=None, quiet: bool = False, show_build_output: bool = True):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.show_build_output = show_build_output and not quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lock = threading.Lock()
        self.total = self.done = 0
        self.running: list[str] = []
        self._status_shown = False

    def _clear(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def _status(self) -> None:
        if not self.tty or self.quiet or not self.running:
            return
        names = ", ".join(_short(p) for p in self.running[:3])
        more = f" +{len(self.running) - 3}" if len(self.running) > 3 else ""
        self.stream.write(f"[{self.done}/{self.total} built, {len(self.running)} running] "
                          f"{names}{more}"[:200])
        self._status_shown = True
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self._clear()
            self.stream.write(text + "\n")
            self._status()
            self.stream.flush()

    def plan(self, drvs: list[str]) -> None:
        self.total = len(drvs)
        if not drvs:
            return
        head = ("this derivation will be built:" if len(drvs) == 1 else
                f"these {len(drvs)} derivations will be built:")
        self.message("\n".join([head] + [f"  {d}" for d in sorted(drvs)]))

    def started(self, drv: str) -> None:
        with self.lock:
            self.running.append(drv)
        self.message(f"building '{drv}'...")

    def finished(self, drv: str) -> None:
        with self.lock:
            if drv in self.running:
                self.running.remove(drv)
            self.done += 1
            self._clear()
            self._status()
            self.stream.flush()

    def line(self, drv: str, text: str) -> None:
        if self.show_build_output:
            self.message(text)

    def close(self) -> None:
        with self.lock:
            self._clear()
            self.stream.flush()


def _short(drv_path: str) -> str:
    base = drv_path.rsplit("/", 1)[-1]
    return base[33:].removesuffix(".drv")


class Scheduler:
    def __init__(self, store: LocalStore, opts: BuildOptions | None = None, jobs: int = 1,
                 keep_going: bool = False, progress: Progress | None = None):
        self.store = store
        self.opts = opts or BuildOptions()
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.progress = progress or Progress(quiet=True)
        if self.opts.on_line is None:
            self.opts.on_line = self.progress.line

    def needed(self, drv_paths: list[str]) -> tuple[list[str], dict[str, set[str]]]:
        """The derivations that must be built, and each one's unbuilt input derivations."""
        deps: dict[str, set[str]] = {}
        todo = list(drv_paths)
        store = self.store
        while todo:
            path = todo.pop()
            if path in deps:
                continue
            drv = store.read_derivation(path)
            if not self.opts.check or path not in drv_paths:
                if all(store.is_valid(o.path) for o in drv.outputs.values()):
                    continue
            inputs = set()
            for inp, outputs in drv.input_drvs.items():
                produced = store.read_derivation(inp).outputs
                if not all(store.is_valid(produced[o].path) for o in outputs if o in produced):
                    inputs.add(inp)
                    todo.append(inp)
            deps[path] = inputs
        for path in deps:
            deps[path] &= set(deps)
        return sorted(deps), deps

    def dry_run(self, drv_paths: list[str]) -> list[str]:
        return self.needed(drv_paths)[0]

    def realise(self, drv_paths: list[str]) -> None:
        """Build what is missing of `drv_paths` and their dependencies; raise RealiseError if
        anything fails."""
        order, deps = self.needed(drv_paths)
        self.progress.plan(order)
        if not order:
            return
        dependents: dict[str, set[str]] = {d: set() for d in order}
        for d, inputs in deps.items():
            for i in inputs:
                dependents[i].add(d)
        waiting = {d: set(inputs) for d, inputs in deps.items()}
        ready = sorted(d for d, inputs in waiting.items() if not inputs)
        failures: list[Failure] = []
        failed: set[str] = set()
        blocked: dict[str, int] = {}
        running: dict[Future, str] = {}
        stop = False
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="dtx-build")
        try:
            while ready or running:
                while ready and len(running) < self.jobs and not stop:
                    d = ready.pop(0)
                    self.progress.started(d)
                    running[pool.submit(build_derivation, self.store, d, self.opts)] = d
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    d = running.pop(fut)
                    self.progress.finished(d)
                    try:
                        fut.result()
                    except BuildError as e:
                        failures.append(Failure(e.drv_path or d, e.message, e.log_tail,
                                                e.kept, e.kind))
                        self._fail(d, dependents, failed, blocked)
                        if not self.keep_going:
                            stop = True
                        continue
                    for dep in sorted(dependents[d]):
                        waiting[dep].discard(d)
                        if not waiting[dep] and dep not in failed:
                            ready.append(dep)
                if stop:
                    ready.clear()
        except BaseException:
            # Interrupted: stop every builder, let the workers clean their scratch
            # directories (nothing half-built is ever registered), then give up.
            pool.shutdown(wait=False, cancel_futures=True)
            kill_running_builds()
            pool.shutdown(wait=True)
            raise
        finally:
            self.progress.close()
        pool.shutdown(wait=True)
        if failures:
            top = {d: n for d, n in blocked.items() if d in drv_paths or not dependents[d]}
            raise RealiseError(failures, top)

    @staticmethod
    def _fail(d: str, dependents, failed: set, blocked: dict) -> None:
        """Mark everything that depends on the failed `d` as unbuildable, counting for each
        derivation how many of its direct inputs failed."""
        failed.add(d)
        todo = [d]
        while todo:
            x = todo.pop()
            for dep in dependents[x]:
                blocked[dep] = blocked.get(dep, 0) + 1
                if dep not in failed:
                    failed.add(dep)
                    todo.append(dep)
