"""Derivations: the `.drv` ATerm text, its parser, and `hashDerivationModulo`.

A `.drv` file is one line:

    Derive([outputs],[input derivations],[input sources],"system","builder",[args],[env])

with every list sorted, strings escaped (`\\"`, `\\\\`, `\\n`, `\\r`, `\\t`), and each output a
tuple (name, path, hash algorithm, hash) whose last two are empty unless it is fixed-output.

An input-addressed derivation's output paths depend on `hashDerivationModulo`: the hash of its
ATerm with every input derivation replaced by *that* derivation's modulo hash and — while the
outputs are being computed — the output paths blanked. Fixed-output derivations hash to
`fixed:out:<algo>:<hash>:<path>` instead, so changing how a fixed-output file is fetched changes
nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .hashes import Hash


@dataclass
class Output:
    path: str
    hash_algo: str = ""  # "sha256" or "r:sha256" for fixed-output derivations
    hash: str = ""  # base 16

    @property
    def fixed(self) -> bool:
        return bool(self.hash)


@dataclass
class Derivation:
    name: str
    outputs: dict[str, Output] = field(default_factory=dict)
    input_drvs: dict[str, set[str]] = field(default_factory=dict)
    input_srcs: set[str] = field(default_factory=set)
    platform: str = ""
    builder: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def is_fixed_output(self) -> bool:
        return len(self.outputs) == 1 and "out" in self.outputs and self.outputs["out"].fixed

    def unparse(self, mask_outputs: bool = False,
                input_drvs: dict[str, set[str]] | None = None) -> str:
        """Return the ATerm text; `input_drvs` replaces the input derivations (for hashing)."""
        out = ["Derive(["]
        first = True
        for name in sorted(self.outputs):
            o = self.outputs[name]
            if not first:
                out.append(",")
            first = False
            out.append(f"({_q(name)},{_q('' if mask_outputs else o.path)},"
                       f"{_q(o.hash_algo)},{_q(o.hash)})")
        out.append("],[")
        drvs = self.input_drvs if input_drvs is None else input_drvs
        out.append(",".join(
            f"({_q(path)},[{','.join(_q(o) for o in sorted(drvs[path]))}])"
            for path in sorted(drvs)))
        out.append("],[")
        out.append(",".join(_q(p) for p in sorted(self.input_srcs)))
        out.append(f"],{_q(self.platform)},{_q(self.builder)},[")
        out.append(",".join(_q(a) for a in self.args))
        out.append("],[")
        env = self.env
        out.append(",".join(
            f"({_q(k)},{_q('' if mask_outputs and k in self.outputs else env[k])})"
            for k in sorted(env)))
        out.append("])")
        return "".join(out)

    def references(self) -> set[str]:
        """The store paths a `.drv` file refers to: its input sources and derivations."""
        return set(self.input_srcs) | set(self.input_drvs)


_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r",
                          "\t": "\\t"})


def _q(s: str) -> str:
    return '"' + s.translate(_ESCAPES) + '"'


def hash_derivation_modulo(drv: Derivation, read_drv, mask_outputs: bool,
                           cache: dict[str, Hash]) -> Hash:
    """Nix's `hashDerivationModulo`. `read_drv(path)` loads an input derivation; `cache` maps
    .drv paths to their modulo hash (shared across calls, as Nix's drvHashes is)."""
    if drv.is_fixed_output():
        o = drv.outputs["out"]
        return Hash.of("sha256", f"fixed:out:{o.hash_algo}:{o.hash}:{o.path}".encode())
    inputs: dict[str, set[str]] = {}
    for path, outputs in drv.input_drvs.items():
        h = cache.get(path)
        if h is None:
            h = hash_derivation_modulo(read_drv(path), read_drv, False, cache)
            cache[path] = h
        inputs[h.base16()] = outputs
    return Hash.of("sha256", drv.unparse(mask_outputs, inputs).encode())


# -- parsing --------------------------------------------------------------------------------------

class DerivationParseError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def expect(self, s: str) -> None:
        if not self.text.startswith(s, self.i):
            raise DerivationParseError(f"expected '{s}' at offset {self.i} of the derivation")
        self.i += len(s)

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def string(self) -> str:
        self.expect('"')
        out = []
        text = self.text
        while True:
            if self.i >= len(text):
                raise DerivationParseError("unterminated string in derivation")
            c = text[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\":
                n = text[self.i + 1]
                out.append({"n": "\n", "r": "\r", "t": "\t"}.get(n, n))
                self.i += 2
            else:
                out.append(c)
                self.i += 1

    def list_of(self, item):
        self.expect("[")
        out = []
        while not self.peek("]"):
            if out:
                self.expect(",")
            out.append(item())
        self.expect("]")
        return out


def parse_derivation(text: str, name: str) -> Derivation:
    """Parse the ATerm text of a `.drv` file (`name` is the derivation name, without `.drv`)."""
    p = _Parser(text)
    p.expect("Derive(")
    drv = Derivation(name)

    def output():
        p.expect("(")
        n = p.string()
        p.expect(",")
        path = p.string()
        p.expect(",")
        algo = p.string()
        p.expect(",")
        h = p.string()
        p.expect(")")
        drv.outputs[n] = Output(path, algo, h)

    def input_drv():
        p.expect("(")
        path = p.string()
        p.expect(",")
        drv.input_drvs[path] = set(p.list_of(p.string))
        p.expect(")")

    def env_item():
        p.expect("(")
        k = p.string()
        p.expect(",")
        drv.env[k] = p.string()
        p.expect(")")

    p.list_of(output)
    p.expect(",")
    p.list_of(input_drv)
    p.expect(",")
    drv.input_srcs = set(p.list_of(p.string))
    p.expect(",")
    drv.platform = p.string()
    p.expect(",")
    drv.builder = p.string()
    p.expect(",")
    drv.args = p.list_of(p.string)
    p.expect(",")
    p.list_of(env_item)
    p.expect(")")
    if p.i != len(text):
        raise DerivationParseError("trailing data after derivation")
    return drv
