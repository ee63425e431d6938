"""Benchmark `envbuild build` and `envbuild push` against a good hand-written two-stage `docker build`.

Both install the same pins (one requirements.lock, made by the real pip-compile) onto the same
digest-pinned base, with no network inside the build. Caches are equal for both sides:

- cold: envbuild starts from an empty ENVBUILD_CACHE_DIR (no wheels, no layers) with its image
  removed; the reference runs `pip download --no-cache-dir` into an empty wheels/ directory, then
  `docker build --no-cache` of a two-stage Dockerfile (venv in a builder stage, copied onto the base).
  Neither compresses (envbuild compresses while the engine loads; that is in its time).
- rebuild, wheels cached: both have every wheel, neither has a layer (envbuild: a new cache dir
  holding only the wheels, image removed; docker: `--no-cache` with wheels/ in the context).
- no-op: the image exists (envbuild "up to date"; docker: every layer cached).
- compression: the image's own layers, gzip level 6: envbuild's pinned zlib-ng on every core against
  the host's `gzip -6` (what `docker push` uses is Go's compress/gzip, slower still).
- push: to a fresh repository on the loopback registry per run: `envbuild push` against `docker push`
  of the reference image. Both remember which repository got each layer before and mount it from
  there (docker: the engine's distribution metadata; envbuild: its push memory), so the first run
  uploads and later runs mount: the median is the warm case for both.

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

from common import (BASE, ENVBUILD, PYTHON, REGISTRY, BenchError, Row, locked_project, ratio, repeat, run, script_main,
                    timed, under)


PACKAGES = ["numpy==2.2.6", "requests==2.32.3", "attrs==24.2.0", "packaging==24.2"]
SMOKE_PACKAGES = ["six==1.16.0", "idna==3.7"]
REFERENCE = """\
FROM {base} AS builder
COPY requirements.lock /tmp/requirements.lock
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels --require-hashes \\
        -r /tmp/requirements.lock

FROM {base}
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
CLASSIC = {"DOCKER_BUILDKIT": "0"}  # the engine here (20.10) has no buildx: its classic builder


def size(ref: str) -> int:
    from envbuild.image import inspect

    facts = inspect(ref)
    if facts is None:
        raise BenchError(f"bench: image {ref} is not in the engine")
    return facts.size


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


def own_layers(cache: Path, image_id: str) -> list[Path]:
    from envbuild.assemble import described
    from envbuild.oci.blobs import Store

    store = Store(cache / "oci")
    written = described(store, image_id)
    if written is None:
        raise BenchError(f"bench: no description of {image_id} in {cache}")
    return [store.path(d) for d in written.diff_ids[written.base_layers:]]


def compress_ours(layers: list[Path]) -> float:
    from envbuild.oci.gzip import compress_file

    start = time.perf_counter()
    for path in layers:
        with open(os.devnull, "wb") as sink:
            compress_file(path, sink)
    return time.perf_counter() - start


def compress_host(layers: list[Path]) -> float:
    start = time.perf_counter()
    for path in layers:
        run(["sh", "-c", f"gzip -6 -c '{path}' > /dev/null"])
    return time.perf_counter() - start


def measure(runs: int, smoke: bool) -> list[Row]:
    packages = SMOKE_PACKAGES if smoke else PACKAGES
    name = f"bench-build-{uuid.uuid4().hex[:8]}"
    ref_tag = f"envbuild/{name}-reference:latest"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-build-") as td:
        tmp = Path(td)
        project = tmp / "project"
        lock = locked_project(project, name, packages, base=BASE)
        ours = f"envbuild/{name}:{lock.lock_hash[:12]}"
        ctx = reference_context(project, lock.base.pinned, tmp / "ref")
        counter = iter(range(sys.maxsize))
        run(["docker", "pull", "-q", lock.base.pinned])  # both sides start with the base in the engine

        def gone() -> None:
            run(["sh", "-c", f"docker rmi {ours} >/dev/null 2>&1 || true"])

        def cold() -> float:  # an empty cache (no wheels, no layers), no image
            gone()
            return timed([*ENVBUILD, "build"], project, {"ENVBUILD_CACHE_DIR": str(tmp / f"cache{next(counter)}")})

        def rebuild() -> float:  # wheels cached, no layers, no image
            gone()
            cache = tmp / f"cache{next(counter)}"
            shutil.copytree(tmp / "cache0" / "wheels", cache / "wheels", copy_function=os.link)
            return timed([*ENVBUILD, "build"], project, {"ENVBUILD_CACHE_DIR": str(cache)})

        try:
            plain = repeat(lambda: reference_cold(ctx, ref_tag), runs)
            envbuild = repeat(cold, runs)
            plain_warm = repeat(lambda: timed(["docker", "build", "-q", "--no-cache", "--network", "none", "-t",
                                               ref_tag, str(ctx)], env=CLASSIC), runs)
            envbuild_warm = repeat(rebuild, runs)
            cached = repeat(lambda: timed(["docker", "build", "-q", "--network", "none", "-t", ref_tag, str(ctx)],
                                          env=CLASSIC), runs)
            last_cache = tmp / f"cache{next(counter) - 1}"
            noop = repeat(lambda: timed([*ENVBUILD, "build"], project, {"ENVBUILD_CACHE_DIR": str(last_cache)}), runs)
            ref_size, our_size = size(ref_tag), size(ours)
            from envbuild.image import inspect

            layers = own_layers(last_cache, inspect(ours).id)  # type: ignore[union-attr]
            layer_mb = sum(p.stat().st_size for p in layers) / 1e6
            gz_host = repeat(lambda: compress_host(layers), runs)
            gz_ours = repeat(lambda: compress_ours(layers), runs)
            pushes = iter(range(sys.maxsize))

            def docker_push() -> float:
                remote = f"{REGISTRY}/bench/{name}-ref{next(pushes)}:latest"
                run(["docker", "tag", ref_tag, remote])
                try:
                    return timed(["docker", "push", "-q", remote])
                finally:
                    run(["docker", "rmi", remote])

            def envbuild_push() -> float:
                return timed([*ENVBUILD, "push", f"{REGISTRY}/bench/{name}-ours{next(pushes)}"], project,
                             {"ENVBUILD_CACHE_DIR": str(last_cache)})

            push_ref = repeat(docker_push, runs)
            push_ours = repeat(envbuild_push, runs)
        finally:
            run(["sh", "-c", f"docker rmi {ours} {ref_tag} >/dev/null 2>&1 || true"])
    pins = f"{len(packages)} pins: {', '.join(p.split('==')[0] for p in packages)}"
    cold_ref = "docker build (two-stage, hand-written), cold"
    warm_ref = "docker build, wheels present, --no-cache"
    cached_ref = "docker build, every layer cached"
    gz_ref = "gzip -6 (host zlib), the image's own layers"
    push_name = "docker push (reference image), fresh repository"
    return [
        Row("build", cold_ref, plain, note=f"image {ref_size / 1e6:.0f} MB; pip download --no-cache-dir + "
            f"docker build --no-cache; {pins}"),
        Row("build", "envbuild build, cold", envbuild, ref=cold_ref, floor=ratio(0.8),
            note=f"image {our_size / 1e6:.0f} MB ({our_size / ref_size:.2f} x ref); empty cache, no image"),
        Row("build", warm_ref, plain_warm, note="every wheel present, no layer"),
        Row("build", "envbuild build, empty layer store", envbuild_warm, ref=warm_ref,
            note="every wheel cached, no layer, no image"),
        Row("build", cached_ref, cached, note="the docker side of a no-op"),
        Row("build", "envbuild build, no-op", noop, ref=cached_ref, floor=under(0.15), note="image exists: up to date"),
        Row("build", gz_ref, gz_host, note=f"{layer_mb:.0f} MB uncompressed"),
        Row("build", "envbuild compression (zlib-ng, every core)", gz_ours, ref=gz_ref,
            note="the blobs a push or --oci sends; made once per layer"),
        Row("build", push_name, push_ref, note="compresses as it pushes; layers pushed before are mounted"),
        Row("build", "envbuild push, fresh repository", push_ours, ref=push_name,
            note="blobs compressed at build; layers pushed before are mounted"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
