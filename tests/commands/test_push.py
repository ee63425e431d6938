"""`envbuild push` (and `base build --push`) as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_build import env  # noqa: F401 (fixtures)
from tests.conftest import run_cli
from tests.helpers.locking import write_project


@pytest.mark.parametrize("args, says", [(["push"], "envbuild push REGISTRY/REPO"),
                                        (["base", "build"], "--push REGISTRY/REPO")])
def test_push_without_a_repository_says_where_to_give_one(tmp_path: Path, env: dict[str, str],
                                                         args: list[str], says: str) -> None:
    write_project(tmp_path, "norepo", ["six"], base="127.0.0.1:5000/envbuild/base:bookworm")
    proc = run_cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and says in proc.stderr and "pyproject.toml" in proc.stderr
