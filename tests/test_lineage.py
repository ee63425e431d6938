"""lineage: find the run by an output's sha256, through the index, on hand-written records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from envbuild import lineage
from envbuild.fsutil import sha256_file
from tests.helpers.records import record, save, variant


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "proj"
    model = tmp_path / "elsewhere" / "deep" / "copy.bin"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights" * 100)
    return root, model


def test_finds_original_before_reproductions(tmp_path: Path):
    root, model = _project(tmp_path)
    sha = sha256_file(model)
    orig = record("20260101T000000Z-aaaaaa", outputs=[{"path": "outputs/model.bin", "sha256": sha, "bytes": 700}])
    save(root, orig)
    save(root, variant(orig, "20260102T000000Z-bbbbbb", reproduces=orig["id"], started_at="2026-01-02T00:00:00Z"))
    save(root, record("20260103T000000Z-cccccc"))  # another output
    got, found = lineage.trace(model, [root])
    assert got == sha
    assert [m.run_id for _, m in found] == ["20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"]
    assert found[0][1].path == "outputs/model.bin"
    index = json.loads(lineage.index_path(root).read_text())
    assert sorted(index["runs"]) == sorted(p.name for p in (root / ".envbuild" / "runs").iterdir())


def test_index_is_incremental_and_forgets_deleted_runs(tmp_path: Path, monkeypatch):
    root, model = _project(tmp_path)
    sha = sha256_file(model)
    save(root, record("r1", outputs=[{"path": "o/m", "sha256": sha, "bytes": 1}]))
    assert [m.run_id for m in lineage.find_by_sha256(root, sha)] == ["r1"]

    reads = []
    real = Path.read_text

    def counting(self, *a, **k):
        reads.append(self)
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", counting)
    save(root, record("r2", outputs=[{"path": "o/m2", "sha256": sha, "bytes": 1}]))
    assert [m.run_id for m in lineage.find_by_sha256(root, sha)] == ["r1", "r2"]
    # only the new record was read to index it (plus the index, plus the two matches' records)
    indexed = [p for p in reads if p.name == "record.json"]
    assert indexed.count(root / ".envbuild" / "runs" / "r1" / "record.json") == 1  # the match, not re-indexed
    monkeypatch.undo()

    shutil.rmtree(root / ".envbuild" / "runs" / "r1")
    assert [m.run_id for m in lineage.find_by_sha256(root, sha)] == ["r2"]


def test_running_records_are_indexed_once_finished(tmp_path: Path):
    root, model = _project(tmp_path)
    sha = sha256_file(model)
    rec = record("r1", status="running", outputs=[])
    save(root, rec)
    assert lineage.find_by_sha256(root, sha) == []
    rec.update(status="succeeded", outputs=[{"path": "o/m", "sha256": sha, "bytes": 1}])
    save(root, rec)
    assert [m.run_id for m in lineage.find_by_sha256(root, sha)] == ["r1"]


def test_no_run_made_it(tmp_path: Path):
    root, model = _project(tmp_path)
    save(root, record("r1"))
    assert lineage.trace(model, [root])[1] == []
    assert lineage.find_by_sha256(tmp_path / "no-project", "0" * 64) == []


def test_ingredients_and_reproduce_command(tmp_path: Path):
    rec = record("r1")
    ing = lineage.ingredients(rec)
    assert ing["lock_hash"] == rec["lock"]["lock_hash"] and ing["seed"] == 1234
    assert ing["code"]["commit"] == "c" * 40 and ing["data"][0]["path"] == "data/train.csv"
    assert lineage.reproduce_command(rec, tmp_path, cwd=tmp_path) == "envbuild reproduce r1"
    assert lineage.reproduce_command(rec, tmp_path, cwd=tmp_path.parent) == \
        f"envbuild reproduce r1 --project {tmp_path.resolve()}"
