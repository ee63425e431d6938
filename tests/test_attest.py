"""SBOM and signed provenance through the real engine and the loopback registry.

One project with all three ecosystems (a conda environment with a pip entry, a requirements.lock,
a .deb from system-packages) is built once; the SBOM is compared with what the image's own layers
hold (read from `docker save`, not from the lock), and the provenance is fetched back from the
registry by the image digest and verified, then broken four ways.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from envbuild import attest
from envbuild.registry import parse_reference
from tests.conftest import BASE_IMAGE, REGISTRY, REPO_ROOT, run_cli
from tests.helpers.projects import make_build_channel, write, write_conda_project

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built(base_image: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("attest")
    make_build_channel(tmp / "channel")
    proj = write_conda_project(tmp / "proj", tmp / "channel", f"ebt-sbom-{uuid.uuid4().hex[:8]}", BASE_IMAGE,
                               'system-packages = ["jq"]\n')
    write(proj / "requirements.in", "idna==3.7\n")
    write(proj / "train.py", "import idna\nprint('ok')\n")
    env = {"ENVBUILD_CACHE_DIR": str(tmp / "cache"), "ENVBUILD_KEYS_DIR": str(tmp / "keys")}
    for args in (["lock"], ["keys", "generate"]):
        r = run_cli(*args, cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
    r = run_cli("build", "--json", "--oci", str(tmp / "oci"), cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    yield proj, env, out, tmp
    subprocess.run(["docker", "rmi", out["ref"]], capture_output=True, timeout=300)


# --- an independent reader of the image's layers -----------------------------------------------


def _image_files(ref: str, tmp: Path) -> dict[str, bytes]:
    """Package metadata in the image's merged filesystem, from `docker save` (whiteouts applied)."""
    archive = tmp / "saved.tar"
    subprocess.run(["docker", "save", "-o", str(archive), ref], check=True, timeout=300)
    keep = re.compile(r"(var/lib/dpkg/status|.*\.dist-info/METADATA|.*/conda-meta/[^/]+\.json)$")
    files: dict[str, bytes] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                for m in layer.getmembers():
                    name = m.name.lstrip("./")
                    head, _, leaf = name.rpartition("/")
                    if leaf.startswith(".wh."):
                        gone = f"{head}/{leaf[4:]}".lstrip("/")
                        files = {k: v for k, v in files.items() if not (k == gone or k.startswith(gone + "/"))}
                    elif m.isfile() and keep.match(name):
                        files[name] = layer.extractfile(m).read()
    return files


def _in_image(files: dict[str, bytes]) -> set[tuple[str, str, str]]:
    found, conda_files = set(), set()
    for para in files.get("var/lib/dpkg/status", b"").decode().split("\n\n"):
        f = dict(line.split(": ", 1) for line in para.splitlines() if ": " in line and not line.startswith(" "))
        if f.get("Status") == "install ok installed":
            found.add(("deb", f["Package"], f["Version"]))
    for path, data in files.items():
        if "/conda-meta/" in path:
            meta = json.loads(data)
            found.add(("conda", meta["name"], meta["version"]))
            conda_files |= {path.split("conda-meta/")[0] + f for f in meta.get("files", [])}
    for path, data in files.items():
        if path.endswith("METADATA") and path not in conda_files and not path.startswith("usr/lib/python3"):
            head = dict(line.split(": ", 1) for line in data.decode().splitlines() if ": " in line)
            found.add(("pypi", head["Name"].lower(), head["Version"]))
    return found


# --- the tests ------------------------------------------------------------------------------------


def test_sbom_validates_and_lists_exactly_what_the_image_layers_hold(built) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from envbuild.sbom import listed

    proj, _, out, tmp = built
    text = Path(out["sbom"]).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    in_image = _in_image(_image_files(out["ref"], tmp))
    assert {("deb", "jq", "1.6-2.1+deb12u2"), ("conda", "greetlib", "2.0"), ("pypi", "six", "1.16.0"),
            ("pypi", "idna", "3.7"), ("deb", "bash", next(v for k, n, v in in_image if n == "bash"))} <= in_image
    assert listed(doc) == in_image
    by_name = {c["name"]: c for c in doc["components"]}
    source = lambda c: {p["name"]: p["value"] for p in c["properties"]}  # noqa: E731
    assert source(by_name["bash"])["envbuild:base-digest"].startswith("sha256:")
    assert source(by_name["jq"])["envbuild:source"] == "lock" and by_name["jq"]["hashes"][0]["alg"] == "SHA-256"
    assert doc["metadata"]["component"]["version"] == out["digest"]


def test_oci_layout_holds_the_artifacts_that_refer_to_the_image(built) -> None:
    _, _, out, tmp = built
    index = json.loads((tmp / "oci" / "index.json").read_text())
    kinds = {}
    for m in index["manifests"]:
        manifest = json.loads((tmp / "oci" / "blobs" / "sha256" / m["digest"][7:]).read_text())
        if "subject" in manifest:
            assert manifest["subject"]["digest"] == out["digest"]
            kinds[m["artifactType"]] = manifest
    assert set(kinds) == {"application/vnd.cyclonedx+json", attest.DSSE_TYPE}


def test_a_noop_build_writes_a_lost_sbom_again_byte_for_byte(built) -> None:
    proj, env, out, _ = built
    sbom = Path(out["sbom"])
    first = sbom.read_bytes()
    sbom.unlink()
    r = run_cli("build", "--json", cwd=proj, env=env)  # up to date: the image is not written again
    assert r.returncode == 0 and json.loads(r.stdout)["up_to_date"], r.stderr
    assert sbom.read_bytes() == first  # a pure function of the image


def test_provenance_is_fetched_back_by_digest_and_verified_then_broken_four_ways(built) -> None:
    proj, env, out, tmp = built
    repo = f"{REGISTRY}/envbuild-sbom-test/{uuid.uuid4().hex[:8]}"
    r = run_cli("push", repo, "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)
    assert pushed["digest"] == out["digest"] and set(pushed["attached"]) == {"sbom", "att"}

    target = parse_reference(pushed["repo_digest"])
    artifact, envelope = attest.fetch(target, out["digest"])  # by the image digest alone
    assert artifact == pushed["attached"]["att"] and envelope == json.loads(Path(out["provenance"]).read_text())
    statement = json.loads(attest._b64(envelope["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    names = {d["name"] for d in deps}
    assert {"envbuild.lock", "requirements.lock", "conda-lock.yml", "system-packages.lock", "base"} <= names
    assert any(d["uri"].startswith("pkg:deb/debian/jq@") for d in deps)
    assert statement["subject"][0]["digest"]["sha256"] == out["digest"][7:]
    tags = {"sha256-" + out["digest"][7:] + s for s in ("", ".att", ".sbom")}  # fallback index and cosign's tags
    from envbuild.oci import upload
    for tag in tags:
        upload.fetch_manifest(target, tag, "application/vnd.oci.image.index.v1+json, "
                                           "application/vnd.oci.image.manifest.v1+json")

    ok = run_cli("verify", "--provenance", "--json", cwd=proj, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["checks"][-1]["name"] == "provenance"

    # a wrong key
    other = run_cli("keys", "generate", "--json", env={**env, "ENVBUILD_KEYS_DIR": str(tmp / "other")})
    wrong = run_cli("verify", "--provenance", "--key", json.loads(other.stdout)["public"], cwd=proj, env=env)
    assert wrong.returncode == 1 and "signature does not verify" in wrong.stdout, wrong.stdout

    # a tampered attestation in the registry: the payload changed, the signature kept
    att_path = Path(out["provenance"])
    original = att_path.read_bytes()
    body = attest._b64(envelope["payload"]).replace(b'"lockHash":"', b'"lockHash":"0')
    att_path.write_text(json.dumps({**envelope, "payload": base64.b64encode(body).decode()}))
    attached = attest.Attested(out["digest"], Path(out["sbom"]), att_path)
    image_manifest = (tmp / "oci" / "blobs" / "sha256" / out["digest"][7:]).read_bytes()
    try:
        attest.push(target, attached, image_manifest)
        bad = run_cli("verify", "--provenance", cwd=proj, env=env)
        assert bad.returncode == 1 and "signature does not verify" in bad.stdout, bad.stdout
    finally:
        att_path.write_bytes(original)
        attest.push(target, attached, image_manifest)

    # a swapped SBOM: the provenance signs the SBOM's digest (a byproduct)
    other_sbom = tmp / "other.cdx.json"
    other_sbom.write_bytes(Path(out["sbom"]).read_bytes().replace(b'"1.16.0"', b'"1.17.0"'))
    try:
        attest.push(target, attest.Attested(out["digest"], other_sbom, att_path), image_manifest)
        swapped = run_cli("verify", "--provenance", cwd=proj, env=env)
        assert swapped.returncode == 1 and "is not the one the provenance signs" in swapped.stdout, swapped.stdout
    finally:
        attest.push(target, attached, image_manifest)

    # a changed lock: the attestation still names the old requirements.lock
    copy = tmp / "changed"
    shutil.copytree(proj, copy)
    with open(copy / "requirements.lock", "a") as f:
        f.write("# changed\n")
    changed = run_cli("verify", "--provenance", "--image", pushed["repo_digest"], cwd=copy, env=env)
    assert changed.returncode == 1, changed.stdout
    assert "requirements.lock: the attestation names sha256" in changed.stdout, changed.stdout


def test_run_record_names_the_provenance_digest(built) -> None:
    from envbuild.oci.blobs import digest_of
    from envbuild.record import validate

    proj, env, out, _ = built
    r = run_cli("run", "--json", "train.py", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    validate(record)
    assert record["image"]["digest"] == out["digest"]
    assert record["image"]["provenance"] == digest_of(Path(out["provenance"]).read_bytes())


def test_the_numpy_example_sbom_matches_its_image(base_image: str, tmp_path: Path) -> None:
    from envbuild.sbom import listed

    root = Path(shutil.copytree(REPO_ROOT / "examples" / "numpy-linreg", tmp_path / "numpy",
                                ignore=shutil.ignore_patterns("outputs", ".envbuild")))
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache"), "ENVBUILD_KEYS_DIR": str(tmp_path / "keys")}
    assert run_cli("lock", cwd=root, env=env).returncode == 0
    r = run_cli("build", "--json", cwd=root, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    try:
        assert out["provenance"] is None  # no key: an SBOM only, and the build says how to get one
        assert "envbuild keys generate" in r.stderr
        in_image = _in_image(_image_files(out["ref"], tmp_path))
        assert any(k == "pypi" and n == "numpy" for k, n, _ in in_image)
        assert listed(json.loads(Path(out["sbom"]).read_text())) == in_image
    finally:
        subprocess.run(["docker", "rmi", out["ref"]], capture_output=True, timeout=300)
