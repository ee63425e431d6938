"""Benchmark: a cold `envbuild build` against plain `docker build` of a hand-written Dockerfile.

Both install the same pins (one requirements.lock, made by the real pip-compile) onto the same
digest-pinned base, with no network inside the build (containers here cannot reach an index
over TLS, and envbuild never lets them):

- envbuild: `envbuild build --no-cache` with an empty wheel cache (ENVBUILD_CACHE_DIR), so it
  downloads and verifies every wheel on the host, then builds its two-stage image.
- reference: what a user writes by hand: `pip download --no-cache-dir --require-hashes -r
  requirements.lock -d wheels` on the host, then a one-stage Dockerfile that COPYs the lock and
  the wheels and runs `python3 -m venv /opt/venv && pip install --no-index --find-links ...
  --require-hashes`; `docker build --no-cache --network none`.

It reports the mean seconds of each, both image sizes side by side, and the time of a no-op
`envbuild build` (the image exists: "up to date"). Usage:

    python bench/build.py [--runs N] [--smoke] [--packages six==1.16.0 idna==3.7 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.locking import make_locked_project  # noqa: E402  (the one place lock inputs are made)

BASE = os.environ.get("ENVBUILD_TEST_BASE", "127.0.0.1:5000/envbuild/base:bookworm")
DEFAULT_PACKAGES = ["numpy==2.2.6", "requests==2.32.3", "attrs==24.2.0", "packaging==24.2"]
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


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def _timed(args: list[str], **kw) -> float:
    start = time.perf_counter()
    _run(args, **kw)
    return time.perf_counter() - start


def _size(ref: str) -> int:
    return int(_run(["docker", "image", "inspect", "--format", "{{.Size}}", ref]).stdout.strip())


def envbuild(project: Path, tmp: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENVBUILD_CACHE_DIR": str(tmp)}
    return _timed([sys.executable, "-m", "envbuild", "build", *args], cwd=project, env=env)


def reference(project: Path, pinned_base: str, tag: str, tmp: Path) -> float:
    ctx = tmp / "ctx"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(REFERENCE.format(base=pinned_base))
    (ctx / "requirements.lock").write_bytes((project / "requirements.lock").read_bytes())
    start = time.perf_counter()
    _run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps", "--require-hashes",
          "-r", str(ctx / "requirements.lock"), "-d", str(ctx / "wheels")])
    _run(["docker", "build", "--no-cache", "--network", "none", "-t", tag, str(ctx)],
         env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold builds of each kind (default 3)")
    ap.add_argument("--smoke", action="store_true", help="one run of a two-package lock: checks the bench works")
    ap.add_argument("--packages", nargs="+", help="pins to lock (default: numpy, requests, attrs, packaging)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    runs = 1 if a.smoke else a.runs
    packages = a.packages or (SMOKE_PACKAGES if a.smoke else DEFAULT_PACKAGES)
    name = f"bench-build-{uuid.uuid4().hex[:8]}"
    ref_tag = f"envbuild/{name}-reference:latest"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-") as td:
        tmp = Path(td)
        lock = make_locked_project(tmp / "project", name, packages, base=BASE)
        ours = f"envbuild/{name}:{lock.lock_hash[:12]}"
        try:
            cold, plain = [], []
            for i in range(runs):
                cold.append(envbuild(tmp / "project", tmp / f"cache{i}", "--no-cache"))
                plain.append(reference(tmp / "project", lock.base.pinned, ref_tag, tmp / f"ref{i}"))
            noop = [envbuild(tmp / "project", tmp / "cache0") for _ in range(max(runs, 3))]
            result = {
                "packages": packages, "runs": runs, "base": lock.base.pinned,
                "envbuild_cold_s": statistics.mean(cold), "reference_cold_s": statistics.mean(plain),
                "envbuild_noop_s": statistics.median(noop),
                "envbuild_size_bytes": _size(ours), "reference_size_bytes": _size(ref_tag),
            }
        finally:
            subprocess.run(["docker", "rmi", ours, ref_tag], capture_output=True)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        mb = 1e6
        print(f"pins: {' '.join(packages)}  (runs: {runs}, base: {result['base']})")
        print(f"{'':28}{'envbuild build':>16}{'docker build (hand-written)':>30}")
        print(f"{'cold build, s (mean)':28}{result['envbuild_cold_s']:>16.2f}{result['reference_cold_s']:>30.2f}")
        print(f"{'image size, MB':28}{result['envbuild_size_bytes'] / mb:>16.1f}{result['reference_size_bytes'] / mb:>30.1f}")
        print(f"{'no-op build, s (median)':28}{result['envbuild_noop_s']:>16.3f}{'-':>30}")
    return result


if __name__ == "__main__":
    main()
