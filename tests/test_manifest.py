"""Per-file manifests: stored by digest, and `diff` / `reproduce` name the files that changed."""

from __future__ import annotations

import json
from pathlib import Path

from envbuild import manifest, provenance
from tests.conftest import run_cli
from tests.helpers.records import record, save, variant


def _files(n: int, changed: set[int] = frozenset(), prefix: str = "data/") -> list[dict]:
    return [{"path": f"{prefix}f{i:03d}.csv", "bytes": 3, "sha256": ("b" if i in changed else "a") * 64} for i in range(n)]


def test_manifest_is_content_addressed(tmp_path: Path) -> None:
    files = _files(3)
    d1 = manifest.write(tmp_path / "r1", "data/", files)
    d2 = manifest.write(tmp_path / "r2", "data/", list(files))
    assert d1 == d2 and (tmp_path / "r1" / "manifests" / f"{d1}.json").is_file()
    assert manifest.load(tmp_path / "r1", d1) == files
    (tmp_path / "r1" / "manifests" / f"{d1}.json").write_text('{"path": "data/", "files": []}')
    assert manifest.load(tmp_path / "r1", d1) is None  # edited: not what its name says
    assert manifest.load(tmp_path / "r1", "0" * 64) is None and manifest.load(None, d1) is None


def test_delta_names_files_then_counts() -> None:
    old = _files(30)
    new = _files(30, changed={1, 2}) + [{"path": f"data/new{i:02d}.csv", "bytes": 1, "sha256": "c" * 64} for i in range(12)]
    del new[5]
    delta = manifest.compare(old, new)
    assert delta.removed == ["data/f005.csv"] and delta.changed == ["data/f001.csv", "data/f002.csv"]
    text = delta.describe()
    assert text.startswith("12 added (data/new00.csv, ") and "data/new09.csv and 2 more" in text
    assert "data/new10.csv" not in text and "1 removed (data/f005.csv); 2 changed (data/f001.csv, data/f002.csv)" in text
    assert manifest.compare(old, old).describe() == "no file differs" and not manifest.compare(old, old)


def test_listing_comes_from_the_hash_cache(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("1\n")
    (tmp_path / "data" / "sub" / "b.csv").write_text("2\n")
    listings: dict = {}
    [entry], _ = provenance.data_checksums(tmp_path, ["data/"], listings)
    assert [f["path"] for f in listings["data/"]] == ["data/a.csv", "data/sub/b.csv"]
    assert listings["data/"][0] == {"path": "data/a.csv", "bytes": 2, "sha256": provenance.sha256_file(tmp_path / "data/a.csv")}
    monkeypatch.setattr(provenance, "sha256_file", lambda p: (_ for _ in ()).throw(AssertionError(f"re-read {p}")))
    again: dict = {}
    provenance.data_checksums(tmp_path, ["data/"], again)  # nothing changed: nothing read
    assert again == listings


def _two_runs(root: Path) -> tuple[str, str]:
    a = record("20260101T000000Z-aaaaaa", data=[{"path": "data/", "sha256": "1" * 64, "bytes": 90, "files": 30}])
    b = variant(a, "20260102T000000Z-bbbbbb", data=[{"path": "data/", "sha256": "2" * 64, "bytes": 91, "files": 31}])
    new = _files(30, changed={7}) + [{"path": "data/extra.csv", "bytes": 1, "sha256": "c" * 64}]
    for rec, files in ((a, _files(30)), (b, new)):
        run_dir = root / ".envbuild" / "runs" / rec["id"]
        rec["manifests"] = {"data": {"data/": manifest.write(run_dir, "data/", files)}, "outputs": {}}
        save(root, rec)
    return a["id"], b["id"]


def test_diff_names_the_data_files(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path)
    proc = run_cli("diff", a, b, "--json", cwd=tmp_path)
    [change] = json.loads(proc.stdout)["sections"]["data"]["changes"]
    assert change["what"] == "data/" and change["note"].endswith("; 1 added (data/extra.csv); 1 changed (data/f007.csv)")
    proc = run_cli("diff", a, b, cwd=tmp_path, env={"COLUMNS": "400"})
    assert "1 added (data/extra.csv); 1 changed (data/f007.csv)" in proc.stdout, proc.stdout


def test_reproduce_names_the_data_files_that_drifted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"f{i}.csv").write_text(f"{i}\n")
    listings: dict = {}
    [entry], _ = provenance.data_checksums(tmp_path, ["data/"], listings)
    rec = record("20260101T000000Z-aaaaaa", data=[entry])
    run_dir = tmp_path / ".envbuild" / "runs" / rec["id"]
    rec["manifests"] = {"data": {"data/": manifest.write(run_dir, "data/", listings["data/"])}, "outputs": {}}
    save(tmp_path, rec)
    (tmp_path / "data" / "f1.csv").write_text("changed\n")
    (tmp_path / "data" / "f2.csv").unlink()
    proc = run_cli("reproduce", "latest", cwd=tmp_path)
    assert proc.returncode == 2
    assert ("data changed since run 20260101T000000Z-aaaaaa: data/ (1 removed (data/f2.csv); 1 changed (data/f1.csv)); "
            "restore it") in proc.stderr, proc.stderr


def test_a_single_file_path_needs_no_file_list() -> None:
    one = [{"path": "data/train.csv", "bytes": 1, "sha256": "a" * 64}]
    other = [{"path": "data/train.csv", "bytes": 2, "sha256": "b" * 64}]
    assert manifest.changes("data/train.csv", one, other) is None
    assert manifest.changes("data/", _files(2), None) is None
    assert manifest.changes("data/", _files(2), _files(2, changed={1})) == "1 changed (data/f001.csv)"
