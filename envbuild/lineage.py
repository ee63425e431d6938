"""Artifact lineage: from a file's sha256 back to the run whose outputs hold it.

Every finished record lists its outputs with their sha256, so a file is traced by content, not
by name or place: a model copied anywhere still finds its run. An index
(`.envbuild/outputs-index.json`, keyed by output sha256) is kept beside the runs and brought up
to date on each lookup: only records it has not seen are read, so a lookup over many runs reads
one JSON file and lists one directory.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from envbuild.fsutil import atomic_write_json, sha256_file
from envbuild.record import RECORD_FILE, Record
from envbuild.store import runs_dir

INDEX_VERSION = 1
INDEX_NAME = "outputs-index.json"


@dataclass
class Match:
    run_id: str
    path: str  # the output path inside that run's project
    run_dir: Path
    record: dict[str, Any]

    @cached_property
    def facts(self) -> Record:
        return Record.from_dict(self.record)

    @property
    def is_reproduction(self) -> bool:
        return bool(self.facts.reproduces)


def index_path(root: Path) -> Path:
    return runs_dir(root).parent / INDEX_NAME


def _read_index(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        if data.get("version") == INDEX_VERSION:
            return data
    except (OSError, ValueError):
        pass
    return {"version": INDEX_VERSION, "runs": [], "outputs": {}}


def update_index(root: Path) -> dict[str, Any]:
    """Bring the index up to date with the finished runs on disk; return it."""
    path, base = index_path(root), runs_dir(root)
    index = _read_index(path)
    seen = set(index["runs"])
    on_disk = {p.name for p in base.iterdir() if (p / RECORD_FILE).is_file()} if base.is_dir() else set()
    added = False
    for run_id in sorted(on_disk - seen):
        try:
            record = json.loads((base / run_id / RECORD_FILE).read_text())
        except (OSError, ValueError):
            continue
        facts = Record.from_dict(record)
        if facts.status == "running":  # outputs not hashed yet: look again next time
            continue
        for out in facts.outputs:
            if out.sha256:
                index["outputs"].setdefault(out.sha256, []).append({"run": run_id, "path": out.path})
        index["runs"].append(run_id)
        added = True
    gone = seen - on_disk
    if gone:  # deleted runs leave the index too
        index["runs"] = [r for r in index["runs"] if r not in gone]
        for sha, hits in list(index["outputs"].items()):
            index["outputs"][sha] = [h for h in hits if h["run"] not in gone]
            if not index["outputs"][sha]:
                del index["outputs"][sha]
    if added or gone:
        atomic_write_json(path, index)
    return index


def find_by_sha256(root: Path, sha256: str) -> list[Match]:
    """Runs of the project at `root` whose outputs hold a file with this sha256.

    Originals come first (oldest first), reproductions after them.
    """
    base = runs_dir(root)
    matches = []
    for hit in update_index(root)["outputs"].get(sha256, []):
        record_file = base / hit["run"] / RECORD_FILE
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            continue
        matches.append(Match(hit["run"], hit["path"], record_file.parent, record))
    matches.sort(key=lambda m: (m.is_reproduction, m.facts.started_at or "", m.run_id))
    return matches


def ingredients(record: dict[str, Any] | Record) -> dict[str, Any]:
    """What went into a run, in the words trace prints."""
    r = Record.from_dict(record)
    image, code = r.image, r.code
    return {
        "image": {"ref": image.ref, "id": image.id, "repo_digest": image.repo_digest, "base": image.base,
                  "base_digest": image.base_digest},
        "lock_hash": r.lock_hash,
        "packages": len(r.lock.packages),
        "code": {"commit": code.commit, "branch": code.branch, "dirty": code.dirty, "diff_sha256": code.diff_sha256},
        "data": [{"path": d.path, "sha256": d.sha256, "files": d.files, "bytes": d.bytes} for d in r.data],
        "seed": r.seed,
        "deterministic": r.determinism.enabled,
        "command": r.command,
        "kind": r.kind,
    }


def reproduce_command(record: dict[str, Any] | Record, root: Path, cwd: Path | None = None) -> str:
    """The exact command that runs this record again (a shell session's: the shell in its environment)."""
    from envbuild.record import KIND_RUN

    r = Record.from_dict(record)
    # made by hand in a shell: the same environment can be had again, not the same keystrokes
    cmd = ["envbuild", "reproduce", str(r.id)] if r.kind == KIND_RUN else ["envbuild", "shell"]
    if Path(root).resolve() != Path(cwd or Path.cwd()).resolve():
        cmd += ["--project", str(Path(root).resolve())]
    return shlex.join(cmd)


def trace(file: Path, roots: list[Path]) -> tuple[str, list[tuple[Path, Match]]]:
    """sha256 of `file` and every (project root, match) over the given projects."""
    sha = sha256_file(file)
    found = [(Path(root), m) for root in roots for m in find_by_sha256(Path(root), sha)]
    return sha, found
