"""`dtx`: one command for everything, `dtx COMMAND ARGS…`.

`dtx repl` starts the REPL; `dtx build`, `dtx instantiate`, `dtx store` and `dtx hash` run
`dtx-build`, `dtx-instantiate`, `dtx-store` and `dtx-hash` with the remaining arguments, unchanged.
"""

from __future__ import annotations

import importlib
import sys

from .repl import VERSION

# Subcommand → (module under dtx.runtime.cli, one-line description).
COMMANDS = {
    "repl": ("repl", "evaluate expressions interactively (like nix repl)"),
    "build": ("build", "build derivations and link the results (like nix-build)"),
    "instantiate": ("instantiate", "evaluate and instantiate expressions (like nix-instantiate)"),
    "store": ("store", "query and manipulate the store (like nix-store)"),
    "hash": ("hash", "compute and convert hashes (like nix-hash)"),
}

USAGE = "usage: dtx [--help] [--version] COMMAND [ARGS...]"


def usage() -> str:
    lines = [USAGE, "", "commands:"]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    lines += ["", "`dtx COMMAND --help` describes the arguments of each command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"dtx {VERSION}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"dtx: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__package__}.{COMMANDS[name][0]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
