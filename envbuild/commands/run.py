"""envbuild run: run a script or command in the project's locked image, and record the run."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from envbuild import options


def _parse_env(items: List[str]) -> dict:
    from envbuild.errors import EnvbuildError

    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise EnvbuildError(f"--env {item!r}: write NAME=VALUE, e.g. --env OMP_NUM_THREADS=1")
        env[name] = value
    return env


def run(
    command: Optional[List[str]] = typer.Argument(
        None, metavar="SCRIPT [ARGS]... | -- CMD [ARGS]...",
        help="A Python script (run with the image's python) and its arguments, or after -- any command."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2**32 - 1,
                                       help="Seed for this run (overrides the spec's seed)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help='GPUs to use: "all", a count, or "device=0,1" '
                                       "(needs the NVIDIA runtime; default: the spec's gpus where the host has them)."),
    network: Optional[str] = typer.Option(None, "--network", help="Container network: none (default), host or bridge."),
    env: List[str] = typer.Option([], "--env", "-e", help="Extra container variable NAME=VALUE (repeatable)."),
    image: Optional[str] = typer.Option(None, "--image", help="Run in this image ref instead of the lock's "
                                        "(e.g. repo@sha256:... pushed from another host)."),
    relock: bool = typer.Option(False, "--relock", help="Run envbuild lock first when the lock is stale."),
    on: Optional[str] = typer.Option(None, "--on", help="Where to run: a target of the spec ([tool.envbuild.targets.NAME]) "
                                     "or a backend by name (local, slurm, k8s). Default: local (the engine the docker CLI uses; "
                                     "for a remote one over ssh, a target with backend = \"ssh\")."),
    detach: bool = typer.Option(False, "--detach", help="Submit and return the job id at once (slurm, k8s); "
                                "`envbuild runs` finishes the record when the job ends."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be submitted (k8s: the Job "
                                 "manifest as JSON) and run nothing."),
    json_out: bool = options.json_out("the final run record (the script's stdout then goes to stderr)"),
    project: Path = options.project("Project directory (give it before SCRIPT)."),
) -> None:
    """Run SCRIPT (or -- CMD) inside the project's locked image and keep a run record.

    The project is mounted at /workspace; the container runs as your uid:gid, with no network unless asked.

    Seeds and the PyTorch/CUDA determinism settings are applied before your code runs.

    Output streams live and into .envbuild/runs/<id>/ beside record.json (code, data, image, lock, metrics).

    Your stdin is passed on (pipe data in); at a terminal the container gets one too, so `envbuild run -- python` is a REPL and breakpoint() stops at (Pdb). Then nothing is logged: the screen holds what you type.

    Ctrl-C stops the container (at a terminal it reaches your program, as in a local one). The exit code is your script's.

    --on NAME runs it elsewhere with the same image and record: on Slurm the job runs the image by
    digest as an OCI bundle (srun --container), waits and streams its log; the record's placement
    says the job id, nodes and GPUs there. On an ssh target (a remote Docker engine) the code and
    data are shipped, only the files the remote side lacks, and the outputs come back.

    Examples: envbuild run train.py --epochs 3 · envbuild run --seed 7 -- python -m pkg.train ·
    envbuild run --on slurm train.py · envbuild run --on lab --detach train.py · envbuild run --on box train.py
    """
    import sys

    from envbuild import runner
    from envbuild.errors import EnvbuildError
    from envbuild.output import info, print_json
    from envbuild.spec import NETWORKS

    if not command:
        raise EnvbuildError("nothing to run; give a script (envbuild run train.py) or a command (envbuild run -- CMD)")
    if network is not None and network not in NETWORKS:
        raise EnvbuildError(f"--network {network!r}: use one of {', '.join(NETWORKS)}")
    req = runner.RunRequest(command=runner.command_for(command), seed=seed, gpus=gpus, network=network,
                            env=_parse_env(env), image=image, relock=relock, on=on, detach=detach,
                            dry_run=dry_run,
                            stdout=sys.stderr.buffer if json_out else None)
    run_dir, record = runner.run(project, req)
    if dry_run:
        print(record["dry_run"])
        raise typer.Exit(0)
    if detach and record["status"] == "running":
        placement = record["placement"]
        if json_out:
            print_json(record)
        else:
            print(placement["job_id"])
            info(f"run {record['id']} submitted to {placement['target']} as job {placement['job_id']}; "
                 "`envbuild runs` shows it finished when the job ends")
        raise typer.Exit(0)
    if json_out:
        print_json(record)
    else:
        info(runner.summary(run_dir, record), markup=False)
    raise typer.Exit(runner.exit_code(record))
