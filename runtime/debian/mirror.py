"""`mirror://debian/…` and `mirror://debian-security/…`: where a `.deb` is fetched from, decided
when the fetch runs, never when the expression is evaluated.

Derivations name a `.deb` by its pool path (`mirror://debian/pool/main/h/hello/…`) and its
SHA-256, so they contain no host and are the same everywhere; `builtin:fetchurl` asks this module
for the base URLs to try, in order:
- `debian`: `DTX_DEBIAN_MIRROR`, else every `deb` source of the host's apt configuration that is
  not a `-security` suite;
- `debian-security`: `DTX_DEBIAN_SECURITY_MIRROR`, else (with `DTX_DEBIAN_MIRROR`) that mirror's
  `-security` sibling and the mirror itself, else the host's `-security` sources.
The hash check of the fixed-output fetch is what makes the mirror's answer trustworthy.
"""

from __future__ import annotations

import os

from .index import apt_sources

NAMES = ("debian", "debian-security")


class MirrorError(Exception):
    pass


def base_urls(name: str, environ=None, apt_dir: str = "/etc/apt") -> list[str]:
    """Return the archive base URLs that serve the mirror `name`, best first."""
    environ = os.environ if environ is None else environ
    if name not in NAMES:
        raise MirrorError(f"unknown Debian mirror 'mirror://{name}'")
    mirror = (environ.get("DTX_DEBIAN_MIRROR") or "").rstrip("/")
    security = (environ.get("DTX_DEBIAN_SECURITY_MIRROR") or "").rstrip("/")
    if name == "debian-security" and security:
        return [security]
    if mirror:
        return [mirror] if name == "debian" else [mirror + "-security", mirror]
    wanted = name == "debian-security"
    urls = [url.rstrip("/") for url, suite, _ in apt_sources(apt_dir)
            if suite.endswith("-security") == wanted]
    urls = list(dict.fromkeys(urls))
    if not urls:
        raise MirrorError(f"no Debian archive configured for 'mirror://{name}': set "
                          "DTX_DEBIAN_MIRROR (and DTX_DEBIAN_SECURITY_MIRROR) or add apt "
                          f"sources under {apt_dir}")
    return urls


def expand(url: str, environ=None, apt_dir: str = "/etc/apt") -> list[str]:
    """Expand `mirror://debian/rest` (or `debian-security`) into one URL per base."""
    name, _, rest = url[len("mirror://"):].partition("/")
    return [base + "/" + rest for base in base_urls(name, environ, apt_dir)]
