"""A conda project on a conda team base, sharing the base's packages, against the same project installing them again.

The team base (`envbuild base build`) holds python and `bigpkg`, a conda package of 200 MB of
incompressible data (a stand-in for a large library such as pytorch); the project's environment.yml
adds `smallpkg`, which needs it. envbuild holds the base's pins and builds a conda layer of
smallpkg alone. The reference is the same project with `override-base = ["python", "bigpkg"]`: the
same lock otherwise, but the base's packages fetched, linked, written and compressed again, which
is what a project on a team base got before sharing (and what a Dockerfile `FROM` the base running
its own conda install gets). Both sides: a local channel (no network), an empty ENVBUILD_CACHE_DIR
and no image of theirs in the engine before each run. The note gives each image's own bytes.

    python bench/teambase.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, REGISTRY, Row, repeat, run, script_main

BIG_MB, SMOKE_BIG_MB = 200, 2


def _channel(channel: Path, big_mb: int) -> None:
    from tests.helpers.projects import conda_package, index_channel, make_build_channel

    make_build_channel(channel)  # python 3.11.9 (a shim onto the base's python3.11), greet, greetlib
    conda_package(channel, "bigpkg", "1.0", files={"lib/bigpkg/blob.bin": os.urandom(big_mb << 20)})
    conda_package(channel, "smallpkg", "1.0", ("bigpkg 1.*", "python >=3.11"),
                  files={"share/smallpkg/README": b"small\n"})
    index_channel(channel)


def _project(root: Path, name: str, base: str, channel: Path, deps: list[str], extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\n'
                                         f'conda = "environment.yml"\n{extra}')
    (root / "environment.yml").write_text(f"channels: [{channel.as_uri()}]\ndependencies:\n"
                                          + "".join(f"  - {d}\n" for d in deps))
    return root


def _image_bytes(ref: str) -> int:
    out = run(["docker", "image", "inspect", "--format", "{{.Size}}", ref])
    return int(out.stdout.strip())


def measure(runs: int, smoke: bool) -> list[Row]:
    tag = uuid.uuid4().hex[:8]
    refs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-teambase-") as td:
        tmp = Path(td)
        channel = tmp / "channel"
        _channel(channel, SMOKE_BIG_MB if smoke else BIG_MB)
        env = {"ENVBUILD_CACHE_DIR": str(tmp / "team-cache")}
        team = _project(tmp / "team", f"bench-condateam-{tag}", BASE, channel, ["python=3.11", "bigpkg"])
        run([*ENVBUILD, "lock"], team, env)
        built = json.loads(run([*ENVBUILD, "base", "build", "--json", "--push",
                                f"{REGISTRY}/bench/condateam-{tag}:1"], team, env).stdout)
        team_base = built["repo_digest"]
        refs += [built["ref"], team_base]  # the projects' builds pull the base by digest
        sides = {
            "shared": _project(tmp / "shared", f"bench-oncondateam-{tag}", team_base, channel,
                               ["python=3.11", "smallpkg"]),
            "again": _project(tmp / "again", f"bench-oncondateam-{tag}", team_base, channel,
                              ["python=3.11", "smallpkg"], 'override-base = ["python", "bigpkg"]\n'),
        }
        results: dict[str, dict] = {}
        times: dict[str, list[float]] = {}
        for side, proj in sides.items():
            run([*ENVBUILD, "lock"], proj, env)
            counter = iter(range(runs))

            def one(proj: Path = proj, side: str = side) -> float:
                import time

                cache = {"ENVBUILD_CACHE_DIR": str(tmp / f"cache-{side}-{next(counter)}")}
                start = time.perf_counter()
                results[side] = json.loads(run([*ENVBUILD, "build", "--json"], proj, cache).stdout)
                took = time.perf_counter() - start
                refs.append(results[side]["ref"])
                return took

            def clean(side: str = side) -> None:
                if side in results:
                    run(["sh", "-c", f"docker rmi {results[side]['ref']} >/dev/null 2>&1 || true"])

            times[side] = repeat(one, runs, before=clean)
        base_bytes = _image_bytes(built["ref"])
        own = {side: (_image_bytes(r["ref"]) - base_bytes) / 1e6 for side, r in results.items()}
        run(["sh", "-c", f"docker rmi {' '.join(dict.fromkeys(refs))} >/dev/null 2>&1 || true"])
    big = SMOKE_BIG_MB if smoke else BIG_MB
    again = "conda project on a team base, installing the base's packages again (override-base)"
    return [
        Row("teambase", again, times["again"],
            note=f"image adds {own['again']:.1f} MB to the team base; cold cache, no image"),
        Row("teambase", f"conda project on a conda team base ({big} MB package in the base), sharing it",
            times["shared"], ref=again,
            note=f"image adds {own['shared']:.2f} MB to the team base; cold cache, no image"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
