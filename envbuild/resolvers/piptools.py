"""pip-tools (the default): `pip-compile --generate-hashes` into requirements.lock.

pip-compile resolves for the interpreter it runs on and reads pip's own configuration
(indexes, find-links, constraints), so what it sees is what `pip install` on this host sees.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from envbuild.resolvers import (HEADER_COMMAND, ResolutionError, ResolverInfo, failure, finish_lockfile, input_files, run_tool, tool,
                                tool_version)

NAME = "pip-tools"
FLAGS = ["--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
         "--no-emit-trusted-host", "--no-emit-options", "--newline", "lf", "--quiet"]


def version() -> str:
    return tool_version([tool("pip-compile"), "--version"])


def _explain(tool_name: str, output: str) -> ResolutionError:
    """pip reports an index it cannot reach as "from versions: none": ask the indexes which it was."""
    if "from versions: none" in output:
        from envbuild.resolvers.indexes import pip_index_urls, unreachable

        down = unreachable(pip_index_urls())
        if down:
            return ResolutionError(f"{tool_name}: package index unreachable: {', '.join(down)}; "
                                   "check the network or the index URL (pip config / PIP_INDEX_URL)")
    return failure(tool_name, output)


def resolve(spec: object, out_path: Path, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
            previous: Path | None = None) -> ResolverInfo:
    """Compile the spec's dependencies into out_path; previous pins are kept unless upgraded."""
    with tempfile.TemporaryDirectory(prefix="envbuild-pip-") as tmp:
        work = Path(tmp)
        files, labels = input_files(spec, work)
        labels[str(work) + "/"] = ""
        out = work / "requirements.lock"
        if previous is not None and previous.is_file() and not upgrade:
            shutil.copyfile(previous, out)  # pip-compile prefers the pins already in its output file
        args = [tool("pip-compile"), *FLAGS, "-o", str(out)]
        if upgrade:
            args.append("--upgrade")
        for name in upgrade_packages:
            args += ["--upgrade-package", name]
        # pip-compile takes the header's command line from the environment only
        proc = run_tool([*args, *files], cwd=spec.root, env={"CUSTOM_COMPILE_COMMAND": HEADER_COMMAND})  # type: ignore[attr-defined]
        if proc.returncode != 0 or not out.is_file():
            raise _explain("pip-compile", proc.stderr + proc.stdout)
        finish_lockfile(out.read_text(), labels, out_path)
    return ResolverInfo(NAME, version())
