"""Errors the CLI turns into one line on stderr and a meaningful exit code."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

# Exit codes, the same for every command.
EXIT_OK = 0
EXIT_FAILURE = 1  # the thing asked about is not so: stale lock, not reproduced, missing part
EXIT_USAGE = 2  # bad input or a missing ingredient: the user must fix something first


def last_line(output: str | bytes | None, default: str) -> str:
    """The last non-blank line of a tool's output, for a one-line error; `default` when it printed nothing."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    lines = [ln.strip() for ln in (output or "").splitlines() if ln.strip()]
    return lines[-1] if lines else default


class EnvbuildError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class SpecError(EnvbuildError):
    """Bad project configuration: names the file, the key and the fix."""

    def __init__(self, file: object, key: str | None, problem: str, fix: str | None = None) -> None:
        where = f"{file}: {key}" if key else f"{file}"
        message = f"{where}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)
        self.file = str(file)
        self.key = key


class EngineError(EnvbuildError):
    """The Docker engine is missing or failed."""

    exit_code = EXIT_FAILURE


class RegistryError(EnvbuildError):
    """A registry could not be reached or answered with an error."""


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """How every command ends on an expected failure: its one line on stderr and its exit code
    (130 on Ctrl-C), never a traceback. Used by the full CLI and by entry.py's fast paths alike."""
    try:
        yield
    except EnvbuildError as e:
        from envbuild.output import error  # rich: loaded only when there is an error to say

        error(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
