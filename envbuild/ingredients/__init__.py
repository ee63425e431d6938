"""The ecosystems an image is made of, behind one small interface.

Each ingredient (pip wheels, a conda environment, Debian packages) knows whether a lock uses it,
how to fetch its locked files into the verified cache, and how to turn them into layers. The image
assembler (envbuild/assemble.py) loops over `ALL` instead of keeping an `if` per ecosystem.

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


class Ingredient(Protocol):
    name: str

    def wanted(self, lock: EnvLock) -> bool:
        """Whether the lock installs anything of this ecosystem."""

    def fetch(self, ctx: BuildContext) -> Any:
        """The locked files for ctx.platform, verified, in the cache (downloads only what is missing)."""

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        """The ecosystem's layers, written into ctx.store."""


def all_ingredients() -> list[Ingredient]:
    from envbuild.ingredients import apt, conda, pip

    return [apt.Apt(), conda.Conda(), pip.Pip()]
