"""envbuild push (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def push() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild push is not built yet")
