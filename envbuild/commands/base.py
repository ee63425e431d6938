"""envbuild base (not built yet)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Not built yet.", no_args_is_help=True)


@app.command("build")
def build(
    push: str | None = typer.Option(
        None, "--push", help="REGISTRY/REPO[:TAG] to push the base to; default: `image` from the spec."),
    json_out: bool = typer.Option(False, "--json", help="Print {pushed, repo_digest, base_line, ...} as JSON on stdout."),
    project: str = typer.Option(".", "--project", "-C", help="The team base's spec directory."),
) -> None:
    """Build a team base from a spec (Python, common dependencies) on the spec's digest-pinned base,
    push it, and print the line a team project puts in its spec: base = "REPO@sha256:...".

    Its packages live in /opt/envbuild/base-venv; projects built on it see them, and their own
    locked packages take precedence.

    Example: envbuild base build --push 127.0.0.1:5000/team/base:2026-05
    """
    from envbuild import image
    from envbuild.errors import EnvbuildError
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    target = push or spec.image
    if not target:
        raise EnvbuildError(f"{spec.source}: a team base must be pushed to be pinned; give --push REGISTRY/REPO "
                            'or set image = "registry/repo" in the spec')
    lock = image.require_fresh_lock(spec)
    result = image.build(spec, lock, team_base=True, log=info)
    entry = image.push(spec.root, result.ref, target, lock)
    line = f'base = "{entry["repo_digest"]}"'
    if json_out:
        print_json({**entry, "base_line": line})
    else:
        info(f"pushed {entry['pushed']}; put this in a team project's [tool.envbuild]:")
        print(line)
