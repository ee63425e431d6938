"""envbuild doctor (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def doctor() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild doctor is not built yet")
