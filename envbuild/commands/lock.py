"""envbuild lock (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def lock() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild lock is not built yet")
