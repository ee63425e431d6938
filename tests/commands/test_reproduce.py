"""reproduce, diff, trace and verify through real runs: real git, real image, real engine.

One tiny stdlib project (six is its only dependency, so the image builds fast) is locked and built
once per session; each test works on its own copy of it (same name, so the same image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli
from tests.helpers.locking import write_project

pytestmark = pytest.mark.docker

NAME = f"repro-test-{os.getuid()}-{os.getpid()}"
TRAIN = """\
import json, random
from pathlib import Path

import six  # the environment's one package

LR = 0.05
NOISE = 0.0  # > 0 makes this run nondeterministic on purpose
rows = [tuple(map(float, line.split(","))) for line in Path("data/train.csv").read_text().split()]
w = b = 0.0
for epoch in range(20):
    random.shuffle(rows)  # seeded by envbuild before this script starts
    for x, y in rows:
        err = w * x + b - y
        w, b = w - LR * err * x, b - LR * err
w += NOISE * random.SystemRandom().random()
loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
Path("outputs").mkdir(exist_ok=True)
Path("outputs/model.json").write_text(json.dumps({"w": w, "b": b, "six": six.__version__}))
Path("outputs/metrics.json").write_text(json.dumps({"loss": loss, "w": w}))
print("loss", loss)
"""
DATA = "".join(f"{x / 10},{2 * x / 10 + 1 + ((x * 7) % 5) / 50}\n" for x in range(20))


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


def lock_and_build(root: Path) -> None:
    for step in ("lock", "build"):
        proc = run_cli(step, cwd=root)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    """The project, locked, built and committed once."""
    root = tmp_path_factory.mktemp("repro") / "proj"
    write_project(root, NAME, ["six==1.16.0"], base=base_image)
    with open(root / "pyproject.toml", "a") as f:
        f.write('data = ["data/train.csv"]\noutputs = ["outputs"]\nseed = 1234\n')
    (root / "train.py").write_text(TRAIN)
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text(DATA)
    (root / ".gitignore").write_text("data/\noutputs/\n.envbuild/\n")
    lock_and_build(root)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "add", ".")
    git(root, "commit", "-qm", "train")
    yield root
    # the images this session made (its name is unique to it): tags go, shared layers stay
    registry = base_image.split("/", 1)[0]
    for repo in (f"envbuild/{NAME}", f"{registry}/{NAME}"):
        tags = subprocess.run(["docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
                              capture_output=True, text=True).stdout.split()
        if tags:
            subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True)


@pytest.fixture
def proj(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(template, root, symlinks=True)
    return root


def envbuild(root: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    proc = run_cli(*args, cwd=root)
    if expect is not None:
        assert proc.returncode == expect, f"envbuild {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def train(root: Path, *args: str) -> dict:
    """One `envbuild run train.py`, returning its record."""
    envbuild(root, "run", *args, "train.py")
    return json.loads(envbuild(root, "runs", "show", "latest", "--json").stdout)


def reproduce(root: Path, *args: str, expect: int) -> tuple[dict | None, subprocess.CompletedProcess]:
    proc = envbuild(root, "reproduce", *args, "--json", expect=expect)
    return (json.loads(proc.stdout) if proc.returncode != 2 else None), proc


def test_clean_run_reproduces_with_its_own_linked_record(proj: Path):
    orig = train(proj)
    assert orig["status"] == "succeeded" and orig["code"]["dirty"] is False and "loss" in orig["metrics"]
    result, _ = reproduce(proj, orig["id"], expect=0)
    assert result["reproduced"] and result["image_source"] == "local" and result["outputs_identical"]
    assert {m["name"] for m in result["metrics"]} == {"loss", "w"} and all(m["ok"] for m in result["metrics"])
    new = json.loads(envbuild(proj, "runs", "show", result["new"], "--json").stdout)
    assert new["reproduces"] == orig["id"] and new["code"]["commit"] == orig["code"]["commit"]
    assert json.loads((Path(result["run_dir"]) / "outputs" / "outputs" / "model.json").read_text()) == \
        json.loads((proj / "outputs" / "model.json").read_text())
    assert not list((proj / ".envbuild" / "reproduce").glob("*-*"))  # the worktree is gone
    assert git(proj, "worktree", "list").count("\n") == 0
    # the human table
    table = envbuild(proj, "reproduce", orig["id"]).stdout
    assert "within tolerance" in table and "reproduced" in table


def test_dirty_run_reproduces_from_its_saved_diff(proj: Path):
    clean = train(proj)
    (proj / "train.py").write_text(TRAIN.replace("LR = 0.05", "LR = 0.02"))
    dirty = train(proj)
    assert dirty["code"]["dirty"] and dirty["metrics"]["loss"] != clean["metrics"]["loss"]
    git(proj, "checkout", "train.py")  # the uncommitted change is gone from the project
    result, _ = reproduce(proj, dirty["id"], expect=0)
    assert result["reproduced"] and result["outputs_identical"]
    assert {m["name"]: m["new"] for m in result["metrics"]}["loss"] == dirty["metrics"]["loss"]


def test_nondeterministic_code_is_not_reproduced(proj: Path):
    (proj / "train.py").write_text(TRAIN.replace("NOISE = 0.0", "NOISE = 0.5"))
    orig = train(proj)
    result, proc = reproduce(proj, orig["id"], expect=1)
    assert not result["reproduced"]
    bad = {m["name"] for m in result["metrics"] if not m["ok"]}
    assert "w" in bad
    # a tolerance wide enough for the noise accepts it
    reproduce(proj, orig["id"], "--metric", "w=1", "--metric", "loss=100", expect=0)


def test_changed_data_stops_it_naming_the_path(proj: Path):
    orig = train(proj)
    with open(proj / "data" / "train.csv", "a") as f:
        f.write("3.0,7.5\n")
    _, proc = reproduce(proj, orig["id"], expect=2)
    assert "data/train.csv" in proc.stderr and "--allow-data-drift" in proc.stderr
    result, proc = reproduce(proj, orig["id"], "--allow-data-drift", expect=None)
    assert proc.returncode == 1 and result["data_drift"] == ["data/train.csv"]
    assert "running anyway" in proc.stderr


def without_image(proj: Path, orig: dict, suffix: str, keep_digest: bool = False) -> dict:
    """A copy of run `orig` whose image id the engine does not have (and never pushed, by default)."""
    runs = proj / ".envbuild" / "runs"
    fake = dict(orig, id=orig["id"][:-6] + suffix)
    digest = orig["image"]["repo_digest"] if keep_digest else None
    fake["image"] = dict(orig["image"], id="sha256:" + "0" * 64, repo_digest=digest)
    shutil.copytree(runs / orig["id"], runs / fake["id"])
    (runs / fake["id"] / "record.json").write_text(json.dumps(fake))
    return fake


def test_missing_image_digest_and_lock_stop_it_naming_the_image(proj: Path):
    orig = train(proj)
    fake = without_image(proj, orig, "ffffff")
    shutil.rmtree(proj / ".envbuild" / "runs" / fake["id"] / "lock")
    _, proc = reproduce(proj, fake["id"], expect=2)
    assert f"image {orig['image']['ref']} of run {fake['id']} cannot be had" in proc.stderr
    assert "never pushed" in proc.stderr and "no lock copies" in proc.stderr


def test_missing_image_is_rebuilt_bit_identical_from_the_recorded_lock(proj: Path):
    orig = train(proj)
    assert orig["image"]["digest"] and orig["image"]["id"]
    subprocess.run(["docker", "rmi", orig["image"]["ref"]], capture_output=True, check=True)
    result, _ = reproduce(proj, orig["id"], expect=0)
    assert result["image_source"] == f"rebuilt bit-identical ({orig['image']['digest']})"
    assert result["image"] == orig["image"]["ref"]


def test_a_rebuild_that_is_not_the_recorded_image_runs_nothing(proj: Path):
    orig = train(proj)
    fake = without_image(proj, orig, "eeeeee")  # the record names an image id no rebuild can give
    proc = envbuild(proj, "reproduce", fake["id"], expect=1)
    assert "not the same image, so nothing was run" in proc.stderr and "sha256:" + "0" * 64 in proc.stderr


def test_missing_image_is_pulled_by_its_registry_digest(proj: Path, base_image: str):
    registry = base_image.split("/", 1)[0]
    envbuild(proj, "push", f"{registry}/{NAME}")
    orig = train(proj)
    assert orig["image"]["repo_digest"].startswith(f"{registry}/{NAME}@sha256:")
    fake = without_image(proj, orig, "dddddd", keep_digest=True)
    result, _ = reproduce(proj, fake["id"], expect=0)
    assert result["image_source"] == "pulled" and result["image"] == orig["image"]["repo_digest"]


# --- nothing of the user's deleted, nothing recorded wrongly (issue 16) -------------------------


def set_spec(root: Path, old: str, new: str) -> None:
    spec = root / "pyproject.toml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


def test_absolute_data_outside_the_repo_is_never_deleted(proj: Path, tmp_path: Path):
    external = tmp_path / "external-data"
    external.mkdir()
    (external / "big.bin").write_bytes(b"precious" * 100)
    set_spec(proj, 'data = ["data/train.csv"]', f'data = ["data/train.csv", "{external}"]')
    git(proj, "commit", "-qam", "external data")
    (proj / "train.py").write_text(TRAIN.replace("LR = 0.05", "LR = 0.04"))  # uncommitted
    orig = train(proj)
    # git's answer is right although a data path lies outside the repository
    assert orig["code"]["dirty"] is True and orig["code"]["changed_files"] == ["train.py"]
    assert orig["code"].get("error") is None and (proj / ".envbuild" / "runs" / orig["id"] / "code.diff").is_file()
    result, _ = reproduce(proj, orig["id"], expect=0)
    assert result["reproduced"]
    assert (external / "big.bin").read_bytes() == b"precious" * 100  # untouched, still there
    assert not list((proj / ".envbuild" / "reproduce").iterdir())  # the worktree is gone
    assert git(proj, "worktree", "list").count("\n") == 0


def test_a_failing_git_is_recorded_as_unknown_never_as_clean(proj: Path):
    clean = train(proj)
    (proj / "train.py").write_text(TRAIN + "# edited\n")
    (proj / ".git" / "index").write_bytes(b"not an index")  # git status now fails
    orig = train(proj)
    assert orig["status"] == "succeeded"
    assert orig["code"]["dirty"] is None and "git status failed" in orig["code"]["error"]
    assert orig["tags"]["envbuild.dirty"] == "unknown"
    assert "+dirty?" in envbuild(proj, "runs").stdout
    diff = json.loads(envbuild(proj, "diff", clean["id"], orig["id"], "--json", expect=None).stdout)
    assert "code" in diff["differs"]  # unknown is not the same as clean
    _, proc = reproduce(proj, orig["id"], expect=2)
    assert "not whether the tree was clean" in proc.stderr and "git status failed" in proc.stderr


def test_reproduce_from_a_fresh_clone_makes_outputs_and_names_the_image_after_the_project(
        proj: Path, tmp_path: Path, images: list):
    # a project with no `name` (so named after its directory) whose script expects outputs/ to exist
    src = tmp_path / "src" / f"{NAME}-anon"
    shutil.copytree(proj, src, symlinks=True)
    set_spec(src, f'name = "{NAME}"\n', "")
    (src / "train.py").write_text(TRAIN.replace('Path("outputs").mkdir(exist_ok=True)\n', ""))
    git(src, "commit", "-qam", "anonymous, no mkdir")
    orig = train(src)  # outputs/ did not exist: the run made it
    images.append(orig["image"]["ref"])
    assert orig["status"] == "succeeded" and orig["image"]["ref"].startswith(f"envbuild/{NAME}-anon:")
    # a fresh clone elsewhere: no outputs/, no data (ignored by git), the record copied over
    clone = tmp_path / "clone" / src.name
    subprocess.run(["git", "clone", "-q", str(src), str(clone)], check=True)
    shutil.copytree(src / "data", clone / "data")
    shutil.copytree(src / ".envbuild" / "runs" / orig["id"], clone / ".envbuild" / "runs" / orig["id"])
    subprocess.run(["docker", "rmi", orig["image"]["ref"]], capture_output=True)  # rebuilt from the lock copies
    assert not (clone / "outputs").exists()
    result, _ = reproduce(clone, orig["id"], expect=0)
    assert result["reproduced"] and result["image_source"] == f"rebuilt bit-identical ({orig['image']['digest']})"
    assert result["image"] == orig["image"]["ref"]  # named after the project, not the temp directory
