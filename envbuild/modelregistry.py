"""A run's output as a model version in MLflow's model registry, and back (extra `envbuild[mlflow]`).

`envbuild runs register RUN OUTPUT --name NAME` logs the output file into the run's MLflow run
(exported first when the run was not tracked yet: mlflow_export.export) and registers it as a new
version of NAME. The version carries the audit trail as tags, so it can be walked back without
the record at hand and checked against it when the record is there:

  envbuild.run_id, envbuild.project, envbuild.output_path, envbuild.output_sha256,
  envbuild.image_digest (registry digest, or "" when never pushed), envbuild.image_id,
  envbuild.base_digest, envbuild.lock_hash, envbuild.commit, envbuild.dirty,
  envbuild.data_manifest ({data path: manifest digest} as canonical JSON, manifest.py).

`envbuild trace models:/NAME/VERSION` reads those tags and finds the run by the output's sha256,
as `trace FILE` does (lineage.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError
from envbuild.fsutil import canonical_json, sha256_file

PREFIX = "models:/"
TAG = "envbuild."
# tag name -> how to read it from the record: what trace compares with the record it finds
CHECKED = ("image_id", "lock_hash", "commit", "data_manifest")


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise EnvbuildError("the model registry needs MLflow, which is not installed; "
                            "pip install 'envbuild[mlflow]'") from None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def tracking_uri(root: Path, given: str | None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the project's [tool.envbuild.tracking] mlflow."""
    from envbuild.mlflow_export import tracking_uri as from_root

    if given:
        return from_root(Path.cwd(), given)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from envbuild.spec import load_spec

    spec = load_spec(root)
    if not spec.tracking.get("mlflow"):
        raise EnvbuildError(f"{spec.root / 'pyproject.toml'}: [tool.envbuild.tracking] has no mlflow URI; add "
                            'mlflow = "sqlite:///mlflow.db" there, or pass --tracking-uri URI')
    return from_root(spec.root, spec.tracking["mlflow"])


def lineage_tags(record: dict[str, Any], output: dict[str, Any]) -> dict[str, str]:
    """The tags a registered version carries: everything trace needs to walk back to the run."""
    image, code = record.get("image") or {}, record.get("code") or {}
    lock = record.get("lock") or {}
    dirty = code.get("dirty")
    tags = {
        "run_id": record.get("id"), "project": (record.get("project") or {}).get("name"),
        "output_path": output["path"], "output_sha256": output["sha256"],
        "image_digest": image.get("repo_digest") or "", "image_id": image.get("id"),
        "base_digest": image.get("base_digest"), "lock_hash": lock.get("lock_hash") or image.get("lock_hash"),
        "commit": code.get("commit"), "dirty": "unknown" if dirty is None else str(bool(dirty)).lower(),
        "data_manifest": canonical_json((record.get("manifests") or {}).get("data") or {}),
    }
    return {TAG + k: "" if v is None else str(v) for k, v in tags.items()}


def _output(root: Path, record: dict[str, Any], output: str) -> tuple[dict[str, Any], Path]:
    """The recorded output entry for `output` (a project-relative or any path) and its file on disk."""
    path = Path(output)
    if path.is_absolute() or (Path.cwd() / path).exists():
        try:
            rel = (Path.cwd() / path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            rel = path.as_posix()
    else:
        rel = path.as_posix()
    outputs = record.get("outputs") or []
    entry = next((o for o in outputs if o.get("path") == rel), None)
    if entry is None:
        names = ", ".join(o.get("path", "?") for o in outputs[:5]) or "none"
        raise EnvbuildError(f"{output}: not an output of run {record['id']} (its outputs: {names}); "
                            "give one of them, as the record names it")
    file = Path(root) / rel
    if not file.is_file():
        raise EnvbuildError(f"{file}: the output is no longer on disk; register it where it is, or rerun "
                            f"envbuild reproduce {record['id']}")
    sha = sha256_file(file)
    if sha != entry["sha256"]:
        raise EnvbuildError(f"{file}: sha256 {sha} is not what run {record['id']} wrote ({entry['sha256']}); "
                            "the file changed since the run: register the output of the run that made it")
    return entry, file


def register(root: Path, uri: str, run_dir: Path, record: dict[str, Any], output: str, name: str) -> dict[str, Any]:
    """Register `output` of the run as a new version of model `name`; return what was registered."""
    from envbuild import mlflow_export

    if record.get("status") == "running":
        raise EnvbuildError(f"run {record['id']} is still running; register its output when it has finished")
    entry, file = _output(root, record, output)
    client = _client(uri)
    tracked = (record.get("tracking") or {}).get("mlflow") or {}
    run_id = tracked.get("run_id")
    try:
        if run_id:
            client.get_run(run_id)
    except Exception:  # tracked on another server (or deleted): export it here
        run_id = None
    if not run_id:
        run_id = mlflow_export.export(root, uri, run_dir, record)
    artifact_dir = Path(entry["path"]).parent.as_posix()
    client.log_artifact(run_id, str(file), artifact_path=None if artifact_dir == "." else artifact_dir)
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{entry['path']}"
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name, description=f"registered by envbuild from project "
                                                         f"{(record.get('project') or {}).get('name')}")
    tags = lineage_tags(record, entry)
    version = client.create_model_version(name, source, run_id=run_id, tags=tags,
                                          description=f"{entry['path']} of envbuild run {record['id']}")
    return {"name": name, "version": str(version.version), "model_uri": f"{PREFIX}{name}/{version.version}",
            "source": source, "mlflow_run_id": run_id, "tags": tags}


def parse(model_uri: str) -> tuple[str, str]:
    """`models:/NAME/VERSION` -> (NAME, VERSION); VERSION may be `latest`."""
    rest = model_uri[len(PREFIX):] if model_uri.startswith(PREFIX) else ""
    name, _, version = rest.rpartition("/")
    if not name or not (version.isdigit() or version == "latest"):
        raise EnvbuildError(f"{model_uri}: not a model version URI; write models:/NAME/VERSION, "
                            "e.g. models:/mnist/3 or models:/mnist/latest")
    return name, version


def lookup(uri: str, model_uri: str) -> dict[str, Any]:
    """The registered version: {name, version, source, run_id, tags (envbuild.* only, without the prefix)}."""
    name, version = parse(model_uri)
    client = _client(uri)
    try:
        if version == "latest":
            found = client.search_model_versions(f"name = '{name}'")
            if not found:
                raise LookupError
            mv = max(found, key=lambda v: int(v.version))
        else:
            mv = client.get_model_version(name, version)
    except Exception:
        raise EnvbuildError(f"{model_uri}: no such model version in the registry at {uri}; list them with "
                            f"mlflow's UI or register one with envbuild runs register") from None
    tags = {k[len(TAG):]: v for k, v in (mv.tags or {}).items() if k.startswith(TAG)}
    if not tags.get("output_sha256"):
        raise EnvbuildError(f"{model_uri}: has no envbuild.output_sha256 tag: it was not registered by "
                            "envbuild runs register, so it cannot be traced to a run")
    return {"name": name, "version": str(mv.version), "source": mv.source, "run_id": mv.run_id, "tags": tags}


def mismatches(tags: dict[str, str], record: dict[str, Any], output: dict[str, Any]) -> list[str]:
    """Tags of a registered version that the run's record contradicts (an edited tag or record)."""
    expected = {k[len(TAG):]: v for k, v in lineage_tags(record, output).items()}
    return [f"{k}: registered {tags.get(k)!r}, the run's record says {expected[k]!r}"
            for k in CHECKED if tags.get(k, "") != expected[k]]
