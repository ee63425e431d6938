"""The k8s target: the Job manifest checked by the kubernetes client's own models, and submit / wait /
log / delete through the real client against a fake API server on 127.0.0.1 (no cluster runs here)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from envbuild import record as rec
from envbuild.errors import EnvbuildError
from envbuild.spec import load_spec
from envbuild.targets import Job, Stopper
from envbuild.targets.k8s import K8sTarget, manifest, validated
from tests.helpers.fake_k8s import NODE, FakeAPIServer

DIGEST = "127.0.0.1:5000/team/p@sha256:" + "b" * 64


def _job(tmp_path: Path, command: list[str], gpus: str | None = None) -> Job:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "My_Project"\ndependencies = ["numpy"]\n')
    run_dir = tmp_path / ".envbuild" / "runs" / "20261128T140000Z-abcdef"
    run_dir.mkdir(parents=True)
    return Job(name="envbuild-x", run_id="20261128T140000Z-abcdef", image="envbuild/p:abc",
               image_id="sha256:" + "a" * 64, command=command, gpus=gpus, network="none", root=tmp_path,
               env={"ENVBUILD_SEED": "7", "PYTHONHASHSEED": "7", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                    "WANDB_API_KEY": "s3cret-value"},
               run_dir=run_dir, spec=load_spec(tmp_path), lock=None, repo_digest=DIGEST)


def test_manifest_is_a_valid_job_for_the_client(tmp_path: Path) -> None:
    from kubernetes import client

    settings = {"namespace": "ml", "gpu-resource": "nvidia.com/gpu", "queue": "team-a", "volume": "proj-pvc",
                "subpath": "alice/p", "memory": "16Gi", "service-account": "trainer"}
    body = manifest(_job(tmp_path, ["python", "train.py"], gpus="2"), settings)
    model = validated(body)
    assert isinstance(model, client.V1Job)
    # every field survived the model: nothing the client does not know
    assert client.ApiClient().sanitize_for_serialization(client.V1Job.from_dict(body)) == body
    c = model.spec.template.spec.containers[0]
    assert c.image == DIGEST and c.command == ["python", "train.py"] and c.working_dir == "/workspace"
    assert c.resources.limits == {"nvidia.com/gpu": "2", "memory": "16Gi"}
    env = {e.name: e for e in c.env}
    assert env["ENVBUILD_SEED"].value == "7" and env["CUBLAS_WORKSPACE_CONFIG"].value == ":4096:8"
    assert env["WANDB_API_KEY"].value is None and env["WANDB_API_KEY"].value_from.secret_key_ref.key == "WANDB_API_KEY"
    assert "s3cret-value" not in json.dumps(body)
    assert model.metadata.name == "envbuild-my-project-20261128t140000z-abcdef" and len(model.metadata.name) <= 63
    assert model.metadata.labels["kueue.x-k8s.io/queue-name"] == "team-a" and model.spec.suspend is True
    assert model.spec.backoff_limit == 0 and model.spec.template.spec.restart_policy == "Never"
    assert model.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "proj-pvc"
    assert c.volume_mounts[0].sub_path == "alice/p"


def test_manifest_refuses_what_a_cluster_cannot_pull_or_count(tmp_path: Path) -> None:
    job = _job(tmp_path, ["python", "train.py"], gpus="all")
    with pytest.raises(EnvbuildError, match="give a count"):
        manifest(job, {})
    job.repo_digest = None
    with pytest.raises(EnvbuildError, match="envbuild push"):
        manifest(job, {})
    with pytest.raises(EnvbuildError, match="not valid for the kubernetes client"):
        validated({"apiVersion": "batch/v1", "kind": "Job",
                   "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})


@pytest.mark.parametrize("fail", [False, True])
def test_submit_wait_and_stream_through_the_real_client(tmp_path: Path, fail: bool) -> None:
    job = _job(tmp_path, ["python", "train.py", *(["--fail"] if fail else [])])
    with FakeAPIServer(tmp_path) as api:
        target = K8sTarget("k8s", {"kubeconfig": str(api.kubeconfig), "namespace": "ml", "context": "fake"})
        job.placement = target.placement()
        out = io.BytesIO()
        outcome = target.run(job, Stopper(lambda sig: None), out, io.BytesIO())
        requests = api.cluster.requests
        secret = api.cluster.secrets[f"{job.placement['job_id']}-env"]
    assert (outcome.status, outcome.exit_code) == (("failed", 3) if fail else ("succeeded", 0))
    log = out.getvalue().decode()
    assert log.startswith("seed 7\ncommand python train.py") and log.endswith("step 2\n")
    assert (job.run_dir / "stdout.log").read_text() == log
    assert job.placement["host"] == NODE and job.placement["nodes"] == [NODE]
    assert job.placement["state"] == ("Failed" if fail else "Complete") and job.placement["cluster"] == "fake"
    assert secret["stringData"] == {"WANDB_API_KEY": "s3cret-value"}  # only in the Secret
    assert requests[0] == "POST /api/v1/namespaces/ml/secrets" and requests[1] == "POST /apis/batch/v1/namespaces/ml/jobs"
    assert any("/log?follow=true" in r for r in requests)
    rec.validate({**_record(), "placement": job.placement})


def test_detach_poll_and_delete(tmp_path: Path) -> None:
    job = _job(tmp_path, ["sleep", "1"])
    with FakeAPIServer(tmp_path) as api:
        target = K8sTarget("k8s", {"kubeconfig": str(api.kubeconfig), "namespace": "ml"})
        job.placement = target.placement()
        target.submit(job)
        assert job.placement["detached"] and target.poll(job.placement) is None  # still pending
        import time

        deadline = time.monotonic() + 10
        while (outcome := target.poll(job.placement)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outcome.status == "succeeded" and job.placement["state"] == "Complete"
        target.kill(job, "TERM")
        assert api.cluster.requests[-1].startswith(f"DELETE /apis/batch/v1/namespaces/ml/jobs/{job.placement['job_id']}")


def test_dry_run_prints_the_manifest(tmp_path: Path) -> None:
    job = _job(tmp_path, ["python", "train.py"])
    from kubernetes import client

    text = K8sTarget("k8s", {"namespace": "ml"}).render(job)
    assert client.V1Job.from_dict(json.loads(text)).metadata.namespace == "ml"


def test_doctor_on_k8s_asks_the_api(tmp_path: Path, cli) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["numpy"]\n')
    with FakeAPIServer(tmp_path) as api:
        proc = cli("doctor", "--on", "k8s", "--json", cwd=tmp_path, env={"KUBECONFIG": str(api.kubeconfig)})
    assert proc.returncode == 0, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert "v1.31.0-fake" in checks["kubernetes API"]["detail"]
    assert checks["GPUs (nvidia.com/gpu)"]["ok"] and "2 allocatable on 1 node" in checks["GPUs (nvidia.com/gpu)"]["detail"]
    proc = cli("doctor", "--on", "k8s", "--json", cwd=tmp_path, env={"KUBECONFIG": str(tmp_path / "none")})
    assert proc.returncode == 1 and not json.loads(proc.stdout)["ok"]


def _record() -> dict:
    from tests.helpers.records import record

    return record()


@pytest.mark.docker
def test_cli_dry_run_and_run_on_k8s(base_image: str, tmp_path: Path, cli) -> None:
    """The whole CLI: the numpy example pushed, `run --on k8s --dry-run`, then a real run against the fake API."""
    from kubernetes import client

    from tests.test_runner import make_template

    root = make_template("numpy-linreg", ["numpy"], tmp_path)
    push = cli("push", "127.0.0.1:5000/envbuild-k8s-test/numpy-linreg", "--json", cwd=root)
    assert push.returncode == 0, push.stderr
    digest = json.loads(push.stdout)["repo_digest"]
    with FakeAPIServer(tmp_path) as api:
        env = {"KUBECONFIG": str(api.kubeconfig)}
        dry = cli("run", "--on", "k8s", "--dry-run", "train.py", cwd=root, env=env)
        assert dry.returncode == 0, dry.stderr
        job = client.V1Job.from_dict(json.loads(dry.stdout))
        assert job.spec.template.spec.containers[0].image == digest
        assert not api.cluster.jobs and len(list((root / ".envbuild" / "runs").glob("*"))) == 0  # nothing ran, no record
        proc = cli("run", "--on", "k8s", "--json", "train.py", cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    rec.validate(r)
    assert r["status"] == "succeeded" and r["placement"]["backend"] == "k8s" and r["placement"]["host"] == NODE
    assert r["image"]["repo_digest"] == digest
    shutil.rmtree(root / ".envbuild", ignore_errors=True)
