"""The Docker engine, driven through the `docker` CLI.

Why the CLI and not docker-py: envbuild writes its images itself (envbuild/oci), so what it asks
of an engine is small: `docker load` of a stream, a sandbox container with `diff` and `export`,
`inspect`, and `run` for training with the user's terminal. The CLI does each in one call, and it
is the one client that honours everything a user has set up: `docker context use`, DOCKER_HOST
(ssh:// included), DOCKER_CONFIG and its credential helpers. A second client (docker-py reads none
of the contexts) could load an image into one engine and run it on another. It also costs no import
on the start-up path.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import subprocess

from envbuild.errors import EngineError, last_line

FIX = "start it with `make docker-up` (Debian) or your Docker Desktop, then try again"


def docker_bin() -> str:
    path = shutil.which(os.environ.get("ENVBUILD_DOCKER", "docker"))
    if not path:
        raise EngineError(f"docker CLI not found on PATH; install Docker and {FIX}")
    return path


def docker(*args: str, check: bool = True, capture: bool = True, input: bytes | None = None,
           timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `docker ARGS`; on failure raise EngineError with docker's own last line. Not captured,
    docker's output goes to stderr (fd 2): stdout may be holding a command's --json answer."""
    import subprocess  # here: the no-op build and run's checks ask the socket and never start a process

    out = None if capture else 2
    proc = subprocess.run([docker_bin(), *args], capture_output=capture, stdout=out, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise EngineError(f"docker {args[0]} failed: {last_line(proc.stderr, f'exit {proc.returncode}')}")
    return proc


def server_version() -> str | None:
    """The engine's version, or None when no engine answers."""
    try:
        return _local_api("/version")["Version"]
    except (LookupError, KeyError, TypeError):
        pass
    try:
        proc = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
    except EngineError:
        return None
    out = proc.stdout.decode().strip()
    return out if proc.returncode == 0 and out else None


def require_engine() -> str:
    version = server_version()
    if version is None:
        raise EngineError(f"the Docker engine is not reachable; {FIX}")
    return version


def inspect_image(ref: str) -> dict[str, Any] | None:
    """`docker image inspect` of one image, or None when the engine has no such image."""
    try:
        return inspect_image_fast(ref)
    except LookupError:
        pass
    proc = docker("image", "inspect", ref, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def inspect_image_fast(ref: str) -> dict[str, Any] | None:
    """`docker image inspect` straight over the engine's socket; raises LookupError where it cannot answer."""
    import urllib.parse

    return _local_api(f"/images/{urllib.parse.quote(ref, safe='')}/json")


def _local_api(path: str) -> Any:
    """GET `path` of the Engine API over the local unix socket (a millisecond, where the CLI takes tens
    of them): only where the CLI would use that socket too (no DOCKER_HOST other than unix://, no
    context, the `docker` CLI itself). None for a 404; raises LookupError where it cannot answer, and the caller asks the CLI.
    Plain HTTP/1.0 on a socket: http.client (and the ssl and email modules it imports) would cost
    more start-up time than the request."""
    import socket

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    if not host.startswith("unix://") or os.environ.get("DOCKER_CONTEXT") or \
            os.environ.get("ENVBUILD_DOCKER", "docker") != "docker" or not shutil.which("docker") or \
            (config.is_file() and "currentContext" in config.read_text(errors="replace")):
        raise LookupError("not the plain local socket of the docker CLI")
    chunks = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(host[len("unix://"):])
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            while chunk := sock.recv(1 << 16):  # HTTP/1.0: the engine closes after the body
                chunks.append(chunk)
    except OSError as e:
        raise LookupError(str(e)) from None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status == [b"404"]:
        return None
    if status != [b"200"]:
        raise LookupError(f"engine answered {head[:40]!r}")
    return json.loads(body)


def image_exists(ref: str) -> bool:
    return inspect_image(ref) is not None


def run_args(image: str, command: Sequence[str], *, network: str = "none", rm: bool = True,
             options: Sequence[str] = ()) -> list[str]:
    """The argument list for `docker run` (envbuild run, apt resolution, tests): the network is
    always named; `options` go before the image."""
    return ["run", *(["--rm"] if rm else []), "--network", network, *options, image, *command]


# What `docker run --gpus` needs on the host: the NVIDIA container toolkit (any of its binaries).
NVIDIA_TOOLKIT = ("nvidia-container-cli", "nvidia-container-runtime-hook", "nvidia-ctk")


def nvidia_toolkit() -> str | None:
    """The path of an NVIDIA container toolkit binary on PATH, or None."""
    return next((p for p in map(shutil.which, NVIDIA_TOOLKIT) if p), None)


def nvidia_runtime() -> bool:
    """Whether `docker run --gpus` can work here: the toolkit is installed, or the engine lists an
    nvidia runtime (asked only when the toolkit is not on PATH)."""
    if nvidia_toolkit():
        return True
    try:
        proc = docker("info", "--format", "{{json .Runtimes}}", check=False)
    except EngineError:
        return False
    return b"nvidia" in proc.stdout
