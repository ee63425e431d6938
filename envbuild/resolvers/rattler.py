"""py-rattler: solve environment.yml with no conda executable, write conda-lock.yml.

The file is conda-lock's own format (version 1, written by conda_lock's models and writer), so
conda-lock, micromamba and envbuild build all read it. The `pip:` section is resolved with uv
for the solved Python and each platform, and locked as `manager: pip` entries (one artifact,
URL + sha256), as conda-lock does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from envbuild import platforms
from envbuild.fsutil import cache_dir
from envbuild.resolvers import ResolutionError, ResolverInfo
from envbuild.resolvers.conda_env import SUBDIRS, CondaEnv, read_environment

NAME = "rattler"
GLIBC = "2.36"  # Debian bookworm, the bootstrapped base
ARCH = {p.conda: p.machine for p in platforms.ALL}  # conda subdir -> __archspec


def version() -> str:
    from importlib.metadata import version as v

    return v("py-rattler")


def channel_url(channel: str, env_dir: Path) -> str:
    """Channel names pass through; local paths become file:// URLs (relative to environment.yml)."""
    if channel.startswith(("/", "./", "../")):
        return (env_dir / channel).resolve().as_uri()
    return channel


def _virtual_packages(subdir: str) -> list[Any]:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    vp = [("__unix", "0", "0"), ("__linux", "5.10", "0"), ("__glibc", GLIBC, "0"), ("__archspec", "1", ARCH[subdir])]
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in vp]


def _solve(channels: Sequence[str], specs: Sequence[str], subdir: str, constraints: Sequence[str] = ()) -> list[Any]:
    import rattler
    from rattler.exceptions import (FetchRepoDataError, GatewayError, InvalidChannelError, InvalidMatchSpecError,
                                    IoError, SolverError)

    cache = cache_dir() / "rattler"
    gateway = rattler.Gateway(cache_dir=cache)
    virtual = _virtual_packages(subdir)
    try:
        return asyncio.run(rattler.solve(sources=[rattler.Channel(c) for c in channels], specs=list(specs),
                                         gateway=gateway, platforms=[subdir, "noarch"], virtual_packages=virtual,
                                         constraints=list(constraints) or None))
    except SolverError as e:
        msg = " ".join(str(e).split())
        raise ResolutionError(f"conda solve for {subdir} failed: {msg}") from None
    except InvalidMatchSpecError as e:
        raise ResolutionError(f"environment.yml: invalid conda dependency: {e}") from None
    except (FetchRepoDataError, GatewayError, InvalidChannelError, IoError) as e:
        raise ResolutionError(f"conda channel unreachable or invalid ({', '.join(channels)}): "
                              f"{' '.join(str(e).split())[:300]}") from None


def _depends(depends: Sequence[str]) -> dict[str, str]:
    out = {}
    for d in depends:
        name, _, rest = d.strip().partition(" ")
        out[name] = rest.strip() or "*"
    return out


def _content_hash(env: CondaEnv, subdir: str) -> str:
    blob = json.dumps({"channels": env.channels, "specs": env.specs, "pip": env.pip, "platform": subdir},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _conda_entries(records: list[Any], subdir: str) -> list[Any]:
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency

    return [LockedDependency(name=r.name.normalized, version=str(r.version), manager="conda", platform=subdir,
                             dependencies=_depends(r.depends), url=str(r.url),
                             hash=HashModel(md5=r.md5.hex() if r.md5 else None,
                                            sha256=r.sha256.hex() if r.sha256 else None),
                             build=str(r.build), categories={"main"})
            for r in records]


def _target_tags(python: str, subdir: str) -> list[Any]:
    """Wheel tags a CPython `python` on glibc GLIBC / subdir accepts, best first."""
    from packaging import tags

    arch = ARCH[subdir]
    minor = int(GLIBC.split(".")[1])
    plats = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    plats += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]
    ver = tuple(int(x) for x in python.split(".")[:2])
    interp = f"cp{ver[0]}{ver[1]}"
    return [*tags.cpython_tags(ver, abis=[interp], platforms=plats), *tags.compatible_tags(ver, interp, plats)]


def _pick_artifact(pkg: dict[str, Any], ranked: dict[Any, int]) -> dict[str, Any]:
    from packaging.utils import parse_wheel_filename

    best, best_rank = None, None
    for wheel in pkg.get("wheels", []):
        name = wheel.get("name") or wheel["url"].rsplit("/", 1)[-1]
        rank = min((ranked.get(t, 1 << 30) for t in parse_wheel_filename(name)[3]), default=1 << 30)
        if rank < (1 << 30) and (best_rank is None or rank < best_rank):
            best, best_rank = wheel, rank
    best = best or pkg.get("sdist")
    if not best or "url" not in best:
        raise ResolutionError(f"pip package {pkg['name']}=={pkg['version']} has no artifact for this platform "
                              "(and no sdist); pin another version in environment.yml's pip section")
    return best


def _pip_entries(env: CondaEnv, python: str, subdir: str, platform: str, cwd: Path) -> list[Any]:
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency

    from envbuild.resolvers.uv import compile_pylock

    lock = compile_pylock(env.pip, python, platform, cwd)
    ranked = {t: i for i, t in enumerate(_target_tags(python, subdir))}
    entries = []
    for pkg in lock.get("packages", []):
        art = _pick_artifact(pkg, ranked)
        deps = {d["name"]: "*" for d in pkg.get("dependencies", []) if "name" in d}
        entries.append(LockedDependency(name=pkg["name"], version=str(pkg["version"]), manager="pip",
                                        platform=subdir, dependencies=deps, url=art["url"],
                                        hash=HashModel(sha256=art["hashes"]["sha256"]), categories={"main"}))
    return entries


def _python_version(records: list[Any]) -> str:
    for r in records:
        if r.name.normalized == "python":
            return ".".join(str(r.version).split(".")[:2])
    raise ResolutionError("environment.yml has a pip: section but the solve holds no python; add - python=3.11")


def resolve(spec: Any, out_path: Path, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
            previous: Path | None = None, constraints: Sequence[str] = ()) -> ResolverInfo:
    """Solve spec.conda for every platform of the spec and write conda-lock.yml to out_path.

    `constraints` (match specs) hold what the solve may pick without requiring it: a team base's
    pins (envbuild/teambase.py), so a package the project needs comes at the base's build.

    Each run solves afresh to the newest versions (rattler gets no previous pins), so
    `upgrade` and `upgrade_packages` change nothing here.
    """
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import Lockfile, LockMeta
    from conda_lock.models.channel import Channel

    env = read_environment(spec.conda)
    channels = [channel_url(c, spec.conda.parent) for c in env.channels]
    packages: list[Any] = []
    hashes = {}
    for platform in spec.platforms:
        subdir = SUBDIRS[platform]
        records = _solve(channels, env.specs, subdir, constraints)
        packages += _conda_entries(records, subdir)
        if env.pip:
            packages += _pip_entries(env, _python_version(records), subdir, platform, spec.root)
        hashes[subdir] = _content_hash(env, subdir)
    meta = LockMeta(content_hash=hashes, channels=[Channel.from_string(c) for c in channels],
                    platforms=sorted(hashes), sources=[os.path.relpath(spec.conda, spec.root)])
    lockfile = Lockfile(package=packages, metadata=meta)
    lockfile.toposort_inplace()
    write_conda_lock_file(lockfile, out_path, metadata_choices=None)
    return ResolverInfo(NAME, version())
