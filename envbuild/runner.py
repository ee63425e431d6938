"""`envbuild run`: the locked image, the project mounted, seeds fixed, and a record of it all.

The record is written when the run starts (status "running") and again when it ends, whatever the
ending: succeeded, failed (the script's exit code, or the reason the engine failed), interrupted
(SIGINT/SIGTERM; the container is stopped first).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from envbuild import chain, engine, image, manifest, nvidia, provenance, record as rec, store
from envbuild.errors import EngineError, EnvbuildError, last_line
from envbuild.image import ImageFacts
from envbuild.fsutil import sha256_file
from envbuild.secrets import Masker, is_secret_name
from envbuild.lockfile import ENVBUILD_LOCK, EnvLock, lock_path, read_conda_lock, read_lock, read_pip_lock, staleness
from envbuild.spec import Spec, load_spec

WORKDIR = "/workspace"  # where the project is mounted in the container
# The run's records must not be writable by the run: the project's .envbuild is mounted read-only
# over itself, and the run writes (envbuild.track, the seeding hook) into a directory of its own,
# mounted here, from which envbuild takes only the files it reads (RUN_OUTPUT_FILES).
CONTAINER_RUN_DIR = "/envbuild/run"
RUN_IO_DIR = "container"  # that directory, inside the run dir on the host
RUN_OUTPUT_FILES = (rec.METRICS_FILE, rec.PARAMS_FILE, rec.SETTINGS_FILE, rec.METRICS_JSON, rec.CUDA_FILE)
CONTAINER_HOME = "/tmp"  # writable for any --user uid, which has no home in the image
ENGINE_FAILED = "engine-failed"  # how a record's reason starts when the engine died under the run
STOP_GRACE_S = 10  # after the first signal, how long the script gets before it is killed
DETERMINISM_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NVIDIA_TF32_OVERRIDE": "0",
                   # NGC images set it to 1; torch reads "0" as unset (docker run cannot unset a variable)
                   "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "0"}


# --- the lock and build stages ------------------------------------------------------------


def resolve_image(spec: Spec, lock: EnvLock) -> ImageFacts:
    """The image of this lock, built when missing (its facts come from the build's own inspect)."""
    from envbuild.output import info

    return image.build(spec, lock, log=info).facts


def _say(msg: str) -> None:
    from envbuild.output import info

    info(msg, markup=False)


def relock(spec: Spec) -> None:
    """`envbuild lock` for the project (used by `run --relock`); what it says goes to stderr, so
    `run --json` keeps stdout for the record."""
    from envbuild.locker import lock_project
    from envbuild.output import info

    outcome = lock_project(spec, step=info)
    info(f"locked ({'; '.join(outcome.reasons)}): lock hash {outcome.lock.lock_hash[:12]}", markup=False)


def current_lock(spec: Spec, relock_if_stale: bool) -> EnvLock:
    """The fresh lock (the same refusal as `envbuild build`), relocked first when asked."""
    if relock_if_stale and staleness(spec, read_lock(spec.root)):
        relock(spec)
    return image.require_fresh_lock(spec, fix="run envbuild lock, or envbuild run --relock")


# --- the lock part of the record -------------------------------------------------------------


def locked_packages(root: Path, lock: EnvLock) -> dict[str, str]:
    """{name: version} of every pin in conda-lock.yml, then requirements.lock, then the Debian
    packages as `deb:<name>`, so `envbuild diff` names an apt change like any other package."""
    packages = {p.name: p.version for p in read_conda_lock(root)}
    packages.update((p.name.split("[", 1)[0].lower(), p.version) for p in read_pip_lock(root))
    packages.update((f"deb:{name}", version) for name, version in lock.system_packages.items())
    return packages


def lock_facts(root: Path, lock: EnvLock, run_dir: Path) -> dict[str, Any]:
    """The record's lock section; the lockfiles are copied into the run dir."""
    copies = run_dir / rec.LOCK_DIR
    copies.mkdir(exist_ok=True)
    for name in (ENVBUILD_LOCK, *lock.lockfiles):
        if (root / name).is_file():
            shutil.copy2(root / name, copies / Path(name).name)
    return {
        "envbuild_lock_sha256": sha256_file(lock_path(root)),
        "lock_hash": lock.lock_hash,
        "inputs_hash": lock.inputs_hash,
        "lockfiles": dict(lock.lockfiles),
        "packages": locked_packages(root, lock),
    }


def manifest_digest(image_id: str, repo_digest: str | None) -> str | None:
    """The image's manifest digest: as envbuild wrote it (known before any push), else as pulled."""
    from envbuild.oci.blobs import Store

    written = Store.default().manifest_digest(image_id)
    if written is not None:
        return written
    return repo_digest.split("@", 1)[1] if repo_digest and "@" in repo_digest else None


def image_facts(root: Path, facts: ImageFacts, lock: EnvLock | None) -> dict[str, Any]:
    """The record's image section."""
    ref, labels = facts.ref, facts.labels
    lock_hash = lock.lock_hash if lock else labels.get(image.LABEL_LOCK_HASH)
    repo_digest = ref if "@sha256:" in ref else (image.pushed_digest(root, lock_hash) if lock_hash else None)
    if repo_digest is None:
        repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        digests = facts.repo_digests
        repo_digest = next((d for d in digests if d.split("@")[0] == repo), digests[0] if digests else None)
    from envbuild.attest import recorded

    digest = manifest_digest(facts.id, repo_digest)
    return {
        "ref": ref,
        "id": facts.id,
        "digest": digest,
        "provenance": recorded(root, digest),
        "repo_digest": repo_digest,
        "base": lock.base.tag if lock else labels.get("dev.envbuild.base"),
        "base_digest": lock.base.digest if lock else labels.get(image.LABEL_BASE_DIGEST),
        "lock_hash": lock_hash,
    }


# --- the run -----------------------------------------------------------------------------------


@dataclass
class RunRequest:
    command: list[str]  # argv inside the container
    seed: int | None = None  # None: the spec's
    gpus: str | None = None  # None: the spec's (when the host has GPUs)
    network: str | None = None  # None: the spec's
    env: dict[str, str] = field(default_factory=dict)  # --env K=V, over the spec's env
    image: str | None = None  # a given ref instead of the lock's image
    relock: bool = False
    stdout: IO[bytes] | None = None  # where the script's stdout streams (default: our stdout)
    stderr: IO[bytes] | None = None
    kind: str = rec.KIND_RUN  # the record's kind: "run", or "shell" (envbuild shell)
    dev: bool = False  # run in the dev image (the spec's dev groups over the training image), when it has some
    stdin: bool = True  # False: the container gets no stdin (a server)
    mounts: list[tuple[Path, str]] = field(default_factory=list)  # (host dir, container dir), read-write
    tty: bool | None = None  # None: a terminal when our stdin and stdout are terminals (docker run -it)


def _foreground() -> bool:
    """Whether we hold our terminal's foreground (not `envbuild run ... &`, which must not read it)."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def stdin_mode(req: RunRequest) -> str | None:
    """How the container gets our stdin: "tty" (`docker run -it`: stdin and stdout are terminals
    we hold, stdout not redirected by --json), "pipe" (`-i`: data piped in, or a terminal without
    a terminal stdout), None (no stdin: a background job must not steal its shell's input)."""
    stdin_tty = os.isatty(0)
    if not req.stdin or (stdin_tty and not _foreground()):
        return None
    if req.tty is not None:
        return "tty" if req.tty and stdin_tty else "pipe"
    mine = req.stdout is None and req.stderr is None
    return "tty" if stdin_tty and mine and os.isatty(1) else "pipe"


def container_env(spec: Spec, req: RunRequest, seed: int, run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """(everything set in the container, the determinism part of it)."""
    determinism = {"PYTHONHASHSEED": str(seed), "ENVBUILD_SEED": str(seed),
                   "ENVBUILD_DETERMINISTIC": "1" if spec.deterministic else "0"}
    if spec.deterministic:
        determinism.update(DETERMINISM_ENV)
    env = {**spec.env, **req.env, "HOME": CONTAINER_HOME, "PYTHONUNBUFFERED": "1", **determinism,
           "ENVBUILD_RUN_ID": run_id, "ENVBUILD_RUN_DIR": CONTAINER_RUN_DIR}
    return env, determinism


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


def docker_args(name: str, image: str, command: list[str], env: dict[str, str], network: str,
                gpus: str | None, root: Path, run_dir: Path, stdin: str | None = None,
                mounts: list[tuple[Path, str]] = ()) -> list[str]:
    """`docker run ...`: env values travel in the CLI's environment (`-e NAME`), never in argv;
    only the CLI's own settings (cli_setting: HOME=/tmp and the like, never secrets) go as NAME=VALUE.
    `stdin` (stdin_mode): "pipe" passes ours (-i), "tty" also gives the container a terminal (-t)."""
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
    return engine.run_args(image, command, network=network, options=options)


class _Stopper:
    """SIGINT/SIGTERM while a run is on: stop the container (the same signal, then a kill)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signum: int | None = None
        self.container = False  # set once `docker run` is started
        self.done = threading.Event()

    def handle(self, signum: int, frame: Any) -> None:
        again = self.signum is not None
        self.signum = signum
        if not self.container:
            raise KeyboardInterrupt
        threading.Thread(target=self._stop, args=(signum, again), daemon=True).start()

    def _stop(self, signum: int, now: bool) -> None:
        sig = "KILL" if now else signal.Signals(signum).name
        deadline = time.monotonic() + STOP_GRACE_S
        while not self.done.is_set():  # retry: the container may not exist yet
            if time.monotonic() > deadline:
                sig = "KILL"
            engine.docker("kill", "--signal", sig, self.name, check=False)
            if sig == "KILL" and self.done.wait(1):
                return
            self.done.wait(0.5 if sig == "KILL" else STOP_GRACE_S / 4)


def _pump(src: IO[bytes], sinks: list[IO[bytes]]) -> None:
    fd = src.fileno()
    while chunk := os.read(fd, 65536):
        for s in sinks:
            try:
                s.write(chunk)
                s.flush()
            except (OSError, ValueError):
                pass  # a closed terminal must not stop the log file


def _terminal_run(args: list[str], env: dict[str, str], run_dir: Path, stopper: _Stopper) -> int:
    """`docker run -it` on the user's own terminal: docker puts it in raw mode, so Ctrl-C reaches
    the container's foreground process as in a local one, and docker (in our process group) gets
    SIGWINCH and resizes the container's terminal. Nothing is captured: the screen mixes what was
    typed (a password, a token) with what was printed, so stdout.log/stderr.log stay empty."""
    for name in (rec.STDOUT_LOG, rec.STDERR_LOG):
        (run_dir / name).touch()
    stopper.container = True
    proc = subprocess.Popen([engine.docker_bin(), *args], env=cli_env(env))
    try:
        return proc.wait()
    finally:
        stopper.done.set()


def _container_run(args: list[str], env: dict[str, str], run_dir: Path, stopper: _Stopper,
                   out: IO[bytes], err: IO[bytes], stdin: str | None) -> int:
    """Run docker with our stdin passed on and its output streamed live to the terminal and to
    stdout.log/stderr.log."""
    with open(run_dir / rec.STDOUT_LOG, "wb") as out_log, open(run_dir / rec.STDERR_LOG, "wb") as err_log:
        stopper.container = True
        # own session: a terminal's Ctrl-C reaches envbuild only, which stops the container itself
        proc = subprocess.Popen([engine.docker_bin(), *args], stdin=None if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=cli_env(env), start_new_session=True)
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, [out_log, out]), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, [err_log, err]), daemon=True)]
        for t in pumps:
            t.start()
        try:
            code = proc.wait()
        finally:
            stopper.done.set()
        for t in pumps:
            t.join()
    return code


def _skeleton(run_id: str, spec: Spec, req: RunRequest, seed: int, network: str, gpus: str | None,
              started: Any) -> dict[str, Any]:
    return rec.new(run_id, kind=req.kind, command=req.command, project={"name": spec.name, "root": str(spec.root)},
                   seed=seed, deterministic=spec.deterministic, image_ref=req.image, network=network, gpus=gpus,
                   started=started)


def make_output_dirs(spec: Spec) -> None:
    """Declared output directories exist (empty) before the script starts: an empty directory is not
    in git, so a fresh clone or a reproduce worktree lacks it. An entry with a file extension (and
    no trailing /) names a file and is left alone; nothing is made outside the project."""
    for rel in spec.outputs:
        inside = provenance.project_pathspec(spec.root, rel)
        if not inside or (Path(inside).suffix and not rel.endswith("/")) or (spec.root / inside).exists():
            continue
        try:
            (spec.root / inside).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EnvbuildError(f"{spec.source}: outputs: cannot make {rel!r} ({e.strerror}); "
                                "fix the path or remove what is in its way") from None


def choose_gpus(spec: Spec, req: RunRequest) -> str | None:
    """--gpus must be honoured (error when impossible); the spec's gpus only where the host has them."""
    if req.gpus is not None:
        wanted = None if req.gpus in ("none", "0") else req.gpus
        if wanted and not engine.nvidia_runtime():
            raise EnvbuildError(f"--gpus {req.gpus}: this Docker engine has no NVIDIA runtime; install the "
                                "NVIDIA Container Toolkit, or run without --gpus")
        return wanted
    if spec.gpus and not engine.nvidia_runtime():
        from envbuild.output import info

        info(f"note: {spec.source.name} asks for gpus = {spec.gpus!r} but this engine has no NVIDIA runtime; "
             "running on CPU")
        return None
    return spec.gpus


def run(root: Path | str, req: RunRequest, reproduces: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Run `req.command` in the project's image and return (run dir, final record).

    The script's exit code is the record's exit_code; a failure before the script started is
    recorded (status failed, reason) and then raised.
    """
    spec = load_spec(root)
    seed = spec.seed if req.seed is None else req.seed
    network = req.network or spec.network
    started = rec.now_utc()
    run_id = rec.new_run_id(started)
    run_dir = store.new_run_dir(spec.root, run_id)
    # secret-named variables given to the run: their values are masked wherever they turn up
    masker = Masker(v for k, v in {**spec.env, **req.env}.items() if is_secret_name(k))
    record = _skeleton(run_id, spec, req, seed, network, None, started)
    record["command"] = masker.argv(req.command)
    record["reproduces"] = reproduces
    rec.write_record(run_dir, record)

    name = f"envbuild-{spec.name[:40]}-{run_id}".lower()
    stopper = _Stopper(name)
    stdin = stdin_mode(req)
    old = {s: signal.signal(s, stopper.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            record["gpus"] = gpus = choose_gpus(spec, req)
            make_output_dirs(spec)
            docker_version = engine.require_engine()
            lock = read_lock(spec.root) if req.image else current_lock(spec, req.relock)
            found, gpu_env = nvidia.preflight(lock.cuda if lock else {}, gpus)  # before any pull or build
            facts = image.inspect_or_pull(req.image, show_pull=True) if req.image else resolve_image(spec, lock)
            extends = None
            if req.dev and spec.dev_groups and not req.image:
                from envbuild import dev

                built, extends = dev.build(spec, lock, log=_say), facts
                facts = built.facts
            ref = facts.ref
            record["image"] = image_facts(spec.root, facts, lock)
            if extends is not None:
                record["image"]["dev_hash"] = facts.labels[dev.LABEL_DEV_HASH]
                record["image"]["extends"] = {"ref": extends.ref, "id": extends.id,
                                              "digest": manifest_digest(extends.id, None)}
            if lock is not None:
                record["lock"] = lock_facts(spec.root, lock, run_dir)
            excluded = [*spec.data, *spec.outputs]
            record["code"] = provenance.git_info(spec.root, run_dir, exclude=excluded, masker=masker)
            listings: dict[str, list] = {}
            record["data"], _ = provenance.data_checksums(spec.root, spec.data, listings)
            record["manifests"]["data"] = {p: manifest.write(run_dir, p, files) for p, files in listings.items()}
            record["dvc"] = provenance.dvc_hashes(spec.root)
            record["host"] = provenance.host_facts(docker_version, found)
            record["cuda"] = {"lock": lock.cuda if lock else {}, "torch": None}
            env, determinism = container_env(spec, req, seed, run_id)
            env.update(gpu_env)
            record["env"] = {k: masker.text(v, "env") for k, v in provenance.redact_env({**facts.env, **env}).items()}
            record["determinism"]["env"] = determinism
            record["tags"] = rec.mlflow_tags(record)
            rec.write_record(run_dir, record)
            (run_dir / RUN_IO_DIR).mkdir()
            args = docker_args(name, ref, req.command, env, network, gpus, spec.root, run_dir, stdin, req.mounts)
        except KeyboardInterrupt:
            signum = stopper.signum or signal.SIGINT
            return run_dir, _finish(spec, run_dir, record, masker, "interrupted", 128 + signum,
                                    f"{signal.Signals(signum).name} received before the script started")
        except EnvbuildError as e:
            _finish(spec, run_dir, record, masker, "failed", None, str(e))
            raise
        out = req.stdout or sys.stdout.buffer
        err = req.stderr or sys.stderr.buffer
        try:
            if stdin == "tty":  # Ctrl-C is the container's own (a raw terminal); SIGTERM still stops it
                signal.signal(signal.SIGINT, lambda *_: None)  # a handler, not SIG_IGN: docker must not inherit it
                code = _terminal_run(args, env, run_dir, stopper)
            else:
                code = _container_run(args, env, run_dir, stopper, out, err, stdin)
        except KeyboardInterrupt:  # a signal before the container could be asked to stop
            signum = stopper.signum or signal.SIGINT
            return run_dir, _finish(spec, run_dir, record, masker, "interrupted", 128 + signum,
                                    f"{signal.Signals(signum).name} received")
        except OSError as e:
            _finish(spec, run_dir, record, masker, "failed", None, f"docker run could not start: {e}")
            raise EngineError(f"docker run could not start: {e}") from None
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if stopper.signum is not None:
        signame = signal.Signals(stopper.signum).name
        return run_dir, _finish(spec, run_dir, record, masker, "interrupted", 128 + stopper.signum, f"{signame} received")
    if code != 0 and engine.server_version() is None:  # the engine went away under the run
        return run_dir, _finish(spec, run_dir, record, masker, "failed", code,
                                f"{ENGINE_FAILED}: the Docker engine stopped during the run (docker exited {code}); "
                                "start the engine and run again")
    if code == 125 and not (run_dir / rec.STDOUT_LOG).stat().st_size:
        # docker's own failure (bad option, missing runtime): say docker's last line
        last = last_line((run_dir / rec.STDERR_LOG).read_text(errors="replace"), f"exit {code}")
        return run_dir, _finish(spec, run_dir, record, masker, "failed", code, f"docker run failed: {last}")
    return run_dir, _finish(spec, run_dir, record, masker, "succeeded" if code == 0 else "failed", code, None)


def _take_run_files(run_dir: Path) -> None:
    """Move what the run wrote for envbuild (metrics, params, settings) into the run dir: regular
    files of those names only (a symlink planted there is left where it is)."""
    io_dir = run_dir / RUN_IO_DIR
    for name in RUN_OUTPUT_FILES:
        src = io_dir / name
        if src.is_file() and not src.is_symlink():
            os.replace(src, run_dir / name)
    try:
        io_dir.rmdir()  # kept only when the run left other files there
    except OSError:
        pass


def _finish(spec: Spec, run_dir: Path, record: dict[str, Any], masker: Masker, status: str, code: int | None,
            reason: str | None) -> dict[str, Any]:
    """Fill in what the run produced and write the final record."""
    ended = rec.now_utc()
    started = record["started_at"]
    record.update(status=status, exit_code=code, reason=reason, ended_at=rec.iso(ended))
    from datetime import datetime

    record["duration_s"] = round((ended - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds(), 3)
    try:
        _take_run_files(run_dir)
        record["outputs"] = provenance.output_files(spec.root, spec.outputs)
        record["manifests"]["outputs"] = {p: manifest.write(run_dir, p, files) for p, files in
                                          manifest.of_outputs(record["outputs"], spec.outputs).items()}
        metrics_json = [spec.root / o / rec.METRICS_JSON for o in spec.outputs]
        record["metrics"] = rec.collect_metrics(run_dir, metrics_json)
        for name in (rec.STDOUT_LOG, rec.STDERR_LOG, rec.PARAMS_FILE, rec.METRICS_FILE):
            masker.file(run_dir / name)
        record["params"] = masker.params(rec.collect_params(run_dir))
        record["determinism"]["settings"] = rec.collect_settings(run_dir)
        if "cuda" in record:
            record["cuda"]["torch"] = nvidia.torch_seen(run_dir)
    except OSError as e:  # never lose the record over a vanished output file
        record["reason"] = record["reason"] or f"could not read the run's outputs: {e}"
    record["withheld"] = masker.section()
    rec.write_record(run_dir, record)
    if spec.tracking.get("mlflow") and status != "running":
        _export_mlflow(spec, run_dir, record)
    return chain.seal(spec.root, run_dir, record)  # the last write: from here on, changes show


def _export_mlflow(spec: Spec, run_dir: Path, record: dict[str, Any]) -> None:
    from envbuild.output import info

    try:
        from envbuild import mlflow_export

        run_id = mlflow_export.export(spec.root, spec.tracking["mlflow"], run_dir, record)
    except Exception as e:  # tracking is a copy: a failing server never fails the run
        info(f"warning: MLflow logging failed: {e}")
        return
    record["tracking"] = {"mlflow": {"uri": provenance.strip_credentials(spec.tracking["mlflow"]), "run_id": run_id}}
    rec.write_record(run_dir, record)
