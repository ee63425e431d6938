"""sandbox.py on the real engine: a kept sandbox whose envbuild died is swept by the next one."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import pytest

from envbuild import sandbox

pytestmark = pytest.mark.docker


def _create(base_image: str, owner: str) -> str:
    name = f"envbuild-sandbox-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--network", "none", "--name", name, "--label",
                    f"{sandbox.OWNER_LABEL}={owner}", base_image, "true"], check=True, capture_output=True)
    return name


def _exists(name: str) -> bool:
    return subprocess.run(["docker", "inspect", name], capture_output=True).returncode == 0


def test_sandboxes_of_dead_owners_are_swept_and_no_other(base_image: str) -> None:
    me = sandbox._owner(os.getpid())
    host, boot, pid, start = me.split("/")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid nobody has now
    names = {
        "dead owner": _create(base_image, f"{host}/{boot}/{dead.pid}/1"),
        "pid reused (another start time)": _create(base_image, f"{host}/{boot}/{pid}/{int(start) + 1}"),
        "alive (this test)": _create(base_image, me),
        "another machine's": _create(base_image, f"not-{socket.gethostname()}/{boot}/{dead.pid}/1"),
    }
    try:
        swept = sandbox.sweep()
        assert {k for k, n in names.items() if not _exists(n)} == {"dead owner", "pid reused (another start time)"}
        assert set(swept) >= {names["dead owner"], names["pid reused (another start time)"]}
    finally:
        for name in names.values():
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_a_kept_sandbox_carries_its_owner(base_image: str) -> None:
    name = sandbox.run(base_image, ["true"], what="test")
    try:
        label = subprocess.run(["docker", "inspect", "-f", f'{{{{index .Config.Labels "{sandbox.OWNER_LABEL}"}}}}',
                                name], capture_output=True, text=True, check=True).stdout.strip()
        assert label == sandbox._owner(os.getpid())
    finally:
        sandbox.remove(name)
