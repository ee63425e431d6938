"""Benchmark `envbuild lock` against plain pip-compile and uv pip compile on the same spec.

    python bench/lock.py [--runs N] [--smoke]

Cases (medians of N runs, wall-clock seconds), on the realistic ML spec (numpy, pandas,
scikit-learn, torch==2.13.0; --smoke: five small packages):
  envbuild lock cold        empty caches (envbuild, pip, pip-tools, uv), no lockfiles
  envbuild lock warm        caches warm, inputs changed (a comment added): it resolves again
  envbuild lock no-op       inputs unchanged: must resolve nothing
  envbuild lock --check     staleness check only
  pip-compile / uv cold+warm  the same requirements, `--generate-hashes`, fresh output file
Caches: cold means empty caches for every tool (envbuild's, pip's, uv's) and no previous lock;
warm means warm caches and a previous lock (requirements.lock / out.txt) for every tool. envbuild
resolves with uv by default: its cold lock is held to uv's own (floor: at most 1.5x), and pip-compile
is shown beside both. Every tool sees the same sources: pip's configuration (on this machine a
find-links directory holding torch==2.13.0's CPU wheel and local indexes); plain uv reads none of
it, so its command line is given them here (--index-url, --extra-index-url, --find-links and pip's
best-match rule), as envbuild gives them to uv.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from common import BIN, ENVBUILD, Row, ratio, script_main, timed, under

SMALL = ["six", "idna", "packaging", "attrs", "certifi"]
REALISTIC = ["numpy", "pandas", "scikit-learn", "torch==2.13.0"]
PIP_COMPILE_COLD, PIP_COMPILE_WARM = "pip-compile --generate-hashes, cold", "pip-compile --generate-hashes, warm"
UV_COLD = "uv pip compile --generate-hashes, cold"


def _write_project(proj: Path, deps: list[str]) -> None:
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "requirements.in").write_text("".join(d + "\n" for d in deps))
    (proj / "envbuild.toml").write_text('requirements = "requirements.in"\n')


def _clean(proj: Path) -> None:
    for name in ("requirements.lock", "envbuild.lock", "out.txt"):
        (proj / name).unlink(missing_ok=True)


def _caches(root: Path, name: str) -> dict[str, str]:
    d = root / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return {"ENVBUILD_CACHE_DIR": str(d / "envbuild"), "PIP_CACHE_DIR": str(d / "pip"),
            "XDG_CACHE_HOME": str(d / "xdg"), "UV_CACHE_DIR": str(d / "uv")}


def pip_sources_for_uv() -> list[str]:
    """pip's configured indexes and find-links as uv options: what a user passes to give uv the same sources."""
    from envbuild.resolvers.indexes import pip_sources

    src = pip_sources()
    args = ["--index-strategy", "unsafe-best-match"]
    args += ["--index-url", src.index_url] if src.index_url else []
    for url in src.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in src.find_links:
        args += ["--find-links", link]
    return args


def measure(runs: int, smoke: bool) -> list[Row]:
    deps = SMALL if smoke else REALISTIC
    envbuild = [*ENVBUILD, "lock"]
    pip_compile = [str(BIN / "pip-compile"), "--generate-hashes", "--allow-unsafe", "-q", "-o", "out.txt",
                   "requirements.in"]
    uv = [str(BIN / "uv"), "pip", "compile", "--generate-hashes", "-q", "-o", "out.txt", *pip_sources_for_uv(),
          "requirements.in"]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-lock-") as tmp:
        root = Path(tmp)
        proj = root / "proj"
        _write_project(proj, deps)
        warm = _caches(root, "warm")

        def case(name: str, args: list[str], env: dict[str, str], cold: str | None = None) -> None:
            times.setdefault(name, []).append(timed(args, proj, env))
            if cold:  # a cold cache holds torch's wheel (~700 MB with uv): drop it once used
                shutil.rmtree(root / cold, ignore_errors=True)

        for i in range(runs):  # interleaved, so a busy moment on the machine hits every case alike
            _clean(proj)
            case("envbuild lock, cold", envbuild, _caches(root, f"cold{i}"), f"cold{i}")
            _clean(proj)
            timed(envbuild, proj, warm)  # warm the caches and leave a lock behind
            _write_project(proj, [*deps, "# changed"])  # new file bytes: the lock is stale, pins stay
            case("envbuild lock, warm (inputs changed)", envbuild, warm)
            _write_project(proj, deps)
            timed(envbuild, proj, warm)
            case("envbuild lock, no-op", envbuild, warm)
            case("envbuild lock --check", [*envbuild, "--check"], warm)
            for label, cmd in (("pip-compile --generate-hashes", pip_compile), ("uv pip compile --generate-hashes", uv)):
                (proj / "out.txt").unlink(missing_ok=True)
                case(f"{label}, cold", cmd, _caches(root, f"cold{i}-{label[:2]}"), f"cold{i}-{label[:2]}")
                timed(cmd, proj, warm)  # warm caches; out.txt stays: the previous lock, as envbuild has its own
                _write_project(proj, [*deps, "# changed"])
                case(f"{label}, warm", cmd, warm)
                _write_project(proj, deps)
    spec = f"spec: {', '.join(deps)}"
    return [
        Row("lock", PIP_COMPILE_COLD, times[PIP_COMPILE_COLD], note=spec),
        Row("lock", UV_COLD, times[UV_COLD], ref=PIP_COMPILE_COLD),
        Row("lock", "envbuild lock, cold", times["envbuild lock, cold"], ref=UV_COLD, floor=ratio(1.5),
            note="empty caches, no lock; resolves with uv (the default)"),
        Row("lock", PIP_COMPILE_WARM, times[PIP_COMPILE_WARM]),
        Row("lock", "uv pip compile --generate-hashes, warm", times["uv pip compile --generate-hashes, warm"],
            ref=PIP_COMPILE_WARM),
        Row("lock", "envbuild lock, warm (inputs changed)", times["envbuild lock, warm (inputs changed)"],
            ref=PIP_COMPILE_WARM, note="resolves again"),
        Row("lock", "envbuild lock, no-op", times["envbuild lock, no-op"], ref=PIP_COMPILE_WARM, floor=under(0.15),
            note="inputs unchanged"),
        Row("lock", "envbuild lock --check", times["envbuild lock --check"], ref=PIP_COMPILE_WARM, floor=under(0.15)),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
