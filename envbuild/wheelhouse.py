"""The wheelhouse: exactly the locked wheels for the image's platform, fetched on the host.

Builds have no network, so every artifact the image installs is downloaded here first with
`pip download --require-hashes --only-binary :all: --platform ...`, checked against the lock's
hashes, and kept in a user cache addressed by sha256:

    $ENVBUILD_CACHE_DIR/wheels/<sha256>/<filename>           the artifact itself
    $ENVBUILD_CACHE_DIR/wheels/chosen/<target>/<name>-<version>.json
                                                             which artifact pip chose for a target

so a second project with the same pins downloads nothing, and a changed pin downloads only
itself. Every cached file is re-hashed before it goes into a build: a changed byte is refused.

The download obeys the lock, not the host's pip configuration: pip gets the same sources the lock
step used (resolvers/indexes.py `Sources`: index URLs, find-links, credentials) and no constraint
file, requirement file, upgrade or binary-selection setting from the host.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from envbuild import artifacts, platforms
from envbuild.errors import EXIT_FAILURE, EnvbuildError, last_line
from envbuild.fsutil import atomic_write_json, sha256_file
from envbuild.lockfile import read_text, requirement_lines
from envbuild.resolvers.indexes import Sources

# Debian bookworm ships glibc 2.36: the newest manylinux tag its pip accepts.
GLIBC_MAX = (2, 36)
ARCH = {p.name: p.machine for p in platforms.ALL}  # linux/amd64 -> x86_64 (wheel tags)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash[= ]sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str
    hashes: frozenset[str]

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Target:
    platform: str  # linux/amd64
    python: str  # 3.11

    @property
    def key(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.platforms()[0]}"

    def platforms(self) -> list[str]:
        """manylinux tags, newest first, that the image's glibc can load."""
        arch = ARCH[self.platform]
        major, top = GLIBC_MAX
        tags = [f"manylinux_{major}_{minor}_{arch}" for minor in range(top, 4, -1)]
        return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]

    def describe(self) -> str:
        return f"{self.platform}, CPython {self.python} (manylinux, glibc <= {GLIBC_MAX[0]}.{GLIBC_MAX[1]})"


@dataclass(frozen=True)
class Wheel:
    pin: Pin
    sha256: str
    path: Path  # inside the cache

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass
class Wheelhouse:
    wheels: list[Wheel]
    downloaded: list[str] = field(default_factory=list)  # pins fetched this time
    cached: list[str] = field(default_factory=list)  # pins found in the cache


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheels_dir() -> Path:
    return artifacts.kind_dir("wheels")


def marker_environment(target: "Target") -> dict[str, str]:
    """PEP 508 marker values of the image's interpreter: a universal lock (uv) holds pins for
    other Pythons and platforms, and only the ones for this target are installed. The patch
    level is not known before the image runs: X.Y.0 stands for it."""
    return {"implementation_name": "cpython", "platform_python_implementation": "CPython",
            "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
            "platform_machine": ARCH[target.platform], "python_version": target.python,
            "python_full_version": f"{target.python}.0", "implementation_version": f"{target.python}.0"}


def _applies(marker: str, path: Path, target: "Target | None") -> bool:
    if not marker or target is None:
        return True
    from packaging.markers import InvalidMarker, Marker

    try:
        return Marker(marker).evaluate(marker_environment(target))
    except InvalidMarker as e:
        raise EnvbuildError(f"{path}: marker {marker!r} is not valid ({e}); run envbuild lock") from None


def parse_requirements_lock(path: Path, target: "Target | None" = None) -> list[Pin]:
    """`name==version \\ --hash=sha256:...` entries of a pip-compile lock; every one must be hashed.
    With a target, pins whose environment marker excludes it are left out."""
    pins = []
    for line in requirement_lines(read_text(path)):
        marker = line.split(";", 1)[1].split(" --hash", 1)[0].strip() if ";" in line else ""
        if not _applies(marker, path, target):
            continue
        if line.startswith("-"):
            raise EnvbuildError(f"{path}: option line {line.split()[0]!r} is not allowed in a lock; run envbuild lock")
        m = _PIN.match(line)
        if not m:
            raise EnvbuildError(f"{path}: {line.split()[0]!r} is not pinned with ==; run envbuild lock")
        hashes = frozenset(_HASH.findall(line))
        if not hashes:
            raise EnvbuildError(f"{path}: {m.group(1)}=={m.group(3)} has no --hash=sha256; run envbuild lock")
        pins.append(Pin(canonical(m.group(1)), m.group(3), hashes))
    return pins


def _wheel_name(filename: str) -> str:
    return canonical(filename.split("-", 1)[0])


def _chosen_file(target: Target, pin: Pin) -> Path:
    return wheels_dir() / "chosen" / target.key / f"{pin.name}-{pin.version}.json"


def verify(wheel: Wheel) -> None:
    """Refuse a cached wheel whose bytes are not the ones requirements.lock names."""
    artifacts.verify(wheel.path, wheel.sha256, "requirements.lock", str(wheel.pin))


def _cached(target: Target, pin: Pin) -> Wheel | None:
    """The artifact chosen earlier for this pin and target, when it is still in the cache."""
    try:
        chosen = json.loads(_chosen_file(target, pin).read_text())
    except (OSError, ValueError):
        return None
    sha = chosen.get("sha256", "")
    path = wheels_dir() / sha / chosen.get("filename", "")
    if sha not in pin.hashes or not path.is_file():
        return None
    return Wheel(pin, sha, path)


def project_sources(root: Path) -> Sources:
    """The sources the project was locked from: its spec's, or pip's configuration without a spec."""
    from envbuild.resolvers.indexes import pip_sources, sources_for
    from envbuild.spec import find_config, load_spec

    return sources_for(load_spec(root)) if find_config(root) else pip_sources()


def ensure(requirements_lock: Path, target: Target, *, progress=None, sources: Sources | None = None) -> Wheelhouse:
    """Every locked artifact for `target`, verified, in the cache; downloads only what is missing."""
    pins = parse_requirements_lock(requirements_lock, target)
    return ensure_pins(pins, target, progress=progress, sources=sources or project_sources(requirements_lock.parent))


def ensure_pins(pins: list[Pin], target: Target, *, progress=None, sources: Sources | None = None) -> Wheelhouse:
    """`ensure` for pins from any lock (requirements.lock, conda-lock.yml's pip entries)."""
    house = Wheelhouse([])
    missing = []
    for pin in pins:
        wheel = _cached(target, pin)
        if wheel is None:
            missing.append(pin)
        else:
            house.wheels.append(wheel)
            house.cached.append(str(pin))
    if missing:
        if progress:
            progress(f"downloading {len(missing)} of {len(pins)} locked wheels for {target.describe()}")
        if sources is None:
            from envbuild.resolvers.indexes import pip_sources

            sources = pip_sources()
        try:
            house.wheels.extend(_download(missing, target, sources))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise _no_space() from None
        house.downloaded = [str(p) for p in missing]
    for wheel in house.wheels:  # cached ones too: refuse before anything is built
        verify(wheel)
    house.wheels.sort(key=lambda w: w.pin.name)
    return house


def requirement_line(pin: Pin) -> str:
    """`name==version --hash=sha256:...`: one line of a hashed requirements file."""
    return f"{pin} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n"


def pip_download_args(target: Target, dest: Path, requirements: Path) -> list[str]:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary", ":all:",
            "--disable-pip-version-check", "--no-input", "-d", str(dest), "-r", str(requirements),
            "--python-version", target.python, "--implementation", "cp",
            "--abi", f"cp{target.python.replace('.', '')}"]
    for p in target.platforms():
        args += ["--platform", p]
    return args


def _download(pins: list[Pin], target: Target, sources: Sources) -> list[Wheel]:
    wheels_dir().mkdir(parents=True, exist_ok=True)
    # Same filesystem as the cache, so finished files move in with a rename.
    with tempfile.TemporaryDirectory(prefix="download-", dir=wheels_dir()) as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("".join(map(requirement_line, pins)))
        dest = Path(tmp) / "dl"
        from envbuild.resolvers import overlay_env

        proc = subprocess.run(pip_download_args(target, dest, reqs), capture_output=True, text=True,
                              env=overlay_env(sources.pip_env()))
        if proc.returncode != 0:
            raise _download_error(proc.stdout + proc.stderr, target, pins)
        by_name = {p.name: p for p in pins}
        wheels = []
        for f in sorted(dest.iterdir()):
            pin = by_name.pop(_wheel_name(f.name), None)
            if pin is None:
                raise EnvbuildError(f"pip download returned {f.name}, which requirements.lock does not pin", EXIT_FAILURE)
            sha = sha256_file(f)
            if sha not in pin.hashes:
                raise EnvbuildError(
                    f"{f.name}: downloaded sha256 is {sha} but requirements.lock allows only "
                    f"{', '.join(sorted(pin.hashes))} for {pin}; the index served a substituted file",
                    EXIT_FAILURE)
            final = artifacts.store("wheels", f, sha)
            atomic_write_json(_chosen_file(target, pin), {"sha256": sha, "filename": f.name})
            wheels.append(Wheel(pin, sha, final))
        if by_name:
            raise EnvbuildError(f"pip download did not fetch {', '.join(map(str, by_name.values()))}", EXIT_FAILURE)
        return wheels


def _no_space() -> EnvbuildError:
    # the download's temp dir is gone with it and nothing half-written entered the cache
    return EnvbuildError(f"{wheels_dir()}: no space left on device while downloading wheels; nothing was added "
                         "to the cache: free some space there (or set ENVBUILD_CACHE_DIR to a larger disk) and "
                         "run again", EXIT_FAILURE)


def _download_error(output: str, target: Target, pins: list[Pin]) -> EnvbuildError:
    if "No space left on device" in output:
        return _no_space()
    m = re.search(r"(?:No matching distribution found for|satisfies the requirement) ([^\s(]+)", output)
    if m:
        return EnvbuildError(
            f"{m.group(1)} has no wheel for {target.describe()}; builds install wheels only (no network, "
            "no compilers): pin a version that publishes one, or build the wheel and add it to your index")
    m = re.search(r"Expected sha256 (\w+)\s+Got\s+(\w+)", output)
    if m:
        name = re.search(r"^\s*(\S+) from ", output, re.M)
        return EnvbuildError(
            f"{name.group(1) if name else 'a locked artifact'}: downloaded sha256 is {m.group(2)} but "
            f"requirements.lock expects {m.group(1)}; the index served a substituted file", EXIT_FAILURE)
    return EnvbuildError(f"pip download failed{_wanted(output, pins)}: {last_line(output, 'no output')}", EXIT_FAILURE)


def _wanted(output: str, pins: list[Pin]) -> str:
    """" for torch==2.15.0 (torch-2.15.0-...whl)": the pin pip was fetching when it failed, and its file.

    pip says "Collecting NAME==VERSION" before each package and "Downloading FILE" (or the URL) before
    its bytes; the last of each is the one that failed."""
    collecting = re.findall(r"^Collecting (\S+?)==(\S+)", output, re.M)
    files = re.findall(r"^\s*(?:Downloading|Processing|File was already downloaded) (\S+)", output, re.M)
    if not collecting:
        return f" for {', '.join(map(str, pins))}" if len(pins) <= 3 else ""
    name, version = collecting[-1]
    pin = next((p for p in pins if p.name == canonical(name)), None)
    wanted = f" for {pin or f'{name}=={version}'}"
    if files and canonical(files[-1].rsplit("/", 1)[-1].split("-", 1)[0]) == canonical(name):
        wanted += f" ({files[-1].rsplit('/', 1)[-1]})"
    elif pin:
        wanted += f" (a file with sha256 {' or '.join(sorted(pin.hashes))})"
    return wanted


def link_into(house: Wheelhouse, dest: Path) -> None:
    """Put the wheels into a build context (hard links from the cache)."""
    artifacts.link_into((w.path for w in house.wheels), dest)
