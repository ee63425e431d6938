"""Hand-written run records for unit tests of compare and lineage (the record.py contract)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SHA = {c: c * 64 for c in "abcdef0123456789"}


def record(run_id: str = "20260101T000000Z-aaaaaa", **changes: Any) -> dict[str, Any]:
    """A complete succeeded record; `changes` replace top-level fields."""
    r: dict[str, Any] = {
        "schema_version": 1,
        "id": run_id,
        "status": "succeeded",
        "exit_code": 0,
        "reason": None,
        "started_at": "2026-01-01T00:00:00Z",
        "ended_at": "2026-01-01T00:00:05Z",
        "duration_s": 5.0,
        "command": ["python", "train.py", "--epochs", "3"],
        "project": {"name": "demo", "root": "/nonexistent/demo"},
        "seed": 1234,
        "determinism": {
            "enabled": True,
            "env": {"PYTHONHASHSEED": "1234", "ENVBUILD_SEED": "1234", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NVIDIA_TF32_OVERRIDE": "0"},
            "settings": ["random.seed(1234)", "numpy.random.seed(1234)"],
        },
        "image": {"ref": "envbuild/demo:0123456789ab", "id": "sha256:" + SHA["1"], "repo_digest": None,
                  "base": "127.0.0.1:5000/envbuild/base:bookworm", "base_digest": "sha256:" + SHA["2"],
                  "lock_hash": SHA["3"]},
        "lock": {"envbuild_lock_sha256": SHA["3"], "lock_hash": SHA["3"], "inputs_hash": SHA["4"],
                 "lockfiles": {"requirements.lock": SHA["5"]},
                 "packages": {"numpy": "2.1.0", "six": "1.16.0", "pip": "24.0"}},
        "code": {"commit": "c" * 40, "branch": "main", "dirty": False, "diff_sha256": None, "diff_file": None,
                 "remote": None, "changed_files": []},
        "data": [{"path": "data/train.csv", "sha256": SHA["6"], "bytes": 100, "files": 1},
                 {"path": "data/extra", "sha256": SHA["7"], "bytes": 20, "files": 2}],
        "dvc": None,
        "host": {"os": "Linux", "kernel": "6.1", "machine": "x86_64", "cpu": "Xeon", "cpus": 2,
                 "memory_bytes": 8 << 30, "docker_version": "20.10", "gpus": []},
        "env": {"PYTHONHASHSEED": "1234", "OMP_NUM_THREADS": "1", "API_TOKEN": "***",
                "ENVBUILD_RUN_ID": run_id},
        "params": {"lr": 0.1, "seed": 1234},
        "metrics": {"loss": 0.25, "acc": 0.9},
        "outputs": [{"path": "outputs/model.npy", "sha256": SHA["8"], "bytes": 80}],
        "network": "none",
        "gpus": None,
        "reproduces": None,
        "tags": {},
    }
    for key, value in changes.items():
        r[key] = value
    return r


def variant(base: dict[str, Any], run_id: str, **changes: Any) -> dict[str, Any]:
    r = copy.deepcopy(base)
    r["id"] = run_id
    r["env"]["ENVBUILD_RUN_ID"] = run_id
    r.update(changes)
    return r


def save(root: Path, rec: dict[str, Any]) -> Path:
    run_dir = Path(root) / ".envbuild" / "runs" / rec["id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "record.json").write_text(json.dumps(rec))
    return run_dir
