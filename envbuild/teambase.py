"""Team bases: a project on one shares the base's packages instead of installing them twice.

`envbuild base build` labels its image with its pip pins (PINS_LABEL). A project whose base
carries that label resolves with those pins as constraints, so it picks the base's versions;
envbuild.lock records them (`base_packages`) and the build installs none of them again (the
project's venv sees the base's site-packages). A direct requirement the base's pin cannot meet is
refused before resolving, naming both, unless the spec lists the package in `override-base`:
then the project installs its own version, which shadows the base's.

conda works the same way. A team base made from an environment.yml keeps its conda environment
in /opt/conda (condapkgs.PREFIX) and lists it in CONDA_PINS_LABEL ("prefix=/opt/conda
name=version=build ..."). A project's environment.yml on such a base is solved by rattler with
those pins as constraints (`name ==version build`: a package it needs comes at the base's exact
build), envbuild.lock records the shared ones (`conda_base_packages`), and the project's conda
layer is installed into the SAME prefix, holding only what the base lacks: one environment in
the image, so `conda list`, PATH and the site-packages of conda's python see both halves, and
nothing is stacked or activated. (A second, stacked environment would need its own python or
activation to reach the base's packages; the shared prefix needs neither.) A package listed in
`override-base` is not held: the project installs its version into the prefix and its layer
whites out the base's conda-meta record of the old one (the base's files it does not replace stay).
"""

from __future__ import annotations

from pathlib import Path

from envbuild.errors import EnvbuildError, RegistryError
from envbuild.lockfile import Base
from envbuild.spec import Spec
from envbuild.wheelhouse import canonical

PINS_LABEL = "dev.envbuild.pip-pins"
CONDA_PINS_LABEL = "dev.envbuild.conda-pins"


def pins_label(pins: dict[str, str]) -> str:
    return " ".join(f"{n}=={v}" for n, v in sorted(pins.items()))


def base_label(base: Base, platform: str, name: str) -> str:
    from envbuild.assemble import fetch_base
    from envbuild.oci.blobs import Store

    try:
        config = fetch_base(base, platform, Store.default()).config
    except RegistryError:
        return ""  # the registry is out of reach: the lock says so in its notes already
    return ((config.get("config") or {}).get("Labels") or {}).get(name, "")


def base_pins(base: Base, platform: str) -> dict[str, str]:
    """{canonical name: version} the base's label lists; empty for a base that is not a team base."""
    label = base_label(base, platform, PINS_LABEL)
    pins = {}
    for item in label.split():
        name, _, version = item.partition("==")
        if name and version:
            pins[canonical(name)] = version
    return pins


def check_direct(spec: Spec, pins: dict[str, str]) -> None:
    """Refuse a direct requirement that excludes the base's pin (before any resolver runs)."""
    from packaging.requirements import InvalidRequirement, Requirement

    overridden = {canonical(n) for n in spec.override_base}
    for text in spec.dependencies:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # the resolver names it
        name = canonical(req.name)
        if name in pins and name not in overridden and not req.specifier.contains(pins[name], prereleases=True):
            raise EnvbuildError(
                f"{spec.requirements or spec.source}: {text!r} conflicts with the team base {spec.base}, which pins {name}=={pins[name]}; "
                f"accept the base's version, rebuild the base, or add \"{name}\" to override-base")


def constraints(spec: Spec, pins: dict[str, str], path: Path) -> Path:
    overridden = {canonical(n) for n in spec.override_base}
    path.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items()) if n not in overridden))
    return path


def shared(spec: Spec, pins: dict[str, str], locked: dict[str, str]) -> dict[str, str]:
    """The locked pins the base already installs at the same version (not installed again)."""
    overridden = {canonical(n) for n in spec.override_base}
    return {n: v for n, v in sorted(locked.items()) if pins.get(n) == v and n not in overridden}


# --- conda ---------------------------------------------------------------------------------


def conda_pins_label(packages: list[tuple[str, str, str]], prefix: str) -> str:
    """"prefix=/opt/conda a=1.0=0 b=2.1=py_0": the base's conda environment, sorted by name."""
    return " ".join([f"prefix={prefix}"] + [f"{n}={v}={b}" for n, v, b in sorted(packages)])


def parse_conda_pins(label: str, where: str) -> dict[str, tuple[str, str]]:
    """{name: (version, build)} of a CONDA_PINS_LABEL; refuses one whose environment is not where
    this envbuild puts a project's conda packages (they must land in the same prefix)."""
    from envbuild.condapkgs import PREFIX

    prefix, pins = None, {}
    for item in label.split():
        if item.startswith("prefix="):
            prefix = item.removeprefix("prefix=")
            continue
        name, _, rest = item.partition("=")
        version, _, build = rest.partition("=")
        if name and version:
            pins[name.lower()] = (version, build)
    if pins and prefix != PREFIX:
        raise EnvbuildError(f"team base {where} keeps its conda environment in {prefix}, not {PREFIX}; "
                            "rebuild the base with this envbuild (envbuild base build)")
    return pins


def base_conda_pins(base: Base, platform: str) -> dict[str, tuple[str, str]]:
    """The base's conda pins; empty for a base without a conda environment."""
    return parse_conda_pins(base_label(base, platform, CONDA_PINS_LABEL), base.tag)


def _conda_overridden(spec: Spec) -> set[str]:
    return {n.lower() for n in spec.override_base}


def check_conda_direct(spec: Spec, specs: tuple[str, ...], pins: dict[str, tuple[str, str]]) -> None:
    """Refuse an environment.yml dependency the base's pin does not match (before any solver runs)."""
    from rattler import BuildString, MatchSpec, PackageRecord

    overridden = _conda_overridden(spec)
    for text in specs:
        try:
            match = MatchSpec(text)
        except Exception:  # noqa: BLE001  the solver names an invalid spec
            continue
        name = match.name.normalized
        if name not in pins or name in overridden:
            continue
        version, build = pins[name]
        # a pin without a build string still has a version to check (rattler refuses an empty build)
        if not match.matches(PackageRecord(name, version, BuildString(build or "_"), 0, "noarch")):
            raise EnvbuildError(
                f"{spec.conda}: {text!r} conflicts with the team base {spec.base}, which pins {name}={version}={build}; "
                f"accept the base's version, rebuild the base, or add \"{name}\" to override-base")


def conda_constraints(spec: Spec, pins: dict[str, tuple[str, str]]) -> list[str]:
    """Match specs holding every base package the solve may pull in at the base's exact build."""
    overridden = _conda_overridden(spec)
    return [f"{n} =={v} {b}" if b else f"{n} =={v}" for n, (v, b) in sorted(pins.items()) if n not in overridden]


def conda_shared(spec: Spec, pins: dict[str, tuple[str, str]],
                 locked: list[tuple[str, str, str]]) -> dict[str, str]:
    """{name: "version=build"} of the locked conda packages the base already has (not installed again)."""
    overridden = _conda_overridden(spec)
    return {n: f"{v}={b}" for n, v, b in sorted(locked) if pins.get(n) == (v, b) and n not in overridden}


def from_template(root: Path, name: str, torch_source: str | None, say=lambda m: None) -> None:
    """The team-base spec dir from a shipped template (written when it has no pyproject.toml), locked
    when its lock is missing or stale: what `envbuild base build --template NAME` starts from."""
    from envbuild import template
    from envbuild.lockfile import read_lock, staleness
    from envbuild.locker import lock_project
    from envbuild.spec import DEFAULT_BASE, PYPROJECT, load_spec

    if not (root / PYPROJECT).is_file():
        values = {"name": root.resolve().name, "base": DEFAULT_BASE}
        if torch_source:
            values["torch_source"] = torch_source
        template.write("base", name, root, values)
        say(f"wrote the {name} team-base spec into {root / PYPROJECT}")
    spec = load_spec(root)
    try:
        stale = staleness(spec, read_lock(root))
    except EnvbuildError:
        stale = ["no lock"]
    if stale:
        outcome = lock_project(spec, step=say)
        say(f"locked {root}: lock hash {outcome.lock.lock_hash[:12]}")
