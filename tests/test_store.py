from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from envbuild import record, store
from envbuild.errors import EnvbuildError


def _make(root: Path, run_id: str, started: str) -> None:
    d = store.new_run_dir(root, run_id)
    record.write_record(d, {"schema_version": 1, "id": run_id, "started_at": started, "status": "succeeded"})


def test_list_newest_first_and_find(tmp_path: Path) -> None:
    assert store.list_runs(tmp_path) == []
    with pytest.raises(EnvbuildError, match="no runs yet"):
        store.load_run(tmp_path, "latest")
    _make(tmp_path, "20260101T000000Z-aaaaaa", "2026-01-01T00:00:00.1Z")
    _make(tmp_path, "20260102T000000Z-bbbbbb", "2026-01-02T00:00:00.1Z")
    _make(tmp_path, "20260102T000000Z-cccccc", "2026-01-02T00:00:00.2Z")  # same second, started later
    (store.runs_dir(tmp_path) / "broken").mkdir()
    ids = [r["id"] for r in store.list_runs(tmp_path)]
    assert ids == ["20260102T000000Z-cccccc", "20260102T000000Z-bbbbbb", "20260101T000000Z-aaaaaa"]
    assert store.load_run(tmp_path, "latest")[1]["id"] == ids[0]
    assert store.load_run(tmp_path, "20260101")[1]["id"] == ids[2]
    with pytest.raises(EnvbuildError, match="ambiguous"):
        store.load_run(tmp_path, "20260102")
    with pytest.raises(EnvbuildError, match="no run 'nope'"):
        store.load_run(tmp_path, "nope")


def test_thousand_records(tmp_path: Path) -> None:
    from envbuild.record import example as sample

    for i in range(1000):
        run_id = f"2026{1 + i // 28 % 12:02d}{1 + i % 28:02d}T{i // 336:02d}0000Z-{i:06x}"
        r = sample(id=run_id, started_at=f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:00:00Z")
        d = store.runs_dir(tmp_path) / run_id
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps(r))
    t = time.perf_counter()
    runs = store.list_runs(tmp_path)
    elapsed = time.perf_counter() - t
    assert len(runs) == 1000 and runs[0]["started_at"] >= runs[-1]["started_at"]
    print(f"list_runs over 1000 records: {elapsed:.3f} s")  # reported, never asserted


def test_state_dir_ignores_itself_in_git(tmp_path):
    from envbuild import store

    run_dir = store.new_run_dir(tmp_path, "20260101T000000Z-abcdef")
    assert run_dir.is_dir()
    assert (tmp_path / ".envbuild" / ".gitignore").read_text() == "*\n"
