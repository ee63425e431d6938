"""A base image from nothing but a Debian mirror: debootstrap rootfs -> one deterministic layer -> registry.

The origin of every base image when no public registry can be reached (air-gapped sites,
this project's tests). The rootfs tarball is cached by suite, packages, mirror and
architecture, so a second bootstrap skips the slow debootstrap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
APT_SOURCES = Path("/etc/apt")


def host_mirror(apt: Path = APT_SOURCES) -> str:
    """The Debian mirror this host's apt uses, so a site mirror is taken without a flag.

    Reads deb822 `sources.list.d/*.sources`, then one-line `sources.list(.d/*.list)`; the first
    `deb` source whose suites are not only -security or -updates ones wins.
    """
    def main_suite(suites: list[str]) -> bool:
        return any(not re.search(r"-(security|updates|backports)$", s) for s in suites)

    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields = {}
            for line in block.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ")):
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("uris") and main_suite(fields.get("suites", [])):
                return fields["uris"][0].rstrip("/")
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        for line in lines:
            words = re.sub(r"\[[^]]*\]", " ", line).split()  # drop [arch=... signed-by=...]
            if len(words) >= 3 and words[0] == "deb" and main_suite(words[2:3]):
                return words[1].rstrip("/")
    raise EnvbuildError(f"{apt}/sources.list(.d): no Debian mirror configured for apt; "
                        "pass one with --mirror URL (a local mirror for air-gapped sites)")
REQUIRED_PACKAGES = ("python3", "python3-venv", "ca-certificates")  # what envbuild's images need
DEFAULT_REPOSITORY = DEFAULT_BASE.rsplit(":", 1)[0]  # 127.0.0.1:5000/envbuild/base
IMAGE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")

Report = Callable[[str], None]  # step(...) announces a slow step, detail(...) a line within it


@dataclass(frozen=True)
class Bootstrapped:
    reference: str  # the tag pushed, e.g. 127.0.0.1:5000/envbuild/base:bookworm
    digest: str  # sha256:<64 hex>, as the registry answers it
    pinned: str  # name@digest: what a Dockerfile's FROM and a spec's base should carry
    skipped: bool  # the tag was in the registry already; nothing was built
    rootfs_cached: bool = False  # the debootstrap rootfs came from the cache
    mirror: str | None = None  # the Debian mirror debootstrap used (None: nothing was built)


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
        from envbuild import platforms

        name = platforms.host()
        return platforms.get(name).deb if name else os.uname().machine


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


def debootstrap(suite: str, pkgs: tuple[str, ...], mirror: str, rootfs: Path, log: Path, detail: Report,
                arch: str | None = None) -> None:
    """debootstrap --variant=minbase into `rootfs`, its output in `log`, each line to `detail`.
    A foreign `arch` runs its second stage under the host's binfmt emulation (require_emulation)."""
    cmd = [_require_debootstrap(), "--variant=minbase", f"--include={','.join(pkgs)}",
           *([f"--arch={arch}"] if arch else []), suite, str(rootfs), mirror]
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


def rootfs_tarball(suite: str, pkgs: tuple[str, ...], mirror: str, step: Report, detail: Report,
                   arch: str | None = None) -> tuple[Path, bool]:
    """The cached rootfs tarball for these inputs, made first when missing; (path, was cached)."""
    store = cache_dir() / "rootfs"
    store.mkdir(parents=True, exist_ok=True)
    arch = arch or host_arch()
    key = rootfs_key(suite, pkgs, mirror, arch)
    tarball = store / f"{key}.tar"
    if tarball.is_file():
        return tarball, True
    _require_debootstrap()
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
    try:
        foreign = arch != host_arch()
        if foreign:
            require_emulation(arch)
        step(f"debootstrap {suite} {arch} (minbase + {', '.join(pkgs)}; "
             + ("under emulation: several minutes)" if foreign else "about a minute)"))
        debootstrap(suite, pkgs, mirror, work / "rootfs", store / f"{key}.log", detail, arch if foreign else None)
        step("packing the rootfs")
        _slim(work / "rootfs")
        pack_rootfs(work / "rootfs", tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball, False




def require_emulation(arch: str) -> None:
    """A foreign architecture's programs must run here (binfmt_misc + qemu-user-static), or say how."""
    from envbuild import platforms

    plat = platforms.by_deb(arch)
    qemu = plat.qemu if plat else f"qemu-{arch}"
    handler = Path("/proc/sys/fs/binfmt_misc") / qemu
    try:
        enabled = handler.read_text().startswith("enabled")
    except OSError:
        enabled = False
    if not enabled:
        raise EnvbuildError(f"a {arch} base needs {arch} programs to run on this {host_arch()} machine, and no "
                            f"emulation is enabled ({handler}); install it (Debian, as root: apt-get install "
                            f"qemu-user-static binfmt-support; update-binfmts --enable {qemu}) "
                            "and run again")


def platform_arch(platform: str) -> str:
    from envbuild import platforms

    if platform not in platforms.BY_NAME:
        raise EnvbuildError(f"--platform {platform}: envbuild bootstraps {', '.join(platforms.NAMES)}")
    return platforms.get(platform).deb


def bootstrap(push: str | None = None, suite: str = DEFAULT_SUITE, include: Iterable[str] = (),
              mirror: str | None = None, force: bool = False, platforms: Iterable[str] = (),
              step: Report = lambda s: None, detail: Report = lambda s: None) -> Bootstrapped:
    """Build the base image and push it; skip when the registry has the tag already for every platform
    (unless force). Several platforms give an OCI index under the tag."""
    from envbuild.registry import parse_reference, resolve

    ref = target_reference(push, suite)
    name = parse_reference(ref)
    mirror = mirror or host_mirror()
    wanted = list(dict.fromkeys(platforms)) or [f"linux/{host_arch()}"]
    archs = [platform_arch(p) for p in wanted]
    if not force:
        try:  # RegistryError (exit 2) when the registry is down: nothing to push to
            have = resolve(ref, tuple(wanted))
            return Bootstrapped(ref, have.digest, name.pinned(have.digest), skipped=True)
        except RegistryError as e:
            if "unreachable" in str(e):
                raise
    manifests, all_cached = [], True
    for platform, arch in zip(wanted, archs):
        tarball, cached = rootfs_tarball(suite, packages(include), mirror, step, detail, arch)
        all_cached = all_cached and cached
        step(f"writing the {platform} image (one layer, file times clamped to {epoch_of_base()})")
        manifests.append(write_and_push(tarball, name, suite, step, arch, tagged=len(wanted) == 1))
    if len(manifests) == 1:
        digest = manifests[0][0]
    else:
        digest = push_index(name, list(zip(wanted, manifests)), step)
    return Bootstrapped(ref, digest, name.pinned(digest), skipped=False, rootfs_cached=all_cached, mirror=mirror)


def push_index(name, entries: list, step: Report) -> str:
    """An OCI image index naming each platform's manifest, under the tag; its digest."""
    from envbuild.oci import upload
    from envbuild.oci.blobs import Store, digest_of
    from envbuild.oci.config import INDEX_TYPE, MANIFEST_TYPE, canonical

    manifests = []
    for platform, (digest, size) in entries:
        os_, arch = platform.split("/")[:2]
        plat = {"os": os_, "architecture": arch, **({"variant": "v8"} if arch == "arm64" else {})}
        manifests.append({"mediaType": MANIFEST_TYPE, "digest": digest, "size": size, "platform": plat})
    index = canonical({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests})
    step(f"pushing the index of {', '.join(p for p, _ in entries)} to {name}")
    upload.push(Store.default(), name, index, INDEX_TYPE, [], say=step)
    return digest_of(index)


def epoch_of_base() -> int:
    from envbuild.locker import source_date_epoch

    return source_date_epoch()


def _normalise_shadow(entries: list) -> list:
    """/etc/shadow's "last changed" day is the day debootstrap ran: set it to the epoch's day."""
    from dataclasses import replace

    day = str(epoch_of_base() // 86400)
    out = []
    for e in entries:
        if e.path == "etc/shadow" and e.data is not None:
            lines = []
            for line in e.data.decode().splitlines():
                f = line.split(":")
                if len(f) > 2 and f[2]:
                    f[2] = day
                lines.append(":".join(f))
            data = ("\n".join(lines) + "\n").encode()
            e = replace(e, data=data, size=len(data))
        out.append(e)
    return out


def python_label(entries: list) -> dict[str, str]:
    """The base's Python (X.Y) as a config label: `envbuild lock` reads it from the registry instead of
    running the base to find out (envbuild/basepython.py)."""
    from envbuild.basepython import LABEL

    found = sorted({m.group(1) for e in entries if e.kind == "file"
                    and (m := re.fullmatch(r"usr/bin/python(3\.[0-9]+)", e.path.lstrip("./")))},
                   key=lambda v: int(v.split(".")[1]))
    return {LABEL: found[-1]} if found else {}


def write_and_push(tarball: Path, name, suite: str, step: Report, arch: str | None = None,
                   tagged: bool = True) -> tuple[str, int]:
    """The rootfs as a deterministic one-layer OCI image, pushed over the registry API (under the tag,
    or by digest only when an index will name it); (manifest digest, manifest size)."""
    from envbuild.oci import layer, upload
    from envbuild.oci.blobs import Store, digest_of
    from envbuild.oci.config import CONFIG_TYPE, LAYER_GZIP, MANIFEST_TYPE, Blob, ImageConfig, manifest_bytes, timestamp
    from envbuild.oci.gzip import compressor_id

    store, epoch, arch = Store.default(), epoch_of_base(), arch or host_arch()
    with open(tarball, "rb") as f:
        entries = _normalise_shadow(layer.tar_entries(f))
    rootfs = layer.write(entries, store, epoch, f"envbuild base bootstrap {suite}")
    cfg = ImageConfig(architecture=arch, variant="v8" if arch == "arm64" else None,
                      env=dict(e.split("=", 1) for e in IMAGE_ENV), labels=python_label(entries),
                      cmd=["python3"], diff_ids=[rootfs.diff_id],
                      history=[{"created": timestamp(epoch), "created_by": f"envbuild base bootstrap {suite}"}])
    config_bytes = cfg.to_bytes(epoch)
    config = Blob(CONFIG_TYPE, store.put_bytes(config_bytes), len(config_bytes))
    gz_digest, gz_size = store.compressed(rootfs.diff_id, step)
    manifest = manifest_bytes(config, [Blob(LAYER_GZIP, gz_digest, gz_size)],
                              {"dev.envbuild.compressor": compressor_id()})
    digest = digest_of(manifest)
    result = upload.push(store, name, manifest, MANIFEST_TYPE, [gz_digest, config.digest], say=step,
                         reference=None if tagged else digest)
    if result["digest"] != digest:
        raise RegistryError(f"{name}: the registry answered {result['digest']}, envbuild wrote {digest}")
    return digest, len(manifest)
