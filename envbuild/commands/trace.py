"""envbuild trace: from a file back to the run that made it."""

from __future__ import annotations

from pathlib import Path

import typer


def trace(
    file: Path = typer.Argument(..., help="Any file: a model, a checkpoint, a report, wherever the copy lives."),
    project: list[Path] = typer.Option(
        None, "--project", "-C", help="Project whose runs to search (repeatable; default: the current directory)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Find the run that wrote this file, by content: its sha256 against every run's recorded outputs.

    Prints the run's ingredients (image, lock hash, commit, data, seed) and the exact command that
    reproduces it. Exit 1 when no run of the project made this file.

    Example: envbuild trace ~/Downloads/model.npz
    """
    from envbuild.errors import EXIT_FAILURE, EnvbuildError
    from envbuild.lineage import ingredients, reproduce_command, trace as find
    from envbuild.output import console, print_json

    if not file.is_file():
        raise EnvbuildError(f"{file}: no such file; give the path of a file a run wrote")
    roots = [p.resolve() for p in (project or [Path(".")])]
    sha, found = find(file, roots)
    if not found:
        raise EnvbuildError(f"{file}: no run of {', '.join(map(str, roots))} wrote a file with sha256 {sha}; "
                            "it was not made by a recorded run (or its run was deleted)", EXIT_FAILURE)
    root, first = found[0]
    made = {"run": first.run_id, "path": first.path, "run_dir": str(first.run_dir), "project": str(root),
            "status": first.record.get("status"), "started_at": first.record.get("started_at"),
            "ingredients": ingredients(first.record), "reproduce": reproduce_command(first.record, root)}
    others = [{"run": m.run_id, "path": m.path, "reproduces": m.record.get("reproduces")} for _, m in found[1:]]
    if json_out:
        print_json({"file": str(file), "sha256": sha, "made_by": made, "also_in": others})
        return
    _render(file, sha, made, others, console)


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
