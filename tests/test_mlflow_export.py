from __future__ import annotations

import json
from pathlib import Path

from envbuild import mlflow_export, record
from envbuild.record import example as sample


def read_back(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return client, runs


def test_sqlite_roundtrip_with_standard_tags(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = sample(project={"name": "mlflow-roundtrip", "root": str(tmp_path)}, params={"lr": 0.1})
    record.write_record(run_dir, r)
    (run_dir / "metrics.jsonl").write_text(
        "".join(json.dumps({"metrics": {"loss": v}, "step": i, "time": 1.0 + i}) + "\n" for i, v in enumerate([0.9, 0.5])))
    run_id = mlflow_export.export(tmp_path, "sqlite:///mlruns.db", run_dir, r)  # relative: from the project root
    assert (tmp_path / "mlruns.db").is_file()

    client, runs = read_back(f"sqlite:///{tmp_path}/mlruns.db", "mlflow-roundtrip")
    assert [x.info.run_id for x in runs] == [run_id]
    got = runs[0]
    assert got.data.tags["mlflow.source.git.commit"] == r["code"]["commit"]
    assert got.data.tags["mlflow.docker.image.id"] == r["image"]["id"]
    assert got.data.tags["mlflow.docker.image.uri"] == r["image"]["repo_digest"]
    assert got.data.tags["mlflow.source.name"] == "train.py"
    assert got.data.params == {"seed": "1", "lr": "0.1"}
    assert got.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.9, 0.5]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert "record.json" in artifacts
