"""The image, assembled by envbuild from the lock: base layers untouched, then its own layers.

    base (pulled by digest) · apt · conda · pip: each package >= 20 MB alone, then the rest · runtime

Every layer is written by envbuild/oci/layer.py, the config and manifest by envbuild/oci/config.py,
so the image id (config digest) and the manifest digest are known before any engine or registry
sees the image, and are the same wherever the same envbuild builds the same lock. The engine only
hosts sandboxes (apt's maintainer scripts, the target's interpreter compiling .pyc) and receives
the result with `docker load`.

A built image is described in the blob store (`oci/images/<config hex>.json`: manifest, layer
blobs, the base's repository), so `push` and `--oci` use what the build wrote instead of asking
the engine to export anything.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from envbuild import __version__, platforms
from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_json, cache_dir
from envbuild.ingredients import BuildContext, all_ingredients
from envbuild.lockfile import CONDA_LOCK, REQUIREMENTS_LOCK, Base, EnvLock
from envbuild.oci import layer
from envbuild.oci.blobs import Store
from envbuild.oci.config import CONFIG_TYPE, LAYER_GZIP, Blob, ImageConfig, manifest_bytes, timestamp
from envbuild.registry import INDEX_TYPES, MANIFEST_TYPES, Reference, parse_reference
from envbuild.spec import Spec

RUNTIME_SITE = Path(__file__).parent / "runtime" / "site"
SITE = "/opt/envbuild/site"
WORKSPACE = "/workspace"
USER = "1000:1000"  # the image's default user; `envbuild run` passes the caller's own uid:gid
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DETERMINISM_ENV = {"PYTHONHASHSEED": "0", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NVIDIA_TF32_OVERRIDE": "0"}
ANNOTATION_COMPRESSOR = "dev.envbuild.compressor"


@dataclass
class Written:
    """An image envbuild wrote: enough to load, push or export it again without rebuilding."""

    config: Blob
    manifest_digest: str
    manifest: bytes
    layers: list[Blob]  # compressed, base's first
    diff_ids: list[str]
    base_name: str  # repository the base layers can be mounted or fetched from
    base_layers: int
    platform: str
    comments: list[str] = field(default_factory=list)  # one per own layer
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    materials: list[dict[str, Any]] = field(default_factory=list)  # every locked file installed (materials.py)

    @property
    def id(self) -> str:
        return self.config.digest

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.descriptor(), "manifest_digest": self.manifest_digest,
                "manifest": self.manifest.decode(), "layers": [b.descriptor() for b in self.layers],
                "diff_ids": self.diff_ids, "base_name": self.base_name, "base_layers": self.base_layers,
                "platform": self.platform, "comments": self.comments, "materials": self.materials}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Written":
        blob = lambda x: Blob(x["mediaType"], x["digest"], int(x["size"]))  # noqa: E731
        return cls(blob(d["config"]), d["manifest_digest"], d["manifest"].encode(), [blob(x) for x in d["layers"]],
                   list(d["diff_ids"]), d["base_name"], int(d["base_layers"]), d["platform"], list(d["comments"]),
                   materials=list(d.get("materials") or []))


def describe(store: Store, written: Written) -> None:
    atomic_write_json(store.description(written.config.digest), written.to_dict())


def described(store: Store, config_digest: str) -> Written | None:
    try:
        return Written.from_dict(json.loads(store.description(config_digest).read_text()))
    except (OSError, ValueError, KeyError):
        return None


# --- the base ----------------------------------------------------------------------------


@dataclass
class BaseImage:
    ref: Reference
    config: dict[str, Any]
    layers: list[Blob]  # compressed, as the registry holds them
    config_digest: str


def _oci_layer_type(media_type: str) -> str:
    return LAYER_GZIP if media_type.endswith("gzip") else media_type


def fetch_base(base: Base, platform: str, store: Store) -> BaseImage:
    """The pinned base's manifest and config for `platform`, from its registry (cached by digest)."""
    from envbuild.oci.upload import fetch_json, fetch_manifest

    ref = parse_reference(base.pinned)
    digest = base.platforms.get(platform) or base.digest
    cached = store.root / "manifests" / digest.split(":", 1)[1]
    if cached.is_file():
        media, body = "", cached.read_bytes()
    else:
        media, body = fetch_manifest(ref, digest, ", ".join(MANIFEST_TYPES + INDEX_TYPES))
    doc = json.loads(body)
    if media in INDEX_TYPES or doc.get("manifests"):
        from envbuild.registry import _index_entry

        entry = _index_entry(doc.get("manifests", []), platform)
        if entry is None:
            raise EnvbuildError(f"base {base.pinned} has no image for {platform}; choose a base that has one "
                                "and run envbuild lock")
        media, body = fetch_manifest(ref, entry, ", ".join(MANIFEST_TYPES))
        doc = json.loads(body)
    if not cached.is_file():
        from envbuild.fsutil import atomic_write_bytes

        atomic_write_bytes(cached, body)
    config_digest = doc["config"]["digest"]
    config = fetch_json(ref, config_digest, store)
    arch = platforms.get(platform).goarch
    if config.get("architecture") != arch:
        raise EnvbuildError(f"base {base.pinned} is a {config.get('os')}/{config.get('architecture')} image, "
                            f"not {platform}; bootstrap or choose a {platform} base and run envbuild lock")
    layers = [Blob(_oci_layer_type(x["mediaType"]), x["digest"], int(x["size"])) for x in doc.get("layers", [])]
    return BaseImage(ref, config, layers, config_digest)


# --- the image ----------------------------------------------------------------------------


USER_FILES = ("etc/passwd", "etc/group")


def base_files(base: BaseImage, store: Store, wanted: tuple[str, ...] = USER_FILES) -> dict[str, bytes]:
    """Files of the base's filesystem (the top-most layer that has each), read from its layers;
    cached per base config, since a base never changes under its digest."""
    import gzip as stdgzip
    import tarfile

    from envbuild.fsutil import atomic_write_json
    from envbuild.oci.upload import fetch_blob

    cache = store.root / "base-files" / f"{base.config_digest.split(':', 1)[1]}.json"
    try:
        return {k: v.encode("latin-1") for k, v in json.loads(cache.read_text()).items()}
    except (OSError, ValueError):
        pass
    found: dict[str, bytes] = {}
    for blob in reversed(base.layers):
        missing = [p for p in wanted if p not in found]
        if not missing:
            break
        fetch_blob(base.ref, blob.digest, store)
        with stdgzip.open(store.verified(blob.digest)) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for m in tar:
                name = m.name.removeprefix("./")
                if name in missing and m.isreg():
                    f = tar.extractfile(m)
                    found[name] = f.read() if f else b""
    atomic_write_json(cache, {k: v.decode("latin-1") for k, v in found.items()})
    return found


def user_entries(base: BaseImage, store: Store) -> list[layer.Entry]:
    """The image's user `envbuild` (uid 1000) in /etc/passwd and /etc/group, with a home, unless the
    base has a uid 1000 already (a team base made by envbuild)."""
    files = base_files(base, store)
    passwd, group = files.get("etc/passwd", b""), files.get("etc/group", b"")
    if any(line.split(b":")[2:3] == [b"1000"] for line in passwd.splitlines()):
        return []
    if passwd and not passwd.endswith(b"\n"):
        passwd += b"\n"
    if group and not group.endswith(b"\n"):
        group += b"\n"
    return [layer.file_entry("etc/passwd", passwd + b"envbuild:x:1000:1000::/home/envbuild:/bin/bash\n"),
            layer.file_entry("etc/group", group + b"envbuild:x:1000:\n"),
            layer.dir_entry("home/envbuild", 0o755, uid=1000, gid=1000)]


def runtime_layer(ctx: BuildContext, base: BaseImage) -> layer.Layer:
    entries = [e for e in layer.tree_entries(RUNTIME_SITE, SITE)
               if "__pycache__" not in e.path and not e.path.endswith(".pyc")]
    entries.append(layer.dir_entry(WORKSPACE, 0o755, uid=1000, gid=1000))
    entries += user_entries(base, ctx.store)
    return layer.write(entries, ctx.store, ctx.epoch, f"envbuild {__version__} runtime (seeding hook, track API)")


def image_config(base: BaseImage, ctx: BuildContext, labels: dict[str, str], own: list[layer.Layer],
                 team_base: bool) -> ImageConfig:
    from envbuild.condapkgs import PREFIX
    from envbuild.image import BASE_VENV

    cfg = ImageConfig.from_base(base.config)
    uses_pip, uses_conda = REQUIREMENTS_LOCK in ctx.lock.lockfiles, CONDA_LOCK in ctx.lock.lockfiles
    built = ([ctx.venv] if uses_pip else []) + ([PREFIX] if uses_conda else [])
    path = ":".join(f"{d}/bin" for d in built + ([] if team_base else [BASE_VENV]))
    cfg.env["PATH"] = f"{path}:{SYSTEM_PATH}" if path else SYSTEM_PATH
    if uses_pip:
        cfg.env["VIRTUAL_ENV"] = ctx.venv
    if uses_conda:
        cfg.env["CONDA_PREFIX"] = PREFIX
    cfg.env.update(DETERMINISM_ENV)
    if "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in cfg.env:  # NGC bases set 1; torch reads 0 as off
        cfg.env["TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"] = "0"
    cfg.labels.update(labels)
    cfg.user, cfg.workdir = USER, WORKSPACE
    cfg.diff_ids += [x.diff_id for x in own]
    created = timestamp(ctx.epoch)
    cfg.history += [{"created": created, "created_by": f"envbuild {__version__}: {x.comment}"} for x in own]
    return cfg


def assemble(spec: Spec, lock: EnvLock, labels: dict[str, str], *, platform: str, team_base: bool = False,
             store: Store | None = None, say: Callable[[str], None] = lambda m: None,
             code_entries: list[layer.Entry] | None = None,
             load: Callable[[str, list[str], int], None] | None = None) -> Written:
    """Fetch every ingredient, write every layer, the config and the manifest.

    `load(config digest, diff_ids, base layer count)` (docker load) runs while the layers are
    compressed: the engine reads the uncompressed layers, the registry will get the gzip ones."""
    from envbuild.image import BASE_VENV, VENV, pth_text

    store = store or Store.default()
    tmp_root = cache_dir() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    base = fetch_base(lock.base, platform, store)
    native = platform == platforms.host()
    with tempfile.TemporaryDirectory(prefix="build-", dir=tmp_root) as tmp:
        ctx = BuildContext(spec, lock, platform, store, Path(tmp), lock.epoch, lock.base.pinned, native,
                           BASE_VENV if team_base else VENV, pth_text(lock.python, team_base=team_base), say)
        wanted = [i for i in all_ingredients() if i.wanted(lock)]
        if not wanted:
            raise EnvbuildError(f"{spec.root / 'envbuild.lock'} governs neither {REQUIREMENTS_LOCK} nor {CONDA_LOCK}; "
                                "run envbuild lock")
        fetched = [(i, i.fetch(ctx)) for i in wanted]  # every file verified before any layer is written
        own: list[layer.Layer] = []
        for ingredient, files in fetched:
            own += ingredient.layers(ctx, files)
        own.append(runtime_layer(ctx, base))
        if code_entries:
            own.append(layer.write(code_entries, store, ctx.epoch, "the project's code (--bake-code)"))
    cfg = image_config(base, ctx, labels, own, team_base)
    config_bytes = cfg.to_bytes(lock.epoch)
    config = Blob(CONFIG_TYPE, store.put_bytes(config_bytes), len(config_bytes))
    from envbuild.oci.gzip import compressor_id

    compressed = compress_while(store, [x.diff_id for x in own], say,
                                lambda: load(config.digest, cfg.diff_ids, len(base.layers)) if load else None)
    layers = base.layers + compressed
    manifest = manifest_bytes(config, layers, {ANNOTATION_COMPRESSOR: compressor_id()})
    store.put_bytes(manifest)
    from envbuild.oci.blobs import digest_of

    from envbuild.materials import of_fetched

    written = Written(config, digest_of(manifest), manifest, layers, cfg.diff_ids, base.ref.name, len(base.layers),
                      platform, [x.comment for x in own], ctx.downloaded, ctx.cached, ctx.notes,
                      [m.to_dict() for m in of_fetched(files for _, files in fetched)])
    describe(store, written)
    return written


def compress_while(store: Store, diff_ids: list[str], say: Callable[[str], None],
                   meanwhile: Callable[[], object]) -> list[Blob]:
    """Each layer's gzip blob (made once per diff_id, cached), while `meanwhile` runs in this thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(store.compressed, d, say) for d in diff_ids]
        meanwhile()
        return [Blob(LAYER_GZIP, *f.result()) for f in futures]


# --- proving a build ----------------------------------------------------------------------


def _members(store: Store, diff_id: str) -> dict[str, tuple]:
    import hashlib
    import tarfile

    out = {}
    with tarfile.open(store.verified(diff_id), "r:") as tar:
        for m in tar:
            content = ""
            if m.isreg():
                f = tar.extractfile(m)
                content = hashlib.sha256(f.read() if f else b"").hexdigest()
            out[m.name] = (m.type, oct(m.mode), m.uid, m.gid, m.uname, m.gname, m.mtime, m.size, m.linkname,
                           content, tuple(sorted(m.pax_headers.items())))
    return out


def first_difference(a_store: Store, a: Written, b_store: Store, b: Written) -> str | None:
    """None when the two images are bit-identical, else where they first differ (layer, file)."""
    if a.id == b.id and a.manifest_digest == b.manifest_digest:
        return None
    if len(a.diff_ids) != len(b.diff_ids):
        return f"{len(a.diff_ids)} layers, rebuilt {len(b.diff_ids)}"
    for i, (x, y) in enumerate(zip(a.diff_ids, b.diff_ids)):
        if x == y:
            continue
        label = a.comments[i - a.base_layers] if i >= a.base_layers else "base"
        if i < a.base_layers:
            return f"layer {i + 1} ({label}): the base's layers differ"
        mx, my = _members(a_store, x), _members(b_store, y)
        for name in sorted(set(mx) | set(my)):
            if mx.get(name) != my.get(name):
                return f"layer {i + 1} ({label}): first differing file /{name}: {mx.get(name)} vs {my.get(name)}"
        return f"layer {i + 1} ({label}): same files, different tar bytes"
    if a.id != b.id:
        return "same layers, different config (env, labels or history)"
    return (f"same image id, manifest {a.manifest_digest} vs {b.manifest_digest}: the layers compressed "
            "differently (another compressor build)")
