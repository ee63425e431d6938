from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from envbuild import record

TRACK = Path(__file__).resolve().parents[2] / "envbuild" / "runtime" / "site" / "envbuild" / "track.py"


@pytest.fixture
def track(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    spec = importlib.util.spec_from_file_location("envbuild_track_under_test", TRACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("ENVBUILD_RUN_DIR", str(tmp_path))
    return module


def test_metrics_and_params_land_in_the_record(track, tmp_path: Path) -> None:
    track.log_params({"lr": 0.1, "layers": [1, 2]})
    track.log_metrics({"loss": 1.0}, step=0)
    track.log_metrics({"loss": 0.5, "acc": 1}, step=1)
    track.log_metrics({"bad": math.nan})
    (tmp_path / "metrics.json").write_text(json.dumps({"final": 0.25, "note": "text is ignored"}))
    assert record.collect_params(tmp_path) == {"lr": 0.1, "layers": "[1, 2]"}
    assert record.collect_metrics(tmp_path) == {"loss": 0.5, "acc": 1, "bad": None, "final": 0.25}
    assert [e["step"] for e in record.metric_history(tmp_path)] == [0, 1, None]


def test_rejects_non_numbers_and_is_a_noop_outside_runs(track, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(TypeError):
        track.log_metrics({"loss": "low"})
    monkeypatch.delenv("ENVBUILD_RUN_DIR")
    track.log_metrics({"loss": 1.0})
    assert not (tmp_path / "metrics.jsonl").exists()
