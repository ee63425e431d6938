"""`envbuild run --on box` against a second Docker engine reached only over ssh (Debian's sshd on
loopback, a key made here), in mount namespaces where the client's project and cache dirs are empty:
code and data shipped content-addressed, the image sent by id, outputs and logs brought back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from envbuild import record as rec
from envbuild.fsutil import cache_dir
from tests.conftest import run_cli
from tests.helpers.engines import ssh_box
from tests.test_runner import make_template

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def box(base_image: str, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("ssh")
    root = make_template("numpy-linreg", ["numpy"], work)
    hide = [tmp_path_factory.getbasetemp(), cache_dir()]
    cache_dir().mkdir(parents=True, exist_ok=True)
    with ssh_box(hide, image=base_image) as b:
        args = ", ".join(json.dumps(a) for a in b["ssh_args"])
        with open(root / "pyproject.toml", "a") as f:
            f.write(f'\n[tool.envbuild.targets.box]\nbackend = "ssh"\nhost = "{b["url"]}"\n'
                    f'store = "{b["store"]}"\nssh-args = [{args}]\n')
        git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
        subprocess.run([*git, "commit", "-qam", "the box"], check=True)  # reproduce's worktree names it too
        yield {**b, "root": root}


def run_json(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = run_cli("run", "--json", *args, cwd=root, timeout=900)
    assert proc.stdout.strip(), proc.stderr
    return proc, json.loads(proc.stdout)


def _output(record: dict, path: str) -> str:
    return next(o["sha256"] for o in record["outputs"] if o["path"] == path)


def test_the_remote_engine_cannot_see_the_client_project(box: dict, base_image: str) -> None:
    """The fixture's premise: a bind mount of the project there finds nothing."""
    proc = subprocess.run(["docker", "-H", box["docker_host"], "run", "--rm", "--network", "none", "-v",
                           f"{box['root']}:/w:ro", base_image, "ls", "/w/train.py"], capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout
    local_id = subprocess.run(["docker", "info", "--format", "{{.ID}}"], capture_output=True, text=True).stdout.strip()
    assert box["engine_id"] and box["engine_id"] != local_id


def test_run_on_ssh_ships_only_what_changed_and_matches_a_local_run(box: dict) -> None:
    root = box["root"]
    proc, r = run_json(root, "--on", "box", "train.py")
    assert proc.returncode == 0, proc.stderr
    rec.validate(r)
    p = r["placement"]
    assert r["status"] == "succeeded" and p["backend"] == "ssh" and p["target"] == "box"
    assert p["engine_id"] == box["engine_id"]  # the remote engine's own ID, not this host's
    assert p["shipped"]["files"] >= 3 and p["shipped"]["image_sent"] is True
    assert p["shipped"]["layers_skipped"] >= 1  # the base's layers: the fixture loaded the base there
    assert "weights" in proc.stderr  # the log streamed back as the run went (--json: to stderr)
    assert "numpy.random.seed(1234)" in r["determinism"]["settings"]  # the run's own files came back
    assert r["metrics"]["final_loss"] > 0 and (root / "outputs" / "weights.npy").is_file()
    assert not any(Path(box["store"], "runs").iterdir())  # the remote workspace is gone
    # the same image and seed on the local engine: the same bytes
    _, local = run_json(root, "train.py")
    assert local["placement"]["backend"] == "local"
    for out in ("outputs/weights.npy", "outputs/metrics.json"):
        assert _output(r, out) == _output(local, out)
    # one file changed: only that one travels, the image not at all
    with open(root / "data" / "points.csv", "a") as f:
        f.write("0.5,0.5,0.5,1.0\n")
    proc, again = run_json(root, "--on", "box", "train.py")
    assert proc.returncode == 0, proc.stderr
    assert again["placement"]["shipped"]["files"] == 1 and again["placement"]["shipped"]["image_sent"] is False
    assert again["placement"]["shipped"]["reused"] >= 2
    assert _output(again, "outputs/weights.npy") != _output(r, "outputs/weights.npy")  # it saw the new data


def test_a_failing_script_gives_its_exit_code_and_secrets_stay_out(box: dict) -> None:
    code = "import os, sys; print('token', os.environ['API_TOKEN']); sys.exit(7)"
    proc, r = run_json(box["root"], "--on", "box", "--env", "API_TOKEN=s3cret-value", "--", "python", "-c", code)
    assert proc.returncode == 7, proc.stderr
    assert r["status"] == "failed" and r["exit_code"] == 7 and r["reason"] is None
    run_dir = box["root"] / ".envbuild" / "runs" / r["id"]
    assert "token ***" in (run_dir / "stdout.log").read_text()
    assert "s3cret-value" not in (run_dir / "record.json").read_text()


def test_the_record_holds_the_remote_hosts_facts_and_doctor_checks_it(box: dict) -> None:
    runs = json.loads(run_cli("runs", "--json", cwd=box["root"]).stdout)
    remote = next(r for r in runs if r["placement"]["backend"] == "ssh")
    info = json.loads(subprocess.run(["docker", "-H", box["docker_host"], "info", "--format", "{{json .}}"],
                                     capture_output=True, text=True, check=True).stdout)
    assert remote["host"]["docker_version"] == info["ServerVersion"] and remote["host"]["cpus"] == info["NCPU"]
    assert remote["placement"]["host"] == info["Name"]
    proc = run_cli("doctor", "--on", "box", "--json", cwd=box["root"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["ssh + remote engine"]["ok"] and box["engine_id"] in checks["ssh + remote engine"]["detail"]
    assert checks["image there"]["ok"] and not checks["GPUs"]["required"]


def test_ctrl_c_stops_the_remote_container(box: dict) -> None:
    import os
    import signal
    import sys
    import time

    from tests.conftest import REPO_ROOT

    proc = subprocess.Popen([sys.executable, "-m", "envbuild", "run", "--json", "--on", "box", "--", "sleep", "300"],
                            cwd=box["root"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    remote_ps = ["docker", "-H", box["docker_host"], "ps", "-q", "--filter", "label=dev.envbuild.run"]
    try:
        deadline = time.monotonic() + 120
        while not subprocess.run(remote_ps, capture_output=True, text=True).stdout.strip():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no container"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    r = json.loads(out)
    assert r["status"] == "interrupted" and r["exit_code"] == 130, err
    assert not subprocess.run(remote_ps, capture_output=True, text=True).stdout.strip()  # stopped there


def test_reproduce_of_an_ssh_run_goes_to_the_box_again(box: dict) -> None:
    proc, first = run_json(box["root"], "--on", "box", "train.py", "--epochs", "3")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("reproduce", first["id"], "--json", cwd=box["root"], timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    again = rec.read_record(Path(result["run_dir"]))
    assert again["reproduces"] == first["id"] and again["placement"]["engine_id"] == box["engine_id"]
    assert result["outputs_identical"] is True and again["metrics"] == first["metrics"]
