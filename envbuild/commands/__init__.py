"""One module per CLI command; each imports its heavy parts inside the function.

A command module parses options and renders output; the work is done by a core module. Where
the names differ, this is the one place that says which (a rename would touch every import for
no gain in meaning):

    command          core module(s)
    init             starter (a config for a project), template (a project from a template)
    config, doctor   spec, checks
    base bootstrap   bootstrap
    base build       teambase, image
    lock             locker (resolving), lockfile (the files and their freshness)
    build, push      image (engine side), assemble + oci/ (writing the image), attest + sbom +
                     materials (the SBOM and signed provenance written and attached)
    run              runner, provenance (git, data, host facts), record
    shell, notebook  runner (a session of kind "shell"), notebook (the socket and its forwarding), dev
    devcontainer     devcontainer
    runs             store (listing), chain (runs verify), modelregistry (runs register)
    reproduce        reproduce
    diff             compare
    report           report (the HTML page)
    trace            lineage
    verify           verify (attest: --provenance)
    keys             keys (the signing key pair)

Shared options (-C/--project, --json) come from envbuild/options.py.
"""
