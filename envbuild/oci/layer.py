"""Deterministic layer tars: the same files give the same bytes, on any machine, at any time.

Every entry is written the same way wherever it came from (a tree staged on the host, a few bytes
envbuild makes, or the changes a sandbox container left):
- entries sorted by path, each path once; parents before children;
- mtimes clamped to the lock's epoch (files made now get the epoch; older ones keep their time);
- owner 0:0 with empty user and group names unless the entry names an owner;
- modes explicit: a staged tree gets 0755 (directories, executables) or 0644, a sandbox keeps dpkg's;
- hard links written as regular files, so a link made by a cache on one machine changes nothing;
- ustar/PAX headers only as tarfile needs them (long names): no atime, ctime or pid-named headers;
- no run-time litter (LITTER): logs, caches, apt lists, `*-old` backups, byte code made by a sandbox
  run at the wrong time.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterable

from envbuild.errors import EnvbuildError
from envbuild.oci.blobs import Store

# What a layer never carries: written at run time by tools, never part of what the lock installs.
LITTER = (
    "var/log/*", "var/cache/ldconfig/aux-cache", "var/cache/apt/*", "var/lib/apt/lists/*",
    "var/cache/debconf/*-old", "var/lib/dpkg/*-old", "var/cache/man/*", "var/lib/dpkg/lock*",
    "etc/ld.so.cache~", "root/.cache/*", "tmp/*", "var/tmp/*", "run/*", "dev/*", "proc/*", "sys/*",
    "etc/machine-id", "var/lib/dbus/machine-id", "etc/hostname", "etc/hosts", "etc/resolv.conf",
    "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-",
)
KEEP = ("var/cache/apt", "var/lib/apt/lists", "var/log", "tmp", "var/tmp", "run", "dev", "proc", "sys")


@dataclass(frozen=True)
class Entry:
    path: str  # inside the image, relative, e.g. opt/venv/bin/python
    kind: str  # "file", "dir", "symlink" or "whiteout"
    mode: int = 0o644
    mtime: int = 0
    source: Path | None = None  # a host file with the content
    data: bytes | None = None  # or the content itself
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    size: int = 0


@dataclass(frozen=True)
class Layer:
    diff_id: str  # sha256 of the uncompressed tar: what the image config lists
    size: int  # of the uncompressed tar
    comment: str  # for the image's history, e.g. "pip: torch 2.13.0"


def is_litter(path: str) -> bool:
    return path not in KEEP and any(fnmatch.fnmatchcase(path, p) for p in LITTER)


def parents(path: str) -> list[str]:
    p = PurePosixPath(path).parent
    out = []
    while str(p) not in (".", "/", ""):
        out.append(str(p))
        p = p.parent
    return out[::-1]


def file_entry(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path.lstrip("/"), "file", mode, data=data, size=len(data))


def dir_entry(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path.lstrip("/").rstrip("/"), "dir", mode, uid=uid, gid=gid)


def symlink_entry(path: str, target: str) -> Entry:
    return Entry(path.lstrip("/"), "symlink", 0o777, linkname=target)


def tree_entries(root: Path, at: str) -> list[Entry]:
    """Every file, directory and link under host directory `root`, placed at image path `at`.

    Modes are normalised (0755 for directories and anything executable, else 0644): a staged tree's
    modes come from the host's umask, not from the package."""
    at = at.strip("/")
    out = [dir_entry(at)]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            path = f"{at}/{rel}" if at else rel
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out.append(symlink_entry(path, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                out.append(dir_entry(path))
                if os.path.islink(full):
                    dirnames.remove(name)
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                out.append(Entry(path, "file", mode, int(st.st_mtime), Path(full), size=st.st_size))
            else:
                raise EnvbuildError(f"{full}: not a file, directory or link; a layer cannot hold it")
    return out


def tar_entries(fileobj: IO[bytes], keep: Callable[[str], bool] = lambda p: True) -> list[Entry]:
    """The members of a tar stream (a rootfs tarball, `docker export`) that `keep` accepts, with their
    own modes, owners and times; hard links become plain files (their content is read once)."""
    entries: list[Entry] = []
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for m in tar:
            path = m.name.removeprefix("./").strip("/")
            if not path or not keep(path):
                continue
            common = dict(mode=m.mode & 0o7777, mtime=int(m.mtime), uid=m.uid, gid=m.gid)
            if m.isdir():
                entries.append(Entry(path, "dir", **common))
            elif m.issym():
                entries.append(Entry(path, "symlink", linkname=m.linkname, **common))
            elif m.isreg():
                f = tar.extractfile(m)
                data = f.read() if f else b""
                contents[path] = data
                entries.append(Entry(path, "file", data=data, size=len(data), **common))
            elif m.islnk():
                target = m.linkname.removeprefix("./").strip("/")
                if target not in contents:
                    raise EnvbuildError(f"/{path} is a hard link to /{target}, which the tar does not hold before it")
                data = contents[target]
                entries.append(Entry(path, "file", data=data, size=len(data), **common))
            # device nodes, fifos: never part of an image layer (the runtime makes /dev)
    return entries


def _tarinfo(e: Entry, epoch: int) -> tarfile.TarInfo:
    t = tarfile.TarInfo(e.path)
    t.mtime = min(int(e.mtime), epoch) if e.mtime else epoch
    t.mode, t.uid, t.gid, t.uname, t.gname = e.mode, e.uid, e.gid, "", ""
    if e.kind == "dir":
        t.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        t.type, t.linkname = tarfile.SYMTYPE, e.linkname
    elif e.kind == "whiteout":
        t.type, t.mode = tarfile.REGTYPE, 0o644
    else:
        t.type, t.size = tarfile.REGTYPE, e.size
    return t


def normalise(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted, litter dropped, each parent directory present, each path once (two different
    entries for one path are a bug in the caller, not something to pick between silently)."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        if not e.path or is_litter(e.path):
            continue
        old = by_path.get(e.path)
        if old is not None and old != e and not (old.kind == e.kind == "dir"):
            raise EnvbuildError(f"two different entries for /{e.path} in one layer")
        by_path.setdefault(e.path, e)
    for path in list(by_path):
        for p in parents(path):
            by_path.setdefault(p, dir_entry(p))
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.split("/"))]


def write(entries: Iterable[Entry], store: Store, epoch: int, comment: str) -> Layer:
    """Write the layer into the blob store; its digest is the diff_id."""
    with store.writer() as w:
        with tarfile.open(fileobj=w, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            for e in normalise(entries):
                info = _tarinfo(e, epoch)
                if e.kind == "file":
                    content: IO[bytes] | None
                    if e.data is not None:
                        import io

                        content = io.BytesIO(e.data)
                        tar.addfile(info, content)
                    else:
                        assert e.source is not None
                        with open(e.source, "rb") as content:
                            tar.addfile(info, content)
                else:
                    tar.addfile(info)
    return Layer(w.digest, w.size, comment)
