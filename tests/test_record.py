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


# --- one shape: the constructor, the typed sections and the schema agree -------------------


def test_typed_sections_and_the_schema_name_the_same_fields() -> None:
    props = record.schema()["properties"]
    for name, section in record.SECTIONS.items():
        fields = set(section.__annotations__)
        assert fields == set(props[name]["properties"]), name
        assert set(props[name].get("required", [])) <= fields, name
    made = record.new("20261128T063000Z-1a2b3c", kind=record.KIND_RUN, command=["python", "train.py"],
                      project={"name": "p", "root": "/p"}, seed=1, deterministic=True, image_ref=None,
                      network="none", gpus=None, started=record.now_utc())
    assert set(made) <= set(props) and set(record.schema()["required"]) <= set(made)
    assert set(record.example()) <= set(props)
    for name in record.SECTIONS:
        assert set(made[name]) <= set(props[name]["properties"]), name


def test_a_record_written_by_schema_version_1_still_reads(tmp_path: Path) -> None:
    """A real record from before `kind` (tests/data/record-v1.json): read, listed and validated as a run."""
    from envbuild import store

    old = json.loads((Path(__file__).parent / "data" / "record-v1.json").read_text())
    assert old["schema_version"] == 1 and "kind" not in old
    run_dir = store.new_run_dir(tmp_path, old["id"])
    (run_dir / "record.json").write_text(json.dumps(old))
    read = record.read_record(run_dir)
    assert (read["schema_version"], read["kind"], record.kind(read)) == (record.SCHEMA_VERSION, "run", "run")
    record.validate(read)
    record.validate(old)  # the file as it is, too
    assert store.list_runs(tmp_path)[0]["kind"] == "run"
    assert json.loads((run_dir / "record.json").read_text()) == old  # never rewritten: its seal covers its bytes
