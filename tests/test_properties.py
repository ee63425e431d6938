"""Property-based: any bytes in a spec or a lockfile give a result or envbuild's one-line error.

Never a traceback. The seed is fixed (derandomize) and the example count bounded, so CI runs the
same examples in seconds. Inputs are both raw text and documents shaped like the real ones with
one part replaced by anything, which is where a reader trusts a type it did not check.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envbuild.errors import EnvbuildError

PROFILE = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SHA = "a" * 64
scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | \
    st.text(max_size=20) | st.sampled_from(["", "..", "../x", "3.11", "linux/amd64", SHA, "sha256:" + SHA])
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) |
                           st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)


def replace_somewhere(doc: Any, data: st.DataObject) -> Any:
    """`doc` with one value somewhere inside it (or the whole) replaced by an arbitrary JSON value."""
    if isinstance(doc, dict) and doc and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(doc)))
        return {**doc, key: replace_somewhere(doc[key], data)}
    if isinstance(doc, list) and doc and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(doc) - 1))
        return [*doc[:i], replace_somewhere(doc[i], data), *doc[i + 1:]]
    return data.draw(json_values)


def answers_or_one_line_error(read: Callable[[Path], Any], name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(content)
        try:
            read(Path(tmp))
        except EnvbuildError as e:
            assert "\n" not in str(e) and str(e).strip(), repr(str(e))


# --- the spec ----------------------------------------------------------------------------------


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + "}"
    return '""'  # None has no TOML spelling


SPEC_KEYS = ["name", "base", "python", "platforms", "requirements", "groups", "conda", "system-packages",
             "data", "outputs", "seed", "deterministic", "gpus", "network", "env", "resolver", "image",
             "tracking", "dependencies", "tool", "nmae"]
toml_values = st.recursive(st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=15) |
                           st.sampled_from(["requirements.in", "/abs/data", "../up", "3.12", "all", "none",
                                            "linux/amd64", "127.0.0.1:5000/x:y"]),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
                               st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), kids, max_size=3),
                           max_leaves=8)


@st.composite
def spec_documents(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # now and then: anything at all
        return draw(st.binary(max_size=200))
    settings_ = draw(st.dictionaries(st.sampled_from(SPEC_KEYS), toml_values, max_size=5))
    project = draw(st.dictionaries(st.sampled_from(["name", "dependencies", "optional-dependencies"]),
                                   toml_values, max_size=3))
    lines = ["[project]"] + [f"{json.dumps(k)} = {toml_value(v)}" for k, v in project.items()]
    lines += ["[tool.envbuild]"] + [f"{json.dumps(k)} = {toml_value(v)}" for k, v in settings_.items()]
    return ("\n".join(lines) + "\n").encode()


@PROFILE
@given(doc=spec_documents(), standalone=st.booleans(), requirements=st.binary(max_size=60))
def test_spec_parser_answers_or_names_the_problem(doc: bytes, standalone: bool, requirements: bytes) -> None:
    from envbuild.spec import load_spec

    def read(root: Path) -> None:
        (root / "requirements.in").write_bytes(requirements)
        load_spec(root)

    answers_or_one_line_error(read, "envbuild.toml" if standalone else "pyproject.toml", doc)


# --- the lockfiles -------------------------------------------------------------------------------


def text_lines(words: list[str]) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(words) | st.text(max_size=12), max_size=12).map(lambda xs: "".join(xs).encode())


REQ_WORDS = ["six", "==", "1.16.0", " \\\n", "\n", " --hash=sha256:", SHA, "; python_version < '3.12'", "#",
             " # via x", "-r other.txt", "--index-url http://x", "[extra]", "numpy", "===", " ", "\t"]


@PROFILE
@given(content=text_lines(REQ_WORDS) | st.binary(max_size=120))
def test_requirements_lock_readers(content: bytes) -> None:
    from envbuild.lockfile import REQUIREMENTS_LOCK, read_pip_lock
    from envbuild.wheelhouse import parse_requirements_lock

    answers_or_one_line_error(read_pip_lock, REQUIREMENTS_LOCK, content)
    answers_or_one_line_error(lambda root: parse_requirements_lock(root / REQUIREMENTS_LOCK), REQUIREMENTS_LOCK,
                              content)


CONDA_DOC = {"version": 1, "metadata": {"channels": [{"url": "file:///c"}], "platforms": ["linux-64"],
                                        "content_hash": {"linux-64": SHA}, "sources": ["environment.yml"]},
             "package": [{"name": "python", "version": "3.11.4", "manager": "conda", "platform": "linux-64",
                          "dependencies": {}, "url": "file:///c/linux-64/python-3.11.4-0.conda",
                          "hash": {"md5": "b" * 32, "sha256": SHA}, "category": "main", "optional": False},
                         {"name": "six", "version": "1.16.0", "manager": "pip", "platform": "linux-64",
                          "dependencies": {}, "url": "https://x/six-1.16.0-py2.py3-none-any.whl",
                          "hash": {"sha256": SHA}, "category": "main", "optional": False}]}


@PROFILE
@given(data=st.data(), raw=st.binary(max_size=120), use_raw=st.integers(0, 5))
def test_conda_lock_readers(data: st.DataObject, raw: bytes, use_raw: int) -> None:
    from envbuild.condapkgs import read
    from envbuild.lockfile import CONDA_LOCK, read_conda_lock

    content = raw if use_raw == 0 else yaml.safe_dump(replace_somewhere(CONDA_DOC, data)).encode()
    answers_or_one_line_error(read_conda_lock, CONDA_LOCK, content)
    answers_or_one_line_error(lambda root: read(root, "linux/amd64"), CONDA_LOCK, content)


DEB = {"name": "jq", "version": "1.6-2.1", "architecture": "amd64", "filename": "jq_1.6-2.1_amd64.deb",
       "size": 10, "sha256": SHA, "url": "http://mirror.example/debian/pool/main/j/jq/jq_1.6-2.1_amd64.deb"}
SYSTEM_DOC = {"version": 1, "requested": ["jq"],
              "platforms": {"linux/amd64": {"base": "sha256:" + SHA, "in_base": {"python3": "3.11.2"},
                                            "packages": [DEB]}}}


@PROFILE
@given(data=st.data(), raw=st.binary(max_size=120), use_raw=st.integers(0, 5))
def test_system_packages_lock_reader(data: st.DataObject, raw: bytes, use_raw: int) -> None:
    from envbuild.debs import read_system_lock
    from envbuild.lockfile import SYSTEM_PACKAGES_LOCK

    content = raw if use_raw == 0 else json.dumps(replace_somewhere(SYSTEM_DOC, data)).encode()
    answers_or_one_line_error(read_system_lock, SYSTEM_PACKAGES_LOCK, content)


ENV_DOC = {"version": 1, "envbuild": "0.1.0", "python": "3.11", "platforms": ["linux/amd64"], "inputs_hash": SHA,
           "inputs": {"python": SHA}, "base": {"tag": "127.0.0.1:5000/envbuild/base:bookworm",
                                               "digest": "sha256:" + SHA, "platforms": {"linux/amd64": "sha256:" + SHA},
                                               "source": "registry"},
           "lockfiles": {"requirements.lock": SHA}, "resolver": {"name": "pip-tools"}, "conda_solver": {},
           "indexes": ["https://index.example/simple"], "system_packages": {"jq": "1.6"}}


@PROFILE
@given(data=st.data(), raw=st.binary(max_size=120), use_raw=st.integers(0, 5))
def test_envbuild_lock_reader(data: st.DataObject, raw: bytes, use_raw: int) -> None:
    from envbuild.lockfile import ENVBUILD_LOCK, read_lock

    def read(root: Path) -> None:
        lock = read_lock(root)
        if lock is not None:  # what every stage does with it next
            assert len(lock.lock_hash) == 64 and lock.base.pinned

    content = raw if use_raw == 0 else json.dumps(replace_somewhere(ENV_DOC, data)).encode()
    answers_or_one_line_error(read, ENVBUILD_LOCK, content)
