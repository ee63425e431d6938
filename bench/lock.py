"""Benchmark `envbuild lock` against plain pip-compile and uv pip compile on the same spec.

    python bench/lock.py [--runs N] [--smoke] [--spec small|realistic]

Cases (medians of N runs, wall-clock seconds):
  envbuild lock cold        empty caches (envbuild, pip, pip-tools, uv), no lockfiles
  envbuild lock warm        caches warm, inputs changed (a dependency spelled differently)
  envbuild lock no-op       inputs unchanged: must resolve nothing
  envbuild lock --check     staleness check only
  pip-compile / uv cold+warm  the same requirements, `--generate-hashes`, fresh output file
The realistic spec (numpy, pandas, scikit-learn, torch==2.13.0) finds torch as a local CPU wheel
through pip's find-links; uv ignores pip's config, so only here it gets `--find-links` from
PIP_FIND_LINKS (never in a lockfile).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SPECS = {
    "small": ["six", "idna", "packaging", "attrs", "certifi"],
    "realistic": ["numpy", "pandas", "scikit-learn", "torch==2.13.0"],
}


def _run(args: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(args), cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return took


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


def measure(spec: str, runs: int) -> list[tuple[str, float]]:
    deps = SPECS[spec]
    envbuild = [sys.executable, "-m", "envbuild", "lock"]
    pip_compile = [str(BIN / "pip-compile"), "--generate-hashes", "--allow-unsafe", "-q", "-o", "out.txt",
                   "requirements.in"]
    uv = [str(BIN / "uv"), "pip", "compile", "--generate-hashes", "-q", "-o", "out.txt", "requirements.in"]
    if os.environ.get("PIP_FIND_LINKS") and spec == "realistic":
        uv += ["--find-links", os.environ["PIP_FIND_LINKS"].split()[0]]
    env = {"PYTHONPATH": str(REPO)}
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-") as tmp:
        root = Path(tmp)
        proj = root / "proj"
        _write_project(proj, deps)
        warm = {**env, **_caches(root, "warm")}

        def case(name: str, fn: Callable[[], float]) -> None:
            results.setdefault(name, []).append(fn())

        for i in range(runs):
            cold = {**env, **_caches(root, f"cold{i}")}
            _clean(proj)
            case("envbuild lock cold", lambda: _run(envbuild, proj, cold))
            _clean(proj)
            _run(envbuild, proj, warm)  # warm the caches and leave a lock behind
            _write_project(proj, [*deps, "# changed"])  # new file bytes: the lock is stale, pins stay
            case("envbuild lock warm (inputs changed)", lambda: _run(envbuild, proj, warm))
            _write_project(proj, deps)
            _run(envbuild, proj, warm)
            case("envbuild lock no-op", lambda: _run(envbuild, proj, warm))
            case("envbuild lock --check", lambda: _run([*envbuild, "--check"], proj, warm))
            for label, cmd in (("pip-compile --generate-hashes", pip_compile), ("uv pip compile --generate-hashes", uv)):
                cold = {**env, **_caches(root, f"cold{i}-{label[:2]}")}
                (proj / "out.txt").unlink(missing_ok=True)
                case(f"{label} cold", lambda: _run(cmd, proj, cold))
                (proj / "out.txt").unlink(missing_ok=True)
                case(f"{label} warm", lambda: _run(cmd, proj, warm))
    return [(name, statistics.median(times)) for name, times in results.items()]


def table(rows: list[tuple[str, float]], runs: int, spec: str) -> str:
    ref = dict(rows).get("pip-compile --generate-hashes warm") or 1.0
    out = [f"envbuild lock benchmark: spec={spec} ({', '.join(SPECS[spec])}), median of {runs} run(s)",
           f"{'case':<42} {'seconds':>9} {'x pip-compile warm':>19}"]
    out += [f"{name:<42} {secs:>9.3f} {secs / ref:>19.2f}" for name, secs in rows]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per case (the median is reported)")
    parser.add_argument("--smoke", action="store_true", help="one run of the small spec: a fast check for CI")
    parser.add_argument("--spec", choices=sorted(SPECS), default="small")
    args = parser.parse_args(argv)
    runs, spec = (1, "small") if args.smoke else (max(1, args.runs), args.spec)
    print(table(measure(spec, runs), runs, spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
