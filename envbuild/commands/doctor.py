"""envbuild doctor: what envbuild needs on this host, and whether it is there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from envbuild import options


def doctor(
    project: Path = options.project("The project whose base registry to check."),
    json_out: bool = options.json_out("the checks"),
    on: Optional[str] = typer.Option(None, "--on", help="Check a target instead of this host: slurm (the "
                                     "controller, nodes up, GPUs, the shared path), k8s (the API, GPUs), an ssh target "
                                     "(the remote engine, its GPUs, the image there), or a "
                                     "target of the spec."),
) -> None:
    """Check the host: Docker engine, the base image's registry, NVIDIA GPUs and driver, disk, git, debootstrap, Python.

    In a project whose lock has a CUDA torch build, the NVIDIA driver must be new enough for it
    (a failed check when it is older; no driver at all is fine: the build runs on the CPU).

    In a project, the registry checked is the one of its configured base; elsewhere, 127.0.0.1:5000.

    Exits 1 when a required part is missing (GPUs and debootstrap are optional), 0 otherwise.

    Examples: envbuild doctor · envbuild doctor --on slurm · envbuild doctor --on lab --json
    """
    from envbuild.checks import Check, run_checks
    from envbuild.errors import EXIT_FAILURE, EnvbuildError
    from envbuild.output import console, print_json
    from envbuild.spec import DEFAULT_BASE, find_config, load_spec

    from envbuild.lockfile import read_lock

    base, why, extra, cuda_facts = DEFAULT_BASE, "default base", [], {}
    if find_config(project.resolve()):
        try:
            base, why = load_spec(project).base, "the project's base"
            lock = read_lock(project.resolve())
            cuda_facts = lock.cuda if lock else {}
        except EnvbuildError as e:
            extra.append(Check("project spec", False, False, str(e), "fix it (envbuild config shows the error)"))
    if on and on != "local":
        from envbuild import targets

        spec = load_spec(project)
        checks = [replace(c, fix="") if c.ok else c for c in targets.get(spec, on).doctor(spec)]
    else:
        checks = run_checks(base, why, cuda_facts) + extra
    ok = all(c.ok or not c.required for c in checks)
    if json_out:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    else:
        from rich.table import Table
        from rich.text import Text

        style = {"ok": "green", "warn": "yellow", "missing": "bold red"}
        table = Table(title="envbuild doctor", title_justify="left")
        for col in ("part", "status", "detail", "how to fix"):
            table.add_column(col, overflow="fold")
        for c in checks:
            name = c.name + ("" if c.required else " (optional)")
            table.add_row(name, Text(c.status, style=style[c.status]), Text(c.detail), Text(c.fix))
        console.print(table)
    if not ok:
        raise typer.Exit(EXIT_FAILURE)
