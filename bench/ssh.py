"""Benchmark `envbuild run --on box` (the ssh target) of a trivial script against a plain
`docker -H ssh://... run` of the same image and command, on a second engine behind Debian's sshd
on loopback (tests/helpers/engines.py ssh_box: the client's dirs hidden from it).

The project (40 data files of 64 KiB) is locked and built once; one untimed `envbuild run --on box`
sends the image (docker save | docker load, without the base's layers, which the
remote engine has) and the files. Then, per run:
- docker -H ssh://:  docker run --rm --network none -v DIR:/workspace IMAGE python hello.py, with
                     DIR a copy of the project already on the remote host (what a user who rsynced
                     it by hand would type; the docker CLI's own ssh connection, as configured);
- envbuild:          envbuild run --on box hello.py, nothing changed (hashes asked, nothing sent,
                     a fresh workspace, outputs back, the run record);
- one file changed:  the same after one data file changed (untimed, before each run): only it is
                     sent; the files and bytes sent are in the note (from the record's placement).
The overhead envbuild may add over the plain run when nothing changed is the floor.

    python bench/ssh.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, Row, locked_project, over_ref, repeat, run, script_main, timed

from envbuild.fsutil import cache_dir
from tests.helpers.engines import ssh_box

PACKAGES = ["six==1.16.0"]


def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-ssh-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-ssh-") as tmp:
        proj = Path(tmp) / "project"
        lock = locked_project(proj, name, PACKAGES, base=BASE)
        image = f"envbuild/{name}:{lock.lock_hash[:12]}"
        (proj / "hello.py").write_text("print('hello')\n")
        (proj / "data").mkdir()
        for i in range(4 if smoke else 40):
            (proj / "data" / f"part-{i:03d}.bin").write_bytes(os.urandom(65536))
        with open(proj / "pyproject.toml", "a") as f:
            f.write('data = ["data/"]\n')
        cache_dir().mkdir(parents=True, exist_ok=True)
        try:
            with ssh_box([tmp, cache_dir()], image=BASE) as box:
                with open(proj / "pyproject.toml", "a") as f:
                    f.write(f'\n[tool.envbuild.targets.box]\nbackend = "ssh"\nhost = "{box["url"]}"\n'
                            f'store = "{box["store"]}"\nssh-args = {json.dumps(box["ssh_args"])}\n')
                ours = [*ENVBUILD, "run", "--on", "box", "hello.py"]
                first = json.loads(run([*ENVBUILD, "run", "--json", "--on", "box", "hello.py"], proj).stdout)
                # the plain side: the project already there by hand, the docker CLI's own ssh (its config)
                there = Path(box["store"]).parent / "plain"
                shutil.copytree(proj, there, ignore=shutil.ignore_patterns(".envbuild"))
                shim = Path(tmp) / "bin"
                shim.mkdir()
                (shim / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {box["ssh_config"]} "$@"\n')
                (shim / "ssh").chmod(0o755)
                plain_env = {"PATH": f"{shim}:{os.environ['PATH']}"}
                plain = ["docker", "-H", box["url"], "run", "--rm", "--network", "none", "-v", f"{there}:/workspace",
                         "-w", "/workspace", first["image"]["id"], "python", "hello.py"]
                run(plain, proj, plain_env)  # untimed: the first start warms the page cache
                bare = repeat(lambda: timed(plain, proj, plain_env), runs)
                same = repeat(lambda: timed(ours, proj), runs)
                part = proj / "data" / "part-000.bin"
                changed = repeat(lambda: timed(ours, proj), runs, before=lambda: part.write_bytes(os.urandom(65536)))
                records = json.loads(run([*ENVBUILD, "runs", "--json"], proj).stdout)
                last = max(records, key=lambda r: r["started_at"])["placement"]["shipped"]
        finally:
            run(["docker", "rmi", image])
    once = first["placement"]["shipped"]
    ref = "docker -H ssh:// run (same image, command)"
    return [
        Row("ssh", ref, bare),
        Row("ssh", "envbuild run --on box hello.py (nothing changed)", same, ref=ref, floor=over_ref(1.0),
            note=f"once: {once['files']} files, the image ({once['image_bytes'] / 1e6:.1f} MB, "
                 f"{once['layers_skipped']} layers it had left out); then nothing"),
        Row("ssh", "envbuild run --on box hello.py (one file changed)", changed, ref=ref,
            note=f"sent {last['files']} file(s), {last['bytes']} bytes; {last['reused']} already there"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
