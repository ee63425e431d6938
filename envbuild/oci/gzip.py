"""gzip for layers: pinned (zlib-ng, a dependency of envbuild), parallel, and byte-stable.

The bytes of a gzip stream depend on the compressor build, not only on the level, so the host's
zlib would make the manifest digest a property of the machine. zlib-ng comes with envbuild (the
`zlib-ng` wheel bundles its own copy), so the same envbuild writes the same bytes everywhere.

Speed: the input is cut into fixed 4 MiB chunks, each deflated on its own thread with the previous
32 KiB as its dictionary and ended with a sync flush (as pigz does); zlib-ng releases the GIL while
it works. The output depends on the chunk size and level only, never on the number of threads.
The gzip header carries mtime 0 and no name.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Iterator

LEVEL = 6
CHUNK = 4 << 20
WINDOW = 32 << 10
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, mtime 0, unknown OS


def compressor_id() -> str:
    """What made the bytes: recorded in the lock's build facts and in the image's history."""
    import zlib_ng

    return f"zlib-ng {zlib_ng.__version__} level {LEVEL} chunk {CHUNK}"


def _deflate(chunk: bytes, window: bytes, last: bool) -> bytes:
    from zlib_ng import zlib_ng as z

    c = z.compressobj(LEVEL, z.DEFLATED, -15, 9, z.Z_DEFAULT_STRATEGY, window) if window else \
        z.compressobj(LEVEL, z.DEFLATED, -15, 9)
    return c.compress(chunk) + c.flush(z.Z_FINISH if last else z.Z_SYNC_FLUSH)


def _chunks(src: BinaryIO) -> Iterator[tuple[bytes, bytes, bool]]:
    window, chunk = b"", src.read(CHUNK)
    while True:
        nxt = src.read(CHUNK)
        yield chunk, window, not nxt
        if not nxt:
            return
        window, chunk = chunk[-WINDOW:], nxt


def compress_file(src: Path, dest: BinaryIO, threads: int | None = None) -> None:
    """gzip `src` into `dest`; at most `threads` chunks (default: every core) in flight."""
    threads = threads or os.cpu_count() or 1
    crc, size = 0, 0
    dest.write(HEADER)
    with open(src, "rb") as f, ThreadPoolExecutor(threads) as pool:
        pending = []
        for chunk, window, last in _chunks(f):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            pending.append(pool.submit(_deflate, chunk, window, last))
            if len(pending) >= 2 * threads:  # bounded memory: write in order as results come
                dest.write(pending.pop(0).result())
        for fut in pending:
            dest.write(fut.result())
    dest.write(struct.pack("<II", crc, size & 0xFFFFFFFF))
