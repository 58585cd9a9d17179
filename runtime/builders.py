"""The `builtin:` builders: the Python function that realises each one.

A derivation whose builder is `builtin:NAME` is built by dtx itself, as Nix builds
`builtin:fetchurl`. Each entry names the module and function; the module is imported only when
such a derivation is built, so commands that never need it do not pay for its imports.
A builder is called as `fn(drv, env, out, log, store)`: the derivation, the builder
environment, the scratch path of output `out`, a function that writes one line to the build
log, and the store being built into (for the builders that read their inputs' closures).
"""

from __future__ import annotations

import importlib
from typing import Callable

BUILDERS: dict[str, str] = {
    "fetchurl": "dtx.runtime.fetchurl:builtin_fetchurl",
    "unpack-deb": "dtx.runtime.debian.unpack:builtin_unpack_deb",
    "docker-image": "dtx.runtime.image.builder:builtin_docker_image",
    "docker-pull": "dtx.runtime.image.pull:builtin_docker_pull",
    "run-in-vm": "dtx.runtime.vmbuild:builtin_run_in_vm",
}


def lookup(name: str) -> Callable | None:
    """Return the builder for `builtin:NAME`, or None if dtx has no such builder."""
    target = BUILDERS.get(name)
    if target is None:
        return None
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)
