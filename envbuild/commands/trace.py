"""envbuild trace (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def trace() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild trace is not built yet")
