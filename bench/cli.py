"""Benchmark the CLI's start-up: `envbuild --help`, and `envbuild runs`, `trace` and `runs verify`
over 1,000 run records.

All are compared with the bare interpreter start-up (`python -c pass`) measured in the same run:
what is left over is envbuild's own imports and work. Records are full schema-v1 records, each with
one output file, sealed into the project's chain (chain.seal), as `envbuild run` leaves them.
`trace` is timed cold (no outputs index: every record is read) and warm (the index is current).

    python bench/cli.py [--runs N] [--smoke]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from common import ENVBUILD, PYTHON, Row, repeat, script_main, timed, under

RECORDS, SMOKE_RECORDS = 1000, 20


def write_records(root: Path, n: int) -> None:
    """n finished, sealed runs under root/.envbuild/runs, one a minute apart; run i made a file
    holding `model i`."""
    from envbuild import chain, store
    from envbuild.fsutil import sha256_bytes
    from envbuild.record import example as sample

    for i in range(n):
        minute = f"{i // 60 % 24:02d}{i % 60:02d}"
        run_id = f"2026{1 + i // 1440 % 12:02d}01T{minute}00Z-{i:06x}"
        started = f"2026-{run_id[4:6]}-01T{minute[:2]}:{minute[2:]}:00.000001Z"
        d = store.new_run_dir(root, run_id)
        outputs = [{"path": "outputs/model.npy", "sha256": sha256_bytes(b"model %d" % i), "bytes": 8}]
        chain.seal(root, d, sample(id=run_id, started_at=started, metrics={"loss": 1 / (i + 1), "acc": 0.5},
                                   outputs=outputs))


def measure(runs: int, smoke: bool) -> list[Row]:
    n = SMOKE_RECORDS if smoke else RECORDS
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-cli-") as tmp:
        root = Path(tmp)
        write_records(root, n)
        env = {"COLUMNS": "160"}
        # one untimed start of each first: the page cache holds the modules and records
        timed([*ENVBUILD, "runs"], root, env)
        python = repeat(lambda: timed([PYTHON, "-c", "pass"], root), runs)
        timed([*ENVBUILD, "--help"], root, env)  # untimed: renders the screen once into the help cache
        helps = repeat(lambda: timed([*ENVBUILD, "--help"], root, env), runs)
        listing = repeat(lambda: timed([*ENVBUILD, "runs"], root, env), runs)
        as_json = repeat(lambda: timed([*ENVBUILD, "runs", "--json", "-n", str(n)], root, env), runs)
        model = root / "model.npy"  # made by the oldest run
        model.write_bytes(b"model 0")
        trace = [*ENVBUILD, "trace", str(model)]
        index = root / ".envbuild" / "outputs-index.json"
        cold = repeat(lambda: timed(trace, root, env), runs, before=lambda: index.unlink(missing_ok=True))
        warm = repeat(lambda: timed(trace, root, env), runs)
        verify = repeat(lambda: timed([*ENVBUILD, "runs", "verify"], root, env), runs)
    ref = "python -c pass"
    return [
        Row("cli", ref, python, note="interpreter start-up"),
        Row("cli", "envbuild --help", helps, ref=ref, floor=under(0.15),
            note="rendered by typer + rich once, then from the help cache"),
        Row("cli", f"envbuild runs ({n} records)", listing, ref=ref, floor=under(0.5), note="table of the newest 20"),
        Row("cli", f"envbuild runs --json -n {n}", as_json, ref=ref, note="every record as JSON"),
        Row("cli", f"envbuild trace ({n} records, no index)", cold, ref=ref, floor=under(1.0),
            note="reads every record, writes the index"),
        Row("cli", f"envbuild trace ({n} records, index current)", warm, ref=ref, floor=under(1.0)),
        Row("cli", f"envbuild runs verify ({n} records)", verify, ref=ref, note="every record and file re-hashed"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
