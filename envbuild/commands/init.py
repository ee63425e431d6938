"""envbuild init: write a starter config into an existing project, or a new project from a template."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def init(
    project: Path = options.project("The project directory (default: here)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing [tool.envbuild] table or envbuild.toml."),
    template: str = typer.Option(None, "--template", "-t", metavar="NAME",
                                 help="Write a whole starter project instead: minimal (numpy) or torch."),
) -> None:
    r"""Write a starter envbuild config for the project in this directory.

    With a pyproject.toml, adds a \[tool.envbuild] table to it (the rest of the file is kept byte for byte).

    Without one, writes envbuild.toml. Detects requirements.in / requirements.txt, environment.yml and data/.

    Never overwrites an existing config without --force (exit 2).

    With --template NAME, writes a starter project (pyproject.toml, train.py, data/) into the
    directory, made if missing; it locks and runs as it is.

    Next: envbuild config (check it), then envbuild lock.

    Examples: envbuild init · envbuild init --template torch -C my-model
    """
    from envbuild.errors import EnvbuildError
    from envbuild.output import info
    from envbuild.spec import load_spec
    from envbuild.starter import write_starter

    if template is not None:
        from envbuild import template as templates
        from envbuild.spec import DEFAULT_BASE

        written = templates.write("project", template, project, {"name": project.resolve().name,
                                                                  "base": DEFAULT_BASE}, force=force)
        info(f"wrote the {template} template into {project}: "
             + ", ".join(str(p.relative_to(project)) for p in written), markup=False)
        info(f"next: envbuild lock -C {project}, then envbuild run -C {project} train.py", markup=False)
        return
    starter = write_starter(project, force=force)
    verb = "replaced the settings in" if starter.replaced else "wrote"
    based = ", ".join(starter.detected) or "nothing found yet"
    info(f"{verb} {starter.path} (based on: {based})", markup=False)
    try:
        load_spec(project)
    except EnvbuildError as e:
        info(f"next: {e}", markup=False)  # e.g. the requirements file still to be created
    else:
        info("next: envbuild config (check the settings), then envbuild lock")
