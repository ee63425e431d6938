"""Image references and tag -> digest over the registry HTTP API (stdlib only).

`HEAD /v2/<name>/manifests/<ref>` answers `Docker-Content-Digest`; the Accept header decides
whether a multi-arch index or a single manifest comes back. Public registries answer 401
with a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge first.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from envbuild.errors import RegistryError

DOCKER_HUB = "registry-1.docker.io"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT_ANY = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
TIMEOUT = 10


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # path inside the registry, e.g. library/python
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The reference without tag or digest, as docker spells it."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    def pinned(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_reference(ref: str) -> Reference:
    rest, _, digest = ref.partition("@")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not tag and not digest:
        tag = "latest"
    return Reference(registry, path, tag, digest or None)


@dataclass
class ResolvedImage:
    reference: str  # what was asked, e.g. python:3.11-slim
    digest: str  # the digest the tag points to (an index digest for multi-arch images)
    platforms: dict[str, str] = field(default_factory=dict)  # "linux/amd64" -> manifest digest
    source: str = "registry"  # or "engine" when the registry could not be asked

    @property
    def pinned(self) -> str:
        return parse_reference(self.reference).pinned(self.digest)


def _scheme(registry: str) -> str:
    host = registry.split(":")[0]
    return "http" if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.") else "https"


def _request(url: str, method: str, accept: str, token: str | None) -> urllib.response.addinfourl:
    req = urllib.request.Request(url, method=method, headers={"Accept": accept})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return urllib.request.urlopen(req, timeout=TIMEOUT)


def _bearer_token(challenge: str) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        raise RegistryError(f"registry asked for authentication it did not describe: {challenge}")
    url = realm + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        body = json.load(r)
    return body.get("token") or body.get("access_token") or ""


class RegistryUnreachable(RegistryError):
    """The registry did not answer at all (as opposed to answering with an error)."""


def _open(ref: Reference, path: str, method: str, accept: str) -> tuple[dict[str, str], bytes]:
    """One registry request under /v2/<repository>/, answering a bearer challenge once."""
    url = f"{_scheme(ref.registry)}://{ref.registry}/v2/{ref.repository}/{path}"
    token = None
    for _ in range(2):
        try:
            with _request(url, method, accept, token) as r:
                return dict(r.headers.items()), r.read() if method == "GET" else b""
        except urllib.error.HTTPError as e:
            if e.code == 401 and token is None and "bearer" in e.headers.get("WWW-Authenticate", "").lower():
                token = _bearer_token(e.headers["WWW-Authenticate"])
                continue
            if e.code == 404:
                raise RegistryError(f"{ref}: no such image or tag in registry {ref.registry}", 2) from None
            raise RegistryError(f"{ref}: registry {ref.registry} answered HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise _unreachable(ref.registry, e) from None
    raise RegistryError(f"{ref}: registry {ref.registry} refused the token it issued")


def _fetch(ref: Reference, what: str, method: str, accept: str) -> tuple[dict[str, str], bytes]:
    return _open(ref, f"manifests/{what}", method, accept)


def manifest_digest(reference: str) -> str | None:
    """The digest a tag points to now, or None when the registry has no such tag."""
    ref = parse_reference(reference)
    try:
        headers = _fetch(ref, ref.digest or ref.tag or "latest", "HEAD", ACCEPT_ANY)[0]
    except RegistryError as e:
        if "no such image" in str(e):
            return None
        raise
    return _header(headers, "Docker-Content-Digest")


def _header(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def resolve(reference: str, platforms: tuple[str, ...] = ("linux/amd64",)) -> ResolvedImage:
    """Tag -> digest, plus the manifest digest of each wanted platform."""
    ref = parse_reference(reference)
    headers, body = _fetch(ref, ref.digest or ref.tag or "latest", "GET", ACCEPT_ANY)
    media = (_header(headers, "Content-Type") or "").split(";")[0]
    digest = _header(headers, "Docker-Content-Digest") or ref.digest
    if not digest:
        import hashlib

        digest = "sha256:" + hashlib.sha256(body).hexdigest()
    resolved = ResolvedImage(reference, digest)
    if media in INDEX_TYPES:
        index = json.loads(body)
        for wanted in platforms:
            digest_for = _index_entry(index.get("manifests", []), wanted)
            if digest_for:
                resolved.platforms[wanted] = digest_for
        missing = [p for p in platforms if p not in resolved.platforms]
        if missing:
            raise RegistryError(f"{reference} has no image for {', '.join(missing)}; choose another base or platform")
    else:
        # A single-platform image: its manifest digest serves each platform it can.
        config = _platform_of_manifest(ref, json.loads(body) if body else {})
        for p in platforms:
            if config is None or config == p:
                resolved.platforms[p] = digest
        missing = [p for p in platforms if p not in resolved.platforms]
        if config is not None and missing:
            raise RegistryError(f"{reference} is a {config} image only: it has no image for {', '.join(missing)}; "
                                f"use a base with one (envbuild base bootstrap --platform {','.join(platforms)}) "
                                f"or drop {', '.join(missing)} from platforms")
    return resolved


def _index_entry(manifests: list[dict], wanted: str) -> str | None:
    """The manifest digest for "os/arch[/variant]"; "linux/arm64" also takes arm64/v8 (what Hub serves)."""
    os_, arch, *variant = wanted.split("/")
    best = None
    for m in manifests:
        p = m.get("platform", {})
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if variant and p.get("variant") != variant[0]:
            continue
        if not p.get("variant") or (not variant and p.get("variant") == "v8" and best is None):
            best = m["digest"]
            if not p.get("variant"):
                break
    return best


def _config_of_manifest(ref: Reference, manifest: dict) -> dict | None:
    """The image config blob a manifest names, or None when it cannot be read."""
    cfg = manifest.get("config", {}).get("digest")
    if not cfg:
        return None
    try:
        c = json.loads(_open(ref, f"blobs/{cfg}", "GET", "application/json")[1])
    except (RegistryError, ValueError):
        return None
    return c if isinstance(c, dict) else None


def _platform_of_manifest(ref: Reference, manifest: dict) -> str | None:
    """os/arch from the image config blob, or None when it cannot be read."""
    c = _config_of_manifest(ref, manifest) or {}
    if not c.get("os") or not c.get("architecture"):
        return None
    return f"{c['os']}/{c['architecture']}"


def image_config(reference: str, manifest_digest: str) -> dict | None:
    """The config (env, labels ...) of one platform's image, by its manifest digest; None when the
    registry does not serve it as a single-platform manifest."""
    ref = parse_reference(reference)
    try:
        body = _fetch(ref, manifest_digest, "GET", ", ".join(MANIFEST_TYPES))[1]
        manifest = json.loads(body)
    except (RegistryError, ValueError):
        return None
    return _config_of_manifest(ref, manifest) if isinstance(manifest, dict) else None


def ping(registry: str, timeout: float = 5) -> None:
    """Raise RegistryError unless `registry` (host[:port]) answers the v2 API.

    200 and 401 (a login is wanted) both mean a registry is there.
    """
    url = f"{_scheme(registry)}://{registry}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as e:
        if e.code == 401:
            return
        raise RegistryError(f"registry {registry} answered HTTP {e.code} at {url}") from None
    except (urllib.error.URLError, OSError) as e:
        raise _unreachable(registry, e) from None


def _unreachable(registry: str, e: Exception) -> RegistryUnreachable:
    reason = getattr(e, "reason", e)
    return RegistryUnreachable(
        f"registry {registry} unreachable ({reason}); start it (make docker-up) or check the image reference"
    )


def resolve_with_fallback(reference: str, platforms: tuple[str, ...] = ("linux/amd64",)) -> ResolvedImage:
    """`resolve` through the registry; when it cannot be reached, the engine's RepoDigests.

    `source` on the result says which answered. The engine only knows a digest for an image
    it pulled or pushed, and only for its own platform.
    """
    try:
        return resolve(reference, platforms)
    except RegistryUnreachable as e:
        from envbuild.engine import inspect_image
        from envbuild.errors import EngineError

        try:
            image = inspect_image(reference)
        except EngineError:
            image = None
        ref = parse_reference(reference)
        digests = [d.split("@", 1)[1] for d in (image or {}).get("RepoDigests", [])
                   if "@" in d and parse_reference(d).name == ref.name]
        if not digests:
            raise RegistryUnreachable(f"{e}; the Docker engine has no pushed or pulled copy of {reference} either") from None
        resolved = ResolvedImage(reference, digests[0], source="engine")
        own = f"{image.get('Os')}/{image.get('Architecture')}"
        resolved.platforms = {p: digests[0] for p in platforms if p == own}
        return resolved
