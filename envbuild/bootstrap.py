"""A base image from nothing but a Debian mirror: debootstrap rootfs -> docker import -> push.

The origin of every base image when no public registry can be reached (air-gapped sites,
this project's tests). The rootfs tarball is cached by suite, packages, mirror and
architecture, so a second bootstrap skips the slow debootstrap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from envbuild.errors import EXIT_FAILURE, EnvbuildError, RegistryError, last_line
from envbuild.fsutil import cache_dir
from envbuild.spec import DEFAULT_BASE, IMAGE_REF

DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
REQUIRED_PACKAGES = ("python3", "python3-venv", "ca-certificates")  # what envbuild's images need
DEFAULT_REPOSITORY = DEFAULT_BASE.rsplit(":", 1)[0]  # 127.0.0.1:5000/envbuild/base
IMAGE_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
                 'CMD ["python3"]')

Report = Callable[[str], None]  # step(...) announces a slow step, detail(...) a line within it


@dataclass(frozen=True)
class Bootstrapped:
    reference: str  # the tag pushed, e.g. 127.0.0.1:5000/envbuild/base:bookworm
    digest: str  # sha256:<64 hex>, as the registry answers it
    pinned: str  # name@digest: what a Dockerfile's FROM and a spec's base should carry
    skipped: bool  # the tag was in the registry already; nothing was built
    rootfs_cached: bool = False  # the debootstrap rootfs came from the cache


def target_reference(push: str | None, suite: str = DEFAULT_SUITE) -> str:
    """The tag to push: --push as given (the suite is the tag when it names none)."""
    ref = push or f"{DEFAULT_REPOSITORY}:{suite}"
    if "@" in ref:
        raise EnvbuildError(f"--push {ref}: a digest cannot be pushed to; give a tag, e.g. {DEFAULT_REPOSITORY}:{suite}")
    if not IMAGE_REF.match(ref):
        raise EnvbuildError(f"--push {ref}: not a valid image reference; use registry/name[:tag], lowercase")
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:{suite}"


def packages(include: Iterable[str] = ()) -> tuple[str, ...]:
    """REQUIRED_PACKAGES plus the extra ones, comma lists split, sorted, without duplicates."""
    extra = {p.strip() for item in include for p in item.split(",") if p.strip()}
    return tuple(sorted(set(REQUIRED_PACKAGES) | extra))


def host_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def rootfs_key(suite: str, pkgs: tuple[str, ...], mirror: str, arch: str) -> str:
    """The cache key of a rootfs tarball: everything that changes what debootstrap installs."""
    blob = json.dumps({"suite": suite, "packages": sorted(pkgs), "mirror": mirror.rstrip("/"), "arch": arch,
                       "variant": "minbase"}, sort_keys=True)
    return f"{suite}-{arch}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _require_debootstrap() -> str:
    path = shutil.which("debootstrap")
    if not path:
        raise EnvbuildError("debootstrap not found; install it (Debian: apt-get install debootstrap, "
                            "or `make docker-up` as root) and run again")
    if os.geteuid() != 0:
        raise EnvbuildError("debootstrap needs root; run `sudo envbuild base bootstrap ...` "
                            "(or as root: make base)")
    return path


def debootstrap(suite: str, pkgs: tuple[str, ...], mirror: str, rootfs: Path, log: Path, detail: Report) -> None:
    """debootstrap --variant=minbase into `rootfs`, its output in `log`, each line to `detail`."""
    cmd = [_require_debootstrap(), "--variant=minbase", f"--include={','.join(pkgs)}", suite, str(rootfs), mirror]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        last = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.strip():
                last = line.strip()
                detail(last)
        rc = proc.wait()
    if rc != 0:
        raise EnvbuildError(f"debootstrap {suite} failed (exit {rc}): {last}; full log: {log}", EXIT_FAILURE)


def _slim(rootfs: Path) -> None:
    """Drop what only debootstrap needed: downloaded .debs and apt's package lists."""
    for d in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
        for p in d.glob("*"):
            if p.is_file() and p.name != "lock":
                p.unlink()
    for p in (rootfs / "var/cache/apt").glob("*.bin"):
        p.unlink()


def pack_rootfs(rootfs: Path, tarball: Path) -> None:
    """Tar the rootfs reproducibly: sorted entries, numeric owners, no atime/ctime, no /dev nodes."""
    tmp = tarball.with_name(f".{tarball.name}.{os.getpid()}.tmp")
    cmd = ["tar", "--sort=name", "--numeric-owner", "--format=posix", "--xattrs",
           "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
           "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-C", str(rootfs), "-cf", str(tmp), "."]
    if os.environ.get("SOURCE_DATE_EPOCH"):
        cmd[1:1] = [f"--mtime=@{os.environ['SOURCE_DATE_EPOCH']}", "--clamp-mtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EnvbuildError(f"tar of {rootfs} failed: {last_line(proc.stderr, f'exit {proc.returncode}')}", EXIT_FAILURE)
    os.replace(tmp, tarball)


def rootfs_tarball(suite: str, pkgs: tuple[str, ...], mirror: str, step: Report, detail: Report) -> tuple[Path, bool]:
    """The cached rootfs tarball for these inputs, made first when missing; (path, was cached)."""
    store = cache_dir() / "rootfs"
    store.mkdir(parents=True, exist_ok=True)
    key = rootfs_key(suite, pkgs, mirror, host_arch())
    tarball = store / f"{key}.tar"
    if tarball.is_file():
        return tarball, True
    _require_debootstrap()
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
    try:
        step(f"debootstrap {suite} (minbase + {', '.join(pkgs)}; about a minute)")
        debootstrap(suite, pkgs, mirror, work / "rootfs", store / f"{key}.log", detail)
        step("packing the rootfs")
        _slim(work / "rootfs")
        pack_rootfs(work / "rootfs", tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball, False


def bootstrap(push: str | None = None, suite: str = DEFAULT_SUITE, include: Iterable[str] = (),
              mirror: str = DEFAULT_MIRROR, force: bool = False,
              step: Report = lambda s: None, detail: Report = lambda s: None) -> Bootstrapped:
    """Build the base image and push it; skip when the registry has the tag already (unless force)."""
    from envbuild.engine import docker, require_engine
    from envbuild.registry import manifest_digest, parse_reference

    ref = target_reference(push, suite)
    name = parse_reference(ref)
    if not force:
        digest = manifest_digest(ref)  # RegistryError (exit 2) when the registry is down: nothing to push to
        if digest:
            return Bootstrapped(ref, digest, name.pinned(digest), skipped=True)
    require_engine()
    tarball, cached = rootfs_tarball(suite, packages(include), mirror, step, detail)
    step(f"docker import -> {ref}")
    changes = [a for c in IMAGE_CHANGES for a in ("--change", c)]
    docker("import", *changes, "--message", f"envbuild base bootstrap {suite}", str(tarball), ref)
    step(f"docker push {ref}")
    docker("push", ref)
    digest = manifest_digest(ref)
    if not digest:
        raise RegistryError(f"{ref}: pushed, but the registry does not list the tag; check the registry's log")
    return Bootstrapped(ref, digest, name.pinned(digest), skipped=False, rootfs_cached=cached)
