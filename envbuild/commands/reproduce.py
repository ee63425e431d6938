"""envbuild reproduce: run a recorded run again and compare its metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def reproduce(
    run: str = typer.Argument(..., help="The run to reproduce: an id, an id prefix, or 'latest'."),
    rtol: float = typer.Option(1e-5, "--rtol", help="Relative tolerance for every metric."),
    atol: float = typer.Option(1e-8, "--atol", help="Absolute tolerance for every metric."),
    metric: list[str] = typer.Option(
        None, "--metric", help="NAME=TOL: an absolute tolerance for one metric, overriding --rtol/--atol. Repeatable."),
    allow_data_drift: bool = typer.Option(
        False, "--allow-data-drift", help="Run even when data changed since the original run (and say so)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary worktree under .envbuild/reproduce/."),
    project: Path = options.project("Project directory the run belongs to."),
    json_out: bool = options.json_out("the result"),
    report_file: Path = typer.Option(None, "--report", metavar="FILE",
                                     help="Also write the HTML report of both runs and their diff (envbuild report)."),
) -> None:
    """Run a recorded run again, from its record, and check that its metrics come back.

    The recorded commit is checked out in a temporary git worktree (with the saved uncommitted diff
    applied when the run was dirty; the project's data paths are hard-linked in) and run in the
    recorded image: by id, else pulled by its registry digest, else rebuilt from the lock copies
    saved with the run. Seed and determinism settings are the recorded ones. Every recorded data
    checksum is checked first: changed data stops it unless --allow-data-drift.

    A metric is within tolerance when |new - original| <= atol + rtol * |original|, or <= TOL
    with --metric NAME=TOL. The new run gets its own record, linked to the original.

    Exit 0 reproduced, 1 not reproduced, 2 an ingredient is missing (image, commit, data).

    Example: envbuild reproduce latest --metric loss=1e-4 --report reproduce.html
    """
    from envbuild.errors import EXIT_FAILURE
    from envbuild.output import console, info, print_json
    from envbuild.reproduce import Tolerance, parse_metric_tolerances, reproduce as run_again

    tol = Tolerance(rtol, atol, parse_metric_tolerances(metric or []))
    result = run_again(project, run, tol, allow_data_drift=allow_data_drift, keep=keep, quiet=json_out, say=info)
    if report_file:  # written whatever the verdict: a failed reproduction is what a CI artifact is for
        from envbuild import report
        from envbuild.verify import Check

        says = "reproduces" if result.reproduced else "does not reproduce"
        verdict = Check("reproduce", result.reproduced, f"run {result.new} {says} {result.original}")
        runs = [result.original] + ([result.new] if result.new else [])
        report.write(project.resolve(), runs, report_file, [verdict])
        info(f"report written: {report_file}")
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result, console)
    if not result.reproduced:
        raise typer.Exit(EXIT_FAILURE)


def _render(r, console) -> None:
    from rich.table import Table

    t = Table(title=f"run {r.new} reproducing {r.original}", title_justify="left")
    for col in ("metric", "original", "new", "delta", "tolerance", "within tolerance"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for c in r.metrics:
        t.add_row(c.name, _num(c.original), _num(c.new), "—" if c.delta is None else f"{c.delta:+.3g}",
                  f"{c.tolerance:.3g}", "[green]yes[/]" if c.ok else "[red]no[/]")
    console.print(t)
    if r.exit_code != r.original_exit_code:
        console.print(f"[red]exit code {r.exit_code}, the original's was {r.original_exit_code}[/]")
    if r.outputs_identical is not None:
        console.print("outputs: " + ("byte-identical" if r.outputs_identical else "differ from the original's"))
    if r.data_drift:
        console.print(f"[yellow]ran on changed data: {', '.join(r.data_drift)}[/]")
    console.print(f"image {r.image} ({r.image_source}); new run dir {r.run_dir}")
    console.print("[bold green]reproduced[/]" if r.reproduced else "[bold red]not reproduced[/]")


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.6g}"
