"""envbuild verify: one command for a CI pipeline."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def verify(
    reproduce_run: str = typer.Option(
        None, "--reproduce", metavar="RUN", help="Also reproduce this run (id, prefix or 'latest') within tolerance."),
    rtol: float = typer.Option(1e-5, "--rtol", help="Relative metric tolerance for --reproduce."),
    atol: float = typer.Option(1e-8, "--atol", help="Absolute metric tolerance for --reproduce."),
    metric: list[str] = typer.Option(None, "--metric", help="NAME=TOL for one metric with --reproduce. Repeatable."),
    provenance: bool = typer.Option(
        False, "--provenance", help="Also fetch the image's signed SLSA provenance from its registry by digest and "
        "check the signature, the subject and every material against the committed lock files."),
    key: Path = typer.Option(None, "--key", metavar="PUB", help="Public key for --provenance; default: the one "
                             "envbuild keys generate wrote."),
    image: str = typer.Option(None, "--image", metavar="REPO@sha256:...", help="The image for --provenance; "
                              "default: the digest envbuild push recorded for this lock."),
    project: Path = options.project("Project directory."),
    json_out: bool = options.json_out("the checks"),
    report_file: Path = typer.Option(None, "--report", metavar="FILE", help="Also write the checks and the HTML "
                                     "report of the runs (with --reproduce both runs, else the latest) to FILE."),
) -> None:
    """Check, for CI, that the environment is what the lock says and results still come back.

    1. the lock is fresh (the spec has not changed since envbuild lock; nothing is resolved);
    2. the image named by the lock hash is present and labelled with that lock hash;
    3. with a CUDA torch build locked: this host's NVIDIA driver is new enough for it (no driver passes);
    4. with --provenance, the image's attestation (fetched from the registry by the image digest) is
       signed by --key, names that digest as its subject, and every lock file, the base digest and
       each wheel, conda package and .deb it names match the committed lock;
    5. with --reproduce RUN, that run reproduces within tolerance (see envbuild reproduce).

    Exit 0 when every check passes, 1 when any fails.

    Examples (CI): envbuild verify --reproduce latest --metric loss=1e-3 ·
    envbuild verify --provenance --key team.pub
    """
    from envbuild.output import console, info, print_json
    from envbuild.reproduce import Tolerance, parse_metric_tolerances
    from envbuild.verify import to_dict, verify as run_checks

    tol = Tolerance(rtol, atol, parse_metric_tolerances(metric or []))
    checks = run_checks(project.resolve(), reproduce_run, tol, say=info, quiet=json_out, provenance=provenance,
                        image=image, key=key)
    if json_out:
        print_json(to_dict(checks))
    else:
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            console.print(f"{mark} {c.name}: {c.detail}")
    if report_file:
        from envbuild import report, store

        runs = next((c.runs for c in checks if c.runs), None) or [r["id"] for r in store.list_runs(project, limit=1)]
        report.write(project.resolve(), runs, report_file, checks)
        info(f"report written: {report_file}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
