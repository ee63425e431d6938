"""Records through the real CLI and engine: secrets withheld, records out of the run's reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild import record as rec
from tests.test_runner import numpy_template, project, run_json  # noqa: F401  (fixtures)

pytestmark = pytest.mark.docker

GHP = "ghp_" + "Zq9" * 12
PROBE = """\
import os, sys
from envbuild import track
track.log_params({"api_key": "param-secret-value", "lr": 0.1})
print("argv", sys.argv[1:])
print("token", os.environ.get("HF_TOKEN"))
print("github", os.environ.get("GH"))
"""


def _all_bytes(run_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file())


def test_env_file_and_secret_argument_stay_out_of_the_run_dir(project: Path) -> None:
    (project / ".env").write_text("DB_PASSWORD=env-file-secret-value\n")
    (project / "probe.py").write_text(PROBE)
    proc, r = run_json(project, "--env", "HF_TOKEN=hf-variable-secret-value", "--env", f"GH={GHP}",
                       "probe.py", "--api-key", "argument-secret-value")
    assert proc.returncode == 0, proc.stderr
    rec.validate(r)
    run_dir = project / ".envbuild" / "runs" / r["id"]
    stored = _all_bytes(run_dir)
    for secret in ("env-file-secret-value", "hf-variable-secret-value", GHP, "argument-secret-value",
                   "param-secret-value"):
        assert secret.encode() not in stored, secret
    assert r["command"] == ["python", "probe.py", "--api-key", "***"]
    assert r["params"] == {"api_key": "***", "lr": 0.1}
    withheld = r["withheld"]
    assert [f["path"] for f in withheld["files"]] == [".env"] and len(withheld["files"][0]["sha256"]) == 64
    assert withheld["masked"]["stdout.log"] >= 3 and withheld["masked"]["command"] == 1
    assert ".env" in r["code"]["changed_files"] and "b/.env" not in (run_dir / "code.diff").read_text()
    log = (run_dir / "stdout.log").read_text()
    assert "token ***" in log and "github ***" in log  # the container had them; the log does not


TAMPER = """\
import json, os, pathlib
runs = pathlib.Path(".envbuild/runs")
tries = {
    "earlier record": lambda: (runs / os.environ["EARLIER"] / "record.json").write_text("{}"),
    "own record": lambda: (runs / os.environ["ENVBUILD_RUN_ID"] / "record.json").write_text("{}"),
    "new run dir": lambda: (runs / "20990101T000000Z-000000").mkdir(),
    "remove earlier": lambda: (runs / os.environ["EARLIER"] / "stdout.log").unlink(),
    "hash cache": lambda: pathlib.Path(".envbuild/cache/planted.json").write_text("{}"),
}
for what, attempt in tries.items():
    try:
        attempt()
        print(what, "WRITTEN")
    except OSError as e:
        print(what, "refused", e.errno)
from envbuild import track
track.log_metrics({"still_tracked": 1.0})
"""


def test_a_run_cannot_change_records(project: Path) -> None:
    proc, first = run_json(project, "train.py", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    first_dir = project / ".envbuild" / "runs" / first["id"]
    before = {p: p.read_bytes() for p in first_dir.rglob("*") if p.is_file()}
    (project / "tamper.py").write_text(TAMPER)
    proc, r = run_json(project, "--env", f"EARLIER={first['id']}", "tamper.py")
    assert proc.returncode == 0, proc.stderr
    log = (project / ".envbuild" / "runs" / r["id"] / "stdout.log").read_text()
    assert "WRITTEN" not in log and log.count("refused") == 5, log
    assert {p: p.read_bytes() for p in first_dir.rglob("*") if p.is_file()} == before
    assert not (project / ".envbuild" / "runs" / "20990101T000000Z-000000").exists()
    assert r["metrics"]["still_tracked"] == 1.0 and r["status"] == "succeeded"
    assert not (project / ".envbuild" / "runs" / r["id"] / "container").exists()
    assert json.loads((first_dir / "record.json").read_text())["id"] == first["id"]


def test_two_runs_at_once_give_two_complete_records_in_one_chain(project: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from envbuild import chain, manifest
    from tests.test_runner import envbuild_as_user

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda seed: run_json(project, "--seed", str(seed), "train.py", "--epochs", "2"),
                                (1, 2)))
    records = [r for _, r in results]
    assert [p.returncode for p, _ in results] == [0, 0]
    assert {r["seed"] for r in records} == {1, 2} and len({r["id"] for r in records}) == 2
    for r in records:
        on_disk = rec.read_record(project / ".envbuild" / "runs" / r["id"])
        rec.validate(on_disk)
        assert on_disk["status"] == "succeeded" and on_disk["metrics"]["loss"] > 0 and on_disk["outputs"]
        run_dir = project / ".envbuild" / "runs" / r["id"]
        [data] = manifest.load(run_dir, on_disk["manifests"]["data"]["data/"])
        assert data["path"] == "data/points.csv" and data["sha256"] == manifest.sha256_bytes((project / data["path"]).read_bytes())
        outputs = manifest.load(run_dir, on_disk["manifests"]["outputs"]["outputs/"])
        assert {o["path"] for o in outputs} == {o["path"] for o in on_disk["outputs"]}
    seqs = sorted(rec.read_record(project / ".envbuild" / "runs" / r["id"])["integrity"]["seq"] for r in records)
    assert seqs == [1, 2]
    assert chain.verify(project).sealed == 2
    proc = envbuild_as_user("runs", "verify", cwd=project)
    assert proc.returncode == 0 and "2 sealed record(s) checked: intact" in proc.stdout, proc.stdout + proc.stderr
