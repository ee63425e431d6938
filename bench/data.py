"""Benchmark data checksums, as every `envbuild run` takes them (provenance.data_checksums).

- first-time hashing of a 1 GB data set (16 files of 64 MiB, empty hash cache) against `sha256sum`
  of the same files; both read from the page cache (one untimed pass first), so this compares
  hashing, not the disk;
- the re-hash of an unchanged data set of 10,000 small files (the hash cache answers) against its
  own first-time hash.

    python bench/data.py [--runs N] [--smoke]
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Sequence

from common import Row, clock, repeat, run, script_main, throughput, timed, under

from envbuild.provenance import CACHE_FILE, data_checksums

BIG = (16, 64 << 20)  # files, bytes each: 1 GiB
MANY = (10_000, 1024)
SMOKE_BIG, SMOKE_MANY = (4, 1 << 20), (200, 1024)
FANOUT = 100  # files per directory in the many-files set


def make_files(dest: Path, count: int, size: int) -> list[Path]:
    paths = []
    block = os.urandom(min(size, 1 << 20))
    for i in range(count):
        path = dest / f"part{i // FANOUT:03d}" / f"f{i:05d}.bin" if count > FANOUT else dest / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(i.to_bytes(8, "little"))  # no two files alike
            for _ in range(size // len(block)):
                f.write(block)
            f.write(block[: size % len(block)])
        paths.append(path)
    return paths


def fresh(root: Path) -> None:
    (root / CACHE_FILE).unlink(missing_ok=True)


def measure(runs: int, smoke: bool) -> list[Row]:
    (n_big, big_size), (n_many, many_size) = (SMOKE_BIG, SMOKE_MANY) if smoke else (BIG, MANY)
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-data-") as tmp:
        big_root, many_root = Path(tmp) / "big", Path(tmp) / "many"
        files = make_files(big_root / "data", n_big, big_size)
        make_files(many_root / "data", n_many, many_size)
        sha256sum = ["sha256sum", *map(str, files)]
        run(sha256sum)  # untimed: both sides read from the page cache

        ref = repeat(lambda: timed(sha256sum), runs)
        ours = repeat(lambda: clock(lambda: data_checksums(big_root, ["data/"])), runs, before=lambda: fresh(big_root))
        first = repeat(lambda: clock(lambda: data_checksums(many_root, ["data/"])), runs, before=lambda: fresh(many_root))
        data_checksums(many_root, ["data/"])  # the cache now knows every file
        again = repeat(lambda: clock(lambda: data_checksums(many_root, ["data/"])), runs)
    total = n_big * big_size
    mb = lambda secs: f"{total / secs / 1e6:,.0f} MB/s"  # noqa: E731
    sha_case, first_case = f"sha256sum ({total / 2**30:.2f} GiB)", f"first-time hash, {n_many:,} files"
    rows = [
        Row("data", sha_case, ref, note=mb(statistics.median(ref))),
        Row("data", f"first-time hash ({n_big} x {big_size >> 20} MiB)", ours, ref=sha_case, floor=throughput(0.8),
            note=mb(statistics.median(ours))),
        Row("data", first_case, first, note=f"{n_many:,} x {many_size} B, empty cache"),
        Row("data", f"unchanged re-hash, {n_many:,} files", again, ref=first_case, floor=under(0.2),
            note="hash cache hits"),
    ]
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
