"""`envbuild devcontainer`: the file a dev-container client opens, checked by the real Dev Containers
CLI (`make test-tools` installs @devcontainers/cli into .tools/), which starts the container on the
real engine; the lock check notices a stale file and `envbuild build` rewrites it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.commands.test_reproduce import envbuild  # proj, template: conftest

pytestmark = pytest.mark.docker


def devcontainer_cli() -> str:
    found = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "devcontainer"
    path = str(found) if found.exists() else shutil.which("devcontainer")
    if not path:
        pytest.fail("the Dev Containers CLI is missing; run `make test-tools`")
    return path


def dc(*args: str, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI keeps its scratch files (container-features/, one dir a call) under TMPDIR: the test's."""
    proc = subprocess.run([devcontainer_cli(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.returncode == 0, f"devcontainer {args[0]}: {proc.stdout}\n{proc.stderr}"
    return proc


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def test_devcontainer_names_the_run_image_and_opens_it_in_the_dev_containers_cli(proj: Path, tmp_path: Path):
    written = json.loads(envbuild(proj, "devcontainer", "--json").stdout)
    on_disk = json.loads((proj / ".devcontainer" / "devcontainer.json").read_text())
    assert written == on_disk
    envbuild(proj, "run", "train.py")
    record = json.loads(envbuild(proj, "runs", "show", "latest", "--json").stdout)
    assert on_disk["image"] == record["image"]["id"] and on_disk["image"].startswith("sha256:")
    assert on_disk["customizations"]["envbuild"]["lock_hash"] == record["lock"]["lock_hash"]
    assert on_disk["containerEnv"]["PYTHONHASHSEED"] == "1234" and on_disk["workspaceFolder"] == "/workspace"
    import jsonschema  # the spec's own schema (tests/data/README.md says where it comes from)

    schema = json.loads((Path(__file__).parent.parent / "data" / "devContainer.base.schema.json").read_text())
    problems = [e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(on_disk)]
    assert problems == [], problems

    config = last_json(dc("read-configuration", "--workspace-folder", str(proj), tmp=tmp_path).stdout)["configuration"]
    assert config["image"] == record["image"]["id"] and config["workspaceFolder"] == "/workspace"
    label = f"devcontainer.local_folder={proj}"
    try:
        up = last_json(dc("up", "--workspace-folder", str(proj), tmp=tmp_path).stdout)
        assert up["outcome"] == "success", up
        out = dc("exec", "--workspace-folder", str(proj), "python", "-c",
                 "import os, sys, six; print(os.getcwd(), os.getuid(), os.environ['ENVBUILD_SEED'], sys.executable)",
                 tmp=tmp_path).stdout
        cwd, uid, seed, exe = out.split()[-4:]
        assert (cwd, uid, seed) == ("/workspace", str(os.getuid()), "1234")
        image_id = subprocess.run(["docker", "inspect", "--format", "{{.Image}}", up["containerId"]],
                                  capture_output=True, text=True, check=True).stdout.strip()
        assert image_id == record["image"]["id"]
        network = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}", up["containerId"]],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert network == "none"
        assert any(p.name.startswith("devcontainercli-") for p in tmp_path.iterdir())  # not in /tmp
    finally:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def test_lock_check_notices_a_stale_devcontainer_and_build_rewrites_it(proj: Path):
    envbuild(proj, "devcontainer")
    envbuild(proj, "lock", "--check")
    path = proj / ".devcontainer" / "devcontainer.json"
    data = json.loads(path.read_text())
    data["customizations"]["envbuild"]["lock_hash"] = "0" * 64  # as if made before the last `envbuild lock`
    path.write_text(json.dumps(data))
    proc = envbuild(proj, "lock", "--check", expect=1)
    assert "devcontainer.json was made from lock 000000000000" in proc.stderr and "envbuild devcontainer" in proc.stderr
    assert "rewrote .devcontainer/devcontainer.json" in envbuild(proj, "build").stderr
    envbuild(proj, "lock", "--check")


def test_a_users_own_devcontainer_is_never_replaced(proj: Path):
    path = proj / ".devcontainer" / "devcontainer.json"
    path.parent.mkdir()
    mine = '// mine\n{"image": "python:3.11"}\n'
    path.write_text(mine)
    proc = envbuild(proj, "devcontainer", expect=2)
    assert "not written by envbuild" in proc.stderr and "--force" in proc.stderr
    assert path.read_text() == mine
    envbuild(proj, "build")
    envbuild(proj, "lock", "--check")
    assert path.read_text() == mine
