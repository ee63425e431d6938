"""`envbuild notebook`: Jupyter in the locked (dev) image, reachable on the host's loopback only.

The container keeps `--network none`: Jupyter Server listens on a unix socket (`--sock`) in a
directory mounted from the host, and envbuild forwards 127.0.0.1:PORT to that socket. So it works
on engines with no bridge network, nothing but this host's loopback can reach the server, and the
container itself still reaches nothing. The token travels in the container's environment
(JUPYTER_TOKEN: a secret-looking name, so the record redacts it), never in argv.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path

from envbuild.errors import EnvbuildError
from envbuild.lockfile import EnvLock, read_pip_lock
from envbuild.spec import Spec

SOCKET_DIR = "/envbuild/jupyter"  # in the container
SOCKET_NAME = "jupyter.sock"
SERVER = "jupyter-server"  # the package that makes `jupyter server --sock` work
KERNEL = "ipykernel"
# the front end to start, first found in the lock (each brings jupyter-server)
FRONT_ENDS = (("jupyterlab", "lab"), ("notebook", "notebook"), (SERVER, "server"))


def locked_packages(spec: Spec) -> set[str]:
    """Canonical names of every pip pin the notebook's image has: training and dev."""
    from envbuild.dev import DEV_LOCK
    from envbuild.wheelhouse import canonical, parse_requirements_lock

    names = {canonical(p.name) for p in read_pip_lock(spec.root)}
    if spec.dev_groups and (spec.root / DEV_LOCK).is_file():
        names |= {canonical(p.name) for p in parse_requirements_lock(spec.root / DEV_LOCK)}
    return names


def command(spec: Spec) -> list[str]:
    """`jupyter <front end> --sock ...`, refused with the fix when the lock has no Jupyter."""
    names = locked_packages(spec)
    missing = [n for n in (SERVER, KERNEL) if n not in names]
    if missing:
        raise EnvbuildError(
            f"{spec.source}: the lock has no {' or '.join(missing)}, so there is no Jupyter to start; add them to a "
            'dev group: [project.optional-dependencies] dev = ["jupyter-server", "ipykernel"] (or "jupyterlab") '
            'and dev-groups = ["dev"] under [tool.envbuild], then run envbuild lock')
    sub = next(cmd for pkg, cmd in FRONT_ENDS if pkg in names)
    # --allow-root: the container runs as the caller, who may be root (Jupyter refuses that otherwise)
    return ["jupyter", sub, "--no-browser", "--allow-root", f"--sock={SOCKET_DIR}/{SOCKET_NAME}",
            "--ServerApp.root_dir=/workspace"]


def socket_dir() -> Path:
    """A short host directory for the socket (a unix socket path is at most 107 bytes), only ours."""
    return Path(tempfile.mkdtemp(prefix="envbuild-nb-"))


def new_token() -> str:
    return secrets.token_hex(24)


def listen(port: int) -> socket.socket:
    """The loopback listener, bound before anything starts: a taken port fails at once."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", port))
    except OSError as e:
        server.close()
        raise EnvbuildError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); pass another --port, "
                            "or --port 0 for any free one") from None
    server.listen(64)
    return server


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _connect(client: socket.socket, path: Path) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(str(path))
    except OSError:
        client.close()  # the server is not up (yet, or any more): the browser retries
        upstream.close()
        return
    threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
    _pump(client, upstream)
    client.close()
    upstream.close()


def forward(server: socket.socket, path: Path, stop: threading.Event) -> None:
    """Accept on the loopback listener until `stop`; each connection is piped to the unix socket."""
    server.settimeout(0.5)
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        threading.Thread(target=_connect, args=(client, path), daemon=True).start()
    server.close()


def wait_ready(path: Path, stop: threading.Event, timeout: float = 300) -> bool:
    """True once Jupyter answers on its socket; False when stopped or out of time."""
    import http.client

    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        if path.exists():
            conn = http.client.HTTPConnection("localhost", timeout=5)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                conn.sock = sock
                conn.request("GET", "/api")
                if conn.getresponse().status == 200:
                    return True
            except OSError:
                pass
            finally:
                conn.close()
        stop.wait(0.3)
    return False


def cleanup(directory: Path) -> None:
    for child in directory.iterdir():
        try:
            child.unlink()
        except OSError:
            pass
    try:
        os.rmdir(directory)
    except OSError:
        pass


def require_image_has_jupyter(spec: Spec, lock: EnvLock) -> list[str]:
    """The dev lock fresh (when there are dev groups) and Jupyter in it: the command to run."""
    from envbuild.dev import require_fresh

    if spec.dev_groups:
        require_fresh(spec, lock)
    return command(spec)
