"""The shipped templates: starter projects lock as they are, team-base specs fill in and lock,
the pre-commit hook fails on a stale lock, the CI pipelines name only real commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envbuild import template
from envbuild.errors import EnvbuildError
from envbuild.spec import load_spec
from tests.conftest import REPO_ROOT


def test_templates_ship_inside_the_package() -> None:
    assert template.ROOT.resolve() == (REPO_ROOT / "templates").resolve()  # the checkout's link
    assert template.names("project") == ["minimal", "torch"]
    assert template.names("base") == ["cpu", "cuda12-torch", "cuda13-torch"]
    assert (template.ROOT / "dockerfile" / "Dockerfile").is_file()


@pytest.mark.parametrize("name", ["minimal", "torch"])
def test_init_template_gives_a_project_that_locks(tmp_path: Path, cli, name: str) -> None:
    proj = tmp_path / f"starter-{name}"
    r = cli("init", "--template", name, "-C", str(proj))
    assert r.returncode == 0, r.stderr
    assert (proj / "train.py").is_file()
    r = cli("lock", "--json", "-C", str(proj), env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "locked"
    again = cli("init", "--template", name, "-C", str(proj))
    assert again.returncode == 2 and "exists already" in again.stderr  # nothing of the user's overwritten


def test_unknown_template_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(EnvbuildError, match="no such base template; choose one of cpu, cuda12-torch, cuda13-torch"):
        template.write("base", "gpu", tmp_path, {})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name,cuda", [("cuda12-torch", "12.8"), ("cuda13-torch", "13.0")])
def test_cuda_base_templates_need_their_torch_source(tmp_path: Path, name: str, cuda: str) -> None:
    with pytest.raises(EnvbuildError, match="needs --torch-source"):
        template.write("base", name, tmp_path / "tb", {"name": "tb", "base": "127.0.0.1:5000/b:1"})
    assert not (tmp_path / "tb").exists()  # nothing half-written
    template.write("base", name, tmp_path / "tb", {"name": "tb", "base": "127.0.0.1:5000/b:1",
                                                   "torch_source": "https://index.example/whl/cu"})
    spec = load_spec(tmp_path / "tb")
    assert spec.cuda == cuda and spec.torch_sources == {cuda: "https://index.example/whl/cu"}


@pytest.mark.docker
@pytest.mark.slow
def test_base_build_from_the_cpu_template(tmp_path: Path, cli, base_image: str, images: list) -> None:
    registry = base_image.split("/", 1)[0]
    repo = f"{registry}/envbuild-test/template-cpu"
    team = tmp_path / "team-base"
    r = cli("base", "build", "--template", "cpu", "-C", str(team), "--push", repo, "--json",
            env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}, timeout=1800)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    images.append(out["ref"]) if "ref" in out else None
    assert out["base_line"].startswith(f'base = "{repo}@sha256:')
    assert (team / "envbuild.lock").is_file() and (team / "requirements.lock").is_file()


# --- ecosystem: pre-commit and CI ----------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_pre_commit_hook_fails_on_a_stale_lock(tmp_path: Path, cli) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "hooked"\ndependencies = ["six"]\n[tool.envbuild]\n')
    assert cli("lock", cwd=proj).returncode == 0
    _git(proj, "init", "-q")
    _git(proj, "add", "-A")
    _git(proj, "commit", "-q", "-m", "locked")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    hook = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO_ROOT), "envbuild-lock-check", "--all-files"]
    fresh = subprocess.run(hook, cwd=proj, env=env, capture_output=True, text=True, timeout=1500)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    (proj / "pyproject.toml").write_text('[project]\nname = "hooked"\ndependencies = ["six", "idna"]\n'
                                         '[tool.envbuild]\n')
    stale = subprocess.run(hook, cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "stale" in stale.stdout and "dependency list changed" in stale.stdout


def _commands(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines if line.split()[:1] == ["envbuild"]]


def test_ci_templates_parse_and_name_only_real_commands() -> None:
    from envbuild.cli import COMMANDS, make_app
    from typer.main import get_command

    github = yaml.safe_load((template.ROOT / "ci" / "github-actions.yml").read_text())
    gitlab = yaml.safe_load((template.ROOT / "ci" / "gitlab-ci.yml").read_text())
    steps = [s["run"] for s in github["jobs"]["verify"]["steps"] if "run" in s]
    job = gitlab["envbuild-verify"]
    used = _commands([re.sub(r"\s+#.*", "", s) for s in steps]) + _commands(job["script"] + job["after_script"])
    assert {c[1] for c in used} >= {"lock", "build", "verify", "runs"}
    for words in used:
        assert words[1] in COMMANDS, words
        command = get_command(make_app(words[1])).commands[words[1]]  # type: ignore[attr-defined]
        known = {o for p in command.params for o in p.opts}
        for word in words[2:]:
            if word.startswith("-") and word != ">":
                assert word in known, f"{' '.join(words)}: {word} is not an option of envbuild {words[1]}"


def test_the_wheel_carries_the_templates(tmp_path: Path) -> None:
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path), str(REPO_ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    names = zipfile.ZipFile(next(tmp_path.glob("envbuild-*.whl"))).namelist()
    for kind, name in [("projects", "torch"), ("bases", "cuda13-torch")]:
        assert f"envbuild/templates/{kind}/{name}/pyproject.toml" in names
    assert "envbuild/templates/ci/github-actions.yml" in names
