"""Helpers for the lock tests: small projects and a local conda channel."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path


def conda_package(channel: Path, name: str, version: str, depends: tuple[str, ...] = (), build: str = "0") -> Path:
    """A minimal valid noarch conda package (info/index.json + info/paths.json) in channel/noarch."""
    subdir = channel / "noarch"
    subdir.mkdir(parents=True, exist_ok=True)
    path = subdir / f"{name}-{version}-{build}.tar.bz2"
    index = {"name": name, "version": version, "build": build, "build_number": 0, "depends": list(depends),
             "subdir": "noarch", "noarch": "generic", "license": "MIT"}
    with tarfile.open(path, "w:bz2") as tar:
        for member, obj in (("info/index.json", index), ("info/paths.json", {"paths": [], "paths_version": 1})):
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def index_channel(channel: Path) -> None:
    from rattler.index import index_fs

    asyncio.run(index_fs(channel))


def make_channel(channel: Path) -> dict[str, Path]:
    """liba 1.0 and 2.0, libb (needs liba <2), libc (needs libb), python 3.11.9 (for a pip: section)."""
    files = {
        "liba-1": conda_package(channel, "liba", "1.0"),
        "liba-2": conda_package(channel, "liba", "2.0"),
        "libb": conda_package(channel, "libb", "1.0", ("liba <2",)),
        "libc": conda_package(channel, "libc-tools", "0.3", ("libb >=1",)),
        "python": conda_package(channel, "python", "3.11.9"),
    }
    index_channel(channel)
    return files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
