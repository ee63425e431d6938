"""What every benchmark shares: timing, medians, floors, the machine, one table.

A bench script measures cases into `Row`s: the median wall-clock seconds of N runs, the case it is
compared with (its reference, measured in the same run), and where the issue sets one, a floor the
figure must meet. `table` renders rows of any number of scripts as one Markdown table, so a script
run alone and bench/run_all.py print the same thing.

Benches use envbuild and this module, not the tests, with three exceptions that are stand-ins
rather than tests: the record sets of tests/helpers/records.py (report), the local conda channel
of tests/helpers/projects.py (teambase) and the loopback ssh box of tests/helpers/engines.py (ssh),
each too large to keep twice.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # scripts run as `python bench/x.py` import envbuild from here
    sys.path.insert(0, str(ROOT))

# what `make base` made and where it lives (the tests use the same variables)
BASE = os.environ.get("ENVBUILD_TEST_BASE", "127.0.0.1:5000/envbuild/base:bookworm")
REGISTRY = os.environ.get("ENVBUILD_TEST_REGISTRY", "127.0.0.1:5000")
PYTHON = sys.executable
BIN = Path(sys.executable).parent
# the envbuild under test: this checkout, however the venv was installed
ENV = {"PYTHONPATH": str(ROOT)}
# what a user types: the `envbuild` executable of this venv (python -m adds runpy's start-up, ~15 ms)
ENVBUILD = [str(BIN / "envbuild")] if (BIN / "envbuild").is_file() else [PYTHON, "-m", "envbuild"]


def compile_package() -> None:
    """Byte-compile envbuild as `pip install` does for a user: a checkout (an editable install) has no
    .pyc until a first run writes them, and none at all under PYTHONDONTWRITEBYTECODE."""
    import compileall

    compileall.compile_dir(ROOT / "envbuild", quiet=1)


def locked_project(root: Path, name: str, requirements: Sequence[str], *, base: str,
                   env: dict[str, str] | None = None, extra: str = "") -> Any:
    """A project (pyproject.toml naming the base, plus `extra` spec lines; requirements.in,
    train.py) locked by the real `envbuild lock`; its envbuild.lock."""
    from envbuild.lockfile import require_lock

    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\n'
                                         f'requirements = "requirements.in"\n{extra}')
    (root / "requirements.in").write_text("".join(r + "\n" for r in requirements))
    (root / "train.py").write_text("print('hello')\n")
    run([*ENVBUILD, "lock"], root, env)
    return require_lock(root)


class BenchError(SystemExit):
    """A benchmarked command failed: the bench stops with its output instead of a wrong figure."""


def run(args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), cwd=cwd, env={**os.environ, **ENV, **(env or {})},
                          capture_output=True, text=True, stdin=stdin)
    if proc.returncode != 0:
        raise BenchError(f"bench: `{' '.join(map(str, args))[:200]}` failed ({proc.returncode}):\n"
                         f"{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
    return proc


def timed(args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one command (failure stops the bench)."""
    start = time.perf_counter()
    run(args, cwd, env)
    return time.perf_counter() - start


def clock(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one in-process call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], float], runs: int, before: Callable[[], object] | None = None) -> list[float]:
    """`runs` timings of fn (which returns its own seconds); `before` runs untimed ahead of each."""
    out = []
    for _ in range(runs):
        if before:
            before()
        out.append(fn())
    return out


@dataclass(frozen=True)
class Floor:
    """A figure the issue asks for. kind: "under" (seconds < limit), "over_ref" (seconds - ref < limit),
    "throughput" (ref seconds / seconds >= limit, i.e. at least that share of the reference's speed)."""

    kind: str
    limit: float

    def ok(self, seconds: float, ref: float | None) -> bool:
        if self.kind == "under":
            return seconds < self.limit
        if ref is None:
            return False
        if self.kind == "over_ref":
            return seconds - ref < self.limit
        if self.kind == "ratio":
            return seconds / ref <= self.limit
        return ref / seconds >= self.limit

    def text(self) -> str:
        return {"under": f"< {self.limit:g} s", "over_ref": f"< ref + {self.limit:g} s",
                "ratio": f"<= {self.limit:g} x ref",
                "throughput": f">= {self.limit:.0%} of ref speed"}[self.kind]


def under(limit: float) -> Floor:
    return Floor("under", limit)


def over_ref(limit: float) -> Floor:
    return Floor("over_ref", limit)


def ratio(limit: float) -> Floor:
    return Floor("ratio", limit)


def throughput(share: float) -> Floor:
    return Floor("throughput", share)


@dataclass
class Row:
    """One case: the median of its timings, its reference (a case of the same bench), a floor."""

    bench: str
    case: str
    times: list[float]
    ref: str | None = None
    floor: Floor | None = None
    note: str = ""
    ref_seconds: float | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.ref_seconds if self.ref_seconds else None

    @property
    def ok(self) -> bool | None:
        return None if self.floor is None else self.floor.ok(self.seconds, self.ref_seconds)


def link_refs(rows: list[Row]) -> list[Row]:
    """Fill each row's ref_seconds from the row its `ref` names (same bench)."""
    by_name = {(r.bench, r.case): r for r in rows}
    for r in rows:
        if r.ref:
            target = by_name.get((r.bench, r.ref))
            if target is None:
                raise BenchError(f"bench {r.bench}: case {r.case!r} names a reference {r.ref!r} it did not measure")
            r.ref_seconds = target.seconds
    return rows


def _secs(s: float) -> str:
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def table(rows: list[Row]) -> str:
    """One Markdown table of every row (refs linked here)."""
    link_refs(rows)
    head = ["bench", "case", "median s", "runs", "reference (same run)", "x ref", "floor", "meets", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        meets = "" if r.ok is None else ("yes" if r.ok else "**NO**")
        cells = [r.bench, r.case, _secs(r.seconds), str(len(r.times)), r.ref or "",
                 "" if r.ratio is None else f"{r.ratio:.2f}", r.floor.text() if r.floor else "", meets, r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _first_line(args: list[str]) -> str | None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else None


def machine() -> dict[str, str]:
    """The facts a reader needs to weigh the figures: cores, memory, OS, docker, python, load."""
    from envbuild.provenance import host_facts

    from envbuild.engine import server_version

    docker = shutil.which("docker")
    server = server_version()
    client = _first_line([docker, "version", "--format", "{{.Client.Version}}"]) if docker else None
    facts = host_facts(server)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": f"{facts['cpu']} ({facts['cpus']} cores)",
        "memory": f"{(facts['memory_bytes'] or 0) / 2**30:.1f} GiB",
        "os": f"{facts['os']}, kernel {facts['kernel']} ({facts['machine']})",
        "docker": f"engine {server or 'not reachable'}, CLI {client or '-'}",
        "python": f"{platform.python_version()} ({sys.executable})",
        "load at start": " ".join(f"{x:.2f}" for x in load) if load else "-",
    }


def parser(doc: str | None, default_runs: int = 5) -> argparse.ArgumentParser:
    """The options every bench script takes: --runs, --smoke."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=default_runs, help=f"runs per case; the median is reported (default {default_runs})")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run: checks the bench works (CI)")
    return ap


def script_main(doc: str | None, measure: Callable[[int, bool], list[Row]], argv: Sequence[str] | None) -> list[Row]:
    """`python bench/<x>.py [--runs N] [--smoke]`: measure, print that bench's table."""
    args = parser(doc).parse_args(argv)
    runs = 1 if args.smoke else max(1, args.runs)
    rows = measure(runs, args.smoke)
    print(table(rows))
    return rows
