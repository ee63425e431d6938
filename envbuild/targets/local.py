"""The local target: `docker run` on the engine the docker CLI points at, the project bind-mounted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import IO, Any

from envbuild import engine, store
from envbuild.errors import EngineError, EnvbuildError, last_line
from envbuild.spec import ENV_NAME
from envbuild.targets import CONTAINER_RUN_DIR, RUN_IO_DIR, WORKDIR, Job, Outcome, Stopper, Target, stream

ENGINE_FAILED = "engine-failed"  # how a record's reason starts when the engine died under the run


def cli_setting(name: str) -> bool:
    """Whether the docker CLI itself reads this variable (HOME finds ~/.docker, DOCKER_HOST/CONTEXT/
    CONFIG pick the engine): a container value for it must not replace the user's in the CLI's
    environment. Secret-looking names are not among them (the CLI reads none such)."""
    from envbuild.provenance import is_secret_name

    return name in ("HOME", "PATH") or (name.startswith("DOCKER_") and not is_secret_name(name))


def cli_env(env: dict[str, str]) -> dict[str, str]:
    """The docker CLI's environment: the user's own, plus the container values passed by name."""
    return {**os.environ, **{k: v for k, v in env.items() if not cli_setting(k)}}


# docker's default detach keys (ctrl-p,ctrl-q) would eat Ctrl-P in a shell and leave a detached
# container with no one to finish its record: a sequence nobody types instead.
DETACH_KEYS = "ctrl-_,ctrl-_,ctrl-_"

# The engine takes most of a second to start a container (namespaces, mounts, the runtime), longer
# than envbuild takes to record the code and data a run starts from. So a run without our stdin
# starts its container first, with the command behind this gate, and records meanwhile: the gate
# waits for one line on stdin, and the command runs only once envbuild has sent "go" (its record
# of the starting state done). If envbuild fails or dies first, stdin closes, `read` fails and the
# container ends without running anything. The command then gets a closed stdin, as /dev/null is.
GATE = 'read -r envbuild_gate && [ "$envbuild_gate" = go ] && unset PWD envbuild_gate && exec "$@"'
GATE_NAME = "envbuild-gate"  # the gate's $0, in the messages sh gives (a command not found)
# sh passes on the environment unchanged except for these: names that are no identifiers (dropped),
# the variables it sets itself (PWD, unset again above; PPID, OPTIND, IFS) and the gate's own. A run
# that sets any of them goes without the gate, so its command sees exactly what docker gives.
_SHELL_OWN = {"PWD", "PPID", "OPTIND", "IFS", "envbuild_gate"}


def gate_keeps_env(names: Any) -> bool:
    return all(ENV_NAME.match(n) and n not in _SHELL_OWN for n in names)


def docker_args(name: str, image: str, command: list[str], env: dict[str, str], network: str,
                gpus: str | None, root: Path, run_dir: Path, stdin: str | None = None,
                mounts: list[tuple[Path, str]] = (), entrypoint: str | None = None) -> list[str]:
    """`docker run ...`: env values travel in the CLI's environment (`-e NAME`), never in argv;
    only the CLI's own settings (cli_setting: HOME=/tmp and the like, never secrets) go as NAME=VALUE.
    `stdin` (runner.stdin_mode): "pipe" passes ours (-i), "tty" also gives the container a terminal (-t)."""
    state = store.state_dir(root)
    io = {"tty": ["-i", "-t", "--detach-keys", DETACH_KEYS], "pipe": ["-i"]}.get(stdin or "", [])
    options = [*io, "--init", "--name", name, "--label", f"dev.envbuild.run={name}",
               "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{root}:{WORKDIR}", "-w", WORKDIR,
               "-v", f"{state}:{WORKDIR}/{state.name}:ro", "-v", f"{run_dir / RUN_IO_DIR}:{CONTAINER_RUN_DIR}"]
    for host, inside in mounts:
        options += ["-v", f"{host}:{inside}"]
    for k, v in env.items():
        options += ["-e", f"{k}={v}" if cli_setting(k) else k]
    if gpus:
        options += ["--gpus", gpus]
    if entrypoint:
        options += ["--entrypoint", entrypoint]
    return engine.run_args(image, command, network=network, options=options)


def terminal_run(args: list[str], env: dict[str, str], run_dir: Path, stopper: Stopper) -> int:
    """`docker run -it` on the user's own terminal: docker puts it in raw mode, so Ctrl-C reaches
    the container's foreground process as in a local one, and docker (in our process group) gets
    SIGWINCH and resizes the container's terminal. Nothing is captured: the screen mixes what was
    typed (a password, a token) with what was printed, so stdout.log/stderr.log stay empty."""
    from envbuild import record as rec

    for name in (rec.STDOUT_LOG, rec.STDERR_LOG):
        (run_dir / name).touch()
    stopper.started = True
    proc = subprocess.Popen([engine.docker_bin(), *args], env=cli_env(env))
    try:
        return proc.wait()
    finally:
        stopper.done.set()


def start_docker(args: list[str], env: dict[str, str], stdin: Any) -> subprocess.Popen:
    # own session: a terminal's Ctrl-C reaches envbuild only, which stops the container itself
    try:
        return subprocess.Popen([engine.docker_bin(), *args], stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=cli_env(env), start_new_session=True)
    except OSError as e:
        raise EngineError(f"docker run could not start: {e}") from None


def container_run(args: list[str], env: dict[str, str], run_dir: Path, stopper: Stopper,
                  out: IO[bytes], err: IO[bytes], stdin: str | None = None,
                  held: subprocess.Popen | None = None) -> int:
    """Run docker with our stdin passed on (or let a `held` one through its gate) and stream its
    output live to the terminal and to stdout.log/stderr.log."""
    from envbuild import record as rec

    with open(run_dir / rec.STDOUT_LOG, "wb") as out_log, open(run_dir / rec.STDERR_LOG, "wb") as err_log:
        stopper.started = True
        proc = held or start_docker(args, env, None if stdin else subprocess.DEVNULL)
        go = b"" if stopper.signum is not None else b"go\n"  # stopped already: the gate closes unopened
        return stream(proc, [out_log, out], [err_log, err], stopper, feed=go if held else None)


class LocalTarget(Target):
    backend = "local"

    def __init__(self, name: str, settings: dict[str, Any] | None = None) -> None:
        super().__init__(name, settings)
        self._held: dict[str, subprocess.Popen] = {}  # started jobs at their gate, by name

    def _args(self, job: Job, held: bool) -> list[str]:
        command = ["-c", GATE, GATE_NAME, *job.entrypoint, *job.command] if held else job.command
        return docker_args(job.name, job.image, command, job.env, job.network, job.gpus, job.root, job.run_dir,
                           "pipe" if held else job.stdin, job.mounts, entrypoint="/bin/sh" if held else None)

    def placement(self) -> dict[str, Any]:
        return {**super().placement(), "host": socket.gethostname(), "nodes": [socket.gethostname()]}

    def choose_gpus(self, spec: Any, wanted: str | None) -> str | None:
        """--gpus must be honoured (error when impossible); the spec's gpus only where the host has them."""
        if wanted is not None:
            chosen = None if wanted in ("none", "0") else wanted
            if chosen and not engine.nvidia_runtime():
                raise EnvbuildError(f"--gpus {wanted}: this Docker engine has no NVIDIA runtime; install the "
                                    "NVIDIA Container Toolkit, or run without --gpus")
            return chosen
        gpus = self.settings.get("gpus", spec.gpus)
        if gpus and not engine.nvidia_runtime():
            from envbuild.output import info

            info(f"note: {spec.source.name} asks for gpus = {gpus!r} but this engine has no NVIDIA runtime; "
                 "running on CPU")
            return None
        return gpus

    def start(self, job: Job) -> None:
        # not with our stdin or terminal (the container reads them from its start), nor in an image
        # given with --image (it may have no /bin/sh; every base envbuild builds on has one)
        if job.stdin is None and job.from_lock and gate_keeps_env([*job.env, *job.image_env]):
            self._held[job.name] = start_docker(self._args(job, held=True), job.env, subprocess.PIPE)

    def abandon(self, job: Job) -> None:
        held = self._held.pop(job.name, None)
        if held is None:
            return
        try:
            held.communicate(timeout=60)  # closes its stdin: the gate ends, the command unrun
        except subprocess.TimeoutExpired:  # the engine hangs: take the container away
            held.kill()
            held.wait()
            engine.docker("rm", "--force", job.name, check=False)

    def kill(self, job: Job, signame: str) -> None:
        engine.docker("kill", "--signal", signame, job.name, check=False)

    def run(self, job: Job, stopper: Stopper, out: IO[bytes], err: IO[bytes]) -> Outcome:
        from envbuild import record as rec

        job.placement["job_id"] = job.name  # the container's name
        held = self._held.get(job.name)  # left for abandon() until it has ended here
        args = self._args(job, held is not None)
        try:
            if job.stdin == "tty":  # Ctrl-C is the container's own (a raw terminal); SIGTERM still stops it
                signal.signal(signal.SIGINT, lambda *_: None)  # a handler, not SIG_IGN: docker must not inherit it
                code = terminal_run(args, job.env, job.run_dir, stopper)
            else:
                code = container_run(args, job.env, job.run_dir, stopper, out, err, job.stdin, held)
        except OSError as e:
            raise EngineError(f"docker run could not start: {e}") from None
        self._held.pop(job.name, None)
        if stopper.signum is None and code != 0 and engine.server_version() is None:  # the engine went away
            return Outcome("failed", code, f"{ENGINE_FAILED}: the Docker engine stopped during the run "
                                           f"(docker exited {code}); start the engine and run again")
        if code == 125 and not (job.run_dir / rec.STDOUT_LOG).stat().st_size:
            # docker's own failure (bad option, missing runtime): say docker's last line
            last = last_line((job.run_dir / rec.STDERR_LOG).read_text(errors="replace"), f"exit {code}")
            return Outcome("failed", code, f"docker run failed: {last}")
        return Outcome("succeeded" if code == 0 else "failed", code, None)
