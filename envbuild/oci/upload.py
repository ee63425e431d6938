"""Pushing and fetching blobs and manifests over the registry HTTP API (distribution spec).

Never `docker push`: the engine recompresses layers, so the registry would name another digest.
Here the registry receives the exact bytes envbuild wrote, so `Docker-Content-Digest` of the
manifest PUT is the digest `envbuild build` printed. A blob the repository has already is skipped
(HEAD), one another repository of the same registry has is mounted (`?mount=&from=`), so a
one-package change sends one small layer; an interrupted push resumes blob by blob. Which
repository got which blob is remembered per registry (as the engine's own distribution metadata
does for `docker push`), so pushing the same layers to a new repository mounts them all.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, Callable

from envbuild.errors import EXIT_FAILURE, RegistryError
from envbuild.oci.blobs import Store
from envbuild.registry import Reference, _bearer_token, _scheme, _unreachable

TIMEOUT = 600


class _Session:
    """Requests to one repository, answering a bearer challenge once and reusing the token."""

    def __init__(self, ref: Reference) -> None:
        self.ref, self.token = ref, None
        self.base = f"{_scheme(ref.registry)}://{ref.registry}"

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{path}"

    def call(self, method: str, url: str, data: bytes | BinaryIO | None = None,
             headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> tuple[int, dict[str, str], bytes]:
        if url.startswith("/"):
            url = self.base + url
        for _ in range(2):
            req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
            if self.token:
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                    return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
            except urllib.error.HTTPError as e:
                challenge = e.headers.get("WWW-Authenticate", "")
                if e.code == 401 and self.token is None and "bearer" in challenge.lower():
                    self.token = _bearer_token(challenge)
                    continue
                if e.code in ok:
                    return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
                body = e.read().decode(errors="replace")[:200]
                raise RegistryError(f"{self.ref.name}: registry answered HTTP {e.code} to {method} "
                                    f"{urllib.parse.urlsplit(url).path}: {body.strip()}", EXIT_FAILURE) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # it went away mid-request
                raise _unreachable(self.ref.registry, e) from None
        raise RegistryError(f"{self.ref.name}: registry {self.ref.registry} refused the token it issued")


def _has_blob(s: _Session, digest: str) -> bool:
    # 500: the registry cannot read what it holds for the digest (e.g. stopped while writing it);
    # sending the blob again is what repairs it, so it counts as missing
    return s.call("HEAD", s.url(f"blobs/{digest}"), ok=(200, 404, 500))[0] == 200


def _mount(s: _Session, digest: str, repository: str) -> bool:
    """Ask the registry to link a blob from another of its repositories; True when it did."""
    q = urllib.parse.urlencode({"mount": digest, "from": repository})
    status, headers, _ = s.call("POST", s.url(f"blobs/uploads/?{q}"), data=b"", ok=(201, 202))
    if status == 202 and headers.get("location"):  # not mounted: drop the upload it opened
        try:
            s.call("DELETE", headers["location"], ok=(204, 404))
        except RegistryError:
            pass
    return status == 201


def _upload(s: _Session, digest: str, store: Store) -> None:
    path = store.verified(digest)
    _, headers, _ = s.call("POST", s.url("blobs/uploads/"), data=b"", ok=(202,))
    location = headers.get("location", "")
    sep = "&" if "?" in location else "?"
    with open(path, "rb") as f:
        s.call("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", data=f,
               headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
               ok=(201,))


def push(store: Store, target: Reference, manifest: bytes, media_type: str, blobs: list[str],
         mount_from: Reference | None = None, say: Callable[[str], None] = lambda m: None,
         reference: str | None = None) -> dict[str, Any]:
    """Send every blob the repository lacks, then the manifest under `target`'s tag (or `reference`).

    Returns {"digest": what the registry answered, "sent": [digests uploaded], "skipped": [...],
    "sent_bytes": bytes uploaded, the manifest included}."""
    s = _Session(target)
    sent, skipped, sent_bytes = [], [], 0
    known = _pushed_before(store, target.registry)
    for digest in blobs:
        sources = [known.get(digest)]
        if mount_from is not None and mount_from.registry == target.registry:
            sources.append(mount_from.repository)
        sources = list(dict.fromkeys(r for r in sources if r and r != target.repository))
        if _has_blob(s, digest) or any(_mount(s, digest, repository) for repository in sources):
            skipped.append(digest)
            continue
        if not store.has(digest) and mount_from is not None:
            fetch_blob(mount_from, digest, store)
        say(f"uploading {digest[7:19]} ({store.path(digest).stat().st_size / 1e6:.1f} MB)")
        _upload(s, digest, store)
        sent.append(digest)
        sent_bytes += store.path(digest).stat().st_size
    tag = reference or target.tag or "latest"
    _, headers, _ = s.call("PUT", s.url(f"manifests/{tag}"), data=manifest,
                           headers={"Content-Type": media_type}, ok=(201,))
    sent_bytes += len(manifest)
    _remember(store, target, blobs, known)
    return {"digest": headers.get("docker-content-digest"), "sent": sent, "skipped": skipped, "sent_bytes": sent_bytes}


def _pushed_path(store: Store, registry: str) -> Path:
    return store.root / "pushed" / (urllib.parse.quote(registry, safe="") + ".json")


def _pushed_before(store: Store, registry: str) -> dict[str, str]:
    """{blob digest: a repository of `registry` it was pushed to}; a hint only: a mount the
    registry refuses (the repository was deleted since) falls back to sending the blob."""
    try:
        known = json.loads(_pushed_path(store, registry).read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _remember(store: Store, target: Reference, blobs: list[str], known: dict[str, str]) -> None:
    from envbuild.fsutil import atomic_write_json

    known.update({digest: target.repository for digest in blobs})
    try:
        _pushed_path(store, target.registry).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(_pushed_path(store, target.registry), known)
    except OSError:  # a read-only cache only costs the next push some uploads
        pass


def fetch_blob(ref: Reference, digest: str, store: Store) -> None:
    """GET a blob into the store (checked against its digest before it lands)."""
    if store.has(digest):
        return
    s = _Session(ref)
    req_url = s.url(f"blobs/{digest}")
    _, _, body = s.call("GET", req_url)
    with store.writer() as w:
        w.write(body)
    if w.digest != digest:
        store.path(w.digest).unlink(missing_ok=True)
        raise RegistryError(f"{ref.name}: blob {digest} arrived as {w.digest}; the registry served other bytes",
                            EXIT_FAILURE)


def fetch_manifest(ref: Reference, reference: str, accept: str) -> tuple[str, bytes]:
    """(media type, bytes) of a manifest or index by tag or digest."""
    s = _Session(ref)
    _, headers, body = s.call("GET", s.url(f"manifests/{reference}"), headers={"Accept": accept})
    return headers.get("content-type", "").split(";")[0], body


def fetch_json(ref: Reference, digest: str, store: Store) -> dict[str, Any]:
    fetch_blob(ref, digest, store)
    return json.loads(store.verified(digest).read_bytes())
