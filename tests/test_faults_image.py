"""Faults during a build and a push: real engine, real registries, real kills.

A test that stops a registry starts a private one of its own (its own port and storage) and never
touches the shared one on 127.0.0.1:5000.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_cli
from tests.helpers.locking import make_locked_project


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    full = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.Popen([sys.executable, "-m", "envbuild", *args], cwd=cwd, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _corrupt_blobs(cache: Path) -> list[Path]:
    """Blobs whose bytes are not their name: none may exist."""
    bad = []
    for path in (cache / "oci" / "blobs" / "sha256").glob("*"):
        if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            bad.append(path)
    return bad


@pytest.mark.docker
def test_sigkill_during_build_leaves_nothing_that_is_trusted_wrongly(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    name = f"ebt-kill-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["numpy==2.2.6"], base=base_image)
    images.append(f"envbuild/{name}:{lock.lock_hash[:12]}")
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    rng = random.Random(1234)
    for _ in range(4):  # kill at random points: download, install, layer writing, compression, load
        proc = _cli(["build"], root, env)
        time.sleep(rng.uniform(0.5, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _corrupt_blobs(tmp_path / "cache") == []
    done = run_cli("build", "--json", cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    check = run_cli("build", "--check", "--json", cwd=root, env=env)
    assert check.returncode == 0 and json.loads(check.stdout)["identical"], check.stderr
    assert _sandboxes_of(tmp_path) == []  # no container of a killed build is left in the engine


def _sandboxes_of(tmp_path: Path) -> list[str]:
    """envbuild's sandbox containers (running or exited) that mount something under tmp_path."""
    names = subprocess.run(["docker", "ps", "-aq", "--filter", "name=envbuild-sandbox-"], capture_output=True,
                           text=True, check=True).stdout.split()
    if not names:
        return []
    inspected = json.loads(subprocess.run(["docker", "inspect", *names], capture_output=True, text=True).stdout or "[]")
    return [c["Name"] for c in inspected if any(m.get("Source", "").startswith(str(tmp_path)) for m in c["Mounts"])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRegistry:
    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.storage = root / "storage"
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "registry.yml"
        self.config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                               f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc: subprocess.Popen | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = "/usr/bin/docker-registry"
        if not Path(binary).exists():
            pytest.fail("docker-registry (Debian) is missing: run make docker-up")
        self.proc = subprocess.Popen([binary, "serve", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail("the private registry did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def blobs(self, repository: str) -> int:
        """Blobs `repository` holds: the registry links a blob into the repository only after its
        data has landed, so counting the data files alone races the link (a kill in between leaves
        a blob no repository has)."""
        layers = self.storage / "docker" / "registry" / "v2" / "repositories" / repository / "_layers" / "sha256"
        return sum(1 for link in layers.glob("*/link") if len(link.read_bytes()) == len("sha256:") + 64)


@pytest.mark.docker
def test_registry_stopped_mid_push_is_a_clear_error_and_the_next_push_resumes(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    name = f"ebt-push-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["numpy==2.2.6"], base=base_image)
    images.append(f"envbuild/{name}:{lock.lock_hash[:12]}")
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    built = run_cli("build", "--json", cwd=root, env=env)
    assert built.returncode == 0, built.stderr
    registry = PrivateRegistry(tmp_path / "registry")
    registry.start()
    try:
        interrupted = None
        for attempt in range(3):  # the base's 70 MB go first; stop the registry once one blob has landed
            repository = f"ebt/{name}-{attempt}"
            repo = f"{registry.addr}/{repository}"
            proc = _cli(["push", "--json", repo], root, env)
            while proc.poll() is None and registry.blobs(repository) == 0:
                time.sleep(0.01)
            registry.stop()
            out, err = proc.communicate(timeout=120)
            registry.start()
            if proc.returncode != 0:
                interrupted = (repo, err)
                break
        assert interrupted is not None, "every push finished before the registry stopped"
        repo, err = interrupted
        last = err.strip().splitlines()[-1]
        assert last.startswith("envbuild: error:") and "unreachable" in last and "Traceback" not in err, err
        again = run_cli("push", "--json", repo, cwd=root, env=env)
        assert again.returncode == 0, again.stderr
        entry = json.loads(again.stdout)
        assert entry["skipped"] >= 1  # what landed before the stop is not sent again
        assert entry["digest"] == json.loads(built.stdout)["digest"]
    finally:
        registry.stop()
