"""pip-tools (the default): `pip-compile --generate-hashes` into requirements.lock.

pip-compile resolves for the interpreter it runs on. It is given the sources of pip's
configuration (indexes, find-links, credentials) and the spec's torch source, and nothing else
from it (no constraint file): the same sources the wheelhouse's `pip download` gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from envbuild.resolvers import HEADER_COMMAND, ResolutionError, ResolverInfo, compile_requirements, failure, tool, tool_version

NAME = "pip-tools"
FLAGS = ["--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
         "--no-emit-trusted-host", "--no-emit-options", "--newline", "lf", "--quiet"]


def version() -> str:
    return tool_version([tool("pip-compile"), "--version"], "pip-tools")


def _explain(tool_name: str, output: str) -> ResolutionError:
    """pip reports an index it cannot reach as "from versions: none": ask the indexes which it was."""
    if "from versions: none" in output:
        from envbuild.resolvers.indexes import pip_index_urls, unreachable

        down = unreachable(pip_index_urls())
        if down:
            return ResolutionError(f"{tool_name}: package index unreachable: {', '.join(down)}; "
                                   "check the network or the index URL (pip config / PIP_INDEX_URL)")
    return failure(tool_name, output)


def resolve(spec: Any, out_path: Path, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
            previous: Path | None = None, constraints: Path | None = None) -> ResolverInfo:
    """Compile the spec's dependencies into out_path; previous pins are kept unless upgraded."""
    from envbuild.resolvers.indexes import sources_for

    # pip-compile takes the header's command line from the environment only
    env = {**sources_for(spec).pip_env(), "CUSTOM_COMPILE_COMMAND": HEADER_COMMAND}
    compile_requirements(spec, out_path, [tool("pip-compile"), *FLAGS], upgrade, upgrade_packages, previous,
                         lambda output: _explain("pip-compile", output), env=env, constraints=constraints)
    return ResolverInfo(NAME, version())
