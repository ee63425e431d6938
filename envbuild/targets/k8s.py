"""The Kubernetes target: a batch/v1 Job running the image by registry digest, submitted, watched and
logged through the `kubernetes` client (`pip install 'envbuild[k8s]'`).

The cluster pulls the image, so it must be pushed first (`envbuild push`: the record's repo_digest).
The project's code and data come from a PersistentVolumeClaim the target names (`volume`, mounted at
/workspace), or from the image itself (`envbuild build --bake-code`); outputs stay on that volume.
Secret-named variables go into a Secret made beside the Job and are referenced by name, so the
manifest (and `--dry-run`) never holds their values. GPUs: `gpus = N` sets the `gpu-resource` limit
(default nvidia.com/gpu); `queue` adds Kueue's queue label and creates the Job suspended for Kueue.
"""

from __future__ import annotations

import json
import re
import time
from typing import IO, Any

from envbuild import record as rec
from envbuild.errors import EnvbuildError
from envbuild.secrets import is_secret_name
from envbuild.targets import CONTAINER_RUN_DIR, WORKDIR, Job, Outcome, Stopper, Target, write_all

POLL_S = 0.2
GPU_RESOURCE = "nvidia.com/gpu"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def k8s_name(job: Job) -> str:
    """A DNS-1123 name (63 characters at most) that keeps the run id."""
    project = re.sub(r"[^a-z0-9-]+", "-", job.spec.name.lower()).strip("-")[:20] or "run"
    return f"envbuild-{project}-{job.run_id.lower()}"[:63].rstrip("-")


def manifest(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    """The batch/v1 Job (as the API takes it: camelCase JSON)."""
    if not job.repo_digest:
        raise EnvbuildError(f"the k8s target pulls the image by digest: push it first (envbuild push "
                            f"REGISTRY/REPO, or set image = \"REGISTRY/REPO\" in the spec) so {job.image} has one")
    name = k8s_name(job)
    env = []
    for k, v in sorted(job.env.items()):
        if is_secret_name(k):  # the value lives in the Secret only
            env.append({"name": k, "valueFrom": {"secretKeyRef": {"name": f"{name}-env", "key": k}}})
        else:
            env.append({"name": k, "value": v})
    container: dict[str, Any] = {"name": "run", "image": job.repo_digest, "command": list(job.command),
                                 "workingDir": WORKDIR, "env": env,
                                 "volumeMounts": [{"name": "envbuild-run", "mountPath": CONTAINER_RUN_DIR}]}
    volumes: list[dict[str, Any]] = [{"name": "envbuild-run", "emptyDir": {}}]
    if settings.get("volume"):
        mount = {"name": "project", "mountPath": WORKDIR, **({"subPath": settings["subpath"]} if "subpath" in settings else {})}
        container["volumeMounts"].insert(0, mount)
        volumes.insert(0, {"name": "project", "persistentVolumeClaim": {"claimName": settings["volume"]}})
    limits = {}
    if job.gpus:
        if not job.gpus.isdigit():
            raise EnvbuildError(f"gpus = {job.gpus!r} on a k8s target: give a count (gpus = 1, or --gpus 1)")
        limits[settings.get("gpu-resource", GPU_RESOURCE)] = job.gpus
    for key in ("cpu", "memory"):
        if key in settings:
            limits[key] = str(settings[key])
    if limits:
        container["resources"] = {"limits": limits}
    labels = {"app.kubernetes.io/managed-by": "envbuild", "dev.envbuild.run": job.run_id.lower()}
    if settings.get("queue"):
        labels[QUEUE_LABEL] = settings["queue"]
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    if settings.get("service-account"):
        pod["serviceAccountName"] = settings["service-account"]
    if job.network == "host":
        pod["hostNetwork"] = True
    spec: dict[str, Any] = {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": pod}}
    if settings.get("queue"):
        spec["suspend"] = True  # Kueue admits it
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": settings.get("namespace", "default"), "labels": labels},
            "spec": spec}


def validated(body: dict[str, Any]) -> Any:
    """The Job as the client's model (V1Job); EnvbuildError naming what the model refused or dropped."""
    from kubernetes import client

    try:
        model = client.V1Job.from_dict(body)
    except Exception as e:  # pydantic's ValidationError
        raise EnvbuildError(f"the Job manifest is not valid for the kubernetes client: {e}") from None
    if client.ApiClient().sanitize_for_serialization(model) != body:  # a field the model dropped
        raise EnvbuildError("the Job manifest has fields the kubernetes client does not know")
    return model


def outcome_of(job_obj: Any, pod: Any) -> Outcome | None:
    """How the Job ended (its conditions; the container's exit code), or None while it runs."""
    conditions = {c.type: c for c in (job_obj.status.conditions or [])} if job_obj.status else {}
    code = None
    if pod is not None and pod.status and pod.status.container_statuses:
        terminated = pod.status.container_statuses[0].state.terminated
        code = terminated.exit_code if terminated else None
    if "Complete" in conditions and conditions["Complete"].status == "True":
        return Outcome("succeeded", 0 if code is None else code)
    if "Failed" in conditions and conditions["Failed"].status == "True":
        c = conditions["Failed"]
        reason = None if code not in (None, 0) else f"the Job failed ({c.reason}: {c.message})"
        return Outcome("failed", code, reason)
    return None


class K8sTarget(Target):
    backend = "k8s"
    can_detach = True

    def _api(self) -> Any:
        try:
            from kubernetes import config
        except ImportError:
            raise EnvbuildError("the k8s target needs the kubernetes client: pip install 'envbuild[k8s]'") from None
        try:
            return config.new_client_from_config(config_file=self.settings.get("kubeconfig"),
                                                 context=self.settings.get("context"))
        except Exception as e:
            raise EnvbuildError(f"kubeconfig: {e}; set KUBECONFIG or kubeconfig/context in the target's table") from None

    @property
    def namespace(self) -> str:
        return self.settings.get("namespace", "default")

    def placement(self) -> dict[str, Any]:
        return {**super().placement(), "cluster": self.settings.get("context")}

    def doctor(self, spec: Any) -> list[Any]:
        from envbuild.checks import Check

        try:
            from kubernetes import client

            api = self._api()
            version = client.VersionApi(api).get_code()
        except Exception as e:  # no client, no kubeconfig, no answer: all say the same to the user
            return [Check("kubernetes API", False, True, str(e).splitlines()[0][:200],
                          "pip install 'envbuild[k8s]'; set KUBECONFIG (or kubeconfig/context in the target)")]
        checks = [Check("kubernetes API", True, True, f"{api.configuration.host} answers: {version.git_version}")]
        resource = self.settings.get("gpu-resource", GPU_RESOURCE)
        try:
            nodes = client.CoreV1Api(api).list_node().items
            gpus = sum(int((n.status.allocatable or {}).get(resource, 0)) for n in nodes)
            checks.append(Check(f"GPUs ({resource})", gpus > 0, False, f"{gpus} allocatable on {len(nodes)} node(s)",
                                "install the NVIDIA device plugin, or set gpu-resource"))
        except client.ApiException as e:
            checks.append(Check(f"GPUs ({resource})", False, False, f"cannot list nodes ({e.status} {e.reason})", ""))
        return checks

    def render(self, job: Job) -> str:
        body = manifest(job, self.settings)
        validated(body)
        return json.dumps(body, indent=2)

    def submit(self, job: Job) -> None:
        from kubernetes import client

        body = manifest(job, self.settings)
        validated(body)
        api = self._api()
        secrets = {k: v for k, v in job.env.items() if is_secret_name(k)}
        name = body["metadata"]["name"]
        try:
            if secrets:
                client.CoreV1Api(api).create_namespaced_secret(self.namespace, {
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": secrets,
                    "metadata": {"name": f"{name}-env", "labels": body["metadata"]["labels"]}})
            client.BatchV1Api(api).create_namespaced_job(self.namespace, body)
        except client.ApiException as e:
            raise EnvbuildError(f"Kubernetes refused the Job: {e.status} {e.reason}") from None
        job.placement.update(job_id=name, state="Created", detached=True,
                             cluster=self.settings.get("context") or api.configuration.host)

    def _pod(self, api: Any, name: str) -> Any:
        from kubernetes import client

        pods = client.CoreV1Api(api).list_namespaced_pod(self.namespace, label_selector=f"job-name={name}").items
        return pods[0] if pods else None

    def poll(self, placement: dict[str, Any]) -> Outcome | None:
        from kubernetes import client

        api = self._api()
        name = placement["job_id"]
        job_obj = client.BatchV1Api(api).read_namespaced_job_status(name, self.namespace)
        pod = self._pod(api, name)
        if pod is not None and pod.spec and pod.spec.node_name:
            placement.update(host=pod.spec.node_name, nodes=[pod.spec.node_name])
        outcome = outcome_of(job_obj, pod)
        placement["state"] = "Complete" if outcome and outcome.status == "succeeded" else \
            "Failed" if outcome else "Running"
        return outcome

    def kill(self, job: Job, signame: str) -> None:
        from kubernetes import client

        if job.placement.get("job_id"):
            client.BatchV1Api(self._api()).delete_namespaced_job(job.placement["job_id"], self.namespace,
                                                                 propagation_policy="Background")

    def run(self, job: Job, stopper: Stopper, out: IO[bytes], err: IO[bytes]) -> Outcome:
        from kubernetes import client

        self.submit(job)
        job.placement["detached"] = False
        stopper.started = True
        api = self._api()
        name = job.placement["job_id"]
        try:
            with open(job.run_dir / rec.STDOUT_LOG, "wb") as log:
                (job.run_dir / rec.STDERR_LOG).touch()  # the API gives one stream: stdout and stderr together
                streamed = False
                while True:
                    pod = self._pod(api, name)
                    phase = pod.status.phase if pod is not None and pod.status else None
                    if not streamed and phase in ("Running", "Succeeded", "Failed"):
                        resp = client.CoreV1Api(api).read_namespaced_pod_log(
                            pod.metadata.name, self.namespace, follow=True, _preload_content=False)
                        for chunk in resp.stream(4096):
                            write_all([log, out], chunk)
                        streamed = True
                    outcome = self.poll(job.placement)
                    if outcome is not None and (streamed or pod is None):
                        return outcome
                    time.sleep(POLL_S)
        finally:
            stopper.done.set()

