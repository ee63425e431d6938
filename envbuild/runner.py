"""`envbuild run`: the locked image, the project mounted, seeds fixed, and a record of it all.

The record is written when the run starts (status "running") and again when it ends, whatever the
ending: succeeded, failed (the script's exit code, or the reason the engine failed), interrupted
(SIGINT/SIGTERM; the container is stopped first).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from envbuild import chain, engine, image, manifest, nvidia, provenance, record as rec, store, targets
from envbuild.errors import EnvbuildError
from envbuild.targets import CONTAINER_RUN_DIR, RUN_IO_DIR, WORKDIR, Job, Stopper  # noqa: F401 (WORKDIR: devcontainer)
from envbuild.image import ImageFacts
from envbuild.fsutil import sha256_file
from envbuild.secrets import Masker, is_secret_name
from envbuild.lockfile import ENVBUILD_LOCK, EnvLock, lock_path, read_conda_lock, read_lock, read_pip_lock, staleness
from envbuild.spec import Spec, load_spec

RUN_OUTPUT_FILES = (rec.METRICS_FILE, rec.PARAMS_FILE, rec.SETTINGS_FILE, rec.METRICS_JSON, rec.CUDA_FILE)
DETACHED_DIR = "detached"  # in .envbuild: one empty file per detached run not yet finished
CONTAINER_HOME = "/tmp"  # writable for any --user uid, which has no home in the image
DETERMINISM_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NVIDIA_TF32_OVERRIDE": "0",
                   # NGC images set it to 1; torch reads "0" as unset (docker run cannot unset a variable)
                   "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "0"}


# --- the lock and build stages ------------------------------------------------------------


def resolve_image(spec: Spec, lock: EnvLock) -> ImageFacts:
    """The image of this lock, built when missing (its facts come from the build's own inspect)."""
    return image.build(spec, lock, log=_say).facts  # _say: rich loads only when there is something to say


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
    digest = manifest_digest(facts.id, repo_digest)
    return {
        "ref": ref,
        "id": facts.id,
        "digest": digest,
        "provenance": store.provenance_digest(root, digest),
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
    on: str | None = None  # the target (--on NAME); None: local
    detach: bool = False  # submit and return (targets that queue jobs)
    dry_run: bool = False  # print what would be submitted; run nothing, keep no record


def command_for(args: list[str]) -> list[str]:
    """`train.py ARGS` runs with the image's python; anything else runs as the command given."""
    return ["python", *args] if args[0].endswith(".py") else list(args)


def summary(run_dir: Path, record: dict[str, Any]) -> str:
    """The line `envbuild run` ends with (on stderr)."""
    where = run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir
    return f"run {record['id']} {record['status']} (exit {record['exit_code']}); record: {where}/record.json"


def exit_code(record: dict[str, Any]) -> int:
    """envbuild run's own exit code: the script's, or 1 when it never gave one."""
    code = record["exit_code"]
    return code if code is not None else 1


def _foreground() -> bool:
    """Whether we hold our terminal's foreground (not `envbuild run ... &`, which must not read it)."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _empty_stdin() -> bool:
    """Whether our stdin is /dev/null (cron, CI, `< /dev/null`): nothing to pass on, so docker
    need not attach a stdin stream."""
    try:
        mine, null = os.fstat(0), os.stat(os.devnull)
    except OSError:
        return True  # closed: nothing to read either
    return (mine.st_dev, mine.st_ino) == (null.st_dev, null.st_ino)


def stdin_mode(req: RunRequest) -> str | None:
    """How the container gets our stdin: "tty" (`docker run -it`: stdin and stdout are terminals
    we hold, stdout not redirected by --json), "pipe" (`-i`: data piped in, or a terminal without
    a terminal stdout), None (no stdin: a background job must not steal its shell's input)."""
    stdin_tty = os.isatty(0)
    if not req.stdin or (stdin_tty and not _foreground()) or _empty_stdin():
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


def run(root: Path | str, req: RunRequest, reproduces: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Run `req.command` in the project's image and return (run dir, final record).

    The script's exit code is the record's exit_code; a failure before the script started is
    recorded (status failed, reason) and then raised.
    """
    spec = load_spec(root)
    target = targets.get(spec, req.on)  # before the record: a target that cannot be leaves none half-written
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

    record["placement"] = placement = target.placement()
    name = f"envbuild-{spec.name[:40]}-{run_id}".lower()
    job: Job | None = None
    stopper = Stopper(lambda sig: job and target.kill(job, sig))
    stdin = stdin_mode(req) if target.backend == "local" else None  # a queued job reads no terminal
    old = {s: signal.signal(s, stopper.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            record["gpus"] = gpus = target.choose_gpus(spec, req.gpus)
            make_output_dirs(spec)
            docker_version = engine.require_engine()
            lock = read_lock(spec.root) if req.image else current_lock(spec, req.relock)
            # before any pull or build; GPUs elsewhere are checked there
            found, gpu_env = nvidia.preflight(lock.cuda if lock else {}, gpus if target.backend == "local" else None)
            facts = image.inspect_or_pull(req.image, show_pull=True) if req.image else resolve_image(spec, lock)
            extends = None
            if req.dev and spec.dev_groups and not req.image:
                from envbuild import dev

                built, extends = dev.build(spec, lock, log=_say), facts
                facts = built.facts
            record["image"] = image_facts(spec.root, facts, lock)
            if extends is not None:
                record["image"]["dev_hash"] = facts.labels[dev.LABEL_DEV_HASH]
                record["image"]["extends"] = {"ref": extends.ref, "id": extends.id,
                                              "digest": manifest_digest(extends.id, None)}
            if lock is not None:
                record["lock"] = lock_facts(spec.root, lock, run_dir)
            env, determinism = container_env(spec, req, seed, run_id)
            env.update(gpu_env)
            (run_dir / RUN_IO_DIR).mkdir()
            job = Job(name=name, run_id=run_id, image=facts.ref, image_id=facts.id, command=list(req.command),
                      env=env, network=network, gpus=gpus, root=spec.root, run_dir=run_dir, spec=spec, lock=lock,
                      repo_digest=record["image"].get("repo_digest"), from_lock=not req.image, image_env=dict(facts.env),
                      entrypoint=list(facts.entrypoint), stdin=stdin, mounts=list(req.mounts), placement=placement)
            if req.dry_run:
                shutil.rmtree(run_dir)  # made by this call: a dry run keeps no record
                return run_dir, {"dry_run": target.render(job)}
            target.prepare(job, _say)
            if not req.detach:
                target.start(job)  # the local engine starts the container now; its command waits for run()
            # the state the run starts from, recorded before its command runs
            excluded = [*spec.data, *spec.outputs]
            record["code"] = provenance.git_info(spec.root, run_dir, exclude=excluded, masker=masker)
            listings: dict[str, list] = {}
            record["data"], _ = provenance.data_checksums(spec.root, spec.data, listings)
            record["manifests"]["data"] = {p: manifest.write(run_dir, p, files) for p, files in listings.items()}
            record["dvc"] = provenance.dvc_hashes(spec.root)
            record["host"] = target.host_facts(provenance.host_facts(docker_version, found))
            record["cuda"] = {"lock": lock.cuda if lock else {}, "torch": None}
            record["env"] = {k: masker.text(v, "env") for k, v in provenance.redact_env({**facts.env, **env}).items()}
            record["determinism"]["env"] = determinism
            record["tags"] = rec.mlflow_tags(record)
            rec.write_record(run_dir, record)
            if req.detach:
                target.submit(job)
                rec.write_record(run_dir, record)  # sealed when it ends (settle), like any running record
                (store.state_dir(spec.root) / DETACHED_DIR).mkdir(exist_ok=True)
                (store.state_dir(spec.root) / DETACHED_DIR / run_id).touch()
                return run_dir, record
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
            outcome = target.run(job, stopper, out, err)
        except KeyboardInterrupt:  # a signal before the job could be asked to stop
            signum = stopper.signum or signal.SIGINT
            return run_dir, _finish(spec, run_dir, record, masker, "interrupted", 128 + signum,
                                    f"{signal.Signals(signum).name} received")
        except EnvbuildError as e:
            _finish(spec, run_dir, record, masker, "failed", None, str(e))
            raise
    finally:
        if job is not None:
            try:
                target.abandon(job)  # started but never let go: it ends unrun
            except KeyboardInterrupt:  # a second Ctrl-C: its stdin is closed already, the gate ends alone
                pass
        for s, handler in old.items():
            signal.signal(s, handler)
    if stopper.signum is not None:
        signame = signal.Signals(stopper.signum).name
        return run_dir, _finish(spec, run_dir, record, masker, "interrupted", 128 + stopper.signum, f"{signame} received")
    return run_dir, _finish(spec, run_dir, record, masker, outcome.status, outcome.exit_code, outcome.reason)


def settle(root: Path | str) -> list[str]:
    """Finish the records of detached runs whose jobs have ended (`envbuild runs` calls this first);
    the ids settled. A target that cannot be asked now (its cluster is away) leaves them running."""
    spec = None
    settled = []
    waiting = store.runs_dir(root).parent / DETACHED_DIR  # a marker per detached run: no scan of every record
    for marker in sorted(waiting.glob("*")) if waiting.is_dir() else []:
        run_dir = store.runs_dir(root) / marker.name
        try:
            record = rec.read_record(run_dir)
        except EnvbuildError:
            marker.unlink(missing_ok=True)
            continue
        placement = record.get("placement") or {}
        if record.get("status") != "running" or not placement.get("detached"):
            marker.unlink(missing_ok=True)
            continue
        spec = spec or load_spec(root)
        try:
            target = targets.get(spec, placement.get("target"))
            outcome = target.poll(placement)
        except EnvbuildError:
            continue
        if outcome is None:
            continue
        target.collect(spec.root, run_dir, placement)
        _finish(spec, run_dir, record, _detached_masker(spec, record), outcome.status, outcome.exit_code, outcome.reason)
        marker.unlink(missing_ok=True)
        settled.append(record["id"])
    return settled


def _detached_masker(spec: Spec, record: dict[str, Any]) -> Masker:
    """The values to mask in a detached run's logs: the spec's secrets, and those of the names the
    record redacted, as this shell has them (values given with --env are not kept anywhere)."""
    from envbuild.provenance import REDACTED

    redacted = [k for k, v in (record.get("env") or {}).items() if v == REDACTED]
    values = [v for k, v in spec.env.items() if is_secret_name(k)]
    values += [os.environ[k] for k in redacted if k in os.environ]
    return Masker(values)


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
