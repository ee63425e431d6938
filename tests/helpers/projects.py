"""Project and conda-channel fixtures shared by tests: files written in one call, small local conda channels."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from pathlib import Path


def conda_package(channel: Path, name: str, version: str, depends: tuple[str, ...] = (), build: str = "0", *,
                  files: dict[str, bytes] | None = None, links: dict[str, str] | None = None,
                  noarch: str = "generic", placeholder: str | None = None) -> Path:
    """A minimal valid noarch conda package (info/index.json + info/paths.json) in channel/noarch.

    `files` (path -> bytes; paths under bin/ are executable) and `links` (path -> symlink target) are
    its payload; text files holding `placeholder` get it replaced by the install prefix."""
    subdir = channel / "noarch"
    subdir.mkdir(parents=True, exist_ok=True)
    path = subdir / f"{name}-{version}-{build}.tar.bz2"
    index = {"name": name, "version": version, "build": build, "build_number": 0, "depends": list(depends),
             "subdir": "noarch", "noarch": noarch, "license": "MIT"}
    files, links = files or {}, links or {}
    paths = []
    for p, data in files.items():
        entry = {"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                 "size_in_bytes": len(data)}
        if placeholder and placeholder.encode() in data:
            entry.update(prefix_placeholder=placeholder, file_mode="text")
        paths.append(entry)
    paths += [{"_path": p, "path_type": "softlink"} for p in links]
    meta = [("info/index.json", index), ("info/paths.json", {"paths": paths, "paths_version": 1})]
    if noarch == "python":
        meta.append(("info/link.json", {"noarch": {"type": "python"}, "package_metadata_version": 1}))
    with tarfile.open(path, "w:bz2") as tar:
        for member, data in [(m, json.dumps(obj).encode()) for m, obj in meta] + list(files.items()):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o755 if member.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
        for member, target in links.items():
            info = tarfile.TarInfo(member)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
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


def write_conda_project(proj: Path, channel: Path, name: str, base: str, extra: str = "") -> Path:
    """A project on make_build_channel's channel: python, greetlib, and six as a pip entry."""
    write(proj / "pyproject.toml", f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\nconda = "environment.yml"\n{extra}')
    write(proj / "environment.yml", f"channels: [{channel.as_uri()}]\n"
                                    "dependencies:\n  - python=3.11\n  - greetlib\n  - pip:\n    - six==1.16.0\n")
    return proj


PLACEHOLDER = "/opt/envbuild-placeholder-prefix-0123456789abcdefghijklmnopqrstuvwxyz"


def make_build_channel(channel: Path) -> dict[str, Path]:
    """Packages an image can use: python 3.11.9 (a venv-shaped shim onto the base's /usr/bin/python3.11,
    so pip can install into the prefix), greet (a data file and a script with the prefix patched in)
    and greetlib (noarch: python, a module in site-packages)."""
    files = {
        "python": conda_package(channel, "python", "3.11.9", files={
            "pyvenv.cfg": b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n"},
            links={"bin/python": "/usr/bin/python3.11", "bin/python3": "python", "bin/python3.11": "python"}),
        "greet": conda_package(channel, "greet", "1.0", files={
            "share/greet/hello.txt": b"hello from greet 1.0\n",
            "bin/greet": f"#!/bin/sh\necho greet prefix={PLACEHOLDER}\n".encode()}, placeholder=PLACEHOLDER),
        "greetlib": conda_package(channel, "greetlib", "2.0", ("python >=3.11", "greet 1.*"), "py_0", noarch="python",
                                  files={"site-packages/greetlib/__init__.py": b"VERSION = '2.0'\n"}),
    }
    index_channel(channel)
    return files
