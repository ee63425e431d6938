"""envbuild build (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def build() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild build is not built yet")
