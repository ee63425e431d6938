"""reproduce's parts that need no image: tolerances, metric checks, the worktree, missing ingredients."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envbuild.errors import EnvbuildError
from envbuild.fsutil import sha256_file
from envbuild.reproduce import (Tolerance, compare_metrics, data_placement, make_worktree, obtain_image,
                                parse_metric_tolerances, remove_worktree, require_code, worktree_path)
from tests.helpers.records import record


def test_parse_metric_tolerances():
    assert parse_metric_tolerances(["loss=0.01", " acc = 1e-3"]) == {"loss": 0.01, "acc": 0.001}
    for bad in ("loss", "=0.1", "loss=x", "loss=-1", "loss=nan"):
        with pytest.raises(EnvbuildError, match="NAME=TOL"):
            parse_metric_tolerances([bad])


def test_compare_metrics_tolerances():
    tol = Tolerance(rtol=1e-3, atol=0.0, per_metric={"acc": 0.05})
    checks = {c.name: c for c in compare_metrics(
        {"loss": 1.0, "acc": 0.9, "gone": 1.0, "name": "x", "nan": float("nan")},
        {"loss": 1.0005, "acc": 0.86, "nan": float("nan")}, tol)}
    assert checks["loss"].ok and abs(checks["loss"].delta - 0.0005) < 1e-12
    assert checks["acc"].ok and checks["acc"].tolerance == 0.05
    assert not checks["gone"].ok and checks["gone"].new is None
    assert checks["nan"].ok and "name" not in checks
    assert not compare_metrics({"loss": 1.0}, {"loss": 1.01}, tol)[0].ok


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "proj" / "data").mkdir(parents=True)
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    (root / ".gitignore").write_text("data/\n.envbuild/\n")
    (root / "proj" / "train.py").write_text("print('v1')\n")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "one")
    (root / "proj" / "data" / "x.csv").write_text("1,2\n")
    return root


def test_worktree_at_commit_with_diff_and_data(repo: Path, tmp_path: Path):
    proj = repo / "proj"
    commit = _git(repo, "rev-parse", "HEAD")
    (proj / "train.py").write_text("print('v2')\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    diff = subprocess.run(["git", "-C", str(proj), "diff", "--binary", "HEAD"], capture_output=True).stdout
    (run_dir / "code.diff").write_bytes(diff)
    (proj / "train.py").write_text("print('v3, later')\n")  # the project moved on
    rec = record("r1")
    rec["code"].update(commit=commit, dirty=True, diff_file="code.diff", diff_sha256=sha256_file(run_dir / "code.diff"))
    rec["data"] = [{"path": "data", "sha256": "x", "bytes": 4, "files": 1}]

    assert require_code(proj, rec, run_dir) == (commit, run_dir / "code.diff")
    top = worktree_path(proj, rec)
    try:
        project = make_worktree(proj, top, commit, run_dir / "code.diff", data_placement(proj, rec))
        assert project == top / "proj" and top.name == repo.name
        assert (project / "train.py").read_text() == "print('v2')\n"
        linked = project / "data" / "x.csv"
        assert linked.read_text() == "1,2\n" and linked.stat().st_ino == (proj / "data" / "x.csv").stat().st_ino
        assert _git(repo, "status", "--porcelain") == "M proj/train.py"  # the worktree is invisible
    finally:
        remove_worktree(proj, top)
    assert not top.parent.exists() and "reproduce" not in _git(repo, "worktree", "list")


def test_missing_commit_and_changed_diff_are_named(repo: Path, tmp_path: Path):
    rec = record("r1")
    rec["code"]["commit"] = "f" * 40
    with pytest.raises(EnvbuildError, match=f"commit {'f' * 40} of run r1 is not in the repository") as e:
        require_code(repo, rec, tmp_path)
    assert e.value.exit_code == 2
    rec["code"].update(commit=_git(repo, "rev-parse", "HEAD"), dirty=True, diff_file="code.diff", diff_sha256="0" * 64)
    with pytest.raises(EnvbuildError, match="code.diff is missing"):
        require_code(repo, rec, tmp_path)
    (tmp_path / "code.diff").write_text("edited\n")
    with pytest.raises(EnvbuildError, match="saved diff was changed"):
        require_code(repo, rec, tmp_path)


@pytest.mark.docker
def test_image_that_cannot_be_had_is_named(docker_engine, tmp_path: Path):
    rec = record("r1")
    rec["image"]["id"] = "sha256:" + "0" * 64
    with pytest.raises(EnvbuildError) as e:
        obtain_image(rec, tmp_path, tmp_path, lambda m: None)
    msg = str(e.value)
    assert e.value.exit_code == 2
    assert f"image {rec['image']['ref']} of run r1 cannot be had" in msg
    assert "never pushed" in msg and "no lock copies" in msg


def test_data_behind_a_committed_symlink_is_never_touched(tmp_path: Path):
    """data/ is a committed symlink to a directory outside the repository: the worktree's copy of the
    link leads to the user's files, which must not be unlinked and linked again (that deletes them)."""
    external = tmp_path / "external"
    external.mkdir()
    (external / "x.csv").write_text("1,2\n")
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "data").symlink_to(external)
    (root / "train.py").write_text("print(1)\n")
    _git(root, "add", ".")
    _git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "one")
    rec = record("r1")
    rec["data"] = [{"path": "data/x.csv", "sha256": "x", "bytes": 4, "files": 1}]
    top = worktree_path(root, rec)
    try:
        project = make_worktree(root, top, _git(root, "rev-parse", "HEAD"), None, data_placement(root, rec))
        assert (project / "data" / "x.csv").read_text() == "1,2\n"
    finally:
        remove_worktree(root, top)
    assert (external / "x.csv").read_text() == "1,2\n" and not top.parent.exists()
