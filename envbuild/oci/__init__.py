"""Images written by envbuild itself, as OCI: the image is a pure function of the lock.

    gzip.py     the pinned, parallel gzip compressor (zlib-ng), so compressed digests hold everywhere
    blobs.py    the content-addressed blob store: layers (uncompressed and gzip), configs, manifests
    layer.py    deterministic layer tars: sorted entries, clamped mtimes, numeric owners, no litter
    config.py   the canonical image config and manifest; the image id and manifest digest
    layout.py   where an image goes: an OCI image layout directory, or a docker-archive for `docker load`
    upload.py   the registry HTTP API: blobs (mounted or uploaded) and the manifest, exactly as written

No engine or builder decides a byte of the image: the config digest (the engine's image id) and
the manifest digest are computed here, before any engine or registry sees the image.
"""
