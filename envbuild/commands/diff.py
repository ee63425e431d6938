"""envbuild diff: why two runs differ, grouped by cause."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def diff(
    run_a: str = typer.Argument(..., help="First run: an id, an id prefix, or 'latest'."),
    run_b: str = typer.Argument(..., help="Second run: an id, an id prefix, or 'latest'."),
    project: Path = options.project("Project directory whose runs to read."),
    json_out: bool = options.json_out("the diff"),
) -> None:
    """Say what differs between two runs, grouped by cause.

    Code (commits, files changed between them, uncommitted diffs), data (paths whose checksums
    differ), environment (packages added, removed or changed between the two locks; base digest;
    image), seed and determinism settings, command and params, hardware; then the metric deltas.
    Identical ingredients are said to be identical.

    Example: envbuild diff 20261128T0630 latest
    """
    from envbuild import store
    from envbuild.compare import diff_records, render
    from envbuild.output import console, print_json

    dir_a, rec_a = store.load_run(project, run_a)
    dir_b, rec_b = store.load_run(project, run_b)
    result = diff_records(rec_a, rec_b, Path(dir_a), Path(dir_b))
    if json_out:
        print_json(result.to_dict())
    else:
        render(result, console)
