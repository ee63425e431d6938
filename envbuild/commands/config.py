"""envbuild config: load the spec and print the settings every other command will use."""

from __future__ import annotations

from pathlib import Path

from envbuild import options


def config(
    project: Path = options.project("The project directory (default: here)."),
    json_out: bool = options.json_out("the settings"),
) -> None:
    """Validate the project's spec and print the effective settings (defaults filled in).

    Reads \\[tool.envbuild] in pyproject.toml (with its \\[project] table) and/or a standalone envbuild.toml.

    A bad spec prints one line naming the file, the key and the fix, and exits 2; a good one exits 0.

    The cheap way to check a spec before `envbuild lock`.

    Example: envbuild config --json | jq .base
    """
    from envbuild.output import console, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    settings = spec.as_dict()
    if json_out:
        print_json(settings)
        return

    from rich.table import Table

    table = Table(title=f"envbuild settings ({spec.source})", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in settings.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        table.add_row(key, "-" if value is None else str(value))
    console.print(table, markup=False)
