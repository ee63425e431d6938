"""Proof of what an image is: its SBOM and a signed SLSA provenance, beside it and in the registry.

The provenance is an in-toto Statement v1 (subject: the image's manifest digest) with a SLSA
provenance v1 predicate: `resolvedDependencies` are the lock files, the base by digest and every
wheel, conda package and .deb by sha256; `runDetails.builder` is envbuild and its version. It is
signed as a DSSE envelope (payloadType application/vnd.in-toto+json, signature over
PAE = "DSSEv1 <len(type)> <type> <len(body)> <body>") with the local key (envbuild/keys.py).

Where they go, for an image with manifest digest sha256:<hex>:
    <project>/.envbuild/attest/sha256-<hex>.sbom.cdx.json   the SBOM (envbuild/sbom.py)
    <project>/.envbuild/attest/sha256-<hex>.dsse.json       the signed provenance envelope
    registry: one OCI artifact manifest each, with `subject` = the image (OCI 1.1), also tagged
      sha256-<hex>.sbom and sha256-<hex>.att (cosign's tags; cosign's layout: the envelope is a layer
      of type application/vnd.dsse.envelope.v1+json), and listed in the referrers fallback index
      tagged sha256-<hex> (for registries without the referrers API, as distribution 2.8 here)
    an OCI layout (build --oci DIR): the same artifact manifests in its index.json.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from envbuild import __version__
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import atomic_write_bytes, sha256_file
from envbuild.oci.blobs import Store, digest_of
from envbuild.oci.config import INDEX_TYPE, MANIFEST_TYPE, canonical
from envbuild.store import attest_paths as paths

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"  # what cosign attach sbom --type cyclonedx uses
BUILD_TYPE = "urn:envbuild:build-type:image:v1"  # the shape of externalParameters below
BUILDER_ID = "urn:envbuild:builder:local"
EMPTY_CONFIG = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


# --- DSSE ----------------------------------------------------------------------------------


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed, never the JSON envelope."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def envelope(body: bytes, private_key: Any, keyid: str) -> dict[str, Any]:
    from envbuild.keys import sign

    sig = sign(private_key, pae(PAYLOAD_TYPE, body))
    return {"payload": base64.b64encode(body).decode(), "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}]}


def _b64(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))  # either alphabet, per DSSE


def open_envelope(env: Any, public_key: Any) -> dict[str, Any]:
    """The statement, once a signature in the envelope verifies with `public_key`."""
    from envbuild.keys import verifies

    if not isinstance(env, dict) or not {"payload", "payloadType", "signatures"} <= set(env):
        raise Mismatch("the attestation is not a DSSE envelope (payload, payloadType, signatures)")
    try:
        body = _b64(env["payload"])
        sigs = [_b64(s["sig"]) for s in env["signatures"]]
    except (ValueError, TypeError, KeyError):
        raise Mismatch("the attestation's payload or signature is not base64") from None
    if not any(verifies(public_key, s, pae(str(env["payloadType"]), body)) for s in sigs):
        raise Mismatch("the signature does not verify with this key (wrong key, or the attestation was changed)")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise Mismatch(f"payloadType is {env['payloadType']!r}, not {PAYLOAD_TYPE}")
    try:
        return json.loads(body)
    except ValueError:
        raise Mismatch("the signed payload is not JSON") from None


class Mismatch(EnvbuildError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_FAILURE)


# --- the statement -------------------------------------------------------------------------


def lockfile_dependencies(root: Path, lock: Any) -> list[dict[str, Any]]:
    from envbuild.lockfile import ENVBUILD_LOCK

    names = [ENVBUILD_LOCK] + sorted(lock.lockfiles)
    return [{"uri": f"file:{n}", "name": n, "digest": {"sha256": sha256_file(Path(root) / n)}} for n in names]


def material_dependency(m: Any) -> dict[str, Any]:
    from envbuild.sbom import purl

    d = {"uri": purl(m.kind, m.name, m.version, m.extra), "name": m.filename, "digest": {"sha256": m.sha256}}
    if m.extra.get("url"):
        d["downloadLocation"] = m.extra["url"]
    return d


def statement(root: Path, lock: Any, written: Any, ref: str, params: dict[str, Any],
              sbom_bytes: bytes = b"") -> dict[str, Any]:
    from envbuild.materials import Material

    repo, _, tag = ref.rpartition(":")
    deps = lockfile_dependencies(root, lock)
    deps.append({"uri": f"oci:{lock.base.tag}", "name": "base", "digest": {"sha256": lock.base.digest.split(":")[1]}})
    deps += [material_dependency(Material.from_dict(m)) for m in written.materials]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repo, "digest": {"sha256": written.manifest_digest.split(":", 1)[1]},
                     "annotations": {"tag": tag, "config": written.config.digest}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"project": Path(root).name, "lockHash": lock.lock_hash, **params},
                "internalParameters": {"epoch": lock.epoch, "platform": written.platform,
                                       "baseLayers": written.base_layers},
                "resolvedDependencies": deps,
            },
            "runDetails": {"builder": {"id": BUILDER_ID, "version": {"envbuild": __version__}},
                           # the SBOM, so the signature covers it too (verify compares the attached one)
                           "byproducts": [{"name": "sbom.cdx.json", "mediaType": SBOM_TYPE,
                                           "digest": {"sha256": digest_of(sbom_bytes).split(":", 1)[1]}}]},
        },
    }


# --- writing them beside the image ---------------------------------------------------------


@dataclass
class Attested:
    image_digest: str
    sbom: Path
    envelope: Path | None  # None: no signing key yet

    def digests(self) -> dict[str, str | None]:
        return {"sbom": digest_of(self.sbom.read_bytes()),
                "provenance": digest_of(self.envelope.read_bytes()) if self.envelope else None}


def build_parameters(ref: str, written: Any) -> dict[str, Any]:
    """What the build was asked for, as its tag spells it (image_ref: -base, -code-<tree>)."""
    tag = ref.rsplit(":", 1)[1]
    return {"image": ref, "platform": written.platform, "bakeCode": "-code-" in tag,
            "teamBase": tag.endswith("-base") or "-base-" in tag}


def write(root: Path, lock: Any, written: Any, ref: str, say: Callable[[str], None] = lambda m: None) -> Attested:
    """The SBOM and (with a key) the signed provenance of an image envbuild wrote; kept when present."""
    from envbuild import keys, materials, sbom
    from envbuild.assemble import fetch_base

    sbom_path, env_path = paths(root, written.manifest_digest)
    store = Store.default()
    if not written.materials and lock.lockfiles:
        raise EnvbuildError(f"{ref}: envbuild's description of this image predates SBOMs; run envbuild build --no-cache",
                            EXIT_FAILURE)
    if not sbom_path.is_file():
        base = fetch_base(lock.base, written.platform, store)
        doc = sbom.document(ref, written.manifest_digest, lock.epoch,
                            [materials.Material.from_dict(m) for m in written.materials],
                            materials.base_packages(base, store), lock.base.pinned, lock.base.digest)
        atomic_write_bytes(sbom_path, doc)
        say(f"wrote the SBOM {sbom_path}")
    if env_path.is_file():
        return Attested(written.manifest_digest, sbom_path, env_path)
    private = keys.load_private()
    if private is None:
        say("no signing key, so no provenance: run envbuild keys generate, then build again")
        return Attested(written.manifest_digest, sbom_path, None)
    keyid = keys.signer_id(private)
    body = canonical(statement(root, lock, written, ref, build_parameters(ref, written), sbom_path.read_bytes()))
    atomic_write_bytes(env_path, canonical(envelope(body, private, keyid)))
    say(f"wrote the signed provenance {env_path}")
    return Attested(written.manifest_digest, sbom_path, env_path)


def after_build(spec: Any, lock: Any, result: Any, *, platform: str | None, bake_code: bool,
                say: Callable[[str], None] = lambda m: None) -> tuple[Attested, Any]:
    """`envbuild build`'s last step: (Attested, assemble.Written) of the image it built or found."""
    from envbuild import image
    from envbuild.assemble import described

    written = described(Store.default(), result.id)
    if written is None or not written.materials:
        _, written = image.built_and_described(spec, lock, Store.default(), bake_code=bake_code, platform=platform,
                                               log=say)
    return write(spec.root, lock, written, result.ref, say), written


# --- as OCI artifacts that refer to the image ------------------------------------------------


@dataclass
class Artifact:
    kind: str  # "sbom" | "att": cosign's tag suffix
    media_type: str  # of the one layer
    data: bytes
    manifest: bytes


def artifacts(att: Attested, image_manifest: bytes) -> list[Artifact]:
    subject = {"mediaType": MANIFEST_TYPE, "digest": att.image_digest, "size": len(image_manifest)}
    out = []
    items = [("sbom", SBOM_TYPE, att.sbom.read_bytes(), {})]
    if att.envelope:
        items.append(("att", DSSE_TYPE, att.envelope.read_bytes(),
                      {"predicateType": SLSA_PROVENANCE, "dev.cosignproject.cosign/signature": ""}))
    for kind, media, data, notes in items:
        layer = {"mediaType": media, "digest": digest_of(data), "size": len(data)}
        if notes:
            layer["annotations"] = notes
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": media,
                    "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(EMPTY_CONFIG), "size": 2},
                    "layers": [layer], "subject": subject}
        out.append(Artifact(kind, media, data, canonical(manifest)))
    return out


def _descriptor(a: Artifact) -> dict[str, Any]:
    return {"mediaType": MANIFEST_TYPE, "digest": digest_of(a.manifest), "size": len(a.manifest),
            "artifactType": a.media_type}


def push(target: Any, att: Attested, image_manifest: bytes, say: Callable[[str], None] = lambda m: None) -> dict:
    """Attach the SBOM and provenance to the image in `target`'s repository: by digest (subject),
    under cosign's tags, and in the referrers fallback index. {kind: artifact manifest digest}."""
    from envbuild.oci import upload

    store = Store.default()
    store.put_bytes(EMPTY_CONFIG)
    tag = att.image_digest.replace(":", "-")
    pushed, descriptors = {}, []
    for a in artifacts(att, image_manifest):
        blob = store.put_bytes(a.data)
        upload.push(store, target, a.manifest, MANIFEST_TYPE, [digest_of(EMPTY_CONFIG), blob], say=say,
                    reference=f"{tag}.{a.kind}")
        pushed[a.kind] = digest_of(a.manifest)
        descriptors.append(_descriptor(a))
    # The referrers fallback (OCI distribution 1.1): an index tagged sha256-<hex> listing them; other
    # referrers already listed there are kept.
    old = _fallback_index(target, att.image_digest)
    keep = [m for m in old if m.get("digest") not in {d["digest"] for d in descriptors}
            and m.get("artifactType") not in {d["artifactType"] for d in descriptors}]
    index = canonical({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": keep + descriptors})
    upload.push(store, target, index, INDEX_TYPE, [], reference=tag)
    say(f"attached {', '.join(sorted(pushed))} to {target.name}@{att.image_digest}")
    return pushed


def _fallback_index(target: Any, image_digest: str) -> list[dict[str, Any]]:
    from envbuild.errors import RegistryError
    from envbuild.oci import upload

    try:
        _, body = upload.fetch_manifest(target, image_digest.replace(":", "-"), INDEX_TYPE)
        return list(json.loads(body).get("manifests") or [])
    except (RegistryError, ValueError):
        return []


def referrers(target: Any, image_digest: str) -> list[dict[str, Any]]:
    """Descriptors of the artifacts that refer to the image: the registry's referrers API when it
    has one, else the fallback index."""
    from envbuild.oci import upload

    s = upload._Session(target)
    status, _, body = s.call("GET", s.url(f"referrers/{image_digest}"), headers={"Accept": INDEX_TYPE},
                             ok=(200, 404))
    if status == 200:
        try:
            return list(json.loads(body).get("manifests") or [])
        except ValueError:
            pass
    return _fallback_index(target, image_digest)


def attached(target: Any, image_digest: str, media_type: str, suffix: str) -> tuple[str, str] | None:
    """(artifact manifest digest, layer digest) of the image's artifact whose layer is of
    `media_type`: a referrer (API or fallback index), else cosign's sha256-<hex>.<suffix> tag."""
    from envbuild.errors import RegistryError
    from envbuild.oci import upload

    wanted = [d["digest"] for d in referrers(target, image_digest) if d.get("artifactType") == media_type]
    for reference in wanted or [f"{image_digest.replace(':', '-')}.{suffix}"]:
        try:
            _, body = upload.fetch_manifest(target, reference, MANIFEST_TYPE)
        except RegistryError:
            continue
        manifest = json.loads(body)
        if (manifest.get("subject") or {}).get("digest") not in (None, image_digest):
            raise Mismatch(f"artifact {reference} refers to {manifest['subject']['digest']}, not {image_digest}")
        for layer in manifest.get("layers") or []:
            if layer.get("mediaType") == media_type:
                return digest_of(body), layer["digest"]
    return None


def fetch(target: Any, image_digest: str) -> tuple[str, dict[str, Any]]:
    """(artifact manifest digest, envelope) of the image's provenance, fetched from the registry
    by the image digest."""
    from envbuild.oci import upload

    found = attached(target, image_digest, DSSE_TYPE, "att")
    if found is None:
        raise Mismatch(f"{target.name}@{image_digest} has no provenance attached (no referrer of type {DSSE_TYPE}, "
                       "no .att tag); run envbuild push with a signing key")
    return found[0], upload.fetch_json(target, found[1], Store.default())


def write_layout(dest: Path, att: Attested, image_manifest: bytes) -> None:
    """Add the SBOM and provenance artifacts to the OCI layout at `dest` (blobs and index.json)."""
    from envbuild.oci.layout import REF_ANNOTATION

    blobs = dest / "blobs" / "sha256"
    arts = artifacts(att, image_manifest)
    for data in [EMPTY_CONFIG] + [x for a in arts for x in (a.data, a.manifest)]:
        atomic_write_bytes(blobs / digest_of(data).split(":", 1)[1], data)
    index = json.loads((dest / "index.json").read_bytes())
    new = {digest_of(a.manifest) for a in arts}
    entries = [m for m in index.get("manifests", []) if m.get("digest") not in new]
    for a in arts:
        d = _descriptor(a)
        d["annotations"] = {REF_ANNOTATION: f"{att.image_digest.replace(':', '-')}.{a.kind}"}
        entries.append(d)
    index["manifests"] = entries
    atomic_write_bytes(dest / "index.json", canonical(index))


# --- verifying ------------------------------------------------------------------------------


def check(root: Path, image_digest: str, env: dict[str, Any], public_key: Any) -> dict[str, Any]:
    """Signature, subject, then every material against the committed lock; raise Mismatch naming
    the first that fails. Returns the statement."""
    from envbuild.lockfile import require_lock

    st = open_envelope(env, public_key)
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != SLSA_PROVENANCE:
        raise Mismatch(f"not an in-toto v1 SLSA provenance statement ({st.get('_type')}, {st.get('predicateType')})")
    subjects = [s.get("digest", {}).get("sha256") for s in st.get("subject") or []]
    if image_digest.split(":", 1)[1] not in subjects:
        raise Mismatch(f"the attestation's subject is {', '.join(f'sha256:{s}' for s in subjects)}, not {image_digest}")
    lock = require_lock(root)
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    by_name = {d.get("name"): d for d in deps}
    for want in lockfile_dependencies(root, lock):
        got = by_name.get(want["name"])
        if got is None:
            raise Mismatch(f"{want['name']} is committed but the attestation does not name it")
        if got["digest"] != want["digest"]:
            raise Mismatch(f"{want['name']}: the attestation names sha256 {got['digest'].get('sha256')}, the "
                           f"committed file has {want['digest']['sha256']}")
    base = by_name.get("base")
    if base is None or f"sha256:{base['digest'].get('sha256')}" != lock.base.digest:
        raise Mismatch(f"base: the attestation names {base and base['digest']}, envbuild.lock pins {lock.base.digest}")
    allowed = locked_hashes(root)
    for d in deps:
        uri = d.get("uri", "")
        if uri.startswith("pkg:"):
            sha = d.get("digest", {}).get("sha256")
            kind = uri[4:].split("/", 1)[0]
            if sha not in allowed.get(kind, set()):
                raise Mismatch(f"{d.get('name')} ({uri}): sha256 {sha} is not in the committed lock")
    return st


def locked_hashes(root: Path) -> dict[str, set[str]]:
    """Every sha256 the committed lock files allow, per purl type."""
    from envbuild.debs import read_system_lock
    from envbuild.lockfile import SYSTEM_PACKAGES_LOCK, read_conda_lock, read_pip_lock

    out: dict[str, set[str]] = {"pypi": set(), "conda": set(), "deb": set()}
    out["pypi"] |= {h.split(":", 1)[-1] for p in read_pip_lock(root) for h in p.hashes}
    for c in read_conda_lock(root):
        (out["pypi"] if c.manager == "pip" else out["conda"]).add(str(c.sha256))
    if (Path(root) / SYSTEM_PACKAGES_LOCK).is_file():
        out["deb"] |= {d.sha256 for p in read_system_lock(root).platforms.values() for d in p.packages}
    return out


def verify(root: Path, repo_digest: str, key: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Fetch the provenance of `repo@sha256:...` from its registry and check it; (artifact digest,
    statement), or Mismatch naming the first problem."""
    from envbuild.keys import default_public, load_public
    from envbuild.registry import parse_reference

    ref = parse_reference(repo_digest)
    if not ref.digest:
        raise EnvbuildError(f"{repo_digest}: give the image by digest (REPO@sha256:...)")
    public = load_public(key or default_public())
    artifact, env = fetch(ref, ref.digest)
    st = check(root, ref.digest, env, public)
    signed = [b["digest"]["sha256"] for b in st["predicate"]["runDetails"].get("byproducts") or []
              if b.get("mediaType") == SBOM_TYPE]
    sbom = attached(ref, ref.digest, SBOM_TYPE, "sbom")
    if signed and (sbom is None or sbom[1] != f"sha256:{signed[0]}"):
        raise Mismatch(f"the attached SBOM ({sbom and sbom[1]}) is not the one the provenance signs (sha256:{signed[0]})")
    return artifact, st
