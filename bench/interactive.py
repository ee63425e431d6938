"""Benchmark `envbuild shell` against `docker run -i` of the same image and shell: a session that
ends at once (stdin at end of file), so what is timed is start-up, teardown and the record.

The project is locked (real pip-compile) and built once, untimed. Then, per run:
- docker run:     docker run -i --rm --network none -v PROJECT:/workspace -w /workspace IMAGE bash;
- envbuild shell: the same container, plus the lock check and the shell-kind record (image, lock,
                  git state, outputs checksummed at exit).

    python bench/interactive.py [--runs N] [--smoke]
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, Row, locked_project, over_ref, repeat, run, script_main, timed




def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-shell-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-shell-") as tmp:
        proj, cache = Path(tmp) / "project", Path(tmp) / "cache"
        lock = locked_project(proj, name, ["six==1.16.0"], base=BASE)
        env = {"ENVBUILD_CACHE_DIR": str(cache)}
        run([*ENVBUILD, "build"], proj, env)
        image = f"envbuild/{name}:{lock.lock_hash[:12]}"
        docker = ["docker", "run", "-i", "--rm", "--network", "none", "-v", f"{proj}:/workspace", "-w", "/workspace",
                  image, "bash"]
        ours = [*ENVBUILD, "shell"]
        try:
            run(docker)  # untimed: the first container start warms the engine's caches
            run(ours, proj, env)
            plain = repeat(lambda: timed(docker, proj), runs)
            envbuild = repeat(lambda: timed(ours, proj, env), runs)
        finally:
            run(["docker", "rmi", image])
    ref = "docker run -i (same image, bash)"
    return [
        Row("interactive", ref, plain),
        Row("interactive", "envbuild shell", envbuild, ref=ref, floor=over_ref(0.5), note="+ lock check, shell record"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
