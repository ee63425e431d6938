"""envbuild.lock: what a lock governs, so later stages can trust it and notice staleness.

Written as canonical JSON (sorted keys, two-space indent), so its sha256, the *lock hash*,
is stable. The lock hash names the image (`envbuild/<project>:<first 12 hex>`).

Format version 1:
{
  "version": 1,
  "envbuild": "0.1.0",
  "resolver": {"name": "pip-tools", "version": "7.6.2"},     # pip resolver used
  "conda_solver": {"name": "rattler", "version": "0.28.0"},  # only with conda
  "python": "3.11",
  "platforms": ["linux/amd64"],
  "inputs_hash": "<sha256 of the canonical inputs>",
  "inputs": {"<input name>": "<sha256 of that input>", ...},  # so --check can name what changed
  "base": {"tag": "...:bookworm", "digest": "sha256:...", "platforms": {"linux/amd64": "sha256:..."},
           "source": "registry"},                             # or "engine": who answered the digest
  "indexes": ["https://.../simple", "local"],                 # credentials stripped, local ones as "local"
  "lockfiles": {"requirements.lock": "<sha256>", "conda-lock.yml": "<sha256>", "system-packages.lock": "<sha256>"},
  "system_packages": {"<name>": "<version>"},               # every .deb system-packages.lock installs
  "base_packages": {"<name>": "<version>"},                 # a team base's pip pins: constraints, not reinstalled
  "conda_base_packages": {"<name>": "<version>=<build>"},   # only on a conda team base: its conda pins, not reinstalled
  "epoch": 0                                                # the image's file times are clamped to it
  "cuda": {"setting": "auto", "torch": "2.15.0", "build": "cu130", "cuda": "13.0", "cudnn": "9.13.0.50",
           "nccl": "2.28.3", "min_driver": "580"}           # only when torch is locked (envbuild/cuda.py)
}

The inputs are named for people: "dependency list", "requirements file <path>", "groups",
"<environment.yml path>", "base tag", "python", "platforms", "resolver", "system packages".
Each value is the sha256 of that input (file bytes, or the canonical JSON of the setting), and
"inputs_hash" is the sha256 of the canonical JSON of that table. Staleness is decided from these
and the lockfiles' sha256 alone, with no resolver, network or heavy import.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envbuild.spec import Spec

from envbuild import platforms
from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_json, canonical_json, finish_replace, sha256_bytes, sha256_file

FORMAT_VERSION = 1
ENVBUILD_LOCK = "envbuild.lock"
REQUIREMENTS_LOCK = "requirements.lock"
CONDA_LOCK = "conda-lock.yml"
SYSTEM_PACKAGES_LOCK = "system-packages.lock"  # format: envbuild/debs.py


@dataclass
class Base:
    tag: str
    digest: str
    platforms: dict[str, str] = field(default_factory=dict)
    source: str = "registry"  # "engine" when the registry could not be reached at lock time

    @property
    def pinned(self) -> str:
        from envbuild.registry import parse_reference

        return parse_reference(self.tag).pinned(self.digest)


@dataclass
class EnvLock:
    envbuild: str
    python: str
    platforms: list[str]
    inputs_hash: str
    inputs: dict[str, str]
    base: Base
    lockfiles: dict[str, str]
    resolver: dict[str, str] = field(default_factory=dict)
    conda_solver: dict[str, str] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)
    system_packages: dict[str, str] = field(default_factory=dict)
    base_packages: dict[str, str] = field(default_factory=dict)  # pip pins a team base installs: not installed again
    epoch: int = 0  # every file time in the image is clamped to this (SOURCE_DATE_EPOCH at lock time, else 0)
    version: int = FORMAT_VERSION
    cuda: dict[str, str] = field(default_factory=dict)
    conda_base_packages: dict[str, str] = field(default_factory=dict)  # a team base's conda pins: not installed again

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("cuda", "conda_base_packages"):  # absent, not empty: older locks keep their lock hash
            if not d[key]:
                del d[key]
        return d

    def to_text(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def lock_hash(self) -> str:
        return sha256_bytes(self.to_text().encode())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnvLock":
        """From a parsed envbuild.lock; ValueError naming the first field that is not as written."""
        d = dict(check_fields(d, _LOCK_FIELDS, _LOCK_OPTIONAL))
        d["base"] = Base(**check_fields(d["base"], {"tag": "str", "digest": "str"},
                                        {"platforms": "{str}", "source": "str"}, "base."))
        return cls(**d)


_LOCK_FIELDS = {"version": "int", "envbuild": "str", "python": "str", "platforms": "[str]", "inputs_hash": "str",
                "inputs": "{str}", "base": "{}", "lockfiles": "{str}"}
_LOCK_OPTIONAL = {"resolver": "{}", "conda_solver": "{}", "indexes": "[str]", "system_packages": "{str}",
                  "base_packages": "{str}", "epoch": "int", "cuda": "{str}",
                  "conda_base_packages": "{str}"}
_KINDS = {
    "str": lambda v: isinstance(v, str),
    "str?": lambda v: v is None or isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "{str}": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "{}": lambda v: isinstance(v, dict),
    "[]": lambda v: isinstance(v, list),
}


def check_fields(obj: Any, required: dict[str, str], optional: dict[str, str] | None = None, where: str = "",
                 *, strict: bool = True) -> dict[str, Any]:
    """`obj` when it is a JSON object with these fields of these kinds (see _KINDS), else ValueError
    naming the field (repr: one line, whatever the key holds). strict: no other fields."""
    optional = optional or {}
    if not isinstance(obj, dict):
        raise ValueError(f"{where.rstrip('.') or 'the document'} is not a mapping")
    if strict:
        for key in obj:
            if key not in required and key not in optional:
                raise ValueError(f"unknown field {where}{key!r}")
    for key, kind in {**required, **optional}.items():
        if key not in obj:
            if key in required:
                raise ValueError(f"field {where}{key!r} is missing")
        elif not _KINDS[kind](obj[key]):
            raise ValueError(f"field {where}{key!r} is not {kind}")
    return obj


def printable(key: str) -> str:
    """A key from a file, as an error message may show it: itself, or its repr when it holds
    newlines or other unprintable characters (messages stay one line)."""
    return key if key.isprintable() else repr(key)


def read_text(path: Path) -> str:
    """A lockfile's text; bytes that are not UTF-8 are a one-line error naming the file."""
    try:
        return Path(path).read_text()
    except UnicodeDecodeError as e:
        raise EnvbuildError(f"{path}: not UTF-8 text (byte {e.start}); restore it from git or run envbuild lock") from None


def lock_path(root: Path) -> Path:
    return Path(root) / ENVBUILD_LOCK


def journal_path(root: Path) -> Path:
    """Where `envbuild lock` journals the renaming of its lockfiles (fsutil.replace_together)."""
    return Path(root) / ".envbuild" / "lock-journal.json"


def read_lock(root: Path) -> EnvLock | None:
    """The project's envbuild.lock, or None when there is none. A lock killed while renaming its
    files into place is completed first, so every reader sees one lock, never a mix."""
    finish_replace(journal_path(root))
    path = lock_path(root)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("version") != FORMAT_VERSION:
            raise EnvbuildError(f"{path}: format version {data.get('version')!r} is not {FORMAT_VERSION}; "
                                "run envbuild lock")
        return EnvLock.from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise EnvbuildError(f"{path}: not a valid envbuild.lock ({e}); run envbuild lock --upgrade") from None


def write_lock(root: Path, lock: EnvLock) -> None:
    atomic_write_json(lock_path(root), lock.to_dict())


def require_lock(root: Path) -> EnvLock:
    lock = read_lock(root)
    if lock is None:
        raise EnvbuildError(f"{lock_path(root)}: no lock yet; run envbuild lock")
    return lock


# --- inputs and staleness (fast: no resolver, no network) ---------------------------------


def _h(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj).encode())


def _rel(spec: "Spec", path: Path) -> str:
    try:
        return path.relative_to(spec.root).as_posix()
    except ValueError:
        return path.name


def lock_inputs(spec: "Spec") -> dict[str, str]:
    """{input name: sha256} of everything a lock depends on."""
    inputs: dict[str, str] = {}
    if spec.uses_pip:
        inputs["dependency list"] = _h(list(spec.dependencies))
        inputs["resolver"] = _h(spec.resolver)
    if spec.requirements is not None:
        inputs[f"requirements file {_rel(spec, spec.requirements)}"] = sha256_file(spec.requirements)
    if spec.groups:
        inputs["groups"] = _h(list(spec.groups))
    if spec.conda is not None:
        inputs[_rel(spec, spec.conda)] = sha256_file(spec.conda)
    inputs["base tag"] = _h(spec.base)
    inputs["python"] = _h(spec.python)
    inputs["platforms"] = _h(list(spec.platforms))
    inputs["system packages"] = _h(list(spec.system_packages))
    if spec.override_base:
        inputs["override-base"] = _h(sorted(spec.override_base))
    if spec.cuda != "auto":  # only when set: locks made before the setting existed stay fresh
        inputs["cuda"] = _h({"cuda": spec.cuda, "source": spec.torch_sources.get(spec.cuda)})
    return inputs


def inputs_hash(inputs: dict[str, str]) -> str:
    return _h(inputs)


def expected_lockfiles(spec: "Spec") -> list[str]:
    return ([REQUIREMENTS_LOCK] if spec.uses_pip else []) + ([CONDA_LOCK] if spec.conda is not None else []) \
        + ([SYSTEM_PACKAGES_LOCK] if spec.system_packages else [])


def stale_reasons(spec: "Spec", lock: EnvLock | None) -> list[str]:
    """Why `lock` does not fit `spec` (empty when fresh), each naming the input that changed."""
    if lock is None:
        return [f"no {ENVBUILD_LOCK} yet"]
    reasons: list[str] = []
    if inputs_hash(lock.inputs) != lock.inputs_hash:
        reasons.append(f"{ENVBUILD_LOCK} was edited by hand (its inputs no longer match inputs_hash)")
    now = lock_inputs(spec)
    for name in sorted(set(now) | set(lock.inputs)):
        if now.get(name) == lock.inputs.get(name):
            continue
        if name == "base tag":
            reasons.append(f"base tag changed: locked {lock.base.tag}, spec says {spec.base}")
        elif name == "python":
            reasons.append(f"python changed: locked {lock.python}, spec says {spec.python}")
        elif name == "platforms":
            reasons.append(f"platforms changed: locked {', '.join(lock.platforms)}, spec says {', '.join(spec.platforms)}")
        elif name not in now:
            reasons.append(f"{name} is no longer an input")
        elif name not in lock.inputs:
            reasons.append(f"{name} is new since the lock")
        else:
            reasons.append(f"{name} changed")
    for name in expected_lockfiles(spec):
        digest = lock.lockfiles.get(name)
        path = Path(spec.root) / name
        if digest is None:
            reasons.append(f"{name} is not governed by {ENVBUILD_LOCK}")
        elif not path.is_file():
            reasons.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            reasons.append(f"{name} was edited by hand (its sha256 differs from {ENVBUILD_LOCK})")
    return reasons


def staleness(spec: "Spec", lock: EnvLock | None) -> str | None:
    """Why `lock` does not fit `spec`, "; "-joined, or None when fresh. The one check that
    `lock --check`, `build`, `run` and `verify` share, so they never disagree. Resolves nothing."""
    return "; ".join(stale_reasons(spec, lock)) or None


def lock_is_fresh(spec: "Spec") -> tuple[bool, str]:
    """(True, "up to date") or (False, the reasons it is stale, "; "-joined)."""
    try:
        reasons = stale_reasons(spec, read_lock(spec.root))
    except EnvbuildError as e:
        reasons = [str(e)]
    return (not reasons, "; ".join(reasons) or "up to date")


# --- reading the lockfiles (for build and verify) -----------------------------------------


@dataclass(frozen=True)
class PipPin:
    name: str
    version: str
    hashes: tuple[str, ...]  # "sha256:<hex>", every artifact of that version
    marker: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")


@dataclass(frozen=True)
class CondaPackage:
    name: str
    version: str
    manager: str  # "conda" or "pip"
    platform: str  # conda subdir, e.g. linux-64
    url: str
    sha256: str | None
    md5: str | None
    build: str | None = None


def requirement_lines(text: str) -> list[str]:
    """The logical lines of a pip requirements file: continuations joined, comments and blanks dropped."""
    lines = (line.split(" #", 1)[0].strip() for line in text.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_pip_lock(root: Path) -> list[PipPin]:
    """The pins of requirements.lock (empty when the project has none); option lines are skipped
    (wheelhouse.parse_requirements_lock is the strict reader that refuses them)."""
    path = Path(root) / REQUIREMENTS_LOCK
    if not path.is_file():
        return []
    pins = []
    for entry in requirement_lines(read_text(path)):
        if entry.startswith("-"):
            continue
        words = entry.split()
        req = " ".join(w for w in words if not w.startswith("--hash="))
        hashes = tuple(w.removeprefix("--hash=") for w in words if w.startswith("--hash="))
        req, _, marker = req.partition(";")
        name, _, version = req.strip().partition("==")
        pins.append(PipPin(name.strip(), version.strip(), hashes, marker.strip() or None))
    return pins


CONDA_SUBDIRS = {p.name: p.conda for p in platforms.ALL}  # linux/amd64 -> linux-64


def read_conda_lock(root: Path, platform: str | None = None) -> list[CondaPackage]:
    """Entries of conda-lock.yml, for one platform ("linux/amd64" or "linux-64") or all."""
    path = Path(root) / CONDA_LOCK
    if not path.is_file():
        return []
    import yaml  # only when there is one: the import costs more than a run's other checks

    try:
        data = yaml.safe_load(read_text(path)) or {}
        packages = check_fields(data, {}, {"package": "[]"}, strict=False).get("package") or []
        for i, p in enumerate(packages):
            check_fields(p, {"name": "str", "platform": "str", "url": "str"},
                         {"manager": "str", "hash": "{}", "build": "str?"}, f"package[{i}].", strict=False)
            if isinstance(p.get("version"), bool) or not isinstance(p.get("version"), (str, int, float)):
                raise ValueError(f"field package[{i}].'version' is missing or not a string")
            check_fields(p.get("hash") or {}, {}, {"sha256": "str?", "md5": "str?"}, f"package[{i}].hash.", strict=False)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise EnvbuildError(f"{path}: invalid YAML ({getattr(e, 'problem', None) or type(e).__name__}{where}); "
                            "restore it from git or run envbuild lock") from None
    except ValueError as e:
        raise EnvbuildError(f"{path}: not a valid {CONDA_LOCK} ({e}); run envbuild lock --upgrade") from None
    subdir = CONDA_SUBDIRS.get(platform or "", platform)
    out = []
    for p in packages:
        if subdir and p["platform"] != subdir:
            continue
        h = p.get("hash") or {}
        out.append(CondaPackage(p["name"], str(p["version"]), p.get("manager", "conda"), p["platform"], p["url"],
                                h.get("sha256"), h.get("md5"), p.get("build")))
    return out
