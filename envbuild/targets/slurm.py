"""The Slurm target: `sbatch` a job whose one step per node runs the locked image with Slurm's own
OCI container support (`srun --container=BUNDLE`, runc in RunTimeRun mode; DESIGN.md section 12).

The bundle: the image's OCI layout (envbuild writes it, envbuild/oci/layout.py) unpacked by `umoci`
into `<shared>/bundles/<config digest>/`, once per image. Slurm 22.05 takes no mounts on the command
line and always runs `<bundle>/rootfs`, so a project gets its own bundle dir next to it: the rootfs
hard-linked (no copy, read-only), and a config.json with the project's mounts (project at /workspace,
.envbuild read-only, a writable io dir), the network namespace (or none, for network = "host") and,
for GPU jobs, the NVIDIA container hook. `shared` must be a path every node sees; so must the project.

Other container runtimes (`runtime = "pyxis"`: `srun --container-image`, `runtime = "apptainer"`)
write the same job with their own step line; they need the image in a registry (envbuild push).

The job's state comes from `scontrol show job` (no slurmdbd needed; `sacct` when scontrol has forgotten it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from envbuild import record as rec, store
from envbuild.errors import EnvbuildError, last_line
from envbuild.targets import WORKDIR, Job, Outcome, Stopper, Target, write_all

DEFAULT_SHARED = "/var/lib/envbuild/slurm"  # where `make slurm-up` puts it; set `shared` on a real cluster
CONTAINER_IO = "/envbuild/io"  # the project's io dir in the container: one subdir per run
IO_DIR = "io"  # ... and on the host, under the project's .envbuild
NODE_FILE = "slurm-node.txt"  # what the batch step saw on its node (hostname, nvidia-smi -L)
BATCH_LOG = "slurm-batch.log"  # the batch script's own output (srun's messages), apart from the run's
NVIDIA_HOOK = "/usr/bin/nvidia-container-runtime-hook"
POLL_S = 0.1
# JobState -> record status; the exit code is the script's (ExitCode=code:signal)
STATES = {"COMPLETED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled", "TIMEOUT": "failed",
          "OUT_OF_MEMORY": "failed", "NODE_FAIL": "failed", "PREEMPTED": "failed", "BOOT_FAIL": "failed",
          "DEADLINE": "failed"}
REASONS = {"TIMEOUT": "the job reached its time limit (Slurm state TIMEOUT)",
           "OUT_OF_MEMORY": "the job ran out of memory (Slurm state OUT_OF_MEMORY)",
           "NODE_FAIL": "a node of the job failed (Slurm state NODE_FAIL)",
           "PREEMPTED": "the job was preempted (Slurm state PREEMPTED)",
           "BOOT_FAIL": "a node of the job did not boot (Slurm state BOOT_FAIL)",
           "DEADLINE": "the job passed its deadline (Slurm state DEADLINE)"}


def slurm(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run a Slurm command; its stdout, or EnvbuildError with its last line."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError:
        raise EnvbuildError(f"{args[0]} not found on PATH: the slurm target needs Slurm's client commands "
                            "(on this machine: sudo make slurm-up)") from None
    except subprocess.TimeoutExpired:
        raise EnvbuildError(f"{args[0]} did not answer in {timeout:.0f}s; is slurmctld up? (sinfo)") from None
    if proc.returncode != 0:
        raise EnvbuildError(f"{' '.join(args[:2])} failed: {last_line(proc.stderr, f'exit {proc.returncode}')}")
    return proc.stdout


def job_fields(job_id: str) -> dict[str, str] | None:
    """`scontrol show job -o ID` as {key: value}, or None when Slurm no longer knows the job."""
    proc = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return _sacct(job_id)
        raise EnvbuildError(f"scontrol show job {job_id} failed: {last_line(proc.stderr, 'no answer')}")
    return dict(kv.split("=", 1) for kv in proc.stdout.split() if "=" in kv)


def _sacct(job_id: str) -> dict[str, str] | None:
    try:
        proc = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,ExitCode,NodeList"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = proc.stdout.strip().splitlines()[:1]
    if proc.returncode != 0 or not line:
        return None
    state, code, nodes = (line[0].split("|") + ["", "", ""])[:3]
    return {"JobState": state.split()[0], "ExitCode": code, "NodeList": nodes}


def _job_named(name: str) -> str | None:
    """The id of the job of this (unique) name, while Slurm lists it."""
    try:
        return slurm("squeue", "-h", f"--name={name}", "-o", "%i").split()[0]
    except (EnvbuildError, IndexError):
        return None


def outcome_of(fields: dict[str, str] | None, job_id: str) -> Outcome | None:
    """How the job ended, or None while it is pending or running."""
    if fields is None:
        return Outcome("failed", None, f"Slurm job {job_id} is no longer known to the cluster (and sacct has "
                                       "no record of it); raise MinJobAge or run slurmdbd")
    state = fields.get("JobState", "")
    if state not in STATES:
        return None
    code, _, sig = fields.get("ExitCode", "0:0").partition(":")
    exit_code = int(code) if code.isdigit() else None
    if sig.isdigit() and int(sig):
        exit_code = 128 + int(sig)
    if state == "CANCELLED":
        return Outcome("cancelled", exit_code or 128 + signal.SIGTERM, f"Slurm job {job_id} was cancelled")
    if state == "FAILED" and exit_code == 0:
        exit_code = None
    return Outcome(STATES[state], exit_code, REASONS.get(state))


def hostnames(nodelist: str) -> list[str]:
    if not nodelist or nodelist == "(null)":
        return []
    try:
        return slurm("scontrol", "show", "hostnames", nodelist).split()
    except EnvbuildError:
        return [nodelist]


# --- the bundle --------------------------------------------------------------------------------


def _digest_hex(image_id: str) -> str:
    return image_id.split(":", 1)[-1]


def image_bundle(job: Job, shared: Path, say: Callable[[str], None]) -> Path:
    """`<shared>/bundles/<config digest>`: the image unpacked by umoci, made once per image."""
    dest = shared / "bundles" / _digest_hex(job.image_id)
    if (dest / "config.json").is_file():
        return dest
    tmp = _tmp_dir(shared, "unpack-")
    try:
        layout = tmp / "layout"
        say(f"unpacking {job.image} into a Slurm bundle (once per image): {dest}")
        tag = oci_layout(job, layout)
        args = ["umoci", "unpack", *(["--rootless"] if os.getuid() != 0 else []), "--image", f"{layout}:{tag}",
                str(tmp / "bundle")]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvbuildError(f"umoci unpack failed: {last_line(proc.stderr, f'exit {proc.returncode}')}; "
                                "install umoci (Debian: apt-get install umoci)")
        _install(tmp / "bundle", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def oci_layout(job: Job, dest: Path) -> str:
    """The job's image as an OCI layout at dest; its tag there. envbuild writes the lock's image itself;
    a given --image comes out of the engine by skopeo."""
    if job.lock is not None and job.from_lock:
        from envbuild import image

        result = image.export_oci(job.spec, job.lock, dest)
        return result.ref.rsplit(":", 1)[1]
    proc = subprocess.run(["skopeo", "copy", "-q", f"docker-daemon:{job.image}", f"oci:{dest}:envbuild"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvbuildError(f"skopeo copy of {job.image} failed: {last_line(proc.stderr, 'no answer')}")
    return "envbuild"


def _tmp_dir(shared: Path, prefix: str) -> Path:
    import tempfile

    (shared / "tmp").mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=shared / "tmp"))


def _install(src: Path, dest: Path) -> None:
    """Move a finished dir into place; another run that got there first wins (same content)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except OSError:
        if not (dest / "config.json").is_file():
            raise


def bundle_config(base: dict[str, Any], job: Job, hook: str) -> dict[str, Any]:
    """The project's config.json: the image's (umoci's), with the project's mounts and settings."""
    config = json.loads(json.dumps(base))
    state = store.state_dir(job.root)
    process = config.setdefault("process", {})
    process.update(terminal=False, cwd=WORKDIR, user={"uid": os.getuid(), "gid": os.getgid()})
    process.pop("rlimits", None)  # the node's limits, as for any job step
    config["root"] = {"path": "rootfs", "readonly": True}  # shared by every run of the image
    tmpfs = ["nosuid", "nodev", "mode=1777"]
    config["mounts"] = [*config.get("mounts", []),
                        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": tmpfs},
                        {"destination": "/var/tmp", "type": "tmpfs", "source": "tmpfs", "options": tmpfs},
                        _bind(job.root, WORKDIR, "rw"),
                        _bind(state, f"{WORKDIR}/{state.name}", "ro"),
                        _bind(state / IO_DIR, CONTAINER_IO, "rw")]
    linux = config.setdefault("linux", {})
    # no uts namespace: the node's hostname (MASTER_ADDR); no pid namespace: the script is not PID 1,
    # which ignores SIGTERM without a handler (scancel, time limits) and has no init to reap for it
    drop = {"uts", "pid"} | ({"network"} if job.network == "host" else set())
    linux["namespaces"] = [n for n in linux.get("namespaces", []) if n.get("type") not in drop]
    config.pop("hostname", None)
    if job.gpus and hook == "nvidia":
        # the NVIDIA container toolkit's hook mounts the driver and the devices NVIDIA_VISIBLE_DEVICES names
        config.setdefault("hooks", {}).setdefault("prestart", []).append(
            {"path": NVIDIA_HOOK, "args": ["nvidia-container-runtime-hook", "prestart"]})
    return config


def _bind(src: Path, dest: str, mode: str) -> dict[str, Any]:
    return {"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", mode]}


def project_bundle(job: Job, shared: Path, hook: str, say: Callable[[str], None]) -> Path:
    """`<shared>/bundles/<digest>-<settings hash>`: the image's rootfs hard-linked, the project's config."""
    image_dir = image_bundle(job, shared, say)
    config = bundle_config(json.loads((image_dir / "config.json").read_text()), job, hook)
    text = json.dumps(config, sort_keys=True, indent=1)
    dest = shared / "bundles" / f"{image_dir.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if (dest / "config.json").is_file():
        return dest
    tmp = _tmp_dir(shared, "bundle-")
    try:
        proc = subprocess.run(["cp", "-al", str(image_dir / "rootfs"), str(tmp / "rootfs")], capture_output=True, text=True)
        if proc.returncode != 0:  # another file system: a copy
            shutil.rmtree(tmp / "rootfs", ignore_errors=True)
            shutil.copytree(image_dir / "rootfs", tmp / "rootfs", symlinks=True)
        (tmp / "config.json").write_text(text)
        _install(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --- the job -----------------------------------------------------------------------------------


def gres(gpus: str | None, settings: dict[str, Any]) -> str | None:
    """--gres for the job: the target's own, else gpu:N from gpus = N."""
    if settings.get("gres"):
        return settings["gres"]
    if not gpus:
        return None
    if gpus.isdigit():
        return f"gpu:{gpus}"
    raise EnvbuildError(f"gpus = {gpus!r} on a Slurm target: give a count per node (gpus = 2, or --gpus 2), "
                        'or gres = "gpu:a100:2" in the target\'s table')


def job_script(job: Job, settings: dict[str, Any], bundle: Path | None) -> str:
    """The batch script: facts about the node, the multi-node rendezvous, then one step per node."""
    runtime = settings.get("runtime", "oci")
    out, err = job.run_dir / rec.STDOUT_LOG, job.run_dir / rec.STDERR_LOG
    step = ["--ntasks-per-node=1", "--kill-on-bad-exit=1", "--open-mode=append",
            f"--output={out}", f"--error={err}"]
    if runtime == "oci":
        step.insert(0, f"--container={bundle}")
        line = ["$SRUN", *step, *job.command]
    elif runtime == "pyxis":
        mounts = f"{job.root}:{WORKDIR},{store.state_dir(job.root)}:{WORKDIR}/.envbuild:ro," \
                 f"{store.state_dir(job.root) / IO_DIR}:{CONTAINER_IO}"
        line = ["$SRUN", *step, f"--container-image={_pinned(job)}", f"--container-mounts={mounts}",
                f"--container-workdir={WORKDIR}", *job.command]
    else:  # apptainer
        binds = f"{job.root}:{WORKDIR},{store.state_dir(job.root)}:{WORKDIR}/.envbuild:ro," \
                f"{store.state_dir(job.root) / IO_DIR}:{CONTAINER_IO}"
        line = ["$SRUN", *step, "apptainer", "exec", "--containall", "--pwd", WORKDIR, "--bind", binds,
                *(["--nv"] if job.gpus else []), f"docker://{_pinned(job)}", *job.command]
    quoted = " ".join(a if a == "$SRUN" else shlex.quote(a) for a in line)
    # srun hands its PATH to the container, where it wins over the image's: give it the image's
    path = f"export PATH={shlex.quote(job.image_env['PATH'])}\n" if job.image_env.get("PATH") else ""
    return f"""#!/bin/bash
# written by envbuild for run {job.run_id} ({job.spec.name}); submitted with sbatch
SRUN=$(command -v srun || echo /usr/bin/srun)
{{ hostname -s; nvidia-smi -L 2>/dev/null || true; }} > {shlex.quote(str(job.run_dir / NODE_FILE))}
# one container per node (Slurm 22.05); a launcher inside it (torchrun) starts the workers
export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))
export NNODES=$SLURM_JOB_NUM_NODES
export NVIDIA_VISIBLE_DEVICES=${{SLURM_JOB_GPUS:-void}}
export NVIDIA_DRIVER_CAPABILITIES=compute,utility
{path}{quoted}
"""


def _pinned(job: Job) -> str:
    """The image by registry digest: what pyxis and apptainer pull on the node."""
    if not job.repo_digest:
        raise EnvbuildError(f"runtime pyxis/apptainer pulls the image on the node: push it first "
                            f"(envbuild push REGISTRY/REPO) so {job.image} has a registry digest")
    return job.repo_digest


class SlurmTarget(Target):
    backend = "slurm"
    can_detach = True

    @property
    def shared(self) -> Path:
        return Path(self.settings.get("shared") or os.environ.get("ENVBUILD_SLURM_SHARED") or DEFAULT_SHARED)

    def placement(self) -> dict[str, Any]:
        return {**super().placement(), "runtime": self.settings.get("runtime", "oci"), "bundle": None}

    def choose_gpus(self, spec: Any, wanted: str | None) -> str | None:
        gpus = super().choose_gpus(spec, wanted)
        return None if gpus in ("none", "0") else gpus

    def doctor(self, spec: Any) -> list[Any]:
        from envbuild.checks import Check

        try:
            nodes = [line.split() for line in slurm("sinfo", "-h", "-N", "-o", "%N %t %G",
                                                    *(["-p", self.settings["partition"]] if "partition" in self.settings else [])).splitlines()]
        except EnvbuildError as e:
            return [Check("slurm controller", False, True, str(e), "sudo make slurm-up (this machine), or load your cluster's Slurm module")]
        up = [n for n in nodes if len(n) >= 2 and n[1].strip("*~") in ("idle", "mix", "alloc")]
        gpus = sorted({g for n in nodes for g in n[2:] if g.startswith("gpu")})
        shared = self.shared
        writable = shared.is_dir() and os.access(shared, os.W_OK)
        bundles = sorted(p.name for p in (shared / "bundles").glob("*") if "-" not in p.name) if writable else []
        return [
            Check("slurm controller", True, True, f"answers; {len(nodes)} node(s): "
                  + ", ".join(f"{n[0]} {n[1]}" for n in nodes[:8])),
            Check("slurm nodes up", bool(up), True, f"{len(up)} idle, mixed or allocated", "scontrol update nodename=N state=resume"),
            Check("GPUs (gres)", bool(gpus), False, ", ".join(gpus) or "no gpu gres on these nodes", "gpus = N needs gres gpu"),
            Check("umoci", bool(shutil.which("umoci")), True, "unpacks the image into a bundle", "apt-get install umoci"),
            Check("shared path", writable, True, f"{shared} ({len(bundles)} image bundle(s) cached)",
                  f"make {shared} (every node must see it) or set shared = \"/path\" in the target"),
        ]

    def prepare(self, job: Job, say: Callable[[str], None]) -> None:
        if job.network == "bridge":
            raise EnvbuildError("--network bridge: a Slurm job step has no Docker bridge; use none or host")
        gres(job.gpus, self.settings)  # refuse a GPU request Slurm cannot say before building anything
        io_dir = store.state_dir(job.root) / IO_DIR / job.run_id
        io_dir.mkdir(parents=True, exist_ok=True)
        job.env["ENVBUILD_RUN_DIR"] = f"{CONTAINER_IO}/{job.run_id}"
        bundle = None
        if self.settings.get("runtime", "oci") == "oci":
            bundle = project_bundle(job, self.shared, self.settings.get("gpu-hook", "nvidia"), say)
        job.placement.update(bundle=str(bundle) if bundle else None, cluster=_cluster_name())

    def allocation_args(self, job: Job) -> list[str]:
        """What sbatch and srun both take: the job's name, size, place and the names of its variables."""
        s = self.settings
        names = sorted({*job.env, *(["PATH"] if job.image_env.get("PATH") else [])})  # PATH: see _env
        args = [f"--job-name={job.name}", f"--export={','.join(names)}", f"--nodes={s.get('nodes', 1)}",
                "--ntasks-per-node=1", f"--chdir={job.root}"]
        for key, flag in (("partition", "--partition"), ("time", "--time"), ("cpus-per-task", "--cpus-per-task"),
                          ("mem", "--mem"), ("account", "--account"), ("qos", "--qos")):
            if key in s:
                args.append(f"{flag}={s[key]}")
        if (g := gres(job.gpus, s)) is not None:
            args.append(f"--gres={g}")
        return [*args, *s.get("sbatch-args", ())]

    def sbatch_args(self, job: Job) -> list[str]:
        return ["sbatch", "--parsable", f"--output={job.run_dir / BATCH_LOG}", *self.allocation_args(job),
                str(job.run_dir / "job.sh")]

    def srun_args(self, job: Job) -> list[str]:
        """One node, attached: the container step straight from srun, as a user would type it."""
        out, err = job.run_dir / rec.STDOUT_LOG, job.run_dir / rec.STDERR_LOG
        return [shutil.which("srun") or "srun", *self.allocation_args(job), f"--container={job.placement['bundle']}",
                "--kill-on-bad-exit=1", f"--output={out}", f"--error={err}", *job.command]

    def _env(self, job: Job) -> dict[str, str]:
        """The container's values travel in the client's environment (--export names them), never in argv;
        PATH is the image's (srun hands its own to the container, where it would win)."""
        path = {"PATH": job.image_env["PATH"]} if job.image_env.get("PATH") else {}
        return {**os.environ, **job.env, **path}

    def submit(self, job: Job) -> None:
        (job.run_dir / "job.sh").write_text(job_script(job, self.settings, self.bundle(job)))
        out = slurm(*self.sbatch_args(job), env=self._env(job))
        job.placement.update(job_id=out.strip().split(";")[0], state="PENDING", detached=True)

    @staticmethod
    def bundle(job: Job) -> Path | None:
        return Path(job.placement["bundle"]) if job.placement.get("bundle") else None

    def kill(self, job: Job, signame: str) -> None:
        job_id = job.placement.get("job_id")
        if job_id:
            sig = [] if signame == "KILL" else [f"--signal={signame}", "--full"]
            subprocess.run(["scancel", *sig, job_id], capture_output=True)

    def poll(self, placement: dict[str, Any]) -> Outcome | None:
        fields = job_fields(placement["job_id"])
        outcome = outcome_of(fields, placement["job_id"])
        if fields:
            placement["state"] = fields.get("JobState")
        return outcome

    def run(self, job: Job, stopper: Stopper, out: IO[bytes], err: IO[bytes]) -> Outcome:
        for name in (rec.STDOUT_LOG, rec.STDERR_LOG):
            (job.run_dir / name).touch()
        follow = _Follow([(job.run_dir / rec.STDOUT_LOG, out), (job.run_dir / rec.STDERR_LOG, err)])
        try:
            if self.settings.get("nodes", 1) == 1 and self.bundle(job):
                fields = self._srun(job, stopper)  # srun's allocation starts at once; sbatch waits for the scheduler
            else:
                fields = self._sbatch(job, stopper)
        finally:
            stopper.done.set()
            follow.stop()
        self._facts(job.placement, fields, job.run_dir)
        self.collect(job.root, job.run_dir, job.placement)
        return outcome_of(fields, job.placement.get("job_id") or "?")

    def _sbatch(self, job: Job, stopper: Stopper) -> dict[str, str] | None:
        self.submit(job)
        job.placement["detached"] = False
        stopper.started = True
        return self._ended(job.placement["job_id"], None)

    def _srun(self, job: Job, stopper: Stopper) -> dict[str, str] | None:
        with open(job.run_dir / BATCH_LOG, "wb") as log:  # srun's own lines; the run's go to the logs
            proc = subprocess.Popen(self.srun_args(job), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=self._env(job), start_new_session=True)
            stopper.started = True
            while True:
                if not job.placement.get("job_id"):
                    job.placement["job_id"] = _job_named(job.name)
                try:
                    proc.wait(timeout=POLL_S / 2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        job_id = job.placement.get("job_id") or _job_named(job.name)
        if job_id is None:  # never got an allocation: srun said why
            last = last_line((job.run_dir / BATCH_LOG).read_text(errors="replace"), f"exit {proc.returncode}")
            raise EnvbuildError(f"srun failed: {last}")
        job.placement["job_id"] = job_id
        return self._ended(job_id, proc.returncode)

    @staticmethod
    def _ended(job_id: str, code: int | None) -> dict[str, str] | None:
        """The job's fields once Slurm says it ended; with srun's exit code at hand, a moment at most."""
        while True:
            fields = job_fields(job_id)
            if outcome_of(fields, job_id) is not None:
                return fields
            if code == 0 and fields and fields.get("JobState") == "COMPLETING":  # a failure waits: cancelled?
                return {**fields, "JobState": "COMPLETED", "ExitCode": "0:0"}
            time.sleep(POLL_S / 2 if code is not None else POLL_S)

    def _facts(self, placement: dict[str, Any], fields: dict[str, str] | None, run_dir: Path) -> None:
        fields = fields or {}
        placement.update(state=fields.get("JobState"), nodes=hostnames(fields.get("NodeList", "")),
                         host=fields.get("BatchHost") or None)
        seen = (run_dir / NODE_FILE).read_text(errors="replace").splitlines() if (run_dir / NODE_FILE).is_file() else []
        placement["gpus"] = [line.strip() for line in seen[1:] if line.startswith("GPU ")]
        placement["host"] = placement["host"] or (seen[0].strip() if seen else None)

    def collect(self, job_root: Path, run_dir: Path, placement: dict[str, Any]) -> None:
        from envbuild.targets import RUN_IO_DIR

        if placement.get("detached") and placement.get("job_id"):
            self._facts(placement, job_fields(placement["job_id"]), run_dir)
        src = store.state_dir(job_root) / IO_DIR / run_dir.name
        dest = run_dir / RUN_IO_DIR
        dest.mkdir(exist_ok=True)
        if src.is_dir():
            for f in src.iterdir():
                if f.is_file() and not f.is_symlink():
                    os.replace(f, dest / f.name)
            shutil.rmtree(src, ignore_errors=True)


def _cluster_name() -> str | None:
    try:
        for line in slurm("scontrol", "show", "config").splitlines():
            if line.startswith("ClusterName"):
                return line.split("=", 1)[1].strip()
    except EnvbuildError:
        pass
    return None


class _Follow:
    """Stream growing log files (Slurm writes them on the node) to the terminal until stopped."""

    def __init__(self, pairs: list[tuple[Path, IO[bytes]]]) -> None:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._tail, args=p, daemon=True) for p in pairs]
        for t in self._threads:
            t.start()

    def _tail(self, path: Path, sink: IO[bytes]) -> None:
        with open(path, "rb") as f:
            while True:
                stopping = self._stop.is_set()
                chunk = f.read(65536)
                if chunk:
                    write_all([sink], chunk)
                elif stopping:
                    return
                else:
                    self._stop.wait(POLL_S)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
