"""The run record: schema, atomic write, read. (Contract below; implementation in the run issue.)

One JSON document per run at `<project>/.envbuild/runs/<id>/record.json`, written atomically
(fsutil.atomic_write_json) when the run starts (status "running") and again when it ends.
Beside it in the run dir: `stdout.log`, `stderr.log`, `code.diff` (uncommitted diff, when dirty),
`metrics.jsonl` (envbuild.track), copies of the lockfiles (`lock/envbuild.lock`,
`lock/requirements.lock`, `lock/conda-lock.yml`) so a run can be rebuilt and diffed later.

Fields (schema_version 1; JSON Schema in envbuild/schemas/run-record.schema.json):
  schema_version: 1
  id: "20261128T063000Z-1a2b3c" (sortable by time)
  status: "running" | "succeeded" | "failed" | "interrupted"
  exit_code: int | null;  reason: str | null (why it failed, when not the script's exit code)
  started_at, ended_at: ISO 8601 UTC;  duration_s: float | null
  command: [str, ...]  (argv run inside the container, e.g. ["python", "train.py", "--lr", "0.1"])
  project: {name, root}
  seed: int
  determinism: {enabled: bool, env: {PYTHONHASHSEED, CUBLAS_WORKSPACE_CONFIG, NVIDIA_TF32_OVERRIDE, ...},
                settings: [str, ...] (what the in-process hook applied)}
  image: {ref, id (docker inspect .Id, local), repo_digest ("repo@sha256:...", registry, or null),
          base, base_digest, lock_hash}
  lock: {envbuild_lock_sha256, lock_hash, inputs_hash, lockfiles: {name: sha256},
         packages: {name: version}  (every pinned pip/conda package, for diff)}
  code: {commit, branch, dirty: bool, diff_sha256 | null, diff_file ("code.diff") | null,
         remote (credentials stripped) | null, changed_files: [str]}
  data: [{path, sha256, bytes, files}];  dvc: {path: md5} | null
  host: {os, kernel, machine, cpu, cpus, memory_bytes, docker_version, gpus: [{name, driver, cuda}]}
  env: {NAME: value}  (container environment; secret-looking names redacted as "***")
  params: {name: value};  metrics: {name: number}
  outputs: [{path, sha256, bytes}]
  network: str;  gpus: str | null
  reproduces: run id | null  (set by `envbuild reproduce`)
  tags: {"mlflow.source.git.commit": ..., "mlflow.docker.image.id": ..., "mlflow.docker.image.uri": ...,
         "mlflow.source.name": ...}
"""
