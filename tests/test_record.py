from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from envbuild import record
from envbuild.errors import EnvbuildError

H = "a" * 64


sample = record.example


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
