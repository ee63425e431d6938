"""Fault tests that need no image build: SIGKILL of `envbuild lock`, a full disk under the wheel
cache, the engine stopped during a run (a private engine: the shared one is never touched)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_cli
from tests.helpers.engines import cannot as _cannot, private_engine  # noqa: F401 - a fixture
from tests.helpers.projects import make_channel, write

LOCKFILES = ("requirements.lock", "conda-lock.yml", "envbuild.lock")


def _snapshot(proj: Path) -> dict[str, bytes]:
    return {n: (proj / n).read_bytes() for n in LOCKFILES if (proj / n).exists()}


def _restore(proj: Path, snap: dict[str, bytes]) -> None:
    for name, data in snap.items():
        (proj / name).write_bytes(data)


@pytest.fixture
def relockable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, bytes]]:
    """A project locked once (uv + a local conda channel: three lockfiles), its inputs then edited."""
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    make_channel(tmp_path / "channel")
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", '[tool.envbuild]\nname = "k"\nresolver = "uv"\nconda = "environment.yml"\n')
    write(proj / "requirements.in", "six\n")
    write(proj / "environment.yml", f"channels: [{(tmp_path / 'channel').as_uri()}]\ndependencies: [libb]\n")
    r = run_cli("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    old = _snapshot(proj)
    assert set(old) == set(LOCKFILES)
    write(proj / "requirements.in", "six\nidna\n")
    write(proj / "environment.yml", f"channels: [{(tmp_path / 'channel').as_uri()}]\ndependencies: [libc-tools]\n")
    return proj, old


def _all_old_or_all_new(proj: Path, old: dict[str, bytes]) -> str:
    """After the next reader ran: 'old' (byte-identical) or 'new' (every file new and consistent)."""
    check = run_cli("lock", "--check", cwd=proj)  # a reader: completes a rename a kill cut short
    now = _snapshot(proj)
    if now == old:
        assert check.returncode == 1, check.stdout + check.stderr  # stale: the edit is still to lock
        return "old"
    assert set(now) == set(LOCKFILES) and all(now[n] != old[n] for n in LOCKFILES), "a mix of old and new lockfiles"
    assert check.returncode == 0, check.stdout + check.stderr  # fresh: the hashes in envbuild.lock match
    return "new"


def test_sigkill_of_lock_at_random_points_never_leaves_a_mix(relockable) -> None:
    proj, old = relockable
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    start = time.monotonic()
    r = run_cli("lock", cwd=proj)
    full = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    rng = random.Random(16)
    seen = set()
    for delay in [rng.uniform(0.2, full) for _ in range(6)] + [full * 0.97, full * 0.99]:
        _restore(proj, old)
        proc = subprocess.Popen([sys.executable, "-m", "envbuild", "lock"], cwd=proj, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        seen.add(_all_old_or_all_new(proj, old))
    assert "old" in seen  # the kills did land before the end


KILL_AFTER_FIRST_RENAME = """
import os, runpy, signal, sys
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.dirname(os.path.abspath(dst)) == os.getcwd():  # a lockfile into the project, not a temp write
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.argv = ["envbuild", "lock"]
runpy.run_module("envbuild", run_name="__main__")
"""


def test_lock_killed_between_renames_is_completed_by_the_next_reader(relockable) -> None:
    proj, old = relockable
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_RENAME], cwd=proj,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    raw = _snapshot(proj)
    assert sum(raw[n] != old[n] for n in LOCKFILES) == 1  # on disk, for a moment, a mix
    assert _all_old_or_all_new(proj, old) == "new"
    assert not (proj / ".envbuild" / "lock-journal.json").exists()
    assert [p.name for p in (proj / ".envbuild").iterdir() if p.name.startswith("lock-")] == []


def _wheel(dest: Path, name: str, payload: bytes) -> Path:
    """A minimal valid py3-none-any wheel holding `payload` (stored, so its size is the payload's)."""
    import base64
    import zipfile

    path = dest / f"{name}-1.0-py3-none-any.whl"
    files = {f"{name}/__init__.py": b"", f"{name}/blob.bin": payload,
             f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
             f"{name}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
                     for p, d in files.items()) + f"{name}-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for p, d in {**files, f"{name}-1.0.dist-info/RECORD": record.encode()}.items():
            z.writestr(p, d)
    return path


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs (root only): a disk that fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        _cannot(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}); needs root")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_during_a_wheel_download_is_a_clear_error_and_leaves_nothing(tmp_path: Path, small_disk: Path,
                                                                               monkeypatch) -> None:
    from envbuild import wheelhouse
    from envbuild.errors import EnvbuildError

    links = tmp_path / "links"
    links.mkdir()
    big = _wheel(links, "bigpkg", os.urandom(3 << 20))
    pin = wheelhouse.Pin("bigpkg", "1.0", frozenset({hashlib.sha256(big.read_bytes()).hexdigest()}))
    cache = small_disk / "cache"
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(cache))
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(EnvbuildError) as e:
        wheelhouse.ensure_pins([pin], wheelhouse.Target("linux/amd64", "3.11"))
    msg = str(e.value)
    assert "\n" not in msg and "no space left on device while downloading wheels" in msg and str(cache) in msg
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no partial wheel, no temp file, no chosen entry
    # with room again, the same download goes through and is trusted
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "roomy"))
    house = wheelhouse.ensure_pins([pin], wheelhouse.Target("linux/amd64", "3.11"))
    assert [w.sha256 for w in house.wheels] == list(pin.hashes)


@pytest.mark.docker
def test_engine_stopped_during_a_run_is_recorded_as_engine_failed(private_engine, base_image: str,
                                                                   tmp_path: Path) -> None:
    from envbuild import chain, record as rec, store

    host, dockerd = private_engine
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", '[project]\nname = "faults"\ndependencies = ["six"]\n[tool.envbuild]\n')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DOCKER_HOST": host,
           "ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.Popen([sys.executable, "-m", "envbuild", "run", "--image", base_image, "--", "sh", "-c",
                            "echo started; sleep 300"], cwd=proj, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240  # the private engine pulls the base first
    while not any("started" in p.read_text() for p in proj.glob(".envbuild/runs/*/stdout.log")):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.2)
    dockerd.terminate()  # the engine stops (and stops its containers) under the run
    out, err = run.communicate(timeout=120)
    run_dir, r = store.load_run(proj, "latest")
    rec.validate(r)
    assert r["status"] == "failed" and r["reason"].startswith("engine-failed: the Docker engine stopped"), r["reason"]
    assert r["exit_code"] == run.returncode and r["exit_code"] not in (None, 0)  # docker's exit code, kept
    assert chain.verify(proj).sealed == 1
