"""The ssh target: a Docker engine on another machine (the rented GPU box), reached only over ssh.

The project cannot be bind-mounted there, so envbuild ships it. Every file the run needs (git's
files, tracked or not ignored, and the spec's data) goes into a content-addressed store on the
remote host (`store`, default ~/.cache/envbuild/remote: blobs/<sha256>): envbuild sends the hashes,
the remote side answers the ones it lacks, and only those travel, as one tar. The image goes by its
id: when the remote engine lacks it, `docker save | ssh docker load`, without the layers it has.
The run gets a fresh workspace there (copies out of the store, so a script that edits a file cannot
spoil the store), the remote host's docker CLI runs the image by id, and the declared outputs and the
run's own files (metrics, params) come back as one tar, after which the workspace is removed.

Every step is one `ssh` command on one multiplexed connection (ControlMaster, ControlPersist 60 s):
one handshake per run, not per step. The container's variables travel in the script on ssh's stdin,
never in any argv. The record's host and placement are the remote host's (docker info, nvidia-smi).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import IO, Any, Callable

from envbuild import nvidia, record as rec
from envbuild.errors import EnvbuildError, last_line
from envbuild.fsutil import new_temp
from envbuild.targets import CONTAINER_RUN_DIR, RUN_IO_DIR, WORKDIR, Job, Outcome, Stopper, Target, stream

DEFAULT_STORE = "~/.cache/envbuild/remote"
SEP = "@@envbuild@@"  # between the parts of the probe's answer
SSH_FAILED = 255  # ssh's own exit status: the connection, not the remote command
GPU_QUERY = ",".join(nvidia.QUERY)  # asked over there


def ssh_destination(url: str) -> list[str]:
    """`ssh://user@host:port` -> ssh's arguments for it (`-p port user@host`)."""
    m = re.fullmatch(r"ssh://(?:([^@/:\s]+)@)?([^@/:\s]+)(?::(\d+))?/?", url)
    if not m:
        raise EnvbuildError(f"{url!r} is not an ssh URL; write ssh://user@host or ssh://user@host:port")
    user, host, port = m.groups()
    return [*(["-p", port] if port else []), f"{user}@{host}" if user else host]


def control_path(url: str, extra: tuple[str, ...]) -> Path:
    """The shared connection's socket: in a directory only this user may enter, named by what it
    connects to (short: a socket path must fit in 108 bytes)."""
    import hashlib
    import tempfile

    home = Path(tempfile.gettempdir()) / f"envbuild-ssh-{os.getuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    st = home.lstat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not home.is_dir() or home.is_symlink():
        raise EnvbuildError(f"{home} is not a private directory of yours; remove it (ssh's shared connection lives there)")
    return home / hashlib.sha256("\0".join([url, *extra]).encode()).hexdigest()[:16]


def remote_path(path: str) -> str:
    """A store path as a shell word on the remote side (~/ becomes that user's $HOME)."""
    return '"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)


class Remote:
    """One remote host: ssh commands over one shared connection."""

    def __init__(self, url: str, extra: tuple[str, ...] = ()) -> None:
        self.url = url
        self.dest = ssh_destination(url)
        self.control = control_path(url, extra)
        self.options = [*extra, "-o", "BatchMode=yes", "-o", f"ControlPath={self.control}"]

    def argv(self, script: str) -> list[str]:
        # `sh -c`: the remote user's login shell may be anything; the shared connection when it is up
        return ["ssh", *self.options, "-o", "ControlMaster=no", *self.dest, "sh -c " + shlex.quote(script)]

    def connect(self) -> None:
        """Start the shared connection unless one is up (ssh -O check: a few ms)."""
        check = subprocess.run(["ssh", *self.options, "-O", "check", *self.dest], capture_output=True)
        if check.returncode == 0:
            return
        import tempfile

        self.control.unlink(missing_ok=True)  # a master that died left it: ssh would not multiplex then
        with tempfile.TemporaryFile() as log:  # -f: the master outlives ssh; a pipe would never close
            code = subprocess.run(["ssh", *self.options, "-o", "ControlMaster=yes", "-o", "ControlPersist=60",
                                   "-o", "ConnectTimeout=20", "-f", "-N", *self.dest],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log).returncode
            if code != 0:
                log.seek(0)
                raise EnvbuildError(f"ssh {self.url}: {last_line(log.read().decode(errors='replace'), f'exit {code}')}; "
                                    "check that `ssh HOST true` works (key in ssh-agent or ~/.ssh/config), or set "
                                    "ssh-args in the target")

    def run(self, script: str, input: bytes | None = None, what: str = "ssh") -> bytes:
        """Run a script there; its stdout, or EnvbuildError with its last line."""
        proc = subprocess.run(self.argv(script), input=input, capture_output=True)
        if proc.returncode != 0:
            raise EnvbuildError(f"{what} on {self.url} failed: "
                                f"{last_line(proc.stderr.decode(errors='replace'), f'exit {proc.returncode}')}")
        return proc.stdout


# --- what goes there ---------------------------------------------------------------------------


def project_files(spec: Any) -> dict[str, Path]:
    """{project path: file} of what a run sees: git's files (tracked, and untracked not ignored) or,
    outside git, every file; and the spec's data paths. Never .git or .envbuild (the records), nor
    a file a symlink leads to outside the project (a local run would not see it either)."""
    root = Path(spec.root)
    inside = root.resolve()
    names: list[str] = []
    if (root / ".git").exists():
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
                              capture_output=True)
        if proc.returncode == 0:
            names = [n.decode() for n in proc.stdout.split(b"\0") if n]
    if not names:
        names = [str(p.relative_to(root)) for p in _walk(root)]
    from envbuild.provenance import project_pathspec

    for given in spec.data:
        rel = project_pathspec(root, given) or ("." if Path(os.path.normpath(root / given)) == root else None)
        if rel is None:  # a path only this machine has: the box would run without it
            raise EnvbuildError(f"{spec.source}: data: {given!r} lies outside the project, which is all the ssh "
                                "target ships; move it into the project, or read it from a path the box has")
        names += [str(p.relative_to(root)) for p in _walk(root / rel)] if (root / rel).is_dir() else [rel]
    out = {}
    for name in names:
        path = root / name
        first = Path(name).parts[0] if Path(name).parts else ""
        if first in (".git", ".envbuild") or ".." in Path(name).parts or not path.is_file() \
                or not path.resolve().is_relative_to(inside):
            continue
        out[Path(name).as_posix()] = path
    return out


def _walk(top: Path) -> list[Path]:
    files = []
    for d, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if x not in (".git", ".envbuild")]
        files += [Path(d) / n for n in names]
    return files


def hashes(spec: Any, files: dict[str, Path]) -> dict[str, str]:
    """sha256 of each file, through the project's hash cache (an unchanged file is not read again)."""
    from envbuild.provenance import CACHE_FILE, HashCache

    cache = HashCache(Path(spec.root) / CACHE_FILE)
    try:
        return {rel: cache.sha256(p, p.stat()) for rel, p in files.items()}
    finally:
        cache.save()


def workspace_script(job: Job, store: str, files: dict[str, Path], sums: dict[str, str]) -> str:
    """The remote script of a run: make the workspace from the store, then `exec docker run`.
    It travels on stdin: the container's values are in it, and must not show in a process list."""
    from envbuild.targets.local import cli_setting

    q = shlex.quote
    lines = ["set -e", f"S={store}", f"R=\"$S/runs\"/{q(job.run_id)}", 'W="$R/workspace"',
             'mkdir -p "$R/io" "$W"']
    dirs = sorted({str(Path(rel).parent) for rel in files if str(Path(rel).parent) != "."}
                  | {rel.rstrip("/") for rel in job.spec.outputs if not Path(rel).suffix or rel.endswith("/")})
    dirs = [d for d in dirs if ".." not in Path(d).parts and not d.startswith("/")]
    for i in range(0, len(dirs), 200):
        lines.append("mkdir -p " + " ".join(f'"$W"/{q(d)}' for d in dirs[i:i + 200]))
    for rel, path in files.items():
        lines.append(f'cp "$S/blobs/{sums[rel]}" "$W"/{q(rel)}')
        if os.access(path, os.X_OK):
            lines.append(f'chmod +x "$W"/{q(rel)}')
    options = ["--init", "--name", job.name, "--label", f"dev.envbuild.run={job.name}",
               "-w", WORKDIR, "--network", job.network]
    for k, v in job.env.items():
        if cli_setting(k):  # the CLI's own (HOME): as NAME=VALUE, as the local target does
            options += ["-e", f"{k}={v}"]
        else:
            lines.append(f"export {k}={q(v)}")
            options += ["-e", k]
    if job.gpus:
        options += ["--gpus", job.gpus]
    args = " ".join(q(a) for a in ["run", "--rm", *options])
    mounts = f'-v "$W:{WORKDIR}" -v "$R/io:{CONTAINER_RUN_DIR}" --user "$(id -u):$(id -g)"'
    command = " ".join(q(a) for a in [job.image_id, *job.command])
    lines.append(f"exec docker {args} {mounts} {command} </dev/null")
    return "\n".join(lines) + "\n"


def collect_script(store: str, run_id: str, outputs: list[str]) -> str:
    """Tar the run's own files (io/) and `outputs` (allowed_outputs) to stdout, then drop the workspace."""
    q = shlex.quote
    outs = " ".join(q(o) for o in outputs)
    return (f'S={store}; R="$S/runs"/{q(run_id)}; cd "$R" || exit 0\n'
            f'set -- io; for p in {outs}; do [ -e "workspace/$p" ] && set -- "$@" "workspace/$p"; done\n'
            'tar -c -f - "$@"; rc=$?; cd /; rm -rf "$R"; exit $rc\n')


PROTECTED = (".git", ".envbuild")  # never written from a remote: git hooks run here, records are ours


def allowed_outputs(root: Path, outputs: list[str]) -> list[str]:
    """The declared outputs a remote may send back: inside the project (provenance.project_pathspec
    drops ".", ".." and absolute paths), never under PROTECTED."""
    from envbuild.provenance import project_pathspec

    rels = (project_pathspec(root, o) for o in outputs)
    return [r for r in rels if r and Path(r).parts[0] not in PROTECTED]


def unpack_results(stream: IO[bytes], root: Path, run_dir: Path, outputs: list[str]) -> int:
    """Put the collected tar in place: io/NAME into the run dir's io dir, workspace/PATH under the
    project when PATH is under a declared output. Regular files only, never through a symlink that
    leads out of where they belong; the count written."""
    allowed = [Path(o).parts for o in allowed_outputs(root, outputs)]
    written = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or ".." in parts or member.name.startswith("/") or len(parts) < 2:
                continue
            if parts[0] == "io" and len(parts) == 2:
                home, dest = run_dir / RUN_IO_DIR, run_dir / RUN_IO_DIR / parts[1]
            elif parts[0] == "workspace" and any(parts[1:1 + len(a)] == a for a in allowed):
                home, dest = root, root.joinpath(*parts[1:])
            else:
                continue
            # realpath resolves the links among the parts that exist: checked before any mkdir
            if not Path(os.path.realpath(dest.parent)).is_relative_to(Path(os.path.realpath(home))):
                raise EnvbuildError(f"{dest}: its directory leads outside {home} through a symlink; "
                                    "nothing was written there (remove the link, or point it inside)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink():  # never write through a link planted among the outputs
                dest.unlink()
            fd, tmp = new_temp(dest.parent, f".{dest.name}.", ".envbuild-part")
            try:
                os.fchmod(fd, member.mode & 0o777 | 0o600)
                with tar.extractfile(member) as src, open(fd, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                os.unlink(tmp)
                raise
            written += 1
    return written


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The layer chain ids of an image's diff ids (OCI image spec): what an engine stores layers by."""
    import hashlib

    chains: list[str] = []
    for diff in diff_ids:
        chains.append(diff if not chains else
                      "sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest())
    return chains


def filter_layers(src: IO[bytes], dest: IO[bytes], have: set[str], sent: dict[str, int]) -> None:
    """Copy a `docker save` tar, leaving out each layer.tar whose diff id is in `have` (spooled and
    hashed first: its name does not say its diff id)."""
    import hashlib
    import tempfile

    with tarfile.open(fileobj=src, mode="r|") as tar, tarfile.open(fileobj=dest, mode="w|") as out:
        for member in tar:
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None and have and member.name.endswith("layer.tar"):
                spool, h = tempfile.SpooledTemporaryFile(max_size=1 << 26), hashlib.sha256()
                while chunk := data.read(1 << 20):
                    h.update(chunk)
                    spool.write(chunk)
                if f"sha256:{h.hexdigest()}" in have:
                    sent["layers_skipped"] += 1
                    continue
                spool.seek(0)
                data = spool
            out.addfile(member, data)
            sent["image_bytes"] += member.size if member.isfile() else 0


def _gpu_lines(rows: list[list[str]]) -> list[str]:
    """As `nvidia-smi -L` says them (what the Slurm target records)."""
    return [f"GPU {r[0]}: {r[1]} (UUID: {r[4]})" for r in rows if len(r) >= 5]


class SshTarget(Target):
    backend = "ssh"

    def __init__(self, name: str, settings: dict[str, Any] | None = None) -> None:
        super().__init__(name, settings)
        if not self.settings.get("host"):
            raise EnvbuildError(f"--on {name}: an ssh target needs a table: [tool.envbuild.targets.{name}] with "
                                "backend = \"ssh\" and host = \"ssh://user@host\"")
        self.remote = Remote(self.settings["host"], tuple(self.settings.get("ssh-args", ())))
        self.store = remote_path(self.settings.get("store", DEFAULT_STORE))
        self.info: dict[str, Any] = {}
        self.gpu_rows: list[list[str]] = []
        self.wanted_gpus: str | None = None
        self.remote_chains: set[str] = set()

    def placement(self) -> dict[str, Any]:
        return {**super().placement(), "engine_id": None,
                "shipped": {"files": 0, "bytes": 0, "reused": 0, "image_sent": False, "layers_skipped": 0,
                            "image_bytes": 0}}

    def choose_gpus(self, spec: Any, wanted: str | None) -> str | None:
        self.wanted_gpus = wanted
        gpus = super().choose_gpus(spec, wanted)
        return None if gpus in ("none", "0") else gpus

    def probe(self, image_id: str = "", wanted: list[str] = ()) -> tuple[bool, list[str]]:
        """One round trip: the engine's facts, the GPUs, whether it has the image (when not: the
        layers of every image it has, so only new layers travel), which hashes the store lacks."""
        self.remote.connect()
        image = shlex.quote(image_id or "none")
        script = (f'S={self.store}; mkdir -p "$S/blobs" "$S/tmp" "$S/runs"\n'
                  "docker info --format '{{json .}}' || exit 3\n"
                  f"echo {SEP}; nvidia-smi --query-gpu={GPU_QUERY} --format=csv,noheader 2>/dev/null\n"
                  f"echo {SEP}; docker image inspect --format {{{{.Id}}}} {image} 2>/dev/null || "
                  "{ ids=$(docker image ls -q --no-trunc | sort -u); [ -z \"$ids\" ] || "
                  "docker image inspect --format '{{json .RootFS.Layers}}' $ids 2>/dev/null; }\n"
                  f'echo {SEP}; cd "$S/blobs" && while read -r h; do [ -f "$h" ] || echo "$h"; done\n')
        out = self.remote.run(script, "\n".join(wanted).encode() + b"\n", "docker info").decode(errors="replace")
        info, gpus, images, missing = (out.split(SEP + "\n") + ["", "", "", ""])[:4]
        try:
            self.info = json.loads(info.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise EnvbuildError(f"docker info on {self.remote.url} gave no answer; is docker installed and "
                                "the engine up there (ssh HOST docker info)?") from None
        self.gpu_rows = [[f.strip() for f in line.split(",")] for line in gpus.splitlines() if line.count(",") >= 4]
        has_image = bool(image_id) and images.strip() == image_id
        self.remote_chains = set() if has_image else {
            c for line in images.splitlines() if line.startswith("[") for c in chain_ids(json.loads(line))}
        return has_image, missing.split()

    def prepare(self, job: Job, say: Callable[[str], None]) -> None:
        files = project_files(job.spec)
        sums = hashes(job.spec, files)
        has_image, missing = self.probe(job.image_id, sorted(set(sums.values())))
        if job.gpus and not self.gpu_rows and "nvidia" not in json.dumps(self.info.get("Runtimes") or {}):
            if self.wanted_gpus is not None:
                raise EnvbuildError(f"--gpus {job.gpus}: the engine on {self.remote.url} has no NVIDIA runtime; "
                                    "install the NVIDIA Container Toolkit there, or run without --gpus")
            say(f"note: {job.spec.source.name} asks for gpus = {job.gpus!r} but {self.remote.url} has no NVIDIA "
                "runtime; running on CPU")
            job.gpus = None
        image_sent = {"layers_skipped": 0, "image_bytes": 0}
        if not has_image:
            say(f"sending image {job.image} to {self.remote.url} (docker save | docker load; once per image, "
                "without the layers it has)")
            image_sent = self._send_image(job.image)
        sent = self._send_files(files, sums, set(missing), say)
        job.placement.update(host=self.info.get("Name"), nodes=[self.info.get("Name") or "?"],
                             engine_id=self.info.get("ID"), gpus=_gpu_lines(self.gpu_rows), job_id=job.name,
                             shipped={**sent, "image_sent": not has_image, **image_sent})
        self._script = workspace_script(job, self.store, files, sums)

    def _send_image(self, ref: str) -> dict[str, int]:
        """`docker save | ssh docker load`, leaving out the layers the remote engine has (docker load
        reads a layer's file only when the engine lacks that layer chain)."""
        from envbuild import engine

        layers = json.loads(engine.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout)
        have = {diff for diff, chain in zip(layers, chain_ids(layers)) if chain in self.remote_chains}
        save = subprocess.Popen([engine.docker_bin(), "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.Popen(self.remote.argv("docker load -q"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        errs: dict[str, bytes] = {}
        threads = [threading.Thread(target=lambda k=k, p=p: errs.__setitem__(k, p.stderr.read()), daemon=True)
                   for k, p in (("save", save), ("load", load))]
        for t in threads:
            t.start()
        sent = {"layers_skipped": 0, "image_bytes": 0}
        try:
            filter_layers(save.stdout, load.stdin, have, sent)
            load.stdin.close()
        except (BrokenPipeError, tarfile.TarError):
            pass  # the side that failed says why
        codes = save.wait(), load.wait()
        for t in threads:
            t.join()
        if codes != (0, 0):
            why = last_line(errs.get("save", b"").decode(errors="replace"), "") or \
                last_line(errs.get("load", b"").decode(errors="replace"), f"exit {codes[1]}")
            raise EnvbuildError(f"sending image {ref} to {self.remote.url} failed: {why}")
        return sent

    def _send_files(self, files: dict[str, Path], sums: dict[str, str], missing: set[str],
                    say: Callable[[str], None]) -> dict[str, int]:
        """One tar of the blobs the remote store lacks, unpacked aside and moved in (never half a blob)."""
        by_hash = {sums[rel]: p for rel, p in files.items() if sums[rel] in missing}
        size = sum(p.stat().st_size for p in by_hash.values())
        reused = len(set(sums.values())) - len(by_hash)
        if not by_hash:
            return {"files": 0, "bytes": 0, "reused": reused}
        say(f"sending {len(by_hash)} file(s), {size} bytes to {self.remote.url} ({reused} already there)")
        script = (f'S={self.store}; d=$(mktemp -d "$S/tmp/in.XXXXXX") && tar -x -f - -C "$d" && '
                  f'find "$d" -type f -exec mv -f -t "$S/blobs" {{}} +; rc=$?; rm -rf "$d"; exit $rc')
        proc = subprocess.Popen(self.remote.argv(script), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        err = threading.Thread(target=lambda: setattr(proc, "err_text", proc.stderr.read()), daemon=True)
        err.start()
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for digest, path in by_hash.items():
                    info = tarfile.TarInfo(digest)
                    info.size, info.mode = path.stat().st_size, 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        code = proc.wait()
        err.join()
        if code != 0:
            raise EnvbuildError(f"sending files to {self.remote.url} failed: "
                                f"{last_line(getattr(proc, 'err_text', b'').decode(errors='replace'), f'exit {code}')}")
        return {"files": len(by_hash), "bytes": size, "reused": reused}

    def host_facts(self, local: dict[str, Any]) -> dict[str, Any]:
        from envbuild import nvidia

        i = self.info
        return {"os": i.get("OperatingSystem") or "unknown", "kernel": i.get("KernelVersion") or "unknown",
                "machine": i.get("Architecture") or "unknown", "cpu": None, "cpus": i.get("NCPU"),
                "memory_bytes": i.get("MemTotal"), "docker_version": i.get("ServerVersion"),
                "gpus": nvidia.gpus([r + [""] * (6 - len(r)) for r in self.gpu_rows])}

    def kill(self, job: Job, signame: str) -> None:
        subprocess.run(self.remote.argv(f"docker kill --signal {shlex.quote(signame)} {shlex.quote(job.name)}"),
                       capture_output=True, timeout=60)

    def run(self, job: Job, stopper: Stopper, out: IO[bytes], err: IO[bytes]) -> Outcome:
        with open(job.run_dir / rec.STDOUT_LOG, "wb") as out_log, open(job.run_dir / rec.STDERR_LOG, "wb") as err_log:
            stopper.started = True
            proc = subprocess.Popen(self.remote.argv("sh -s"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            code = stream(proc, [out_log, out], [err_log, err], stopper, feed=self._script.encode())
        if code == SSH_FAILED:  # first: collecting over the same broken connection would hide why
            last = last_line((job.run_dir / rec.STDERR_LOG).read_text(errors="replace"), "exit 255")
            return Outcome("failed", code, f"ssh to {self.remote.url} failed during the run: {last}")
        try:
            self.collect(job.root, job.run_dir, job.placement)
        except EnvbuildError as e:  # the run's own ending still counts; say why the outputs are missing
            return Outcome("failed", code, str(e))
        if code == 125 and not (job.run_dir / rec.STDOUT_LOG).stat().st_size:
            last = last_line((job.run_dir / rec.STDERR_LOG).read_text(errors="replace"), f"exit {code}")
            return Outcome("failed", code, f"docker run on {self.remote.url} failed: {last}")
        return Outcome("succeeded" if code == 0 else "failed", code, None)

    def collect(self, job_root: Path, run_dir: Path, placement: dict[str, Any]) -> None:
        from envbuild.spec import load_spec

        outputs = list(load_spec(job_root).outputs)
        (run_dir / RUN_IO_DIR).mkdir(exist_ok=True)
        proc = subprocess.Popen(self.remote.argv(collect_script(self.store, run_dir.name,
                                                                allowed_outputs(job_root, outputs))),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            unpack_results(proc.stdout, job_root, run_dir, outputs)
        except (tarfile.TarError, OSError) as e:
            raise EnvbuildError(f"bringing outputs back from {self.remote.url} failed: {e}") from None
        finally:
            proc.stdout.close()
            errs = proc.stderr.read().decode(errors="replace")
            proc.wait()
        if proc.returncode not in (0, None):
            raise EnvbuildError(f"bringing outputs back from {self.remote.url} failed: {last_line(errs, 'no answer')}")

    def doctor(self, spec: Any) -> list[Any]:
        from envbuild.checks import Check

        try:
            image_id = self._lock_image_id(spec)
            has_image, _ = self.probe(image_id or "")
        except EnvbuildError as e:
            return [Check("ssh + remote engine", False, True, str(e), f"ssh {' '.join(self.remote.dest)} docker info")]
        i = self.info
        return [
            Check("ssh + remote engine", True, True, f"{self.remote.url}: Docker {i.get('ServerVersion')} on "
                  f"{i.get('Name')} (engine ID {i.get('ID')})"),
            Check("GPUs", bool(self.gpu_rows), False, ", ".join(_gpu_lines(self.gpu_rows))
                  + (f"; driver {self.gpu_rows[0][2]}" if self.gpu_rows else "no nvidia-smi answer there"),
                  "install the NVIDIA driver and Container Toolkit on the remote host"),
            Check("image there", has_image, False, f"{image_id} present" if has_image else
                  (f"{image_id} not there yet: the first run sends it (docker save | docker load)" if image_id
                   else "no built image for the lock yet"), "envbuild run --on TARGET sends it"),
        ]

    @staticmethod
    def _lock_image_id(spec: Any) -> str | None:
        from envbuild import image
        from envbuild.lockfile import read_lock

        lock = read_lock(spec.root)
        facts = image.inspect(image.image_ref(spec, lock)) if lock else None
        return facts.id if facts else None
