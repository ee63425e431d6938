"""Small file helpers: atomic writes and streamed hashing."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

CHUNK = 1 << 20


def new_temp(directory: Path, prefix: str, suffix: str = "") -> tuple[int, str]:
    """(fd, path) of a new file only we have opened, as tempfile.mkstemp makes it (mode 0600, never
    an existing name or a link), without tempfile's import, which every envbuild start would pay."""
    while True:
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), name
        except FileExistsError:
            continue


@contextmanager
def temp_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new private directory in `parent`, removed with what it holds afterwards (tempfile's
    TemporaryDirectory, without tempfile's import)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    while True:
        path = Path(parent) / f"{prefix}{os.urandom(6).hex()}"
        try:
            path.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def canonical_json(obj: Any) -> str:
    """The one JSON spelling used wherever bytes are hashed or compared."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, canonical_json(obj))


def replace_together(src: Path, names: Sequence[str], dest: Path, journal: Path) -> None:
    """Move src/<name> to dest/<name> for every name as one step, even across a SIGKILL: a journal
    naming the moves is written (atomically) first, so finish_replace, run by the next reader,
    completes moves a killed process began. Readers see all old files or all new ones.
    `src` must be a directory beside `journal`."""
    atomic_write_json(journal, {"src": Path(src).name, "dest": str(dest), "names": list(names)})
    finish_replace(journal)


def finish_replace(journal: Path) -> None:
    """Complete the moves of a journal left by replace_together (nothing to do without one)."""
    try:
        plan = json.loads(Path(journal).read_text())
        src, dest, names = Path(journal).parent / plan["src"], Path(plan["dest"]), plan["names"]
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError):  # not ours: never act on it
        return
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            continue
        try:
            os.replace(src / name, dest / name)
        except FileNotFoundError:
            pass  # moved already: before the kill, or by another reader
    Path(journal).unlink(missing_ok=True)
    import shutil  # not at the top: every envbuild start would pay for its import

    shutil.rmtree(src, ignore_errors=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (never the whole file in memory)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def cache_dir() -> Path:
    """The user cache (rootfs tarballs, wheelhouses ...): $ENVBUILD_CACHE_DIR or ~/.cache/envbuild."""
    return Path(os.environ.get("ENVBUILD_CACHE_DIR") or Path.home() / ".cache" / "envbuild")
