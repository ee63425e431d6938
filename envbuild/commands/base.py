"""envbuild base: base images (bootstrap one from a Debian mirror; more subcommands join this group)."""

from __future__ import annotations

from typing import List, Optional

import typer

app = typer.Typer(
    help="Base images: bootstrap one from a Debian mirror into a registry, with no registry to pull from.",
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
    mirror: str = typer.Option("http://deb.debian.org/debian", "--mirror", help="Debian mirror (a local one "
                               "for air-gapped sites)."),
    force: bool = typer.Option(False, "--force", help="Build and push even when the tag is in the registry."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the digest-pinned reference."),
) -> None:
    """Build a base image from a debootstrap rootfs, push it, print its digest-pinned reference.

    debootstrap --variant=minbase (+ python3, python3-venv, ca-certificates) → docker import → docker push.

    The first build needs root and debootstrap (about a minute); later ones take the cached rootfs.

    Skips when the registry has the tag already (--force rebuilds). Cache: $ENVBUILD_CACHE_DIR/rootfs.

    stdout gets one line, REGISTRY/NAME@sha256:<64 hex>, ready for a spec's base or a FROM.

    Example: envbuild base bootstrap --push 127.0.0.1:5000/envbuild/base:bookworm
    """
    from envbuild import bootstrap as bs
    from envbuild.output import info
    from envbuild.progress import steps

    with steps(enabled=not quiet) as (step, detail):
        result = bs.bootstrap(push, suite=suite, include=include, mirror=mirror, force=force,
                              step=step, detail=detail)
    if not quiet:
        if result.skipped:
            info(f"{result.reference} is in the registry already; skipped (--force rebuilds)", markup=False)
        else:
            how = "rootfs from cache" if result.rootfs_cached else "rootfs built and cached"
            info(f"pushed {result.reference} ({how})", markup=False)
    print(result.pinned)
