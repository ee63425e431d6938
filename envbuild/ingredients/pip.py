"""pip: the locked wheels, installed on the host by pypa `installer` into the image's venv.

Installing a wheel is file placement (unpack, write console scripts, RECORD), so no build step and
no engine runs pip. Each wheel is installed into its own staging tree under the final paths; a
package of at least BIG bytes becomes a layer of its own (torch, the nvidia-* libraries), the rest
share one layer with the venv's skeleton. `.pyc` files are compiled by the target's interpreter in
a sandbox (checked-hash invalidation, a fixed file order per process), or not at all when the
target cannot run here (a cross-platform build): Python then compiles in memory at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envbuild import sandbox
from envbuild.ingredients import BIG, BuildContext, LockContext
from envbuild.lockfile import REQUIREMENTS_LOCK, EnvLock, read_pip_lock
from envbuild.oci import layer
from envbuild.oci.layer import Layer
from envbuild.wheelhouse import Target, Wheel, Wheelhouse, ensure_pins, parse_requirements_lock, project_sources

CHUNK = 200  # .py files per compiling process: fixed, so the output never depends on the core count
COMPILE = r"""
import importlib.util, py_compile, sys
mode = py_compile.PycInvalidationMode.CHECKED_HASH
for line in open(sys.argv[1]):
    staged, final = line.rstrip("\n").split("\t")
    try:
        py_compile.compile(staged, cfile=importlib.util.cache_from_source(staged), dfile=final,
                           doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError:
        pass  # as pip does: a file that is not valid Python for this interpreter gets no .pyc
"""


def scheme(prefix: str, python: str) -> dict[str, str]:
    site = f"{prefix}/lib/python{python}/site-packages"
    return {"purelib": site, "platlib": site, "headers": f"{prefix}/include/site/python{python}",
            "scripts": f"{prefix}/bin", "data": prefix}


def install(wheel: Path, stage: Path, prefix: str, python: str) -> None:
    """Unpack one wheel into `stage` + its final paths under `prefix`, scripts pointing at prefix's python."""
    from installer import install as install_wheel
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    dest = SchemeDictionaryDestination(scheme(prefix, python), interpreter=f"{prefix}/bin/python",
                                       script_kind="posix", destdir=str(stage))
    with WheelFile.open(wheel) as source:
        install_wheel(source, dest, additional_metadata={"INSTALLER": b"envbuild\n"})


def tree_size(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(root) for f in files)


def venv_skeleton(venv: str, python: str, pth: str) -> list[layer.Entry]:
    """What `python -m venv --without-pip` would make, minus activation scripts, plus the runtime's .pth."""
    site = f"{venv}/lib/python{python}/site-packages"
    cfg = f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {python}\n"
    return [layer.file_entry(f"{venv}/pyvenv.cfg", cfg.encode()),
            layer.symlink_entry(f"{venv}/bin/python", f"/usr/bin/python{python}"),
            layer.symlink_entry(f"{venv}/bin/python3", "python"),
            layer.symlink_entry(f"{venv}/bin/python{python}", "python"),
            layer.symlink_entry(f"{venv}/lib64", "lib"),
            layer.dir_entry(f"{venv}/include"),
            layer.file_entry(f"{site}/zz-envbuild.pth", pth.encode())]


def compile_pyc(ctx: BuildContext, stages: list[Path]) -> None:
    """Compile every staged .py with the target's interpreter, in a sandbox of the base."""
    if not ctx.native:
        ctx.notes.append(f"no .pyc in the image: {ctx.platform} does not run on this engine, so its "
                         "interpreter cannot compile them (Python compiles at import instead)")
        return
    root = ctx.work / "pip"
    pairs = []
    for stage in stages:
        for d, dirs, files in os.walk(stage):
            dirs.sort()
            pairs += [f"/stage/{Path(d, f).relative_to(root)}\t/{Path(d, f).relative_to(stage)}"
                      for f in sorted(files) if f.endswith(".py")]
    if not pairs:
        return
    import tempfile

    chunks = Path(tempfile.mkdtemp(prefix="pyc-", dir=ctx.work))  # one per call: conda's pip entries, then pip
    for i in range(0, len(pairs), CHUNK):
        (chunks / f"{i // CHUNK:06d}").write_text("\n".join(pairs[i:i + CHUNK]) + "\n")
    (chunks / "compile.py").write_text(COMPILE)
    ctx.say(f"compiling {len(pairs)} .py files with the image's python{ctx.lock.python}")
    py = f"python{ctx.lock.python}"
    script = f"ls /chunks/0* | xargs -P {os.cpu_count() or 1} -n 1 {py} /chunks/compile.py"
    # the .pyc files land in the mounted /stage: nothing to read from the container, so --rm
    sandbox.run(ctx.base, ["sh", "-c", script], [(root, "/stage", "rw"), (chunks, "/chunks", "ro")],
                user=f"{os.getuid()}:{os.getgid()}", what=".pyc compilation", keep=False)


class Pip:
    name = "pip"

    def used_by(self, spec: Any) -> bool:
        return spec.uses_pip

    def lock(self, ctx: LockContext) -> dict[str, Any]:
        from envbuild import cuda, teambase
        from envbuild.resolvers import pip_resolver
        from envbuild.resolvers.indexes import sources_for

        spec, work = ctx.spec, ctx.work
        sources = sources_for(spec)  # refuses a cuda setting without a source before resolving
        mod, note = pip_resolver(spec)
        ctx.notes += [note] if note else []
        pins = teambase.base_pins(ctx.base, spec.platforms[0])
        teambase.check_direct(spec, pins)
        limits = teambase.constraints(spec, pins, work / "base-constraints.txt") if pins else None
        ctx.step(f"Resolving {len(spec.dependencies)} Python requirements with {mod.NAME}"  # type: ignore[attr-defined]
                 + (f" (the team base's {len(pins)} pins as constraints)" if pins else ""))
        info = mod.resolve(spec, work / REQUIREMENTS_LOCK, ctx.upgrade, ctx.upgrade_packages,
                           spec.root / REQUIREMENTS_LOCK, constraints=limits)
        locked_pins = {p.name.lower(): p.version for p in read_pip_lock(work)}
        cuda.check_build(spec, locked_pins)
        base_packages: dict[str, str] = {}
        if pins:
            locked = {p.name: p.version for p in parse_requirements_lock(work / REQUIREMENTS_LOCK)}
            base_packages = teambase.shared(spec, pins, locked)
            if base_packages:
                ctx.notes.append(f"{len(base_packages)} packages come from the team base and are not installed "
                                 f"again: {', '.join(f'{n}=={v}' for n, v in base_packages.items())}")
        return {"resolver": info.to_dict(), "indexes": sources.public(), "base_packages": base_packages,
                "cuda": cuda.lock_facts(spec.cuda, locked_pins)}

    def wanted(self, lock: EnvLock) -> bool:
        return REQUIREMENTS_LOCK in lock.lockfiles

    def fetch(self, ctx: BuildContext) -> Wheelhouse:
        target = Target(ctx.platform, ctx.lock.python)
        pins = parse_requirements_lock(ctx.spec.root / REQUIREMENTS_LOCK, target)
        shared = ctx.lock.base_packages
        house = ensure_pins([p for p in pins if shared.get(p.name) != p.version], target, progress=ctx.say,
                            sources=project_sources(ctx.spec.root))
        ctx.fetched("wheelhouse", house.downloaded, house.cached, f", {len(shared)} in the team base" if shared else "")
        return house

    def layers(self, ctx: BuildContext, fetched: Any) -> list[Layer]:
        house: Wheelhouse = fetched
        return wheel_layers(ctx, house.wheels, ctx.venv, venv_skeleton(ctx.venv, ctx.lock.python, ctx.pth), "pip")


def wheel_layers(ctx: BuildContext, wheels: list[Wheel], prefix: str, extra: list[layer.Entry],
                 label: str) -> list[Layer]:
    """Install `wheels` under `prefix`: one layer per BIG package (largest first is not needed:
    name order), then one for the rest with `extra` entries."""
    root = ctx.work / "pip"
    stages: list[tuple[Wheel, Path]] = []
    ctx.say(f"installing {len(wheels)} wheels into {prefix}")
    for w in sorted(wheels, key=lambda w: w.pin.name):
        stage = root / f"{label}-{w.pin.name}"
        install(w.path, stage, prefix, ctx.lock.python)
        stages.append((w, stage))
    compile_pyc(ctx, [s for _, s in stages])
    big = [(w, s) for w, s in stages if tree_size(s) >= BIG]
    rest = [(w, s) for w, s in stages if (w, s) not in big]
    out = []
    for w, stage in big:
        ctx.say(f"writing the {w.pin} layer")
        out.append(layer.write(layer.tree_entries(stage, ""), ctx.store, ctx.epoch, f"{label}: {w.pin}"))
    entries = list(extra)
    for _, stage in rest:
        entries += layer.tree_entries(stage, "")
    names = ", ".join(str(w.pin) for w, _ in rest)
    out.append(layer.write(entries, ctx.store, ctx.epoch, f"{label}: {len(rest)} packages ({names[:200]})"))
    return out
