"""Targets without a cluster: the spec's [targets.NAME] tables, the registry, Slurm's state mapping,
the bundle config (the GPU hook checked with a stand-in request), the batch script and sbatch's argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild import record as rec
from envbuild.errors import EnvbuildError, SpecError
from envbuild.spec import load_spec
from envbuild.targets import Job, get
from envbuild.targets import slurm
from envbuild.targets.local import LocalTarget
from envbuild.targets.slurm import SlurmTarget, bundle_config, gres, job_script, outcome_of


def _project(tmp_path: Path, targets: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["numpy"]\n\n[tool.envbuild]\nseed = 1\n' + targets)
    return tmp_path


def _error(tmp_path: Path, targets: str) -> str:
    with pytest.raises(SpecError) as e:
        load_spec(_project(tmp_path, targets))
    return str(e.value)


def test_spec_targets_are_checked_and_named_in_errors(tmp_path: Path) -> None:
    spec = load_spec(_project(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\npartition = "gpu"\n'
                                        'nodes = 2\ngpus = 4\nsbatch-args = ["--exclusive"]\n'
                                        '[tool.envbuild.targets.slurm]\ntime = "01:00:00"\n'))
    assert spec.targets == {"lab": {"backend": "slurm", "partition": "gpu", "nodes": 2, "gpus": "4",
                                    "sbatch-args": ("--exclusive",)},
                            "slurm": {"backend": "slurm", "time": "01:00:00"}}  # backend from the name
    msg = _error(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\npartion = "gpu"\n')
    assert "tool.envbuild.targets.lab.partion" in msg and "did you mean 'partition'" in msg
    msg = _error(tmp_path, '[tool.envbuild.targets.lab]\npartition = "gpu"\n')
    assert "tool.envbuild.targets.lab.backend: missing" in msg and "local, slurm" in msg
    assert "unknown backend 'pbs'" in _error(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "pbs"\n')
    assert "at least 1" in _error(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\nnodes = 0\n')
    assert "absolute path" in _error(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\nshared = "x"\n')
    assert "not a target name" in _error(tmp_path, '[tool.envbuild.targets."a b"]\nbackend = "slurm"\n')


def test_cli_error_for_a_bad_target_is_one_line(tmp_path: Path, cli) -> None:
    root = _project(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\nnodes = "two"\n')
    proc = cli("run", "--on", "lab", "train.py", cwd=root)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "targets.lab.nodes" in proc.stderr, proc.stderr


def test_registry_picks_tables_then_backend_names(tmp_path: Path) -> None:
    spec = load_spec(_project(tmp_path, '[tool.envbuild.targets.lab]\nbackend = "slurm"\npartition = "gpu"\n'))
    lab = get(spec, "lab")
    assert isinstance(lab, SlurmTarget) and lab.settings["partition"] == "gpu" and lab.name == "lab"
    assert isinstance(get(spec, None), LocalTarget) and isinstance(get(spec, "slurm"), SlurmTarget)
    with pytest.raises(EnvbuildError, match="--on nowhere: no such target.*lab, local, slurm"):
        get(spec, "nowhere")


@pytest.mark.parametrize("fields, want", [
    ({"JobState": "RUNNING", "ExitCode": "0:0"}, None),
    ({"JobState": "PENDING", "ExitCode": "0:0"}, None),
    ({"JobState": "COMPLETED", "ExitCode": "0:0"}, ("succeeded", 0)),
    ({"JobState": "FAILED", "ExitCode": "3:0"}, ("failed", 3)),
    ({"JobState": "CANCELLED", "ExitCode": "0:15"}, ("cancelled", 143)),
    ({"JobState": "CANCELLED", "ExitCode": "0:0"}, ("cancelled", 143)),
    ({"JobState": "TIMEOUT", "ExitCode": "0:15"}, ("failed", 143)),
    ({"JobState": "OUT_OF_MEMORY", "ExitCode": "0:125"}, ("failed", 253)),
    ({"JobState": "NODE_FAIL", "ExitCode": "0:0"}, ("failed", 0)),
    (None, ("failed", None)),
])
def test_slurm_states_map_to_record_statuses(fields, want) -> None:
    got = outcome_of(fields, "42")
    assert (got and (got.status, got.exit_code)) == want or (got is None and want is None)
    if got is not None:
        assert got.status in rec.STATUSES
        if fields and fields["JobState"] in ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"):
            assert fields["JobState"] in got.reason


def test_gpus_become_gres() -> None:
    assert gres(None, {}) is None and gres("2", {}) == "gpu:2"
    assert gres("2", {"gres": "gpu:a100:2"}) == "gpu:a100:2"
    with pytest.raises(EnvbuildError, match="count per node"):
        gres("all", {})


def _job(tmp_path: Path, gpus: str | None = None, network: str = "none", spec=None) -> Job:
    spec = spec or load_spec(_project(tmp_path))
    run_dir = tmp_path / ".envbuild" / "runs" / "r1"
    return Job(name="envbuild-p-r1", run_id="r1", image="envbuild/p:abc", image_id="sha256:" + "a" * 64,
               command=["python", "train.py", "--lr", "0.1 0.2"], env={"SECRET_TOKEN": "hunter2", "HOME": "/tmp"},
               network=network, gpus=gpus, root=tmp_path, run_dir=run_dir, spec=spec, lock=None,
               repo_digest="127.0.0.1:5000/p@sha256:" + "b" * 64, image_env={"PATH": "/opt/venv/bin:/usr/bin"})


UMOCI_CONFIG = {"process": {"args": ["python3"], "env": ["PATH=/usr/bin"], "cwd": "/", "terminal": True,
                            "user": {"uid": 0, "gid": 0}, "rlimits": [{"type": "RLIMIT_NOFILE"}]},
                "root": {"path": "rootfs"}, "hostname": "umoci-default", "mounts": [{"destination": "/proc"}],
                "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]}}


def test_bundle_config_mounts_the_project_and_keeps_the_image_read_only(tmp_path: Path) -> None:
    config = bundle_config(UMOCI_CONFIG, _job(tmp_path), "nvidia")
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert config["process"]["cwd"] == "/workspace" and not config["process"]["terminal"]
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert mounts["/workspace"]["source"] == str(tmp_path) and "rw" in mounts["/workspace"]["options"]
    assert "ro" in mounts["/workspace/.envbuild"]["options"]
    assert mounts["/envbuild/io"]["source"] == str(tmp_path / ".envbuild" / "io")
    assert {"/tmp", "/var/tmp"} <= set(mounts)
    types = [n["type"] for n in config["linux"]["namespaces"]]
    assert "network" in types and "uts" not in types and "pid" not in types and "hooks" not in config
    host = bundle_config(UMOCI_CONFIG, _job(tmp_path, network="host"), "nvidia")
    assert "network" not in [n["type"] for n in host["linux"]["namespaces"]]
    assert UMOCI_CONFIG["root"] == {"path": "rootfs"}  # the image's own config is left as it was


def test_a_gpu_job_gets_the_nvidia_hook_and_gres(tmp_path: Path) -> None:
    """A stand-in for a GPU node: the bundle, the script and sbatch's argv as a GPU job gets them."""
    job = _job(tmp_path, gpus="2")
    hooks = bundle_config(UMOCI_CONFIG, job, "nvidia")["hooks"]["prestart"]
    assert hooks == [{"path": "/usr/bin/nvidia-container-runtime-hook",
                      "args": ["nvidia-container-runtime-hook", "prestart"]}]
    assert "hooks" not in bundle_config(UMOCI_CONFIG, job, "none")
    target = SlurmTarget("lab", {"partition": "gpu", "nodes": 2, "time": "10", "sbatch-args": ("--exclusive",)})
    args = target.sbatch_args(job)
    assert "--gres=gpu:2" in args and "--partition=gpu" in args and "--nodes=2" in args and "--time=10" in args
    assert args[-2:] == ["--exclusive", str(job.run_dir / "job.sh")]
    assert "--export=HOME,PATH,SECRET_TOKEN" in args and not any("hunter2" in a for a in args)  # names, never values
    job.placement["bundle"] = "/shared/bundles/x"
    srun = target.srun_args(job)
    assert "--container=/shared/bundles/x" in srun and "--gres=gpu:2" in srun and srun[-4:] == job.command
    script = job_script(job, target.settings, Path("/shared/bundles/x"))
    assert "NVIDIA_VISIBLE_DEVICES=${SLURM_JOB_GPUS:-void}" in script and "hunter2" not in script


def test_job_script_per_runtime(tmp_path: Path) -> None:
    job = _job(tmp_path)
    oci = job_script(job, {}, Path("/shared/bundles/x"))
    assert "--container=/shared/bundles/x --ntasks-per-node=1" in oci
    assert "python train.py --lr '0.1 0.2'" in oci and "MASTER_ADDR=" in oci
    assert f"--output={job.run_dir}/stdout.log" in oci
    assert "export PATH=/opt/venv/bin:/usr/bin\n$SRUN" in oci  # the image's PATH, not the submitter's
    pyxis = job_script(job, {"runtime": "pyxis"}, None)
    assert f"--container-image={job.repo_digest}" in pyxis and f"--container-mounts={tmp_path}:/workspace" in pyxis
    apptainer = job_script(job, {"runtime": "apptainer"}, None)
    assert f"apptainer exec --containall --pwd /workspace --bind {tmp_path}:/workspace" in apptainer
    assert f"docker://{job.repo_digest}" in apptainer
    job.repo_digest = None
    with pytest.raises(EnvbuildError, match="envbuild push"):
        job_script(job, {"runtime": "pyxis"}, None)


def test_records_with_and_without_placement_are_valid() -> None:
    from tests.helpers.records import record

    rec.validate(record())  # an old record: no placement, ran locally
    placement = {"backend": "slurm", "target": "lab", "host": "node1", "cluster": "c", "job_id": "42",
                 "nodes": ["node1", "node2"], "gpus": ["GPU 0: NVIDIA H100 (UUID: GPU-1)"], "state": "COMPLETED",
                 "detached": False, "runtime": "oci", "bundle": "/shared/bundles/x"}
    rec.validate(record(placement=placement, status="cancelled", exit_code=143))
    with pytest.raises(EnvbuildError, match="placement"):
        rec.validate(record(placement={"backend": "slurm", "target": "lab", "nodes": "node1"}))


def test_placement_in_the_schema() -> None:
    schema = rec.schema()
    assert "cancelled" in schema["properties"]["status"]["enum"]
    placement = schema["properties"]["placement"]
    assert set(placement["required"]) == {"backend", "target"}
    assert "placement" not in schema["required"]  # old records (no placement) stay readable
    assert json.dumps(placement)  # plain JSON


def test_slurm_module_needs_no_cluster_to_import() -> None:
    assert slurm.STATES["COMPLETED"] == "succeeded"


def test_the_local_gate_holds_only_the_locks_own_image_run_without_stdin(tmp_path: Path, monkeypatch) -> None:
    """The command waits behind /bin/sh (targets/local.py GATE): only where the image surely has it and
    nothing of ours is read from the container's start (no stdin, no terminal)."""
    from envbuild.targets import local

    started: list[list[str]] = []
    monkeypatch.setattr(local, "start_docker", lambda args, env, stdin: started.append(args) or object())
    target = LocalTarget("local")
    for from_lock, stdin, env in ((False, None, {}), (True, "pipe", {}), (True, "tty", {}),
                                  (True, None, {"spark.executor.memory": "4g"}), (True, None, {"PWD": "/x"})):
        job = _job(tmp_path)  # the last two: names sh would drop or set itself
        job.from_lock, job.stdin = from_lock, stdin
        job.env.update(env)
        target.start(job)
    assert started == []
    job = _job(tmp_path)
    target.start(job)
    (args,) = started
    assert args[args.index("--entrypoint") + 1] == "/bin/sh" and "-i" in args and "-t" not in args
    assert args[-len(job.command) - 3:] == ["-c", local.GATE, local.GATE_NAME, *job.command]
