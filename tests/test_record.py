from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from envbuild import record
from envbuild.errors import EnvbuildError

H = "a" * 64


def sample(**over) -> dict:
    r = {
        "schema_version": 1, "id": "20261128T063000Z-1a2b3c", "status": "succeeded", "exit_code": 0,
        "reason": None, "started_at": "2026-11-28T06:30:00.000001Z", "ended_at": "2026-11-28T06:30:05.000001Z",
        "duration_s": 5.0, "command": ["python", "train.py"], "project": {"name": "p", "root": "/p"}, "seed": 1,
        "determinism": {"enabled": True, "env": {"PYTHONHASHSEED": "1"}, "settings": ["random.seed(1)"]},
        "image": {"ref": "envbuild/p:abc", "id": f"sha256:{H}", "repo_digest": f"r/p@sha256:{H}",
                  "base": "b:1", "base_digest": f"sha256:{H}", "lock_hash": H},
        "lock": {"envbuild_lock_sha256": H, "lock_hash": H, "inputs_hash": H, "lockfiles": {"requirements.lock": H},
                 "packages": {"six": "1.16.0"}},
        "code": {"commit": "b" * 40, "branch": "main", "dirty": False, "diff_sha256": None, "diff_file": None,
                 "remote": None, "changed_files": []},
        "data": [{"path": "data/", "sha256": H, "bytes": 3, "files": 1}], "dvc": None,
        "host": {"os": "Debian", "kernel": "6", "machine": "x86_64", "cpu": "x", "cpus": 2, "memory_bytes": 1,
                 "docker_version": "20.10", "gpus": []},
        "env": {"API_TOKEN": "***"}, "params": {"lr": 0.1}, "metrics": {"loss": 0.5},
        "outputs": [{"path": "outputs/m", "sha256": H, "bytes": 1}], "network": "none", "gpus": None,
        "reproduces": None, "tags": {"mlflow.source.name": "train.py"},
    }
    r.update(over)
    return r


def test_schema_accepts_a_full_record_and_names_a_bad_field() -> None:
    record.validate(sample())
    jsonschema.Draft202012Validator.check_schema(record.schema())
    bad = sample()
    bad["image"] = {**bad["image"], "id": "not-a-digest"}
    with pytest.raises(EnvbuildError, match="image/id"):
        record.validate(bad)
    missing = sample()
    del missing["outputs"]
    with pytest.raises(EnvbuildError, match="outputs"):
        record.validate(missing)


def test_write_read_roundtrip_keeps_json_finite(tmp_path: Path) -> None:
    r = sample(metrics={"loss": float("nan"), "acc": 1.0})
    record.write_record(tmp_path, r)
    back = record.read_record(tmp_path)
    assert back["metrics"] == {"loss": None, "acc": 1.0}
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed into place
    record.validate(back)


def test_read_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EnvbuildError, match="no run record"):
        record.read_record(tmp_path)
    (tmp_path / "record.json").write_text("{")
    with pytest.raises(EnvbuildError, match="not a valid run record"):
        record.read_record(tmp_path)
    (tmp_path / "record.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(EnvbuildError, match="schema_version 99"):
        record.read_record(tmp_path)


def test_ids_sort_by_time() -> None:
    from datetime import datetime, timezone

    a = record.new_run_id(datetime(2026, 1, 1, tzinfo=timezone.utc))
    b = record.new_run_id(datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert a < b and a.startswith("20260101T000000Z-")


def test_mlflow_tags_use_standard_names() -> None:
    tags = record.mlflow_tags(sample())
    assert tags["mlflow.source.git.commit"] == "b" * 40
    assert tags["mlflow.docker.image.id"] == f"sha256:{H}"
    assert tags["mlflow.docker.image.uri"] == f"r/p@sha256:{H}"
    assert tags["mlflow.source.name"] == "train.py"


def test_settings_deduplicated_across_processes(tmp_path: Path) -> None:
    lines = [{"pid": 1, "settings": ["a", "b"]}, {"pid": 2, "settings": ["b", "c"]}]
    (tmp_path / record.SETTINGS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"cut')
    assert record.collect_settings(tmp_path) == ["a", "b", "c"]
