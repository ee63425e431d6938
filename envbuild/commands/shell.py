"""envbuild shell: an interactive shell in the project's locked image, recorded like a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from envbuild import options


def shell(
    program: str = typer.Option("bash", "--shell", help="The shell to start inside the image (it must be there)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2**32 - 1,
                                       help="Seed for the session (overrides the spec's seed)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help='GPUs to use: "all", a count, or "device=0,1".'),
    relock: bool = typer.Option(False, "--relock", help="Run envbuild lock first when the lock is stale."),
    json_out: bool = options.json_out("the session's record when it ends (the shell's output then goes to "
                                      "stderr, with no terminal)"),
    project: Path = options.project("Project directory."),
) -> None:
    """Open a shell inside the project's locked image, as `envbuild run` would run a script there.

    The project is mounted at /workspace, you are your own uid:gid, the network is the spec's (none by default), and the seeds and determinism variables are set. The lock is checked fresh first.

    When the shell exits a record of kind "shell" is kept in .envbuild/runs/<id>/ (image digest, lock hash, exit code, the spec's outputs checksummed), so `envbuild trace FILE` finds the environment of a file made by hand. What you type is not recorded. The exit code is the shell's.

    Examples: envbuild shell · envbuild shell --shell sh · echo 'python -V' | envbuild shell
    """
    import sys

    from envbuild import record as rec, runner

    req = runner.RunRequest(command=[program], seed=seed, gpus=gpus, relock=relock, kind=rec.KIND_SHELL, dev=True,
                            stdout=sys.stderr.buffer if json_out else None)
    session_ended("shell", *runner.run(project, req), json_out)


def session_ended(what: str, run_dir: Path, record: dict, json_out: bool) -> None:
    """Say where the session's record is (or print it with --json) and exit with its exit code."""
    from envbuild.output import info, print_json

    if json_out:
        print_json(record)
    else:
        info(f"{what} session {record['id']} ended (exit {record['exit_code']}); record: {run_dir}/record.json")
    code = record["exit_code"]
    raise typer.Exit(code if code is not None else 1)
