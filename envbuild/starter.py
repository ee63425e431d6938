"""The starter config `envbuild init` writes: detect what the project has, write settings for it.

Into pyproject.toml a [tool.envbuild] table is added and every other byte of the file is kept;
otherwise a standalone envbuild.toml is written. Nothing is overwritten without `force`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_bytes
from envbuild.spec import DEFAULT_BASE, DEFAULT_PYTHON, DEFAULT_SEED, ENVBUILD_TOML, PYPROJECT, read_toml

REQUIREMENT_FILES = ("requirements.in", "requirements.txt")
CONDA_FILES = ("environment.yml", "environment.yaml")
DATA_DIRS = ("data",)

# A table header line, e.g. `[tool.envbuild]`, `[[tool.x]]`, `[ "tool" . envbuild ]` (spaces allowed).
_HEADER = re.compile(rb"^[ \t]*\[")
_OWN_HEADER = re.compile(rb"^[ \t]*\[\[?[ \t]*tool[ \t]*\.[ \t]*envbuild[ \t]*(\]|\.)")


@dataclass(frozen=True)
class Starter:
    path: Path  # the file written
    detected: tuple[str, ...]  # what the settings were based on, e.g. ("requirements.in",)
    settings: tuple[tuple[str, str], ...]  # (key, TOML value) as written, in order
    replaced: bool  # an existing config was replaced (--force)


def _first(root: Path, names: tuple[str, ...], kind: str = "file") -> str | None:
    for n in names:
        p = root / n
        if (p.is_file() if kind == "file" else p.is_dir()):
            return n
    return None


def starter_settings(root: Path, pyproject: dict | None) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The (key, TOML value) pairs for this project and the files they were based on."""
    detected: list[str] = []
    settings: list[tuple[str, str]] = []
    if pyproject is None:
        settings.append(("name", _q(_name(root))))
    settings += [("base", _q(DEFAULT_BASE)), ("python", _q(DEFAULT_PYTHON))]
    has_project_deps = pyproject is not None and "dependencies" in pyproject.get("project", {})
    req = _first(root, REQUIREMENT_FILES)
    conda = _first(root, CONDA_FILES)
    if has_project_deps:
        detected.append(f"{PYPROJECT} [project] dependencies")
    elif req:
        detected.append(req)
        settings.append(("requirements", _q(req)))
    elif not conda:
        settings.append(("requirements", _q("requirements.in")))  # the file the user creates next
    if conda:
        detected.append(conda)
        settings.append(("conda", _q(conda)))
    data = _first(root, DATA_DIRS, kind="dir")
    if data:
        detected.append(f"{data}/")
        settings.append(("data", f'["{data}/"]'))
    settings += [("outputs", '["outputs/"]'), ("seed", str(DEFAULT_SEED)), ("deterministic", "true"),
                 ("network", _q("none"))]
    return tuple(settings), tuple(detected)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _name(root: Path) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", root.name.lower()).strip("._-") or "project"


def _render(settings: tuple[tuple[str, str], ...], header: str | None, nl: str) -> str:
    lines = [header] if header else []
    lines.append("# written by `envbuild init`; check it with `envbuild config`")
    lines += [f"{k} = {v}" for k, v in settings]
    lines.append('# gpus = "all"  # use the host\'s NVIDIA GPUs when it has them')
    return nl.join(lines) + nl


def _without_own_table(data: bytes) -> tuple[bytes, int]:
    """`data` with the [tool.envbuild] table(s) cut out, and the offset where the first one began."""
    lines = data.splitlines(keepends=True)
    out: list[bytes] = []
    at, inside = -1, False
    for line in lines:
        if _HEADER.match(line):
            inside = bool(_OWN_HEADER.match(line))
            if inside and at < 0:
                at = sum(map(len, out))
        if not inside:
            out.append(line)
    return b"".join(out), at


def write_starter(root: Path, force: bool = False) -> Starter:
    """Write the starter config into `root`; refuse to overwrite one unless `force`."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise EnvbuildError(f"{root}: no such project directory; give an existing directory")
    pyproject_path, standalone_path = root / PYPROJECT, root / ENVBUILD_TOML
    pyproject = read_toml(pyproject_path) if pyproject_path.is_file() else None
    has_table = pyproject is not None and "envbuild" in pyproject.get("tool", {})
    settings, detected = starter_settings(root, pyproject)
    if standalone_path.exists() or pyproject is None:
        # a standalone envbuild.toml: either the project has no pyproject, or it chose this file already
        replaced = standalone_path.exists()
        if replaced and not force:
            raise EnvbuildError(f"{standalone_path}: exists already; edit it, or run `envbuild init --force` to replace it")
        atomic_write_bytes(standalone_path, _render(settings, None, "\n").encode())
        return Starter(standalone_path, detected, settings, replaced)

    if has_table and not force:
        raise EnvbuildError(f"{pyproject_path}: tool.envbuild: the table exists already; edit it, "
                            "or run `envbuild init --force` to replace it")
    data = pyproject_path.read_bytes()
    nl = "\r\n" if b"\r\n" in data else "\n"
    at = len(data)
    if has_table:
        data, at = _without_own_table(data)
        if at < 0:  # written as dotted keys under [tool] or inline: not ours to rewrite
            raise EnvbuildError(f"{pyproject_path}: tool.envbuild: not written as a [tool.envbuild] table; "
                                "edit it by hand")
    before, after = data[:at], data[at:]
    if before and not before.endswith(b"\n"):
        before += nl.encode()
    table = _render(settings, "[tool.envbuild]", nl).encode()
    sep = nl.encode() if before.strip() and not before.endswith(nl.encode() * 2) else b""
    if after.strip():
        table += nl.encode()
    atomic_write_bytes(pyproject_path, before + sep + table + after, mode=pyproject_path.stat().st_mode & 0o7777)
    return Starter(pyproject_path, detected, settings, has_table)
