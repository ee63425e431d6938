"""The package indexes a resolver used, fit for envbuild.lock: no credential, no machine path.

pip-tools reads pip's configuration (files and PIP_* variables: `pip config list`); uv reads
its own UV_* variables. Local indexes (file:// URLs, directories) are recorded as "local", never
by path, because another machine cannot reach them anyway.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

PYPI = "https://pypi.org/simple"
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
    """pip's effective settings (last one wins, as in pip): {"index-url": ..., ...}."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^[^.]*\.([\w-]+)='(.*)'$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def pip_index_urls() -> list[str]:
    """pip's index URLs as configured (credentials included: never record these)."""
    cfg = _pip_config()
    return [u for u in [cfg.get("index-url") or PYPI, *cfg.get("extra-index-url", "").split()] if u]


def pip_indexes() -> list[str]:
    return _unique(public_url(u) for u in pip_index_urls())


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
    env = os.environ
    default = env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or PYPI
    extra = (env.get("UV_INDEX", "") + " " + env.get("UV_EXTRA_INDEX_URL", "")).split()
    # UV_INDEX entries may be "name=url"
    return _unique(public_url(u.split("=", 1)[-1] if "=" in u.split("://")[0] else u) for u in [*extra, default])


def indexes_for(resolver: str) -> list[str]:
    return uv_indexes() if resolver == "uv" else pip_indexes()


def _unique(items) -> list[str]:  # type: ignore[no-untyped-def]
    return list(dict.fromkeys(items))
