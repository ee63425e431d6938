"""SBOM and provenance parts that need no engine: DSSE (the spec's test vector), keys, layer scanning."""

from __future__ import annotations

import base64
import io
import json
import stat
import tarfile
from pathlib import Path

import pytest

from envbuild import attest, keys, materials, sbom
from envbuild.record import validate
from tests.helpers.records import record


def test_pae_and_signature_match_the_dsse_spec_test_vector() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    assert attest.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    # protocol.md's vector: ECDSA P-256/SHA-256, the signature as raw r || s
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert keys.verifies(public, der, attest.pae("http://example.com/HelloWorld", b"hello world"))
    assert not keys.verifies(public, der, attest.pae("http://example.com/HelloWorld", b"hello world!"))


def test_envelope_round_trip_and_what_breaks_it(tmp_path: Path) -> None:
    pair = keys.generate(tmp_path / "k")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    with pytest.raises(Exception, match="exists"):
        keys.generate(tmp_path / "k")
    private = keys.load_private(pair.private)
    body = json.dumps({"_type": attest.STATEMENT_TYPE, "subject": []}).encode()
    env = attest.envelope(body, private, keys.key_id(pair.public.read_bytes()))
    public = keys.load_public(pair.public)
    assert attest.open_envelope(env, public)["_type"] == attest.STATEMENT_TYPE
    urlsafe = dict(env, signatures=[{"sig": env["signatures"][0]["sig"].replace("+", "-").replace("/", "_")}])
    assert attest.open_envelope(urlsafe, public)  # DSSE: verifiers accept either base64 alphabet

    tampered = dict(env, payload=base64.b64encode(body.replace(b"subject", b"subjecT")).decode())
    with pytest.raises(attest.Mismatch, match="signature does not verify"):
        attest.open_envelope(tampered, public)
    other = keys.load_public(keys.generate(tmp_path / "other").public)
    with pytest.raises(attest.Mismatch, match="signature does not verify"):
        attest.open_envelope(env, other)
    retyped = dict(env, payloadType="application/json")  # the type is signed too (PAE)
    with pytest.raises(attest.Mismatch, match="signature does not verify"):
        attest.open_envelope(retyped, public)


def _layer(files: dict[str, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    buf.seek(0)
    return buf


STATUS = (b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2\n\n"
          b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n")


def test_layers_merge_with_whiteouts_and_conda_owns_its_dist_info() -> None:
    meta = json.dumps({"name": "pip", "version": "24.0", "build": "py_0", "sha256": "a" * 64,
                       "files": ["lib/python3.11/site-packages/pip-24.0.dist-info/METADATA"]}).encode()
    bottom = _layer({"var/lib/dpkg/status": STATUS,
                     "usr/lib/python3/dist-packages/deb_only-1.dist-info/METADATA": b"Name: deb-only\nVersion: 1\n",
                     "opt/venv/lib/python3.11/site-packages/Old_Pkg-1.0.dist-info/METADATA": b"Name: Old_Pkg\nVersion: 1.0\n",
                     "opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA": b"Name: six\nVersion: 1.16.0\n"})
    top = _layer({"opt/venv/lib/python3.11/site-packages/.wh.Old_Pkg-1.0.dist-info": None,
                  "opt/conda/conda-meta/pip-24.0-py_0.json": meta,
                  "opt/conda/lib/python3.11/site-packages/pip-24.0.dist-info/METADATA": b"Name: pip\nVersion: 24.0\n"})
    found = {(p.kind, p.name, p.version) for p in materials.packages(materials.merged_files([bottom, top]))}
    assert found == {("deb", "bash", "5.2"), ("pypi", "six", "1.16.0"), ("conda", "pip", "24.0")}


def test_sbom_validates_marks_the_base_and_lists_a_locked_upgrade_once() -> None:
    locked = [materials.Material("deb", "bash", "5.3", "bash_5.3_amd64.deb", "b" * 64, {"arch": "amd64"}),
              materials.Material("pypi", "six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", "c" * 64)]
    base = [materials.Package("deb", "bash", "5.2", "var/lib/dpkg/status", {"arch": "amd64"}),
            materials.Package("deb", "tar", "1.34", "var/lib/dpkg/status", {"arch": "amd64"})]
    doc = json.loads(sbom.document("envbuild/demo:0123", "sha256:" + "d" * 64, 0, locked, base,
                                   "reg/base@sha256:" + "e" * 64, "sha256:" + "e" * 64))
    assert sbom.listed(doc) == {("deb", "bash", "5.3"), ("deb", "tar", "1.34"), ("pypi", "six", "1.16.0")}
    tar = next(c for c in doc["components"] if c["name"] == "tar")
    assert {p["name"]: p["value"] for p in tar["properties"]} == {"envbuild:source": "base",
                                                                 "envbuild:base-digest": "sha256:" + "e" * 64}
    six = next(c for c in doc["components"] if c["name"] == "six")
    assert six["purl"] == "pkg:pypi/six@1.16.0" and six["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
    with pytest.raises(Exception, match="does not validate.*components/0: .type. is a required property"):
        sbom.validate(json.dumps({**doc, "components": [{"name": "x"}]}))


def test_record_schema_takes_the_provenance_digest_and_old_records_stay_valid() -> None:
    r = record()
    validate(r)  # no provenance field: an old record
    r["image"]["provenance"] = "sha256:" + "f" * 64
    validate(r)
