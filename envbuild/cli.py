"""The `envbuild` command line: thin wiring only, so `envbuild --help` starts fast.

Each command lives in envbuild/commands/<name>.py and imports its heavy parts inside
the function body.
"""

from __future__ import annotations

import sys

import typer

from envbuild import __version__
from envbuild.commands import (base, build, config, devcontainer, diff, doctor, init, keys, lock, notebook, push,
                               report, reproduce, run, runs, shell, trace, verify)

HELP = ("Reproducible ML environments: lock dependencies and the base image digest, build a "
        "hermetic image, run training in it with seeds fixed, and keep a record of every run.\n\n"
        "Typical flow: envbuild init → envbuild lock → envbuild build → envbuild run train.py")
RUN_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}


def _version(value: bool) -> None:
    if value:
        print(f"envbuild {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


# name -> how it joins the app; the order is --help's
COMMANDS = {
    "init": lambda a: a.command("init")(init.init),
    "doctor": lambda a: a.command("doctor")(doctor.doctor),
    "config": lambda a: a.command("config")(config.config),
    "base": lambda a: a.add_typer(base.app, name="base"),
    "lock": lambda a: a.command("lock")(lock.lock),
    "build": lambda a: a.command("build")(build.build),
    "push": lambda a: a.command("push")(push.push),
    "run": lambda a: a.command("run", context_settings=RUN_SETTINGS)(run.run),
    "shell": lambda a: a.command("shell")(shell.shell),
    "notebook": lambda a: a.command("notebook")(notebook.notebook),
    "devcontainer": lambda a: a.command("devcontainer")(devcontainer.devcontainer),
    "runs": lambda a: a.add_typer(runs.app, name="runs"),
    "reproduce": lambda a: a.command("reproduce")(reproduce.reproduce),
    "diff": lambda a: a.command("diff")(diff.diff),
    "report": lambda a: a.command("report")(report.report),
    "trace": lambda a: a.command("trace")(trace.trace),
    "verify": lambda a: a.command("verify")(verify.verify),
    "keys": lambda a: a.add_typer(keys.app, name="keys"),
}


def make_app(only: str | None = None) -> typer.Typer:
    """The CLI; with `only`, just that command: typer turns every registered command into a click
    command (evaluating each signature) on every start, which costs more than a run's own checks."""
    new = typer.Typer(name="envbuild", help=HELP, no_args_is_help=True, add_completion=False,
                      rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})
    new.callback()(_root)
    for name, join in COMMANDS.items():
        if only in (None, name):
            join(new)
    return new


app = make_app()


def main() -> None:
    from envbuild.errors import reported

    first = sys.argv[1] if len(sys.argv) > 1 else None
    with reported():
        (make_app(first) if first in COMMANDS else app)()
