"""`envbuild base build` as a user runs it: a team base pushed, then used by digest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from envbuild.lockfile import read_lock
from tests.commands.test_build import _docker
from tests.commands.test_build import env  # noqa: F401 (fixtures)
from tests.conftest import REGISTRY, run_cli
from tests.helpers.locking import make_locked_project


@pytest.mark.docker
def test_team_base_is_used_by_digest(base_image: str, tmp_path: Path, env: dict[str, str], images) -> None:
    uniq = uuid.uuid4().hex[:8]
    team = tmp_path / "team"
    make_locked_project(team, f"ebt-team-{uniq}", ["six==1.16.0"], base=base_image)
    proc = run_cli("base", "build", "--push", f"{REGISTRY}/envbuild-test/team-{uniq}:v1", "--json", cwd=team, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    images += [out["ref"], out["pushed"]]
    pinned = out["repo_digest"]
    assert out["base_line"] == f'base = "{pinned}"' and pinned.startswith(f"{REGISTRY}/envbuild-test/team-{uniq}@sha256:")

    proj = tmp_path / "proj"
    make_locked_project(proj, f"ebt-onteam-{uniq}", ["idna==3.7"], base=pinned)
    lock = read_lock(proj)
    assert lock.base.digest == pinned.split("@")[1]
    proc = run_cli("build", "--json", cwd=proj, env=env)
    assert proc.returncode == 0, proc.stderr
    ref = json.loads(proc.stdout)["ref"]
    images.append(ref)
    assert _docker("image", "inspect", "--format", "{{index .Config.Labels \"dev.envbuild.base-digest\"}}",
                   ref).stdout.strip() == lock.base.digest
    run = _docker("run", "--rm", "--network", "none", ref, "python", "-c",
                  "import six, idna, sys; print(six.__version__, idna.__version__, sys.prefix)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1.16.0", "3.7", "/opt/venv"]
