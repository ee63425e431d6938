"""Where a run's ingredients came from: git state, data checksums (cached), DVC, host and GPU facts.

Data hashing is the expensive part, so every file's sha256 is cached under
`<project>/.envbuild/cache/data-hashes.json`, keyed by (path, size, mtime_ns, inode): a file none of
those changed for is not read again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterable, Iterator

from envbuild.errors import last_line
from envbuild.fsutil import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from envbuild.record import DIFF_FILE
from envbuild.secrets import MASK as REDACTED, Masker, is_secret_file, is_secret_name, withheld_file

CACHE_FILE = Path(".envbuild") / "cache" / "data-hashes.json"
MAX_UNTRACKED_DIFF = 5 << 20  # untracked files larger than this are listed, not put into code.diff
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


# --- secrets ---------------------------------------------------------------------------


def strip_credentials(value: str) -> str:
    """`https://user:token@host/x` -> `https://host/x` (anywhere in the string)."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>", value)


def redact_env(env: dict[str, str]) -> dict[str, str]:
    """Secret-looking names become "***"; credentials inside URLs are stripped from the rest."""
    return {k: REDACTED if is_secret_name(k) else strip_credentials(v) for k, v in env.items()}


# --- git -----------------------------------------------------------------------------------


def git(root: Path, *args: str, text: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`git -C ROOT ARGS`, captured: the one way envbuild runs git. Never raises: a missing git
    binary or a timeout comes back as exit code 127. LC_ALL=C: its messages are matched and recorded."""
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=text, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(args, 127, "" if text else b"", str(e) if text else str(e).encode())


def git_out(root: Path, *args: str) -> str | None:
    """git's stripped stdout, or None when it failed or printed nothing."""
    proc = git(root, *args, timeout=60)
    out = proc.stdout.decode(errors="replace").strip()
    return out if proc.returncode == 0 and out else None


class GitUnknown(Exception):
    """A git call whose answer belongs in a record failed: the code state is unknown, not clean."""


def _ask(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """git ARGS; an exit code outside `ok` raises GitUnknown naming the call and git's last line."""
    proc = git(root, *args, timeout=60)
    if proc.returncode not in ok:
        raise GitUnknown(f"git {args[0]} failed: {last_line(proc.stderr, f'exit {proc.returncode}')}")
    return proc


def _answer(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    """_ask's stripped stdout; None when git printed nothing (or exited with an allowed non-zero code)."""
    proc = _ask(root, *args, ok=ok)
    out = proc.stdout.decode(errors="replace").strip()
    return out if proc.returncode == 0 and out else None


def empty_code() -> dict[str, Any]:
    """The record's code section when nothing is known (record.py owns its shape)."""
    from envbuild.record import empty_code as empty

    return dict(empty())


def project_pathspec(root: Path, path: str) -> str | None:
    """`path` (as the spec writes it) relative to the project root, or None when it lies outside it:
    git refuses pathspecs outside the repository, so those are never passed."""
    full = Path(os.path.normpath(Path(root) / path))
    try:
        rel = full.relative_to(Path(root))
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def git_info(root: Path, run_dir: Path, exclude: Iterable[str] = (),
             masker: Masker | None = None) -> dict[str, Any]:
    """commit, branch, dirty flag, remote; the uncommitted diff (untracked files too) saved as code.diff.

    `exclude`: project paths that are not code (the .envbuild dir, data, outputs): never in the diff.
    A git call that fails leaves `dirty` null and says why in `error`: never a false "clean".
    Changed files with secret names (.env, *.pem ...) stay out of the diff (listed in
    `masker.files`); secret-looking values in the diff are masked (and counted by `masker`).
    """
    info = empty_code()
    # one call for "is it a repository" and its top: paths in status and diff are relative to the top
    probe = git(root, "rev-parse", "--is-inside-work-tree", "--show-toplevel", text=True, timeout=60)
    if probe.returncode != 0 and "not a git repository" in probe.stderr:
        return info  # not a repository: no code state to record
    try:
        if probe.returncode != 0:
            raise GitUnknown(f"git rev-parse failed: {last_line(probe.stderr, f'exit {probe.returncode}')}")
        top = Path(probe.stdout.splitlines()[-1]) if probe.stdout.strip() else Path(root)
        _code_state(Path(root), top, Path(run_dir), exclude, info, masker or Masker())
    except GitUnknown as e:
        info.update(dirty=None, diff_sha256=None, diff_file=None, error=str(e))
    return info


def _status(root: Path, spec: list[str]) -> tuple[str | None, str | None, list[str], list[str]]:
    """(commit, branch, changed paths, untracked paths) from one `git status --porcelain=v2 --branch`."""
    out = _ask(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", *spec).stdout
    commit = branch = None
    changed, untracked = [], []
    entries = iter(out.decode(errors="replace").split("\0"))
    for e in entries:
        if e.startswith("# branch.oid "):
            commit = None if e.endswith("(initial)") else e.split(" ", 2)[2]
        elif e.startswith("# branch.head "):
            branch = None if e.endswith("(detached)") else e.split(" ", 2)[2]
        elif e.startswith("1 "):  # 1 XY sub mH mI mW hH hI path
            changed.append(e.split(" ", 8)[8])
        elif e.startswith("2 "):  # a rename or copy: ... score path, then the source path
            changed.append(e.split(" ", 9)[9])
            next(entries, None)
        elif e.startswith("u "):  # unmerged
            changed.append(e.split(" ", 10)[10])
        elif e.startswith("? "):
            changed.append(e[2:])
            untracked.append(e[2:])
    return commit, branch, changed, untracked


def _remote_url(root: Path, branch: str | None) -> str | None:
    """The URL of the branch's remote, else origin's, else the first remote's: one `git config` call."""
    out = _answer(root, "config", "-z", "--get-regexp", r"^(remote\..*\.url|branch\..*\.remote)$", ok=(0, 1))
    urls: dict[str, str] = {}
    tracked = None
    for item in (out or "").split("\0"):
        key, _, value = item.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            urls.setdefault(key[len("remote."):-len(".url")], value)
        elif branch and key == f"branch.{branch}.remote":  # git lowercases section and key, not the branch
            tracked = value
    name = tracked if tracked in urls else ("origin" if "origin" in urls else next(iter(urls), None))
    return urls.get(name) if name else None


def _code_state(root: Path, top: Path, run_dir: Path, exclude: Iterable[str], info: dict[str, Any],
                masker: Masker) -> None:
    # pathspecs relative to the project root, which may sit below the repository's top;
    # paths outside the project are not in `.` anyway (and git rejects them)
    inside = [s for s in (project_pathspec(root, p) for p in (".envbuild", *exclude)) if s]
    spec = ["--", ".", *(f":(exclude){s}" for s in inside)]
    try:
        info["commit"], info["branch"], changed, untracked = _status(root, spec)
    except GitUnknown:  # the tree's state is unknown, but which commit it was may still be read
        try:
            info["commit"] = _answer(root, "rev-parse", "--verify", "-q", "HEAD", ok=(0, 1))
            info["branch"] = _answer(root, "symbolic-ref", "--short", "-q", "HEAD", ok=(0, 1))
        except GitUnknown:
            pass
        raise
    url = _remote_url(root, info["branch"])
    info["remote"] = strip_credentials(url) if url else None
    info["changed_files"] = sorted(changed)
    info["dirty"] = bool(changed)
    if not changed:
        return

    diff = b""
    secret = [p for p in changed if is_secret_file(p)]
    masker.files += [withheld_file(top, p) for p in secret]
    if info["commit"]:
        diff = _ask(root, "diff", "--binary", "HEAD", *spec, *(f":(top,literal,exclude){p}" for p in secret)).stdout
    for path in untracked:
        full = top / path
        if path not in secret and full.is_file() and full.stat().st_size <= MAX_UNTRACKED_DIFF:
            # --no-index exits 1 when the files differ, which they always do here
            diff += _ask(top, "diff", "--binary", "--no-index", "--", "/dev/null", path, ok=(0, 1)).stdout
    diff = masker.bytes(diff, "code.diff")
    if diff:
        atomic_write_bytes(Path(run_dir) / DIFF_FILE, diff)
        info["diff_sha256"] = sha256_bytes(diff)
        info["diff_file"] = DIFF_FILE


# --- data ----------------------------------------------------------------------------------


class HashCache:
    """sha256 per file, remembered by (path, size, mtime_ns, inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hits = self.misses = 0
        try:
            self.entries: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self._dirty = False

    def sha256(self, file: Path | str, st: os.stat_result) -> str:
        key = f"{file}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
        digest = self.entries.get(key)
        if digest is None:
            digest = sha256_file(file)
            self.entries[key] = digest
            self._dirty = True
            self.misses += 1
        else:
            self.hits += 1
        return digest

    def save(self) -> None:
        if self._dirty:
            live = {k: v for k, v in self.entries.items() if os.path.exists(k.split("\0", 1)[0])}
            atomic_write_json(self.path, live)
            self._dirty = False


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [Path(path) / rel for rel, _, _ in _walk(str(path), "")]


def _walk(top: str, prefix: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, real path, stat) of every file below `top` (a resolved directory): its own
    files by name, then each subdirectory by name, as os.walk with sorted names (manifests depend
    on this order). Symlinked directories are not followed; symlinked files count as their target.

    Plain strings and scandir's cached entries: the unchanged re-hash of 10,000 files is mostly
    this walk, and pathlib objects made it several times slower.
    """
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: e.name)
    dirs = []
    for e in entries:
        if e.is_dir():
            if not e.is_symlink():
                dirs.append(e)
            continue
        real = os.path.realpath(e.path) if e.is_symlink() else e.path
        yield prefix + e.name, real, e.stat()
    for d in dirs:
        yield from _walk(d.path, f"{prefix}{d.name}/")


def hash_path(root: Path, rel: str, cache: HashCache, listing: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """{path, sha256, bytes, files}: a file's own sha256; for a directory, the sha256 of its
    manifest (`<sha256>  <relative path>` lines, in walk order), so a rename counts as a change.
    `listing` gets {path, bytes, sha256} of each file (project-relative), for manifest.py."""
    target = Path(root) / rel
    listing = [] if listing is None else listing
    if target.is_file():
        st = target.stat()
        digest = cache.sha256(target.resolve(), st)
        listing.append({"path": rel, "bytes": st.st_size, "sha256": digest})
        return {"path": rel, "sha256": digest, "bytes": st.st_size, "files": 1}
    lines, total, files = [], 0, 0
    if target.is_dir():
        top = rel.rstrip("/")
        for relpath, real, st in _walk(os.path.realpath(target), ""):
            digest = cache.sha256(real, st)
            lines.append(f"{digest}  {relpath}\n")
            listing.append({"path": f"{top}/{relpath}", "bytes": st.st_size, "sha256": digest})
            total += st.st_size
            files += 1
    return {"path": rel, "sha256": sha256_bytes("".join(lines).encode()), "bytes": total, "files": files}


def data_checksums(root: Path, paths: Iterable[str], listings: dict[str, list[dict[str, Any]]] | None = None,
                   ) -> tuple[list[dict[str, Any]], HashCache]:
    """Checksums of the spec's `data` paths, through the project's hash cache; `listings` gets each
    path's per-file list."""
    cache = HashCache(Path(root) / CACHE_FILE)
    listings = {} if listings is None else listings
    try:
        return [hash_path(root, p, cache, listings.setdefault(p, [])) for p in paths], cache
    finally:
        cache.save()


def output_files(root: Path, paths: Iterable[str]) -> list[dict[str, Any]]:
    """[{path, sha256, bytes}] for every file under the spec's `outputs` (always read afresh)."""
    out = []
    for rel in paths:
        target = Path(root) / rel
        if not target.exists():
            continue
        for f in _files_under(target):
            out.append({"path": f.relative_to(root).as_posix(), "sha256": sha256_file(f), "bytes": f.stat().st_size})
    return out


def dvc_hashes(root: Path) -> dict[str, str] | None:
    """{path: md5} for every dep and out in dvc.lock, or None without one."""
    path = Path(root) / "dvc.lock"
    if not path.is_file():
        return None
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return None
    hashes: dict[str, str] = {}
    for stage in (doc.get("stages") or {}).values():
        for item in [*(stage.get("deps") or []), *(stage.get("outs") or [])]:
            if isinstance(item, dict) and item.get("path") and item.get("md5"):
                hashes[str(item["path"])] = str(item["md5"])
    return hashes


# --- host ----------------------------------------------------------------------------------


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{os.uname().sysname} {os.uname().release}"


def _cpu() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform  # its import alone costs more than the rest of the host facts

    return platform.processor() or None


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def host_facts(docker_version: str | None, gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """OS, kernel, CPU, memory, Docker; the GPUs (`gpus`: nvidia.gpus(), when the caller has queried them)."""
    if gpus is None:
        from envbuild.nvidia import gpus as query

        gpus = query()
    return {
        "os": _os_name(),
        "kernel": os.uname().release,
        "machine": os.uname().machine,
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "memory_bytes": _memory(),
        "docker_version": docker_version,
        "gpus": gpus,
    }
