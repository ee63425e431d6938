"""The package indexes a resolver used, fit for envbuild.lock: no credential, no machine path.

pip-tools reads pip's configuration (files and PIP_* variables: `pip config list`); uv reads
its own UV_* variables. `Sources` is what both `envbuild lock` and the wheelhouse's `pip download`
are given, so the two always see the same indexes and find-links. Local indexes (file:// URLs, directories) are recorded as "local", never
by path, because another machine cannot reach them anyway.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit



def default_index() -> str:
    """pip's built-in default index (uv's is the same): taken from pip, not spelled out here."""
    from pip._internal.models.index import PyPI

    return PyPI.simple_url
LOCAL = "local"


def public_url(url: str) -> str:
    """`url` without user, password or token; "local" for file:// URLs and plain paths."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return LOCAL
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _pip_config() -> dict[str, str]:
    """pip's effective settings (files, then PIP_* variables; the last one wins, as in pip)."""
    try:  # in-process: pip-compile runs this same pip, and a `pip config list` costs a second start-up
        from pip._internal.configuration import Configuration

        conf = Configuration(isolated=False)
        conf.load()
        items = list(conf.items())
    except Exception:  # pip internals moved: ask the CLI
        proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
        items = [tuple(line.split("=", 1)) for line in proc.stdout.splitlines() if "=" in line]  # type: ignore[misc]
        items = [(k, v.strip().strip("'")) for k, v in items]
    return {key.rsplit(".", 1)[-1]: value for key, value in items}


def pip_index_urls() -> list[str]:
    """pip's index URLs as configured (credentials included: never record these)."""
    cfg = _pip_config()
    return [u for u in [cfg.get("index-url") or default_index(), *cfg.get("extra-index-url", "").split()] if u]


def unreachable(urls: list[str], timeout: float = 5) -> list[str]:
    """The remote indexes among `urls` that do not answer at all (any HTTP answer counts as up)."""
    import urllib.error
    import urllib.request

    down = []
    for url in urls:
        if public_url(url) == LOCAL:
            continue
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        except urllib.error.HTTPError:
            pass
        except (urllib.error.URLError, OSError):
            down.append(public_url(url))
    return down


def uv_indexes() -> list[str]:
    return uv_sources().public()


def _unique(items) -> list[str]:  # type: ignore[no-untyped-def]
    return list(dict.fromkeys(items))


# --- the sources lock and fetch share ------------------------------------------------------
#
# The host's pip configuration holds more than sources: constraint and requirement files,
# upgrade and binary-selection settings. `pip download` obeyed a constraint that the lock had not
# seen (ResolutionImpossible, no package named), so pip runs with none of it: PIP_CONFIG_FILE is
# os.devnull (pip then reads no config file), no PIP_* variable is inherited, and only where
# packages come from and how to reach them is passed back.

SOURCE_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")
TRANSPORT_KEYS = ("cert", "client-cert", "trusted-host", "proxy", "timeout", "default-timeout", "retries",
                  "keyring-provider", "disable-pip-version-check")


@dataclass(frozen=True)
class Sources:
    """Where packages come from: index URLs (credentials kept: never record these), find-links."""

    index_url: str | None = None  # None: the resolver's default (the public index)
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    transport: tuple[tuple[str, str], ...] = ()  # pip settings: cert, proxy, timeout ...

    def plus(self, index_urls: Sequence[str] = (), find_links: Sequence[str] = ()) -> "Sources":
        return replace(self, extra_index_urls=(*self.extra_index_urls, *index_urls),
                       find_links=(*self.find_links, *find_links))

    def merged(self, over: "Sources") -> "Sources":
        """These sources with `over`'s laid on top: its index replaces ours, its extras and links add."""
        return replace(self.plus(over.extra_index_urls, over.find_links), index_url=over.index_url or self.index_url,
                       no_index=self.no_index or over.no_index)

    def public(self) -> list[str]:
        """For envbuild.lock: no credential, local ones as "local"."""
        urls = [] if self.no_index else [self.index_url or default_index()]
        return _unique(public_url(u) for u in [*urls, *self.extra_index_urls, *self.find_links])

    def pip_env(self) -> dict[str, str | None]:
        """Overlay for a pip / pip-compile process: these sources and nothing else from the host."""
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        for key, value in self.transport:
            env["PIP_" + key.upper().replace("-", "_")] = value
        return {**env, **self._vars("PIP_", " ")}

    def uv_env(self) -> dict[str, str | None]:
        """Overlay for uv (which reads no pip configuration)."""
        transport = dict(self.transport)
        carried = {"SSL_CERT_FILE": transport.get("cert"), "HTTPS_PROXY": transport.get("proxy"),
                   "UV_HTTP_TIMEOUT": transport.get("timeout") or transport.get("default-timeout")}
        # pip takes the best version across every index and find-links; so must uv, or the pins differ.
        # uv then takes a version's files from the first index that has it, and puts extra indexes
        # before the default one: so pip's own order goes into UV_INDEX (the primary first), or a
        # partial local mirror listed as an extra would hide the primary's other platforms' wheels;
        # the primary is uv's default index too, so uv never looks where pip would not
        indexes = [] if self.no_index else [self.index_url or default_index(), *self.extra_index_urls]
        own = {k: v for k, v in self._vars("UV_", ",").items() if k in ("UV_FIND_LINKS", "UV_NO_INDEX")}
        return {**{k: None for k in UV_SOURCE_VARS}, "UV_INDEX_STRATEGY": "unsafe-best-match",
                **{k: v for k, v in carried.items() if v}, **own,
                **({"UV_INDEX": " ".join(indexes), "UV_DEFAULT_INDEX": indexes[0]} if indexes else {})}

    def _vars(self, prefix: str, links_sep: str) -> dict[str, str | None]:
        """The source variables pip and uv share the names of (PIP_INDEX_URL, UV_INDEX_URL ...)."""
        values = {"INDEX_URL": self.index_url, "EXTRA_INDEX_URL": " ".join(self.extra_index_urls),
                  "FIND_LINKS": links_sep.join(self.find_links), "NO_INDEX": "1" if self.no_index else ""}
        return {prefix + k: v for k, v in values.items() if v}


UV_SOURCE_VARS = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX")


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def pip_sources() -> Sources:
    """The sources and transport settings of pip's configuration (files, then PIP_* variables)."""
    cfg = _pip_config()
    return Sources(cfg.get("index-url") or None, tuple(cfg.get("extra-index-url", "").split()),
                   tuple(cfg.get("find-links", "").split()), _truthy(cfg.get("no-index", "")),
                   tuple((k, cfg[k]) for k in TRANSPORT_KEYS if k in cfg))


def uv_sources() -> Sources:
    """The sources uv reads from its UV_* variables."""
    env = os.environ
    extra = [u.split("=", 1)[-1] if "=" in u.split("://")[0] else u for u in env.get("UV_INDEX", "").split()]
    return Sources(env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or None,
                   (*extra, *env.get("UV_EXTRA_INDEX_URL", "").split()),
                   tuple(f for f in re.split(r"[,\s]+", env.get("UV_FIND_LINKS", "")) if f),
                   _truthy(env.get("UV_NO_INDEX", "")))


def sources_for(spec: Any) -> Sources:
    """The one source list both `envbuild lock` and the wheelhouse use for a spec: pip's configuration
    (what the host already has), with uv's UV_* variables laid over it when uv locks, plus the spec's
    torch source. So pip-tools and uv see the same indexes and find-links, and lock the same pins."""
    from envbuild.cuda import torch_source
    from envbuild.resolvers import pip_resolver_name

    base = pip_sources()
    if pip_resolver_name(spec)[0] == "uv":
        base = base.merged(uv_sources())
    index, links = torch_source(spec)
    return base.plus(index, links)
