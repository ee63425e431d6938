"""envbuild base: base images: bootstrap one from a Debian mirror, or build a team base from a spec."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from envbuild import options

app = typer.Typer(
    help="Base images: bootstrap one from a Debian mirror (no registry to pull from), or build a team base.",
    no_args_is_help=True,
)


@app.command("bootstrap")
def bootstrap(
    push: Optional[str] = typer.Option(
        None, "--push", metavar="REF",
        help="Tag to push to, e.g. 127.0.0.1:5000/envbuild/base:bookworm (the default; the suite is the tag "
             "when REF names none)."),
    suite: str = typer.Option("bookworm", "--suite", help="Debian suite to debootstrap."),
    include: List[str] = typer.Option(
        [], "--include", metavar="PKGS",
        help="Extra Debian packages, comma-separated or repeated (python3, python3-venv and ca-certificates "
             "are always in)."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="Debian mirror URL (default: the one this "
                                         "host's apt uses, from /etc/apt/sources.list(.d))."),
    force: bool = typer.Option(False, "--force", help="Build and push even when the tag is in the registry."),
    platform: List[str] = typer.Option(
        [], "--platform", metavar="PLATFORMS",
        help="linux/amd64, linux/arm64, comma-separated or repeated (default: this machine's). Several give an "
             "OCI index under the tag; a foreign one runs debootstrap's second stage under qemu-user-static."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the digest-pinned reference."),
) -> None:
    """Build a base image from a debootstrap rootfs, push it, print its digest-pinned reference.

    debootstrap --variant=minbase (+ python3, python3-venv, ca-certificates) → one deterministic layer → registry.

    The first build needs root and debootstrap (about a minute); later ones take the cached rootfs.

    Skips when the registry has the tag already (--force rebuilds). Cache: $ENVBUILD_CACHE_DIR/rootfs.

    stdout gets one line, REGISTRY/NAME@sha256:<64 hex>, ready for a spec's base or a FROM.

    Examples: envbuild base bootstrap --push 127.0.0.1:5000/envbuild/base:bookworm ·
    envbuild base bootstrap --platform linux/amd64,linux/arm64 --push 127.0.0.1:5000/envbuild/base:multi
    """
    from envbuild import bootstrap as bs
    from envbuild.output import info
    from envbuild.progress import steps

    with steps(enabled=not quiet) as (step, detail):
        platforms = [p.strip() for item in platform for p in item.split(",") if p.strip()]
        result = bs.bootstrap(push, suite=suite, include=include, mirror=mirror, force=force, platforms=platforms,
                              step=step, detail=detail)
    if not quiet:
        if result.skipped:
            info(f"{result.reference} is in the registry already; skipped (--force rebuilds)", markup=False)
        else:
            how = "rootfs from cache" if result.rootfs_cached else "rootfs built and cached"
            info(f"pushed {result.reference} ({how}; Debian mirror {result.mirror})", markup=False)
    print(result.pinned)


@app.command("build")
def build(
    push: str | None = typer.Option(
        None, "--push", help="REGISTRY/REPO[:TAG] to push the base to; default: `image` from the spec."),
    json_out: bool = options.json_out("{pushed, repo_digest, base_line, ...}"),
    project: Path = options.project("The team base's spec directory."),
    template: Optional[str] = typer.Option(
        None, "--template", "-t", metavar="NAME",
        help="Start the spec directory from a shipped team-base spec: cpu, cuda12-torch or cuda13-torch "
             "(written when the directory has none, then locked)."),
    torch_source: Optional[str] = typer.Option(
        None, "--torch-source", metavar="URL|DIR",
        help="With a cuda*-torch template: where its CUDA torch builds come from (the PyTorch wheel index "
             "for that CUDA version, a mirror of it, or a directory of wheels)."),
) -> None:
    """Build a team base from a spec (Python, common dependencies, system packages) on the spec's digest-pinned base,
    push it, and print the line a team project puts in its spec: base = "REPO@sha256:...".

    Its packages live in /opt/envbuild/base-venv, its environment.yml's in /opt/conda.
    Projects built on it resolve with their pins held and install none of them again.

    Its system-packages are the .debs of system-packages.lock, installed offline (as for `envbuild build`).

    With --template, the spec comes from a shipped template (written into -C DIR when that has no
    pyproject.toml) and is locked first when its lock is missing or stale.

    Examples: envbuild base build --push 127.0.0.1:5000/team/base:2026-05 ·
    envbuild base build --template cpu -C team-base --push 127.0.0.1:5000/team/base-cpu
    """
    from envbuild.image import build_and_push
    from envbuild.output import info, print_json
    from envbuild.spec import load_spec

    if template is not None:
        from envbuild.teambase import from_template

        from_template(Path(project), template, torch_source, say=info)
    entry = build_and_push(load_spec(project), push, team_base=True, log=info)
    line = f'base = "{entry["repo_digest"]}"'
    if json_out:
        print_json({**entry, "base_line": line})
    else:
        info(f"pushed {entry['pushed']}; put this in a team project's [tool.envbuild]:", markup=False)
        print(line)
