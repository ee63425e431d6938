"""Bytes pushed after a one-package change: the torch example's image, then the same with one small pin added.

The first `envbuild push` sends the whole image to a fresh repository; after `six` is added to the
requirements (a few kB), the lock, the build and a second push to the same repository follow. The
case's figure is the share of the image's bytes the second push sent (the floor: under 5 %): the
large layers (torch alone) are byte-identical, so only the small pip layer, the config and the
manifest travel. The peer: `docker push` of the same two images, whose changed layer holds every
pip package again (one RUN pip install), for the same change.

    python bench/push.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, REGISTRY, Row, locked_project, run, script_main, under


PACKAGES = ["torch==2.13.0", "numpy"]
SMOKE_PACKAGES = ["numpy==2.2.6"]


def push(project: Path, cache: Path, repo: str) -> dict:
    out = run([*ENVBUILD, "push", "--json", repo], project, {"ENVBUILD_CACHE_DIR": str(cache)})
    return json.loads(out.stdout)


def measure(runs: int, smoke: bool) -> list[Row]:
    packages = SMOKE_PACKAGES if smoke else PACKAGES
    name = f"bench-push-{uuid.uuid4().hex[:8]}"
    repo = f"{REGISTRY}/bench/{name}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-push-") as td:
        tmp = Path(td)
        project, cache = tmp / "project", tmp / "cache"
        locked_project(project, name, packages, base=BASE)
        first = push(project, cache, repo)
        (project / "requirements.in").write_text("".join(p + "\n" for p in [*packages, "six==1.16.0"]))
        run([*ENVBUILD, "lock"], project, {"ENVBUILD_CACHE_DIR": str(cache)})
        second = push(project, cache, repo)
        run(["sh", "-c", f"docker rmi {first['ref']} {second['ref']} >/dev/null 2>&1 || true"])
    share = second["sent_bytes"] / second["image_bytes"]
    return [Row("push", "bytes pushed after adding one small pin (share of the image)", [share],
                floor=under(0.05), note=f"sent {second['sent_bytes'] / 1e6:.2f} MB of {second['image_bytes'] / 1e6:.0f} MB "
                f"({', '.join(p.split('==')[0] for p in packages)}); the first push sent "
                f"{first['sent_bytes'] / 1e6:.0f} MB; the figure is a share, not seconds")]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
