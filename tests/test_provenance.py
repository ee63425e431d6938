from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from envbuild import provenance


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "train.py").write_text("print(1)\n")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("1,2\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    git(root, "remote", "add", "origin", "https://bob:s3cret@example.com/team/proj.git")
    return root


def test_clean_repo(repo: Path, tmp_path: Path) -> None:
    info = provenance.git_info(repo, tmp_path)
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert info["branch"] == "main" and info["dirty"] is False and info["diff_file"] is None
    assert info["remote"] == "https://example.com/team/proj.git"


def test_dirty_diff_applies_and_skips_non_code(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print(2)\n")
    (repo / "new.py").write_text("x = 1\n")
    (repo / "data" / "a.csv").write_text("changed\n")  # data is checksummed, not diffed
    (repo / "outputs").mkdir()
    (repo / "outputs" / "m.bin").write_bytes(b"\0" * 10)
    (repo / ".envbuild").mkdir()
    (repo / ".envbuild" / "x").write_text("x")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    info = provenance.git_info(repo, run_dir, exclude=["data/", "outputs/"])
    assert info["dirty"] and info["changed_files"] == ["new.py", "train.py"]
    diff = (run_dir / "code.diff").read_bytes()
    assert provenance.sha256_bytes(diff) == info["diff_sha256"]
    # the saved diff rebuilds the dirty tree from the commit
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "apply", str(run_dir / "code.diff"))
    assert (clone / "train.py").read_text() == "print(2)\n" and (clone / "new.py").read_text() == "x = 1\n"


def test_not_a_repo(tmp_path: Path) -> None:
    info = provenance.git_info(tmp_path, tmp_path)
    assert info["commit"] is None and info["dirty"] is False


def test_data_cache_rereads_nothing_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.bin").write_bytes(os.urandom(3000))
    (tmp_path / "data" / "sub" / "b.bin").write_bytes(b"b" * 10)
    (tmp_path / "one.csv").write_text("x\n")
    read: list[Path] = []
    real = provenance.sha256_file
    monkeypatch.setattr(provenance, "sha256_file", lambda p: read.append(Path(p)) or real(p))

    first, _ = provenance.data_checksums(tmp_path, ["data/", "one.csv"])
    assert len(read) == 3
    assert first[0]["files"] == 2 and first[0]["bytes"] == 3010
    assert first[1]["sha256"] == real(tmp_path / "one.csv")
    read.clear()
    second, cache = provenance.data_checksums(tmp_path, ["data/", "one.csv"])
    assert read == [] and cache.hits == 3 and second == first  # nothing re-read

    (tmp_path / "data" / "sub" / "b.bin").write_bytes(b"c" * 10)  # same size, new content
    third, _ = provenance.data_checksums(tmp_path, ["data/", "one.csv"])
    assert [p.name for p in read] == ["b.bin"] and third[0]["sha256"] != first[0]["sha256"]


def test_rename_changes_directory_checksum(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("1")
    before, _ = provenance.data_checksums(tmp_path, ["d"])
    (tmp_path / "d" / "a").rename(tmp_path / "d" / "b")
    after, _ = provenance.data_checksums(tmp_path, ["d"])
    assert before[0]["sha256"] != after[0]["sha256"]


def test_directory_manifest_keeps_walk_order_and_symlink_rules(tmp_path: Path) -> None:
    # the manifest order is part of every recorded checksum: a directory's own files by name,
    # then its subdirectories by name; symlinked files count, symlinked directories do not
    d = tmp_path / "d"
    (d / "a" / "b").mkdir(parents=True)
    for rel, text in {"b.txt": "1", "a/x": "2", "a/b/y": "3", "A": "5"}.items():
        (d / rel).write_text(text)
    (d / "link").symlink_to("b.txt")
    (d / "dirlink").symlink_to("a")
    [got], _ = provenance.data_checksums(tmp_path, ["d"])
    order = ["A", "b.txt", "link", "a/x", "a/b/y"]
    manifest = "".join(f"{provenance.sha256_file(d / r)}  {r}\n" for r in order)
    assert got == {"path": "d", "sha256": provenance.sha256_bytes(manifest.encode()), "bytes": 5, "files": 5}
    assert [p.relative_to(d).as_posix() for p in provenance._files_under(d)] == order


def test_redaction() -> None:
    env = provenance.redact_env({"API_TOKEN": "t", "aws_secret_access_key": "k", "DB_PASSWORD": "p",
                                 "GCP_CREDENTIALS": "c", "URL": "https://u:pw@host/x", "LR": "0.1"})
    assert env == {"API_TOKEN": "***", "aws_secret_access_key": "***", "DB_PASSWORD": "***",
                   "GCP_CREDENTIALS": "***", "URL": "https://host/x", "LR": "0.1"}


def test_dvc_lock(tmp_path: Path) -> None:
    assert provenance.dvc_hashes(tmp_path) is None
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prep:\n    cmd: python prep.py\n    deps:\n    - path: raw.csv\n      md5: aaa\n"
        "    outs:\n    - path: data/clean.csv\n      md5: bbb\n      size: 3\n")
    assert provenance.dvc_hashes(tmp_path) == {"raw.csv": "aaa", "data/clean.csv": "bbb"}


def test_host_facts_shape() -> None:
    facts = provenance.host_facts("20.10")
    assert facts["cpus"] and facts["kernel"] and facts["docker_version"] == "20.10"
    assert isinstance(facts["gpus"], list)
