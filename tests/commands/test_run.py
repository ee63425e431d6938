"""`envbuild run` and `envbuild runs` as a user calls them: -C, clean --json, the user's Docker setup.

The small six project of test_reproduce (locked, built and committed once a session) is reused.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_reproduce import NAME, TRAIN, envbuild, proj, template  # noqa: F401 (fixtures)

pytestmark = pytest.mark.docker


def test_run_and_runs_take_the_project_dir(proj: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("run", "-C", str(proj), "--json", "train.py", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["command"] == ["python", "train.py"] and record["project"]["root"] == str(proj.resolve())
    assert (proj / ".envbuild" / "runs" / record["id"] / "record.json").is_file()
    assert not (elsewhere / ".envbuild").exists()
    listed = json.loads(envbuild(elsewhere, "runs", "-C", str(proj), "--json").stdout)
    assert [r["id"] for r in listed] == [record["id"]]
    for args in (["runs", "-C", str(proj), "show", "latest", "--json"],
                 ["runs", "show", "--project", str(proj), record["id"], "--json"]):
        assert json.loads(envbuild(elsewhere, *args).stdout)["id"] == record["id"]


def test_run_json_stdout_holds_only_json_with_relock_and_a_pulled_image(proj: Path, base_image: str):
    # --relock: the lock summary and resolver progress go to stderr
    with open(proj / "requirements.in", "a") as f:
        f.write("# a comment: the inputs changed, the pins will not\n")
    proc = run_cli("run", "--json", "--relock", "train.py", cwd=proj)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["status"] == "succeeded" and "locked" in proc.stderr
    # --image REF that the engine must pull: docker's pull progress goes to stderr
    registry = base_image.split("/", 1)[0]
    pushed = json.loads(envbuild(proj, "push", f"{registry}/{NAME}-json", "--json").stdout)
    digest = pushed.get("repo_digest") or pushed.get("pushed")
    assert "@sha256:" in digest, pushed
    subprocess.run(["docker", "rmi", digest], capture_output=True)  # our own ref: the pull really happens
    try:
        proc = run_cli("run", "--json", "--image", digest, "train.py", cwd=proj)
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout)
        assert record["image"]["ref"] == digest and record["status"] == "succeeded"
    finally:
        subprocess.run(["docker", "rmi", digest], capture_output=True)


def test_docker_cli_keeps_the_users_home_and_docker_settings(proj: Path, tmp_path: Path):
    """The container gets HOME=/tmp and the spec's DOCKER_HOST; the docker CLI keeps the user's own."""
    home = tmp_path / "home"
    config = tmp_path / "docker-config"
    home.mkdir()
    config.mkdir()
    log = tmp_path / "cli-env.log"
    spy = tmp_path / "docker-spy"
    spy.write_text(f'#!/bin/sh\necho "HOME=$HOME DOCKER_CONFIG=$DOCKER_CONFIG DOCKER_HOST=$DOCKER_HOST '
                   f'DOCKER_CONTEXT=$DOCKER_CONTEXT" >> {log}\nexec {shutil.which("docker")} "$@"\n')
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    spec = proj / "pyproject.toml"
    spec.write_text(spec.read_text() + '[tool.envbuild.env]\nDOCKER_HOST = "tcp://192.0.2.1:1"\n')
    (proj / "show_env.py").write_text("import os\nprint('container', os.environ['HOME'], os.environ['DOCKER_HOST'])\n")
    engine_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    cache = os.environ.get("ENVBUILD_CACHE_DIR") or str(Path.home() / ".cache" / "envbuild")
    env = {"HOME": str(home), "DOCKER_CONFIG": str(config), "DOCKER_HOST": engine_host, "DOCKER_CONTEXT": "",
           "ENVBUILD_DOCKER": str(spy), "ENVBUILD_CACHE_DIR": cache}
    proc = run_cli("run", "show_env.py", cwd=proj, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "container /tmp tcp://192.0.2.1:1" in proc.stdout  # the container's own values
    lines = log.read_text().splitlines()
    assert lines and all(line == f"HOME={home} DOCKER_CONFIG={config} DOCKER_HOST={engine_host} DOCKER_CONTEXT="
                         for line in lines), lines


def test_the_plain_run_skips_the_cli_framework_and_ends_as_the_full_cli_does(proj: Path, tmp_path: Path):
    """entry.py runs `run [-C DIR] [--json] [--seed N] SCRIPT` itself: same exit code, same record
    and stdout as the full CLI; `SCRIPT --help` is the script's option, run every time, never cached."""
    from tests.test_entry import FULL, PROBE, _python

    (proj / "argv.py").write_text("import sys\nprint(' '.join(sys.argv[1:]))\nsys.exit(3)\n")
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    for args, printed in ((["run", "argv.py", "--help"], "--help\n"),
                          (["run", "--seed", "7", "-C", str(proj), "--", "python", "argv.py", "-x"], "-x\n")):
        fast = _python(PROBE, *args, cwd=proj, env=env)
        full = _python(FULL, *args, cwd=proj, env=env)
        assert fast.returncode == full.returncode == 3, fast.stderr
        assert fast.stdout == full.stdout == printed
        assert "LEAN" in fast.stderr and "failed (exit 3); record: " in fast.stderr
    again = _python(PROBE, "run", "argv.py", "--help", cwd=proj, env=env)
    assert again.returncode == 3 and again.stdout == "--help\n"  # the script ran again
    fast = _python(PROBE, "run", "--json", "--seed", "7", "argv.py", cwd=proj, env=env)
    record = json.loads(fast.stdout)  # stdout holds the record only; the script's went to stderr
    assert record["exit_code"] == 3 and record["seed"] == 7 and "LEAN" in fast.stderr
    other = _python(PROBE, "run", "--network", "none", "argv.py", cwd=proj, env=env)
    assert other.returncode == 3 and "TYPER" in other.stderr  # any other option: the full CLI parses it
