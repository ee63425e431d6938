"""The tests mirror the package: each command's CLI tests are tests/commands/test_<command>.py."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT

TESTS = REPO_ROOT / "tests"
# command -> the test module that holds its CLI tests instead, and why
ELSEWHERE = {
    "runs": "test_run.py: `runs` lists and shows what `run` records; they share one recorded project",
}


def _commands() -> set[str]:
    return {p.stem for p in (REPO_ROOT / "envbuild" / "commands").glob("*.py") if p.stem != "__init__"}


def test_every_command_has_its_test_module() -> None:
    have = {p.stem.removeprefix("test_") for p in (TESTS / "commands").glob("test_*.py")}
    missing = sorted(_commands() - have - set(ELSEWHERE))
    assert not missing, f"add tests/commands/test_<name>.py for: {', '.join(missing)}"
    stray = sorted(have - _commands())
    assert not stray, f"tests/commands/ holds tests of no command: {', '.join(stray)}"
    for command, why in ELSEWHERE.items():
        assert command in _commands() and (TESTS / "commands" / why.split(":")[0]).is_file(), command


def test_test_folders_are_packages() -> None:
    """Each folder of tests is a package, so tests/test_x.py and tests/commands/test_x.py can both exist."""
    for folder in [TESTS, *(p.parent for p in TESTS.rglob("test_*.py"))]:
        assert (folder / "__init__.py").is_file(), f"{folder.relative_to(REPO_ROOT)}: add an empty __init__.py"
