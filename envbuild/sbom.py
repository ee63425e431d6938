"""The image's SBOM: CycloneDX 1.6 JSON, made and validated with cyclonedx-python-lib.

Every pip, conda and Debian package in the image is a component with its version and purl:
- the locked ones (requirements.lock, conda-lock.yml, system-packages.lock) with the SHA-256 of the
  very file installed (conda: MD5 too), property `envbuild:source` = `lock`;
- the base's own (envbuild/materials.py reads its dpkg status, dist-info and conda-meta from its
  layers), property `envbuild:source` = `base` and `envbuild:base-digest` = the base's digest. Their
  hashes are what their metadata records: conda-meta carries the archive's; dpkg status and
  dist-info record none, so those components carry none.
A locked .deb that replaces a base one (an upgrade) is listed once, as locked.

The document is a pure function of the image: serial number from the manifest digest, timestamp
from the lock's epoch, components sorted, so one image has one SBOM digest.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from envbuild import __version__
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.materials import Material, Package

SOURCE, BASE_DIGEST = "envbuild:source", "envbuild:base-digest"


def purl(kind: str, name: str, version: str, extra: dict[str, str]) -> str:
    from packageurl import PackageURL

    if kind == "pypi":
        return PackageURL("pypi", name=name, version=version).to_string()
    if kind == "conda":
        q = {k: v for k, v in (("build", extra.get("build")), ("channel", extra.get("channel")),
                               ("subdir", extra.get("subdir"))) if v}
        return PackageURL("conda", name=name, version=version, qualifiers=q).to_string()
    q = {"arch": extra["arch"]} if extra.get("arch") else {}
    return PackageURL("deb", "debian", name, version, q).to_string()


def _component(kind: str, name: str, version: str, extra: dict[str, str], hashes: dict[str, str],
               props: dict[str, str]) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component
    from packageurl import PackageURL

    algs = {"sha256": HashAlgorithm.SHA_256, "md5": HashAlgorithm.MD5}
    p = purl(kind, name, version, extra)
    return Component(name=name, version=version, purl=PackageURL.from_string(p), bom_ref=p,
                     hashes=[HashType(alg=algs[k], content=v) for k, v in sorted(hashes.items()) if v],
                     properties=[Property(name=k, value=v) for k, v in sorted(props.items())])


def components(materials: list[Material], base: list[Package], base_digest: str) -> list[Any]:
    locked_debs = {m.name for m in materials if m.kind == "deb"}
    out = {}
    for m in materials:
        hashes = {"sha256": m.sha256, "md5": m.extra.get("md5", "")}
        c = _component(m.kind, m.name, m.version, m.extra, hashes, {SOURCE: "lock", "envbuild:file": m.filename})
        out[str(c.bom_ref)] = c
    for p in base:
        if p.kind == "deb" and p.name in locked_debs:
            continue
        hashes = {"sha256": p.extra.get("sha256", ""), "md5": p.extra.get("md5", "")} if p.kind == "conda" else {}
        c = _component(p.kind, p.name, p.version, p.extra, hashes, {SOURCE: "base", BASE_DIGEST: base_digest})
        out.setdefault(str(c.bom_ref), c)
    return [out[k] for k in sorted(out)]


def document(image_name: str, manifest_digest: str, epoch: int, materials: list[Material], base: list[Package],
             base_ref: str, base_digest: str) -> bytes:
    """The SBOM's bytes (CycloneDX 1.6 JSON), validated against the CycloneDX schema."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    repo, _, tag = image_name.rpartition(":")
    image_purl = PackageURL("oci", name=repo.rsplit("/", 1)[-1], version=manifest_digest,
                            qualifiers={"tag": tag} if tag else {}).to_string()
    image = Component(name=repo or image_name, version=manifest_digest, type=ComponentType.CONTAINER,
                      purl=PackageURL.from_string(image_purl), bom_ref=image_purl,
                      properties=[Property(name="envbuild:base", value=base_ref),
                                  Property(name=BASE_DIGEST, value=base_digest)])
    meta = BomMetaData(component=image, timestamp=datetime.fromtimestamp(epoch, timezone.utc),
                       tools=ToolRepository(components=[Component(name="envbuild", version=__version__,
                                                                              type=ComponentType.APPLICATION)]))
    bom = Bom(components=components(materials, base, base_digest), metadata=meta,
              serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"envbuild:{manifest_digest}"))
    bom.register_dependency(image, bom.components)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    validate(text)
    return (text + "\n").encode()


def validate(text: str) -> None:
    """Refuse (exit 1) a document the CycloneDX 1.6 JSON schema rejects."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        detail = getattr(error.data, "message", None) or str(error).splitlines()[0]
        where = "/".join(str(p) for p in getattr(error.data, "absolute_path", [])) or "(top level)"
        raise EnvbuildError(f"the SBOM does not validate against CycloneDX 1.6: {where}: {detail}", EXIT_FAILURE)


def listed(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(kind, name, version) of every package component of a parsed SBOM."""
    from packageurl import PackageURL

    out = set()
    for c in doc.get("components") or []:
        p = PackageURL.from_string(c["purl"])
        out.add(({"deb": "deb", "conda": "conda", "pypi": "pypi"}[p.type], c["name"], c["version"]))
    return out
