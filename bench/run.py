"""Benchmark `envbuild run` of a trivial script against `docker run` of the same image and command,
and against the same script run natively.

The project is locked (real pip-compile) and built once, untimed. Then, per run:
- native:      python hello.py on the host;
- docker run:  docker run --rm --network none -v PROJECT:/workspace -w /workspace IMAGE python hello.py;
- envbuild:    envbuild run hello.py (the same container, plus the run record: git state, data
               checksums, image and lock facts, the seeding hook).
The overhead envbuild may add over docker run is the floor.

    python bench/run.py [--runs N] [--smoke]
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import ENVBUILD, PYTHON, Row, over_ref, repeat, run, script_main, timed

from tests.helpers.locking import make_locked_project

BASE = os.environ.get("ENVBUILD_TEST_BASE", "127.0.0.1:5000/envbuild/base:bookworm")
PACKAGES = ["six==1.16.0"]
SCRIPT = "print('hello')\n"


def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-run-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-run-") as tmp:
        proj, cache = Path(tmp) / "project", Path(tmp) / "cache"
        lock = make_locked_project(proj, name, PACKAGES, base=BASE)
        (proj / "hello.py").write_text(SCRIPT)
        env = {"ENVBUILD_CACHE_DIR": str(cache)}
        run([*ENVBUILD, "build"], proj, env)
        image = f"envbuild/{name}:{lock.lock_hash[:12]}"
        docker = ["docker", "run", "--rm", "--network", "none", "-v", f"{proj}:/workspace", "-w", "/workspace",
                  image, "python", "hello.py"]
        ours = [*ENVBUILD, "run", "hello.py"]
        try:
            run(docker)  # untimed: the first container start warms the engine's caches
            run(ours, proj, env)
            native = repeat(lambda: timed([PYTHON, "hello.py"], proj), runs)
            plain = repeat(lambda: timed(docker, proj), runs)
            envbuild = repeat(lambda: timed(ours, proj, env), runs)
        finally:
            run(["docker", "rmi", image])
    ref = "docker run (same image, command)"
    return [
        Row("run", "python hello.py (native)", native, ref=ref),
        Row("run", ref, plain),
        Row("run", "envbuild run hello.py", envbuild, ref=ref, floor=over_ref(0.5), note="+ run record"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
