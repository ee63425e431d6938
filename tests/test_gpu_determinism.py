"""scripts/gpu_determinism.py's verdict, with stand-in training runs (no torch, no GPU needed here)."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_determinism.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_determinism", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no torch: that happens in main()
    return module


FACTS = {"device": "cuda", "steps": 300, "torch": "2.11.0+cu130", "cuda": "13.0", "cudnn": 91300,
         "driver": "580.65.06", "gpu": "NVIDIA H200"}


def test_differing_digests_with_envbuild_exit_non_zero_and_figures_are_written(script, tmp_path: Path) -> None:
    counter = itertools.count()
    results = script.compare(lambda with_envbuild: f"digest-{next(counter)}")  # every run differs
    out = tmp_path / "figures.json"
    assert script.report(results, FACTS, out) == 1
    figures = json.loads(out.read_text())
    assert figures["bit_identical_with_envbuild"] is False and figures["driver"] == "580.65.06"
    assert figures["results"]["with envbuild"]["digests"] == ["digest-2", "digest-3"]


def test_identical_digests_with_envbuild_exit_zero(script, tmp_path: Path) -> None:
    counter = itertools.count()
    results = script.compare(lambda with_envbuild: "same" if with_envbuild else f"fast-{next(counter)}")
    assert script.report(results, FACTS, tmp_path / "f.json") == 0
    assert json.loads((tmp_path / "f.json").read_text())["results"]["without envbuild"]["identical"] is False


def test_a_failing_run_counts_as_differing(script, tmp_path: Path) -> None:
    def train(with_envbuild: bool) -> str:
        if with_envbuild:
            raise RuntimeError("index_add_cuda_ does not have a deterministic implementation")
        return "x"

    results = script.compare(train)
    assert script.report(results, FACTS, tmp_path / "f.json") == 1
    assert "deterministic" in results["with envbuild"]["error"]
