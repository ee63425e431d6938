"""Copy a run record into MLflow (`[tool.envbuild.tracking] mlflow = URI`; extra `envbuild[mlflow]`).

One MLflow run per envbuild run, in an experiment named after the project: MLflow's standard tags
(mlflow.source.git.commit, mlflow.docker.image.id, mlflow.docker.image.uri, mlflow.source.name, ...),
the params and seed, every metric with its steps, and record.json + logs as artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envbuild import record as rec
from envbuild.errors import EnvbuildError

STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "cancelled": "KILLED",
          "running": "RUNNING"}


def tracking_uri(root: Path, uri: str) -> str:
    """A relative sqlite path is taken from the project root, not from wherever envbuild was started."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str((Path(root) / uri[len(prefix):]).resolve())
    return uri


def _artifact_location(uri: str) -> str | None:
    # a sqlite store has no artifact server: keep artifacts beside the database file
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def _millis(iso: str | None) -> int | None:
    if not iso:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def export(root: Path, uri: str, run_dir: Path, record: dict[str, Any]) -> str:
    """Log the run; return the MLflow run id."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise EnvbuildError("[tool.envbuild.tracking] mlflow is set but MLflow is not installed; "
                            "pip install 'envbuild[mlflow]'") from None
    uri = tracking_uri(root, uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_name = record["project"]["name"]
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (experiment.experiment_id if experiment else
                     client.create_experiment(experiment_name, artifact_location=_artifact_location(uri)))

    started = _millis(record.get("started_at"))
    run = client.create_run(experiment_id, start_time=started, tags=rec.mlflow_tags(record),
                            run_name=record["id"])
    run_id = run.info.run_id
    params = {"seed": record.get("seed"), **(record.get("params") or {})}
    history = []
    for entry in rec.metric_history(run_dir):
        ts = int(entry.get("time", 0) * 1000)
        step = entry.get("step") or 0
        history += [Metric(k, float(v), ts, step) for k, v in entry["metrics"].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)]
    logged = {m.key for m in history}
    ended = _millis(record.get("ended_at")) or started or 0
    # metrics only in a metrics.json: their final value, at the run's end
    history += [Metric(k, float(v), ended, 0) for k, v in (record.get("metrics") or {}).items()
                if k not in logged and v is not None]
    param_list = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
    client.log_batch(run_id, tags=[RunTag("envbuild.status", record["status"])])
    for i in range(0, len(param_list), 100):  # MLflow's batch limits: 100 params, 1000 metrics
        client.log_batch(run_id, params=param_list[i:i + 100])
    for i in range(0, len(history), 1000):
        client.log_batch(run_id, metrics=history[i:i + 1000])
    for name in (rec.RECORD_FILE, rec.STDOUT_LOG, rec.STDERR_LOG, rec.DIFF_FILE):
        if (Path(run_dir) / name).is_file():
            client.log_artifact(run_id, str(Path(run_dir) / name))
    client.set_terminated(run_id, STATUS.get(record["status"], "FINISHED"), end_time=_millis(record.get("ended_at")))
    return run_id
