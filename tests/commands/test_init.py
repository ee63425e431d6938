"""envbuild init: detection, byte-for-byte pyproject preservation, never overwriting without --force."""

from __future__ import annotations

import sys
from pathlib import Path

from envbuild.spec import load_spec
from envbuild.starter import write_starter

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# odd but valid formatting that a rewrite through a TOML library would lose
PYPROJECT = (
    b"# my project\r\n[project]\r\nname   =   'demo'  # name\r\ndependencies = [\r\n  'six',\r\n]\r\n\r\n"
    b"[tool.black]\r\nline-length = 99"  # no final newline
)


def test_pyproject_gets_a_table_rest_kept_byte_for_byte(tmp_path: Path, cli) -> None:
    (tmp_path / "pyproject.toml").write_bytes(PYPROJECT)
    (tmp_path / "data").mkdir()
    proc = cli("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    new = (tmp_path / "pyproject.toml").read_bytes()
    assert new.startswith(PYPROJECT)
    assert b"\r\n[tool.envbuild]\r\n" in new  # the file's own line endings
    assert not (tmp_path / "envbuild.toml").exists()
    spec = load_spec(tmp_path)  # the result is a valid spec
    assert spec.dependencies == ("six",) and spec.data == ("data/",)
    assert "next: envbuild config" in proc.stderr
    assert "(based on: pyproject.toml [project] dependencies, data/)" in proc.stderr


def test_never_overwrites_without_force(tmp_path: Path, cli) -> None:
    (tmp_path / "pyproject.toml").write_bytes(PYPROJECT)
    assert cli("init", cwd=tmp_path).returncode == 0
    once = (tmp_path / "pyproject.toml").read_bytes()
    again = cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "pyproject.toml: tool.envbuild: the table exists already" in again.stderr
    assert "--force" in again.stderr
    assert (tmp_path / "pyproject.toml").read_bytes() == once


def test_force_replaces_only_the_table(tmp_path: Path) -> None:
    head = b'[project]\nname = "x"\ndependencies = ["six"]\n\n'
    tail = b"\n[tool.ruff]\nline-length = 100\n"
    old = b'[tool.envbuild]\nseed = 99\n[tool.envbuild.env]\nA = "1"\n'
    (tmp_path / "pyproject.toml").write_bytes(head + old + tail)
    (tmp_path / "environment.yml").write_text("dependencies: [python=3.11]\n")
    starter = write_starter(tmp_path, force=True)
    new = (tmp_path / "pyproject.toml").read_bytes()
    assert starter.replaced and new.startswith(head) and new.endswith(tail)
    assert b"seed = 99" not in new and b"A = " not in new
    parsed = tomllib.loads(new.decode())
    assert parsed["tool"]["envbuild"]["conda"] == "environment.yml"
    assert parsed["tool"]["ruff"] == {"line-length": 100}


def test_requirements_in_gives_envbuild_toml(tmp_path: Path, cli) -> None:
    (tmp_path / "requirements.in").write_text("six\n")
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")  # .in wins: it is the input
    proc = cli("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = tomllib.loads((tmp_path / "envbuild.toml").read_text())
    assert cfg["requirements"] == "requirements.in" and "conda" not in cfg
    assert load_spec(tmp_path).dependencies == ("six",)
    again = cli("init", cwd=tmp_path)
    assert again.returncode == 2 and "envbuild.toml: exists already" in again.stderr
    assert cli("init", "--force", cwd=tmp_path).returncode == 0


def test_requirements_txt_and_environment_yml(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("idna\n")
    (tmp_path / "environment.yml").write_text("dependencies: [python=3.11]\n")
    starter = write_starter(tmp_path)
    assert starter.detected == ("requirements.txt", "environment.yml")
    spec = load_spec(tmp_path)
    assert spec.requirements == tmp_path / "requirements.txt"
    assert spec.conda == tmp_path / "environment.yml"


def test_empty_project_is_told_what_to_create(tmp_path: Path, cli) -> None:
    proc = cli("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "requirements.in" in (tmp_path / "envbuild.toml").read_text()
    assert "next:" in proc.stderr and "[project]" not in proc.stderr and "'requirements.in' not found" in proc.stderr
