"""The project spec: `[tool.envbuild]` in pyproject.toml or a standalone envbuild.toml.

One typed model (`Spec`) that every other module reads; every bad input becomes a
`SpecError` naming the file, the key and the fix.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from envbuild import platforms
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
RESOLVERS = ("uv", "pip-tools")
PLATFORMS = platforms.NAMES

# Docker's reference grammar, simplified: [host[:port]/]path[:tag][@sha256:hex]
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
IMAGE_REF = re.compile(rf"^{_HOST}?{_PATH}(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$")
_GPU_ID = r"(?:[0-9]+|GPU-[0-9a-fA-F-]+)"  # an index or a UUID, as nvidia-smi -L prints them
_GPUS = re.compile(rf"^(all|none|[0-9]+|device={_GPU_ID}(,{_GPU_ID})*)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # what a shell passes on (targets/local.py GATE)
_CUDA = re.compile(r"^(auto|cpu|1[1-9]\.[0-9])$")  # a CUDA major.minor that has a driver floor (envbuild/cuda.py)
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")  # name or name=version


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
    resolver: str = "uv"
    image: str | None = None  # repository `envbuild push` pushes to by default
    tracking: dict[str, str] = field(default_factory=dict)
    override_base: tuple[str, ...] = ()  # packages a team base pins that this project installs its own version of
    cuda: str = "auto"  # "auto", "cpu" or a CUDA version "12.8": which torch build lock picks
    torch_sources: dict[str, str] = field(default_factory=dict)  # cuda value -> index URL or find-links dir
    dev_groups: tuple[str, ...] = ()  # groups for working interactively: a dev image over the training one (dev.py)
    dev_dependencies: tuple[str, ...] = ()  # their requirements
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # [targets.NAME]: where runs go (--on NAME)

    @property
    def uses_pip(self) -> bool:
        return bool(self.dependencies)

    def as_dict(self) -> dict[str, Any]:
        """The effective settings as plain JSON types (paths as strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
        return out


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


def _env(file: Path, key: str, value: Any) -> dict[str, str]:
    table = _str_table(file, key, value)
    for k in table:
        if not ENV_NAME.match(k):
            raise SpecError(file, f"{key}.{k}", "is not a valid environment variable name",
                            "use letters, digits and _ only, not starting with a digit")
    return table


def _tracking(file: Path, key: str, value: Any) -> dict[str, str]:
    table = _str_table(file, key, value)
    for k in table:
        if k not in ("mlflow",):
            raise SpecError(file, f"{key}.{k}", "unknown tracking backend", 'use mlflow = "sqlite:///mlruns.db" or a URI')
    return table


def _cuda(file: Path, key: str, value: Any) -> str:
    v = _str(file, key, value)
    if not _CUDA.match(v):
        raise SpecError(file, key, f"invalid value {v!r}", 'use "auto", "cpu" or a CUDA version like "12.8" or "13.0"')
    return v


def _torch_sources(file: Path, key: str, value: Any) -> dict[str, str]:
    table = _str_table(file, key, value)
    for k in table:
        if k == "auto" or not _CUDA.match(k):
            raise SpecError(file, f"{key}.{k}", "is not a torch build",
                            'name it like the cuda setting: "cpu" or a CUDA version like "12.8"')
    return table


def _file(file: Path, key: str, value: Any) -> str:
    return _str(file, key, value)


def _apt_list(file: Path, key: str, value: Any) -> tuple[str, ...]:
    items = _str_list(file, key, value)
    for p in items:
        if not _APT_NAME.match(p):
            raise SpecError(file, key, f"{p!r} is not a Debian package name",
                            'write lowercase names, optionally pinned: ["git", "libgomp1=12.2.0-14"]')
    return items


def _positive(file: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(file, key, f"must be a whole number of at least 1, got {value!r}", f"write e.g. {key.rsplit('.', 1)[-1]} = 1")
    return value


def _abs_path(file: Path, key: str, value: Any) -> str:
    v = _str(file, key, value)
    if not v.startswith("/"):
        raise SpecError(file, key, f"{v!r} is not an absolute path", 'write a path every node sees, e.g. "/shared/envbuild"')
    return v


def _ssh_url(file: Path, key: str, value: Any) -> str:
    v = _str(file, key, value)
    if not re.fullmatch(r"ssh://([^@/:\s]+@)?[^@/:\s]+(:\d+)?/?", v):
        raise SpecError(file, key, f"{v!r} is not an ssh URL", 'write host = "ssh://user@gpu-box" (or "ssh://user@gpu-box:2222")')
    return v.rstrip("/")


def _remote_path(file: Path, key: str, value: Any) -> str:
    v = _str(file, key, value)
    if not (v.startswith("/") or v.startswith("~/")) or "\n" in v:
        raise SpecError(file, key, f"{v!r} is neither absolute nor under ~/", 'write e.g. store = "~/.cache/envbuild/remote"')
    return v


# The keys a [targets.NAME] table takes, per backend (envbuild/targets/ runs them; README lists them).
TARGET_BACKENDS = ("local", "slurm", "k8s", "ssh")
TARGET_KEYS: dict[str, dict[str, Callable[[Path, str, Any], Any]]] = {
    "local": {"gpus": _gpus},
    "slurm": {"gpus": _gpus, "partition": _str, "nodes": _positive, "time": _str, "cpus-per-task": _positive,
              "mem": _str, "gres": _str, "account": _str, "qos": _str, "shared": _abs_path,
              "runtime": _choice(("oci", "pyxis", "apptainer")), "gpu-hook": _choice(("nvidia", "none")),
              "sbatch-args": _str_list},
    "k8s": {"gpus": _gpus, "namespace": _str, "context": _str, "kubeconfig": _str, "gpu-resource": _str,
            "queue": _str, "volume": _str, "subpath": _str, "cpu": _str, "memory": _str, "service-account": _str},
    "ssh": {"gpus": _gpus, "host": _ssh_url, "store": _remote_path, "ssh-args": _str_list},
}


def _targets(file: Path, key: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise SpecError(file, key, f"must be a table of targets, got {value!r}", f'write [{key}.lab] backend = "slurm"')
    out = {}
    for name, table in value.items():
        where = f"{key}.{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise SpecError(file, where, "is not a target name", "use letters, digits, - and _ (e.g. lab, gpu-box)")
        if not isinstance(table, dict):
            raise SpecError(file, where, f"must be a table, got {table!r}", f'write [{where}] backend = "slurm"')
        backend = table.get("backend", name if name in TARGET_BACKENDS else None)
        if backend not in TARGET_BACKENDS:
            raise SpecError(file, f"{where}.backend", f"{'missing' if backend is None else f'unknown backend {backend!r}'}",
                            f"write backend = one of {', '.join(TARGET_BACKENDS)}")
        checked: dict[str, Any] = {"backend": backend}
        for k, v in table.items():
            if k == "backend":
                continue
            keys = TARGET_KEYS[backend]
            if k not in keys:
                import difflib

                close = difflib.get_close_matches(k, list(keys), n=1, cutoff=0.6)
                raise SpecError(file, f"{where}.{k}", f"unknown key for a {backend} target",
                                f"did you mean '{close[0]}'?" if close else f"valid keys are: backend, {', '.join(sorted(keys))}")
            checked[k] = keys[k](file, f"{where}.{k}", v)
        out[name] = checked
    return out


# key -> (checker, Spec field)
KEYS: dict[str, tuple[Callable[[Path, str, Any], Any], str]] = {
    "name": (_str, "name"),
    "base": (_image_ref, "base"),
    "python": (_python, "python"),
    "platforms": (_platforms, "platforms"),
    "requirements": (_file, "requirements"),
    "groups": (_str_list, "groups"),
    "dev-groups": (_str_list, "dev_groups"),
    "conda": (_file, "conda"),
    "system-packages": (_apt_list, "system_packages"),
    "data": (_str_list, "data"),
    "outputs": (_str_list, "outputs"),
    "seed": (_seed, "seed"),
    "deterministic": (_bool, "deterministic"),
    "gpus": (_gpus, "gpus"),
    "network": (_choice(NETWORKS), "network"),
    "env": (_env, "env"),
    "resolver": (_choice(RESOLVERS), "resolver"),
    "image": (_image_ref, "image"),
    "tracking": (_tracking, "tracking"),
    "override-base": (_str_list, "override_base"),
    "cuda": (_cuda, "cuda"),
    "torch-sources": (_torch_sources, "torch_sources"),
    "targets": (_targets, "targets"),
}


# --- loading -------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "... (at line L, column C)": keep it, it is the useful part.
        msg = str(e)
        if msg.endswith("(at end of document)"):
            lines = path.read_bytes().count(b"\n") + 1
            msg = msg.replace("(at end of document)", f"(at end of document, line {lines}: something is left open)")
        raise SpecError(path, None, f"invalid TOML: {msg}", "fix the TOML syntax there") from None
    except UnicodeDecodeError as e:
        raise SpecError(path, None, f"not UTF-8 text (byte {e.start})", "save the file as UTF-8") from None
    except OSError as e:
        raise SpecError(path, None, f"cannot be read ({e.strerror})", "check the file's permissions") from None


def _unknown_key(file: Path, table: str, key: str) -> SpecError:
    if key == "dependencies":  # a common slip: deps belong to [project] or a requirements file
        fix = 'list them in [project] dependencies, or name a file with requirements = "requirements.in"'
    elif key == "tool" and not table:
        fix = f"{ENVBUILD_TOML} takes the keys at the top level: remove the [tool.envbuild] header"
    else:
        import difflib

        close = difflib.get_close_matches(key.replace("_", "-"), list(KEYS), n=1, cutoff=0.6)
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


def _read_requirements(path: Path, seen: frozenset[Path] = frozenset()) -> tuple[str, ...]:
    """Requirement lines of a requirements file, following `-r` includes.

    Comments, blanks and other pip options (-c, --index-url, -e ...) are dropped: they are
    not dependencies (the resolver reads the file itself).
    """
    reqs: list[str] = []
    text = path.read_text(errors="replace").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$", line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if not inc.is_file():
                raise SpecError(path, m.group(0), f"included file {m.group(1)!r} not found", "create it or fix the path")
            if inc not in seen:
                reqs.extend(_read_requirements(inc, seen | {path.resolve()}))
        elif not line.startswith("-"):
            reqs.append(line)
    return tuple(reqs)


def find_config(root: Path) -> Path | None:
    """The file that holds the settings: envbuild.toml, else pyproject.toml."""
    for name in (ENVBUILD_TOML, PYPROJECT):
        if (root / name).is_file():
            return root / name
    return None


def _table(file: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(file, key, f"must be a table, got {value!r}", f"write it as [{key}]")
    return value


def _tool_table(path: Path, pyproject: dict[str, Any]) -> dict[str, Any] | None:
    tool = _table(path, "tool", pyproject.get("tool", {}))
    if "envbuild" in tool:
        return _table(path, "tool.envbuild", tool["envbuild"])
    # [tool.envbiuld]: a typo would silently mean "no settings"; say so instead.
    import difflib

    close = difflib.get_close_matches("envbuild", list(tool), n=1, cutoff=0.75)
    if close:
        raise SpecError(path, f"tool.{close[0]}", "unknown table", "did you mean [tool.envbuild]?")
    return None


def load_spec(root: Path | str = ".") -> Spec:
    """Read and validate the project's settings; raise SpecError on the first bad input."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise SpecError(root, None, "no such project directory", "give an existing directory")
    pyproject_path = root / PYPROJECT
    standalone_path = root / ENVBUILD_TOML
    pyproject = read_toml(pyproject_path) if pyproject_path.is_file() else None
    standalone = read_toml(standalone_path) if standalone_path.is_file() else None
    if pyproject is None and standalone is None:
        raise SpecError(root, None, f"no {PYPROJECT} or {ENVBUILD_TOML} here", "run `envbuild init` to write one")

    # settings: {Spec field: value}; origin: {Spec field: (file, key as written there)}
    settings: dict[str, Any] = {}
    origin: dict[str, tuple[Path, str]] = {}
    tool = _tool_table(pyproject_path, pyproject) if pyproject is not None else None
    if tool is not None:
        settings = _check_table(pyproject_path, "tool.envbuild.", tool)
        origin = {attr: (pyproject_path, f"tool.envbuild.{_key_of(attr)}") for attr in settings}
    if standalone is not None:
        own = _check_table(standalone_path, "", standalone)
        for attr, value in own.items():
            if attr in settings and settings[attr] != value:
                key = _key_of(attr)
                raise SpecError(
                    standalone_path, key,
                    f"disagrees with [tool.envbuild] {key} in {pyproject_path} ({value!r} vs {settings[attr]!r})",
                    f"keep the setting in one file only (delete it from {ENVBUILD_TOML} or from {PYPROJECT})",
                )
            if attr not in settings:
                origin[attr] = (standalone_path, _key_of(attr))
        settings = {**own, **settings}
    source = pyproject_path if tool is not None else (standalone_path if standalone is not None else pyproject_path)

    def where(attr: str) -> tuple[Path, str]:
        return origin.get(attr, (source, _key_in(source, _key_of(attr))))

    project = _table(pyproject_path, "project", (pyproject or {}).get("project", {}))
    name = settings.get("name") or project.get("name") or root.name
    if not isinstance(name, str):
        raise SpecError(pyproject_path, "project.name", f"must be a string, got {name!r}", 'write name = "my-project"')

    # Python dependencies, first found: `requirements` key, [project] dependencies, requirements.in
    requirements: Path | None = None
    groups = settings.get("groups", ())
    if "requirements" in settings:
        requirements = root / settings["requirements"]
        if not requirements.is_file():
            raise SpecError(*where("requirements"), f"file {settings['requirements']!r} not found in {root}",
                            "create it or fix the path")
        deps = _read_requirements(requirements)
        deps_source = settings["requirements"]
    elif project.get("dependencies") is not None:
        deps = project["dependencies"]
        if not isinstance(deps, list) or not all(isinstance(d, str) and d.strip() for d in deps):
            raise SpecError(pyproject_path, "project.dependencies", f"must be a list of strings, got {deps!r}",
                            'write dependencies = ["numpy>=1.26"]')
        deps, deps_source = tuple(d.strip() for d in deps), f"{PYPROJECT} [project] dependencies"
    elif (root / REQUIREMENTS_IN).is_file():
        requirements = root / REQUIREMENTS_IN
        deps, deps_source = _read_requirements(requirements), REQUIREMENTS_IN
    else:
        deps, deps_source = (), ""
    optional = _table(pyproject_path, "project.optional-dependencies", project.get("optional-dependencies", {}))
    dev_groups = settings.get("dev_groups", ())
    dev_deps: tuple[str, ...] = ()
    for g in (*groups, *dev_groups):
        key = "groups" if g in groups else "dev_groups"
        if g not in optional:
            raise SpecError(*where(key), f"no [project.optional-dependencies] group {g!r}",
                            f"use one of: {', '.join(optional) or '(none defined)'}")
        extra = optional[g]
        if not isinstance(extra, list) or not all(isinstance(d, str) for d in extra):
            raise SpecError(pyproject_path, f"project.optional-dependencies.{g}", "must be a list of strings",
                            f'write {g} = ["pytest>=8"]')
        if key == "groups":
            deps = deps + tuple(d.strip() for d in extra)
        else:  # locked apart, against the training pins, so the training image never changes for them
            dev_deps = dev_deps + tuple(d.strip() for d in extra)

    conda = None
    if "conda" in settings:
        conda = root / settings["conda"]
        if not conda.is_file():
            raise SpecError(*where("conda"), f"file {settings['conda']!r} not found in {root}",
                            "create the environment.yml or fix the path")
    for d in settings.get("data", ()):
        if not (root / d).exists():
            raise SpecError(*where("data"), f"data path {d!r} does not exist in {root}",
                            "create it, or remove it from the list")

    if not deps and conda is None:
        if requirements is not None:
            file, key = requirements, "requirements"
            if "requirements" in settings:
                file, key = where("requirements")
        else:
            file, key = (pyproject_path if pyproject is not None else source), "project.dependencies"
        raise SpecError(file, key,
                        f"no dependencies to lock (looked in {deps_source or 'project.dependencies, requirements.in'})",
                        'add some, e.g. dependencies = ["numpy>=1.26"], or set conda = "environment.yml"')

    return Spec(
        root=root,
        source=source,
        name=_safe_name(name),
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
        resolver=settings.get("resolver", "uv"),
        image=settings.get("image"),
        tracking=settings.get("tracking", {}),
        override_base=tuple(settings.get("override_base", ())),
        cuda=settings.get("cuda", "auto"),
        torch_sources=settings.get("torch_sources", {}),
        dev_groups=dev_groups,
        dev_dependencies=dev_deps,
        targets=settings.get("targets", {}),
    )


def _key_of(attr: str) -> str:
    """The TOML key of a Spec field (system_packages -> system-packages)."""
    return next(k for k, (_, a) in KEYS.items() if a == attr)


def key_of(spec: Spec, key: str) -> str:
    """How a key is written in the spec's own file (tool.envbuild.cuda or cuda), for messages."""
    return _key_in(spec.source, key)


def _key_in(source: Path, key: str) -> str:
    return f"tool.envbuild.{key}" if source.name == PYPROJECT else key
