"""Where a written image goes without a registry: an OCI image layout, or `docker load`.

OCI image layout (runc/umoci, podman, skopeo, Slurm's OCI support read it):
    DIR/oci-layout                      {"imageLayoutVersion": "1.0.0"}
    DIR/index.json                      one manifest, annotated with its ref name
    DIR/blobs/sha256/<hex>              config, manifest, every layer (gzip), hard-linked from the cache

docker-archive (what `docker load` reads): manifest.json naming the config and one tar per layer.
A layer the engine has already (the base's, pulled by digest) may be left out: the engine reads a
layer file only when it lacks the layer chain. The image id after the load is the config digest.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable

from envbuild.errors import EXIT_FAILURE, EnvbuildError, last_line
from envbuild.oci.blobs import Store
from envbuild.oci.config import INDEX_TYPE, MANIFEST_TYPE, canonical

REF_ANNOTATION = "org.opencontainers.image.ref.name"


def _place(store: Store, digest: str, dest_dir: Path) -> None:
    dest = dest_dir / digest.split(":", 1)[1]
    if dest.exists():
        return
    src = store.verified(digest)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def write_layout(store: Store, manifest: bytes, blobs: list[str], dest: Path, ref_name: str) -> None:
    """An OCI image layout at `dest` holding one image; existing blobs are kept, index.json replaced."""
    from envbuild.fsutil import atomic_write_bytes

    blob_dir = dest / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    manifest_digest = store.put_bytes(manifest)
    for digest in [*blobs, manifest_digest]:
        _place(store, digest, blob_dir)
    atomic_write_bytes(dest / "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [{
        "mediaType": MANIFEST_TYPE, "digest": manifest_digest, "size": len(manifest),
        "annotations": {REF_ANNOTATION: ref_name}}]}
    atomic_write_bytes(dest / "index.json", canonical(index))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def docker_load(store: Store, config_digest: str, diff_ids: list[str], skip: int, tag: str,
                docker_bin: str, say: Callable[[str], None] = lambda m: None,
                base_blobs: list[str] | None = None) -> None:
    """Stream a docker-archive of the image into `docker load`. The first `skip` layers (the base's)
    are named but not sent when the engine has them; `base_blobs` (their gzip blobs, which the
    engine decompresses itself) sends them instead, for a platform the engine never pulled."""
    layers = [f"{d.split(':', 1)[1]}/layer.tar" for d in diff_ids]
    manifest = [{"Config": f"{config_digest.split(':', 1)[1]}.json", "RepoTags": [tag], "Layers": layers}]
    proc = subprocess.Popen([docker_bin, "load", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tar, manifest[0]["Config"], store.verified(config_digest).read_bytes())
            sources = list(base_blobs or []) + diff_ids[skip:]
            for name, source in zip(layers if base_blobs else layers[skip:], sources):
                path = store.verified(source)
                diff_id = source
                say(f"loading layer {diff_id[7:19]} ({path.stat().st_size / 1e6:.0f} MB)")
                info = tarfile.TarInfo(name)
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    except BrokenPipeError:
        pass  # docker load stopped reading: its own message says why
    finally:
        proc.stdin.close()
    assert proc.stderr is not None and proc.stdout is not None
    proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    if proc.returncode != 0:
        raise EnvbuildError(f"docker load of {tag} failed: {last_line(err, f'exit {proc.returncode}')}", EXIT_FAILURE)
