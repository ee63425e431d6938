"""envbuild push: the project's image to a registry, its digest recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def push(
    repo: Optional[str] = typer.Argument(
        None, help="REGISTRY/REPO[:TAG] to push to; default: `image` from the spec. Without a tag, the "
        "lock hash prefix is the tag."),
    bake_code: bool = typer.Option(False, "--bake-code", help="Push the image with the code baked in."),
    json_out: bool = typer.Option(False, "--json", help="Print the push record as JSON on stdout."),
    project: Path = typer.Option(Path("."), "--project", "-C", help="The project directory."),
) -> None:
    """Push the project's current image (building it first when missing) and record its digest.

    The manifest digest (repo@sha256:...) is written to .envbuild/images.json under the lock
    hash, where run records and other machines find it: `docker pull repo@sha256:...` gets
    exactly this image anywhere.

    Example: envbuild push 127.0.0.1:5000/team/myproject
    """
    from envbuild import image
    from envbuild.errors import EnvbuildError
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    target = repo or spec.image
    if not target:
        raise EnvbuildError(f"{spec.source}: no repository to push to; give one (envbuild push REGISTRY/REPO) "
                            'or set image = "registry/repo" in the spec')
    lock = image.require_fresh_lock(spec)
    local = image.ensure_image(spec, lock, bake_code=bake_code)
    info(f"pushing {local} to {target}")
    entry = image.push(spec.root, local, target, lock)
    if json_out:
        print_json(entry)
    else:
        print(entry["repo_digest"])
