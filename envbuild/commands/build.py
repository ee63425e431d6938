"""envbuild build: the project's image, hermetic and content-addressed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def build(
    dockerfile_only: bool = typer.Option(
        False, "--dockerfile-only", help="Print the rendered Dockerfile (or write it with -o) and build nothing."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="With --dockerfile-only: write the Dockerfile to this file."),
    bake_code: bool = typer.Option(
        False, "--bake-code", help="Copy the project's code into /workspace (for shipping); the tag gets "
        "a -code-<tree hash> suffix. Without it code is mounted at run time and never triggers a rebuild."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild even when the image exists, without docker's layer cache."),
    json_out: bool = typer.Option(False, "--json", help="Print {ref, id, up_to_date, ...} as JSON on stdout."),
    project: Path = typer.Option(Path("."), "--project", "-C", help="The project directory."),
) -> None:
    """Build the project's image from envbuild.lock, offline.

    The locked wheels are fetched on the host (cached by sha256, each verified against the
    lock), then `docker build --network none` installs them into a venv on the digest-pinned
    base. A conda environment (conda-lock.yml) is fetched and verified the same way and created
    at /opt/conda; the .debs of system-packages.lock too, installed by apt with no sources. The
    image is tagged envbuild/<project>:<lock hash[:12]>: when it exists, nothing is
    done ("up to date"). A stale or missing lock is refused: run envbuild lock.

    Examples: envbuild build · envbuild build --dockerfile-only -o Dockerfile · envbuild build --bake-code
    """
    from envbuild import image
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    lock = image.require_fresh_lock(spec)
    if dockerfile_only:
        text = image.render(spec, lock, bake_code=bake_code)
        if output:
            from envbuild.fsutil import atomic_write_text

            atomic_write_text(output, text)
            info(f"wrote {output}")
        else:
            print(text, end="")
        return
    result = image.build(spec, lock, bake_code=bake_code, no_cache=no_cache, log=info)
    if json_out:
        print_json(result.to_dict())
    elif result.up_to_date:
        info(f"{result.ref} is up to date")
    else:
        info(f"built {result.ref} ({result.id[:19]})")
