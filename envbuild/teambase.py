"""Team bases: a project on one shares the base's packages instead of installing them twice.

`envbuild base build` labels its image with its pip pins (PINS_LABEL). A project whose base
carries that label resolves with those pins as constraints, so it picks the base's versions;
envbuild.lock records them (`base_packages`) and the build installs none of them again (the
project's venv sees the base's site-packages). A direct requirement the base's pin cannot meet is
refused before resolving, naming both, unless the spec lists the package in `override-base`:
then the project installs its own version, which shadows the base's.
"""

from __future__ import annotations

from pathlib import Path

from envbuild.errors import EnvbuildError, RegistryError
from envbuild.lockfile import Base
from envbuild.spec import Spec
from envbuild.wheelhouse import canonical

PINS_LABEL = "dev.envbuild.pip-pins"


def pins_label(pins: dict[str, str]) -> str:
    return " ".join(f"{n}=={v}" for n, v in sorted(pins.items()))


def base_pins(base: Base, platform: str) -> dict[str, str]:
    """{canonical name: version} the base's label lists; empty for a base that is not a team base."""
    from envbuild.assemble import fetch_base
    from envbuild.oci.blobs import Store

    try:
        config = fetch_base(base, platform, Store.default()).config
    except RegistryError:
        return {}  # the registry is out of reach: the lock says so in its notes already
    label = ((config.get("config") or {}).get("Labels") or {}).get(PINS_LABEL, "")
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
