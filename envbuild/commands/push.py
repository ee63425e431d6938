"""envbuild push: the project's image to a registry, its digest recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from envbuild import options


def push(
    repo: Optional[str] = typer.Argument(
        None, help="REGISTRY/REPO[:TAG] to push to; default: `image` from the spec. Without a tag, the "
        "lock hash prefix is the tag."),
    bake_code: bool = typer.Option(False, "--bake-code", help="Push the image with the code baked in."),
    json_out: bool = options.json_out("the push record"),
    project: Path = options.project("The project directory."),
) -> None:
    """Push the project's current image (building it first when missing) and record its digest.

    The manifest digest (repo@sha256:...) is written to .envbuild/images.json under the lock
    hash, where run records and other machines find it: `docker pull repo@sha256:...` gets
    exactly this image anywhere.

    Example: envbuild push 127.0.0.1:5000/team/myproject
    """
    from envbuild.image import build_and_push
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    entry = build_and_push(load_spec(project), repo, bake_code=bake_code, log=info)
    if json_out:
        print_json(entry)
    else:
        print(entry["repo_digest"])
