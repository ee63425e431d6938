"""System packages (apt): pinned against the locked base at lock time, installed offline at build time.

Why this design: the only trustworthy answer to "which .debs must be installed, at which
versions" is apt's own, computed against the base image's dpkg status and apt sources. So
`envbuild lock` runs the digest-pinned base once, as root, with `--network host` (containers
here cannot do TLS; Debian's archive is served over http, and apt itself checks the InRelease
signature and every index and file hash):

    apt-get update                       lists kept in $ENVBUILD_CACHE_DIR/apt-lists/<platform>
    apt-get install -s PKGS              what to install, in apt's order: `Inst name (version ... [arch])`
    apt-cache show name=version ...      Filename and SHA256 from the signed Packages index
    apt-get install --print-uris ...     where each file lives (recorded: any host can fetch it)
    apt-get install --download-only ...  the files themselves, into a mounted directory

The host hashes every downloaded file against the index's SHA256 and moves it into the cache,
$ENVBUILD_CACHE_DIR/debs/<sha256>/<file>, so the first build downloads nothing. This is the only
step that uses the network. At build time the host fetches what the cache lacks (by the recorded
URL), verifies every file against system-packages.lock, puts exactly those files in the build
context, and the final stage checks them again (`sha256sum -c`) and installs them with apt with
no sources configured, under `docker build --network none`.

system-packages.lock, canonical JSON, governed by envbuild.lock (its sha256 there):
{
  "version": 1,
  "requested": ["jq"],                                 # the spec's system-packages
  "platforms": {
    "linux/amd64": {
      "base": "sha256:...",                            # the image apt resolved against
      "in_base": {"python3": "3.11.2-1+b1"},           # requested, already in the base
      "packages": [{"name": "libonig5", "version": "6.9.8-1", "architecture": "amd64",
                    "filename": "libonig5_6.9.8-1_amd64.deb", "size": 187828,
                    "sha256": "<hex>", "url": "<the base's apt mirror>/pool/main/..."}]
    }
  }
}
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from envbuild import artifacts, engine
from envbuild.errors import EXIT_FAILURE, EnvbuildError, SpecError
from envbuild.fsutil import atomic_write_json, sha256_file
from envbuild.lockfile import SYSTEM_PACKAGES_LOCK, Base, EnvLock, check_fields, lock_inputs, printable
from envbuild.spec import PYPROJECT, Spec

FORMAT_VERSION = 1
KIND = "debs"  # the artifact cache's directory
CONTEXT_DIR = "debs"  # in the build context
TIMEOUT = 60
Step = Callable[[str], None]

# Runs inside the base image at lock time; "$@" are the spec's package names.
# Exit codes tell the host which phase failed: 90 update, 91 resolve, 92 index, 93 download.
APT_SCRIPT = r"""
set -u
command -v apt-get >/dev/null 2>&1 || { echo "apt-get not found" >&2; exit 127; }
O="-o APT::Sandbox::User=root -o Acquire::Languages=none -o Acquire::GzipIndexes=true"
mkdir -p /var/lib/apt/lists/partial /out/debs/partial
apt-get update -q $O -o APT::Update::Error-Mode=any >/out/update.log 2>&1 || { tail -n 5 /out/update.log >&2; exit 90; }
apt-get install -s -q $O --no-install-recommends "$@" >/out/simulate.txt 2>/out/simulate.err \
  || { cat /out/simulate.txt /out/simulate.err >&2; exit 91; }
set -- $(awk '/^Inst /{v=$3; if (v ~ /^\[/) v=$4; sub(/^\(/, "", v); print $2 "=" v}' /out/simulate.txt)
if [ $# -gt 0 ]; then
  apt-cache show $O "$@" >/out/show.txt 2>/out/show.err || { cat /out/show.err >&2; exit 92; }
  A="$O --no-install-recommends -o Dir::Cache::archives=/out/debs"
  apt-get install -qq $A --print-uris "$@" >/out/uris.txt 2>/out/uris.err || { cat /out/uris.err >&2; exit 92; }
  apt-get install -y -q $A --download-only "$@" >/out/download.log 2>&1 || { tail -n 5 /out/download.log >&2; exit 93; }
fi
chown -R "$HOST_IDS" /out /var/lib/apt/lists
"""

# The final stage's install step: exactly the locked files, checked again, apt with no sources.
DOCKERFILE_STEP = """\
# System packages: exactly the .deb files of system-packages.lock (verified on the host and again
# here), installed by apt with no sources configured: nothing is downloaded.
COPY {ctx}/ /tmp/envbuild-debs/
RUN cd /tmp/envbuild-debs && sha256sum --check --strict --quiet SHA256SUMS \\
 && mkdir sources.list.d && touch sources.list \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-remove \\
        -o Dir::Etc::SourceList=/tmp/envbuild-debs/sources.list \\
        -o Dir::Etc::SourceParts=/tmp/envbuild-debs/sources.list.d /tmp/envbuild-debs/*.deb \\
 && rm -rf /tmp/envbuild-debs /var/cache/apt/*.bin
"""


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    architecture: str
    filename: str  # the pool file's name, e.g. jq_1.6-2.1+deb12u2_amd64.deb
    size: int
    sha256: str  # from the archive's signed Packages index
    url: str

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


@dataclass
class PlatformPackages:
    base: str  # the digest apt resolved against
    packages: list[Deb] = field(default_factory=list)  # apt's install order
    in_base: dict[str, str] = field(default_factory=dict)


@dataclass
class SystemLock:
    requested: list[str]
    platforms: dict[str, PlatformPackages]
    version: int = FORMAT_VERSION

    def versions(self) -> dict[str, str]:
        """{name: version} of every .deb installed, for envbuild.lock `system_packages`."""
        return {d.name: d.version for p in self.platforms.values() for d in p.packages}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SystemLock":
        """From a parsed system-packages.lock; ValueError naming the first field that is not as written."""
        check_fields(d, {"version": "int", "requested": "[str]", "platforms": "{}"})
        plats = {}
        for k, v in d["platforms"].items():
            where = f"platforms.{printable(k)}."
            check_fields(v, {"base": "str", "packages": "[]"}, {"in_base": "{str}"}, where)
            debs = [Deb(**check_fields(x, _DEB_FIELDS, where=f"{where}packages[{i}].")) for i, x in enumerate(v["packages"])]
            plats[k] = PlatformPackages(v["base"], debs, dict(v.get("in_base", {})))
        return cls(list(d["requested"]), plats, d["version"])


_DEB_FIELDS = {"name": "str", "version": "str", "architecture": "str", "filename": "str", "size": "int",
               "sha256": "str", "url": "str"}


# A pool file's own name (no directory, no leading dot): it becomes a path in the cache and the build
# context, so "../x" or "a/b" must never get that far. sha256 names a cache directory: 64 hex.
_DEB_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.~_%-]*\.deb$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_system_lock(root: Path) -> SystemLock:
    path = Path(root) / SYSTEM_PACKAGES_LOCK
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("version") != FORMAT_VERSION:
            raise ValueError(f"format version {data.get('version')!r} is not {FORMAT_VERSION}")
        lock = SystemLock.from_dict(data)
    except FileNotFoundError:
        raise EnvbuildError(f"{path}: missing; run envbuild lock") from None
    except (ValueError, TypeError, KeyError) as e:
        raise EnvbuildError(f"{path}: not a valid {SYSTEM_PACKAGES_LOCK} ({e}); run envbuild lock --upgrade") from None
    for platform, plat in lock.platforms.items():
        for i, deb in enumerate(plat.packages):
            key = f"platforms.{printable(platform)}.packages[{i}]"
            if not _DEB_FILENAME.match(deb.filename):
                raise EnvbuildError(f"{path}: {key}.filename: {deb.filename!r} is not a plain .deb file name; "
                                    "the file was edited: restore it from git or run envbuild lock --upgrade")
            if not _SHA256.match(deb.sha256):
                raise EnvbuildError(f"{path}: {key}.sha256: {deb.sha256!r} is not 64 lowercase hex digits; "
                                    "the file was edited: restore it from git or run envbuild lock --upgrade")
    return lock


# --- lock time: apt inside the base --------------------------------------------------------


_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)", re.M)
_IN_BASE = re.compile(r"^(\S+) is already the newest version \(([^)]+)\)", re.M)


def parse_simulate(text: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """`apt-get install -s` output -> ([(name, version, arch)] in install order, {name: version in base})."""
    return _INST.findall(text), dict(_IN_BASE.findall(text))


def parse_paragraphs(text: str) -> list[dict[str, str]]:
    """Deb822 paragraphs (apt-cache show); continuation lines are dropped (no field we read has any)."""
    out, para = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if para:
                out.append(para)
            para = {}
        elif not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            para[key] = value.strip()
    return out


def parse_uris(text: str) -> dict[str, str]:
    """`apt-get --print-uris` lines ('URL' file size hash) -> {pool file name: URL, credentials dropped}."""
    out = {}
    for m in re.finditer(r"^'([^']+)' ", text, re.M):
        url = re.sub(r"//[^/@]*@", "//", m.group(1))
        out[urllib.parse.unquote(url.rsplit("/", 1)[1])] = url
    return out


def _spec_key(spec: Spec) -> str:
    return "tool.envbuild.system-packages" if spec.source.name == PYPROJECT else "system-packages"


def apt_error(spec: Spec, ref: str, platform: str, code: int, output: str) -> EnvbuildError:
    """One clear line for a failed lock-time apt run (exit 2: the user must fix something)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit {code}"
    where = f"the Debian archive of {ref} ({platform})"
    if code == 91:
        m = re.search(r"Unable to locate package (\S+)", output)
        if m:
            return SpecError(spec.source, _spec_key(spec), f"no Debian package named {m.group(1)!r} in {where}",
                             f"fix the name (`apt-cache search {m.group(1)}` lists candidates) or remove it")
        m = re.search(r"Version '([^']+)' for '([^']+)' was not found", output)
        if m:
            return SpecError(spec.source, _spec_key(spec), f"{m.group(2)}={m.group(1)}: no such version in {where}",
                             f"drop the pin or use a version that `apt-cache policy {m.group(2)}` lists")
        m = re.search(r"Package '?([^' ]+)'? has no installation candidate", output)
        if m:
            return SpecError(spec.source, _spec_key(spec), f"{m.group(1)!r} has no installable version in {where}",
                             "it is virtual or removed: name a real package instead")
        deps = [ln for ln in lines if " : " in ln or ln.startswith("Depends:")]
        return SpecError(spec.source, _spec_key(spec), f"apt cannot install them on {ref}: "
                         + "; ".join(deps or [last]), "remove or change the package that conflicts")
    if code == 127 and "apt-get not found" in output:
        return SpecError(spec.source, _spec_key(spec), f"the base {ref} has no apt-get",
                         "system-packages need a Debian or Ubuntu base")
    if code == 90:
        return EnvbuildError(f"{where} could not be reached (apt-get update: {last}); system packages are "
                             "resolved at lock time over the network (docker run --network host)")
    if code in (92, 93):
        return EnvbuildError(f"apt-get could not {'download' if code == 93 else 'read'} the packages from {where}: "
                             f"{last}")
    return EnvbuildError(f"could not run {ref} for {platform} to resolve system packages ({last}); "
                         "the engine must be able to run that platform's image")


def resolve_platform(spec: Spec, base: Base, platform: str, step: Step = lambda m: None) -> PlatformPackages:
    """Run apt in the base for one platform; store every .deb, checked against the index, in the cache."""
    ref = base.pinned
    digest = base.platforms.get(platform, base.digest)
    # apt's lists are a cache of the archive's signed index, refreshed by every update: one per platform.
    lists = artifacts.kind_dir("apt-lists") / platform.replace("/", "-")
    lists.mkdir(parents=True, exist_ok=True)
    artifacts.kind_dir(KIND).mkdir(parents=True, exist_ok=True)
    step(f"Resolving {len(spec.system_packages)} system packages with apt in {ref} ({platform})")
    with tempfile.TemporaryDirectory(prefix="apt-", dir=artifacts.kind_dir(KIND)) as tmp:
        out = Path(tmp)
        options = ["--platform", platform, "--user", "0:0", "-e", f"HOST_IDS={os.getuid()}:{os.getgid()}",
                   "-v", f"{out}:/out", "-v", f"{lists}:/var/lib/apt/lists", "--entrypoint", "/bin/sh"]
        proc = engine.docker(*engine.run_args(ref, ["-c", APT_SCRIPT, "sh", *spec.system_packages], network="host",
                                              options=options), check=False)
        if proc.returncode != 0:
            raise apt_error(spec, ref, platform, proc.returncode, proc.stderr.decode(errors="replace"))
        inst, in_base = parse_simulate((out / "simulate.txt").read_text())
        if not inst:
            return PlatformPackages(digest, [], in_base)
        index = {(p["Package"], p["Version"]): p for p in parse_paragraphs((out / "show.txt").read_text())}
        urls = parse_uris((out / "uris.txt").read_text())
        files = {sha256_file(f): f for f in (out / "debs").glob("*.deb")}
        packages = []
        for name, version, arch in inst:
            para = index.get((name.split(":")[0], version))
            if para is None or "SHA256" not in para:
                raise EnvbuildError(f"apt-cache show gave no SHA256 for {name}={version} in {ref}", EXIT_FAILURE)
            sha, filename = para["SHA256"], para["Filename"].rsplit("/", 1)[-1]
            if not _DEB_FILENAME.match(filename):
                raise EnvbuildError(f"apt's index names {para['Filename']!r} for {name}={version}, not a plain "
                                    ".deb file; check the base's apt sources", EXIT_FAILURE)
            got = files.pop(sha, None)
            if got is None:  # apt checks hashes itself: this would mean the index and file disagree
                raise EnvbuildError(f"apt downloaded no file with the index's sha256 {sha} for {name}={version}",
                                    EXIT_FAILURE)
            artifacts.store(KIND, got, sha, filename)
            packages.append(Deb(name, version, arch, filename, int(para.get("Size", 0)), sha, urls.get(filename, "")))
        return PlatformPackages(digest, packages, in_base)


def lock_system_packages(spec: Spec, base: Base, previous: EnvLock | None, upgrade: bool,
                         upgrade_packages: Sequence[str], dest: Path, step: Step = lambda m: None) -> dict[str, str]:
    """Write system-packages.lock to `dest`; return {name: version} for envbuild.lock.

    The previous lock is kept while the package list, base digest and platforms are unchanged
    (re-locking the Python side must not move apt versions); --upgrade, or --upgrade-package
    naming a system package, resolves again."""
    if not spec.system_packages:
        return {}
    old = Path(spec.root) / SYSTEM_PACKAGES_LOCK
    named = {p.split("=")[0] for p in spec.system_packages} & set(upgrade_packages)
    if (previous is not None and not upgrade and not named and previous.base.digest == base.digest
            and previous.platforms == list(spec.platforms)
            and previous.inputs.get("system packages") == lock_inputs(spec)["system packages"]
            and old.is_file() and sha256_file(old) == previous.lockfiles.get(SYSTEM_PACKAGES_LOCK)):
        shutil.copy2(old, dest)
        return dict(previous.system_packages)
    lock = SystemLock(list(spec.system_packages),
                      {p: resolve_platform(spec, base, p, step) for p in spec.platforms})
    atomic_write_json(dest, lock.to_dict())
    return lock.versions()


# --- build time: the verified .debs on the host -------------------------------------------


@dataclass
class DebSet:
    files: list[tuple[Deb, Path]]
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)


def _fetch(deb: Deb) -> Path:
    """Download one locked .deb by its recorded URL into the cache, refusing other bytes. The
    download goes to a temp file beside the cache, removed whatever fails (part-way included)."""
    tmpdir = artifacts.kind_dir(KIND)
    tmpdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="fetch-")
    try:
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(deb.url, timeout=TIMEOUT) as r:
                shutil.copyfileobj(r, f)
                promised = r.headers.get("Content-Length") if r.headers else None
                if promised and promised.isdigit() and f.tell() != int(promised):
                    raise EnvbuildError(f"{deb}: the download of {deb.url} was cut short ({f.tell()} of "
                                        f"{promised} bytes); run envbuild build again")
        except urllib.error.HTTPError as e:
            raise EnvbuildError(f"{deb} ({deb.url}): the archive answered {e.code}; superseded versions leave "
                                "Debian's archive: run envbuild lock --upgrade to lock the current ones") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            raise EnvbuildError(f"{deb}: cannot download {deb.url} ({getattr(e, 'reason', e)})") from None
        sha = sha256_file(Path(tmp))
        if sha != deb.sha256:
            raise EnvbuildError(f"{deb.filename}: downloaded sha256 is {sha} but {SYSTEM_PACKAGES_LOCK} expects "
                                f"{deb.sha256} for {deb}; the archive served a substituted file", EXIT_FAILURE)
        return artifacts.store(KIND, Path(tmp), sha, deb.filename)
    finally:
        if os.path.exists(tmp):  # stored: renamed away; anything else: a partial or refused file
            os.unlink(tmp)


def ensure(root: Path, platform: str, progress: Step | None = None) -> DebSet:
    """Every locked .deb for `platform`, verified, in the cache; downloads only what is missing."""
    lock = read_system_lock(root)
    plat = lock.platforms.get(platform)
    if plat is None:
        raise EnvbuildError(f"{Path(root) / SYSTEM_PACKAGES_LOCK} has no packages for {platform}; "
                            f"add it to platforms and run envbuild lock")
    out = DebSet([])
    for deb in plat.packages:
        path = artifacts.path_for(KIND, deb.sha256, deb.filename)
        if path.is_file():
            out.cached.append(str(deb))
        else:
            if progress:
                progress(f"downloading {deb.filename}")
            path = _fetch(deb)
            out.downloaded.append(str(deb))
        out.files.append((deb, path))
    for deb, path in out.files:  # cached ones too: refuse before anything is built
        artifacts.verify(path, deb.sha256, SYSTEM_PACKAGES_LOCK, str(deb))
    return out


def add_to_context(debs: DebSet, context: Path) -> None:
    """The .debs and their SHA256SUMS (checked again inside the build) under context/debs/."""
    dest = context / CONTEXT_DIR
    artifacts.link_into((p for _, p in debs.files), dest)
    (dest / "SHA256SUMS").write_text("".join(f"{d.sha256}  {p.name}\n" for d, p in debs.files))


def dockerfile_step(lock: EnvLock) -> str:
    """The final stage's install step; empty when the lock installs no system package."""
    return DOCKERFILE_STEP.format(ctx=CONTEXT_DIR) if lock.system_packages else ""
