"""envbuild.track: log metrics and params from inside an `envbuild run` (stdlib only).

    from envbuild import track
    track.log_params({"lr": 0.1, "epochs": 3})
    track.log_metrics({"loss": 0.42, "accuracy": 0.9}, step=epoch)

Each call appends one JSON line to $ENVBUILD_RUN_DIR/metrics.jsonl or params.jsonl; the run record
keeps the last value of every metric and all params. Outside `envbuild run` (no ENVBUILD_RUN_DIR)
the calls do nothing, so a script runs unchanged on its own. A `metrics.json` the script writes
into the run dir or its outputs is read too.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, Mapping, Optional

METRICS_FILE = "metrics.jsonl"
PARAMS_FILE = "params.jsonl"


def run_dir() -> Optional[str]:
    """The current run's directory, or None outside `envbuild run`."""
    return os.environ.get("ENVBUILD_RUN_DIR") or None


def _append(name: str, entry: Dict[str, Any]) -> None:
    directory = run_dir()
    if directory is None:
        return
    with open(os.path.join(directory, name), "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def _number(key: str, value: Any) -> float:
    # numpy / torch scalars have .item(); bools are not metrics
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        return value  # json writes NaN/Infinity; the record keeps them as null
    return value


def log_metrics(metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
    """Record numeric metrics (optionally at a step); the last value per name ends up in the record."""
    values = {str(k): _number(str(k), v) for k, v in metrics.items()}
    _append(METRICS_FILE, {"metrics": values, "step": step, "time": time.time()})


def log_params(params: Mapping[str, Any]) -> None:
    """Record run parameters (hyper-parameters, settings); values are kept as JSON, else as str."""
    values = {}
    for k, v in params.items():
        if hasattr(v, "item"):
            v = v.item()
        values[str(k)] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    _append(PARAMS_FILE, {"params": values, "time": time.time()})
