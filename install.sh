#!/usr/bin/env bash
# Installs what dtx and its tests need on a Debian/Ubuntu machine: the system packages (as root,
# or through sudo) and a virtual environment at .venv with dtx installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# nix-bin: the reference implementation the differential tests compare against.
# bubblewrap: the build sandbox.  busybox-static: the toolbox of the build tests.
# util-linux: runuser, for the tests that build as an ordinary user.
# podman, skopeo, umoci, runc: the image tools the dockerTools tests hand images to.
# docker-registry, apache2-utils (htpasswd): the local registry the pullImage tests pull from.
# qemu-system-x86, e2fsprogs (mke2fs -d, debugfs), procps (pgrep): vmTools.runInLinuxVM.
# git: builtins.fetchGit and fetchTree's git inputs.  zstd: unpacking .tar.zst in fetchTarball
# (without the Python package zstandard).
# python3-venv: the environment below.
PACKAGES="python3 python3-venv python3-pip nix-bin bubblewrap busybox-static util-linux
          podman skopeo umoci runc docker-registry apache2-utils qemu-system-x86 e2fsprogs
          procps git zstd"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# Byte-compile the sources now: with PYTHONDONTWRITEBYTECODE set, every command would otherwise
# compile them again at start-up.
.venv/bin/python -m compileall -q lang runtime stdlib vm >/dev/null
