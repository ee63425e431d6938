"""Which Python versions a base image carries: asked once per base digest, then cached.

The image's venv is made with `python<X.Y> -m venv` inside the base, so a spec `python` the base
lacks could only fail there, late (exit 127). `envbuild lock` asks first, before resolving anything:
1. the image config from the registry (no pull): a `dev.envbuild.python` label or `PYTHON_VERSION`
   (the official python images set it);
2. else the base itself, run once with no network, listing its `python3.X` interpreters.
The answer is cached in $ENVBUILD_CACHE_DIR/base-python/<manifest digest>.json: a digest never changes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from envbuild.errors import EnvbuildError, SpecError
from envbuild.fsutil import atomic_write_json, cache_dir
from envbuild.lockfile import Base
from envbuild.spec import PYPROJECT, Spec

LABEL = "dev.envbuild.python"
_VERSION = re.compile(r"^(3\.[0-9]{1,2})(?:\.|$)")
_INTERPRETER = re.compile(r"^python(3\.[0-9]{1,2})$")
# every python3.X the image has on its usual paths, one name a line
LIST_SCRIPT = 'for p in /usr/local/bin/python3.* /usr/bin/python3.*; do [ -x "$p" ] && basename "$p"; done; true'


def _cache_file(digest: str) -> Path:
    return cache_dir() / "base-python" / f"{digest.replace(':', '-')}.json"


def from_config(config: dict | None) -> list[str] | None:
    """X.Y from the config's label or PYTHON_VERSION; None when it says neither."""
    inner = (config or {}).get("config") or {}
    label = (inner.get("Labels") or {}).get(LABEL)
    env = dict(e.split("=", 1) for e in inner.get("Env") or [] if "=" in e)
    for value in (label, env.get("PYTHON_VERSION")):
        m = _VERSION.match(value or "")
        if m:
            return [m.group(1)]
    return None


def from_sandbox(ref: str) -> list[str]:
    """Run the base once (no network) and list its python3.X interpreters."""
    from envbuild import engine

    args = engine.run_args(ref, ["-c", LIST_SCRIPT], options=["--entrypoint", "/bin/sh"])
    out = engine.docker(*args, timeout=300).stdout.decode(errors="replace")
    found = {m.group(1) for line in out.split() if (m := _INTERPRETER.match(line.strip()))}
    return sorted(found, key=lambda v: int(v.split(".")[1]))


def base_pythons(base: Base, platform: str) -> list[str]:
    """The Python versions (X.Y) in the locked base for `platform`; cached by manifest digest."""
    from envbuild.registry import image_config

    digest = base.platforms.get(platform) or base.digest
    cached = _cache_file(digest)
    try:
        return list(json.loads(cached.read_text())["pythons"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    pythons = None
    if base.source == "registry":
        pythons = from_config(image_config(base.tag, digest))
    if pythons is None:
        pythons = from_sandbox(base.pinned)
    atomic_write_json(cached, {"base": base.pinned, "platform": platform, "pythons": pythons})
    return pythons


def require_python(spec: Spec, base: Base) -> str | None:
    """Refuse (exit 2) a spec `python` its base does not have; a note when that cannot be told."""
    platform = spec.platforms[0]
    try:
        pythons = base_pythons(base, platform)
    except EnvbuildError as e:
        return f"could not tell which Python {base.pinned} carries ({e}); the build will find out"
    if spec.python in pythons:
        return None
    key = "tool.envbuild.python" if spec.source.name == PYPROJECT else "python"
    has = f"Python {', '.join(pythons)}" if pythons else "no python3.X interpreter"
    fix = (f'set python = "{pythons[-1]}", or ' if pythons else "") + f"pick a base with Python {spec.python}"
    raise SpecError(spec.source, key, f'"{spec.python}" but the base {base.pinned} ({platform}) has {has}', fix)
