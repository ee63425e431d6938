"""conda: the environment py-rattler makes on the host for /opt/conda, as one layer; the lock's
pip entries installed into it by `installer` (envbuild/ingredients/pip.py), as layers of their own."""

from __future__ import annotations

from typing import Any

from envbuild import condapkgs
from envbuild.ingredients import BuildContext, LockContext
from envbuild.ingredients.pip import wheel_layers
from envbuild.lockfile import CONDA_LOCK, EnvLock
from envbuild.oci import layer
from envbuild.oci.layer import Layer


class Conda:
    name = "conda"

    def used_by(self, spec: Any) -> bool:
        return spec.conda is not None

    def lock(self, ctx: LockContext) -> dict[str, Any]:
        from envbuild.resolvers.conda_env import read_environment
        from envbuild.resolvers.conda_lock import conda_solver as pick

        spec = ctx.spec
        solver = pick()
        ctx.step(f"Solving {spec.conda.name} with {solver.NAME} for {', '.join(spec.platforms)}")
        found = {"conda_solver": solver.resolve(spec, ctx.work / CONDA_LOCK, ctx.upgrade, ctx.upgrade_packages,
                                                spec.root / CONDA_LOCK).to_dict()}
        if not spec.uses_pip and read_environment(spec.conda).pip:
            from envbuild.resolvers.indexes import uv_indexes

            found["indexes"] = uv_indexes()  # the pip: section is resolved with uv
        return found

    def wanted(self, lock: EnvLock) -> bool:
        return CONDA_LOCK in lock.lockfiles

    def fetch(self, ctx: BuildContext) -> condapkgs.CondaSet:
        cset = condapkgs.ensure(ctx.spec.root, ctx.platform, progress=ctx.say)
        ctx.fetched("conda packages", cset.downloaded, cset.cached)
        return cset

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        cset: condapkgs.CondaSet = fetched
        stage = ctx.work / "conda"
        ctx.say(f"creating the conda environment ({len(cset.files)} packages) for {condapkgs.PREFIX}")
        condapkgs.create_prefix(cset, stage, pth=ctx.pth)
        out = [layer.write(layer.tree_entries(stage, condapkgs.PREFIX), ctx.store, ctx.epoch,
                           f"conda: {len(cset.files)} packages")]
        if cset.wheels is not None and cset.wheels.wheels:
            python = cset.lock.python or ctx.lock.python
            if python != ctx.lock.python:
                ctx.notes.append(f"conda's python is {python}; its pip entries use its site-packages")
            out += wheel_layers(ctx, cset.wheels.wheels, condapkgs.PREFIX, [], "conda-pip")
        return out
