"""envbuild trace: from a file back to the run that made it."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def trace(
    file: Path = typer.Argument(..., help="Any file: a model, a checkpoint, a report, wherever the copy lives; "
                                          "or a registered model version, models:/NAME/VERSION."),
    project: list[Path] = options.project("Project whose runs to search (repeatable; default: the current directory).",
                                          default=None),
    json_out: bool = options.json_out("the result"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry URI for models:/ (default: "
                                     "$MLFLOW_TRACKING_URI, else the project's \\[tool.envbuild.tracking] mlflow)."),
) -> None:
    """Find the run that wrote this file, by content: its sha256 against every run's recorded outputs.

    Prints the run's ingredients (image, lock hash, commit, data, seed) and the exact command that
    reproduces it. Exit 1 when no run of the project made this file.

    A registered model version (envbuild runs register) is traced by the sha256 its tags name, and
    its tags are checked against the run's record: exit 1 when they disagree.

    Examples: envbuild trace ~/Downloads/model.npz
              envbuild trace models:/mnist/3
    """
    from envbuild.errors import EXIT_FAILURE, EnvbuildError
    from envbuild.lineage import trace as find
    from envbuild.output import console, print_json

    roots = [p.resolve() for p in (project or [Path(".")])]
    if str(file).startswith("models:/"):
        return _trace_model(str(file), roots, tracking_uri, json_out)
    if not file.is_file():
        raise EnvbuildError(f"{file}: no such file; give the path of a file a run wrote")
    sha, found = find(file, roots)
    if not found:
        raise EnvbuildError(f"{file}: no run of {', '.join(map(str, roots))} wrote a file with sha256 {sha}; "
                            "it was not made by a recorded run (or its run was deleted)", EXIT_FAILURE)
    made, others = _made(found)
    if json_out:
        print_json({"file": str(file), "sha256": sha, "made_by": made, "also_in": others})
        return
    _render(file, sha, made, others, console)


def _made(found: list) -> tuple[dict, list[dict]]:
    """The first (root, match) as the run that made the file; the others as copies in other runs."""
    from envbuild.lineage import ingredients, reproduce_command

    root, first = found[0]
    made = {"run": first.run_id, "path": first.path, "run_dir": str(first.run_dir), "project": str(root),
            "status": first.record.get("status"), "started_at": first.record.get("started_at"),
            "ingredients": ingredients(first.record), "reproduce": reproduce_command(first.record, root)}
    return made, [{"run": m.run_id, "path": m.path, "reproduces": m.record.get("reproduces")} for _, m in found[1:]]


def _trace_model(model_uri: str, roots: list[Path], tracking_uri: str | None, json_out: bool) -> None:
    """models:/NAME/VERSION: its envbuild tags name the output's sha256; the run is found by it."""
    from envbuild import modelregistry
    from envbuild.errors import EXIT_FAILURE, EnvbuildError
    from envbuild.lineage import find_by_sha256
    from envbuild.output import console, print_json

    version = modelregistry.lookup(modelregistry.tracking_uri(roots[0], tracking_uri), model_uri)
    tags = version["tags"]
    found = [(root, m) for root in roots for m in find_by_sha256(root, tags["output_sha256"])]
    if not found:
        raise EnvbuildError(f"{model_uri}: registered from run {tags.get('run_id')} (output sha256 "
                            f"{tags['output_sha256']}), but no run of {', '.join(map(str, roots))} wrote it; "
                            "trace it in the project that made it (-C DIR)", EXIT_FAILURE)
    first = found[0][1]
    entry = next(o for o in first.record.get("outputs") or [] if o.get("sha256") == tags["output_sha256"])
    problems = modelregistry.mismatches(tags, first.record, entry)
    made, others = _made(found)
    if json_out:
        print_json({"model": model_uri, "registered": version, "sha256": tags["output_sha256"], "made_by": made,
                    "also_in": others, "mismatches": problems})
    else:
        console.print(f"[bold]{model_uri}[/] (source {version['source']}), data manifest {tags.get('data_manifest')}")
        _render(Path(tags.get("output_path", "?")), tags["output_sha256"], made, others, console)
        for p in problems:
            console.print(f"[red]✗ tag {p}[/]", highlight=False)
    if problems:
        raise EnvbuildError(f"{model_uri}: its tags disagree with run {first.run_id}'s record: {problems[0]}",
                            EXIT_FAILURE)


def _render(file: Path, sha: str, made: dict, others: list[dict], console) -> None:
    from rich.markup import escape
    from rich.table import Table

    ing = made["ingredients"]
    console.print(f"[bold]{escape(str(file))}[/]  sha256 {sha}")
    by = "run" if ing["kind"] == "run" else f"hand in {ing['kind']} session"
    console.print(f"made by {by} [bold]{made['run']}[/] ({made['status']}, {made['started_at']}) as {made['path']}")
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    image = ing["image"]
    t.add_row("image", f"{image['ref']}  id {image['id']}")
    t.add_row("registry digest", image["repo_digest"] or "— (not pushed)")
    t.add_row("base", f"{image['base']}@{image['base_digest']}")
    t.add_row("lock hash", str(ing["lock_hash"]))
    code = ing["code"]
    state = (" + code state unknown (git failed)" if code["dirty"] is None
             else " + uncommitted diff " + str(code["diff_sha256"])[:12] if code["dirty"] else "")
    t.add_row("commit", f"{code['commit']} ({code['branch']}){state}")
    for d in ing["data"]:
        t.add_row("data", f"{d['path']}  sha256 {d['sha256']}")
    t.add_row("seed", f"{ing['seed']} (deterministic: {ing['deterministic']})")
    t.add_row("command", escape(" ".join(ing["command"] or [])))
    console.print(t)
    for o in others:
        console.print(f"also output of run {o['run']}" + (f" (reproduces {o['reproduces']})" if o["reproduces"] else ""))
    console.print(f"{'reproduce' if ing['kind'] == 'run' else 'same environment'} with: [bold]{made['reproduce']}[/]")
