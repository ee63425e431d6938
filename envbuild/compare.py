"""Why two runs differ: their records compared ingredient by ingredient, grouped by cause.

A cause is one of CAUSES; each gets a Section that is either identical or lists its Changes.
Metric deltas come last, as the effect. Only record fields are read (plus `code.diff` beside a
record and `git diff --name-only` between two commits when the repository has them), so two
records from different machines can be compared too.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envbuild import manifest
from envbuild.record import CodeFacts, DataFacts, Gpu, ImageFacts, Record

CAUSES: dict[str, str] = {
    "code": "Code",
    "data": "Data",
    "environment": "Environment",
    "seed": "Seed and determinism",
    "command": "Command and params",
    "hardware": "Hardware",
}

# Container variables that name the run itself, not an ingredient: they always differ.
_PER_RUN_ENV = re.compile(r"^(ENVBUILD_|HOSTNAME$|HOME$)")
# Files that are the environment's inputs or locks: when the lock hash changed too, their edits are
# the environment's change (already named package by package), not a code change.
ENV_FILES = {"envbuild.lock", "requirements.lock", "conda-lock.yml", "requirements.in", "requirements.txt",
             "environment.yml", "pyproject.toml", "envbuild.toml"}


@dataclass
class Change:
    what: str  # e.g. "commit", "numpy", "data/train.csv"
    a: Any = None
    b: Any = None
    note: str = ""  # e.g. "changed", "added", "removed", or files touched


@dataclass
class Section:
    cause: str
    title: str
    changes: list[Change] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.changes


@dataclass
class MetricDelta:
    name: str
    a: float | None
    b: float | None
    delta: float | None


@dataclass
class OutputDelta:
    path: str
    a: str | None  # sha256, None when the run made no such file
    b: str | None

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass
class Diff:
    a: str  # run ids
    b: str
    sections: list[Section]
    metrics: list[MetricDelta]
    outputs: list[OutputDelta] = field(default_factory=list)

    @property
    def causes(self) -> list[str]:
        """The causes that differ, in CAUSES order."""
        return [s.cause for s in self.sections if not s.identical]

    def section(self, cause: str) -> Section:
        return next(s for s in self.sections if s.cause == cause)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "differs": self.causes,
            "identical": [s.cause for s in self.sections if s.identical],
            "sections": {s.cause: {"title": s.title, "identical": s.identical,
                                   "changes": [asdict(c) for c in s.changes]} for s in self.sections},
            "metrics": [asdict(m) for m in self.metrics],
            "outputs": [{**asdict(o), "same": o.same} for o in self.outputs],
        }


def diff_records(a: dict[str, Any] | Record, b: dict[str, Any] | Record, dir_a: Path | None = None,
                 dir_b: Path | None = None) -> Diff:
    """Compare two run records; `dir_a`/`dir_b` are their run dirs (for code.diff), when known."""
    a, b = Record.from_dict(a), Record.from_dict(b)
    code, env_files = _code(a, b, dir_a, dir_b)
    environment = _environment(a, b)
    if env_files:
        environment.append(Change("lock inputs", note=", ".join(env_files) + " changed"))
    sections = [
        Section("code", CAUSES["code"], code),
        Section("data", CAUSES["data"], _data(a, b, dir_a, dir_b)),
        Section("environment", CAUSES["environment"], environment),
        Section("seed", CAUSES["seed"], _seed(a, b)),
        Section("command", CAUSES["command"], _command(a, b)),
        # GPUs are not here: the driver and GPU models are environment causes (_gpus).
        Section("hardware", CAUSES["hardware"], _dict_changes(a.host.facts, b.host.facts)),
    ]
    return Diff(a.id or "a", b.id or "b", sections, metric_deltas(a, b), output_deltas(a, b))


# --- one function per cause ------------------------------------------------------------


def _code(a: Record, b: Record, dir_a: Path | None, dir_b: Path | None) -> tuple[list[Change], list[str]]:
    """(code changes, environment files that changed with the lock: reported under environment)."""
    ca, cb = a.code, b.code
    lock_changed = a.lock.lock_hash != b.lock.lock_hash
    changes, env_files = [], []

    def split(files: list[str]) -> list[str]:
        env = [f for f in files if lock_changed and Path(f).name in ENV_FILES]
        env_files.extend(f for f in env if f not in env_files)
        return [f for f in files if f not in env]

    if ca.commit != cb.commit:
        files = changed_between(_root(a) or _root(b), ca.commit, cb.commit)
        if files is None:
            changes.append(Change("commit", ca.commit, cb.commit, "files unknown: a commit is not in this repository"))
        elif split(files) or not files:
            changes.append(Change("commit", ca.commit, cb.commit, ", ".join(split(files))))
    # dirty None (git failed at run time) is unknown: never the same as clean
    if ca.dirty != cb.dirty or ca.diff_sha256 != cb.diff_sha256:
        files = _dirty_files_that_differ(ca, cb, dir_a, dir_b)
        if split(files) or not files:
            changes.append(Change("uncommitted diff", _dirty_label(ca), _dirty_label(cb), ", ".join(split(files))))
    return changes, env_files


def _dirty_label(code: CodeFacts) -> str:
    if code.dirty is None:
        return "unknown (git failed)"
    if not code.dirty:
        return "clean"
    sha = code.diff_sha256
    return f"dirty ({sha[:12]})" if sha else "dirty"


def _dirty_files_that_differ(ca: CodeFacts, cb: CodeFacts, dir_a: Path | None, dir_b: Path | None) -> list[str]:
    """Files whose uncommitted patch differs; from the saved diffs, else the records' file lists."""
    pa, pb = _patches(ca, dir_a), _patches(cb, dir_b)
    if pa is not None and pb is not None:
        return sorted(f for f in set(pa) | set(pb) if pa.get(f) != pb.get(f))
    # Without both diffs: the files either run had uncommitted changes in.
    return sorted(set(ca.changed_files) | set(cb.changed_files))


def _patches(code: CodeFacts, run_dir: Path | None) -> dict[str, str] | None:
    """{file: its part of the saved diff}; {} for a clean run; None when the diff is not at hand."""
    if code.dirty is None:
        return None
    if not code.dirty:
        return {}
    name = code.diff_file
    if run_dir is None or not name or not (Path(run_dir) / name).is_file():
        return None
    return split_patch((Path(run_dir) / name).read_text(errors="replace"))


def split_patch(text: str) -> dict[str, str]:
    """A `git diff` split into {path: that file's part}."""
    parts: dict[str, str] = {}
    for chunk in re.split(r"(?m)^(?=diff --git )", text):
        m = re.match(r"diff --git a/(\S+) b/(\S+)", chunk)
        if m:
            parts[m.group(2)] = chunk
    return parts


def changed_between(root: Path | None, commit_a: str | None, commit_b: str | None) -> list[str] | None:
    """`git diff --name-only A B` in the project repository, or None when it cannot tell."""
    if root is None or not commit_a or not commit_b:
        return None
    from envbuild.provenance import git

    proc = git(root, "diff", "--name-only", commit_a, commit_b, text=True, timeout=60)
    return proc.stdout.split() if proc.returncode == 0 else None


def _root(record: Record) -> Path | None:
    root = record.project_root
    return Path(root) if root and Path(root).is_dir() else None


def _data(a: Record, b: Record, dir_a: Path | None = None, dir_b: Path | None = None) -> list[Change]:
    da = {d.path: d for d in a.data}
    db = {d.path: d for d in b.data}
    changes = []
    for path in sorted(set(da) | set(db)):
        x, y = da.get(path), db.get(path)
        if x is None or y is None:
            changes.append(Change(path, _short(x), _short(y), "added" if x is None else "removed"))
        elif x.sha256 != y.sha256:
            note = f"{x.files} → {y.files} files, {x.bytes} → {y.bytes} bytes"
            files_a = manifest.load(dir_a, a.data_manifest(path))
            files_b = manifest.load(dir_b, b.data_manifest(path))
            detail = manifest.changes(path, files_a, files_b)
            note += f"; {detail}" if detail else ""
            changes.append(Change(path, x.sha256, y.sha256, note))
    for name, (x, y) in _pairs(a.dvc, b.dvc).items():
        changes.append(Change(f"dvc:{name}", x, y, "dvc.lock hash"))
    return changes


def _short(entry: DataFacts | None) -> str | None:
    return entry.sha256 if entry else None


def package_changes(pa: dict[str, str], pb: dict[str, str]) -> list[Change]:
    """Packages added, removed or changed between two {name: version} maps."""
    changes = []
    for name in sorted(set(pa) | set(pb), key=str.lower):
        x, y = pa.get(name), pb.get(name)
        if x != y:
            note = "added" if x is None else "removed" if y is None else "changed"
            changes.append(Change(name, x, y, note))
    return changes


def _environment(a: Record, b: Record) -> list[Change]:
    la, lb = a.lock, b.lock
    ia, ib = a.image, b.image
    changes = package_changes(la.packages, lb.packages)
    if ia.base_digest != ib.base_digest:
        changes.append(Change("base image", _base(ia), _base(ib), "base digest"))
    for name, (x, y) in _pairs(la.lockfiles, lb.lockfiles).items():
        changes.append(Change(f"lockfile {name}", x, y, "sha256"))
    if la.lock_hash != lb.lock_hash:
        changes.append(Change("lock hash", la.lock_hash, lb.lock_hash))
    if ia.id != ib.id:
        note = "same lock, image rebuilt" if la.lock_hash == lb.lock_hash else "image id"
        changes.append(Change("image", ia.id, ib.id, note))
    elif ia.repo_digest and ib.repo_digest and ia.repo_digest != ib.repo_digest:
        changes.append(Change("image digest", ia.repo_digest, ib.repo_digest, "registry digest"))
    return changes + _gpus(a, b)


def _gpus(a: Record, b: Record) -> list[Change]:
    """The NVIDIA driver, the GPUs, and CUDA/cuDNN as torch saw them: what a GPU run's numbers depend on."""
    ga, gb = a.host.gpus, b.host.gpus
    changes = []
    da, db = _joined(ga, "driver"), _joined(gb, "driver")
    if da != db:
        changes.append(Change("nvidia driver", da, db, "host driver"))
    ma, mb = _joined(ga, "name", "compute_capability", "memory"), _joined(gb, "name", "compute_capability", "memory")
    if ma != mb:
        changes.append(Change("gpus", ma, mb, "GPU model"))
    elif _joined(ga, "uuid") != _joined(gb, "uuid"):
        changes.append(Change("gpu uuids", _joined(ga, "uuid"), _joined(gb, "uuid"), "same models, other cards"))
    ta, tb = a.torch, b.torch
    for label, x, y in (("CUDA runtime (as torch saw it)", ta.cuda, tb.cuda),
                        ("cuDNN (as torch saw it)", ta.cudnn, tb.cudnn)):
        if x != y:
            changes.append(Change(label, x, y))
    return changes


def _joined(gpus: tuple[Gpu, ...], *facts: str) -> str | None:
    """"NVIDIA H200 9.0 143771 MiB; ..." of the GPUs' `facts`, distinct values once; None without GPUs."""
    values = [" ".join(str(getattr(g, f)) for f in facts if getattr(g, f)) for g in gpus]
    return "; ".join(dict.fromkeys(values)) or None


def _base(image: ImageFacts) -> str | None:
    digest = image.base_digest
    return f"{image.base}@{digest}" if image.base and digest else digest


def _determinism_keys(a: Record, b: Record) -> set[str]:
    return set(a.determinism.env) | set(b.determinism.env)


def _seed(a: Record, b: Record) -> list[Change]:
    changes = []
    if a.seed != b.seed:
        changes.append(Change("seed", a.seed, b.seed))
    da, db = a.determinism, b.determinism
    if bool(da.enabled) != bool(db.enabled):
        changes.append(Change("deterministic", bool(da.enabled), bool(db.enabled)))
    # PYTHONHASHSEED follows the seed, and ENVBUILD_SEED/ENVBUILD_DETERMINISTIC echo the two fields
    # above: say each change once.
    ea, eb = dict(da.env), dict(db.env)
    for key in set(ea) | set(eb):
        echoes_seed = key == "PYTHONHASHSEED" and ea.get(key) == str(a.seed) and eb.get(key) == str(b.seed)
        if key.startswith("ENVBUILD_") or echoes_seed:
            ea.pop(key, None), eb.pop(key, None)
    changes += _dict_changes(ea, eb, prefix="env ")
    sa, sb = list(da.settings), list(db.settings)
    if a.seed != b.seed:
        sa, sb = _unseeded(sa, a.seed), _unseeded(sb, b.seed)
    if sorted(sa) != sorted(sb):
        changes.append(Change("settings", ", ".join(sorted(set(sa) - set(sb))) or None,
                              ", ".join(sorted(set(sb) - set(sa))) or None, "applied in process"))
    return changes


def _unseeded(settings: list[str], seed: Any) -> list[str]:
    """Settings with the seed value taken out ("random.seed(7)" → "random.seed(<seed>)")."""
    return [re.sub(rf"\b{re.escape(str(seed))}\b", "<seed>", s) for s in settings]


def _command(a: Record, b: Record) -> list[Change]:
    changes = []
    if a.command != b.command:
        changes.append(Change("command", " ".join(a.command), " ".join(b.command)))
    pa, pb = a.params, b.params
    # A param that only echoes the run's seed is the seed's change, not a param's.
    for key in [k for k in set(pa) & set(pb) if pa[k] == a.seed and pb[k] == b.seed]:
        del pa[key], pb[key]
    changes += _dict_changes(pa, pb, prefix="param ")
    skip = _determinism_keys(a, b)
    ea = {k: v for k, v in a.env.items() if k not in skip and not _PER_RUN_ENV.match(k)}
    eb = {k: v for k, v in b.env.items() if k not in skip and not _PER_RUN_ENV.match(k)}
    changes += _dict_changes(ea, eb, prefix="env ")
    for name, x, y in (("network", a.network, b.network), ("gpus", a.gpus, b.gpus)):
        if x != y:
            changes.append(Change(name, x, y))
    return changes


# --- shared helpers ---------------------------------------------------------------------


def _pairs(x: dict, y: dict) -> dict[str, tuple[Any, Any]]:
    return {k: (x.get(k), y.get(k)) for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)}


def _dict_changes(x: dict, y: dict, prefix: str = "") -> list[Change]:
    out = []
    for key, (p, q) in _pairs(x, y).items():
        note = "added" if key not in x else "removed" if key not in y else "changed"
        out.append(Change(f"{prefix}{key}", p, q, note))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def metric_deltas(a: dict[str, Any] | Record, b: dict[str, Any] | Record) -> list[MetricDelta]:
    ma, mb = Record.from_dict(a).metrics, Record.from_dict(b).metrics
    out = []
    for name in sorted(set(ma) | set(mb)):
        x, y = _number(ma.get(name)), _number(mb.get(name))
        delta = y - x if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) else None
        out.append(MetricDelta(name, x, y, delta))
    return out


def output_deltas(a: dict[str, Any] | Record, b: dict[str, Any] | Record) -> list[OutputDelta]:
    """Each output file of either run, with its sha256 in both: results, like the metrics."""
    oa, ob = Record.from_dict(a).output_sha256s, Record.from_dict(b).output_sha256s
    return [OutputDelta(p, oa.get(p), ob.get(p)) for p in sorted(set(oa) | set(ob))]


# --- the report --------------------------------------------------------------------------


def render(diff: Diff, console: Any) -> None:
    """The human report: one block per cause, identical ones said in one line."""
    from rich.table import Table

    console.print(f"[bold]envbuild diff[/] {diff.a} → {diff.b}")
    differs = diff.causes
    console.print("differs in: " + (", ".join(CAUSES[c].lower() for c in differs) if differs else "nothing"))
    for s in diff.sections:
        if s.identical:
            console.print(f"[green]✓ {s.title}: identical[/]")
            continue
        table = Table(title=f"✗ {s.title}", title_justify="left", title_style="bold red")
        for col in ("what", diff.a, diff.b, "note"):
            table.add_column(col, overflow="fold")
        for c in s.changes:
            table.add_row(_cell(c.what), _cell(c.a), _cell(c.b), _cell(c.note))
        console.print(table)
    if diff.metrics:
        table = Table(title="Metrics", title_justify="left", title_style="bold")
        for col in ("metric", diff.a, diff.b, "delta"):
            table.add_column(col, justify="right" if col != "metric" else "left")
        for m in diff.metrics:
            table.add_row(m.name, _cell(m.a), _cell(m.b), "" if m.delta is None else f"{m.delta:+.6g}")
        console.print(table)
    if diff.outputs:
        same = sum(o.same for o in diff.outputs)
        console.print(f"[bold]Outputs[/]: {same} of {len(diff.outputs)} files byte-identical")
        for o in diff.outputs:
            if not o.same:
                console.print(f"  [red]≠[/] {_cell(o.path)}  {(o.a or '—')[:12]} → {(o.b or '—')[:12]}")


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))
