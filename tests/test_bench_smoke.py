"""The benchmarks at tiny sizes, one run each, so they cannot rot. Nothing here asserts a speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"
HEADER = "| bench | case | median s | runs | reference (same run) | x ref | floor | meets | note |"


def smoke(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, *args, "--smoke"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert HEADER in lines, proc.stdout
    return lines


def rows_of(lines: list[str], bench: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith(f"| {bench} |")]


@pytest.mark.parametrize("bench, cases", [("lock", 8), ("data", 4), ("cli", 7), ("report", 2)])
def test_bench_without_docker(bench: str, cases: int) -> None:
    rows = rows_of(smoke(str(BENCH / f"{bench}.py")), bench)
    assert len(rows) == cases
    assert all(float(r[2]) >= 0 and r[3] == "1" for r in rows)
    assert bench == "report" or any(r[6] for r in rows)  # a floor is judged (the report's issue sets none)


@pytest.mark.docker
@pytest.mark.parametrize("bench, cases", [("build", 10), ("push", 1), ("run", 3), ("interactive", 2), ("teambase", 2),
                                          ("ssh", 3)])
def test_bench_with_docker(bench: str, cases: int, base_image: str) -> None:
    rows = rows_of(smoke(str(BENCH / f"{bench}.py")), bench)
    assert len(rows) == cases and all(r[7] in ("yes", "**NO**", "") for r in rows)
    if bench == "build":
        assert "MB" in rows[0][8] and "MB" in rows[1][8]  # both image sizes


@pytest.mark.docker
@pytest.mark.slurm
def test_bench_on_slurm(base_image: str, slurm_cluster: None) -> None:
    rows = rows_of(smoke(str(BENCH / "slurm.py")), "slurm")
    assert len(rows) == 3 and rows[1][7] in ("yes", "**NO**")


def test_run_all_writes_one_report(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    lines = smoke(str(BENCH / "run_all.py"), "--only", "data", "cli", "--out", str(out))
    assert rows_of(lines, "data") and rows_of(lines, "cli")
    text = out.read_text()
    assert text.count(HEADER) == 1
    assert "Command: `python bench/run_all.py --only data cli --out" in text
    for fact in ("| cpu |", "| memory |", "| os |", "| docker |", "| python |"):
        assert fact in text


def test_floors_and_ratios() -> None:
    # Imported as bench.common, never by putting bench/ on sys.path: bench/build.py would then
    # shadow the `build` package that pip-tools imports, for every later test in the session.
    from bench.common import Row, link_refs, over_ref, ratio, throughput, under

    ref = Row("x", "ref", [1.0, 2.0, 9.0])
    rows = link_refs([ref, Row("x", "fast", [0.1], ref="ref", floor=under(0.2)),
                      Row("x", "slow", [2.6], ref="ref", floor=over_ref(0.5)),
                      Row("x", "hash", [2.4], ref="ref", floor=throughput(0.8)),
                      Row("x", "build", [1.7], ref="ref", floor=ratio(0.8))])
    assert ref.seconds == 2.0 and rows[1].ratio == pytest.approx(0.05)
    assert [r.ok for r in rows] == [None, True, False, True, False]
