"""The records' hash chain: sealing, `envbuild runs verify`, concurrent sealers, 1,000 runs."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

from envbuild import chain, lineage, record as rec, store
from tests.conftest import run_cli
from tests.helpers.records import record, save


def _seal(root: Path, run_id: str, **changes) -> Path:
    run_dir = save(root, record(run_id, **changes))
    (run_dir / "stdout.log").write_text(f"log of {run_id}\n")
    chain.seal(root, run_dir, rec.read_record(run_dir))
    return run_dir


def _ids(n: int) -> list[str]:
    return [f"20260101T{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:06x}" for i in range(n)]


def test_sealed_records_verify_and_validate(tmp_path: Path) -> None:
    dirs = [_seal(tmp_path, i) for i in _ids(3)]
    records = [rec.read_record(d) for d in dirs]
    for r in records:
        rec.validate(r)
        assert r["integrity"]["digest"] == chain.record_digest(r)
        assert r["integrity"]["files"] == {"stdout.log": chain.sha256_file(Path(dirs[0]).parent / r["id"] / "stdout.log")}
    assert [r["integrity"]["prev"] for r in records] == [None] + [r["integrity"]["digest"] for r in records[:2]]
    report = chain.verify(tmp_path)
    assert report.sealed == 3 and not report.problems and not report.notes
    proc = run_cli("runs", "verify", cwd=tmp_path)
    assert proc.returncode == 0 and "3 sealed record(s) checked: intact" in proc.stdout, proc.stdout + proc.stderr


def test_altered_removed_and_added_records_are_named(tmp_path: Path) -> None:
    a, b, c, d = (_seal(tmp_path, i) for i in _ids(4))
    edited = json.loads((a / "record.json").read_text())
    edited["metrics"]["loss"] = 0.01  # a better loss, after the fact
    (a / "record.json").write_text(json.dumps(edited))
    shutil.rmtree(b)
    (c / "stdout.log").write_text("another log\n")
    copied = tmp_path / ".envbuild" / "runs" / "20260202T000000Z-c0ffee"
    shutil.copytree(d, copied)
    proc = run_cli("runs", "verify", "--json", cwd=tmp_path)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    problems = "\n".join(out["problems"])
    assert f"run {a.name}: record.json altered" in problems
    assert f"run {b.name}: removed" in problems
    assert f"run {c.name}: files changed, added or removed after the run: stdout.log" in problems
    assert "run 20260202T000000Z-c0ffee: sealed but not in this project's chain" in problems
    assert d.name not in problems and out["sealed"] == 1
    proc = run_cli("runs", "verify", cwd=tmp_path)
    assert proc.returncode == 1 and a.name in proc.stdout and "4 problem(s)" in proc.stdout


def test_a_run_removed_with_its_chain_entry_breaks_the_chain(tmp_path: Path) -> None:
    dirs = [_seal(tmp_path, i) for i in _ids(3)]
    ledger = tmp_path / ".envbuild" / chain.LEDGER
    lines = ledger.read_text().splitlines(keepends=True)
    ledger.write_text(lines[0] + lines[2])
    shutil.rmtree(dirs[1])
    report = chain.verify(tmp_path)
    assert report.problems == [f"chain broken at run {dirs[2].name} (seq 3): an entry before it was removed or changed"]


def test_unsealed_records_are_noted_not_failed(tmp_path: Path) -> None:
    save(tmp_path, record(_ids(1)[0], status="running"))
    save(tmp_path, record("20250101T000000Z-0000aa"))
    report = chain.verify(tmp_path)
    assert not report.problems and len(report.notes) == 2 and "still running" in report.notes[0] + report.notes[1]


def _seal_many(root: str, ids: list[str]) -> None:
    for run_id in ids:
        _seal(Path(root), run_id)


def test_concurrent_sealers_make_one_consistent_chain(tmp_path: Path) -> None:
    ids = _ids(40)
    procs = [multiprocessing.get_context("fork").Process(target=_seal_many, args=(str(tmp_path), ids[k::4]))
             for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries, problems = chain.read_ledger(tmp_path)
    assert not problems and [e["seq"] for e in entries] == list(range(1, 41)) and sorted(e["id"] for e in entries) == ids
    report = chain.verify(tmp_path)
    assert report.sealed == 40 and not report.problems


def test_a_thousand_runs_list_trace_and_verify(tmp_path: Path) -> None:
    """Correctness at 1,000 records (their timings are in bench/cli.py, never asserted here)."""
    ids = _ids(1000)
    for i, run_id in enumerate(ids):
        out = [{"path": "outputs/model.npy", "sha256": f"{i:064x}", "bytes": 8}]
        _seal(tmp_path, run_id, started_at=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z", outputs=out)
    listed = store.list_runs(tmp_path, limit=20)
    assert [r["id"] for r in listed] == ids[::-1][:20]
    model = tmp_path / "model.npy"
    model.write_bytes(b"x")
    digest = chain.sha256_file(model)
    index = lineage.update_index(tmp_path)
    assert len(index["runs"]) == 1000 and index["outputs"][f"{417:064x}"][0]["run"] == ids[417]
    assert digest not in index["outputs"]
    report = chain.verify(tmp_path)
    assert report.sealed == 1000 and not report.problems
    proc = run_cli("runs", "-n", "5", "--json", cwd=tmp_path)
    assert proc.returncode == 0 and [r["id"] for r in json.loads(proc.stdout)] == ids[::-1][:5]


def test_records_are_signed_when_a_key_exists_and_a_rewritten_chain_is_caught(tmp_path: Path, monkeypatch) -> None:
    from envbuild import keys

    project, keydir, other = tmp_path / "p", tmp_path / "keys", tmp_path / "other"
    monkeypatch.setenv("ENVBUILD_KEYS_DIR", str(keydir))
    pair = keys.generate()
    a, b = (_seal(project, i) for i in _ids(2))
    for d in (a, b):
        r = rec.read_record(d)
        rec.validate(r)
        assert r["integrity"]["keyid"] == keys.key_id(pair.public.read_bytes()) and r["integrity"]["signature"]
    env = {"ENVBUILD_KEYS_DIR": str(keydir)}
    proc = run_cli("runs", "verify", "--key", str(pair.public), cwd=project, env=env)
    assert proc.returncode == 0 and "2 sealed record(s) checked: intact" in proc.stdout, proc.stdout + proc.stderr

    # someone without the key edits a record and recomputes its digest and the whole chain
    edited = rec.read_record(a)
    edited["metrics"]["loss"] = 0.01  # the signature kept: it signs the old digest
    (a / "record.json").write_text(json.dumps(edited))
    ledger = project / ".envbuild" / chain.LEDGER
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    prev = None
    for line, d in zip(lines, (a, b)):
        r = rec.read_record(d)
        r["integrity"]["prev"] = prev
        r["integrity"]["digest"] = line["digest"] = chain.record_digest(r)
        line["prev"], prev = r["integrity"]["prev"], line["digest"]
        (d / "record.json").write_text(json.dumps(r))
    ledger.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = run_cli("runs", "verify", "--json", cwd=project, env=env)  # the default key: the user's own .pub
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    assert problems == [f"run {d.name}: signature does not verify with {pair.public} (record.json rewritten "
                        "after the run)" for d in (a, b)]

    # signatures stripped: unsigned records pass a plain verify, but not one that asks for the key
    for d in (a, b):
        r = rec.read_record(d)
        for k in ("keyid", "signature"):
            r["integrity"].pop(k)
        (d / "record.json").write_text(json.dumps(r))
    assert run_cli("runs", "verify", cwd=project, env={"ENVBUILD_KEYS_DIR": str(other)}).returncode == 0
    proc = run_cli("runs", "verify", "--key", str(pair.public), cwd=project, env=env)
    assert proc.returncode == 1 and f"run {a.name}: not signed (--key asks every record to be)" in proc.stdout, \
        proc.stdout
    # a key that is not the signer's
    wrong = keys.generate(tmp_path / "wrong")
    monkeypatch.setenv("ENVBUILD_KEYS_DIR", str(keydir))
    c = _seal(project, "20260303T000000Z-0c0c0c")
    proc = run_cli("runs", "verify", "--key", str(wrong.public), "--json", cwd=project, env=env)
    assert f"run {c.name}: signature does not verify with {wrong.public} (record.json rewritten after the run)" \
        in json.loads(proc.stdout)["problems"]
