"""uv: `uv pip compile --generate-hashes`, the same requirements.lock format, much faster.

uv resolves for any target (`--python-version`, `--python-platform`, `--universal` for several
platforms) but does not read pip's configuration: it uses PyPI unless UV_INDEX_URL /
UV_DEFAULT_INDEX / UV_EXTRA_INDEX_URL / UV_INDEX (or uv.toml) say otherwise, and ignores
pip's find-links.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from envbuild.resolvers import (HEADER_COMMAND, UV_PLATFORMS, ResolverInfo, compile_requirements, failure, run_tool,
                                tool, tool_version)

NAME = "uv"


def version() -> str:
    return tool_version([tool("uv"), "--version"], "uv")


def target_args(python: str, platforms: Sequence[str]) -> list[str]:
    """Resolve for the image, not this host: one platform exactly, several universally."""
    args = ["--python-version", python]
    if len(platforms) == 1:
        args += ["--python-platform", UV_PLATFORMS[platforms[0]]]
    else:
        args.append("--universal")
    return args


def resolve(spec: Any, out_path: Path, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
            previous: Path | None = None, constraints: Path | None = None,
            extra_args: Sequence[str] = ()) -> ResolverInfo:
    """Compile the spec's dependencies into out_path; previous pins are kept unless upgraded.

    uv strips extras and leaves index URLs and find-links out unless told otherwise.
    """
    from envbuild.resolvers.indexes import sources_for

    command = [tool("uv"), "pip", "compile", "--generate-hashes", "--quiet", *target_args(spec.python, spec.platforms),
               "--custom-compile-command", HEADER_COMMAND, *extra_args]
    compile_requirements(spec, out_path, command, upgrade, upgrade_packages, previous,
                         lambda output: failure("uv pip compile", output), env=sources_for(spec).uv_env(),
                         constraints=constraints)
    return ResolverInfo(NAME, version())


def compile_pylock(requirements: Sequence[str], python: str, platform: str, cwd: Path) -> dict[str, Any]:
    """Resolve requirements for one target into a PEP 751 pylock (artifact URLs + sha256 per package)."""
    import tomllib

    with tempfile.TemporaryDirectory(prefix="envbuild-uv-") as tmp:
        src, out = Path(tmp) / "pip.in", Path(tmp) / "pylock.toml"
        src.write_text("".join(r + "\n" for r in requirements))
        proc = run_tool([tool("uv"), "pip", "compile", "--format", "pylock.toml", "--quiet",
                         *target_args(python, [platform]), "-o", str(out), str(src)], cwd=cwd)
        if proc.returncode != 0 or not out.is_file():
            raise failure("uv pip compile (environment.yml pip section)", proc.stderr + proc.stdout)
        with open(out, "rb") as f:
            return tomllib.load(f)
