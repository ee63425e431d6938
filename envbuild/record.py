"""The run record: schema, atomic write, read.

One JSON document per run at `<project>/.envbuild/runs/<id>/record.json`, written atomically
(fsutil.atomic_write_json) when the run starts (status "running") and again when it ends.
Beside it in the run dir: `stdout.log`, `stderr.log`, `code.diff` (uncommitted diff, when dirty),
`metrics.jsonl` and `params.jsonl` (envbuild.track), `determinism.jsonl` (what the in-image hook
applied), copies of the lockfiles (`lock/envbuild.lock`, `lock/requirements.lock`,
`lock/conda-lock.yml`) so a run can be rebuilt and diffed later.

Fields (schema_version 2; JSON Schema in envbuild/schemas/run-record.schema.json). `new` is the one
constructor; the sections' names and types are the TypedDicts below, and a test holds the schema to
them. Records of schema_version 1 (before `kind`) are read through `upgrade`, so every reader sees
one shape; the file itself is never rewritten (its seal covers its bytes). Readers take the facts by
name from the frozen view `Record.from_dict(d)` (`r.image.id`, `r.code.dirty`, `r.lock_hash`, `r.data`),
so the keys are spelled here only; a missing section reads as None / empty.
  schema_version: 2
  id: "20261128T063000Z-1a2b3c" (sortable by time)
  kind: "run" (envbuild run, reproduce) | "shell" (envbuild shell / notebook: work by hand; `command` is
        the shell or server, outputs are checksummed when it exits). Absent in older records: "run".
  status: "running" | "succeeded" | "failed" | "interrupted" | "cancelled" (the job was cancelled
          where it ran, e.g. `scancel`; interrupted: envbuild itself got SIGINT/SIGTERM)
  exit_code: int | null;  reason: str | null (why it failed, when not the script's exit code)
  started_at, ended_at: ISO 8601 UTC;  duration_s: float | null
  command: [str, ...]  (argv run inside the container, e.g. ["python", "train.py", "--lr", "0.1"])
  project: {name, root}
  seed: int
  determinism: {enabled: bool, env: {PYTHONHASHSEED, CUBLAS_WORKSPACE_CONFIG, NVIDIA_TF32_OVERRIDE, ...},
                settings: [str, ...] (what the in-process hook applied)}
  image: {ref, id (docker inspect .Id, local), digest (manifest, as envbuild wrote it) | null,
          repo_digest ("repo@sha256:...", registry, or null), base, base_digest, lock_hash,
          provenance: sha256 of the signed provenance envelope (attest.py) | null (optional; absent in old records),
          dev_hash, extends: {ref, id, digest} (only for a dev image, envbuild/dev.py: the dev groups'
          hash and the training image it is built on)}
  lock: {envbuild_lock_sha256, lock_hash, inputs_hash, lockfiles: {name: sha256},
         packages: {name: version}  (every pinned pip/conda package, for diff)}
  code: {commit, branch, dirty: bool | null (null: git failed, `error` says why), diff_sha256 | null,
         diff_file ("code.diff") | null, remote (credentials stripped) | null, changed_files: [str]}
  data: [{path, sha256, bytes, files}];  dvc: {path: md5} | null
  host: {os, kernel, machine, cpu, cpus, memory_bytes, docker_version,
         gpus: [{index, name, driver, memory, uuid, compute_capability, cuda (newest the driver ships with)}]}
  cuda: {lock: envbuild.lock's cuda facts, torch: {torch, cuda, cudnn, arch_list} as torch saw them | null}
  env: {NAME: value}  (container environment; secret-looking names redacted as "***")
  params: {name: value};  metrics: {name: number}
  outputs: [{path, sha256, bytes}]
  network: str;  gpus: str | null
  reproduces: run id | null  (set by `envbuild reproduce`)
  tags: {"mlflow.source.git.commit": ..., "mlflow.docker.image.id": ..., "mlflow.docker.image.uri": ...,
         "mlflow.source.name": ...}
  placement: {backend ("local" | "slurm" | "k8s" | "ssh"), target (the name given to --on), host (engine host, the
         first node, the pod's node), cluster (Slurm ClusterName, kube context) | null, job_id (container
         name, Slurm job id, Job name) | null,
         nodes: [str], gpus: [str] (as seen on the node: nvidia-smi -L lines), state (the scheduler's last
         word, e.g. COMPLETED) | null, detached: bool (submitted with --detach; `envbuild runs` finishes it),
         Slurm also: runtime ("oci" | "pyxis" | "apptainer"), bundle (the OCI bundle dir) | null;
         ssh also: engine_id (the remote engine's ID from `docker info`), shipped: {files, bytes (sent
         this run, content-addressed), reused (already on the remote side), image_sent (docker save ->
         load happened), layers_skipped (layers left out: the remote engine had them), image_bytes
         (of the image tar sent)}; there, the record's host section is the remote host's (docker info, nvidia-smi)}
         (optional: records before targets have none, and mean local)
  tracking: {mlflow: {uri, run_id}}  (optional; only when MLflow logging is configured)
  manifests: {data: {path: sha256}, outputs: {path: sha256}}  (manifest.py: per-file lists, stored as
         manifests/<sha256>.json in the run dir)
  integrity: {seq, prev, files: {name: sha256}, digest, keyid?, signature?}  (chain.py: the record's seal, set by
             its last write; keyid and signature only when the user has a key: envbuild keys generate)
  withheld: {files: [{path, sha256, bytes, reason}], masked: {place: count}}  (secrets.py: files not
         copied into code.diff by their name, values masked in logs, command, params, code.diff)
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional, TypedDict, TypeVar, Union

from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_json

SCHEMA_VERSION = 2
RECORD_FILE = "record.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
DIFF_FILE = "code.diff"
LOCK_DIR = "lock"
METRICS_FILE = "metrics.jsonl"  # names shared with runtime/site/envbuild/track.py
PARAMS_FILE = "params.jsonl"
SETTINGS_FILE = "determinism.jsonl"  # written by runtime/site/envbuild_hook.py
CUDA_FILE = "cuda.json"  # what torch saw inside the container, also written by the hook
METRICS_JSON = "metrics.json"
STATUSES = ("running", "succeeded", "failed", "interrupted", "cancelled")
KIND_RUN, KIND_SHELL = "run", "shell"


class Project(TypedDict):
    name: str
    root: str


class Determinism(TypedDict):
    enabled: bool
    env: dict[str, str]
    settings: list[str]


class Image(TypedDict, total=False):
    ref: Optional[str]
    id: Optional[str]
    digest: Optional[str]
    repo_digest: Optional[str]
    base: Optional[str]
    base_digest: Optional[str]
    lock_hash: Optional[str]
    provenance: Optional[str]
    dev_hash: Optional[str]
    extends: Optional[dict[str, Any]]


class Lock(TypedDict):
    envbuild_lock_sha256: Optional[str]
    lock_hash: Optional[str]
    inputs_hash: Optional[str]
    lockfiles: dict[str, str]
    packages: dict[str, str]


class Code(TypedDict, total=False):
    commit: Optional[str]
    branch: Optional[str]
    dirty: Optional[bool]
    diff_sha256: Optional[str]
    diff_file: Optional[str]
    remote: Optional[str]
    changed_files: list[str]
    error: str


class Host(TypedDict):
    os: str
    kernel: str
    machine: str
    cpu: Optional[str]
    cpus: Optional[int]
    memory_bytes: Optional[int]
    docker_version: Optional[str]
    gpus: list[dict[str, Any]]


class Manifests(TypedDict):
    data: dict[str, str]
    outputs: dict[str, str]


class Withheld(TypedDict):
    files: list[dict[str, Any]]
    masked: dict[str, int]


# section name -> its TypedDict: what tests hold the JSON schema to
SECTIONS: dict[str, type] = {"project": Project, "determinism": Determinism, "image": Image, "lock": Lock,
                             "code": Code, "host": Host, "manifests": Manifests, "withheld": Withheld}


def empty_code() -> Code:
    """The code section when nothing is known (no git, or before the run starts)."""
    return {"commit": None, "branch": None, "dirty": False, "diff_sha256": None, "diff_file": None,
            "remote": None, "changed_files": []}


def new(run_id: str, *, kind: str, command: list[str], project: Project, seed: int, deterministic: bool,
        image_ref: Optional[str], network: str, gpus: Optional[str], started: datetime) -> dict[str, Any]:
    """A record as it is first written, status "running": every section present, nothing known yet."""
    return {
        "schema_version": SCHEMA_VERSION, "id": run_id, "kind": kind, "status": "running", "exit_code": None,
        "reason": None, "started_at": iso(started), "ended_at": None, "duration_s": None,
        "command": list(command), "project": project, "seed": seed,
        "determinism": Determinism(enabled=deterministic, env={}, settings=[]),
        "image": Image(ref=image_ref, id=None, repo_digest=None, base=None, base_digest=None, lock_hash=None),
        "lock": Lock(envbuild_lock_sha256=None, lock_hash=None, inputs_hash=None, lockfiles={}, packages={}),
        "code": empty_code(), "data": [], "dvc": None,
        "host": Host(os="", kernel="", machine="", cpu=None, cpus=None, memory_bytes=None, docker_version=None,
                     gpus=[]),
        "env": {}, "params": {}, "metrics": {}, "outputs": [], "network": network, "gpus": gpus,
        "reproduces": None, "tags": {}, "withheld": Withheld(files=[], masked={}),
        "manifests": Manifests(data={}, outputs={}),
    }


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any schema_version in the current shape (in memory only). 1 -> 2: `kind` came in;
    a record from before it is a run."""
    if isinstance(record, dict) and record.get("schema_version") == 1:
        record = {**record, "schema_version": SCHEMA_VERSION, "kind": record.get("kind") or KIND_RUN}
    return record


def mark_reproduction(record: dict[str, Any], original_id: str, root: Path) -> None:
    """Set, in place, what `envbuild reproduce` says of its new run: which run it reproduces, and the
    project it belongs to (its worktree is gone)."""
    record["reproduces"] = original_id
    record.setdefault("project", {})["root"] = str(root)


def kind(record: Union[dict[str, Any], "Record"]) -> str:
    """The record's kind; records written before kinds existed are runs."""
    return record.kind if isinstance(record, Record) else record.get("kind") or KIND_RUN


# --- reading: the facts by name, so the string keys live here only ------------------------------
# Each view is frozen and built from a section that may be missing or partial (old records, a run
# still going): an absent fact is None, an absent list or map is empty. Field names are the keys.

class _View:
    """Facts by name from one section of a record, read-only. The annotations are the fields (and the
    keys); a list, dict or tuple field reads as empty when absent, any other as None. Plain classes,
    not dataclasses: they are made at import, and `envbuild run` imports this module."""

    _fields: tuple[tuple[str, Any], ...] = ()  # (name, maker of its empty value | None)
    _items: dict[str, type] = {}  # field -> the view of each of its entries

    def __init_subclass__(cls) -> None:
        empty = {"list": list, "dict": dict, "tuple": tuple}  # annotations are strings (__future__)
        own = cls.__dict__.get("__annotations__", {})
        cls._fields = tuple((name, empty.get(str(t).split("[")[0])) for name, t in own.items())

    def __init__(self, section: Any = None) -> None:
        section = section if isinstance(section, Mapping) else {}
        for name, empty in self._fields:
            value = section.get(name)
            if name in self._items:
                value = _views(self._items[name], value)
            object.__setattr__(self, name, empty() if value is None and empty else value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(name for name, _ in cls._fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


_V = TypeVar("_V", bound=_View)


def _views(cls: type[_V], entries: Any) -> tuple[_V, ...]:
    return tuple(cls(e) for e in entries or [])


class ImageFacts(_View):
    ref: Optional[str]
    id: Optional[str]  # docker inspect .Id (local)
    digest: Optional[str]  # manifest digest, as envbuild wrote it
    repo_digest: Optional[str]  # "repo@sha256:..." once pushed
    base: Optional[str]
    base_digest: Optional[str]
    lock_hash: Optional[str]
    provenance: Optional[str]
    dev_hash: Optional[str]


class LockFacts(_View):
    envbuild_lock_sha256: Optional[str]
    lock_hash: Optional[str]
    inputs_hash: Optional[str]
    lockfiles: dict[str, str]  # name -> sha256
    packages: dict[str, str]  # name -> version


class CodeFacts(_View):
    commit: Optional[str]
    branch: Optional[str]
    dirty: Optional[bool]  # None: git failed (error says why)
    diff_sha256: Optional[str]
    diff_file: Optional[str]
    remote: Optional[str]
    changed_files: list[str]
    error: Optional[str]


class DataFacts(_View):
    path: Optional[str]
    sha256: Optional[str]
    bytes: Optional[int]
    files: Optional[int]


class OutputFacts(_View):
    path: Optional[str]
    sha256: Optional[str]
    bytes: Optional[int]


class Gpu(_View):
    index: Any
    name: Optional[str]
    driver: Optional[str]
    memory: Optional[str]
    uuid: Optional[str]
    compute_capability: Optional[str]
    cuda: Optional[str]


HOST_FACTS = ("os", "kernel", "machine", "cpu", "cpus", "memory_bytes", "docker_version")  # the host less its GPUs


class HostFacts(_View):
    os: Optional[str]
    kernel: Optional[str]
    machine: Optional[str]
    cpu: Optional[str]
    cpus: Optional[int]
    memory_bytes: Optional[int]
    docker_version: Optional[str]
    gpus: tuple[Gpu, ...]
    _items = {"gpus": Gpu}

    @property
    def facts(self) -> dict[str, Any]:
        """The host without its GPUs, by HOST_FACTS name (what `diff` compares as hardware)."""
        return {k: getattr(self, k) for k in HOST_FACTS}


class TorchFacts(_View):
    torch: Optional[str]
    cuda: Optional[str]
    cudnn: Optional[str]
    arch_list: Any


class DeterminismFacts(_View):
    enabled: Optional[bool]
    env: dict[str, str]
    settings: list[str]


class PlacementFacts(_View):
    backend: Optional[str]
    target: Optional[str]
    host: Optional[str]
    cluster: Optional[str]
    job_id: Optional[str]
    nodes: list[str]
    gpus: list[str]
    state: Optional[str]
    detached: Optional[bool]
    runtime: Optional[str]
    bundle: Optional[str]


class Record:
    """A read-only view of a record (any schema_version, upgraded): `Record.from_dict(d).image.id`.
    `raw` is the dict itself, for writers and for `--json`."""

    def __init__(self, raw: dict[str, Any]) -> None:
        object.__setattr__(self, "raw", raw)

    @classmethod
    def from_dict(cls, record: Union[dict[str, Any], "Record"]) -> "Record":
        return record if isinstance(record, Record) else cls(upgrade(record) if isinstance(record, dict) else {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Record is read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]

    def _get(self, key: str) -> Any:
        return self.raw.get(key)

    # the run
    id = property(lambda self: self._get("id"))
    kind = property(lambda self: self._get("kind") or KIND_RUN)
    status = property(lambda self: self._get("status"))
    exit_code = property(lambda self: self._get("exit_code"))
    reason = property(lambda self: self._get("reason"))
    started_at = property(lambda self: self._get("started_at"))
    ended_at = property(lambda self: self._get("ended_at"))
    duration_s = property(lambda self: self._get("duration_s"))
    command = property(lambda self: list(self._get("command") or []))
    seed = property(lambda self: self._get("seed"))
    network = property(lambda self: self._get("network"))
    gpus = property(lambda self: self._get("gpus"))  # the --gpus request, not the host's GPUs
    reproduces = property(lambda self: self._get("reproduces"))
    env = property(lambda self: dict(self._get("env") or {}))
    params = property(lambda self: dict(self._get("params") or {}))
    metrics = property(lambda self: dict(self._get("metrics") or {}))
    dvc = property(lambda self: dict(self._get("dvc") or {}))
    project_root = property(lambda self: (self._get("project") or {}).get("root"))

    # the ingredients and results, as views
    image = cached_property(lambda self: ImageFacts(self._get("image")))
    lock = cached_property(lambda self: LockFacts(self._get("lock")))
    code = cached_property(lambda self: CodeFacts(self._get("code")))
    host = cached_property(lambda self: HostFacts(self._get("host")))
    determinism = cached_property(lambda self: DeterminismFacts(self._get("determinism")))
    data = cached_property(lambda self: _views(DataFacts, self._get("data")))
    outputs = cached_property(lambda self: _views(OutputFacts, self._get("outputs")))
    torch = cached_property(lambda self: TorchFacts((self._get("cuda") or {}).get("torch")))

    @cached_property
    def placement(self) -> Optional[PlacementFacts]:
        """Where it ran; None for records from before targets (they ran locally)."""
        return PlacementFacts(self._get("placement")) if self._get("placement") else None

    @property
    def lock_hash(self) -> Optional[str]:
        """The lock the environment came from: the lock section's, else the image label's (older records)."""
        return self.lock.lock_hash or self.image.lock_hash

    @property
    def output_sha256s(self) -> dict[Optional[str], Optional[str]]:
        return {o.path: o.sha256 for o in self.outputs}

    def data_manifest(self, path: Optional[str]) -> Optional[str]:
        """The sha256 naming the per-file manifest of this data path (manifest.py), if one was kept."""
        return ((self._get("manifests") or {}).get("data") or {}).get(path)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_run_id(t: datetime | None = None) -> str:
    """`20261128T063000Z-1a2b3c`: sorts by start time, random suffix against same-second clashes."""
    t = t or now_utc()
    return f"{t.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema a record must satisfy (shipped in envbuild/schemas/)."""
    return json.loads((Path(__file__).parent / "schemas" / "run-record.schema.json").read_text())


def validate(record: dict[str, Any]) -> None:
    """Raise EnvbuildError naming the first field that breaks the schema."""
    import jsonschema

    try:
        jsonschema.validate(record, schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise EnvbuildError(f"run record {record.get('id', '?')}: {where}: {e.message}") from None


def finite(value: Any) -> Any:
    # JSON has no NaN/Infinity: keep them as null so every reader can parse the record
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write record.json atomically; readers see the old or the new record, never half of one."""
    path = Path(run_dir) / RECORD_FILE
    atomic_write_json(path, finite(record))
    return path


def read_record(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise EnvbuildError(f"{path}: no run record here") from None
    except ValueError as e:
        raise EnvbuildError(f"{path}: not a valid run record ({e})") from None
    record = upgrade(record)
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        raise EnvbuildError(f"{path}: schema_version {record.get('schema_version') if isinstance(record, dict) else '?'} "
                            f"is not one this envbuild reads (1 to {SCHEMA_VERSION}); upgrade envbuild")
    return record


# --- what the run itself wrote into its directory (envbuild.track, the seeding hook) -----------


def _json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed process
        if isinstance(entry, dict):
            out.append(entry)
    return out


def metric_history(run_dir: Path) -> list[dict[str, Any]]:
    """Every `log_metrics` call, in order: [{"metrics": {...}, "step": int|None, "time": float}]."""
    return [e for e in _json_lines(Path(run_dir) / METRICS_FILE) if isinstance(e.get("metrics"), dict)]


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None


def collect_metrics(run_dir: Path, metrics_json: list[Path] = ()) -> dict[str, Any]:
    """The last value of each metric from envbuild.track, then any metrics.json files on top."""
    metrics: dict[str, Any] = {}
    for entry in metric_history(run_dir):
        metrics.update({k: v for k, v in entry["metrics"].items() if _is_number(v)})
    for path in [Path(run_dir) / METRICS_JSON, *metrics_json]:
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            if isinstance(data, dict):
                metrics.update({str(k): v for k, v in data.items() if _is_number(v)})
    return finite(metrics)


def collect_params(run_dir: Path) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for entry in _json_lines(Path(run_dir) / PARAMS_FILE):
        if isinstance(entry.get("params"), dict):
            params.update(entry["params"])
    return params


def collect_settings(run_dir: Path) -> list[str]:
    """What the in-image hook applied, in order, each setting once (workers repeat them)."""
    seen: dict[str, None] = {}
    for entry in _json_lines(Path(run_dir) / SETTINGS_FILE):
        for s in entry.get("settings", []):
            seen.setdefault(str(s), None)
    return list(seen)


def mlflow_tags(record: dict[str, Any]) -> dict[str, str]:
    """MLflow's standard tag names, filled from the record (DESIGN section 8)."""
    image, code = record.get("image") or {}, record.get("code") or {}
    command = record.get("command") or []
    source = next((c for c in command if c.endswith(".py")), " ".join(command))
    tags = {
        "mlflow.source.name": source,
        "mlflow.source.type": "PROJECT",
        "mlflow.source.git.commit": code.get("commit"),
        "mlflow.source.git.branch": code.get("branch"),
        "mlflow.source.git.repoURL": code.get("remote"),
        "mlflow.docker.image.id": image.get("id"),
        "mlflow.docker.image.uri": image.get("repo_digest") or image.get("ref"),
        "mlflow.runName": record.get("id"),
        "envbuild.run_id": record.get("id"),
        "envbuild.lock_hash": image.get("lock_hash"),
        "envbuild.seed": str(record.get("seed")),
        "envbuild.dirty": "unknown" if code.get("dirty") is None else str(bool(code["dirty"])).lower(),
    }
    return {k: str(v) for k, v in tags.items() if v not in (None, "")}


def example(**over: Any) -> dict[str, Any]:
    """A complete, valid finished record (the shape above, made-up values), with `over` laid on top:
    for tests, benchmarks and documentation."""
    H = "a" * 64
    r = {
        "schema_version": SCHEMA_VERSION, "id": "20261128T063000Z-1a2b3c", "kind": KIND_RUN, "status": "succeeded",
        "exit_code": 0,
        "reason": None, "started_at": "2026-11-28T06:30:00.000001Z", "ended_at": "2026-11-28T06:30:05.000001Z",
        "duration_s": 5.0, "command": ["python", "train.py"], "project": {"name": "p", "root": "/p"}, "seed": 1,
        "determinism": {"enabled": True, "env": {"PYTHONHASHSEED": "1"}, "settings": ["random.seed(1)"]},
        "image": {"ref": "envbuild/p:abc", "id": f"sha256:{H}", "repo_digest": f"r/p@sha256:{H}",
                  "base": "b:1", "base_digest": f"sha256:{H}", "lock_hash": H},
        "lock": {"envbuild_lock_sha256": H, "lock_hash": H, "inputs_hash": H, "lockfiles": {"requirements.lock": H},
                 "packages": {"six": "1.16.0"}},
        "code": {"commit": "b" * 40, "branch": "main", "dirty": False, "diff_sha256": None, "diff_file": None,
                 "remote": None, "changed_files": []},
        "data": [{"path": "data/", "sha256": H, "bytes": 3, "files": 1}], "dvc": None,
        "host": {"os": "Debian", "kernel": "6", "machine": "x86_64", "cpu": "x", "cpus": 2, "memory_bytes": 1,
                 "docker_version": "20.10", "gpus": []},
        "env": {"API_TOKEN": "***"}, "params": {"lr": 0.1}, "metrics": {"loss": 0.5},
        "outputs": [{"path": "outputs/m", "sha256": H, "bytes": 1}], "network": "none", "gpus": None,
        "reproduces": None, "tags": {"mlflow.source.name": "train.py"},
    }
    r.update(over)
    return r
