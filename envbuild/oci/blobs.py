"""The content-addressed blob store: every layer, config and manifest envbuild writes or fetches.

    $ENVBUILD_CACHE_DIR/oci/blobs/sha256/<hex>       a blob, named by the sha256 of its bytes
    $ENVBUILD_CACHE_DIR/oci/gzip/<diff_id hex>.json  which gzip blob a layer compresses to, by whom

A layer is kept uncompressed (its digest is the diff_id the image id covers) and compressed once,
the first time a push or an OCI export needs it; the map above finds that blob again, so no layer
is compressed twice. Blobs are written to a temp file and renamed in, so a killed build leaves no
half blob under a digest name; a blob read back for a push or export is re-hashed first.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import atomic_write_json, cache_dir, new_temp, sha256_file


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HashingWriter:
    """A file object that hashes and counts what goes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()


@dataclass(frozen=True)
class Store:
    root: Path

    @classmethod
    def default(cls) -> "Store":
        return cls(cache_dir() / "oci")

    def path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise EnvbuildError(f"{digest!r} is not a sha256 digest")
        return self.root / "blobs" / "sha256" / hexd

    def description(self, config_digest: str) -> Path:
        """Where assemble keeps what it wrote for an image (its manifest, blobs, base), by image id."""
        return self.root / "images" / f"{config_digest.split(':', 1)[1]}.json"

    def manifest_digest(self, config_digest: str) -> str | None:
        """The manifest digest envbuild wrote for an image id; None for an image it has no description of."""
        try:
            return json.loads(self.description(config_digest).read_text())["manifest_digest"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        digest = digest_of(data)
        if not self.has(digest):
            with self.writer() as w:
                w.write(data)
        return digest

    def writer(self) -> "_BlobWriter":
        """`with store.writer() as w: w.write(...)`; the blob lands under its digest on exit."""
        return _BlobWriter(self)

    def verified(self, digest: str) -> Path:
        """The blob's path after re-hashing it: a changed byte is refused, naming the file."""
        path = self.path(digest)
        if not path.is_file():
            raise EnvbuildError(f"blob {digest} is not in {self.root}; build again", EXIT_FAILURE)
        actual = "sha256:" + sha256_file(path)
        if actual != digest:
            path.unlink()
            raise EnvbuildError(f"{path}: holds {actual}, not {digest}; the corrupt blob was removed, "
                                "build again", EXIT_FAILURE)
        return path

    def read_json(self, digest: str) -> dict:
        return json.loads(self.verified(digest).read_bytes())

    # --- compressed layers -----------------------------------------------------------------

    def _gzip_map(self, diff_id: str) -> Path:
        return self.root / "gzip" / f"{diff_id.split(':', 1)[1]}.json"

    def compressed(self, diff_id: str, progress: Callable[[str], None] | None = None) -> tuple[str, int]:
        """(digest, size) of the layer's gzip blob, compressed now only if it never was."""
        from envbuild.oci import gzip

        mapping = self._gzip_map(diff_id)
        try:
            known = json.loads(mapping.read_text())
            if known.get("compressor") == gzip.compressor_id() and self.has(known["digest"]):
                return known["digest"], int(known["size"])
        except (OSError, ValueError, KeyError):
            pass
        src = self.verified(diff_id)
        if progress:
            progress(f"compressing layer {diff_id[7:19]} ({src.stat().st_size / 1e6:.0f} MB)")
        with self.writer() as w:
            gzip.compress_file(src, w)
        atomic_write_json(mapping, {"digest": w.digest, "size": w.size, "compressor": gzip.compressor_id()})
        return w.digest, w.size

    def iter_uncompressed(self, digest: str) -> Iterator[bytes]:
        with open(self.verified(digest), "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk


class _BlobWriter(HashingWriter):
    def __init__(self, store: Store) -> None:
        self.store = store
        tmp_dir = store.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = new_temp(tmp_dir, "blob-")
        super().__init__(os.fdopen(fd, "wb"))

    def __enter__(self) -> "_BlobWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.f.close()
        if exc_type is not None:
            os.unlink(self.tmp)
            return
        final = self.store.path(self.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, final)
