"""The `envbuild` command line: thin wiring only, so `envbuild --help` starts fast.

Each command lives in envbuild/commands/<name>.py and imports its heavy parts inside
the function body.
"""

from __future__ import annotations

import sys

import typer

from envbuild import __version__
from envbuild.commands import base, build, config, diff, doctor, init, keys, lock, push, reproduce, run, runs, trace, verify

app = typer.Typer(
    name="envbuild",
    help=(
        "Reproducible ML environments: lock dependencies and the base image digest, build a "
        "hermetic image, run training in it with seeds fixed, and keep a record of every run.\n\n"
        "Typical flow: envbuild init → envbuild lock → envbuild build → envbuild run train.py"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("init")(init.init)
app.command("doctor")(doctor.doctor)
app.command("config")(config.config)
app.add_typer(base.app, name="base")
app.command("lock")(lock.lock)
app.command("build")(build.build)
app.command("push")(push.push)
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                   "allow_interspersed_args": False})(run.run)
app.add_typer(runs.app, name="runs")
app.command("reproduce")(reproduce.reproduce)
app.command("diff")(diff.diff)
app.command("trace")(trace.trace)
app.command("verify")(verify.verify)
app.add_typer(keys.app, name="keys")


def _version(value: bool) -> None:
    if value:
        print(f"envbuild {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


def main() -> None:
    from envbuild.errors import EnvbuildError

    try:
        app()
    except EnvbuildError as e:
        from envbuild.output import error

        error(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
