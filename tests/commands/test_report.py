"""`envbuild report` as a user runs it: --json, the page written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.test_report import two_runs  # noqa: F401 (fixtures)


def test_cli_json(two_runs: Path) -> None:
    proc = run_cli("report", "latest", "--json", "-C", str(two_runs), "-o", str(two_runs / "cli.html"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["report"] == str(two_runs / "cli.html")
