"""Where a project's state lives in `<project>/.envbuild`: run records (`runs/<id>/record.json`, one
directory per run) and the attestations of its images (`attest/`, written by attest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_text
from envbuild.record import RECORD_FILE, read_record, upgrade

RUNS_DIR = Path(".envbuild") / "runs"
ATTEST_DIR = Path(".envbuild") / "attest"


def runs_dir(root: Path | str) -> Path:
    return Path(root).resolve() / RUNS_DIR


def state_dir(root: Path | str) -> Path:
    """`<project>/.envbuild`, made on first use with a .gitignore of its own: records, caches and
    worktrees are local state and must never show up in the project's git status or commits."""
    path = Path(root).resolve() / ".envbuild"
    ignore = path / ".gitignore"
    if not ignore.is_file():  # atomic: a half-written .gitignore would let runs into git status
        atomic_write_text(ignore, "*\n")
    return path


def attest_paths(root: Path | str, image_digest: str) -> tuple[Path, Path]:
    """(SBOM, signed provenance envelope) of the image with this manifest digest."""
    stem = Path(root) / ATTEST_DIR / image_digest.replace(":", "-")
    return stem.with_name(stem.name + ".sbom.cdx.json"), stem.with_name(stem.name + ".dsse.json")


def provenance_digest(root: Path | str, image_digest: str | None) -> str | None:
    """The digest of the provenance envelope written for this image (for the run record), if any."""
    from envbuild.fsutil import sha256_file

    envelope = attest_paths(root, image_digest)[1] if image_digest else None
    return f"sha256:{sha256_file(envelope)}" if envelope and envelope.is_file() else None


def new_run_dir(root: Path | str, run_id: str) -> Path:
    state_dir(root)
    path = runs_dir(root) / run_id
    path.mkdir(parents=True, exist_ok=False)
    return path


def _run_ids(root: Path | str) -> list[str]:
    """Run ids, newest first (ids start with their UTC start time)."""
    try:
        with os.scandir(runs_dir(root)) as it:
            ids = [e.name for e in it if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    return sorted(ids, reverse=True)


def list_runs(root: Path | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Records, newest first (by started_at, then id); unreadable records are skipped."""
    base = runs_dir(root)
    records: list[dict[str, Any]] = []
    for run_id in _run_ids(root):
        # ids start with their start second: once `limit` records are in, only ids of that same
        # second can still sort before them (by started_at), so the rest need not be read
        if limit is not None and len(records) >= limit and run_id[:16] != str(records[-1].get("id", ""))[:16]:
            break
        try:
            with open(base / run_id / RECORD_FILE, "rb") as f:
                record = json.loads(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(upgrade(record))
    records.sort(key=lambda r: (str(r.get("started_at", "")), str(r.get("id", ""))), reverse=True)
    return records[:limit] if limit is not None else records


def load_run(root: Path | str, ref: str) -> tuple[Path, dict[str, Any]]:
    """The run directory and record for an id, a unique id prefix, or `latest`."""
    if ref == "latest":
        runs = list_runs(root, limit=1)
        if not runs:
            raise EnvbuildError(f"{runs_dir(root)}: no runs yet; start one with envbuild run SCRIPT")
        ref = runs[0]["id"]
    ids = _run_ids(root)
    matches = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
    if not matches:
        raise EnvbuildError(f"no run {ref!r} in {runs_dir(root)}; list them with envbuild runs")
    if len(matches) > 1:
        raise EnvbuildError(f"run {ref!r} is ambiguous ({', '.join(matches[:5])}...); give more of the id")
    path = runs_dir(root) / matches[0]
    return path, read_record(path)
