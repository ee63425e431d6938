"""Run every benchmark, print one table and write BENCHMARKS.md (`make bench`; `make bench-smoke`).

BENCHMARKS.md holds the command that produced it, the machine (cores, memory, OS, docker, python,
load), and one table: the median of N runs of each case, the reference it is compared with
(measured in the same run) and the floor the issue sets, met or not.

    python bench/run_all.py [--runs N] [--smoke] [--only lock build ...] [--out FILE]

--smoke: tiny sizes, one run, and no BENCHMARKS.md unless --out names a file. Exit 1 when a full run
misses a floor.
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from common import ROOT, Row, compile_package, machine, parser, table

BENCHES = ["lock", "build", "push", "run", "slurm", "ssh", "interactive", "data", "cli", "report", "sbom", "teambase"]  # each bench/<name>.py has measure(runs, smoke)


def command_line(argv: Sequence[str]) -> str:
    cmd = shlex.join(["python", "bench/run_all.py", *argv])
    target = os.environ.get("ENVBUILD_BENCH_TARGET")  # set by the Makefile
    return f"make {target}  ({cmd})" if target else cmd


def report(command: str, facts: dict[str, str], rows: list[Row], took: float, load_after: str) -> str:
    docs = []
    for name in dict.fromkeys(r.bench for r in rows):
        doc = (importlib.import_module(name).__doc__ or "").split("\n\n")[0].replace("\n", " ")
        docs.append(f"- **{name}**: {doc} (`bench/{name}.py`)")
    misses = [r for r in rows if r.ok is False]
    verdict = ("Every floor is met." if not misses else
               "Floors missed: " + "; ".join(f"{r.bench} / {r.case} ({r.seconds:.3f} s)" for r in misses) + ".")
    return "\n".join([
        "# Benchmarks", "",
        "envbuild against what a user would otherwise run, side by side, measured in one run on one machine.",
        "Wall-clock seconds, the median of the runs shown; `x ref` is the case's median over its reference's,",
        "both from this run. Regenerate with `make bench` (writes this file).", "",
        CACHES, "",
        f"Command: `{command}`", "",
        "| machine | |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in facts.items()),
        f"| load after | {load_after} |",
        f"| wall time | {took / 60:.1f} min |", "",
        table(rows), "",
        verdict, "",
        "What each bench measures:", "",
        *docs, "",
    ])



# how every pair is set up; each bench's docstring (bench/NAME.py) says it case by case
CACHES = ("Caches: the peer always gets what envbuild gets. Cold: empty caches on both sides (envbuild's "
          "ENVBUILD_CACHE_DIR; pip's, pip-tools' and uv's own directories; `docker build --no-cache` from an "
          "empty wheels directory), no previous lock, no image. Warm: both keep their caches and a previous "
          "lock (lock), or every wheel but no layer (build). No-op: both have everything (the image exists; "
          "docker has every layer). Run, shell, Slurm and ssh: the same image, present for both.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(__doc__)
    ap.add_argument("--only", nargs="+", choices=BENCHES, help="run only these benches")
    ap.add_argument("--out", type=Path, help="where to write the report (default BENCHMARKS.md; none with --smoke)")
    args = ap.parse_args(argv)
    runs = 1 if args.smoke else max(1, args.runs)
    out = args.out or (None if args.smoke else ROOT / "BENCHMARKS.md")
    facts = machine()
    compile_package()  # as a user's pip install would have: no timed run pays for compiling envbuild
    start = time.perf_counter()
    rows: list[Row] = []
    for name in args.only or BENCHES:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        rows += importlib.import_module(name).measure(runs, args.smoke)
        print(f"bench: {name} took {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    took = time.perf_counter() - start
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(table(rows))
    if out:
        out.write_text(report(command_line(argv), facts, rows, took, load_after))
        print(f"wrote {out}", file=sys.stderr)
    # a missed floor fails the full run; smoke runs check that the benches work, never their speed
    return 1 if not args.smoke and any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
