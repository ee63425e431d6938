"""`envbuild run --on slurm` on the real one-node cluster of `make slurm-up` (sbatch, srun --container,
runc, scontrol, scancel): records, exit codes, cancelling, --detach, and the torch example repeated."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envbuild import record as rec
from tests.conftest import REPO_ROOT, run_cli
from tests.test_runner import make_template

pytestmark = [pytest.mark.docker, pytest.mark.slurm]


@pytest.fixture(scope="module")
def numpy_template(slurm_cluster: None, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template("numpy-linreg", ["numpy"], tmp_path_factory.mktemp("slurm-numpy"))


@pytest.fixture
def project(numpy_template: Path, tmp_path: Path):
    yield Path(shutil.copytree(numpy_template, tmp_path / "numpy-linreg", symlinks=True))
    drop_bundles(tmp_path)


def drop_bundles(root: Path) -> None:
    """Remove the project bundles a test made (hard links: the image's own bundle stays cached)."""
    from envbuild.targets.slurm import DEFAULT_SHARED

    for config in Path(DEFAULT_SHARED, "bundles").glob("*-*/config.json"):
        if f'"{root}' in config.read_text():
            shutil.rmtree(config.parent, ignore_errors=True)


def run_json(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = run_cli("run", "--json", *args, cwd=root, timeout=900)
    assert proc.stdout.strip(), proc.stderr
    return proc, json.loads(proc.stdout)


def _jobs(name_part: str) -> list[tuple[str, str]]:
    """(job id, state) of the queue's jobs whose name holds name_part."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %j"], capture_output=True, text=True, check=True).stdout
    return [(i, s) for i, s, n in (line.split() for line in out.splitlines()) if name_part in n]


def _wait_running(name_part: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [i for i, s in _jobs(name_part) if s == "RUNNING"]
        if running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError(f"no running job named *{name_part}*")


def _state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)["JobState"]


def _output(record: dict, path: str) -> str:
    return next(o["sha256"] for o in record["outputs"] if o["path"] == path)


def test_run_on_slurm_records_the_job_and_matches_a_local_run(project: Path) -> None:
    proc, r = run_json(project, "--on", "slurm", "train.py")
    assert proc.returncode == 0, proc.stderr
    rec.validate(r)
    p = r["placement"]
    assert r["status"] == "succeeded" and r["exit_code"] == 0
    assert p["backend"] == "slurm" and p["target"] == "slurm" and p["job_id"].isdigit()
    assert p["nodes"] == [socket.gethostname().split(".")[0]] and p["host"] == p["nodes"][0]
    assert p["state"] == "COMPLETED" and p["cluster"] == "envbuild" and p["runtime"] == "oci"
    assert Path(p["bundle"], "rootfs", "usr", "bin").is_dir()
    assert "weights" in proc.stderr  # the log streamed while the job ran (--json: to stderr)
    assert "numpy.random.seed(1234)" in r["determinism"]["settings"]  # the image's seeding hook ran there
    assert r["metrics"]["final_loss"] > 0
    # the same image and seed on the local engine: the same bytes
    _, local = run_json(project, "train.py")
    assert local["placement"]["backend"] == "local"
    assert _output(r, "outputs/weights.npy") == _output(local, "outputs/weights.npy")
    # runs and show read it like any other record
    listed = json.loads(run_cli("runs", "--json", cwd=project).stdout)
    assert {x["id"] for x in listed} == {r["id"], local["id"]}


def test_doctor_on_slurm(project: Path) -> None:
    proc = run_cli("doctor", "--on", "slurm", "--json", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["slurm nodes up"]["ok"] and checks["shared path"]["ok"] and checks["umoci"]["ok"]
    assert not checks["GPUs (gres)"]["required"]


def test_a_failing_script_gives_its_exit_code_and_secrets_stay_out(project: Path) -> None:
    code = "import os, sys; print('token', os.environ['API_TOKEN']); sys.exit(7)"
    proc, r = run_json(project, "--on", "slurm", "--env", "API_TOKEN=s3cret-value", "--", "python", "-c", code)
    assert proc.returncode == 7, proc.stderr
    assert r["status"] == "failed" and r["exit_code"] == 7 and r["reason"] is None
    assert r["placement"]["state"] == "FAILED"
    run_dir = project / ".envbuild" / "runs" / r["id"]
    assert "token ***" in (run_dir / "stdout.log").read_text()  # it got there, and was masked in the log
    assert "srun:" not in (run_dir / "stderr.log").read_text()  # Slurm's own lines stay in slurm-batch.log
    for name in ("slurm-batch.log", "record.json"):
        assert "s3cret-value" not in (run_dir / name).read_text()


def _stop_a_sleeping_run(project: Path, stop) -> tuple[str, dict, str, int]:
    """Start `envbuild run --on slurm -- sleep 300`, call stop(job id, process) once the job runs:
    (job id, final record, envbuild's stderr, its exit code)."""
    proc = subprocess.Popen([sys.executable, "-m", "envbuild", "run", "--json", "--on", "slurm", "--", "sleep", "300"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        job_id = _wait_running("numpy-linreg")
        stop(job_id, proc)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return job_id, json.loads(out), err, proc.returncode


def test_scancel_gives_status_cancelled(project: Path) -> None:
    job_id, r, err, code = _stop_a_sleeping_run(project, lambda job, _: subprocess.run(["scancel", job], check=True))
    assert r["status"] == "cancelled" and r["exit_code"] == 143 and r["placement"]["job_id"] == job_id, err
    assert code == 143
    rec.validate(r)


def test_ctrl_c_interrupts_and_cancels_the_job(project: Path) -> None:
    job_id, r, err, _ = _stop_a_sleeping_run(project, lambda _, proc: proc.send_signal(signal.SIGINT))
    assert r["status"] == "interrupted" and r["exit_code"] == 130, err
    assert _state(job_id) == "CANCELLED"


def test_detach_returns_the_job_id_and_runs_finishes_the_record(project: Path) -> None:
    proc = run_cli("run", "--on", "slurm", "--detach", "train.py", cwd=project, timeout=900)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    assert job_id.isdigit(), proc.stdout
    slow = run_cli("run", "--on", "slurm", "--detach", "--json", "--", "sleep", "300", cwd=project)
    held = json.loads(slow.stdout)
    assert held["status"] == "running" and held["placement"]["detached"]
    deadline = time.monotonic() + 120
    while _state(job_id) not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
    subprocess.run(["scancel", held["placement"]["job_id"]], check=True)
    time.sleep(1)
    records = {r["placement"]["job_id"]: r for r in json.loads(run_cli("runs", "--json", cwd=project).stdout)}
    done = records[job_id]
    assert done["status"] == "succeeded" and done["exit_code"] == 0 and done["placement"]["state"] == "COMPLETED"
    assert done["metrics"]["final_loss"] > 0 and _output(done, "outputs/weights.npy")
    assert "numpy.random.seed(1234)" in done["determinism"]["settings"]
    assert records[held["placement"]["job_id"]]["status"] == "cancelled"
    for r in records.values():
        rec.validate(r)
    assert run_cli("runs", "verify", cwd=project).returncode == 0


def test_reproduce_of_a_slurm_run_goes_to_slurm_again(project: Path) -> None:
    proc, first = run_json(project, "--on", "slurm", "train.py")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("reproduce", first["id"], "--json", cwd=project, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    again = rec.read_record(Path(result["run_dir"]))
    assert again["reproduces"] == first["id"] and again["placement"]["backend"] == "slurm"
    assert again["placement"]["job_id"] != first["placement"]["job_id"]
    assert result["outputs_identical"] is True and again["metrics"] == first["metrics"]
    # the worktree's bundle was made from the image envbuild had already unpacked
    assert Path(again["placement"]["bundle"]).name.split("-")[0] == Path(first["placement"]["bundle"]).name.split("-")[0]


@pytest.fixture(scope="module")
def torch_project(slurm_cluster: None, base_image: str, tmp_path_factory: pytest.TempPathFactory):
    """The torch example (locked, committed) with a 2-worker gloo script beside train.py."""
    work = tmp_path_factory.mktemp("slurm-torch")
    root = make_template("torch-mnistlike", ["torch==2.13.0", "numpy"], work)
    shutil.copy(Path(__file__).parents[1] / "data" / "slurm_ddp.py", root / "ddp.py")
    subprocess.run(["git", "-C", str(root), "add", "ddp.py"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm",
                    "ddp"], check=True)
    yield root
    drop_bundles(work)


@pytest.mark.slow
def test_torch_example_on_slurm_twice_gives_the_same_bytes(torch_project: Path) -> None:
    root = torch_project
    runs = []
    for _ in range(2):
        proc, r = run_json(root, "--on", "slurm", "train.py", "--epochs", "2")
        assert proc.returncode == 0, proc.stderr
        rec.validate(r)
        runs.append(r)
    a, b = runs
    assert a["placement"]["job_id"] != b["placement"]["job_id"] and a["placement"]["nodes"]
    assert _output(a, "outputs/model.pt") == _output(b, "outputs/model.pt") and a["metrics"] == b["metrics"]
    assert "torch.use_deterministic_algorithms(True)" in a["determinism"]["settings"]
    diff = run_cli("diff", a["id"], b["id"], "--json", cwd=root)
    assert diff.returncode == 0, diff.stderr


@pytest.mark.slow
def test_two_gloo_workers_repeat_bit_identically(torch_project: Path) -> None:
    """One container on the node; torchrun inside it starts 2 workers (gloo), each seeded by the hook."""
    launch = ["--env", "GLOO_SOCKET_IFNAME=lo", "--", "python", "-m", "torch.distributed.run", "--nproc-per-node", "2",
              "--master-addr", "127.0.0.1", "--master-port", "29511", "ddp.py"]
    weights = []
    for _ in range(2):
        proc, r = run_json(torch_project, "--on", "slurm", *launch)
        assert proc.returncode == 0, proc.stderr
        assert "world 2" in (torch_project / ".envbuild" / "runs" / r["id"] / "stdout.log").read_text()
        weights.append(_output(r, "outputs/ddp.pt"))
    assert weights[0] == weights[1]
