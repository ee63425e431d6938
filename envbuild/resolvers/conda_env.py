"""environment.yml: channels, conda specs and the `pip:` section, checked for shape."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import SpecError
from envbuild.lockfile import CONDA_SUBDIRS as SUBDIRS  # noqa: F401  (re-exported: target platform -> conda subdir)


@dataclass(frozen=True)
class CondaEnv:
    path: Path
    channels: tuple[str, ...]
    specs: tuple[str, ...]  # conda match specs
    pip: tuple[str, ...]  # PEP 508 requirements of the pip: section


def read_environment(path: Path) -> CondaEnv:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SpecError(path, None, f"invalid YAML: {e}", "fix the syntax") from None
    if not isinstance(data, dict):
        raise SpecError(path, None, "must be a mapping with channels and dependencies", "see conda's environment.yml docs")
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise SpecError(path, "channels", "must be a list of channel names or URLs", "write channels: [conda-forge]")
    channels = [c for c in channels if c != "nodefaults"]
    if not channels:
        raise SpecError(path, "channels", "no channel given", "write channels: [conda-forge] (or a file:// channel)")
    specs: list[str] = []
    pip: list[str] = []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, str):
            specs.append(dep.strip())
        elif isinstance(dep, dict) and set(dep) == {"pip"} and isinstance(dep["pip"], list):
            pip += [str(p).strip() for p in dep["pip"]]
        else:
            raise SpecError(path, "dependencies", f"unexpected entry {dep!r}", "use conda specs and one `- pip: [...]` list")
    if not specs:
        raise SpecError(path, "dependencies", "no conda dependencies", "add some, e.g. - python=3.11")
    if pip and not any(s.split()[0].split("=")[0].split("<")[0].split(">")[0] == "python" for s in specs):
        raise SpecError(path, "dependencies", "a pip: section needs python among the conda dependencies",
                        "add - python=3.11")
    return CondaEnv(path, tuple(channels), tuple(specs), tuple(pip))
