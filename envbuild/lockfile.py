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
  "base": {"tag": "...:bookworm", "digest": "sha256:...", "platforms": {"linux/amd64": "sha256:..."}},
  "indexes": ["https://.../simple"],                          # credentials stripped
  "lockfiles": {"requirements.lock": "<sha256>", "conda-lock.yml": "<sha256>"},
  "system_packages": {"<name>": "<version>"}
}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_json, canonical_json, sha256_bytes

FORMAT_VERSION = 1
ENVBUILD_LOCK = "envbuild.lock"
REQUIREMENTS_LOCK = "requirements.lock"
CONDA_LOCK = "conda-lock.yml"


@dataclass
class Base:
    tag: str
    digest: str
    platforms: dict[str, str] = field(default_factory=dict)

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
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def lock_hash(self) -> str:
        return sha256_bytes(self.to_text().encode())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnvLock":
        d = dict(d)
        d["base"] = Base(**d["base"])
        return cls(**d)


def lock_path(root: Path) -> Path:
    return Path(root) / ENVBUILD_LOCK


def read_lock(root: Path) -> EnvLock | None:
    """The project's envbuild.lock, or None when there is none."""
    path = lock_path(root)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("version") != FORMAT_VERSION:
            raise EnvbuildError(f"{path}: format version {data.get('version')} is not {FORMAT_VERSION}; run envbuild lock")
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
