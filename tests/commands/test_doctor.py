"""`envbuild doctor` as a user runs it: exit codes, a bad spec, the real command on this host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_doctor_exit_1_when_required_part_missing(tmp_path: Path, cli) -> None:
    # a project whose base lives on a registry nobody runs, and no docker CLI
    (tmp_path / "envbuild.toml").write_text('base = "127.0.0.1:9/envbuild/base:bookworm"\n')
    (tmp_path / "requirements.in").write_text("six\n")
    proc = cli("doctor", "--json", cwd=tmp_path, env={"ENVBUILD_DOCKER": "no-such-docker"})
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert by_name["docker engine"]["status"] == "missing"
    assert by_name["registry"]["status"] == "missing" and "127.0.0.1:9 (the project's base)" in \
        by_name["registry"]["detail"]


def test_doctor_reports_a_bad_spec_and_goes_on(tmp_path: Path, cli) -> None:
    (tmp_path / "envbuild.toml").write_text("sed = 1\n")
    proc = cli("doctor", "--json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    spec = next(c for c in report["checks"] if c["name"] == "project spec")
    assert spec["status"] == "warn" and "envbuild.toml: sed: unknown key" in spec["detail"]


@pytest.mark.docker
def test_doctor_on_this_host(docker_engine, tmp_path: Path, cli) -> None:
    proc = cli("doctor", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for part in ("docker engine", "registry", "nvidia gpus", "free disk", "git", "debootstrap", "python"):
        assert part in proc.stdout
    report = json.loads(cli("doctor", "--json", cwd=tmp_path).stdout)
    assert report["ok"] is True
    assert all(c["ok"] for c in report["checks"] if c["required"])
