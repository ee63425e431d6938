"""A project on a team base installs nothing the base has, and a conflict names both pins."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from envbuild.lockfile import read_lock
from tests.conftest import REGISTRY, run_cli


def _write(root: Path, name: str, base: str, requirements: str, extra: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(f'name = "{name}"\nbase = "{base}"\n{extra}')
    (root / "requirements.in").write_text(requirements)


@pytest.mark.docker
def test_project_on_team_base_shares_its_pins(base_image: str, tmp_path: Path, images: list[str]) -> None:
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    tag = uuid.uuid4().hex[:8]
    team = tmp_path / "team"
    _write(team, f"ebt-team-{tag}", base_image, "six==1.16.0\n")
    assert run_cli("lock", cwd=team, env=env).returncode == 0
    built = run_cli("base", "build", "--push", f"{REGISTRY}/envbuild-test/team-{tag}:1", "--json", cwd=team, env=env)
    assert built.returncode == 0, built.stderr
    team_base = json.loads(built.stdout)["repo_digest"]
    images.append(json.loads(built.stdout)["ref"])

    proj = tmp_path / "proj"
    _write(proj, f"ebt-onteam-{tag}", team_base, "six\nidna==3.7\n")
    locked = run_cli("lock", cwd=proj, env=env)
    assert locked.returncode == 0, locked.stderr
    lock = read_lock(proj)
    assert lock is not None and lock.base_packages == {"six": "1.16.0"}
    assert "six==1.16.0" in (proj / "requirements.lock").read_text()  # the lock still names it
    out = run_cli("build", "--json", cwd=proj, env=env)
    assert out.returncode == 0, out.stderr
    ref = json.loads(out.stdout)["ref"]
    images.append(ref)
    where = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "python", "-c",
                            "import six, idna, glob; print(six.__file__); print(len(glob.glob('/opt/venv/lib/*/site-packages/six*')))"],
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == ["/opt/envbuild/base-venv/lib/python3.11/site-packages/six.py", "0"]

    (proj / "requirements.in").write_text("six>=1.17\n")
    refused = run_cli("lock", cwd=proj, env=env)
    assert refused.returncode == 2
    assert "six>=1.17" in refused.stderr and "six==1.16.0" in refused.stderr and "override-base" in refused.stderr
    assert read_lock(proj).base_packages == {"six": "1.16.0"}  # nothing half-written

    _write(proj, f"ebt-onteam-{tag}", team_base, "six>=1.17\n", 'override-base = ["six"]\n')
    assert run_cli("lock", cwd=proj, env=env).returncode == 0
    assert read_lock(proj).base_packages == {}
