"""Resolving Debian package names to a dependency closure.

The closure follows `Pre-Depends` and `Depends` (never `Recommends` or `Suggests`; `Conflicts`
and `Breaks` are not consulted, since each package gets its own store path). For each dependency
`a (>= 1) | b`:

- a package already chosen that satisfies one alternative (by name, or through `Provides`) is
  used;
- otherwise the alternatives are tried in order, each by its real package (newest version first,
  across all suites, so `-updates` and `-security` override the main suite) and then by the
  packages that provide it (versioned `Provides` for versioned dependencies), and the first whose
  own closure resolves wins — a failing choice is undone (backtracking);
- architecture qualifiers `:any` and `:native` (and the native architecture named) are
  satisfied by native and `Architecture: all` packages; other architectures never are.

What must stay true: one version per package name; the result is sorted by name; an error says
which package needed what and the chain of packages that led there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .index import ARCH, Archive, Package
from .version import Version, VersionError, satisfies

_ATOM = re.compile(r"""^\s*(?P<name>[a-z0-9][a-z0-9.+-]*)(?::(?P<arch>[a-z0-9-]+))?\s*
                       (?:\(\s*(?P<rel><<|<=|>=|>>|=|<|>)\s*(?P<ver>[^)\s]+)\s*\))?\s*
                       (?:\[(?P<archs>[^\]]*)\])?\s*(?:<[^>]*>\s*)*$""", re.X)
_PRIORITY = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


class ResolveError(Exception):
    pass


@dataclass(frozen=True)
class Atom:
    """One alternative of a dependency: a name, an optional architecture qualifier and an
    optional version constraint."""
    name: str
    arch: str | None = None
    relation: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        text = self.name + (f":{self.arch}" if self.arch else "")
        if self.relation:
            text += f" ({self.relation} {self.version})"
        return text


@dataclass
class Entry:
    """One package of a resolved closure."""
    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    depends: list[str] = field(default_factory=list)
    suite: str = ""

    @property
    def url(self) -> str:
        """Return the `.deb`'s URL relative to the mirror's base."""
        return self.filename


def parse_relations(text: str, arch: str = ARCH) -> list[list[Atom]]:
    """Parse a `Depends`-style field into groups of alternatives; alternatives restricted to
    other architectures (`[!amd64]`, `[i386]`) are dropped, and so are groups left empty."""
    groups = []
    for part in text.split(","):
        if not part.strip():
            continue
        group = []
        for alt in part.split("|"):
            m = _ATOM.match(alt.replace("\n", " "))
            if m is None:
                raise ResolveError(f"cannot parse the dependency '{alt.strip()}'")
            if m.group("archs") is not None and not _arch_matches(m.group("archs"), arch):
                continue
            group.append(Atom(m.group("name"), m.group("arch"), m.group("rel"), m.group("ver")))
        if group:
            groups.append(group)
    return groups


def _arch_matches(spec: str, arch: str) -> bool:
    words = spec.split()
    if all(w.startswith("!") for w in words):
        return ("!" + arch) not in words
    return arch in words or "any" in words


def parse_provides(text: str) -> list[tuple[str, str | None]]:
    """Parse a `Provides` field into (name, version or None)."""
    out = []
    for group in parse_relations(text):
        atom = group[0]
        out.append((atom.name, atom.version if atom.relation == "=" else None))
    return out


class Universe:
    """The installable packages of an archive: native and `all` packages, newest first per name
    (a version listed by several suites is taken from the last, the overriding one), and who
    provides each virtual name."""

    def __init__(self, packages: list[Package], arch: str = ARCH):
        self.arch = arch
        grouped: dict[str, list[Package]] = {}
        for p in packages:
            if p.architecture == arch or p.architecture == "all":
                grouped.setdefault(p.name, []).append(p)
        self.by_name: dict[str, list[Package]] = {}
        for name, group in grouped.items():
            if len(group) == 1:
                self.by_name[name] = group
                continue
            versions: dict[Version, Package] = {}
            for p in group:
                try:
                    versions[Version(p.version)] = p
                except VersionError:
                    continue
            self.by_name[name] = [versions[v] for v in sorted(versions, reverse=True)]
        self.providers: dict[str, list[tuple[Package, str | None]]] = {}
        for candidates in self.by_name.values():
            for p in candidates:
                if p.provides:
                    for name, version in parse_provides(p.provides):
                        self.providers.setdefault(name, []).append((p, version))
        self._relations: dict[int, list[list[Atom]]] = {}

    def relations(self, p: Package) -> list[list[Atom]]:
        """Return the parsed Pre-Depends and Depends of `p` (cached)."""
        key = id(p)
        if key not in self._relations:
            try:
                self._relations[key] = (parse_relations(p.pre_depends, self.arch) +
                                        parse_relations(p.depends, self.arch))
            except ResolveError as e:
                raise ResolveError(f"{p.name} {p.version}: {e}") from None
        return self._relations[key]


class _State:
    def __init__(self):
        self.chosen: dict[str, Package] = {}
        self.edges: dict[str, set[str]] = {}

    def save(self):
        return dict(self.chosen), {k: set(v) for k, v in self.edges.items()}

    def restore(self, saved) -> None:
        self.chosen, self.edges = saved[0], saved[1]


class Resolver:
    """Resolve requests against one Universe."""

    def __init__(self, universe: Universe):
        self.u = universe

    def resolve(self, names: list[str]) -> list[Entry]:
        """Return the closure of the requested packages (`name`, `name=version` or
        `name:arch`), sorted by name; raise ResolveError."""
        state = _State()
        for request in names:
            name, _, version = request.partition("=")
            atom = _request_atom(name.strip(), version.strip() or None)
            self._satisfy(None, [atom], (), state)
        out = []
        for name in sorted(state.chosen):
            p = state.chosen[name]
            out.append(Entry(p.name, p.version, p.architecture, p.filename, p.size, p.sha256,
                             sorted(state.edges[name] - {name}), p.suite))
        return out

    # -- one package and one dependency --

    def _add(self, p: Package, chain: tuple[str, ...], state: _State) -> None:
        state.chosen[p.name] = p
        state.edges[p.name] = set()
        chain = chain + (p.name,)
        for group in self.u.relations(p):
            self._satisfy(p, group, chain, state)

    def _satisfy(self, needer: Package | None, group: list[Atom], chain: tuple[str, ...],
                 state: _State) -> None:
        for atom in group:
            hit = self._chosen_match(atom, state)
            if hit is not None:
                if needer is not None:
                    state.edges[needer.name].add(hit.name)
                return
        options: list[Package] = []
        reasons: list[str] = []
        for atom in group:
            candidates, reason = self._candidates(atom, state)
            if reason:
                reasons.append(reason)
            options += [c for c in candidates if c not in options]
        if not options:
            raise ResolveError(_explain(needer, group, reasons, chain))
        first_error = None
        for candidate in options:
            saved = state.save() if len(options) > 1 else None
            try:
                self._add(candidate, chain, state)
            except ResolveError as e:
                if saved is None:
                    raise
                state.restore(saved)
                first_error = first_error or e
                continue
            if needer is not None:
                state.edges[needer.name].add(candidate.name)
            return
        raise first_error

    def _chosen_match(self, atom: Atom, state: _State) -> Package | None:
        if not self._arch_ok(atom):
            return None
        p = state.chosen.get(atom.name)
        if p is not None and _version_ok(p.version, atom):
            return p
        for provider, version in self.u.providers.get(atom.name, ()):
            if state.chosen.get(provider.name) is provider and _provided_ok(version, atom):
                return provider
        return None

    def _candidates(self, atom: Atom, state: _State) -> tuple[list[Package], str | None]:
        """Return the packages that could satisfy `atom`, in preference order, and why there
        are none (or why the real package could not be used)."""
        if not self._arch_ok(atom):
            return [], f"{atom} is for another architecture than {self.u.arch}"
        real = self.u.by_name.get(atom.name, [])
        providers = self.u.providers.get(atom.name, [])
        if not real and not providers:
            return [], f"{atom} which is not in the archive"
        out: list[Package] = []
        reason = None
        chosen = state.chosen.get(atom.name)
        if chosen is not None:
            reason = f"{atom} but {chosen.name} {chosen.version} was already chosen"
        elif real:
            out = [p for p in real if _version_ok(p.version, atom)]
            if not out:
                have = ", ".join(p.version for p in real)
                reason = f"{atom} but the archive has only {atom.name} {have}"
        matching = [(p, v) for p, v in providers
                    if _provided_ok(v, atom) and state.chosen.get(p.name) is None]
        matching.sort(key=lambda pv: (_PRIORITY.get(pv[0].priority, 5), pv[0].name))
        out += [p for p, _ in matching if p not in out]
        if not out and not reason:
            names = ", ".join(sorted({p.name + (f" (= {v})" if v else "") for p, v in providers}))
            reason = f"{atom} but no package provides a matching version (provided by {names})"
        return out, reason

    def _arch_ok(self, atom: Atom) -> bool:
        return atom.arch in (None, "any", "native", self.u.arch)


def _request_atom(name: str, version: str | None) -> Atom:
    base, _, arch = name.partition(":")
    return Atom(base, arch or None, "=" if version else None, version)


def _version_ok(version: str, atom: Atom) -> bool:
    return atom.relation is None or satisfies(version, atom.relation, atom.version)


def _provided_ok(version: str | None, atom: Atom) -> bool:
    if atom.relation is None:
        return True
    return version is not None and satisfies(version, atom.relation, atom.version)


def _explain(needer: Package | None, group: list[Atom], reasons: list[str],
             chain: tuple[str, ...]) -> str:
    who = needer.name if needer is not None else "the request"
    if needer is None and len(group) == 1 and reasons and reasons[0].endswith("not in the archive"):
        message = f"package '{group[0]}' is not in the archive"
    elif len(reasons) == 1:
        message = f"{who} depends on {reasons[0]}"
    else:
        alts = " | ".join(str(a) for a in group)
        message = f"{who} depends on {alts}, and no alternative can be installed: " + \
            "; ".join(reasons)
    if len(chain) > 1:
        message += f" (dependency chain: {' -> '.join(chain)})"
    return message


def resolve(archive: Archive | list[Package], names: list[str], arch: str = ARCH) -> list[Entry]:
    """Resolve package names against an archive (or a list of packages) to a sorted closure."""
    packages = archive.packages if isinstance(archive, Archive) else archive
    return Resolver(Universe(packages, arch)).resolve(names)
