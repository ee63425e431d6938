"""Conda packages for the image: fetched on the host, verified, installed into /opt/conda offline.

conda-lock.yml pins every package by URL, sha256 and md5. Each file is fetched on the host (file://
or https) into a user cache addressed by sha256, like the pip wheelhouse:

    $ENVBUILD_CACHE_DIR/conda/<sha256>/<filename>

checked against both hashes when it arrives and re-hashed before every build, so a changed byte is
refused (naming the file and both hashes) before docker runs.

The environment is then created ON THE HOST, by py-rattler's installer, in a staging directory of
the build context. rattler installs into one directory while patching another prefix into the
files (`alternative_target_prefix`), so the staged tree is exactly what /opt/conda must hold and the
Dockerfile only copies it. That is simpler than installing inside the build, which would need a
rattler wheel, a local channel and an installer script in the image; here no build step runs a
solver or a conda installer, and the image needs neither conda nor rattler. The lock's `manager:
pip` entries go through the wheelhouse (same cache, hashes from the lock) and are installed in the
build with `pip --python /opt/conda/bin/python --no-index --require-hashes`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from envbuild import artifacts
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import cache_dir
from envbuild.lockfile import CONDA_LOCK, CONDA_SUBDIRS, CondaPackage, read_conda_lock
from envbuild.wheelhouse import Pin, Target, Wheelhouse, canonical, ensure_pins, requirement_line

PREFIX = "/opt/conda"
CONTEXT_DIR = "conda"  # the staged prefix, in the build context
WHEELS_DIR = "conda-wheels"  # the wheels of the pip entries, in the build context
PIP_LOCK = "conda-requirements.lock"  # the pip entries as a hashed requirements file
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CondaLock:
    """conda-lock.yml for one platform: its conda packages, its pip entries, its Python (X.Y)."""

    subdir: str
    packages: list[CondaPackage]
    pip: list[Pin]
    python: str | None


@dataclass(frozen=True)
class CondaFile:
    package: CondaPackage
    path: Path  # inside the cache


@dataclass
class CondaSet:
    lock: CondaLock
    files: list[CondaFile]
    wheels: Wheelhouse | None = None
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    shared: list[CondaPackage] = field(default_factory=list)  # in the team base's prefix: neither fetched nor installed


def conda_dir() -> Path:
    return cache_dir() / "conda"


def describe(pkg: CondaPackage) -> str:
    return f"{pkg.name}={pkg.version}={pkg.build}" if pkg.build else f"{pkg.name}={pkg.version}"


def read(root: Path, platform: str) -> CondaLock:
    """The conda-lock.yml entries for `platform` ("linux/amd64"); each must carry a sha256."""
    subdir = CONDA_SUBDIRS.get(platform, platform)
    entries = read_conda_lock(root, subdir)
    if not entries:
        raise EnvbuildError(f"{Path(root) / CONDA_LOCK}: no packages for {subdir}; run envbuild lock")
    packages, pins, python = [], [], None
    for e in entries:
        if not re.fullmatch(r"[0-9a-f]{64}", str(e.sha256 or "")):
            raise EnvbuildError(f"{Path(root) / CONDA_LOCK}: {e.name} {e.version} has no sha256 hash; run envbuild lock")
        if e.manager == "pip":
            pins.append(Pin(canonical(e.name), e.version, frozenset({e.sha256})))
        else:
            packages.append(e)
            if e.name == "python":
                python = ".".join(e.version.split(".")[:2])
    if pins and python is None:
        raise EnvbuildError(f"{Path(root) / CONDA_LOCK}: pip entries but no python package; "
                            "add - python=3.11 to environment.yml and run envbuild lock")
    return CondaLock(subdir, sorted(packages, key=lambda p: p.name), sorted(pins, key=lambda p: p.name), python)


# --- the cache ---------------------------------------------------------------------------


def _filename(pkg: CondaPackage) -> str:
    name = unquote(urlsplit(pkg.url).path.rsplit("/", 1)[-1])
    if not name.endswith((".conda", ".tar.bz2")) or "/" in name or name.startswith("."):
        raise EnvbuildError(f"{CONDA_LOCK}: {describe(pkg)} has url {pkg.url}, not a .conda or .tar.bz2 file; "
                            "run envbuild lock")
    return name


def _cache_path(pkg: CondaPackage) -> Path:
    return conda_dir() / str(pkg.sha256) / _filename(pkg)


def _fetch(pkg: CondaPackage) -> Path:
    """Download one package into the cache, refusing bytes that do not match the lock's hashes."""
    final = _cache_path(pkg)
    conda_dir().mkdir(parents=True, exist_ok=True)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    # Same filesystem as the cache, so a finished file moves in with a rename.
    fd, tmp = tempfile.mkstemp(prefix="download-", dir=conda_dir())
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(pkg.url, timeout=60) as resp:
            while chunk := resp.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
        for algo, got, want in (("sha256", sha.hexdigest(), pkg.sha256), ("md5", md5.hexdigest(), pkg.md5)):
            if want and got != str(want):
                raise EnvbuildError(f"{pkg.url}: downloaded {algo} is {got} but {CONDA_LOCK} expects {want} for "
                                    f"{describe(pkg)}; the channel served a substituted file", EXIT_FAILURE)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    except (OSError, urllib.error.URLError) as e:
        raise EnvbuildError(f"cannot fetch {describe(pkg)} from {pkg.url}: {e}", EXIT_FAILURE) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def ensure(root: Path, platform: str, *, progress: Callable[[str], None] | None = None,
           in_base: dict[str, str] | None = None) -> CondaSet:
    """Every package of conda-lock.yml for `platform`, verified, in the cache, plus the wheels of its
    pip entries; downloads only what is missing. `in_base` ({name: "version=build"}, a team base's
    packages) are left out: the set's `shared`."""
    lock = read(root, platform)
    in_base = in_base or {}
    shared = [p for p in lock.packages if in_base.get(p.name) == f"{p.version}={p.build or ''}"]
    out = CondaSet(lock, [], shared=shared)
    wanted = [p for p in lock.packages if p not in shared]
    missing = [p for p in wanted if not _cache_path(p).is_file()]
    if missing and progress:
        progress(f"fetching {len(missing)} of {len(wanted)} locked conda packages for {lock.subdir}")
    for pkg in wanted:
        path = _cache_path(pkg)
        if pkg in missing:
            _fetch(pkg)
            out.downloaded.append(describe(pkg))
        else:
            out.cached.append(describe(pkg))
        artifacts.verify(path, str(pkg.sha256), CONDA_LOCK, describe(pkg))  # cached ones too
        out.files.append(CondaFile(pkg, path))
    if lock.pip:
        assert lock.python is not None
        out.wheels = ensure_pins(lock.pip, Target(platform, lock.python), progress=progress)
        out.downloaded += out.wheels.downloaded
        out.cached += out.wheels.cached
    return out


# --- the environment -----------------------------------------------------------------------


def stage(cset: CondaSet, context: Path, *, pth: str) -> None:
    """Create the environment in context/conda (prefix /opt/conda recorded in every file), and put
    the pip entries' wheels and requirements beside it. `pth` is the envbuild runtime's .pth line set."""
    create_prefix(cset, context / CONTEXT_DIR, pth=pth)
    if cset.wheels is not None:
        artifacts.link_into([w.path for w in cset.wheels.wheels], context / WHEELS_DIR)
        (context / PIP_LOCK).write_text("".join(map(requirement_line, cset.lock.pip)))


def create_prefix(cset: CondaSet, dest: Path, *, pth: str) -> None:
    """The conda environment's files, made on the host in `dest` for prefix /opt/conda (no pip entries)."""
    import asyncio

    _portable_meta(dest, asyncio.run(_install(cset, dest)))
    if cset.lock.python:
        site = dest / "lib" / f"python{cset.lock.python}" / "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        (site / "zz-envbuild.pth").write_text(pth)


def _stem(pkg: CondaPackage) -> str:
    return f"{pkg.name}-{pkg.version}-{pkg.build or ''}"


def _base_record(pkg: CondaPackage) -> Any:
    """A lock entry the team base has installed, as the record rattler needs to see it installed
    (its archive is never fetched): name, version, build and hashes are what identify it."""
    from rattler import BuildString, PackageRecord, RepoDataRecord

    channel, subdir, _ = pkg.url.rsplit("/", 2)
    record = PackageRecord(pkg.name, pkg.version, BuildString(pkg.build or ""), 0, subdir,
                           sha256=bytes.fromhex(pkg.sha256) if pkg.sha256 else None,
                           md5=bytes.fromhex(pkg.md5) if pkg.md5 else None)
    return RepoDataRecord(record, _filename(pkg), pkg.url, channel)


async def _install(cset: CondaSet, dest: Path) -> dict[str, CondaPackage]:
    """rattler.install of the verified files; returns {conda-meta file stem: its lock entry}.

    A team base's packages (cset.shared) are passed as installed already: rattler links nothing of
    theirs, yet knows the environment's python (noarch: python packages need it). It re-reads the
    prefix's conda-meta after linking, so their records sit there during the install only."""
    import rattler
    from rattler import PrefixPaths, PrefixRecord, RepoDataRecord

    records, stems = [], {}
    for f in cset.files:
        rec = await RepoDataRecord.from_package_archive(f.path)
        got = (rec.name.normalized, str(rec.version), str(rec.build))
        pkg = f.package
        if got[:2] != (pkg.name, pkg.version) or (pkg.build and got[2] != pkg.build):
            raise EnvbuildError(f"{f.path}: holds {'='.join(got)} but {CONDA_LOCK} names it {describe(pkg)}; "
                                "run envbuild lock", EXIT_FAILURE)
        records.append(rec)
        stems["-".join(got)] = pkg
    base = [_base_record(p) for p in cset.shared]
    installed = [PrefixRecord(r, PrefixPaths()) for r in base]
    placed = [dest / "conda-meta" / f"{_stem(p)}.json" for p in cset.shared]
    for record, path in zip(installed, placed):
        path.parent.mkdir(parents=True, exist_ok=True)
        record.write_to_path(path, pretty=True)
    # The extracted-package cache is per build: nothing outside the verified files feeds the prefix.
    work = conda_dir() / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pkgs-", dir=work) as pkgs:
        await rattler.install(records + base, target_prefix=dest, cache_dir=Path(pkgs),
                              alternative_target_prefix=PREFIX, installed_packages=installed or None,
                              platform=rattler.Subdir(cset.lock.subdir), execute_link_scripts=False,
                              show_progress=False)
    for path in placed:
        path.unlink(missing_ok=True)  # the base's own record stays the one in the image
    return stems


def _portable_meta(dest: Path, stems: dict[str, CondaPackage]) -> None:
    """conda-meta/*.json as the image should hold them: the lock's URL and channel instead of host
    cache paths, no host extraction directory, readable by the image's non-root user."""
    for meta in (dest / "conda-meta").glob("*.json"):
        pkg = stems.get(meta.stem)
        data: dict[str, Any] = json.loads(meta.read_text())
        if pkg is not None:
            data["url"] = pkg.url
            data["channel"] = pkg.url.rsplit("/", 2)[0]
        data.pop("extracted_package_dir", None)
        if isinstance(data.get("link"), dict):
            data["link"].pop("source", None)
        meta.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        meta.chmod(0o644)


# --- the Dockerfile ------------------------------------------------------------------------


def builder_steps(lock: CondaLock, base_python: str) -> str:
    """Builder-stage lines: copy the staged prefix, then install the pip entries offline into it."""
    text = (f"# conda-lock.yml: created on the host by py-rattler from the verified package files, for prefix\n"
            f"# {PREFIX}; here it is only copied.\n"
            f"COPY {CONTEXT_DIR}/ {PREFIX}/\n")
    if lock.pip:
        text += (f"# conda-lock.yml's pip entries: offline into {PREFIX}, pip checks every file's hash.\n"
                 f"COPY {PIP_LOCK} /envbuild/{PIP_LOCK}\n"
                 f"COPY {WHEELS_DIR}/ /envbuild/{WHEELS_DIR}/\n"
                 f"RUN ([ -x /envbuild/pip/bin/pip ] || python{base_python} -m venv /envbuild/pip) \\\n"
                 f" && /envbuild/pip/bin/pip --python {PREFIX}/bin/python install --no-index \\\n"
                 f"        --find-links /envbuild/{WHEELS_DIR} --require-hashes --no-deps -r /envbuild/{PIP_LOCK}\n")
    return text
