"""registry.py: reference parsing, and tag -> digest against the real loopback registry."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from envbuild import registry
from envbuild.errors import RegistryError
from envbuild.registry import ACCEPT_ANY, DOCKER_HUB, Reference, manifest_digest, parse_reference, resolve

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("ref, expected", [
    ("python:3.11-slim", Reference(DOCKER_HUB, "library/python", "3.11-slim", None)),
    ("python", Reference(DOCKER_HUB, "library/python", "latest", None)),
    ("pytorch/pytorch:2.3.0", Reference(DOCKER_HUB, "pytorch/pytorch", "2.3.0", None)),
    ("127.0.0.1:5000/envbuild/base:bookworm", Reference("127.0.0.1:5000", "envbuild/base", "bookworm", None)),
    ("localhost/base", Reference("localhost", "base", "latest", None)),
    ("ghcr.io/org/img@" + D, Reference("ghcr.io", "org/img", None, D)),
    ("registry.local:5000/a/b:t@" + D, Reference("registry.local:5000", "a/b", "t", D)),
    ("python@" + D, Reference(DOCKER_HUB, "library/python", None, D)),
])
def test_parse_reference(ref: str, expected: Reference) -> None:
    assert parse_reference(ref) == expected


def test_reference_spellings() -> None:
    r = parse_reference("python:3.11-slim")
    assert r.name == "python" and str(r) == "python:3.11-slim" and r.pinned(D) == f"python@{D}"
    r = parse_reference("127.0.0.1:5000/envbuild/base:bookworm")
    assert r.pinned(D) == f"127.0.0.1:5000/envbuild/base@{D}"
    assert str(parse_reference(f"ghcr.io/o/i:t@{D}")) == f"ghcr.io/o/i:t@{D}"


@pytest.mark.docker
def test_digest_is_the_registry_header_and_the_manifest_hash(base_image: str) -> None:
    r = parse_reference(base_image)
    req = urllib.request.Request(f"http://{r.registry}/v2/{r.repository}/manifests/{r.tag}",
                                 headers={"Accept": ACCEPT_ANY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        header, body = resp.headers["Docker-Content-Digest"], resp.read()
    digest = manifest_digest(base_image)
    assert digest == header
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()  # content-addressed


@pytest.mark.docker
def test_resolve_single_platform_image(base_image: str) -> None:
    resolved = resolve(base_image)
    assert resolved.digest == manifest_digest(base_image)
    assert resolved.platforms == {"linux/amd64": resolved.digest}
    assert resolved.pinned == f"{parse_reference(base_image).name}@{resolved.digest}"
    with pytest.raises(RegistryError, match="is a linux/amd64 image"):
        resolve(base_image, platforms=("linux/arm64",))
    # one platform of two missing is refused too, naming it (it used to lock silently)
    with pytest.raises(RegistryError, match="has no image for linux/arm64"):
        resolve(base_image, platforms=("linux/amd64", "linux/arm64"))


@pytest.mark.docker
def test_unknown_tag_or_repository_is_none(base_image: str) -> None:
    name = parse_reference(base_image).name
    assert manifest_digest(f"{name}:no-such-tag-{id(name)}") is None
    assert manifest_digest(f"{parse_reference(base_image).registry}/envbuild/no-such-repo:x") is None
    with pytest.raises(RegistryError, match="no such image or tag"):
        resolve(f"{name}:no-such-tag")


def test_unreachable_registry_is_a_clear_error() -> None:
    with pytest.raises(RegistryError) as e:
        manifest_digest("127.0.0.1:9/envbuild/base:bookworm")
    assert "registry 127.0.0.1:9 unreachable" in str(e.value) and "make docker-up" in str(e.value)
    assert e.value.exit_code == 2
    with pytest.raises(RegistryError, match="unreachable"):
        registry.ping("127.0.0.1:9")


@pytest.fixture
def token_registry() -> Iterator[str]:
    """A loopback stand-in for a public registry: 401 + Bearer challenge, token endpoint, 500 on /broken."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            host = f"127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/token?"):
                assert "scope=repository%3Aorg%2Fimg%3Apull" in self.path
                body = json.dumps({"token": "tok"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path.startswith("/v2/broken/"):
                self.send_response(500)
                self.end_headers()
            elif self.headers.get("Authorization") != "Bearer tok":
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="fake",'
                                                     'scope="repository:org/img:pull"')
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Docker-Content-Digest", D)
                self.end_headers()

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


def test_bearer_token_challenge(token_registry: str) -> None:
    assert manifest_digest(f"{token_registry}/org/img:1") == D
    registry.ping(token_registry)  # 401 still means a registry is there
    with pytest.raises(RegistryError, match="answered HTTP 500"):
        manifest_digest(f"{token_registry}/broken/img:1")
