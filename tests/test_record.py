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


def test_the_read_view_names_facts_the_schema_has() -> None:
    """Each view's fields are keys the schema defines for that section: the view invents no key."""
    props = record.schema()["properties"]
    views = {"image": record.ImageFacts, "lock": record.LockFacts, "code": record.CodeFacts,
             "host": record.HostFacts, "determinism": record.DeterminismFacts, "placement": record.PlacementFacts,
             "data": record.DataFacts}
    for name, view in views.items():
        section = props[name].get("properties") or props[name]["items"]["properties"]
        assert set(view.names()) <= set(section), name
    assert set(record.HOST_FACTS) <= set(props["host"]["properties"])


def test_the_read_view_of_an_old_record_and_of_missing_sections() -> None:
    old = json.loads((Path(__file__).parent / "data" / "record-v1.json").read_text())
    r = record.Record.from_dict(old)
    assert r.kind == record.KIND_RUN and r.raw["schema_version"] == record.SCHEMA_VERSION
    assert (r.id, r.image.id, r.code.commit, r.seed) == (old["id"], old["image"]["id"], old["code"]["commit"],
                                                         old["seed"])
    assert r.lock_hash == (old["lock"]["lock_hash"] or old["image"]["lock_hash"])
    assert [d.sha256 for d in r.data] == [d["sha256"] for d in old["data"]]
    assert record.Record.from_dict(r) is r
    empty = record.Record.from_dict({"id": "x", "code": {"dirty": None, "changed_files": None}})
    assert (empty.image.id, empty.code.dirty, empty.code.changed_files, empty.lock.packages) == (None, None, [], {})
    assert (empty.data, empty.outputs, empty.host.gpus, empty.placement, empty.command) == ((), (), (), None, [])
    assert empty.host.facts == dict.fromkeys(record.HOST_FACTS) and empty.torch.cuda is None


def test_readers_spell_no_record_keys() -> None:
    """The readers take record facts through record.Record; a top-level key spelled in one of them is
    a reader going around it. Listed: the keys of other documents that share a name."""
    import re

    keys = set(record.schema()["properties"])
    own = {"lineage.py": {"outputs"},  # lineage's own index file
           "report.py": {"metrics"},  # metrics.jsonl lines (record.metric_history)
           "commands/runs.py": {"tags"}}  # the model registry's answer
    pkg = Path(record.__file__).parent
    # CONSTANT["code"] is a table of our own, not a record
    for name in ("compare.py", "reproduce.py", "lineage.py", "verify.py", "report.py", "commands/runs.py"):
        used = set(re.findall(r"""(?:\.get\(|(?<![A-Z])\[)\s*["'](\w+)["']""", (pkg / name).read_text())) & keys
        assert used <= own.get(name, set()), f"{name} reads record keys {sorted(used - own.get(name, set()))}"
