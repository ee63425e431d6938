"""The content-addressed artifact cache that the wheelhouse and the .deb cache share.

    $ENVBUILD_CACHE_DIR/<kind>/<sha256>/<filename>      kind: "wheels", "debs"

A file enters only after its sha256 matched a lock, and is hashed again before every build,
so a changed byte is refused, naming the file and both hashes. Files go into a build context
as hard links (the context is made beside the cache), copies across filesystems.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import cache_dir, sha256_file


def kind_dir(kind: str) -> Path:
    return cache_dir() / kind


def path_for(kind: str, sha256: str, filename: str) -> Path:
    return kind_dir(kind) / sha256 / filename


def store(kind: str, src: Path, sha256: str, filename: str | None = None) -> Path:
    """Move a checked file into the cache (a rename: `src` must be on the cache's filesystem)."""
    final = path_for(kind, sha256, filename or src.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, final)
    return final


def verify(path: Path, expected: str, lockfile: str, what: str) -> None:
    """Refuse a cached artifact whose bytes are not the ones `lockfile` names for `what`."""
    actual = sha256_file(path)
    if actual != expected:
        raise EnvbuildError(
            f"{path}: sha256 is {actual} but {lockfile} expects {expected} for {what}; "
            f"the cached file was changed: delete {path.parent} and build again",
            EXIT_FAILURE,
        )


def link_into(files: Iterable[Path], dest: Path) -> None:
    """Put cached files into a build context: hard links, copies across filesystems."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)
