"""compare.diff_records on hand-written records: each single change names exactly its cause."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

from envbuild.compare import CAUSES, diff_records, split_patch
from tests.helpers.records import SHA, record, variant

A = record()


def test_identical_ingredients_are_said_identical():
    d = diff_records(A, variant(A, "20260101T000001Z-bbbbbb"))
    assert d.causes == []
    assert d.to_dict()["identical"] == list(CAUSES)
    assert all(m.delta == 0 for m in d.metrics)


def test_data_change_names_only_data():
    b = variant(A, "b")
    b["data"][0] = {**b["data"][0], "sha256": SHA["9"], "bytes": 101}
    d = diff_records(A, b)
    assert d.causes == ["data"]
    [c] = d.section("data").changes
    assert c.what == "data/train.csv" and c.a == SHA["6"] and c.b == SHA["9"]


def test_package_version_names_only_environment():
    b = variant(A, "b")
    b["lock"]["packages"] = {"numpy": "2.1.0", "six": "1.17.0", "idna": "3.7"}  # six changed, idna added, pip removed
    b["lock"]["lock_hash"] = b["lock"]["envbuild_lock_sha256"] = b["image"]["lock_hash"] = SHA["a"]
    b["lock"]["lockfiles"] = {"requirements.lock": SHA["b"]}
    b["image"]["id"] = "sha256:" + SHA["c"]
    d = diff_records(A, b)
    assert d.causes == ["environment"]
    notes = {c.what: (c.a, c.b, c.note) for c in d.section("environment").changes}
    assert notes["six"] == ("1.16.0", "1.17.0", "changed")
    assert notes["idna"] == (None, "3.7", "added")
    assert notes["pip"] == ("24.0", None, "removed")
    assert "numpy" not in notes and "image" in notes and "lock hash" in notes


def test_base_digest_change_is_environment():
    b = variant(A, "b")
    b["image"]["base_digest"] = "sha256:" + SHA["d"]
    d = diff_records(A, b)
    assert d.causes == ["environment"]
    assert d.section("environment").changes[0].what == "base image"


def test_seed_change_names_only_seed_even_where_it_echoes():
    b = variant(A, "b", seed=7)
    b["determinism"]["env"].update(PYTHONHASHSEED="7", ENVBUILD_SEED="7")
    b["determinism"]["settings"] = ["random.seed(7)", "numpy.random.seed(7)"]
    b["env"]["PYTHONHASHSEED"] = "7"
    b["params"]["seed"] = 7
    d = diff_records(A, b)
    assert d.causes == ["seed"]
    assert [c.what for c in d.section("seed").changes] == ["seed"]


def test_determinism_off_is_seed_section():
    b = variant(A, "b")
    b["determinism"]["enabled"] = False
    d = diff_records(A, b)
    assert d.causes == ["seed"]


def test_command_and_params_and_env():
    b = variant(A, "b", command=["python", "train.py", "--epochs", "4"])
    b["params"]["lr"] = 0.2
    b["env"]["OMP_NUM_THREADS"] = "2"
    d = diff_records(A, b)
    assert d.causes == ["command"]
    assert {c.what for c in d.section("command").changes} == {"command", "param lr", "env OMP_NUM_THREADS"}


def test_hardware():
    b = variant(A, "b")
    b["host"]["kernel"] = "6.1.0-99-amd64"
    assert diff_records(A, b).causes == ["hardware"]


def test_driver_and_gpu_changes_are_environment_causes():
    h200 = {"index": "0", "name": "NVIDIA H200", "driver": "580.65.06", "memory": "143771 MiB", "uuid": "GPU-a",
            "compute_capability": "9.0", "cuda": "13.0"}
    a, b = variant(A, "a"), variant(A, "b")
    a["host"]["gpus"], b["host"]["gpus"] = [h200], [{**h200, "driver": "575.57.08", "cuda": "12.9"}]
    a["cuda"] = {"torch": {"cuda": "13.0", "cudnn": 91300}}
    b["cuda"] = {"torch": {"cuda": "13.0", "cudnn": 91002}}
    d = diff_records(a, b)
    assert d.causes == ["environment"]
    changes = {c.what: (c.a, c.b) for c in d.section("environment").changes}
    assert changes["nvidia driver"] == ("580.65.06", "575.57.08")
    assert changes["cuDNN (as torch saw it)"] == (91300, 91002) and "gpus" not in changes
    b["host"]["gpus"] = [{**h200, "name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB", "uuid": "GPU-b"}]
    changes = {c.what: (c.a, c.b) for c in diff_records(a, b).section("environment").changes}
    assert changes["gpus"] == ("NVIDIA H200 9.0 143771 MiB", "NVIDIA H100 80GB HBM3 9.0 81559 MiB")


def test_code_commit_change_lists_files_from_git(tmp_path: Path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "README").write_text("x\n")
    git("add", ".")
    git("commit", "-qm", "one")
    c1 = git("rev-parse", "HEAD")
    (tmp_path / "train.py").write_text("print(2)\n")
    git("commit", "-qam", "two")
    c2 = git("rev-parse", "HEAD")
    a = copy.deepcopy(A)
    a["project"]["root"] = str(tmp_path)
    a["code"]["commit"] = c1
    b = variant(a, "b")
    b["code"]["commit"] = c2
    d = diff_records(a, b)
    assert d.causes == ["code"]
    [c] = d.section("code").changes
    assert (c.what, c.a, c.b, c.note) == ("commit", c1, c2, "train.py")


def test_dirty_diff_names_the_files_whose_patch_differs(tmp_path: Path):
    patch_a = "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-a\n+b\n"
    patch_b = patch_a + "diff --git a/util.py b/util.py\n--- a/util.py\n+++ b/util.py\n@@ -1 +1 @@\n-x\n+y\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "code.diff").write_text(patch_a)
    (tmp_path / "b" / "code.diff").write_text(patch_b)
    a, b = variant(A, "a"), variant(A, "b")
    a["code"].update(dirty=True, diff_sha256=SHA["e"], diff_file="code.diff", changed_files=["train.py"])
    b["code"].update(dirty=True, diff_sha256=SHA["f"], diff_file="code.diff", changed_files=["train.py", "util.py"])
    d = diff_records(a, b, tmp_path / "a", tmp_path / "b")
    assert d.causes == ["code"]
    [c] = d.section("code").changes
    assert c.what == "uncommitted diff" and c.note == "util.py"
    assert list(split_patch(patch_b)) == ["train.py", "util.py"]


def test_metric_deltas_and_json():
    b = variant(A, "b", metrics={"loss": 0.5, "f1": 0.3})
    d = diff_records(A, b)
    assert d.causes == []  # metrics are the effect, not a cause
    by = {m.name: m for m in d.metrics}
    assert by["loss"].delta == 0.25 and by["acc"].b is None and by["f1"].a is None
    js = d.to_dict()
    assert js["differs"] == [] and js["metrics"][0]["name"] == "acc"


def test_outputs_are_compared_as_results_not_causes():
    b = variant(A, "b", outputs=[{"path": "outputs/model.npy", "sha256": SHA["9"], "bytes": 80},
                                 {"path": "outputs/extra.txt", "sha256": SHA["8"], "bytes": 1}])
    d = diff_records(A, b)
    assert d.causes == []
    by = {o.path: o for o in d.outputs}
    assert not by["outputs/model.npy"].same and by["outputs/extra.txt"].a is None
    assert diff_records(A, variant(A, "c")).outputs[0].same
    assert {o["path"]: o["same"] for o in d.to_dict()["outputs"]} == {"outputs/extra.txt": False, "outputs/model.npy": False}


def test_render_mentions_every_section():
    from io import StringIO

    from rich.console import Console

    b = variant(A, "b", seed=9)
    out = StringIO()
    from envbuild.compare import render

    render(diff_records(A, b), Console(file=out, width=200))
    text = out.getvalue()
    assert "Data: identical" in text and "Seed and determinism" in text and "differs in: seed" in text


def test_lock_files_in_git_count_as_environment_when_the_lock_changed(tmp_path: Path):
    patch = ("diff --git a/pyproject.toml b/pyproject.toml\n@@ -1 +1 @@\n-six==1.16.0\n+six==1.17.0\n"
             "diff --git a/requirements.lock b/requirements.lock\n@@ -1 +1 @@\n-a\n+b\n")
    (tmp_path / "code.diff").write_text(patch)
    b = variant(A, "b")
    b["code"].update(dirty=True, diff_sha256=SHA["e"], diff_file="code.diff",
                     changed_files=["pyproject.toml", "requirements.lock"])
    b["lock"]["packages"]["six"] = "1.17.0"
    b["lock"]["lock_hash"] = SHA["a"]
    d = diff_records(A, b, tmp_path, tmp_path)
    assert d.causes == ["environment"]
    assert d.section("environment").changes[-1].note == "pyproject.toml, requirements.lock changed"
    # the same edit without a new lock is a code change
    b["lock"]["lock_hash"] = A["lock"]["lock_hash"]
    b["lock"]["packages"]["six"] = "1.16.0"
    assert diff_records(A, b, tmp_path, tmp_path).causes == ["code"]
