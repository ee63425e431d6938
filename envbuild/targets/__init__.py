"""Where a run happens: one interface (`Target`), one backend per kind, and the registry that picks one.

The runner does everything a record needs (spec, lock, image, code, data, env) the same way for every
target, then hands a `Job` to the target, which runs it where it runs and says how it ended
(`Outcome`). Each backend fills the record's `placement` section (backend, target name, host or
cluster, job id, nodes, GPUs seen there) in `job.placement`.

Backends: local.py (the Docker engine of this machine, the default), slurm.py (sbatch + srun
--container with an OCI bundle), k8s.py (a batch/v1 Job through the kubernetes client), ssh.py (a
remote Docker engine over ssh: code and data shipped content-addressed). A spec names targets in `[tool.envbuild.targets.NAME]` (or
`[targets.NAME]` in envbuild.toml) and `envbuild run --on NAME` picks one; a backend's own name
(`--on slurm`) works without a table, with that backend's defaults.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, ClassVar

from envbuild.errors import EnvbuildError

WORKDIR = "/workspace"  # where the project is mounted in the container
# The run's records must not be writable by the run: the project's .envbuild is mounted read-only
# over itself, and the run writes (envbuild.track, the seeding hook) into a directory of its own,
# mounted here, from which envbuild takes only the files it reads (runner.RUN_OUTPUT_FILES).
CONTAINER_RUN_DIR = "/envbuild/run"
RUN_IO_DIR = "container"  # that directory, inside the run dir on the host
DEFAULT = "local"


@dataclass
class Job:
    """One run, ready to go: everything a backend needs, already decided by the runner."""

    name: str  # unique: container name, Slurm job name
    run_id: str
    image: str  # the ref the local engine knows
    image_id: str  # config digest: the image's identity on every machine
    command: list[str]
    env: dict[str, str]  # the container's variables (values never go into argv)
    network: str
    gpus: str | None
    root: Path  # the project
    run_dir: Path
    spec: Any  # envbuild.spec.Spec
    lock: Any  # envbuild.lockfile.EnvLock | None (None when run with --image)
    repo_digest: str | None = None  # repo@sha256:... where the image was pushed (pulled by digest elsewhere)
    image_env: dict[str, str] = field(default_factory=dict)  # the image's own ENV (PATH, ...)
    entrypoint: list[str] = field(default_factory=list)  # the image's own ENTRYPOINT, run before the command
    stdin: str | None = None  # runner.stdin_mode: "tty", "pipe" or None (local engine only)
    mounts: list[tuple[Path, str]] = field(default_factory=list)  # more (host dir, container dir), read-write
    from_lock: bool = True  # the lock's own image (envbuild can write it again); False: a given --image
    placement: dict[str, Any] = field(default_factory=dict)  # the record's placement section


@dataclass(frozen=True)
class Outcome:
    status: str  # one of record.STATUSES
    exit_code: int | None
    reason: str | None = None


class Target(ABC):
    """A place runs go. Subclasses set `backend` and `options` (the keys their table takes)."""

    backend: ClassVar[str]
    options: ClassVar[dict[str, Callable[[Path, str, Any], Any]]] = {}
    can_detach: ClassVar[bool] = False

    def __init__(self, name: str, settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self.settings = settings or {}

    def placement(self) -> dict[str, Any]:
        """The placement section before the job runs (what is known from the spec)."""
        return {"backend": self.backend, "target": self.name, "host": None, "cluster": None, "job_id": None,
                "nodes": [], "gpus": [], "state": None, "detached": False}

    def choose_gpus(self, spec: Any, wanted: str | None) -> str | None:
        """The GPUs this run asks for (--gpus, else the target's, else the spec's)."""
        return wanted if wanted is not None else self.settings.get("gpus", spec.gpus)

    def prepare(self, job: Job, say: Callable[[str], None]) -> None:
        """Make what the job needs there (a bundle, a pushed image); the default: nothing."""

    def start(self, job: Job) -> None:
        """Get the job ready to go with its command held back, while the runner records the state
        it starts from; `run` lets the command go, `abandon` ends it unrun. The default: nothing
        (`run` starts the job)."""

    def abandon(self, job: Job) -> None:
        """The run will not come (the runner failed or was stopped first): end a started job unrun."""

    @abstractmethod
    def run(self, job: Job, stopper: "Stopper", out: IO[bytes], err: IO[bytes]) -> Outcome:
        """Run the job, stream its output to `out`/`err` and into the run dir's logs, wait, say how it ended."""

    def host_facts(self, local: dict[str, Any]) -> dict[str, Any]:
        """The record's host section, asked after prepare: this machine's (`local`), or the remote one's."""
        return local

    def kill(self, job: Job, signame: str) -> None:
        """Send the job a signal (SIGINT/SIGTERM, then KILL): called from the stopper's thread."""

    def doctor(self, spec: Any) -> list[Any]:
        """`envbuild doctor --on NAME`: checks.Check rows for this target (reachable, answers, GPUs, image)."""
        return []

    def render(self, job: Job) -> str:
        """What would be submitted (--dry-run)."""
        raise EnvbuildError(f"--dry-run: the {self.backend} target has nothing to print; run without --dry-run")

    def submit(self, job: Job) -> None:
        """Start the job and return at once (--detach); job.placement gets its id."""
        raise EnvbuildError(f"--detach: the {self.backend} target runs attached only; run without --detach")

    def poll(self, placement: dict[str, Any]) -> Outcome | None:
        """How a detached job ended, or None while it runs."""
        return None

    def collect(self, job_root: Path, run_dir: Path, placement: dict[str, Any]) -> None:
        """Bring what the run wrote for envbuild into run_dir/container (before the runner reads it)."""


class Stopper:
    """SIGINT/SIGTERM while a run is on: the target stops the job (the same signal, then a kill)."""

    GRACE_S = 10  # after the first signal, how long the script gets before it is killed

    def __init__(self, kill: Callable[[str], None]) -> None:
        self.kill = kill
        self.signum: int | None = None
        self.started = False  # set once the job is started
        self.done = threading.Event()

    def handle(self, signum: int, frame: Any) -> None:
        again = self.signum is not None
        self.signum = signum
        if not self.started:
            raise KeyboardInterrupt
        threading.Thread(target=self._stop, args=(signum, again), daemon=True).start()

    def _stop(self, signum: int, now: bool) -> None:
        import signal

        sig = "KILL" if now else signal.Signals(signum).name
        deadline = time.monotonic() + self.GRACE_S
        while not self.done.is_set():  # retry: the job may not exist yet
            if time.monotonic() > deadline:
                sig = "KILL"
            self.kill(sig)
            if sig == "KILL" and self.done.wait(1):
                return
            self.done.wait(0.5 if sig == "KILL" else self.GRACE_S / 4)


def pump(src: IO[bytes], sinks: list[IO[bytes]]) -> None:
    """Copy a pipe to every sink until it closes."""
    fd = src.fileno()
    while chunk := os.read(fd, 65536):
        write_all(sinks, chunk)


def stream(proc: Any, outs: list[IO[bytes]], errs: list[IO[bytes]], stopper: Stopper,
           feed: bytes | None = None) -> int:
    """Copy a running process's stdout and stderr to their sinks while it runs (after writing
    `feed` to its stdin, if given); its exit code. The stopper knows when it has ended."""
    import threading

    pumps = [threading.Thread(target=pump, args=(proc.stdout, outs), daemon=True),
             threading.Thread(target=pump, args=(proc.stderr, errs), daemon=True)]
    for t in pumps:
        t.start()
    if feed is not None:
        try:
            proc.stdin.write(feed)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it ended before reading it all: its exit code says why
    try:
        code = proc.wait()
    finally:
        stopper.done.set()
    for t in pumps:
        t.join()
    return code


def write_all(sinks: list[IO[bytes]], chunk: bytes) -> None:
    for s in sinks:
        try:
            s.write(chunk)
            s.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the log file


# --- the registry ------------------------------------------------------------------------------


def backends() -> dict[str, type[Target]]:
    """Every backend by name (imported here, so a module is loaded only when asked for)."""
    from envbuild.targets.k8s import K8sTarget
    from envbuild.targets.local import LocalTarget
    from envbuild.targets.slurm import SlurmTarget
    from envbuild.targets.ssh import SshTarget

    return {t.backend: t for t in (LocalTarget, SlurmTarget, K8sTarget, SshTarget)}


def get(spec: Any, name: str | None) -> Target:
    """The target `--on NAME` means: a table of the spec, else a backend by its own name."""
    name = name or DEFAULT
    table = spec.targets.get(name)
    remote = os.environ.get("DOCKER_HOST", "")
    if name == DEFAULT and remote.startswith("ssh://"):
        # the build's helper containers bind-mount this machine's files too: it must run on a local engine
        raise EnvbuildError(f"DOCKER_HOST={remote}: envbuild builds and runs with bind mounts of this machine's "
                            "files, which a remote engine cannot see; unset DOCKER_HOST (build on this machine's "
                            f"engine) and add [tool.envbuild.targets.box] with backend = \"ssh\" and host = \"{remote}\" "
                            f"to {spec.source.name}, then: envbuild run --on box")
    if table is None and name == DEFAULT:  # the common case imports only its own backend
        from envbuild.targets.local import LocalTarget

        return LocalTarget(name, {})
    kinds = backends()
    if table is not None:
        return kinds[table["backend"]](name, table)
    if name in kinds:
        return kinds[name](name, {})
    known = sorted({*spec.targets, *kinds})
    raise EnvbuildError(f"--on {name}: no such target in {spec.source.name}; use one of {', '.join(known)}, "
                        f"or add [tool.envbuild.targets.{name}] with backend = \"slurm\" (or another backend)")
