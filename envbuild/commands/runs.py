"""envbuild runs: list the project's run records, or show one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from envbuild import options

app = typer.Typer(help="List run records (newest first), or show one with `envbuild runs show ID|latest`.",
                  invoke_without_command=True)

KEY_METRICS = 3  # metrics shown per row in the table


@app.callback()
def runs(
    ctx: typer.Context,
    json_out: bool = options.json_out("the records"),
    n: Optional[int] = typer.Option(20, "-n", min=1, help="Show at most N runs (newest first)."),
    project: Path = options.project("Project directory."),
) -> None:
    """List this project's runs, newest first: id, status, start, duration, seed, commit, key metrics."""
    ctx.obj = project  # `envbuild runs -C DIR show` reads it
    if ctx.invoked_subcommand is not None:
        return
    from envbuild import runner, store
    from envbuild.output import console, print_json

    runner.settle(project)  # records of detached jobs (--on slurm --detach) that have ended since
    records = store.list_runs(project, limit=n)
    if json_out:
        print_json(records)
        return
    if not records:
        console.print("no runs yet; start one with [bold]envbuild run SCRIPT[/]")
        return
    console.print(_table(records))


def _dirty_mark(dirty: Optional[bool]) -> str:
    return "+dirty?" if dirty is None else "+dirty" if dirty else ""  # None: git failed


def _fmt_metric(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(records: list) -> "object":
    from rich.table import Table

    from envbuild.record import Record

    colors = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "cancelled": "yellow", "running": "cyan"}
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "status", "started", "duration", "seed", "commit", "metrics"):
        table.add_column(col, no_wrap=col != "metrics")
    for r in map(Record.from_dict, records):
        commit = (r.code.commit or "-")[:8] + _dirty_mark(r.code.dirty)
        status = r.status if r.status is not None else "?"
        if status == "failed" and r.exit_code is not None:
            status += f" ({r.exit_code})"
        duration = r.duration_s
        table.add_row(
            r.id if r.id is not None else "?", f"[{colors.get(r.status, 'white')}]{status}[/]",
            (r.started_at or "")[:19].replace("T", " "),
            f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
            str(r.seed if r.seed is not None else "-"), commit,
            "  ".join(f"{k}={_fmt_metric(v)}" for k, v in list(r.metrics.items())[:KEY_METRICS]),
        )
    return table


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument("latest", help="A run id, a unique prefix of one, or latest."),
    json_out: bool = options.json_out("the whole record"),
    project: Optional[Path] = options.project("Project directory (default: the one given to runs, else .).",
                                              default=None),
) -> None:
    """Show one run record: status, command, image, code, data, metrics and outputs."""
    from envbuild import store
    from envbuild.output import console, print_json
    from envbuild.record import Record

    run_dir, raw = store.load_run(project or ctx.obj or Path("."), ref)
    if json_out:
        print_json(raw)
        return
    r = Record.from_dict(raw)
    image, code = r.image, r.code
    rows = [
        ("id", r.id), ("status", f"{r.status} (exit {r.exit_code})" + (f": {r.reason}" if r.reason else "")),
        ("started", r.started_at), ("duration", f"{r.duration_s} s"),
        ("command", " ".join(r.command)), ("seed", r.seed),
        ("determinism", ", ".join(r.determinism.settings) or "-"),
        ("image", f"{image.ref}  id {image.id}"),
        ("registry digest", image.repo_digest or "-"),
        ("base", f"{image.base}@{image.base_digest}"),
        ("lock hash", r.lock.lock_hash),
        ("commit", f"{code.commit} ({code.branch})" + (" dirty, diff in code.diff" if code.dirty else "")
                     + (f" state unknown: {code.error}" if code.error else "")),
        ("data", "; ".join(f"{d.path} {d.sha256[:12]} ({d.files} files)" for d in r.data) or "-"),
        ("metrics", "  ".join(f"{k}={_fmt_metric(v)}" for k, v in r.metrics.items()) or "-"),
        ("outputs", "; ".join(f"{o.path} {o.sha256[:12]}" for o in r.outputs) or "-"),
        ("run dir", str(run_dir)),
    ]
    if r.placement:  # where it ran (records before targets have none: local)
        p = r.placement
        rows.insert(3, ("placement", f"{p.backend} ({p.target}) job {p.job_id or '-'} on "
                                     f"{', '.join(p.nodes) or '-'}" + (f", {p.state}" if p.state else "")))
    for k, v in rows:
        console.print(f"[bold]{k:>16}[/]  {v}", soft_wrap=True, markup=True, highlight=False)


@app.command("verify")
def verify(
    key: Optional[Path] = typer.Option(
        None, "--key", help="Public key the records must be signed with (every one); default: signatures "
                            "present are checked with your own envbuild.pub, when you have one."),
    json_out: bool = options.json_out("{ok, sealed, problems, notes}"),
) -> None:
    """Check that no run record was altered or removed after its run (the records' hash chain).

    Exit 0 when every sealed record and its files are as they were written, 1 naming each run that
    was altered, removed, or added from elsewhere, or whose signature does not verify (records are
    signed when you have a key: envbuild keys generate).
    """
    from pathlib import Path

    from envbuild import chain
    from envbuild.output import console, print_json

    report = chain.verify(Path.cwd(), key)
    if json_out:
        print_json(report.to_dict())
    else:
        for note in report.notes:
            console.print(f"[yellow]note[/] {note}", highlight=False)
        for problem in report.problems:
            console.print(f"[red]✗[/] {problem}", highlight=False)
        verdict = "[green]intact[/]" if not report.problems else f"[red]{len(report.problems)} problem(s)[/]"
        console.print(f"{report.sealed} sealed record(s) checked: {verdict}", highlight=False)
    raise typer.Exit(1 if report.problems else 0)


@app.command("register")
def register(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="The run: an id, a unique prefix of one, or latest."),
    output: str = typer.Argument(..., help="One of its outputs, as the record names it (e.g. outputs/model.pt)."),
    name: str = typer.Option(..., "--name", help="The registered model's name; each call adds a version."),
    tracking_uri: Optional[str] = typer.Option(
        None, "--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI, else the "
                                     "project's \\[tool.envbuild.tracking] mlflow)."),
    json_out: bool = options.json_out("{name, version, model_uri, source, tags}"),
    project: Optional[Path] = options.project("Project directory (default: the one given to runs, else .).",
                                              default=None),
) -> None:
    """Register a run's output file as a model version in MLflow's model registry, with its lineage.

    The file must be the one the run wrote (its sha256 is checked against the record). The version
    is tagged with the run id, the output's sha256, the image digest and id, base digest, lock hash,
    commit (and whether dirty) and the data manifest digests; `envbuild trace models:/NAME/VERSION`
    walks back from it. Needs MLflow (pip install 'envbuild\\[mlflow]').

    Example: envbuild runs register latest outputs/model.pt --name mnist
    """
    from envbuild import modelregistry, store
    from envbuild.output import console, info, print_json
    from envbuild.record import Record

    root = (project or ctx.obj or Path(".")).resolve()
    run_dir, record = store.load_run(root, ref)
    rid = Record.from_dict(record).id
    uri = modelregistry.tracking_uri(root, tracking_uri)
    info(f"registering {output} of run {rid} as {name} ...", markup=False)
    done = modelregistry.register(root, uri, run_dir, record, output, name)
    if json_out:
        print_json(done)
        return
    console.print(f"registered [bold]{done['model_uri']}[/] (sha256 {done['tags']['envbuild.output_sha256']}) "
                  f"from run {rid}; trace it with: envbuild trace {done['model_uri']}")
