"""A Docker engine of a test's own, beside the shared one: for faults (stop it mid-run) and for
"another machine" (its own image store, so nothing the shared engine holds can help), and that
machine reached only over ssh (ssh_box: sshd on loopback in front of an engine of its own)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from tests.conftest import missing


# skip on a laptop without root; fail in CI (ENVBUILD_REQUIRE_DOCKER=1), where a skip would hide a fault
cannot = missing


def hidden(paths: Sequence[Path | str], scratch: Sequence[Path | str] = ()) -> list[str]:
    """A command prefix: the command runs in a mount namespace of its own where each path is an
    empty tmpfs (what another machine would see of this one's directories); `scratch` paths get a
    tmpfs to fill, gone with the namespace (no slow removal of an engine's layers)."""
    mounts = " && ".join([*(f"mount -t tmpfs -o size=1m tmpfs '{p}'" for p in paths),
                          *(f"mount -t tmpfs tmpfs '{p}'" for p in scratch)]) or "true"
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "-"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


@contextlib.contextmanager
def own_engine(hide: Sequence[Path | str] | None = None) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """(unix:// host, process, home) of a dockerd of our own (own socket, data-root, exec-root,
    pidfile; no bridge, no iptables); with `hide`, in a mount namespace where those paths are
    empty and the data-root is a tmpfs (hidden(...))."""
    import tempfile

    dockerd = shutil.which("dockerd")
    if os.geteuid() != 0 or not dockerd:
        cannot("a private Docker engine needs root and dockerd")
    home = Path(tempfile.mkdtemp(prefix="ebd-", dir="/tmp"))  # short: a socket path must fit in 108 bytes
    host = f"unix://{home}/docker.sock"
    (home / "data").mkdir()
    prefix = [] if hide is None else hidden(hide, [home / "data"])
    with open(home / "dockerd.log", "wb") as log:
        proc = subprocess.Popen([*prefix, dockerd, "--data-root", str(home / "data"), "--exec-root", str(home / "exec"),
                                 "--pidfile", str(home / "docker.pid"), "-H", host, "--bridge=none",
                                 "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", host, "version"], capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private dockerd did not start: {(home / 'dockerd.log').read_text()[-1500:]}")
            time.sleep(0.5)
        yield host, proc, home
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def sh_in(ref: str, script: str) -> str:
    """stdout of `sh -ec SCRIPT` in a container of `ref` (no network), which must succeed."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "sh", "-ec", script],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def private_engine(base_image: str):
    """A private engine a test may stop: the shared engine is never touched."""
    with own_engine() as (host, proc, _):
        yield host, proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ssh_box(hide: Sequence[Path | str], image: str | None = None) -> Iterator[dict]:
    """"A rented GPU box" on loopback: an engine of its own and Debian's sshd in front of it, both
    in mount namespaces where `hide` (the client's project and cache dirs) are empty, so nothing
    there can be bind-mounted. The ssh user (root, a key made here) finds `docker` pointing at that
    engine (sshd's SetEnv DOCKER_HOST). `image` is loaded into it (docker save | docker load).
    Yields {url, ssh_args, docker_host, engine_id, store, ssh_config}."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd) or not shutil.which("unshare"):
        cannot("the ssh target's test needs Debian's openssh-server and unshare (make ssh-tools)")
    # /etc/docker too: its key.json is the engine's ID, and another machine has its own
    with own_engine([*hide, "/etc/docker"]) as (host, _, home):
        if image:
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            load = subprocess.run(["docker", "-H", host, "load", "-q"], stdin=save.stdout, capture_output=True)
            save.stdout.close()
            assert save.wait() == 0 and load.returncode == 0, load.stderr
        key, hostkey = home / "id_ed25519", home / "host_ed25519"
        for k in (key, hostkey):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
        (home / "authorized_keys").write_text((home / "id_ed25519.pub").read_text())
        port = _free_port()
        (home / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\nPidFile {home}/sshd.pid\n"
            f"AuthorizedKeysFile {home}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f"SetEnv DOCKER_HOST={host}\nMaxSessions 50\nMaxStartups 50\n")
        (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {(home / 'host_ed25519.pub').read_text()}")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation dir
        store = home / "store"
        ssh_args = ["-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
                    "-o", f"UserKnownHostsFile={home}/known_hosts", "-o", "StrictHostKeyChecking=yes"]
        (home / "ssh_config").write_text(f"Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                                         f"  UserKnownHostsFile {home}/known_hosts\n  StrictHostKeyChecking yes\n")
        with open(home / "sshd.log", "wb") as log:
            proc = subprocess.Popen([*hidden(hide), sshd, "-D", "-e", "-f", str(home / "sshd_config")],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            probe = ["ssh", *ssh_args, "-p", str(port), "root@127.0.0.1", "docker", "info", "--format", "{{.ID}}"]
            deadline = time.monotonic() + 30
            while (answer := subprocess.run(probe, capture_output=True, text=True)).returncode != 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not answer: {answer.stderr} {(home / 'sshd.log').read_text()[-1500:]}")
                time.sleep(0.3)
            yield {"url": f"ssh://root@127.0.0.1:{port}", "ssh_args": ssh_args, "docker_host": host,
                   "engine_id": answer.stdout.strip(), "store": str(store), "ssh_config": home / "ssh_config"}
        finally:
            from envbuild.targets.ssh import control_path

            # envbuild's shared connection would outlive sshd for its ControlPersist time
            master = control_path(f"ssh://root@127.0.0.1:{port}", tuple(ssh_args))
            subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "exit", "-p", str(port), "root@127.0.0.1"],
                           capture_output=True, timeout=30)
            _stop(proc)
