"""The `envbuild` executable: answers a no-op `envbuild build` before the CLI framework loads.

An unchanged project's `envbuild build` (the image for its lock exists) is the hot path of every
script that builds before it runs; typer and rich alone take longer to import than the whole
check. So `build` with nothing but -C/--project and --json is tried here first, with the same
checks and the same output as envbuild/commands/build.py; anything else, or anything that would
do work or fail, goes to the full CLI, which says it properly.
"""

from __future__ import annotations

import sys


def _noop_build(args: list[str]) -> bool:
    """True when `envbuild build [-C DIR] [--json]` found the image up to date and said so."""
    if not args or args[0] != "build":
        return False
    project, json_out, rest = ".", False, args[1:]
    while rest:
        flag = rest.pop(0)
        if flag == "--json":
            json_out = True
        elif flag in ("-C", "--project") and rest:
            project = rest.pop(0)
        elif flag.startswith("--project="):
            project = flag.split("=", 1)[1]
        else:
            return False
    try:
        from envbuild import assemble, engine, image
        from envbuild.oci.blobs import Store
        from envbuild.spec import load_spec

        spec = load_spec(project)
        lock = image.require_fresh_lock(spec)
        ref = image.image_ref(spec, lock, platform=assemble.choose_platform(lock, None))
        data = engine.inspect_image_fast(ref)
        if data is None:
            return False
        written = assemble.described(Store.default(), data["Id"])
        from envbuild import attest, keys

        sbom, signed = attest.paths(spec.root, written.manifest_digest)
        if not sbom.is_file() or (not signed.is_file() and (keys.keys_dir() / keys.PRIVATE).is_file()):
            return False  # the full CLI writes the SBOM or provenance this image lacks
    except Exception:  # noqa: BLE001 - anything unusual: the full CLI does it and reports it properly
        return False
    digest = written.manifest_digest
    if json_out:
        import json  # the same spelling as envbuild.output.print_json, without importing rich

        out = {"ref": ref, "id": data["Id"], "digest": digest, "up_to_date": True, "downloaded": [], "cached": [],
               "sbom": str(sbom), "provenance": str(signed) if signed.is_file() else None}
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
    else:
        print(f"{ref} is up to date (id {data['Id']}, digest {digest})", file=sys.stderr)
    return True


def main() -> None:
    if _noop_build(sys.argv[1:]):
        return
    from envbuild.cli import main as cli_main

    cli_main()
