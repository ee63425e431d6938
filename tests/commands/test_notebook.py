"""Dev groups and `envbuild notebook` on the real engine: Jupyter comes from a locked dev group into a
dev image (the training image plus one layer) without changing the training image; the server is
reached only on 127.0.0.1 with its token, a cell runs through the kernel websocket on the image's
interpreter, and the container still reaches nothing.

Heavy-ish: Jupyter Server and ipykernel are locked (about 75 pins) and installed once a module.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import REPO_ROOT, run_cli
from tests.helpers.locking import write_project

pytestmark = pytest.mark.docker

NAME = f"nb-test-{os.getuid()}-{os.getpid()}"
# soupsieve: the newest releases on the index publish no wheel (builds install wheels only)
DEV = ["jupyter-server", "ipykernel", "soupsieve<2.9"]


def envbuild(root: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = run_cli(*args, cwd=root)
    assert proc.returncode == expect, f"envbuild {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[dict]:
    """Locked and built without dev groups, then with Jupyter in a dev group: both training ids."""
    root = tmp_path_factory.mktemp("nb") / "proj"
    write_project(root, NAME, ["six==1.16.0"], base=base_image)
    (root / "requirements.in").unlink()
    deps = ", ".join(json.dumps(d) for d in DEV)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{NAME}"\nversion = "0"\ndependencies = ["six==1.16.0"]\n\n'
        f"[project.optional-dependencies]\ndev = [{deps}]\n\n{text}")
    envbuild(root, "lock")
    before = json.loads(envbuild(root, "build", "--json").stdout)["id"]
    lock_before = (root / "envbuild.lock").read_bytes()
    envbuild(root, "notebook", expect=2)  # no Jupyter in the lock yet: refused with the fix
    with open(root / "pyproject.toml", "a") as f:
        f.write('dev-groups = ["dev"]\n')
    assert "dev groups dev are not locked yet" in envbuild(root, "lock", "--check", expect=1).stderr
    envbuild(root, "lock")
    envbuild(root, "lock", "--check")
    after = json.loads(envbuild(root, "build", "--json").stdout)["id"]
    yield {"root": root, "before": before, "after": after, "lock_before": lock_before}
    tags = []  # this module's images only (its name is unique to it)
    for repo in (f"envbuild/{NAME}", f"envbuild/{NAME}-dev"):
        tags += subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repo],
                               capture_output=True, text=True).stdout.split()
    if tags:
        subprocess.run(["docker", "rmi", *tags], capture_output=True)


class Server:
    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "400"}
        self.proc = subprocess.Popen([sys.executable, "-m", "envbuild", "notebook", "--port", "0", "--json"],
                                     cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.up = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.lines.append(line)
            m = re.search(r"Jupyter is up: http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]+)", line)
            if m:
                self.port, self.token = int(m.group(1)), m.group(2)
                self.up.set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        return json.loads(out)


@pytest.fixture(scope="module")
def server(project: dict) -> Iterator[Server]:
    s = Server(project["root"])
    if not s.up.wait(900):
        s.proc.kill()
        pytest.fail("envbuild notebook did not come up:\n" + "".join(s.lines[-40:]))
    yield s
    if s.proc.poll() is None:
        s.proc.kill()


def execute(server: Server, code: str) -> str:
    """Run one cell on a new kernel through the Jupyter kernel websocket; its stdout."""
    import websocket

    kernel = requests.post(server.url("/api/kernels"), params={"token": server.token}, timeout=60).json()["id"]
    ws = websocket.create_connection(server.url(f"/api/kernels/{kernel}/channels").replace("http", "ws", 1)
                                     + f"?token={server.token}", timeout=120)
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": uuid.uuid4().hex,
                   "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out = []
    try:
        while True:
            msg = json.loads(ws.recv())
            if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError(f"the cell failed: {msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()


def test_dev_group_leaves_the_training_image_alone(project: dict):
    root = project["root"]
    assert project["after"] == project["before"]
    assert (root / "envbuild.lock").read_bytes() == project["lock_before"]
    dev_pins = (root / "requirements-dev.lock").read_text()
    assert re.search(r"^jupyter-server==", dev_pins, re.M) and not re.search(r"^six==", dev_pins, re.M)


def test_notebook_answers_on_loopback_with_its_token_and_runs_a_cell_in_the_image(server: Server):
    assert requests.get(server.url("/api/status"), params={"token": server.token}, timeout=30).status_code == 200
    assert requests.get(server.url("/api/status"), timeout=30).status_code == 403  # no token, no entry
    with pytest.raises(OSError):  # bound to 127.0.0.1 only: another loopback address finds nothing
        socket.create_connection(("127.0.0.2", server.port), timeout=5)
    out = execute(server, "import sys, os, six, jupyter_server; print(sys.executable, os.getcwd(), os.environ['ENVBUILD_SEED'])")
    assert out.split() == ["/opt/venv/bin/python", "/workspace", "1234"]


def test_the_notebook_container_still_reaches_nothing(server: Server):
    code = ("import os, socket\nprint(sorted(os.listdir('/sys/class/net')))\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {server.port}), timeout=5); print('reached')\n"
            "except OSError as e:\n    print(type(e).__name__)\n")
    assert execute(server, code).split() == ["['lo']", "ConnectionRefusedError"]
    names = subprocess.run(["docker", "ps", "--filter", "label=dev.envbuild.run", "--format", "{{.Names}}"],
                           capture_output=True, text=True).stdout.split()
    mine = [n for n in names if n.startswith(f"envbuild-{NAME}")]
    assert len(mine) == 1
    mode = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}", mine[0]],
                          capture_output=True, text=True).stdout.strip()
    assert mode == "none"


def test_the_notebook_session_is_recorded_with_the_dev_image_and_the_training_image(server: Server, project: dict):
    (project["root"] / "outputs").mkdir(exist_ok=True)
    execute(server, "open('outputs/from-notebook.txt', 'w').write('cell output')")
    record = server.stop()
    assert record["kind"] == "shell" and record["command"][:2] == ["jupyter", "server"]
    assert record["image"]["extends"]["id"] == project["before"] and record["image"]["id"] != project["before"]
    assert record["env"]["JUPYTER_TOKEN"] == "***" and server.token not in json.dumps(record)
    assert "outputs/from-notebook.txt" in {o["path"] for o in record["outputs"]}


def test_devcontainer_opens_the_dev_image_the_shell_records(project: dict):
    root = project["root"]
    written = json.loads(envbuild(root, "devcontainer", "--json").stdout)
    shell = run_cli("shell", "--json", cwd=root, input="")  # stdin at its end: bash ends at once
    assert shell.returncode == 0, shell.stderr
    record = json.loads(shell.stdout)
    assert record["kind"] == "shell" and written["image"] == record["image"]["id"]
    made = written["customizations"]["envbuild"]
    assert made["training_image_id"] == record["image"]["extends"]["id"] == project["before"]
    assert made["dev_hash"] == record["image"]["dev_hash"]
    envbuild(root, "lock", "--check")
