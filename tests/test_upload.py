"""oci/upload.py against the real loopback registry: what a push sends and what it mounts."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from envbuild.oci import upload
from envbuild.oci.blobs import Store
from envbuild.oci.config import LAYER_GZIP, MANIFEST_TYPE, canonical
from envbuild.registry import parse_reference

pytestmark = pytest.mark.docker


def _image(store: Store, payload: bytes) -> tuple[bytes, list[str]]:
    """A small valid image: one (opaque) layer blob and a config; its manifest and blob digests."""
    layer = store.put_bytes(payload)
    config = store.put_bytes(canonical({"architecture": "amd64", "os": "linux",
                                        "rootfs": {"type": "layers", "diff_ids": [layer]}}))
    manifest = canonical({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                     "size": store.path(config).stat().st_size},
                          "layers": [{"mediaType": LAYER_GZIP, "digest": layer, "size": len(payload)}]})
    return manifest, [layer, config]


def test_a_push_to_a_new_repository_mounts_what_the_registry_got_before(base_image: str, tmp_path: Path) -> None:
    registry = base_image.split("/", 1)[0]
    store = Store(tmp_path / "oci")
    manifest, blobs = _image(store, os.urandom(4096))  # blobs no repository of the registry has yet
    name = f"ebt/upload-{uuid.uuid4().hex[:8]}"
    first = upload.push(store, parse_reference(f"{registry}/{name}-a:t"), manifest, MANIFEST_TYPE, blobs)
    assert sorted(first["sent"]) == sorted(blobs)
    second = upload.push(store, parse_reference(f"{registry}/{name}-b:t"), manifest, MANIFEST_TYPE, blobs)
    assert second["sent"] == [] and sorted(second["skipped"]) == sorted(blobs)  # mounted from -a
    assert second["digest"] == first["digest"]
    # a remembered repository that no longer holds the blob: the mount is refused, the blob is sent
    manifest, blobs = _image(store, os.urandom(4096))
    memory = upload._pushed_path(store, registry)
    known = json.loads(memory.read_text())
    memory.write_text(json.dumps({**known, **{d: f"{name}-gone" for d in blobs}}))
    third = upload.push(store, parse_reference(f"{registry}/{name}-c:t"), manifest, MANIFEST_TYPE, blobs)
    assert sorted(third["sent"]) == sorted(blobs)
