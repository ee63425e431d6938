"""The ecosystems an image is made of, behind one small interface.

Each ingredient (pip wheels, a conda environment, Debian packages) knows how to lock its part of a
spec into its lockfile, whether a lock uses it, how to fetch its locked files into the verified
cache, and how to turn them into layers. `envbuild lock` (envbuild/locker.py) and the image
assembler (envbuild/assemble.py) loop over `all_ingredients()` instead of keeping an `if` per ecosystem.

Layer order is the list's order: apt first (it changes the system the others sit on), then conda,
then pip with its largest packages first, so two projects that share a base and a torch share the
torch layer's whole chain, not only its blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from envbuild.lockfile import EnvLock
from envbuild.oci.blobs import Store
from envbuild.oci.layer import Layer
from envbuild.spec import Spec

BIG = 20 * 1000 * 1000  # a package at least this large (installed) gets a layer of its own: numpy too,
# so a one-package change re-sends small layers only (torch, nvidia-*, numpy, scipy ... stay put)


@dataclass
class BuildContext:
    """What every ingredient's layer step needs."""

    spec: Spec
    lock: EnvLock
    platform: str  # linux/amd64
    store: Store
    work: Path  # a temp directory of this build
    epoch: int
    base: str  # the pinned base reference, for sandbox containers
    native: bool  # the engine runs this platform's binaries (no emulation): sandboxes may run
    venv: str  # /opt/venv, or a team base's venv
    pth: str  # the runtime's .pth text
    say: Callable[[str], None] = lambda m: None
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once at the end, e.g. "no .pyc: cross-platform"

    def fetched(self, what: str, downloaded: list[str], cached: list[str], extra: str = "") -> None:
        """Count and say what a fetch downloaded and found in the cache."""
        self.say(f"{what}: {len(downloaded)} downloaded, {len(cached)} from the cache{extra}")
        self.downloaded += downloaded
        self.cached += cached


@dataclass
class LockContext:
    """What every ingredient's lock step needs."""

    spec: Spec
    base: Any  # lockfile.Base: the pinned base
    previous: EnvLock | None  # the lock being replaced (its pins are kept unless upgraded)
    upgrade: bool
    upgrade_packages: tuple[str, ...]
    work: Path  # where the new lockfiles are written, moved into the project together
    step: Callable[[str], None] = lambda m: None
    notes: list[str] = field(default_factory=list)  # said after locking, e.g. the resolver substituted


class Ingredient(Protocol):
    name: str

    def used_by(self, spec: Spec) -> bool:
        """Whether the spec asks for anything of this ecosystem."""

    def lock(self, ctx: LockContext) -> dict[str, Any]:
        """Resolve the spec's part into its lockfile in ctx.work; the EnvLock fields it fills."""

    def wanted(self, lock: EnvLock) -> bool:
        """Whether the lock installs anything of this ecosystem."""

    def fetch(self, ctx: BuildContext) -> Any:
        """The locked files for ctx.platform, verified, in the cache (downloads only what is missing)."""

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        """The ecosystem's layers, written into ctx.store."""


def all_ingredients() -> list[Ingredient]:
    """In layer order; `envbuild lock` resolves in the reverse one (pip first: cheapest, likeliest to
    fail, before apt's sandbox container)."""
    from envbuild.ingredients import apt, conda, pip

    return [apt.Apt(), conda.Conda(), pip.Pip()]
