"""Benchmark `envbuild build` (cold and no-op) against `docker build` of a hand-written Dockerfile.

Both install the same pins (one requirements.lock, made by the real pip-compile) onto the same
digest-pinned base, with no network inside the build (containers here cannot reach an index
over TLS, and envbuild never lets them):

- envbuild cold: `envbuild build --no-cache` with an empty wheel cache (ENVBUILD_CACHE_DIR), so it
  downloads and verifies every wheel on the host, then builds its two-stage image;
- docker build cold (the reference): what a user writes by hand: `pip download --no-cache-dir
  --require-hashes -r requirements.lock -d wheels` on the host, then a one-stage Dockerfile that
  COPYs the lock and the wheels and runs `python3 -m venv /opt/venv && pip install --no-index
  --find-links ... --require-hashes`; `docker build --no-cache --network none`;
- envbuild no-op: the image for this lock exists ("up to date"), against `docker build` of the
  hand-written Dockerfile with every layer cached.
Both image sizes are in the notes.

    python bench/build.py [--runs N] [--smoke]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Sequence

from common import ENVBUILD, PYTHON, BenchError, Row, repeat, run, script_main, timed, under

from tests.helpers.locking import make_locked_project  # the one place lock inputs are made

BASE = os.environ.get("ENVBUILD_TEST_BASE", "127.0.0.1:5000/envbuild/base:bookworm")
PACKAGES = ["numpy==2.2.6", "requests==2.32.3", "attrs==24.2.0", "packaging==24.2"]
SMOKE_PACKAGES = ["six==1.16.0", "idna==3.7"]
REFERENCE = """\
FROM {base}
COPY requirements.lock /tmp/requirements.lock
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels --require-hashes \\
        -r /tmp/requirements.lock
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
CLASSIC = {"DOCKER_BUILDKIT": "0"}  # the engine here (20.10) builds with the classic builder, as envbuild does


def size_mb(ref: str) -> str:
    from envbuild.image import inspect

    facts = inspect(ref)
    if facts is None:
        raise BenchError(f"bench: image {ref} is not in the engine")
    return f"image {facts.size / 1e6:.0f} MB"


def reference_context(project: Path, pinned_base: str, ctx: Path) -> Path:
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(REFERENCE.format(base=pinned_base))
    shutil.copy(project / "requirements.lock", ctx / "requirements.lock")
    return ctx


def reference_cold(ctx: Path, tag: str) -> float:
    """pip download on the host, then docker build with no layer cache: the user's cold build."""
    shutil.rmtree(ctx / "wheels", ignore_errors=True)
    start = time.perf_counter()
    run([PYTHON, "-m", "pip", "download", "-q", "--no-cache-dir", "--no-deps", "--require-hashes",
         "-r", str(ctx / "requirements.lock"), "-d", str(ctx / "wheels")])
    run(["docker", "build", "-q", "--no-cache", "--network", "none", "-t", tag, str(ctx)], env=CLASSIC)
    return time.perf_counter() - start


def measure(runs: int, smoke: bool) -> list[Row]:
    packages = SMOKE_PACKAGES if smoke else PACKAGES
    name = f"bench-build-{uuid.uuid4().hex[:8]}"
    ref_tag = f"envbuild/{name}-reference:latest"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-build-") as td:
        tmp = Path(td)
        project = tmp / "project"
        lock = make_locked_project(project, name, packages, base=BASE)
        ours = f"envbuild/{name}:{lock.lock_hash[:12]}"
        ctx = reference_context(project, lock.base.pinned, tmp / "ref")
        caches = iter(range(sys.maxsize))

        def cold() -> float:  # a fresh, empty wheel cache each time
            return timed([*ENVBUILD, "build", "--no-cache"], project, {"ENVBUILD_CACHE_DIR": str(tmp / f"cache{next(caches)}")})

        try:
            plain = repeat(lambda: reference_cold(ctx, ref_tag), runs)
            envbuild = repeat(cold, runs)
            cached = repeat(lambda: timed(["docker", "build", "-q", "--network", "none", "-t", ref_tag, str(ctx)],
                                          env=CLASSIC), runs)
            noop = repeat(lambda: timed([*ENVBUILD, "build"], project, {"ENVBUILD_CACHE_DIR": str(tmp / "cache0")}), runs)
            ref_size, our_size = size_mb(ref_tag), size_mb(ours)
        finally:
            run(["docker", "rmi", ours, ref_tag])
    ref, ref_cached = "docker build (hand-written), cold", "docker build (hand-written), cached"
    pins = f"{len(packages)} pins: {', '.join(p.split('==')[0] for p in packages)}"
    return [
        Row("build", ref, plain, note=f"{ref_size}; pip download + docker build --no-cache; {pins}"),
        Row("build", "envbuild build, cold", envbuild, ref=ref, note=f"{our_size}; empty wheel cache, --no-cache"),
        Row("build", ref_cached, cached, note="every layer cached"),
        Row("build", "envbuild build, no-op", noop, ref=ref_cached, floor=under(1.0), note="image exists: up to date"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
