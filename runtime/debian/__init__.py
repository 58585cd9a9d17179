"""Debian's binary archive as dtx's package set: version ordering (`version`), reading an archive's
indexes (`index`), resolving package names to a dependency closure (`resolve`) and the lock file
that pins it (`lock`). docs/debian-packages.md explains the whole."""
