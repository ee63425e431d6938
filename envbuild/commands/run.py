"""envbuild run (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def run() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild run is not built yet")
