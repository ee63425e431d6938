"""envbuild devcontainer: .devcontainer/devcontainer.json for the project's locked image."""

from __future__ import annotations

from pathlib import Path

import typer

from envbuild import options


def devcontainer(
    force: bool = typer.Option(False, "--force", help="Replace a devcontainer.json that envbuild did not write."),
    json_out: bool = options.json_out("the written file's content"),
    project: Path = options.project("Project directory."),
) -> None:
    """Write .devcontainer/devcontainer.json so VS Code and other dev-container clients open the locked image.

    It names the image by digest (repo@sha256:... once pushed, else the image id; the dev image when the spec has dev groups, so the editor has their tools), mounts the project at /workspace, runs as your uid:gid with the spec's network, and sets the seeds and determinism variables a run gets. The image is built first when missing; the lock must be fresh.

    `envbuild build` rewrites the file when the image changes, and `envbuild lock --check` reports it stale when the lock changed since. A devcontainer.json you wrote yourself is left alone (--force replaces it).

    Examples: envbuild devcontainer · envbuild devcontainer -C ~/proj --json · code ~/proj (then "Reopen in Container")
    """
    import json

    from envbuild import devcontainer as dc, image
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    lock = image.require_fresh_lock(spec)
    if spec.dev_groups:
        from envbuild.dev import require_fresh

        require_fresh(spec, lock)
    path = dc.write(spec, lock, *dc.images(spec, lock, info), force=force)
    if json_out:
        print_json(json.loads(path.read_text()))
    else:
        info(f"wrote {path} (image {dc.read(spec.root)['image']})", markup=False)
