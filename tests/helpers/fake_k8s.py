"""A small fake Kubernetes API server on 127.0.0.1 for the k8s target's tests: enough of the API
(Job create/status/delete, Secret create, pod list, pod log with follow) for the real `kubernetes`
client to run its own request code. A Job "runs" in a thread: its pod is Pending, then Running while
its log lines come out, then Succeeded (exit 0) or Failed (exit 3 when its command holds --fail)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

NODE = "fake-node-1"


class FakeCluster:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}  # job name -> pod
        self.logs: dict[str, list[bytes]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        body = {**body, "status": {}}
        body["metadata"] = {**body["metadata"], "uid": "uid-" + name}
        container = body["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "<from secret>") for e in container.get("env", [])}
        pod_name = name + "-x7k2p"
        self.pods[name] = {"metadata": {"name": pod_name, "labels": {"job-name": name}},
                           "spec": {"nodeName": NODE, "containers": [{"name": "run", "image": container["image"]}]},
                           "status": {"phase": "Pending"}}
        self.logs[pod_name] = [f"seed {env.get('ENVBUILD_SEED')}\n".encode(),
                               f"command {' '.join(container['command'])}\n".encode(), b"step 1\n", b"step 2\n"]
        self.jobs[name] = body
        threading.Thread(target=self._run, args=(name, "--fail" in container["command"]), daemon=True).start()
        return body

    def _run(self, name: str, fail: bool) -> None:
        time.sleep(0.3)
        pod = self.pods[name]
        with self.lock:
            pod["status"] = {"phase": "Running", "containerStatuses": [self._status(pod, {"running": {}})]}
        time.sleep(0.6)  # the log's lines come out meanwhile
        if name not in self.jobs:
            return  # deleted
        code = 3 if fail else 0
        with self.lock:
            pod["status"] = {"phase": "Failed" if fail else "Succeeded",
                             "containerStatuses": [self._status(pod, {"terminated": {"exitCode": code}})]}
            cond = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"} if fail else \
                {"type": "Complete", "status": "True"}
            self.jobs[name]["status"] = {"conditions": [cond], ("failed" if fail else "succeeded"): 1}

    @staticmethod
    def _status(pod: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {"name": "run", "image": pod["spec"]["containers"][0]["image"], "imageID": "", "ready": "running" in state,
                "restartCount": 0, "state": state}


class Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def _not_found(self) -> None:
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def do_POST(self) -> None:
        c = self.cluster
        c.requests.append(f"POST {self.path}")
        if re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs", self.path):
            self._send(201, c.create_job(self._body()))
        elif re.fullmatch(r"/api/v1/namespaces/[^/]+/secrets", self.path):
            body = self._body()
            c.secrets[body["metadata"]["name"]] = body
            self._send(201, body)
        else:
            self._not_found()

    def do_DELETE(self) -> None:
        c = self.cluster
        c.requests.append(f"DELETE {self.path}")
        m = re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs/([^/?]+)(\?.*)?", self.path)
        if m and c.jobs.pop(m.group(1), None) is not None:
            self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        else:
            self._not_found()

    def do_GET(self) -> None:
        c = self.cluster
        c.requests.append(f"GET {self.path}")
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/version/":
            return self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake", "gitCommit": "",
                                    "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": ""})
        if url.path == "/api/v1/nodes":
            node = {"metadata": {"name": NODE}, "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": "2"}}}
            return self._send(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [node]})
        if m := re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs/([^/]+)(/status)?", url.path):
            with c.lock:
                job = c.jobs.get(m.group(1))
            return self._send(200, job) if job else self._not_found()
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods", url.path):
            name = query.get("labelSelector", [""])[0].removeprefix("job-name=")
            with c.lock:
                items = [json.loads(json.dumps(c.pods[name]))] if name in c.pods and name in c.jobs else []
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if m := re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/([^/]+)/log", url.path):
            lines = c.logs.get(m.group(1))
            if lines is None:
                return self._not_found()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for line in lines:  # followed: the lines come as the "container" writes them
                self.wfile.write(line)
                self.wfile.flush()
                time.sleep(0.1)
            return None
        self._not_found()


class FakeAPIServer:
    """`with FakeAPIServer(tmp) as api:` a server on a free loopback port and a kubeconfig for it."""

    def __init__(self, tmp: Path) -> None:
        self.cluster = FakeCluster()
        handler = type("BoundHandler", (Handler,), {"cluster": self.cluster})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "ml"}}]}))

    def __enter__(self) -> "FakeAPIServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
