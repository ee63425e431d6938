"""The project spec: `[tool.envbuild]` in pyproject.toml or a standalone envbuild.toml.

One typed model (`Spec`) that every other module reads; every bad input becomes a
`SpecError` naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from envbuild.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
ENVBUILD_TOML = "envbuild.toml"
REQUIREMENTS_IN = "requirements.in"

DEFAULT_BASE = "127.0.0.1:5000/envbuild/base:bookworm"
DEFAULT_SEED = 1234
DEFAULT_PYTHON = "3.11"  # the bootstrapped Debian bookworm base ships 3.11
NETWORKS = ("none", "host", "bridge")
RESOLVERS = ("pip-tools", "uv")
PLATFORMS = ("linux/amd64", "linux/arm64")

# Docker's reference grammar, simplified: [host[:port]/]path[:tag][@sha256:hex]
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
IMAGE_REF = re.compile(rf"^{_HOST}?{_PATH}(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$")
_GPUS = re.compile(r"^(all|none|[0-9]+|device=[0-9]+(,[0-9]+)*)$")


@dataclass(frozen=True)
class Spec:
    root: Path  # the project directory
    source: Path  # the file the [tool.envbuild] settings came from
    name: str  # project name, safe for an image repository
    base: str
    python: str
    platforms: tuple[str, ...]
    dependencies: tuple[str, ...]  # PEP 508 requirement strings for pip
    dependencies_source: str  # where they came from: "pyproject.toml [project] dependencies", a file name
    requirements: Path | None  # the requirements file, when dependencies come from one
    groups: tuple[str, ...]  # [project.optional-dependencies] groups locked too
    conda: Path | None
    system_packages: tuple[str, ...]
    data: tuple[str, ...]
    outputs: tuple[str, ...]
    seed: int
    deterministic: bool
    gpus: str | None
    network: str
    env: dict[str, str] = field(default_factory=dict)
    resolver: str = "pip-tools"
    image: str | None = None  # repository `envbuild push` pushes to by default
    tracking: dict[str, str] = field(default_factory=dict)

    @property
    def uses_pip(self) -> bool:
        return bool(self.dependencies)


# --- key checkers: each returns the normalized value or raises SpecError ------------


def _str(file: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(file, key, f"must be a non-empty string, got {value!r}", f'write e.g. {key} = "..."')
    return value.strip()


def _str_list(file: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(file, key, f"must be a list of strings, got {value!r}", f'write e.g. {key} = ["..."]')
    return tuple(v.strip() for v in value)


def _bool(file: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError(file, key, f"must be true or false, got {value!r}", f"write {key} = true")
    return value


def _seed(file: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise SpecError(file, key, f"must be an integer from 0 to 4294967295, got {value!r}", "write e.g. seed = 1234")
    return value


def _gpus(file: Path, key: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not _GPUS.match(value):
        raise SpecError(
            file, key, f"invalid value {value!r}", 'use "all", "none", a count like 2, or "device=0,1"'
        )
    return None if value in ("none", "0") else value


def _image_ref(file: Path, key: str, value: Any) -> str:
    ref = _str(file, key, value)
    if not IMAGE_REF.match(ref):
        raise SpecError(
            file, key, f"{ref!r} is not a valid image reference",
            'use [registry/]name[:tag][@sha256:<64 hex>], lowercase, e.g. "python:3.11-slim-bookworm"',
        )
    return ref


def _python(file: Path, key: str, value: Any) -> str:
    v = _str(file, key, value)
    if not re.fullmatch(r"3\.[0-9]{1,2}", v):
        raise SpecError(file, key, f"{v!r} is not a Python version", 'write a minor version like python = "3.11"')
    return v


def _platforms(file: Path, key: str, value: Any) -> tuple[str, ...]:
    items = _str_list(file, key, value)
    for p in items:
        if p not in PLATFORMS:
            raise SpecError(file, key, f"unknown platform {p!r}", f"use one of {', '.join(PLATFORMS)}")
    if not items:
        raise SpecError(file, key, "is empty", 'write platforms = ["linux/amd64"]')
    return items


def _choice(choices: tuple[str, ...]) -> Callable[[Path, str, Any], str]:
    def check(file: Path, key: str, value: Any) -> str:
        v = _str(file, key, value)
        if v not in choices:
            raise SpecError(file, key, f"invalid value {v!r}", f"use one of {', '.join(choices)}")
        return v

    return check


def _str_table(file: Path, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SpecError(file, key, f"must be a table, got {value!r}", f"write [tool.envbuild.{key}] NAME = \"value\"")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise SpecError(file, f"{key}.{k}", f"must be a string, got {v!r}", f'write {k} = "..."')
        out[str(k)] = str(v)
    return out


def _tracking(file: Path, key: str, value: Any) -> dict[str, str]:
    table = _str_table(file, key, value)
    for k in table:
        if k not in ("mlflow",):
            raise SpecError(file, f"{key}.{k}", "unknown tracking backend", 'use mlflow = "sqlite:///mlruns.db" or a URI')
    return table


def _file(file: Path, key: str, value: Any) -> str:
    return _str(file, key, value)


# key -> (checker, Spec field)
KEYS: dict[str, tuple[Callable[[Path, str, Any], Any], str]] = {
    "name": (_str, "name"),
    "base": (_image_ref, "base"),
    "python": (_python, "python"),
    "platforms": (_platforms, "platforms"),
    "requirements": (_file, "requirements"),
    "groups": (_str_list, "groups"),
    "conda": (_file, "conda"),
    "system-packages": (_str_list, "system_packages"),
    "data": (_str_list, "data"),
    "outputs": (_str_list, "outputs"),
    "seed": (_seed, "seed"),
    "deterministic": (_bool, "deterministic"),
    "gpus": (_gpus, "gpus"),
    "network": (_choice(NETWORKS), "network"),
    "env": (_str_table, "env"),
    "resolver": (_choice(RESOLVERS), "resolver"),
    "image": (_image_ref, "image"),
    "tracking": (_tracking, "tracking"),
}


# --- loading -------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "... (at line L, column C)": keep it, it is the useful part.
        raise SpecError(path, None, f"invalid TOML: {e}", "fix the syntax at that line and column") from None


def _unknown_key(file: Path, table: str, key: str) -> SpecError:
    close = difflib.get_close_matches(key, list(KEYS), n=1, cutoff=0.6)
    fix = f"did you mean '{close[0]}'?" if close else f"valid keys are: {', '.join(sorted(KEYS))}"
    return SpecError(file, f"{table}{key}", "unknown key", fix)


def _check_table(file: Path, table: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate every key of one settings table; return {Spec field: value}."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise _unknown_key(file, table, key)
        check, attr = KEYS[key]
        out[attr] = check(file, f"{table}{key}", value)
    return out


def _safe_name(name: str) -> str:
    n = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    return n or "project"


def _read_requirements(path: Path) -> tuple[str, ...]:
    """Requirement lines of a requirements file (comments, blanks and options dropped)."""
    reqs = []
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            reqs.append(line)
    return tuple(reqs)


def find_config(root: Path) -> Path | None:
    """The file that holds the settings: envbuild.toml, else pyproject.toml."""
    for name in (ENVBUILD_TOML, PYPROJECT):
        if (root / name).is_file():
            return root / name
    return None


def load_spec(root: Path | str = ".") -> Spec:
    root = Path(root).resolve()
    pyproject_path = root / PYPROJECT
    standalone_path = root / ENVBUILD_TOML
    pyproject = read_toml(pyproject_path) if pyproject_path.is_file() else None
    standalone = read_toml(standalone_path) if standalone_path.is_file() else None
    if pyproject is None and standalone is None:
        raise SpecError(root, None, f"no {PYPROJECT} or {ENVBUILD_TOML} here", "run `envbuild init` to write one")

    settings: dict[str, Any] = {}
    source = standalone_path if standalone is not None else pyproject_path
    tool = (pyproject or {}).get("tool", {}).get("envbuild")
    if tool is not None:
        if not isinstance(tool, dict):
            raise SpecError(pyproject_path, "tool.envbuild", "must be a table", "write [tool.envbuild]")
        settings = _check_table(pyproject_path, "tool.envbuild.", tool)
        source = pyproject_path
    if standalone is not None:
        own = _check_table(standalone_path, "", standalone)
        for attr, value in own.items():
            if attr in settings and settings[attr] != value:
                key = next(k for k, (_, a) in KEYS.items() if a == attr)
                raise SpecError(
                    standalone_path, key,
                    f"disagrees with [tool.envbuild] {key} in {PYPROJECT} ({value!r} vs {settings[attr]!r})",
                    "keep the setting in one file only",
                )
        settings = {**own, **settings}
        if tool is None:
            source = standalone_path

    project = (pyproject or {}).get("project", {})
    name = settings.get("name") or project.get("name") or root.name

    # Python dependencies, first found: `requirements` key, [project] dependencies, requirements.in
    requirements: Path | None = None
    groups = settings.get("groups", ())
    if "requirements" in settings:
        requirements = root / settings["requirements"]
        if not requirements.is_file():
            raise SpecError(source, _key_in(source, "requirements"), f"file {settings['requirements']!r} not found",
                            "create it or fix the path")
        deps, deps_source = _read_requirements(requirements), settings["requirements"]
    elif project.get("dependencies") is not None:
        deps = project["dependencies"]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise SpecError(pyproject_path, "project.dependencies", "must be a list of strings", 'write dependencies = ["numpy>=1.26"]')
        deps, deps_source = tuple(d.strip() for d in deps), f"{PYPROJECT} [project] dependencies"
    elif (root / REQUIREMENTS_IN).is_file():
        requirements = root / REQUIREMENTS_IN
        deps, deps_source = _read_requirements(requirements), REQUIREMENTS_IN
    else:
        deps, deps_source = (), ""
    optional = project.get("optional-dependencies", {}) or {}
    for g in groups:
        if g not in optional:
            raise SpecError(source, _key_in(source, "groups"), f"no [project.optional-dependencies] group {g!r}",
                            f"use one of: {', '.join(optional) or '(none defined)'}")
        deps = deps + tuple(optional[g])

    conda = None
    if "conda" in settings:
        conda = root / settings["conda"]
        if not conda.is_file():
            raise SpecError(source, _key_in(source, "conda"), f"file {settings['conda']!r} not found",
                            "create the environment.yml or fix the path")
    for d in settings.get("data", ()):
        if not (root / d).exists():
            raise SpecError(source, _key_in(source, "data"), f"data path {d!r} does not exist",
                            "create it, or remove it from the list")

    if not deps and conda is None:
        file = requirements or (pyproject_path if pyproject is not None else source)
        raise SpecError(file, _deps_key(deps_source),
                        f"no dependencies to lock (looked in {deps_source or 'project.dependencies, requirements.in'})",
                        'add some, e.g. dependencies = ["numpy>=1.26"], or set conda = "environment.yml"')

    return Spec(
        root=root,
        source=source,
        name=_safe_name(str(name)),
        base=settings.get("base", DEFAULT_BASE),
        python=settings.get("python", DEFAULT_PYTHON),
        platforms=settings.get("platforms", ("linux/amd64",)),
        dependencies=deps,
        dependencies_source=deps_source,
        requirements=requirements,
        groups=groups,
        conda=conda,
        system_packages=settings.get("system_packages", ()),
        data=settings.get("data", ()),
        outputs=settings.get("outputs", ("outputs",)),
        seed=settings.get("seed", DEFAULT_SEED),
        deterministic=settings.get("deterministic", True),
        gpus=settings.get("gpus"),
        network=settings.get("network", "none"),
        env=settings.get("env", {}),
        resolver=settings.get("resolver", "pip-tools"),
        image=settings.get("image"),
        tracking=settings.get("tracking", {}),
    )


def _key_in(source: Path, key: str) -> str:
    return f"tool.envbuild.{key}" if source.name == PYPROJECT else key


def _deps_key(deps_source: str) -> str:
    return "project.dependencies" if not deps_source or deps_source.startswith(PYPROJECT) else "requirements"
