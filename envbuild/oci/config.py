"""The canonical image config and manifest, and the two digests that name an image.

    image id        sha256 of the config: it lists the diff_ids (uncompressed layers), so it holds
                    on every machine, whatever compressor ran; `docker load` gives this same id
    manifest digest sha256 of the manifest: it lists the gzip blobs, so it holds wherever the same
                    envbuild (and so the same pinned compressor) runs; a registry answers it on push

Both are JSON written one way only: keys sorted, no spaces, UTF-8. `created` and the history dates
are the lock's epoch, never the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from envbuild.oci.blobs import digest_of

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str
    size: int

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class ImageConfig:
    """What envbuild puts in a config: the base's runtime settings, then its own, then the layers."""

    architecture: str  # amd64, arm64 (GOARCH spelling, as the OCI spec asks)
    os: str = "linux"
    variant: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    user: str = ""
    workdir: str = ""
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    diff_ids: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_bytes(self, epoch: int) -> bytes:
        conf: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in self.env.items()], "Labels": dict(self.labels)}
        for key, value in (("User", self.user), ("WorkingDir", self.workdir), ("Cmd", self.cmd),
                           ("Entrypoint", self.entrypoint)):
            if value:
                conf[key] = value
        doc: dict[str, Any] = {
            "architecture": self.architecture, "os": self.os, "created": timestamp(epoch), "config": conf,
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)}, "history": list(self.history),
        }
        if self.variant:
            doc["variant"] = self.variant
        return canonical(doc)

    @classmethod
    def from_base(cls, base: dict[str, Any]) -> "ImageConfig":
        """The settings of a base image's config blob (any writer's), as envbuild's starting point."""
        conf = base.get("config") or {}
        env = dict(e.split("=", 1) for e in conf.get("Env") or [] if "=" in e)
        return cls(architecture=base.get("architecture", "amd64"), os=base.get("os", "linux"),
                   variant=base.get("variant"), env=env, labels=dict(conf.get("Labels") or {}),
                   user=conf.get("User") or "", workdir=conf.get("WorkingDir") or "",
                   cmd=conf.get("Cmd"), entrypoint=conf.get("Entrypoint"),
                   diff_ids=list((base.get("rootfs") or {}).get("diff_ids") or []),
                   history=list(base.get("history") or []))


def manifest_bytes(config: Blob, layers: list[Blob], annotations: dict[str, str] | None = None) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": config.descriptor(),
                           "layers": [b.descriptor() for b in layers]}
    if annotations:
        doc["annotations"] = dict(annotations)
    return canonical(doc)


def manifest_digest(config: Blob, layers: list[Blob]) -> str:
    return digest_of(manifest_bytes(config, layers))
