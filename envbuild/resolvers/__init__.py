"""Resolvers: one interface that turns a spec's Python dependencies into requirements.lock.

Each pip resolver module (piptools, uv) has
    resolve(spec, out_path, upgrade, upgrade_packages, previous) -> ResolverInfo
and writes the same format: `name==version` pins with every artifact's sha256, no index URL,
no find-links path, no credential. `pip_resolver(spec)` picks the module: uv by default (fast,
and it resolves for any target); pip-tools when the spec says `resolver = "pip-tools"`, which can
only resolve for the interpreter it runs on, so other targets still go to uv. Both get the same
sources (resolvers/indexes.py), so both lock the same pins.
Conda solvers (rattler, conda_lock) have the same shape for conda-lock.yml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from envbuild import platforms
from envbuild.errors import EnvbuildError

HEADER_COMMAND = "envbuild lock"
# Target platform -> what uv calls it (Debian bookworm bases ship glibc 2.36).
UV_PLATFORMS = {p.name: p.uv for p in platforms.ALL}


@dataclass(frozen=True)
class ResolverInfo:
    name: str
    version: str
    note: str = ""  # why this resolver was used instead of the configured one, when it was

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


class PipResolver(Protocol):
    def resolve(self, spec: object, out_path: Path, upgrade: bool, upgrade_packages: Sequence[str],
                previous: Path | None, constraints: Path | None = None) -> ResolverInfo: ...


class ResolutionError(EnvbuildError):
    """Unsatisfiable or unknown requirements, or an unreachable index (exit 2)."""


def host_target() -> tuple[str, str | None]:
    """(python X.Y, platform) of the interpreter pip-tools would resolve with."""
    import platform

    plat = platforms.from_machine(platform.machine()) if sys.platform == "linux" else None
    return f"{sys.version_info[0]}.{sys.version_info[1]}", plat


def pip_resolver_name(spec: object) -> tuple[str, str]:
    """(resolver to use, note): pip-tools when it can target the spec, else uv with the reason."""
    wanted = getattr(spec, "resolver", "uv")
    if wanted == "uv":
        return "uv", ""
    py, plat = host_target()
    platforms = tuple(getattr(spec, "platforms", ()))
    if spec.python != py:  # type: ignore[attr-defined]
        return "uv", (f"pip-tools can only resolve for the Python it runs on ({py}); "
                      f"resolved for Python {spec.python} with uv --python-version instead")  # type: ignore[attr-defined]
    if platforms != (plat,):
        return "uv", (f"pip-tools can only resolve for this host's platform ({plat}); "
                      f"resolved for {', '.join(platforms)} with uv instead")
    return "pip-tools", ""


def pip_resolver(spec: object) -> tuple[PipResolver, str]:
    """The resolver module for the spec, and a note when it is not the configured one."""
    name, note = pip_resolver_name(spec)
    if name == "uv":
        from envbuild.resolvers import uv as mod
    else:
        from envbuild.resolvers import piptools as mod
    return mod, note  # type: ignore[return-value]


def tool(name: str) -> str:
    """A resolver executable: next to this interpreter first (the venv), then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which(name)
    if not found:
        raise EnvbuildError(f"{name} not found next to {sys.executable} or on PATH; pip install envbuild's dependencies")
    return found


def overlay_env(env: dict[str, str | None] | None) -> dict[str, str]:
    """os.environ with `env` laid over it; a None value removes that variable."""
    return {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}


def run_tool(args: list[str], cwd: Path, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=overlay_env(env))


def tool_version(args: list[str], dist: str | None = None) -> str:
    """The tool's version: from the installed distribution when it is this venv's, else `args`' output."""
    if dist and Path(args[0]).parent == Path(sys.executable).parent:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(dist)
        except PackageNotFoundError:
            pass
    out = subprocess.run(args, capture_output=True, text=True).stdout
    m = re.search(r"(\d+\.\d+(?:\.\d+)?\S*)", out)
    return m.group(1) if m else "unknown"


# --- inputs: the requirement files a resolver compiles ------------------------------------


def input_files(spec: object, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """Requirement files to compile (paths) and {generated path: label} for the annotations.

    A requirements file from the spec is passed as is (its -r/-c/option lines keep working);
    pyproject dependencies and optional groups go into a generated file in `workdir`.
    """
    files: list[str] = []
    labels: dict[str, str] = {}
    requirements = getattr(spec, "requirements", None)
    root: Path = spec.root  # type: ignore[attr-defined]
    deps = list(spec.dependencies)  # type: ignore[attr-defined]
    if requirements is not None:
        files.append(str(requirements))
        own = set(_file_requirements(requirements))
        deps = [d for d in deps if d not in own]  # what is left came from groups
        label = "pyproject.toml [optional-dependencies]"
    else:
        label = "pyproject.toml"
    if deps:
        gen = workdir / "envbuild-dependencies.in"
        gen.write_text("".join(d + "\n" for d in deps))
        files.append(str(gen))
        labels[str(gen)] = label
    labels[str(root) + os.sep] = ""
    return files, labels


def _file_requirements(path: Path) -> list[str]:
    from envbuild.spec import _read_requirements

    return list(_read_requirements(path))


# --- output hygiene: nothing machine-specific may end up in a lockfile ----------------------

_CRED = re.compile(r"(\w+://)[^/\s@]+@")
_ABS_PATH = re.compile(r"(?<![\w.:/])(/[^\s,)]+)")


def scrub(text: str, labels: dict[str, str]) -> str:
    """Replace temp/project paths by labels, credentials and other absolute paths by basenames."""
    for path, label in sorted(labels.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, label)
    text = _CRED.sub(r"\1", text)
    text = re.sub(r"file://(/[^\s]*)", lambda m: os.path.basename(m.group(1).rstrip("/")), text)
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            line = _ABS_PATH.sub(lambda m: os.path.basename(m.group(1).rstrip("/")), line)
        out.append(line)
    return "\n".join(out) + "\n"


def leaks(text: str) -> list[str]:
    """Lines that still carry a file:// URL, an absolute path, a credential or an index option."""
    bad = []
    for line in text.splitlines():
        s = line.strip()
        if ("file://" in s or _CRED.search(s) or _ABS_PATH.search(s)
                or s.startswith(("--index-url", "--extra-index-url", "--find-links", "-i ", "-f ", "--trusted-host"))):
            bad.append(line)
    return bad


def compile_requirements(spec: Any, out_path: Path, command: list[str], upgrade: bool,
                         upgrade_packages: Sequence[str], previous: Path | None,
                         explain: Callable[[str], ResolutionError], env: dict[str, str | None] | None = None,
                         constraints: Path | None = None) -> None:
    """Run a pip-compile-like `command` (it gets `-o OUT [--upgrade] [--upgrade-package N]... FILES`).

    The previous lock is copied to the output first: both pip-compile and uv keep the pins they
    find there unless told to upgrade. The result is scrubbed and written to out_path.
    """
    with tempfile.TemporaryDirectory(prefix="envbuild-compile-") as tmp:
        work = Path(tmp)
        files, labels = input_files(spec, work)
        labels[str(work) + "/"] = ""
        out = work / "requirements.lock"
        if previous is not None and previous.is_file() and not upgrade:
            shutil.copyfile(previous, out)
        args = [*command, "-o", str(out), *(["--upgrade"] if upgrade else [])]
        for name in upgrade_packages:
            args += ["--upgrade-package", name]
        if constraints is not None:  # a team base's pins (envbuild/teambase.py)
            args += ["-c", str(constraints)]
        proc = run_tool([*args, *files], cwd=spec.root, env=env)
        if proc.returncode != 0 or not out.is_file():
            raise explain(proc.stderr + proc.stdout)
        finish_lockfile(out.read_text(), labels, out_path)


def finish_lockfile(raw: str, labels: dict[str, str], out_path: Path) -> None:
    """Scrub `raw`, refuse to write a lockfile that would still leak, write it to out_path."""
    text = scrub(raw, labels)
    bad = leaks(text)
    if bad:
        raise EnvbuildError(f"requirements.lock would carry machine-specific text ({bad[0].strip()!r}); "
                            "remove that path or credential from the requirements")
    out_path.write_text(text)


# --- resolver failures -> one clear message ------------------------------------------------

_NET = re.compile(r"(Failed to establish a new connection|NewConnectionError|Max retries exceeded|"
                  r"Connection refused|Name or service not known|Temporary failure in name resolution|"
                  r"Failed to fetch|error sending request|dns error|tcp connect error|ConnectTimeout)", re.I)


def failure(tool_name: str, output: str) -> ResolutionError:
    """Turn a resolver's stderr into one message naming the requirement and the conflict."""
    lines = [line.rstrip() for line in output.splitlines()]
    if _NET.search(output):
        where = next((line.strip() for line in lines if _NET.search(line)), "")
        hint = "UV_INDEX_URL / UV_DEFAULT_INDEX" if tool_name.startswith("uv") else "pip config / PIP_INDEX_URL"
        return ResolutionError(f"{tool_name}: package index unreachable ({_short(where)}); "
                               f"check the network or the index URL ({hint})")
    picked: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("ERROR:") or s.startswith("error:") or s.startswith("cause:") or s.startswith("Because"):
            picked.append(s.removeprefix("ERROR:").removeprefix("error:").strip())
        elif s.startswith("The conflict is caused by:"):
            picked += [x.strip() for x in lines[i + 1:i + 6] if x.strip() and not x.strip().startswith("To fix")]
        elif s.startswith("╰─▶") or s.startswith("×"):
            picked.append(s.lstrip("╰─▶× ").strip())
    if not picked:
        tail = [line.strip() for line in lines if line.strip() and not line.startswith("  File")]
        picked = tail[-1:] or ["no output"]
    # keep it to one readable line
    return ResolutionError(f"{tool_name} could not resolve the requirements: " + "; ".join(dict.fromkeys(picked)))


def _short(s: str, n: int = 160) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
