"""The wheelhouse through the real pip download: exact artifacts, cache by sha256, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild import wheelhouse
from envbuild.errors import EnvbuildError
from envbuild.wheelhouse import Pin, Target, ensure, parse_requirements_lock

TARGET = Target("linux/amd64", "3.11")
SIX = ("six==1.16.0 \\\n    --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926 \\\n"
       "    --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n    # via -r requirements.in\n")
SIX_WHEEL = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
IDNA = ("idna==3.7 \\\n    --hash=sha256:028ff3aadf0609c1fd278d8ea3089299412a7a8b9bd005dd08b9f8285bcb5cfc \\\n"
        "    --hash=sha256:82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _lock(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("#\n# pip-compile header\n#\n" + text)
    return path


def test_parse_reads_pins_and_hashes(tmp_path: Path) -> None:
    pins = parse_requirements_lock(_lock(tmp_path, SIX + "Foo_Bar[x]==2.0 --hash=sha256:" + "a" * 64 + "\n"))
    assert pins[0] == Pin("six", "1.16.0", frozenset({SIX_WHEEL, "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"}))
    assert (pins[1].name, pins[1].version) == ("foo-bar", "2.0")


@pytest.mark.parametrize("line, says", [
    ("six>=1.0 --hash=sha256:" + "a" * 64, "not pinned with =="),
    ("six==1.16.0", "has no --hash"),
    ("--index-url https://example.org/simple", "option line"),
])
def test_parse_refuses_unlocked_lines(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(EnvbuildError, match=says):
        parse_requirements_lock(_lock(tmp_path, line + "\n"))


def test_target_platforms_stay_within_bookworm_glibc() -> None:
    tags = TARGET.platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux2014_x86_64" in tags
    assert not any("2_37" in t for t in tags)


def test_fetches_verifies_and_caches_by_sha256(tmp_path: Path, cache: Path) -> None:
    house = ensure(_lock(tmp_path, SIX), TARGET)
    assert house.downloaded == ["six==1.16.0"] and house.cached == []
    (wheel,) = house.wheels
    assert wheel.path == cache / "wheels" / SIX_WHEEL / "six-1.16.0-py2.py3-none-any.whl"
    # Another project with the same pin downloads nothing; a new pin downloads only itself.
    other = tmp_path / "other"
    other.mkdir()
    house = ensure(_lock(other, SIX + IDNA), TARGET)
    assert house.downloaded == ["idna==3.7"] and house.cached == ["six==1.16.0"]
    assert [w.pin.name for w in house.wheels] == ["idna", "six"]


def test_changed_cached_bytes_are_refused_naming_file_and_hashes(tmp_path: Path, cache: Path) -> None:
    (wheel,) = ensure(_lock(tmp_path, SIX), TARGET).wheels
    wheel.path.write_bytes(wheel.path.read_bytes() + b"tampered")
    with pytest.raises(EnvbuildError) as e:
        ensure(_lock(tmp_path, SIX), TARGET)
    msg = str(e.value)
    assert str(wheel.path) in msg and SIX_WHEEL in msg and wheelhouse.sha256_file(wheel.path) in msg
    assert e.value.exit_code == 1


def test_substituted_artifact_is_refused_with_both_hashes(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(EnvbuildError) as e:
        ensure(_lock(tmp_path, "six==1.16.0 --hash=sha256:" + "0" * 64 + "\n"), TARGET)
    assert "0" * 64 in str(e.value) and SIX_WHEEL in str(e.value) and "six" in str(e.value)
    assert not (cache / "wheels" / SIX_WHEEL).exists()


def test_sdist_only_package_is_named_with_the_platform(tmp_path: Path, cache: Path) -> None:
    # docopt 0.6.2 was only ever published as an sdist.
    lock = _lock(tmp_path, "docopt==0.6.2 --hash=sha256:49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491\n")
    with pytest.raises(EnvbuildError, match=r"docopt==0\.6\.2 has no wheel for linux/amd64, CPython 3\.11"):
        ensure(lock, TARGET)


def test_universal_lock_installs_only_the_pins_for_the_target(tmp_path: Path) -> None:
    """uv --universal writes one pin per Python/platform range; the build takes the target's."""
    lock = tmp_path / "requirements.lock"
    h = "--hash=sha256:" + "a" * 64
    lock.write_text(f'numpy==2.4.6 ; python_full_version < "3.12" \\\n    {h}\n'
                    f'numpy==2.5.5 ; python_full_version >= "3.12" \\\n    {h}\n'
                    f'pywin==1 ; sys_platform == "win32" \\\n    {h}\n'
                    f'armonly==1 ; platform_machine == "aarch64" \\\n    {h}\n')
    amd = [str(p) for p in wheelhouse.parse_requirements_lock(lock, wheelhouse.Target("linux/amd64", "3.11"))]
    arm = [str(p) for p in wheelhouse.parse_requirements_lock(lock, wheelhouse.Target("linux/arm64", "3.12"))]
    assert amd == ["numpy==2.4.6"]
    assert arm == ["numpy==2.5.5", "armonly==1"]
