"""`envbuild run` through the real engine: determinism, records, exit codes, signals, users, network.

The images are built by the real `envbuild build` code (runner.resolve_image -> image.ensure_image).
Until the lock issue lands, the examples get a hand-made lock of downloaded wheels and their hashes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envbuild import record as rec
from envbuild.fsutil import sha256_file
from tests.conftest import BASE_IMAGE, REPO_ROOT, run_cli

pytestmark = pytest.mark.docker
EXAMPLES = REPO_ROOT / "examples"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# as root, run envbuild as an ordinary user so "owned by the host user" means something
USER = 1000 if os.geteuid() == 0 else os.getuid()


def _pip_download(args: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
           "--implementation", "cp", *sum((["--platform", p] for p in PLATFORMS), []), "-d", str(dest), *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(root), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def _hand_made_lock(root: Path, wheels: Path, deps: list[str]) -> None:
    """A lock of exactly the wheels downloaded, in the envbuild.lock format (lock issue not here yet)."""
    from envbuild.lockfile import Base, EnvLock, write_lock
    from envbuild.registry import manifest_digest

    _pip_download(deps, wheels)
    pins = sorted(f"{'=='.join(w.name.split('-')[:2])} --hash=sha256:{sha256_file(w)}" for w in wheels.glob("*.whl"))
    (root / "requirements.lock").write_text("".join(p + "\n" for p in pins))
    write_lock(root, EnvLock(
        envbuild="0.1.0", python="3.11", platforms=["linux/amd64"], inputs_hash="0" * 64, inputs={},
        base=Base(tag=BASE_IMAGE, digest=manifest_digest(BASE_IMAGE)),
        lockfiles={"requirements.lock": sha256_file(root / "requirements.lock")},
        resolver={"name": "hand-made", "version": "0"}))


def make_template(example: str, deps: list[str], work: Path) -> Path:
    """The example as a committed git project with a lock, and an image for that lock."""
    root = work / example
    shutil.copytree(EXAMPLES / example, root, ignore=shutil.ignore_patterns("outputs", ".envbuild"))
    proc = run_cli("lock", cwd=root, env={"ENVBUILD_CACHE_DIR": str(work / "cache")}, timeout=1800)
    if proc.returncode != 0:
        assert "not built yet" in proc.stderr, proc.stderr
        _hand_made_lock(root, work / "wheels", deps)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "example")
    return root


@pytest.fixture(scope="session")
def numpy_template(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template("numpy-linreg", ["numpy"], tmp_path_factory.mktemp("numpy-image"))


@pytest.fixture
def project(numpy_template: Path, tmp_path: Path):
    """A fresh copy of the numpy project, owned by the test user (outside pytest's private tmp dirs)."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="envbuild-run-test-")) if os.geteuid() == 0 else tmp_path
    home.chmod(0o755)
    root = home / "proj"
    shutil.copytree(numpy_template, root, symlinks=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(home)], check=True)
    yield root
    if home != tmp_path:
        shutil.rmtree(home, ignore_errors=True)


def envbuild_as_user(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI as the host user: as root, uid 1000 in the docker group.

    setpriv gives that user only CAP_DAC_READ_SEARCH, because the test interpreter may live under a
    private /root; everything it writes is still created as uid 1000.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200", "HOME": str(cwd.parent),
           "ENVBUILD_CACHE_DIR": str(cwd.parent / "cache")}
    prefix: list[str] = []
    if os.geteuid() == 0:
        sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
        prefix = ["setpriv", f"--reuid={USER}", f"--regid={USER}", f"--groups={os.stat(sock).st_gid}",
                  "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return subprocess.run([*prefix, sys.executable, "-m", "envbuild", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_json(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = envbuild_as_user("run", "--json", *args, cwd=root)
    assert proc.stdout.strip(), proc.stderr
    return proc, json.loads(proc.stdout)


def image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_same_seed_same_weights_other_seed_differs(project: Path) -> None:
    records = []
    for seed in ("7", "7", "8"):
        proc, r = run_json(project, "--seed", seed, "train.py", "--epochs", "5")
        assert proc.returncode == 0, proc.stderr
        rec.validate(r)
        records.append(r)
    a, b, c = records
    weights = [next(o["sha256"] for o in r["outputs"] if o["path"] == "outputs/weights.npy") for r in records]
    assert weights[0] == weights[1] != weights[2]
    assert a["metrics"] == b["metrics"] != c["metrics"]
    assert set(a["metrics"]) == {"loss", "final_loss", "w0"} and a["params"]["epochs"] == 5

    # the record is complete and honest
    assert a["status"] == "succeeded" and a["exit_code"] == 0 and a["command"] == ["python", "train.py", "--epochs", "5"]
    assert a["image"]["id"] == image_id(a["image"]["ref"])
    assert a["image"]["base_digest"] and a["lock"]["packages"]["numpy"]
    assert a["code"]["commit"] == _git(project, "rev-parse", "HEAD") and a["code"]["dirty"] is False
    assert a["data"][0]["path"] == "data/" and a["data"][0]["files"] == 1
    assert a["env"]["PYTHONHASHSEED"] == "7" and a["env"]["OMP_NUM_THREADS"] == "1"
    assert {"random.seed(7)", "numpy.random.seed(7)"} <= set(a["determinism"]["settings"])
    run_dir = project / ".envbuild" / "runs" / a["id"]
    assert "weights" in (run_dir / "stdout.log").read_text()
    assert (run_dir / "lock" / "envbuild.lock").read_bytes() == (project / "envbuild.lock").read_bytes()
    assert sha256_file(project / "outputs" / "weights.npy") == weights[2]
    # files written inside the container belong to the host user
    for f in (project / "outputs" / "weights.npy", run_dir / "metrics.jsonl", run_dir / "record.json"):
        assert f.stat().st_uid == USER, f

    # envbuild runs: newest first; show latest
    listed = json.loads(envbuild_as_user("runs", "--json", cwd=project).stdout)
    assert [r["id"] for r in listed] == [c["id"], b["id"], a["id"]]
    table = envbuild_as_user("runs", "-n", "2", cwd=project)
    assert table.returncode == 0 and c["id"] in table.stdout and a["id"] not in table.stdout
    shown = envbuild_as_user("runs", "show", "latest", "--json", cwd=project)
    assert json.loads(shown.stdout)["id"] == c["id"]
    human = envbuild_as_user("runs", "show", a["id"][:20], cwd=project)
    assert human.returncode == 0 and "final_loss" in human.stdout


PROBE = """
import os, socket, sys
for host in ("1.1.1.1", "8.8.8.8"):
    try:
        socket.create_connection((host, 53), timeout=5).close()
        print("network: open", host)
    except OSError as e:
        print("network: blocked", host, type(e).__name__)
print("token seen:", os.environ.get("API_TOKEN") == "hunter2-not-for-records")
sys.exit(3)
"""


def test_crash_exit_code_secret_redacted_no_network(project: Path) -> None:
    (project / "probe.py").write_text(PROBE)
    proc, r = run_json(project, "--env", "API_TOKEN=hunter2-not-for-records", "probe.py")
    assert proc.returncode == 3
    rec.validate(r)
    assert r["status"] == "failed" and r["exit_code"] == 3 and r["reason"] is None and r["network"] == "none"
    assert r["env"]["API_TOKEN"] == "***"
    run_dir = project / ".envbuild" / "runs" / r["id"]
    assert "hunter2" not in (run_dir / "record.json").read_text()
    log = (run_dir / "stdout.log").read_text()
    assert "token seen: True" in log  # the container did get it
    assert log.count("network: blocked") == 2 and "network: open" not in log
    assert r["code"]["dirty"] and r["code"]["changed_files"] == ["probe.py"]
    assert "probe.py" in (run_dir / "code.diff").read_text()


def test_sigint_stops_the_container_and_records_interrupted(project: Path) -> None:
    (project / "sleepy.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(300)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "envbuild", "run", "sleepy.py"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((project / ".envbuild" / "runs").glob("*/stdout.log"))
        if logs and "ready" in logs[0].read_text():
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        pytest.fail("the script never started")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_dir = logs[0].parent
    r = rec.read_record(run_dir)
    rec.validate(r)
    assert r["status"] == "interrupted" and r["exit_code"] == 130 and "SIGINT" in r["reason"]
    name = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={r['id']}"], capture_output=True, text=True)
    assert name.stdout.strip() == ""  # the container is gone


def test_the_command_runs_only_after_the_state_it_starts_from_is_recorded(project: Path) -> None:
    """The container starts while envbuild records code and data (targets/local.py GATE), but the
    command waits: the script finds its own record already holding them, and the environment is
    docker's own (the gate's shell adds no PWD)."""
    (project / "whoami.py").write_text(
        "import json, os\n"
        "r = json.load(open(f'.envbuild/runs/{os.environ[\"ENVBUILD_RUN_ID\"]}/record.json'))\n"
        "print(json.dumps({'status': r['status'], 'commit': r['code']['commit'], 'data': r['data'],\n"
        "                  'pwd': 'PWD' in os.environ, 'stdin': os.read(0, 10).decode()}))\n")
    proc, r = run_json(project, "whoami.py")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((project / ".envbuild" / "runs" / r["id"] / "stdout.log").read_text())
    assert seen["status"] == "running" and seen["commit"] == r["code"]["commit"] and seen["data"] == r["data"]
    assert seen["data"] and not seen["pwd"] and seen["stdin"] == ""  # stdin reads as empty, like /dev/null


def test_a_run_that_fails_before_its_command_runs_nothing_and_leaves_no_container(project: Path,
                                                                                 monkeypatch) -> None:
    from envbuild import provenance, runner, store
    from envbuild.errors import EnvbuildError

    monkeypatch.chdir(project)

    def broken(*args, **kwargs):
        raise EnvbuildError("git is broken here")

    monkeypatch.setattr(provenance, "git_info", broken)  # fails after the container was started
    (project / "touch.py").write_text("open('outputs/ran.txt', 'w').write('ran')\n")
    with pytest.raises(EnvbuildError, match="git is broken"):
        runner.run(project, runner.RunRequest(["python", "touch.py"], stdout=io.BytesIO(), stderr=io.BytesIO()))
    _, failed = store.load_run(project, "latest")
    assert failed["status"] == "failed" and "git is broken" in failed["reason"]
    assert not (project / "outputs" / "ran.txt").exists()
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={failed['id'].lower()}"],
                          capture_output=True, text=True, check=True)
    assert left.stdout.strip() == ""


def test_envbuild_killed_before_the_command_starts_leaves_it_unrun_and_no_container(project: Path) -> None:
    """SIGKILL while the container waits at its gate: our end of its stdin closes, the gate reads
    end-of-file, and the container ends (and is removed) without running the command."""
    (project / "touch.py").write_text("open('outputs/ran.txt', 'w').write('ran')\n")
    slow = ("import io, sys, time\n"
            "from envbuild import provenance, runner\n"
            "provenance.git_info = lambda *a, **k: time.sleep(600)\n"
            "runner.run('.', runner.RunRequest(['python', 'touch.py'], stdout=io.BytesIO(), stderr=io.BytesIO()))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", slow], cwd=project, env=env)

    def ours() -> str:  # the run's container (named after its run id), while it exists
        ids = [p.name.lower() for p in (project / ".envbuild" / "runs").glob("*")]
        return "".join(subprocess.run(["docker", "ps", "-aq", "--filter", f"name={i}"], capture_output=True,
                                      text=True, check=True).stdout for i in ids)

    deadline = time.monotonic() + 120
    while not ours():
        assert proc.poll() is None and time.monotonic() < deadline, "the container never started"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 120
    while ours():
        assert time.monotonic() < deadline, "the container outlived envbuild"
        time.sleep(0.2)
    assert not (project / "outputs" / "ran.txt").exists()


def test_unchanged_data_is_not_reread_and_engine_failure_recorded(project: Path, monkeypatch) -> None:
    from envbuild import provenance, runner, store
    from envbuild.errors import EnvbuildError

    monkeypatch.chdir(project)
    reads: list[str] = []
    real = provenance.sha256_file
    monkeypatch.setattr(provenance, "sha256_file", lambda p: reads.append(str(p)) or real(p))
    quiet = dict(stdout=io.BytesIO(), stderr=io.BytesIO())
    data_file = str((project / "data" / "points.csv").resolve())

    _, first = runner.run(project, runner.RunRequest(["python", "train.py", "--epochs", "1"], **quiet))
    assert first["status"] == "succeeded" and data_file in reads
    reads.clear()
    _, second = runner.run(project, runner.RunRequest(["python", "train.py", "--epochs", "1"], **quiet))
    assert second["status"] == "succeeded" and second["data"] == first["data"]
    assert data_file not in reads  # only outputs were hashed: the data file was not opened again

    missing = "127.0.0.1:5000/envbuild/run-test-no-such-image:nope"
    with pytest.raises(EnvbuildError):
        runner.run(project, runner.RunRequest(["python", "train.py"], image=missing, **quiet))
    _, failed = store.load_run(project, "latest")
    rec.validate(failed)
    assert failed["status"] == "failed" and failed["exit_code"] is None and "docker pull" in failed["reason"]


def test_stale_lock_refused(project: Path) -> None:
    with open(project / "requirements.lock", "a") as f:
        f.write("six==1.16.0\n")
    proc = envbuild_as_user("run", "train.py", cwd=project)
    assert proc.returncode == 2
    assert "stale" in proc.stderr and "--relock" in proc.stderr


def test_mlflow_logging_from_a_run(project: Path) -> None:
    with open(project / "pyproject.toml", "a") as f:
        f.write('\n[tool.envbuild.tracking]\nmlflow = "sqlite:///.envbuild/mlflow.db"\n')
    proc, r = run_json(project, "--relock", "train.py", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/.envbuild/mlflow.db")
    got = client.get_run(r["tracking"]["mlflow"]["run_id"])
    assert got.data.tags["mlflow.docker.image.id"] == r["image"]["id"]
    assert got.data.tags["mlflow.source.git.commit"] == r["code"]["commit"]
    assert got.data.tags["mlflow.source.name"] == "train.py"
    assert got.data.params["epochs"] == "2" and got.data.metrics["final_loss"] == r["metrics"]["final_loss"]
    assert [m.step for m in client.get_metric_history(got.info.run_id, "loss")] == [0, 1]


@pytest.mark.slow
def test_torch_example_same_seed_same_weights(base_image: str, tmp_path: Path) -> None:
    root = make_template("torch-mnistlike", ["torch==2.13.0", "numpy"], tmp_path)
    results = []
    for seed in ("1", "1", "2"):
        proc = run_cli("run", "--json", "--seed", seed, "train.py", "--epochs", "2", cwd=root)
        assert proc.returncode == 0, proc.stderr
        r = json.loads(proc.stdout)
        rec.validate(r)
        results.append((next(o["sha256"] for o in r["outputs"] if o["path"] == "outputs/model.pt"), r["metrics"], r))
    (w1, m1, r1), (w2, m2, _), (w3, m3, _) = results
    assert w1 == w2 != w3 and m1 == m2 != m3
    assert "torch.use_deterministic_algorithms(True)" in r1["determinism"]["settings"]
    assert any("fp32_precision='ieee'" in s for s in r1["determinism"]["settings"])


def test_record_carries_the_registry_digest_after_push(project: Path) -> None:
    from envbuild.registry import manifest_digest

    proc = envbuild_as_user("push", "127.0.0.1:5000/envbuild-run-test/numpy-linreg", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    pushed = json.loads(proc.stdout)
    _, r = run_json(project, "train.py", "--epochs", "1")
    assert r["image"]["repo_digest"] == pushed["repo_digest"]
    assert r["image"]["id"] == image_id(r["image"]["ref"])
    repo, digest = pushed["repo_digest"].split("@")
    assert manifest_digest(f"{repo}:{pushed['pushed'].rsplit(':', 1)[1]}") == digest  # what the registry serves
    assert r["tags"]["mlflow.docker.image.uri"] == pushed["repo_digest"]


def test_locked_packages_name_pip_conda_and_debian_pins(tmp_path: Path) -> None:
    from envbuild.lockfile import Base, EnvLock
    from envbuild.runner import locked_packages

    (tmp_path / "requirements.lock").write_text(
        "six==1.16.0 \\\n    --hash=sha256:" + "a" * 64 + "\nidna==3.7 \\\n    --hash=sha256:" + "b" * 64 + "\n")
    lock = EnvLock(envbuild="0", python="3.11", platforms=["linux/amd64"], inputs_hash="", inputs={},
                   base=Base("b:t", "sha256:" + "0" * 64), lockfiles={}, system_packages={"jq": "1.6-2.1"})
    assert locked_packages(tmp_path, lock) == {"six": "1.16.0", "idna": "3.7", "deb:jq": "1.6-2.1"}
