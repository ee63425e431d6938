"""Benchmark `envbuild run --on slurm` of a trivial script against a bare `srun --container` of the
same bundle and command, on the cluster of `make slurm-up`.

The project is locked (real pip-compile) and built once, and one untimed `envbuild run --on slurm`
makes the bundle (umoci unpack, once per image). Then, per run:
- srun --container: srun --container=BUNDLE python hello.py (the bundle envbuild made: the project
                    at /workspace), what a user who made the bundle by hand would type;
- envbuild:         envbuild run --on slurm hello.py (srun of the same step, log streamed, plus the
                    run record: git state, image and lock facts, the seeding hook);
- for scale:        envbuild run hello.py on the local engine (the same record, docker run).
The overhead envbuild may add over srun is the floor.

    python bench/slurm.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, Row, locked_project, over_ref, repeat, run, script_main, timed


PACKAGES = ["six==1.16.0"]


def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-slurm-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-slurm-") as tmp:
        proj = Path(tmp) / "project"
        lock = locked_project(proj, name, PACKAGES, base=BASE)
        (proj / "hello.py").write_text("print('hello')\n")
        image = f"envbuild/{name}:{lock.lock_hash[:12]}"
        ours = [*ENVBUILD, "run", "--on", "slurm", "hello.py"]
        first = None
        try:
            first = json.loads(run([*ENVBUILD, "run", "--json", "--on", "slurm", "hello.py"], proj).stdout)
            bare = ["srun", f"--container={first['placement']['bundle']}", "python", "hello.py"]
            image_path = {"PATH": first["env"]["PATH"]}  # srun hands its PATH to the container
            run(bare, proj, image_path)  # untimed: the first start warms the page cache
            plain = repeat(lambda: timed(bare, proj, image_path), runs)
            envbuild = repeat(lambda: timed(ours, proj), runs)
            local = repeat(lambda: timed([*ENVBUILD, "run", "hello.py"], proj), runs)
        finally:
            run(["docker", "rmi", image])
            if first:  # this bench's image is its own: its bundles go with it
                bundle = Path(first["placement"]["bundle"])
                shutil.rmtree(bundle, ignore_errors=True)
                shutil.rmtree(bundle.with_name(bundle.name.split("-")[0]), ignore_errors=True)
    ref = "srun --container (same bundle, command)"
    return [
        Row("slurm", ref, plain),
        Row("slurm", "envbuild run --on slurm hello.py", envbuild, ref=ref, floor=over_ref(1.0),
            note="srun --container + run record"),
        Row("slurm", "envbuild run hello.py (local engine)", local, ref=ref,
            note="the record's own cost, for scale (bench/run.py compares it with docker run)"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
