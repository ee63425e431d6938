"""`envbuild config` as a user runs it: the settings the spec resolves to."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_spec import PYPROJECT, write


def test_config_command_prints_settings(tmp_path: Path, cli) -> None:
    write(tmp_path, {"pyproject.toml": PYPROJECT, "data/": ""})
    table = cli("config", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "seed" in table.stdout and "six==1.16.0" in table.stdout
    out = cli("config", "--json", "-C", str(tmp_path))
    assert out.returncode == 0, out.stderr
    settings = json.loads(out.stdout)  # stdout holds only JSON
    assert settings["seed"] == 7 and settings["groups"] == ["test"]
