"""A throwaway container of the base image, for the steps that must run inside the target.

Two steps need the target's own programs: apt's maintainer scripts (system-packages) and the
target interpreter compiling `.pyc` files. Everything else (placing wheels, conda packages, the
runtime) is pure file placement done on the host. A sandbox runs with `--network none`, from the
base pinned by digest, with its inputs mounted; envbuild then reads what it changed (`docker diff`
+ `docker export`) and writes the layer itself, so the engine decides no byte of the image.

A kept sandbox (apt's, read after it ends) is labelled with the process that owns it; a sandbox
whose owner died before removing it (SIGKILL) is swept by the next one, on the same host.

The `docker` CLI, not docker-py, drives it: the same CLI `envbuild run` uses, so the user's
contexts, DOCKER_HOST and credential helpers apply alike, and no extra import slows start-up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path, PurePosixPath
from typing import Sequence

from envbuild import engine
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.oci.layer import Entry, tar_entries


OWNER_LABEL = "dev.envbuild.sandbox.owner"  # host/boot id/pid/start time of the envbuild that made it


def _owner(pid: int) -> str | None:
    """`host/boot/pid/start`: who a process is on this machine, pid reuse included; None when gone."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]  # field 22: start time
    except (OSError, IndexError):
        return None
    return f"{socket.gethostname()}/{boot}/{pid}/{start}"


def sweep() -> list[str]:
    """Remove kept sandboxes whose owner is gone (killed before its `remove`); their names."""
    proc = engine.docker("ps", "-a", "--filter", f"label={OWNER_LABEL}",
                         "--format", f'{{{{.Names}}}} {{{{.Label "{OWNER_LABEL}"}}}}', check=False)
    here = f"{socket.gethostname()}/"
    gone = []
    for line in (proc.stdout or b"").decode().splitlines():
        name, _, owner = line.partition(" ")
        if not owner.startswith(here):  # another machine's (a shared engine): not ours to judge
            continue
        pid = owner.split("/")[2]
        if pid.isdigit() and _owner(int(pid)) != owner:
            remove(name)
            gone.append(name)
    return gone


def run(image: str, command: Sequence[str], mounts: Sequence[tuple[Path, str, str]] = (),
        user: str = "0:0", what: str = "sandbox", keep: bool = True) -> str:
    """Run `command` in a container of `image`, keep the container, return its name.

    mounts: (host path, container path, "ro"|"rw"). The caller removes it (`remove`). With
    keep=False (only the mounts' contents are wanted) the engine removes it as it exits
    (`--rm`), even when envbuild itself was killed meanwhile."""
    name = f"envbuild-sandbox-{uuid.uuid4().hex[:12]}"
    opts = ["--name", name, "--user", user]
    owner = _owner(os.getpid()) if keep else None
    if owner:  # kept until the caller's remove(): if we die first, the next sandbox sweeps it
        sweep()
        opts += ["--label", f"{OWNER_LABEL}={owner}"]
    for host, inside, mode in mounts:
        opts += ["-v", f"{host}:{inside}:{mode}"]
    proc = engine.docker(*engine.run_args(image, list(command), rm=not keep, options=opts), check=False)
    if proc.returncode != 0:
        remove(name)
        out = (proc.stdout or b"").decode(errors="replace") + (proc.stderr or b"").decode(errors="replace")
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise EnvbuildError(f"{what} failed in a container of {image} (exit {proc.returncode}):\n{tail}",
                            EXIT_FAILURE)
    return name


def remove(name: str) -> None:
    engine.docker("rm", "-f", name, check=False)


def changes(name: str) -> list[Entry]:
    """What the container added, changed or deleted, as layer entries (deletions as whiteouts)."""
    diff = engine.docker("diff", name).stdout.decode()
    kept, deleted = set(), []
    for line in diff.splitlines():
        kind, _, path = line.partition(" ")
        if kind in ("A", "C"):
            kept.add(path.lstrip("/"))
        elif kind == "D":
            deleted.append(path.lstrip("/"))
    proc = subprocess.Popen([engine.docker_bin(), "export", name], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    entries = tar_entries(proc.stdout, keep=kept.__contains__)
    if proc.wait() != 0:
        raise EnvbuildError(f"docker export {name} failed (exit {proc.returncode})", EXIT_FAILURE)
    for path in deleted:
        p = PurePosixPath(path)
        if not any(str(parent) in deleted for parent in p.parents):  # a deleted dir hides its children
            entries.append(Entry(str(p.parent / f".wh.{p.name}").lstrip("./"), "whiteout"))
    return entries
