"""Per-file manifests of a run's data and outputs: which file was added, removed or changed.

A manifest lists every file under one spec path: `{"path": "data/", "files": [{"path": "data/a.csv",
"bytes": 12, "sha256": "..."}]}` (project-relative paths, walk order). It is stored in the run dir,
content-addressed, as `manifests/<sha256 of its canonical JSON>.json`, and the record points at it:
`manifests: {"data": {"data/": <sha256>}, "outputs": {"outputs/": <sha256>}}`. The same data gives
the same file name; a record copied elsewhere with its run dir can still check one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from envbuild.fsutil import atomic_write_text, canonical_json, sha256_bytes

MANIFEST_DIR = "manifests"
SHOWN = 10  # file names shown per kind of change, then "and N more"


def write(run_dir: Path, path: str, files: list[dict[str, Any]]) -> str:
    """Store the manifest of `path` in the run dir; return its digest."""
    text = canonical_json({"path": path, "files": files})
    digest = sha256_bytes(text.encode())
    target = Path(run_dir) / MANIFEST_DIR / f"{digest}.json"
    if not target.is_file():
        atomic_write_text(target, text)
    return digest


def load(run_dir: Path | None, digest: str | None) -> list[dict[str, Any]] | None:
    """The files of a stored manifest, or None when it is missing or not what its name says."""
    if run_dir is None or not digest:
        return None
    try:
        text = (Path(run_dir) / MANIFEST_DIR / f"{digest}.json").read_text()
    except OSError:
        return None
    if sha256_bytes(text.encode()) != digest:
        return None
    return json.loads(text).get("files")


def of_outputs(outputs: list[dict[str, Any]], paths: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The record's outputs list grouped by spec `outputs` path."""
    grouped = {}
    for p in paths:
        top = p.rstrip("/")
        grouped[p] = [{"path": o["path"], "bytes": o["bytes"], "sha256": o["sha256"]} for o in outputs
                      if o["path"] == top or o["path"].startswith(top + "/")]
    return grouped


@dataclass
class Delta:
    added: list[str]
    removed: list[str]
    changed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """`2 added (a, b); 1 changed (c)`, naming at most SHOWN files of each kind."""
        parts = []
        for kind, names in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
            if names:
                shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
                parts.append(f"{len(names)} {kind} ({shown})")
        return "; ".join(parts) or "no file differs"


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Delta:
    a = {f["path"]: f["sha256"] for f in old}
    b = {f["path"]: f["sha256"] for f in new}
    return Delta(sorted(set(b) - set(a)), sorted(set(a) - set(b)), sorted(p for p in set(a) & set(b) if a[p] != b[p]))


def changes(path: str, old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> str | None:
    """What changed under a data path, file by file, or None when that says nothing more than the
    path itself (a single file, or a manifest missing on one side)."""
    if old is None or new is None or {f["path"] for f in old} | {f["path"] for f in new} <= {path}:
        return None
    return compare(old, new).describe()
