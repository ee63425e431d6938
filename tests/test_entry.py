"""The executable's fast paths (envbuild/entry.py) answer exactly as the full CLI does, without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBE = ("import sys, envbuild.entry as e; sys.argv = ['envbuild', *sys.argv[1:]]\n"
         "try:\n    e.main()\nfinally:\n    print('TYPER' if 'typer' in sys.modules else 'LEAN', file=sys.stderr)\n")
FULL = "import sys; sys.argv = ['envbuild', *sys.argv[1:]]\nfrom envbuild.cli import main\nmain()\n"


def _python(code: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "120", **env}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def locked(tmp_path: Path, cli) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "fast"\ndependencies = ["six"]\n[tool.envbuild]\n')
    r = cli("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    return proj


@pytest.mark.parametrize("args", [["lock"], ["lock", "--json"], ["lock", "--check"], ["lock", "--check", "--json"],
                                  ["lock", "-C", "."], ["lock", "--project=."]])
def test_fresh_lock_answers_like_the_full_cli_without_loading_it(locked: Path, args: list[str]) -> None:
    env = {"ENVBUILD_CACHE_DIR": str(locked.parent / "cache")}
    fast = _python(PROBE, *args, cwd=locked, env=env)
    full = _python(FULL, *args, cwd=locked, env=env)
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout) == (0, full.stdout)
    assert fast.stderr.strip() == "LEAN", fast.stderr


def test_a_stale_lock_goes_to_the_full_cli(locked: Path) -> None:
    (locked / "pyproject.toml").write_text('[project]\nname = "fast"\ndependencies = ["six", "idna"]\n'
                                           '[tool.envbuild]\n')
    r = _python(PROBE, "lock", "--check", cwd=locked, env={})
    assert r.returncode == 1 and "dependency list changed" in r.stderr and "TYPER" in r.stderr


def test_help_is_rendered_once_then_served_the_same(tmp_path: Path) -> None:
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    for args in (["--help"], ["lock", "--help"], ["base", "bootstrap", "-h"]):
        first = _python(PROBE, *args, cwd=tmp_path, env=env)
        again = _python(PROBE, *args, cwd=tmp_path, env=env)
        assert first.returncode == again.returncode == 0
        assert first.stdout == again.stdout and "Usage: envbuild" in again.stdout
        assert "TYPER" in first.stderr and again.stderr.strip() == "LEAN"
    narrow = _python(PROBE, "--help", cwd=tmp_path, env={**env, "COLUMNS": "60"})
    assert "TYPER" in narrow.stderr  # another terminal width: rendered again, for that width
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60
    assert len(list((tmp_path / "cache" / "help").iterdir())) == 4


def test_errors_and_options_are_never_cached(tmp_path: Path) -> None:
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    assert _python(PROBE, "nonexistent", "--help", cwd=tmp_path, env=env).returncode == 2
    assert _python(PROBE, "--version", cwd=tmp_path, env=env).returncode == 0
    assert not (tmp_path / "cache" / "help").exists()
