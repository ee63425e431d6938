"""`envbuild runs register` and `envbuild trace models:/NAME/VERSION` against real MLflow (sqlite store)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envbuild import modelregistry
from envbuild.errors import EnvbuildError
from envbuild.fsutil import sha256_file
from tests.conftest import run_cli
from tests.helpers.records import SHA, record, save, variant

import mlflow  # noqa: E402,F401 - in the test extra: missing, the module fails to import (never skips)

RUN = "20260101T000000Z-aaaaaa"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose run wrote outputs/model.npy (the real file, its real sha256), tracked in sqlite MLflow."""
    root = tmp_path / "proj"
    (root / "outputs").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\ndependencies = ["numpy"]\n\n'
                                         '[tool.envbuild.tracking]\nmlflow = "sqlite:///.envbuild/mlflow.db"\n')
    model = root / "outputs" / "model.npy"
    model.write_bytes(b"weights" * 100)
    r = record(RUN, outputs=[{"path": "outputs/model.npy", "sha256": sha256_file(model), "bytes": 700}],
               manifests={"data": {"data/train.csv": SHA["a"], "data/extra": SHA["b"]}, "outputs": {}})
    r["image"]["repo_digest"] = "127.0.0.1:5000/demo@sha256:" + SHA["e"]
    run_dir = save(root, r)
    (run_dir / "metrics.jsonl").write_text(json.dumps({"metrics": {"loss": 0.5}, "step": 0, "time": 1.0}) + "\n")
    return root


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite store with its schema made (MLflow's migrations take ~20 s): copied per test."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}").search_registered_models()
    return db


@pytest.fixture
def tracked(project: Path, empty_store: Path) -> Path:
    shutil.copyfile(empty_store, project / ".envbuild" / "mlflow.db")
    return project


def test_register_then_trace_walks_back_to_run_image_and_data_manifest(tracked: Path) -> None:
    project = tracked
    proc = run_cli("runs", "register", RUN, "outputs/model.npy", "--name", "demo-model", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["model_uri"] == "models:/demo-model/1"
    tags = done["tags"]
    assert tags["envbuild.output_sha256"] == sha256_file(project / "outputs" / "model.npy")
    assert tags["envbuild.image_digest"] == "127.0.0.1:5000/demo@sha256:" + SHA["e"]
    assert tags["envbuild.image_id"] == "sha256:" + SHA["1"] and tags["envbuild.lock_hash"] == SHA["3"]
    assert tags["envbuild.commit"] == "c" * 40 and tags["envbuild.dirty"] == "false"
    assert json.loads(tags["envbuild.data_manifest"]) == {"data/train.csv": SHA["a"], "data/extra": SHA["b"]}

    # what MLflow itself holds: the version, its tags, the file as an artifact of the exported run
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project}/.envbuild/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version("demo-model", "1")
    assert mv.tags["envbuild.run_id"] == RUN and mv.run_id == done["mlflow_run_id"]
    assert client.get_run(mv.run_id).data.tags["envbuild.run_id"] == RUN
    local = Path(client.download_artifacts(mv.run_id, "outputs/model.npy", str(project / "dl")))
    assert sha256_file(local) == tags["envbuild.output_sha256"]

    # a second registration is version 2; latest finds it
    again = run_cli("runs", "register", "latest", "outputs/model.npy", "--name", "demo-model", "--json", cwd=project)
    assert again.returncode == 0 and json.loads(again.stdout)["version"] == "2", again.stderr

    traced = run_cli("trace", "models:/demo-model/1", "--json", cwd=project)
    assert traced.returncode == 0, traced.stderr
    t = json.loads(traced.stdout)
    assert t["made_by"]["run"] == RUN and t["made_by"]["path"] == "outputs/model.npy" and t["mismatches"] == []
    assert t["made_by"]["ingredients"]["image"]["base_digest"] == "sha256:" + SHA["2"]
    assert t["registered"]["tags"]["data_manifest"] == tags["envbuild.data_manifest"]
    human = run_cli("trace", "models:/demo-model/latest", cwd=project)
    assert human.returncode == 0 and f"made by run {RUN}" in human.stdout and "envbuild reproduce" in human.stdout

    # an edited tag no longer matches the record: exit 1 naming it
    client.set_model_version_tag("demo-model", "1", "envbuild.lock_hash", "0" * 64)
    bad = run_cli("trace", "models:/demo-model/1", cwd=project)
    assert bad.returncode == 1 and "lock_hash" in bad.stderr and "disagree" in bad.stderr


def test_register_refuses_a_changed_or_foreign_file_and_writes_nothing(project: Path) -> None:
    from envbuild import store

    run_dir, r = store.load_run(project, RUN)
    uri = modelregistry.tracking_uri(project, None)
    with pytest.raises(EnvbuildError, match="not an output of run .* outputs/model.npy"):
        modelregistry.register(project, uri, run_dir, r, "outputs/other.pt", "m")
    (project / "outputs" / "model.npy").write_bytes(b"retrained elsewhere")
    proc = run_cli("runs", "register", RUN, "outputs/model.npy", "--name", "m", cwd=project)
    assert proc.returncode != 0 and "the file changed since the run" in proc.stderr
    assert not (project / ".envbuild" / "mlflow.db").exists()  # nothing registered, no store made


def test_trace_of_a_bad_or_unknown_model_uri_says_how_to_write_it(tracked: Path) -> None:
    with pytest.raises(EnvbuildError, match="models:/NAME/VERSION"):
        modelregistry.parse("models:/only-a-name")
    with pytest.raises(EnvbuildError, match="no such model version"):
        modelregistry.lookup(modelregistry.tracking_uri(tracked, None), "models:/nope/1")


def test_no_tracking_uri_names_the_file_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\ndependencies = ["numpy"]\n')
    with pytest.raises(EnvbuildError, match=r"pyproject.toml: \[tool.envbuild.tracking\] has no mlflow URI"):
        modelregistry.tracking_uri(tmp_path, None)


def test_mismatches_compares_only_lineage_tags() -> None:
    r = record(RUN)
    out = {"path": "outputs/model.npy", "sha256": SHA["8"]}
    tags = {k[len("envbuild."):]: v for k, v in modelregistry.lineage_tags(r, out).items()}
    assert modelregistry.mismatches(tags, r, out) == []
    other = variant(r, "20260101T000100Z-bbbbbb", code={**r["code"], "commit": "d" * 40})
    assert [m.split(":")[0] for m in modelregistry.mismatches(tags, other, out)] == ["commit"]
