"""A Docker engine of a test's own, beside the shared one: for faults (stop it mid-run) and for
"another machine" (its own image store, so nothing the shared engine holds can help)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def cannot(why: str) -> None:
    """Skip on a laptop without root; fail in CI (ENVBUILD_REQUIRE_DOCKER=1), where a skip would hide a fault."""
    if os.environ.get("ENVBUILD_REQUIRE_DOCKER") == "1":
        pytest.fail(why + " and ENVBUILD_REQUIRE_DOCKER=1 forbids skipping")
    pytest.skip(why)


@pytest.fixture
def private_engine(base_image: str):
    """A dockerd of our own (own socket, data-root, exec-root, pidfile; no bridge, no iptables) that a
    test may stop: the shared engine is never touched."""
    import tempfile

    dockerd = shutil.which("dockerd")
    if os.geteuid() != 0 or not dockerd:
        cannot("a private Docker engine needs root and dockerd")
    home = Path(tempfile.mkdtemp(prefix="ebd-", dir="/tmp"))  # short: a socket path must fit in 108 bytes
    host = f"unix://{home}/docker.sock"
    with open(home / "dockerd.log", "wb") as log:
        proc = subprocess.Popen([dockerd, "--data-root", str(home / "data"), "--exec-root", str(home / "exec"),
                                 "--pidfile", str(home / "docker.pid"), "-H", host, "--bridge=none",
                                 "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", host, "version"], capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private dockerd did not start: {(home / 'dockerd.log').read_text()[-1500:]}")
            time.sleep(0.5)
        yield host, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        shutil.rmtree(home, ignore_errors=True)


def sh_in(ref: str, script: str) -> str:
    """stdout of `sh -ec SCRIPT` in a container of `ref` (no network), which must succeed."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "sh", "-ec", script],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
