"""registry.resolve against a fake registry that demands a bearer token (as public registries do)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from envbuild.errors import RegistryError
from envbuild.registry import RegistryUnreachable, manifest_digest, resolve

AMD, ARM = "sha256:" + "a" * 64, "sha256:" + "b" * 64
INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"digest": AMD, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": ARM, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:" + "c" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
]}).encode()
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()


@pytest.fixture
def fake_registry() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _manifest(self, body: bool) -> None:
            if self.path.startswith("/token"):
                data = json.dumps({"token": "t0k"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if self.headers.get("Authorization") != "Bearer t0k":
                realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="fake",scope="repository:x:pull"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path != "/v2/library/img/manifests/v1":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            self.send_header("Docker-Content-Digest", INDEX_DIGEST)
            self.send_header("Content-Length", str(len(INDEX)))
            self.end_headers()
            if body:
                self.wfile.write(INDEX)

        def do_GET(self) -> None:
            self._manifest(True)

        def do_HEAD(self) -> None:
            self._manifest(False)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_bearer_challenge_index_and_platform_digests(fake_registry: str) -> None:
    img = resolve(f"{fake_registry}/library/img:v1", ("linux/amd64", "linux/arm64"))
    assert img.digest == INDEX_DIGEST and img.source == "registry"
    assert img.platforms == {"linux/amd64": AMD, "linux/arm64": ARM}  # arm64 is served as arm64/v8
    assert manifest_digest(f"{fake_registry}/library/img:v1") == INDEX_DIGEST


def test_missing_platform_and_tag(fake_registry: str) -> None:
    with pytest.raises(RegistryError, match="no image for linux/s390x"):
        resolve(f"{fake_registry}/library/img:v1", ("linux/s390x",))
    assert manifest_digest(f"{fake_registry}/library/img:v2") is None


def test_unreachable_registry() -> None:
    with pytest.raises(RegistryUnreachable, match="unreachable"):
        resolve("127.0.0.1:9/x/y:z")
