"""envbuild notebook: Jupyter in the locked image, on the host's loopback only."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def notebook(
    port: int = typer.Option(8888, "--port", "-p", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."),
    json_out: bool = options.json_out("the session's record when it ends"),
    project: Path = options.project("Project directory."),
) -> None:
    """Serve Jupyter from the project's locked image (its dev image, with dev groups) on 127.0.0.1:PORT.

    Jupyter must be in the lock: put jupyter-server and ipykernel (or jupyterlab) in a dev group, e.g. [project.optional-dependencies] dev = ["jupyterlab", "ipykernel"] with dev-groups = ["dev"] under [tool.envbuild], then envbuild lock. The training image does not change for it.

    The container keeps its network (none by default): Jupyter listens on a unix socket in a mounted directory and envbuild forwards 127.0.0.1:PORT to it, so only this host's loopback reaches the server. The URL with its token is printed when the server answers.

    Ctrl-C stops the server. A record of kind "shell" is kept (image digests, lock hash, the spec's outputs checksummed at the end), so `envbuild trace` finds the environment of a file a notebook wrote.

    Examples: envbuild notebook · envbuild notebook --port 9999 -C ~/proj
    """
    import sys
    import threading

    from envbuild import image, notebook as nb, record as rec, runner
    from envbuild.commands.shell import session_ended
    from envbuild.output import info
    from envbuild.spec import load_spec

    spec = load_spec(project)
    lock = image.require_fresh_lock(spec, fix="run envbuild lock")
    cmd = nb.require_image_has_jupyter(spec, lock)
    listener = nb.listen(port)
    port = listener.getsockname()[1]
    token = nb.new_token()
    where = nb.socket_dir()
    sock = where / nb.SOCKET_NAME
    stop = threading.Event()

    def announce() -> None:
        if nb.wait_ready(sock, stop):
            info(f"Jupyter is up: http://127.0.0.1:{port}/?token={token}", markup=False)
            info("(only this host's loopback reaches it; Ctrl-C stops it)", markup=False)

    threading.Thread(target=nb.forward, args=(listener, sock, stop), daemon=True).start()
    threading.Thread(target=announce, daemon=True).start()
    req = runner.RunRequest(command=cmd, kind=rec.KIND_SHELL, dev=True, stdin=False, env={"JUPYTER_TOKEN": token},
                            mounts=[(where, nb.SOCKET_DIR)], stdout=sys.stderr.buffer)
    try:
        run_dir, record = runner.run(project, req)
    finally:
        stop.set()
        nb.cleanup(where)
    session_ended("notebook", run_dir, record, json_out)
