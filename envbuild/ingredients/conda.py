"""conda: the environment py-rattler makes on the host for /opt/conda, as one layer; the lock's
pip entries installed into it by `installer` (envbuild/ingredients/pip.py), as layers of their own.

On a conda team base (envbuild/teambase.py) the solve holds the base's pins, and the layer adds
only the packages the base lacks to the base's own /opt/conda: the base's files and conda-meta
records stay in its layers, the project's land beside them, so the image has one environment.
"""

from __future__ import annotations

from typing import Any

from envbuild import condapkgs
from envbuild.errors import EnvbuildError
from envbuild.ingredients import BuildContext, LockContext
from envbuild.ingredients.pip import wheel_layers
from envbuild.lockfile import CONDA_LOCK, EnvLock, read_conda_lock
from envbuild.oci import layer
from envbuild.oci.layer import Layer


class Conda:
    name = "conda"

    def used_by(self, spec: Any) -> bool:
        return spec.conda is not None

    def lock(self, ctx: LockContext) -> dict[str, Any]:
        from envbuild import teambase
        from envbuild.resolvers.conda_env import read_environment
        from envbuild.resolvers.conda_lock import conda_solver as pick

        spec = ctx.spec
        env = read_environment(spec.conda)
        pins = teambase.base_conda_pins(ctx.base, spec.platforms[0])
        if pins and len(spec.platforms) > 1:  # builds differ per platform: one platform's pins bind no other
            raise EnvbuildError(f"{spec.source}: platforms: a conda project on the team base {spec.base} locks one "
                                f"platform, not {len(spec.platforms)}; list one, or use a base without a conda env")
        teambase.check_conda_direct(spec, env.specs, pins)
        solver, held = pick(), {}
        if pins:
            from envbuild.resolvers import rattler

            if solver is not rattler:
                ctx.notes.append("solved with rattler, not conda-lock: only rattler holds a team base's conda pins")
            solver, held = rattler, {"constraints": teambase.conda_constraints(spec, pins)}
        ctx.step(f"Solving {spec.conda.name} with {solver.NAME} for {', '.join(spec.platforms)}"
                 + (f" (the team base's {len(pins)} conda pins held)" if pins else ""))
        found = {"conda_solver": solver.resolve(spec, ctx.work / CONDA_LOCK, ctx.upgrade, ctx.upgrade_packages,
                                                spec.root / CONDA_LOCK, **held).to_dict()}
        if pins:
            locked = [(p.name, p.version, p.build or "") for p in read_conda_lock(ctx.work, spec.platforms[0])
                      if p.manager != "pip"]
            found["conda_base_packages"] = shared = teambase.conda_shared(spec, pins, locked)
            if shared:
                ctx.notes.append(f"{len(shared)} conda packages come from the team base and are not installed "
                                 f"again: {', '.join(f'{n}={v}' for n, v in shared.items())}")
        if not spec.uses_pip and env.pip:
            from envbuild.resolvers.indexes import uv_indexes

            found["indexes"] = uv_indexes()  # the pip: section is resolved with uv
        return found

    def wanted(self, lock: EnvLock) -> bool:
        return CONDA_LOCK in lock.lockfiles

    def fetch(self, ctx: BuildContext) -> condapkgs.CondaSet:
        cset = condapkgs.ensure(ctx.spec.root, ctx.platform, progress=ctx.say, in_base=ctx.lock.conda_base_packages)
        ctx.fetched("conda packages", cset.downloaded, cset.cached,
                    f", {len(cset.shared)} in the team base" if cset.shared else "")
        return cset

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        cset: condapkgs.CondaSet = fetched
        stage = ctx.work / "conda"
        ctx.say(f"creating the conda environment ({len(cset.files)} packages) for {condapkgs.PREFIX}")
        condapkgs.create_prefix(cset, stage, pth=ctx.pth)
        entries = layer.tree_entries(stage, condapkgs.PREFIX) + overridden_records(ctx, cset)
        out = [layer.write(entries, ctx.store, ctx.epoch, f"conda: {len(cset.files)} packages"
                           + (f" ({len(cset.shared)} more in the team base)" if cset.shared else ""))]
        if cset.wheels is not None and cset.wheels.wheels:
            python = cset.lock.python or ctx.lock.python
            if python != ctx.lock.python:
                ctx.notes.append(f"conda's python is {python}; its pip entries use its site-packages")
            out += wheel_layers(ctx, cset.wheels.wheels, condapkgs.PREFIX, [], "conda-pip")
        return out


def overridden_records(ctx: BuildContext, cset: condapkgs.CondaSet) -> list[layer.Entry]:
    """Whiteouts of the team base's conda-meta records of packages the project installs its own
    version of (override-base), so the environment lists each package once."""
    if not ctx.spec.override_base or ctx.spec.conda is None:
        return []
    from envbuild import teambase

    pins = teambase.base_conda_pins(ctx.lock.base, ctx.platform)
    mine = {f.package.name: (f.package.version, f.package.build or "") for f in cset.files}
    meta = condapkgs.PREFIX.lstrip("/") + "/conda-meta"
    return [layer.Entry(f"{meta}/.wh.{n}-{v}-{b}.json", "whiteout") for n, (v, b) in sorted(pins.items())
            if n in mine and mine[n] != (v, b)]
