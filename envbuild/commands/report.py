"""envbuild report: one HTML page of runs, to look at and share."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def report(
    runs: list[str] = typer.Argument(None, help="Runs to show: ids, id prefixes or 'latest' (default: latest). "
                                                "Several are overlaid on each chart; two are also diffed."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The HTML file to write (replaces only an earlier envbuild report)."),
    project: Path = options.project("Project directory whose runs to read."),
    json_out: bool = options.json_out("{report, runs, bytes}"),
) -> None:
    """Write one self-contained HTML page about runs: open it offline, attach it to a CI job, mail it.

    For each run: its card (status, command, seed, image and base digests, lock hash, commit and
    whether it was dirty, data and outputs with their checksums, GPU and driver, duration), a chart
    of every metric logged over steps (envbuild.track.log_metrics(..., step=N)) with the runs
    overlaid, tables of single-value metrics and params, and the lineage of each output drawn
    (base and lock files → image → run → outputs, data files → run). With two runs, the diff by
    cause as `envbuild diff` says it. Needs plotly (pip install 'envbuild\\[report]'); the page
    carries plotly.js inside it, so it needs no network to open.

    Examples: envbuild report latest -o report.html
              envbuild report 20261128T0630 latest -o compare.html
    """
    from envbuild import report as page
    from envbuild.output import info, print_json

    refs = runs or ["latest"]
    info(f"writing the report of {', '.join(refs)} ...")
    path = page.write(project.resolve(), refs, output)
    if json_out:
        print_json({"report": str(path.resolve()), "runs": refs, "bytes": path.stat().st_size})
    else:
        info(f"report written: {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
