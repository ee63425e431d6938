"""apt: the locked .debs, installed by apt with no sources in a sandbox of the base; envbuild
writes the layer from what the sandbox changed (maintainer scripts must run inside the target)."""

from __future__ import annotations

from typing import Any

from envbuild import debs, sandbox
from envbuild.ingredients import BuildContext, LockContext
from envbuild.lockfile import SYSTEM_PACKAGES_LOCK, EnvLock
from envbuild.oci import layer
from envbuild.oci.layer import Layer

INSTALL = r"""
set -e
cd /tmp/envbuild-debs
sha256sum --check --strict --quiet SHA256SUMS
mkdir -p /tmp/apt/sources.list.d && touch /tmp/apt/sources.list
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-remove \
    -o Dir::Etc::SourceList=/tmp/apt/sources.list -o Dir::Etc::SourceParts=/tmp/apt/sources.list.d \
    -o DPkg::Options::=--force-unsafe-io ./*.deb
"""


class Apt:
    name = "apt"

    def used_by(self, spec: Any) -> bool:
        return bool(spec.system_packages)

    def lock(self, ctx: LockContext) -> dict[str, Any]:
        return {"system_packages": debs.lock_system_packages(ctx.spec, ctx.base, ctx.previous, ctx.upgrade,
                                                             ctx.upgrade_packages, ctx.work / SYSTEM_PACKAGES_LOCK,
                                                             ctx.step)}

    def wanted(self, lock: EnvLock) -> bool:
        return bool(lock.system_packages)

    def fetch(self, ctx: BuildContext) -> debs.DebSet:
        debset = debs.ensure(ctx.spec.root, ctx.platform, progress=ctx.say)
        ctx.fetched("system packages", debset.downloaded, debset.cached)
        return debset

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        debset: debs.DebSet = fetched
        if not ctx.native:
            from envbuild.errors import EnvbuildError

            raise EnvbuildError(f"system-packages for {ctx.platform} need apt to run inside that platform, and "
                                f"this engine cannot run it; enable emulation (Debian: apt-get install "
                                "qemu-user-static binfmt-support) and build again")
        ctx_dir = ctx.work / "debs"
        debs.add_to_context(debset, ctx.work)  # ctx.work/debs/<files> + SHA256SUMS
        ctx.say(f"installing {len(debset.files)} .debs with apt in a sandbox of the base (no network)")
        name = sandbox.run(ctx.base, ["sh", "-c", INSTALL], [(ctx_dir, "/tmp/envbuild-debs", "ro")],
                           what="apt-get install of system-packages.lock")
        try:
            entries = sandbox.changes(name)
        finally:
            sandbox.remove(name)
        names = ", ".join(sorted(d.name for d, _ in debset.files))
        return [layer.write(entries, ctx.store, ctx.epoch, f"apt: {names[:200]}")]
