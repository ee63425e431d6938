"""envbuild build: the project's image, written by envbuild from the lock, loaded into the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from envbuild import options


def build(
    dockerfile_only: bool = typer.Option(
        False, "--dockerfile-only", help="Print an equivalent Dockerfile (or write it with -o) and build nothing. "
        "An export for people who want one: it does not define the image."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="With --dockerfile-only: write the Dockerfile to this file."),
    bake_code: bool = typer.Option(
        False, "--bake-code", help="Copy the project's code into /workspace (for shipping); the tag gets "
        "a -code-<tree hash> suffix. Without it code is mounted at run time and never triggers a rebuild."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Write and load the image even when the engine has it."),
    check: bool = typer.Option(
        False, "--check", help="Build again from scratch (empty layer store, no engine) and exit 1, naming the "
        "layer and the first differing file, unless the result is bit-identical."),
    oci: Optional[Path] = typer.Option(
        None, "--oci", metavar="DIR", help="Also write the image as an OCI image layout to DIR "
        "(for runc/umoci, podman, skopeo, Slurm)."),
    platform: Optional[str] = typer.Option(
        None, "--platform", help="linux/amd64 or linux/arm64 (one of the lock's platforms); default: the engine's. "
        "A pip or conda project builds for another platform without emulation."),
    json_out: bool = options.json_out("{ref, id, digest, up_to_date, ...}"),
    project: Path = options.project("The project directory."),
) -> None:
    """Build the project's image from envbuild.lock: the same lock gives the same image, on any machine.

    The locked wheels, conda packages and .debs are fetched on the host (cached by sha256, each
    verified against the lock). envbuild then writes every layer itself (sorted entries, file
    times clamped to the lock's epoch, numeric owners): wheels are installed by pypa installer,
    the conda environment by py-rattler; only apt and the .pyc compiler run in a sandbox of the
    digest-pinned base, with no network. The image id (config digest) and the manifest digest
    (what a registry will answer on push) are known before the engine gets the image with
    `docker load`. The tag is envbuild/<project>:<lock hash[:12]>: when it exists, nothing is
    done ("up to date"). A stale or missing lock is refused: run envbuild lock.

    Every build writes the image's CycloneDX SBOM (each pip, conda and Debian package, the base's
    too) and, once `envbuild keys generate` made a key, a signed SLSA provenance, to
    .envbuild/attest/ (and into the --oci layout); `envbuild push` attaches both to the image.

    Examples: envbuild build · envbuild build --check · envbuild build --oci ./oci · envbuild build --platform linux/arm64
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
    difference, rebuilt = None, None
    if check:
        result, rebuilt, difference = image.check(spec, lock, platform=platform, bake_code=bake_code, log=info)
    elif oci:
        result = image.export_oci(spec, lock, oci, platform=platform, bake_code=bake_code, log=info)
    else:
        result = image.build(spec, lock, bake_code=bake_code, no_cache=no_cache, platform=platform, log=info)
    if oci and check:
        image.export_oci(spec, lock, oci, platform=platform, bake_code=bake_code, log=info)
    from envbuild import attest

    att, written = attest.after_build(spec, lock, result, platform=platform, bake_code=bake_code, say=info)
    if oci:
        attest.write_layout(oci, att, written.manifest)
    if json_out:
        out = result.to_dict()
        out.update(sbom=str(att.sbom), provenance=str(att.envelope) if att.envelope else None)
        if check:
            out.update(identical=difference is None, rebuilt_digest=rebuilt, difference=difference)
        print_json(out)
    elif result.up_to_date:
        info(f"{result.ref} is up to date (id {result.id}, digest {result.manifest_digest})", markup=False)
    else:
        info(f"built {result.ref}\n  id     {result.id}\n  digest {result.manifest_digest}", markup=False)
    if oci:
        info(f"wrote the OCI image layout {oci}", markup=False)
    if not (check or oci or platform or bake_code):  # the engine's own image, as runs use it
        from envbuild.devcontainer import refresh

        if refresh(spec, lock, result.id, info):
            info("rewrote .devcontainer/devcontainer.json for this image", markup=False)
    if check:
        if difference is not None:
            from envbuild.errors import EXIT_FAILURE, EnvbuildError

            raise EnvbuildError(f"not bit-identical: {difference}", EXIT_FAILURE)
        info(f"rebuilt from scratch: bit-identical ({rebuilt})", markup=False)
