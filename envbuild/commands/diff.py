"""envbuild diff (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def diff() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild diff is not built yet")
