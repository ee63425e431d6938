"""Tamper-evident run records: every finished record is sealed into a hash chain.

Sealing (at the end of every run, under an exclusive lock so concurrent runs chain one after the
other) sets the record's `integrity`: `seq` (its place in the chain), `prev` (the previous sealed
record's digest), `files` (the sha256 of every other file in the run dir: logs, code.diff, lockfile
copies, manifests) and `digest`, the sha256 of the record's canonical JSON without `digest`. A line
`{seq, id, digest, prev}` is appended to `.envbuild/chain.jsonl`. When the user has a signing key
(`envbuild keys generate`), the seal also carries `keyid` and `signature`: the key's ECDSA signature
over `digest`, which covers `prev` and so every record before it.

`verify` walks the chain and names each run whose record or files changed after sealing, each run
removed, each sealed record that is not in the chain, and each signature that does not verify with
the public key (`--key`, else the user's own). What it does not protect against: anyone who can
write `.envbuild/` can recompute every digest and rewrite the whole chain; unsigned, the chain only
shows edits by someone who did not; signed, a rewrite needs the private key too (see the README).
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from envbuild.fsutil import canonical_json, sha256_bytes, sha256_file
from envbuild.record import RECORD_FILE, finite, write_record
from envbuild.store import runs_dir, state_dir

LEDGER = "chain.jsonl"
LOCK = "chain.lock"
UNDIGESTED = ("digest", "keyid", "signature")  # the signature signs the digest, so neither is in it


def record_digest(record: dict[str, Any]) -> str:
    """sha256 of the record as written (canonical JSON), its own `integrity.digest` left out."""
    body = dict(record)
    body["integrity"] = {k: v for k, v in (record.get("integrity") or {}).items() if k not in UNDIGESTED}
    return sha256_bytes(canonical_json(finite(body)).encode())


def run_files(run_dir: Path) -> dict[str, str]:
    """{relative path: sha256} of every file in the run dir but record.json."""
    out = {}
    for path in sorted(Path(run_dir).rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if rel != RECORD_FILE and path.is_file() and not path.is_symlink():
            out[rel] = sha256_file(path)
    return out


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """The project's chain lock (fcntl): one sealer at a time, across processes."""
    with open(state_dir(root) / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ledger(root: Path) -> Path:
    return runs_dir(root).parent / LEDGER  # not state_dir(): reading must not create .envbuild


def read_ledger(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(entries, problems with unreadable lines)."""
    entries, problems = [], []
    try:
        lines = _ledger(root).read_text().splitlines()
    except FileNotFoundError:
        return [], []
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not {"seq", "id", "digest", "prev"} <= set(entry):
                raise ValueError("not a chain entry")
        except ValueError as e:
            problems.append(f"{_ledger(root)} line {n}: unreadable ({e})")
            continue
        entries.append(entry)
    return entries, problems


def _head(root: Path) -> dict[str, Any] | None:
    """The last chain entry, reading only the end of the ledger."""
    try:
        with open(_ledger(root), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(tail):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def seal(root: Path, run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Chain the finished record (replacing any seal it had) and write it; return it."""
    root = Path(root)
    with locked(root):
        head = _head(root)
        record["integrity"] = {"seq": (head["seq"] + 1) if head else 1, "prev": head["digest"] if head else None,
                               "files": run_files(run_dir)}
        record["integrity"]["digest"] = digest = record_digest(record)
        record["integrity"].update(_signature(digest))
        write_record(run_dir, record)
        line = json.dumps({"seq": record["integrity"]["seq"], "id": record["id"], "digest": digest,
                           "prev": record["integrity"]["prev"]}, sort_keys=True) + "\n"
        fd = os.open(_ledger(root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one small append: never interleaved with another sealer's
            os.fsync(fd)
        finally:
            os.close(fd)
    return record


def _signature(digest: str) -> dict[str, str]:
    """{keyid, signature} over the digest with the user's key; {} without one (a stat, no import)."""
    from envbuild import keys

    path = keys.keys_dir() / keys.PRIVATE
    if not path.is_file():
        return {}
    import base64
    import sys

    from envbuild.errors import EnvbuildError

    try:
        key = keys.load_private(path)
    except EnvbuildError as e:  # the run is over: keep its record, unsigned, and say why
        print(f"envbuild: record not signed: {e}", file=sys.stderr)
        return {}
    return {"keyid": keys.signer_id(key), "signature": base64.b64encode(keys.sign(key, digest.encode())).decode()}


class _Signatures:
    """Checks seals' signatures with one public key: `--key` (every record must be signed), else the
    user's own .pub when there is one (unsigned records pass: made before the key, or by another user)."""

    def __init__(self, key: Path | None) -> None:
        from envbuild import keys

        self.required = key is not None
        self.path = key or keys.default_public()
        self.key = keys.load_public(self.path) if self.required or self.path.is_file() else None

    def problem(self, rid: str, integrity: dict[str, Any]) -> str | None:
        import base64
        import binascii

        from envbuild import keys

        if "signature" not in integrity:
            return f"run {rid}: not signed (--key asks every record to be)" if self.required else None
        if self.key is None:
            return None
        try:
            signature = base64.b64decode(str(integrity["signature"]), validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if not keys.verifies(self.key, signature, str(integrity.get("digest")).encode()):
            return f"run {rid}: signature does not verify with {self.path} (record.json rewritten after the run)"
        return None


@dataclass
class Report:
    sealed: int = 0
    problems: list[str] = field(default_factory=list)  # each names a run: exit 1
    notes: list[str] = field(default_factory=list)  # unsealed records (running, older envbuild)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "sealed": self.sealed, "problems": self.problems, "notes": self.notes}


def _check_run(run_dir: Path, entry: dict[str, Any], signatures: _Signatures) -> str | None:
    """What is wrong with one chained run, or None."""
    rid = entry["id"]
    try:
        record = json.loads((run_dir / RECORD_FILE).read_text())
    except FileNotFoundError:
        return f"run {rid}: removed (its record.json is gone)"
    except ValueError:
        return f"run {rid}: record.json altered (not valid JSON)"
    integrity = record.get("integrity") if isinstance(record, dict) else None
    if not isinstance(integrity, dict) or record_digest(record) != entry["digest"]:
        return f"run {rid}: record.json altered after the run (digest differs from the chain's)"
    if integrity.get("digest") != entry["digest"] or integrity.get("prev") != entry["prev"]:
        return f"run {rid}: record.json altered after the run (its seal differs from the chain's)"
    signed = signatures.problem(rid, integrity)
    if signed:
        return signed
    now = run_files(run_dir)
    sealed = integrity.get("files") or {}
    changed = sorted(p for p in set(now) | set(sealed) if now.get(p) != sealed.get(p))
    if changed:
        return f"run {rid}: files changed, added or removed after the run: {', '.join(changed[:10])}" + (
            f" and {len(changed) - 10} more" if len(changed) > 10 else "")
    return None


def verify(root: Path, key: Path | None = None) -> Report:
    """Check every run of the project against the chain (and signatures: see _Signatures)."""
    root = Path(root)
    signatures = _Signatures(key)
    report = Report()
    entries, report.problems = read_ledger(root)
    base = runs_dir(root)
    prev = None
    chained = set()
    for i, entry in enumerate(entries, 1):
        rid = entry["id"]
        chained.add(rid)
        if entry["seq"] != i or entry["prev"] != prev:
            report.problems.append(f"chain broken at run {rid} (seq {entry['seq']}): an entry before it was "
                                   "removed or changed")
        prev = entry["digest"]
        problem = _check_run(base / rid, entry, signatures)
        report.problems += [problem] if problem else []
        report.sealed += not problem
    on_disk = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    for rid in on_disk:
        if rid in chained:
            continue
        try:
            record = json.loads((base / rid / RECORD_FILE).read_text())
        except (OSError, ValueError):
            report.notes.append(f"run {rid}: no readable record.json, not in the chain")
            continue
        if isinstance(record, dict) and record.get("integrity"):
            report.problems.append(f"run {rid}: sealed but not in this project's chain (added or copied here "
                                   "afterwards, or its chain entry was removed)")
        elif isinstance(record, dict) and record.get("status") == "running":
            report.notes.append(f"run {rid}: still running (or killed): not sealed")
        else:
            report.notes.append(f"run {rid}: not sealed (written by an envbuild without record chaining)")
    return report
