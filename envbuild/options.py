"""The options every project command shares, spelled once: `-C/--project DIR` and `--json` (commands/*.py).

    project: Path = options.project()
    json_out: bool = options.json_out("the checks")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def project(help: str = "The project directory (default: here).", default: Any = Path(".")) -> Any:
    return typer.Option(default, "--project", "-C", help=help, show_default=False)


def json_out(what: str) -> Any:
    """--json: `what` goes to stdout as JSON, and nothing else does (messages go to stderr)."""
    return typer.Option(False, "--json", help=f"Print {what} as JSON on stdout (nothing else goes there).")
