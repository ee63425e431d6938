"""envbuild lock: pin every dependency with hashes and the base image to a digest."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from envbuild import options


def lock(
    upgrade: bool = typer.Option(False, "--upgrade", "-U",
                                 help="Re-resolve everything to the newest allowed versions and re-pin the base tag."),
    upgrade_package: Optional[List[str]] = typer.Option(
        None, "--upgrade-package", "-P", metavar="NAME",
        help="Re-resolve only this Python package (repeatable); other pins and the base digest stay."),
    check: bool = typer.Option(False, "--check",
                               help="Resolve nothing: exit 0 when the lock is fresh, 1 when stale (naming what changed)."),
    remote: bool = typer.Option(False, "--remote",
                                help="With --check: also ask the registry whether the base tag has moved."),
    json_out: bool = options.json_out("the result"),
    project: Path = options.project("Project directory."),
) -> None:
    """Lock the project: requirements.lock, conda-lock.yml, system-packages.lock, base digest; envbuild.lock governs them.

    Python dependencies are compiled with uv (or pip-compile, `resolver = "pip-tools"`) into
    requirements.lock: every pin `==` with the sha256 of every artifact, no index URL or path.
    environment.yml is solved (conda-lock, or py-rattler without a conda executable) into
    conda-lock.yml. The base tag is pinned to its registry digest.

    system-packages (apt) are resolved by apt inside that base (docker run --network host) into
    system-packages.lock: every .deb to install, its exact version and its sha256 from Debian's signed index.

    With unchanged inputs nothing is resolved ("up to date"). A failure leaves every previous
    lockfile untouched.

    Exit codes: 0 locked / fresh, 1 stale (--check), 2 bad input, unsatisfiable requirements,
    unreachable registry or index.
    """
    from envbuild.errors import EXIT_FAILURE, EnvbuildError
    from envbuild.output import console, err, info, print_json
    from envbuild.spec import load_spec

    spec = load_spec(project)
    if remote and not check:
        raise EnvbuildError("--remote goes with --check: envbuild lock --check --remote")
    if check:
        if upgrade or upgrade_package:
            raise EnvbuildError("--check resolves nothing; drop --upgrade/--upgrade-package")
        from envbuild.locker import check as check_lock

        fresh, reasons = check_lock(spec, remote=remote)
        if json_out:
            print_json({"fresh": fresh, "reasons": reasons})
        elif fresh:
            console.print("envbuild.lock is up to date")
        else:
            err.print("[bold]envbuild.lock is stale:[/]", markup=True)
            for reason in reasons:
                err.print(f"  - {reason}", markup=False, soft_wrap=True)
            err.print("run `envbuild lock` to re-lock", markup=False)
        if not fresh:
            raise typer.Exit(EXIT_FAILURE)
        return

    from envbuild.locker import lock_project

    from envbuild.cuda import summary

    if json_out:
        outcome = lock_project(spec, upgrade, tuple(upgrade_package or ()))
        if outcome.locked and summary(outcome.lock.cuda):
            info(summary(outcome.lock.cuda), markup=False)  # stdout holds only the JSON
        print_json(outcome.to_dict())
        return
    spinner = []  # started on the first resolution step only: the no-op path stays quick

    def step(msg: str) -> None:
        if not spinner:
            spinner.append(err.status(msg))
            spinner[0].start()
        spinner[0].update(msg)

    try:
        outcome = lock_project(spec, upgrade, tuple(upgrade_package or ()), step=step)
    finally:
        if spinner:
            spinner[0].stop()
    if not outcome.locked:
        console.print(f"envbuild.lock is up to date (lock {outcome.lock.lock_hash[:12]})", soft_wrap=True)
        return
    for note in outcome.notes:
        info(f"note: {note}")
    lk = outcome.lock
    lines = [f"Locked ({'; '.join(outcome.reasons)})",
             f"  {'base':<20} {lk.base.tag} -> {lk.base.digest} (from the {lk.base.source})"]
    lines += [f"  {name:<20} sha256:{digest[:16]}…" for name, digest in sorted(lk.lockfiles.items())]
    if lk.system_packages:
        lines.append(f"  {'system packages':<20} " + ", ".join(f"{n}={v}" for n, v in sorted(lk.system_packages.items())))
    lines.append(f"  {'envbuild.lock':<20} lock hash {lk.lock_hash[:12]}")
    if summary(lk.cuda):
        lines.append(summary(lk.cuda))
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)
