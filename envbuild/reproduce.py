"""Run a recorded run again from its record and say whether its metrics came back.

The ingredients come from the record, each checked before anything runs:
- data: every recorded checksum against the data in the project now (a change stops it, exit 2,
  unless allow_data_drift);
- code: the recorded commit, checked out in a temporary git worktree under
  `<project>/.envbuild/reproduce/`, with the saved `code.diff` applied when the run was dirty;
- image: the recorded image id when the engine has it, else its registry digest pulled, else rebuilt
  from the lock copies saved in the run dir (the rebuilt lock hash must equal the recorded one).

How the worktree sees the data: data and outputs usually live in the project directory but not in git,
so each recorded data path is hard-linked from the project into the worktree (copied where a hard link
cannot be made, e.g. across file systems). The worktree is inside the project, so links are the norm
and no data is copied; the new run checksums the linked data like any run, so its record shows
what it read.

The new run is an ordinary run of the worktree; afterwards its run dir is moved into the original
project's runs, its record gets `reproduces` = the original id, and the files it wrote under the
spec's outputs are kept in `<run dir>/outputs/`, so the reproduced model is at hand.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from envbuild import record as rec, store
from envbuild.record import DIFF_FILE, LOCK_DIR, ImageFacts, Record
from envbuild.errors import EXIT_FAILURE, EXIT_USAGE, EnvbuildError, last_line

WORKTREES = "reproduce"  # under <project>/.envbuild/


@dataclass
class MetricCheck:
    name: str
    original: float | None
    new: float | None
    delta: float | None
    tolerance: float
    ok: bool


@dataclass
class Tolerance:
    rtol: float = 1e-5
    atol: float = 1e-8
    per_metric: dict[str, float] = field(default_factory=dict)  # absolute, by metric name

    def allowed(self, name: str, original: float) -> float:
        if name in self.per_metric:
            return self.per_metric[name]
        return self.atol + self.rtol * abs(original)


@dataclass
class Reproduction:
    original: str
    new: str | None
    reproduced: bool
    exit_code: int | None  # the new run's
    original_exit_code: int | None
    image: str  # what ran
    image_source: str  # "local" | "pulled" | "rebuilt"
    data_drift: list[str]
    metrics: list[MetricCheck]
    outputs_identical: bool | None  # every output byte-identical (None: no outputs recorded)
    run_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_metric_tolerances(items: list[str]) -> dict[str, float]:
    """`["loss=0.01", "acc=0.001"]` → {"loss": 0.01, "acc": 0.001}."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            tol = float(value)
        except ValueError:
            tol = -1.0
        if not sep or not name.strip() or not math.isfinite(tol) or tol < 0:
            raise EnvbuildError(f"--metric {item!r}: expected NAME=TOL with TOL a number >= 0, e.g. --metric loss=0.01")
        out[name.strip()] = tol
    return out


def compare_metrics(original: dict[str, Any], new: dict[str, Any], tol: Tolerance) -> list[MetricCheck]:
    """Every numeric metric of the original run, checked against the new run's."""
    checks = []
    for name in sorted(original):
        x, y = _num(original[name]), _num(new.get(name))
        if x is None:
            continue  # not a number: nothing to compare
        allowed = tol.allowed(name, x) if math.isfinite(x) else 0.0
        if y is None:
            checks.append(MetricCheck(name, x, None, None, allowed, False))
            continue
        if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
            same = (math.isnan(x) and math.isnan(y)) or x == y
            checks.append(MetricCheck(name, x, y, None, allowed, same))
            continue
        delta = y - x
        checks.append(MetricCheck(name, x, y, delta, allowed, abs(delta) <= allowed))
    return checks


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# --- ingredients -----------------------------------------------------------------------------


def data_drift(root: Path, record: dict[str, Any] | Record, run_dir: Path | None = None) -> list[str]:
    """Recorded data paths whose content is not what the run read (missing paths included), each
    with the files added, removed and changed when the run kept a per-file manifest."""
    from envbuild import manifest, provenance

    record = Record.from_dict(record)
    missing = [e.path for e in record.data if not (Path(root) / e.path).exists()]
    present = [e for e in record.data if e.path not in missing]
    listings: dict[str, list] = {}
    now, _ = provenance.data_checksums(Path(root), [e.path for e in present], listings)
    changed = []
    for e, n in zip(present, now):
        if n["sha256"] != e.sha256:
            detail = manifest.changes(e.path, manifest.load(run_dir, record.data_manifest(e.path)), listings[e.path])
            changed.append(f"{e.path} ({detail})" if detail else e.path)
    return changed + [f"{p} (missing)" for p in missing]


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """provenance.git as text; check: a failure raises EnvbuildError with git's last line."""
    from envbuild.provenance import git as run_git

    proc = run_git(root, *args, text=True)
    if check and proc.returncode != 0:
        raise EnvbuildError(f"git {args[0]} failed in {root}: {last_line(proc.stderr, f'exit {proc.returncode}')}")
    return proc


def require_code(root: Path, record: dict[str, Any] | Record, run_dir: Path) -> tuple[str, Path | None]:
    """The recorded commit (present in the repository) and the saved diff file when the run was dirty."""
    from envbuild.fsutil import sha256_file

    record = Record.from_dict(record)
    code, rid = record.code, record.id
    commit = code.commit
    if not commit:
        raise EnvbuildError(f"run {rid} recorded no git commit (the project was not a git repository); "
                            "it cannot be checked out again", EXIT_USAGE)
    if git(root, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode != 0:
        raise EnvbuildError(f"commit {commit} of run {rid} is not in the repository at {root}; "
                            "fetch it (git fetch --all) and try again", EXIT_USAGE)
    if code.dirty is None:  # git failed at run time: the tree that ran is not known
        raise EnvbuildError(f"run {rid} recorded commit {commit} but not whether the tree was clean "
                            f"({code.error or 'no dirty flag'}); it cannot be checked out faithfully", EXIT_USAGE)
    if not code.dirty:
        return commit, None
    diff = run_dir / (code.diff_file or DIFF_FILE)
    if not diff.is_file():
        raise EnvbuildError(f"run {rid} was dirty but its uncommitted diff {diff} is missing", EXIT_USAGE)
    if code.diff_sha256 and sha256_file(diff) != code.diff_sha256:
        raise EnvbuildError(f"{diff}: sha256 differs from the record's diff_sha256; the saved diff was changed",
                            EXIT_USAGE)
    return commit, diff


def repo_top(root: Path) -> Path:
    return Path(git(root, "rev-parse", "--show-toplevel").stdout.strip() or root).resolve()


def worktree_path(root: Path, record: dict[str, Any] | Record) -> Path:
    """Where the temporary worktree goes: `.envbuild/reproduce/<run id>-<hex>/<repo dir name>`, so the
    project in it keeps its directory name (a spec without `name` is named after its directory)."""
    return store.state_dir(root) / WORKTREES / f"{Record.from_dict(record).id}-{secrets.token_hex(3)}" / repo_top(root).name


def data_placement(root: Path, record: dict[str, Any] | Record) -> list[str]:
    """The recorded data paths to link into the worktree: those inside the repository. Absolute
    paths outside it are read where they are; a relative path that climbs out of the repository
    cannot be placed beside the worktree: exit 2 before anything is made."""
    top = repo_top(root)
    record = Record.from_dict(record)
    inside = []
    for entry in record.data:
        rel = entry.path
        full = Path(os.path.normpath(Path(root) / rel))
        if full.is_relative_to(top) and not os.path.isabs(rel):
            inside.append(rel)
        elif not os.path.isabs(rel):
            raise EnvbuildError(f"data path {rel!r} of run {record.id} lies outside the git repository "
                                f"{top}; reproduce cannot place it beside the worktree: give it as an absolute path "
                                "in the spec's data", EXIT_USAGE)
    return inside


def make_worktree(root: Path, path: Path, commit: str, diff: Path | None, data: list[str]) -> Path:
    """The project dir in a detached worktree of `commit` at `path`, the saved diff applied (its
    paths are relative to the repository's top), the `data` paths linked in. The caller removes
    the worktree whatever happens (remove_worktree)."""
    prefix = git(root, "rev-parse", "--show-prefix").stdout.strip()  # project below the repo's top
    path.parent.mkdir(parents=True, exist_ok=True)
    git(root, "worktree", "add", "--detach", "--quiet", str(path), commit)
    if diff is not None and diff.stat().st_size:
        proc = git(path, "apply", "--whitespace=nowarn", str(diff.resolve()), check=False)
        if proc.returncode != 0:
            raise EnvbuildError(f"{diff}: does not apply to commit {commit}: {last_line(proc.stderr, 'git apply failed')}",
                                EXIT_USAGE)
    project = path / prefix
    for rel in data:
        link_tree(Path(root) / rel, Path(os.path.normpath(project / rel)), within=path)
    return project


def link_tree(src: Path, dst: Path, *, within: Path) -> None:
    """Hard-link a file or directory tree (copy where linking fails); replaces what git put there.
    Only ever removes or writes below `within` (the worktree): never anything of the user's."""
    if os.path.realpath(dst) == os.path.realpath(src):
        return  # a committed symlink already leads there: nothing to place, nothing to remove
    # lexically and really (a committed symlink in the worktree could point back into the user's data)
    real = Path(os.path.realpath(dst.parent))
    if dst == src or dst == within or not dst.is_relative_to(within) or not real.is_relative_to(within.resolve()):
        raise EnvbuildError(f"refusing to place data at {dst}: it is not inside the worktree {within}")
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.is_dir():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    if src.is_dir():
        shutil.copytree(src, dst, copy_function=link, symlinks=True)
    else:
        link(str(src), str(dst))


def remove_worktree(root: Path, path: Path) -> None:
    """Remove the worktree at `path` (made or half-made) and its per-reproduction parent dir."""
    git(root, "worktree", "remove", "--force", str(path), check=False)
    if path.parent.parent.name == WORKTREES and path.parent.exists():  # only ever our own directory
        shutil.rmtree(path.parent, ignore_errors=True)
    git(root, "worktree", "prune", check=False)


def obtain_image(record: dict[str, Any] | Record, run_dir: Path, worktree: Path,
                 say: Callable[[str], None]) -> tuple[str, str]:
    """(reference to run, how it was had): local id, else pulled digest, else rebuilt from the lock copies."""
    from envbuild import engine
    from envbuild.image import inspect_or_pull
    from envbuild.lockfile import ENVBUILD_LOCK, read_lock

    record = Record.from_dict(record)
    image, rid = record.image, record.id
    if image.id and engine.image_exists(image.id):
        return image.id, "local"
    why = [f"id {image.id} is not in the local engine"]
    digest = image.repo_digest
    if digest:
        say(f"pulling {digest}")
        try:
            inspect_or_pull(digest)
            return digest, "pulled"
        except EnvbuildError as e:
            why.append(f"{digest} cannot be pulled ({e})")
    else:
        why.append("no registry digest was recorded (the image was never pushed)")
    lock_dir = run_dir / LOCK_DIR
    if (lock_dir / ENVBUILD_LOCK).is_file():
        restore_lock_copies(run_dir, worktree, overwrite=True)
        lock = read_lock(worktree)
        recorded = record.lock_hash
        if lock is None or lock.lock_hash != recorded:
            raise EnvbuildError(
                f"image {image.ref} of run {rid}: the lock copy in {lock_dir} has hash "
                f"{lock.lock_hash if lock else None}, the record says {recorded}; it cannot be rebuilt", EXIT_USAGE)
        say(f"rebuilding image {image.ref} from the recorded lock {recorded[:12]}")
        return prove_rebuilt(build_image(worktree, lock), image, rid)
    why.append(f"no lock copies in {lock_dir} to rebuild it from")
    raise EnvbuildError(f"image {image.ref} of run {rid} cannot be had: " + "; ".join(why), EXIT_USAGE)


def restore_lock_copies(run_dir: Path, project: Path, *, overwrite: bool) -> None:
    """Put the lockfiles saved with the run into the worktree (all, or only those it lacks)."""
    lock_dir = run_dir / LOCK_DIR
    for f in sorted(lock_dir.iterdir()) if lock_dir.is_dir() else []:
        if f.is_file() and (overwrite or not (project / f.name).exists()):
            shutil.copy2(f, project / f.name)


def prove_rebuilt(built: Any, image: ImageFacts, rid: Any) -> tuple[str, str]:
    """The rebuilt image is the recorded one, by image id and (where recorded) manifest digest, or
    nothing runs: a rebuild that differs reproduces another environment."""
    facts, digest = built.facts, built.manifest_digest
    if facts.id != image.id or (image.digest and digest != image.digest):
        raise EnvbuildError(
            f"run {rid} ran image {image.id} (digest {image.digest}); rebuilt from its lock it is "
            f"{facts.id} (digest {digest}): not the same image, so nothing was run", EXIT_FAILURE)
    return facts.ref, f"rebuilt bit-identical ({image.digest or facts.id})"


def build_image(worktree: Path, lock: Any) -> Any:
    from envbuild import image
    from envbuild.spec import load_spec

    from envbuild.output import info

    return image.build(load_spec(worktree), lock, log=info)


# --- the whole thing ----------------------------------------------------------------------------


def reproduce(root: Path, ref: str, tol: Tolerance, *, allow_data_drift: bool = False, keep: bool = False,
              quiet: bool = False, say: Callable[[str], None] = lambda m: None) -> Reproduction:
    """Reproduce run `ref` of the project at `root`. Raises EnvbuildError (exit 2) for a missing ingredient."""

    root = Path(root).resolve()
    run_dir, raw = store.load_run(root, ref)
    record = Record.from_dict(raw)
    rid = record.id
    if record.kind != rec.KIND_RUN:
        raise EnvbuildError(f"{rid} is an interactive {record.kind} session: what was typed there is not recorded, "
                            "so it cannot be run again; rerun its environment with `envbuild shell`, or script the "
                            "work and `envbuild run` it", EXIT_USAGE)
    drift = data_drift(root, record, run_dir)
    if drift and not allow_data_drift:
        raise EnvbuildError(f"data changed since run {rid}: {', '.join(drift)}; restore it, or pass "
                            "--allow-data-drift to run anyway", EXIT_USAGE)
    if drift:
        say(f"[yellow]data changed since run {rid}: {', '.join(drift)}; running anyway (--allow-data-drift)[/]")
    commit, diff = require_code(root, record, run_dir)
    data = data_placement(root, record)
    worktree = worktree_path(root, record)
    try:  # from before the worktree exists: a failure anywhere below still removes it
        project = make_worktree(root, worktree, commit, diff, data)
        restore_lock_copies(run_dir, project, overwrite=False)  # lockfiles never committed: the record's
        image_ref, source = obtain_image(record, run_dir, project, say)
        say(f"reproducing {rid}: commit {commit[:12]}{' + code.diff' if diff else ''}, image {image_ref} ({source}), "
            f"seed {record.seed}")
        new_dir, new = launch(project, record, image_ref, rid, quiet=quiet, say=say)
        new_dir = adopt(root, project, new_dir, new, rid)
    finally:
        if keep:
            say(f"worktree kept at {worktree}")
        else:
            remove_worktree(root, worktree)
    again = Record.from_dict(new)
    checks = compare_metrics(record.metrics, again.metrics, tol)
    ok = again.exit_code == record.exit_code and all(c.ok for c in checks)
    return Reproduction(rid, again.id, ok, again.exit_code, record.exit_code, image_ref, source,
                        drift, checks, outputs_identical(record, again), str(new_dir))


def outputs_identical(a: dict[str, Any] | Record, b: dict[str, Any] | Record) -> bool | None:
    oa, ob = Record.from_dict(a).output_sha256s, Record.from_dict(b).output_sha256s
    return None if not oa else oa == ob


def launch(project: Path, record: Record, image_ref: str, original_id: str, *, quiet: bool,
           say: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    """One ordinary run of the worktree, in `image_ref`, with the recorded command, seed and settings.

    The spec at the recorded commit brings its own env, data, outputs and determinism switch; the
    recorded container env is passed again on top (values the runner sets itself are left to it),
    so variables given with `envbuild run --env` come back too. Redacted secrets are taken from
    this shell's environment when set there.
    """
    import sys

    from envbuild import runner
    from envbuild.provenance import REDACTED

    skip = set(record.determinism.env)
    env = {}
    for name, value in record.env.items():
        if name in skip or name.startswith("ENVBUILD_") or name in ("HOME", "PYTHONUNBUFFERED"):
            continue
        if value == REDACTED:
            if name in os.environ:
                env[name] = os.environ[name]
            else:
                say(f"note: {name} was redacted in the record and is not set here; the run gets none")
            continue
        env[name] = value
    if any(REDACTED in arg for arg in record.command):
        say(f"note: the recorded command had secret values masked ({REDACTED}); the reproduction gets the mask, "
            "not the secret")
    req = runner.RunRequest(
        command=record.command,
        seed=record.seed,
        gpus=record.gpus,
        network=record.network,
        env=env,
        image=image_ref,
        stdout=sys.stderr.buffer if quiet else None,  # with --json, stdout holds only the JSON
        on=record.placement.target if record.placement else None,  # the same target again (older records: local)
    )
    return runner.run(project, req, reproduces=original_id)


def adopt(root: Path, worktree: Path, new_dir: Path, new: dict[str, Any], original_id: str) -> Path:
    """Move the new run into the original project's runs, link it to the original, keep its outputs."""
    from envbuild import chain
    from envbuild.secrets import is_secret_file
    from envbuild.spec import load_spec

    dest = Path(store.runs_dir(root)) / new_dir.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(new_dir), str(dest))
    for rel in load_spec(worktree).outputs:
        src = worktree / rel
        if src.exists():
            target = dest / "outputs" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # the outputs are the run's; secret-named files among them stay out of the run dir
            if src.is_dir():
                shutil.copytree(src, target, ignore=lambda _, names: [n for n in names if is_secret_file(n)])
            elif not is_secret_file(src):
                shutil.copy2(src, target)
    rec.mark_reproduction(new, original_id, root)
    chain.seal(root, dest, new)  # sealed again, into this project's chain (the worktree's is gone)
    return dest
