"""A conda project on a conda team base holds the base's pins, installs nothing the base has, and a
conflict names environment.yml, the package and the base's pin."""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from envbuild import condapkgs, teambase
from envbuild.errors import EnvbuildError
from envbuild.lockfile import read_lock
from tests.conftest import REGISTRY, run_cli
from tests.helpers.engines import sh_in as _sh
from tests.helpers.projects import conda_package, index_channel, make_build_channel, write

PINS = {"python": ("3.11.9", "0"), "greet": ("1.0", "0")}


def _spec(root: Path, override: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(conda=root / "environment.yml", base="127.0.0.1:5000/team/base:1", override_base=override)


def test_a_direct_dependency_the_base_pin_misses_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(EnvbuildError) as e:
        teambase.check_conda_direct(_spec(tmp_path), ("python=3.11", "greet >=2"), PINS)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "environment.yml") in msg and "'greet >=2'" in msg
    assert "greet=1.0=0" in msg and "override-base" in msg and "rebuild the base" in msg
    # what the base's pin satisfies passes, and so does an overridden package
    teambase.check_conda_direct(_spec(tmp_path), ("python=3.11", "greet 1.*", "conda-forge::greet", "other >=9"), PINS)
    teambase.check_conda_direct(_spec(tmp_path, ("greet",)), ("greet >=2",), PINS)
    # a pin without a build string (an old label) is still checked by version, never a rattler traceback
    with pytest.raises(EnvbuildError, match="greet=1.0="):
        teambase.check_conda_direct(_spec(tmp_path), ("greet >=2",), {"greet": ("1.0", "")})
    teambase.check_conda_direct(_spec(tmp_path), ("greet 1.*",), {"greet": ("1.0", "")})


def test_a_conda_project_on_a_team_base_locks_one_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envbuild.ingredients.conda import Conda

    monkeypatch.setattr(teambase, "base_conda_pins", lambda base, platform: PINS)
    (tmp_path / "environment.yml").write_text("channels: [conda-forge]\ndependencies: [greet]\n")
    spec = SimpleNamespace(**vars(_spec(tmp_path)), source=tmp_path / "pyproject.toml",
                           platforms=["linux/amd64", "linux/arm64"])
    with pytest.raises(EnvbuildError, match="platforms: a conda project on the team base .* locks one platform"):
        Conda().lock(SimpleNamespace(spec=spec, base=None))


def test_pins_held_as_exact_constraints_and_shared_only_at_the_base_build(tmp_path: Path) -> None:
    assert teambase.conda_constraints(_spec(tmp_path), PINS) == ["greet ==1.0 0", "python ==3.11.9 0"]
    assert teambase.conda_constraints(_spec(tmp_path, ("greet",)), PINS) == ["python ==3.11.9 0"]
    locked = [("greet", "1.0", "0"), ("greetlib", "2.0", "py_0"), ("python", "3.11.9", "1")]  # python: another build
    assert teambase.conda_shared(_spec(tmp_path), PINS, locked) == {"greet": "1.0=0"}
    assert teambase.conda_shared(_spec(tmp_path, ("greet",)), PINS, locked) == {}


def test_the_label_round_trips_and_a_foreign_prefix_is_refused() -> None:
    label = teambase.conda_pins_label([("python", "3.11.9", "0"), ("greet", "1.0", "0")], condapkgs.PREFIX)
    assert label == "prefix=/opt/conda greet=1.0=0 python=3.11.9=0"
    assert teambase.parse_conda_pins(label, "team:1") == PINS
    assert teambase.parse_conda_pins("", "team:1") == {}
    with pytest.raises(EnvbuildError, match="keeps its conda environment in /srv/env, not /opt/conda"):
        teambase.parse_conda_pins("prefix=/srv/env greet=1.0=0", "team:1")


def test_a_solve_holding_the_pins_picks_the_base_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rattler on a local channel with liba 1.0 and 2.0: held at 1.0, the newest is not taken."""
    from envbuild.lockfile import read_conda_lock
    from envbuild.resolvers import rattler

    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    conda_package(tmp_path / "ch", "liba", "1.0")
    conda_package(tmp_path / "ch", "liba", "2.0")
    index_channel(tmp_path / "ch")
    write(tmp_path / "p" / "environment.yml", f"channels: [{(tmp_path / 'ch').as_uri()}]\ndependencies:\n  - liba\n")
    spec = SimpleNamespace(conda=tmp_path / "p" / "environment.yml", root=tmp_path / "p", platforms=["linux/amd64"])
    out = tmp_path / "p" / "conda-lock.yml"
    rattler.resolve(spec, out)
    assert [p.version for p in read_conda_lock(tmp_path / "p")] == ["2.0"]
    rattler.resolve(spec, out, constraints=["liba ==1.0 0"])
    assert [p.version for p in read_conda_lock(tmp_path / "p")] == ["1.0"]


def test_the_prefix_holds_only_what_the_base_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base's python and greet are neither fetched nor linked; greetlib (noarch: python) still
    lands in python3.11's site-packages, which rattler learns from the base's python record."""
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    make_build_channel(tmp_path / "ch")
    proj = _project(tmp_path / "p", tmp_path / "ch", "ebt-unit", "127.0.0.1:5000/none:1", "python=3.11\n  - greetlib")
    from envbuild.resolvers import rattler

    spec = SimpleNamespace(conda=proj / "environment.yml", root=proj, platforms=["linux/amd64"])
    rattler.resolve(spec, proj / "conda-lock.yml")
    cset = condapkgs.ensure(proj, "linux/amd64", in_base={"python": "3.11.9=0", "greet": "1.0=0"})
    assert [p.name for p in cset.shared] == ["greet", "python"] and [f.package.name for f in cset.files] == ["greetlib"]
    condapkgs.create_prefix(cset, tmp_path / "stage", pth="import envbuild_hook\n")
    found = sorted(str(p.relative_to(tmp_path / "stage")) for p in (tmp_path / "stage").rglob("*") if p.is_file())
    assert [f for f in found if f.startswith(("conda-meta/", "lib/"))] == [
        "conda-meta/greetlib-2.0-py_0.json", "conda-meta/history",
        "lib/python3.11/site-packages/greetlib/__init__.py",
        "lib/python3.11/site-packages/zz-envbuild.pth"]
    assert not any(f.startswith(("share/greet", "bin/greet", "pyvenv.cfg")) for f in found)


# --- through the real engine and registry -------------------------------------------------------


def _project(root: Path, channel: Path, name: str, base: str, deps: str, extra: str = "") -> Path:
    write(root / "pyproject.toml", f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\nconda = "environment.yml"\n{extra}')
    write(root / "environment.yml", f"channels: [{channel.as_uri()}]\ndependencies:\n  - {deps}\n")
    return root


def _layer_files(cache: Path, image_id: str, prefix: str) -> list[str]:
    """The files of the image's own layer whose comment starts with `prefix`, from envbuild's store."""
    from envbuild.assemble import described
    from envbuild.oci.blobs import Store

    store = Store(cache / "oci")
    written = described(store, image_id)
    assert written is not None
    i = next(i for i, c in enumerate(written.comments) if c.startswith(prefix))
    with tarfile.open(store.verified(written.diff_ids[written.base_layers + i]), "r:") as tar:
        return sorted(m.name for m in tar if not m.isdir())


@pytest.mark.docker
def test_conda_project_on_a_conda_team_base_installs_only_what_the_base_lacks(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    cache = tmp_path / "cache"
    env = {"ENVBUILD_CACHE_DIR": str(cache)}
    tag = uuid.uuid4().hex[:8]
    channel = tmp_path / "channel"
    make_build_channel(channel)
    team = _project(tmp_path / "team", channel, f"ebt-condateam-{tag}", base_image, "python=3.11\n  - greet")
    assert run_cli("lock", cwd=team, env=env).returncode == 0
    built = run_cli("base", "build", "--push", f"{REGISTRY}/envbuild-test/condateam-{tag}:1", "--json", cwd=team, env=env)
    assert built.returncode == 0, built.stderr
    team_base = json.loads(built.stdout)["repo_digest"]
    images += [json.loads(built.stdout)["ref"], team_base]  # the project's build pulls the base by digest

    proj = _project(tmp_path / "proj", channel, f"ebt-oncondateam-{tag}", team_base, "python=3.11\n  - greetlib")
    locked = run_cli("lock", cwd=proj, env=env)
    assert locked.returncode == 0, locked.stderr
    lock = read_lock(proj)
    assert lock is not None and lock.conda_base_packages == {"greet": "1.0=0", "python": "3.11.9=0"}
    assert "greet-1.0-0.tar.bz2" in (proj / "conda-lock.yml").read_text()  # the lock still names it
    out = run_cli("build", "--json", cwd=proj, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    images.append(result["ref"])
    assert result["downloaded"] == ["greetlib=2.0=py_0"]  # the base's packages are not even fetched
    files = _layer_files(cache, result["id"], "conda:")
    assert "opt/conda/lib/python3.11/site-packages/greetlib/__init__.py" in files
    assert not [f for f in files if "greet-1.0" in f or "python-3.11" in f or f.startswith(
        ("opt/conda/share/greet", "opt/conda/bin/greet", "opt/conda/pyvenv.cfg"))], files
    seen = _sh(result["ref"], "ls /opt/conda/conda-meta | grep json; cat /opt/conda/share/greet/hello.txt; greet;"
                              "python -c 'import greetlib, sys; print(greetlib.VERSION, sys.prefix)'")
    assert seen.split("\n") == ["greet-1.0-0.json", "greetlib-2.0-py_0.json", "python-3.11.9-0.json",
                                "hello from greet 1.0", "greet prefix=/opt/conda", "2.0 /opt/conda", ""]

    # A direct dependency the base's pin cannot meet: refused before solving, nothing written.
    write(proj / "environment.yml", f"channels: [{channel.as_uri()}]\ndependencies:\n  - python=3.11\n  - greet >=2\n")
    refused = run_cli("lock", cwd=proj, env=env)
    assert refused.returncode == 2, refused.stderr
    line = next(x for x in refused.stderr.splitlines() if "conflicts" in x)  # one line says it all
    for part in (str(proj / "environment.yml"), "'greet >=2'", "greet=1.0=0", "override-base"):
        assert part in line, refused.stderr
    assert read_lock(proj).conda_base_packages == lock.conda_base_packages  # nothing half-written

    # override-base: the project's greet 2.0 goes into the prefix, the base's record is whited out.
    conda_package(channel, "greet", "2.0", files={"share/greet/hello.txt": b"hello from greet 2.0\n"})
    index_channel(channel)
    _project(proj, channel, f"ebt-oncondateam-{tag}", team_base, "python=3.11\n  - greet >=2",
             'override-base = ["greet"]\n')
    relocked = run_cli("lock", cwd=proj, env=env)
    assert relocked.returncode == 0, relocked.stderr
    assert read_lock(proj).conda_base_packages == {"python": "3.11.9=0"}
    out = run_cli("build", "--json", cwd=proj, env=env)
    assert out.returncode == 0, out.stderr
    images.append(json.loads(out.stdout)["ref"])
    seen = _sh(json.loads(out.stdout)["ref"], "ls /opt/conda/conda-meta | grep json; cat /opt/conda/share/greet/hello.txt")
    assert seen.split("\n") == ["greet-2.0-0.json", "python-3.11.9-0.json", "hello from greet 2.0", ""]
