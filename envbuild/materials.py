"""What an image is made of: every locked file it installs (by sha256), and the base's own packages.

Two sources, kept apart because they are trusted differently:

- the *locked* files, taken from what the build fetched and verified (wheels, conda packages and
  .debs: the ingredients' fetch results), recorded in the image's description by envbuild/assemble.py;
- the *base's* packages, read from the base image's layer tars (dpkg status, `*.dist-info/METADATA`,
  `conda-meta/*.json`), with whiteouts applied, so no container runs. A base never changes under its
  digest, so what is read is cached per base config digest.

The SBOM (envbuild/sbom.py) lists both; the provenance (envbuild/attest.py) names the locked files.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from dataclasses import asdict, dataclass, field
from email.parser import HeaderParser
from typing import IO, Any, Iterable

DPKG_STATUS = "var/lib/dpkg/status"
# Debian's own Python modules carry dist-info too; dpkg status lists them already, as .debs.
DEBIAN_PYTHON = re.compile(r"^usr/(lib|share)/python3")


@dataclass(frozen=True)
class Material:
    """One file the build installed, as the lock pinned it."""

    kind: str  # "pypi" | "conda" | "deb"
    name: str
    version: str
    filename: str
    sha256: str  # hex
    extra: dict[str, str] = field(default_factory=dict)  # conda: build, channel, subdir, md5; deb: arch; url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Material":
        return cls(d["kind"], d["name"], d["version"], d["filename"], d["sha256"], dict(d.get("extra") or {}))


@dataclass(frozen=True)
class Package:
    """One package found in an image's filesystem."""

    kind: str  # "pypi" | "conda" | "deb"
    name: str
    version: str
    path: str  # where its metadata lives, e.g. opt/conda/conda-meta/six-1.16.0-py_0.json
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the locked files, from what the build fetched ------------------------------------------


def of_fetched(fetched: Iterable[Any]) -> list[Material]:
    """Materials of the ingredients' fetch results (Wheelhouse, CondaSet, DebSet), sorted."""
    from envbuild.condapkgs import CondaSet
    from envbuild.debs import DebSet
    from envbuild.provenance import strip_credentials as clean  # a private channel's token stays out
    from envbuild.wheelhouse import Wheelhouse

    out: list[Material] = []

    def wheels(house: Wheelhouse | None) -> None:
        for w in house.wheels if house else []:
            out.append(Material("pypi", w.pin.name, w.pin.version, w.filename, w.sha256))

    for f in fetched:
        if isinstance(f, Wheelhouse):
            wheels(f)
        elif isinstance(f, CondaSet):
            for c in f.files:
                p = c.package
                extra = {"build": p.build or "", "subdir": p.platform, "url": clean(p.url), "md5": p.md5 or "",
                         "channel": clean(p.url.rsplit("/", 2)[0])}
                out.append(Material("conda", p.name, p.version, c.path.name, str(p.sha256), extra))
            wheels(f.wheels)
        elif isinstance(f, DebSet):
            for d, _path in f.files:
                out.append(Material("deb", d.name, d.version, d.filename, d.sha256,
                                    {"arch": d.architecture, "url": clean(d.url)}))
    return sorted(out, key=lambda m: (m.kind, m.name, m.version, m.sha256))


# --- packages in layer tars ----------------------------------------------------------------


def _wanted(path: str) -> bool:
    if path == DPKG_STATUS:
        return True
    if path.endswith(".dist-info/METADATA"):
        return not DEBIAN_PYTHON.match(path)
    parent, _, name = path.rpartition("/")
    return parent.endswith("conda-meta") and name.endswith(".json")


def merged_files(layers: Iterable[IO[bytes]]) -> dict[str, bytes]:
    """The package metadata files of the filesystem the layers (uncompressed tar streams, bottom
    first) stack into: a later layer's file replaces an earlier one, whiteouts delete."""
    files: dict[str, bytes] = {}
    for stream in layers:
        earlier = set(files)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                path = m.name.removeprefix("./").rstrip("/")
                parent, _, base = path.rpartition("/")
                if base == ".wh..wh..opq":  # opaque directory: nothing below it from earlier layers
                    for k in [k for k in earlier if k.startswith(parent + "/")]:
                        files.pop(k, None)
                elif base.startswith(".wh."):
                    gone = f"{parent}/{base[4:]}" if parent else base[4:]
                    for k in [k for k in files if k == gone or k.startswith(gone + "/")]:
                        del files[k]
                elif m.isreg() and _wanted(path):
                    f = tar.extractfile(m)
                    files[path] = f.read() if f else b""
                elif path in files:  # replaced by a link or directory
                    del files[path]
    return files


def _dpkg(text: str) -> list[Package]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if line and not line[0].isspace() and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            out.append(Package("deb", fields["Package"], fields.get("Version", ""), DPKG_STATUS,
                               {"arch": fields.get("Architecture", "")}))
    return out


def packages(files: dict[str, bytes]) -> list[Package]:
    """Every installed package the metadata files name; a dist-info a conda package owns is that
    conda package, not a pip one."""
    from envbuild.wheelhouse import canonical

    out: list[Package] = []
    owned: set[str] = set()
    if DPKG_STATUS in files:
        out += _dpkg(files[DPKG_STATUS].decode("utf-8", "replace"))
    for path, data in files.items():
        if "/conda-meta/" in f"/{path}" and path.endswith(".json"):
            try:
                meta = json.loads(data)
            except ValueError:
                continue
            if not isinstance(meta, dict) or not meta.get("name"):
                continue
            prefix = path.rsplit("conda-meta/", 1)[0]
            owned.update(prefix + f for f in meta.get("files") or [] if isinstance(f, str))
            extra = {k: str(meta.get(k) or "") for k in ("build", "subdir", "channel", "sha256", "md5")}
            out.append(Package("conda", meta["name"], str(meta.get("version", "")), path, extra))
    for path, data in files.items():
        if path.endswith(".dist-info/METADATA") and path not in owned:
            head = HeaderParser().parsestr(data.decode("utf-8", "replace"))
            if head.get("Name"):
                out.append(Package("pypi", canonical(head["Name"]), str(head.get("Version", "")), path))
    return sorted(out, key=lambda p: (p.kind, p.name, p.version, p.path))


# --- the base ------------------------------------------------------------------------------


def base_packages(base: Any, store: Any) -> list[Package]:
    """The packages in a base image (assemble.BaseImage), read from its gzip layers; cached."""
    from envbuild.fsutil import atomic_write_json
    from envbuild.oci.upload import fetch_blob

    cache = store.root / "base-packages" / f"{base.config_digest.split(':', 1)[1]}.json"
    try:
        return [Package(**p) for p in json.loads(cache.read_text())]
    except (OSError, ValueError, TypeError):
        pass

    def streams():
        for blob in base.layers:
            fetch_blob(base.ref, blob.digest, store)
            with gzip.open(store.verified(blob.digest)) as raw:
                yield raw

    found = packages(merged_files(streams()))
    atomic_write_json(cache, [p.to_dict() for p in found])
    return found
