"""The spec: good inputs through load_spec, bad inputs through the real CLI (`envbuild config`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.errors import SpecError
from envbuild.spec import DEFAULT_BASE, DEFAULT_SEED, load_spec


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            p.mkdir(exist_ok=True)
        else:
            p.write_text(text)
    return root


PYPROJECT = """\
[project]
name = "My_Project"
dependencies = ["six==1.16.0", "idna>=3"]

[project.optional-dependencies]
test = ["iniconfig"]

[tool.envbuild]
base = "127.0.0.1:5000/envbuild/base:bookworm"
python = "3.11"
data = ["data/"]
seed = 7
gpus = "all"
groups = ["test"]

[tool.envbuild.env]
OMP_NUM_THREADS = 1
"""


# --- good inputs -----------------------------------------------------------------------


def test_pyproject_only(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PYPROJECT, "data/": ""})
    spec = load_spec(tmp_path)
    assert spec.source == tmp_path / "pyproject.toml"
    assert spec.name == "my_project"
    assert spec.dependencies == ("six==1.16.0", "idna>=3", "iniconfig")  # the group is locked too
    assert spec.dependencies_source == "pyproject.toml [project] dependencies"
    assert spec.groups == ("test",)
    assert spec.seed == 7 and spec.gpus == "all" and spec.network == "none"
    assert spec.env == {"OMP_NUM_THREADS": "1"}
    assert spec.requirements is None and spec.conda is None


def test_envbuild_toml_only_with_defaults(tmp_path: Path) -> None:
    write(tmp_path, {"envbuild.toml": 'requirements = "reqs/base.txt"\n',
                     "reqs/base.txt": "six  # pinned by lock\n-r extra.txt\n--index-url https://example.org\n",
                     "reqs/extra.txt": "attrs\n\n# comment\n"})
    spec = load_spec(tmp_path)
    assert spec.source == tmp_path / "envbuild.toml"
    assert spec.name == tmp_path.name.lower().replace("_", "_")
    assert spec.requirements == tmp_path / "reqs/base.txt"
    assert spec.dependencies == ("six", "attrs")  # -r followed, options and comments dropped
    assert spec.base == DEFAULT_BASE and spec.seed == DEFAULT_SEED and spec.deterministic is True
    assert spec.gpus is None and spec.platforms == ("linux/amd64",)


def test_requirements_in_found_without_a_key(tmp_path: Path) -> None:
    write(tmp_path, {"envbuild.toml": "seed = 0\n", "requirements.in": "packaging\ncertifi\n"})
    spec = load_spec(tmp_path)
    assert spec.requirements == tmp_path / "requirements.in"
    assert spec.dependencies == ("packaging", "certifi")
    assert spec.dependencies_source == "requirements.in" and spec.seed == 0


def test_conda_only(tmp_path: Path) -> None:
    write(tmp_path, {"envbuild.toml": 'conda = "environment.yml"\ngpus = 0\n',
                     "environment.yml": "dependencies: [python=3.11]\n"})
    spec = load_spec(tmp_path)
    assert spec.conda == tmp_path / "environment.yml"
    assert spec.dependencies == () and not spec.uses_pip
    assert spec.gpus is None  # 0 GPUs means none


def test_both_files_that_agree_are_merged(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["six"]\n[tool.envbuild]\nseed = 3\n',
                     "envbuild.toml": 'seed = 3\nnetwork = "host"\ngpus = "device=0,GPU-1a2b"\n'})
    spec = load_spec(tmp_path)
    assert (spec.seed, spec.network, spec.gpus) == (3, "host", "device=0,GPU-1a2b")
    assert spec.source == tmp_path / "pyproject.toml"


def test_as_dict_is_plain_json(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PYPROJECT, "data/": ""})
    d = load_spec(tmp_path).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["data"] == ["data/"] and d["root"] == str(tmp_path)


def test_error_names_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, {"envbuild.toml": "seed = 1.5\nrequirements = 'r.txt'\n", "r.txt": "six\n"})
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path)
    assert e.value.file == str(tmp_path / "envbuild.toml") and e.value.key == "seed"
    assert e.value.exit_code == 2


# --- bad inputs, each through the real CLI ----------------------------------------------

DEPS = '[project]\nname = "x"\ndependencies = ["six"]\n'

# id -> (files, file named in the message, key named in the message, a word of the fix)
BAD: dict[str, tuple[dict[str, str], str, str, str]] = {
    "unknown key, nearest suggested": (
        {"pyproject.toml": DEPS + "[tool.envbuild]\nsed = 1\n"}, "pyproject.toml", "tool.envbuild.sed", "'seed'"),
    "unknown key in envbuild.toml": (
        {"envbuild.toml": 'netwrok = "none"\n', "requirements.in": "six\n"}, "envbuild.toml", "netwrok", "'network'"),
    "unknown key with underscore": (
        {"envbuild.toml": 'system_packages = ["git"]\n', "requirements.in": "six\n"},
        "envbuild.toml", "system_packages", "'system-packages'"),
    "dependencies under tool.envbuild": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\ndependencies = ["six"]\n'},
        "pyproject.toml", "tool.envbuild.dependencies", "[project] dependencies"),
    "misspelt tool table": (
        {"pyproject.toml": DEPS + "[tool.envbiuld]\nseed = 1\n"}, "pyproject.toml", "tool.envbiuld", "[tool.envbuild]"),
    "tool header inside envbuild.toml": (
        {"envbuild.toml": "[tool.envbuild]\nseed = 1\n", "requirements.in": "six\n"},
        "envbuild.toml", "tool", "top level"),
    "wrong type: bool as string": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\ndeterministic = "yes"\n'},
        "pyproject.toml", "tool.envbuild.deterministic", "true"),
    "wrong type: list as string": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nplatforms = "linux/amd64"\n'},
        "pyproject.toml", "tool.envbuild.platforms", "["),
    "wrong type: env not a table": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nenv = "A=1"\n'}, "pyproject.toml", "tool.envbuild.env", "table"),
    "bad env variable name": (
        {"pyproject.toml": DEPS + '[tool.envbuild.env]\n"1A" = "x"\n'}, "pyproject.toml", "tool.envbuild.env.1A",
        "letters"),
    "wrong type: project.dependencies": (
        {"pyproject.toml": '[project]\ndependencies = "six"\n'}, "pyproject.toml", "project.dependencies", "["),
    "bad image reference": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nbase = "Python:3.11 slim"\n'},
        "pyproject.toml", "tool.envbuild.base", "registry/]name"),
    "bad image digest": (
        {"envbuild.toml": 'base = "python@sha256:abc"\n', "requirements.in": "six\n"},
        "envbuild.toml", "base", "sha256"),
    "missing requirements file": (
        {"envbuild.toml": 'requirements = "reqs.txt"\n'}, "envbuild.toml", "requirements", "fix the path"),
    "missing -r include": (
        {"envbuild.toml": 'requirements = "r.in"\n', "r.in": "six\n-r other.in\n"}, "r.in", "-r other.in",
        "fix the path"),
    "missing environment.yml": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nconda = "environment.yml"\n'},
        "pyproject.toml", "tool.envbuild.conda", "environment.yml"),
    "missing data path": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\ndata = ["data/train"]\n'},
        "pyproject.toml", "tool.envbuild.data", "create it"),
    "both files disagree": (
        {"pyproject.toml": DEPS + "[tool.envbuild]\nseed = 1\n", "envbuild.toml": "seed = 2\n"},
        "envbuild.toml", "seed", "one file only"),
    "key from envbuild.toml blamed in envbuild.toml": (
        {"pyproject.toml": DEPS + "[tool.envbuild]\nseed = 1\n", "envbuild.toml": 'data = ["nope"]\n'},
        "envbuild.toml", "data", "create it"),
    "invalid TOML": (
        {"pyproject.toml": '[project]\nname = x\n'}, "pyproject.toml", "line 2, column 8", "fix the TOML syntax"),
    "invalid TOML: unclosed at the end": (
        {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["six"\n'}, "pyproject.toml", "end of document",
        "fix the TOML syntax"),
    "invalid TOML in envbuild.toml": (
        {"envbuild.toml": "seed = = 1\n"}, "envbuild.toml", "line 1, column 8", "fix the TOML syntax"),
    "empty dependencies": (
        {"pyproject.toml": '[project]\nname = "x"\ndependencies = []\n'}, "pyproject.toml", "project.dependencies",
        "add some"),
    "empty requirements.in": (
        {"envbuild.toml": "seed = 1\n", "requirements.in": "# nothing yet\n"}, "requirements.in", "requirements",
        "add some"),
    "no dependencies anywhere": (
        {"envbuild.toml": "seed = 1\n"}, "envbuild.toml", "project.dependencies", "conda"),
    "bad seed: negative": (
        {"pyproject.toml": DEPS + "[tool.envbuild]\nseed = -1\n"}, "pyproject.toml", "tool.envbuild.seed", "1234"),
    "bad seed: string": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nseed = "42"\n'}, "pyproject.toml", "tool.envbuild.seed", "1234"),
    "bad seed: too big": (
        {"envbuild.toml": "seed = 4294967296\n", "requirements.in": "six\n"}, "envbuild.toml", "seed", "4294967295"),
    "bad gpus: word": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\ngpus = "some"\n'}, "pyproject.toml", "tool.envbuild.gpus",
        "device=0,1"),
    "bad gpus: bool": (
        {"pyproject.toml": DEPS + "[tool.envbuild]\ngpus = true\n"}, "pyproject.toml", "tool.envbuild.gpus", '"all"'),
    "bad network": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nnetwork = "bridge0"\n'}, "pyproject.toml",
        "tool.envbuild.network", "none"),
    "bad python": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\npython = "3"\n'}, "pyproject.toml", "tool.envbuild.python", "3.11"),
    "bad platform": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nplatforms = ["windows/amd64"]\n'}, "pyproject.toml",
        "tool.envbuild.platforms", "linux/amd64"),
    "bad system package": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\nsystem-packages = ["Git Lfs"]\n'}, "pyproject.toml",
        "tool.envbuild.system-packages", "lowercase"),
    "unknown group": (
        {"pyproject.toml": DEPS + '[tool.envbuild]\ngroups = ["dev"]\n'}, "pyproject.toml", "tool.envbuild.groups",
        "(none defined)"),
    "no config at all": ({"train.py": "print(1)\n"}, "", "", "envbuild init"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_one_line_exit_2(tmp_path: Path, cli, case: str) -> None:
    files, file, key, fix = BAD[case]
    write(tmp_path, files)
    proc = cli("config", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line: file, key, fix
    line = lines[0]
    assert line.startswith("envbuild: error: ")
    assert str(tmp_path / file) in line
    assert key in line and fix in line
    assert "Traceback" not in proc.stderr
