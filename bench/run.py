"""Benchmark `envbuild run` of a trivial script against `docker run` of the same image and command,
and against the same script run natively.

The project is a realistic one: a git history of a few commits with a change not yet committed, and
a data directory of 200 files (checksummed into every record; the hash cache makes that cheap after
the first run). It is locked (the real `envbuild lock`) and built once, untimed. Then, per run:
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

from common import BASE, ENVBUILD, PYTHON, Row, locked_project, over_ref, repeat, run, script_main, timed


PACKAGES = ["six==1.16.0"]
SCRIPT = "print('hello')\n"


def with_history_and_data(proj: Path, files: int = 200) -> None:
    """data/ with `files` files (pyproject names it), three commits, and one uncommitted change."""
    data = proj / "data"
    data.mkdir()
    for i in range(files):
        (data / f"part-{i:04d}.bin").write_bytes(os.urandom(4096))
    spec = proj / "pyproject.toml"
    spec.write_text(spec.read_text() + 'data = ["data/"]\noutputs = ["outputs/"]\n')
    (proj / ".gitignore").write_text(".envbuild/\noutputs/\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    run([*git, "init", "-q"], proj)
    for i in range(3):
        (proj / "train.py").write_text(f"print('hello')  # revision {i}\n")
        run([*git, "add", "-A"], proj)
        run([*git, "commit", "-q", "-m", f"revision {i}"], proj)
    (proj / "train.py").write_text("print('hello')  # work in progress\n")  # a dirty tree: code.diff is written


def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-run-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-run-") as tmp:
        proj, cache = Path(tmp) / "project", Path(tmp) / "cache"
        env = {"ENVBUILD_CACHE_DIR": str(cache)}
        lock = locked_project(proj, name, PACKAGES, base=BASE, env=env)
        (proj / "hello.py").write_text(SCRIPT)
        with_history_and_data(proj)
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
        Row("run", "envbuild run hello.py", envbuild, ref=ref, floor=over_ref(0.2),
            note="+ run record: git state and diff, 200 data files checksummed, lock and image facts"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
