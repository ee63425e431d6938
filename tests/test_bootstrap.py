"""envbuild base bootstrap: references, cache keys, the reproducible tar, and real bootstraps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from envbuild import bootstrap as bs
from envbuild.errors import EnvbuildError
from envbuild.registry import manifest_digest, parse_reference

from tests.conftest import REGISTRY

PINNED = re.compile(r"^127\.0\.0\.1:5000/[a-z0-9/_.-]+@sha256:[0-9a-f]{64}$")


def test_target_reference() -> None:
    assert bs.target_reference(None) == "127.0.0.1:5000/envbuild/base:bookworm"  # what `make base` pushes
    assert bs.target_reference(None, "trixie") == "127.0.0.1:5000/envbuild/base:trixie"
    assert bs.target_reference("127.0.0.1:5000/x/base") == "127.0.0.1:5000/x/base:bookworm"
    assert bs.target_reference("localhost:5000/b:v1") == "localhost:5000/b:v1"
    with pytest.raises(EnvbuildError, match="a digest cannot be pushed to"):
        bs.target_reference("127.0.0.1:5000/b@sha256:" + "0" * 64)
    with pytest.raises(EnvbuildError, match="not a valid image reference"):
        bs.target_reference("127.0.0.1:5000/Base:x")


MIRROR = "http://mirror.example/debian"  # a made-up name: nothing is fetched


def test_host_mirror_from_deb822_then_one_line(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# nothing\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm main\n")
    assert bs.host_mirror(tmp_path) == "http://one.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://site.example/debian\nSuites: bookworm bookworm-updates\n")
    assert bs.host_mirror(tmp_path) == "http://site.example/debian"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EnvbuildError, match="no Debian mirror configured.*--mirror URL"):
        bs.host_mirror(empty)


def test_packages_and_cache_key() -> None:
    assert bs.packages() == ("ca-certificates", "python3", "python3-venv")
    assert bs.packages(["git,curl", "git"]) == ("ca-certificates", "curl", "git", "python3", "python3-venv")
    key = bs.rootfs_key("bookworm", bs.packages(["git"]), MIRROR, "amd64")
    assert key.startswith("bookworm-amd64-")
    assert key == bs.rootfs_key("bookworm", tuple(reversed(bs.packages(["git"]))), MIRROR + "/", "amd64")
    assert key != bs.rootfs_key("bookworm", bs.packages(), MIRROR, "amd64")
    assert key != bs.rootfs_key("trixie", bs.packages(["git"]), MIRROR, "amd64")
    assert key != bs.rootfs_key("bookworm", bs.packages(["git"]), "http://mirror.local/debian", "amd64")


def test_needs_root_and_debootstrap(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bs.shutil, "which", lambda name: None)
    with pytest.raises(EnvbuildError, match="debootstrap not found; install it"):
        bs.rootfs_tarball("bookworm", bs.packages(), MIRROR, print, print)
    monkeypatch.setattr(bs.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    monkeypatch.setattr(bs.os, "geteuid", lambda: 1000)
    with pytest.raises(EnvbuildError, match="debootstrap needs root"):
        bs.rootfs_tarball("bookworm", bs.packages(), MIRROR, print, print)


def test_cached_rootfs_needs_neither(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bs.shutil, "which", lambda name: None)
    key = bs.rootfs_key("bookworm", bs.packages(), MIRROR, bs.host_arch())
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / f"{key}.tar").write_bytes(b"")
    path, cached = bs.rootfs_tarball("bookworm", bs.packages(), MIRROR, print, print)
    assert cached and path.name == f"{key}.tar"


def test_pack_rootfs_is_sorted_numeric_and_repeatable(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "rootfs"
    for rel in ("usr/bin/b", "usr/bin/a", "etc/z", "etc/a", "dev/null-stand-in", "var/cache/apt/archives/x.deb"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    bs._slim(root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    bs.pack_rootfs(root, tmp_path / "one.tar")
    os.utime(root / "etc/a", (1800000000, 1800000000))  # newer than the epoch: clamped
    bs.pack_rootfs(root, tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    with tarfile.open(tmp_path / "one.tar") as t:
        names = t.getnames()
        assert names == sorted(names)
        assert "./dev" in names and "./dev/null-stand-in" not in names  # docker provides /dev
        assert "./var/cache/apt/archives/x.deb" not in names
        assert all(m.uname == "" and m.mtime <= 1700000000 for m in t.getmembers())


# --- through the real CLI, real registry and engine ----------------------------------------


def _delete_from_registry(ref: str) -> None:
    """Remove a test tag's manifest (the registry runs with delete enabled); best effort."""
    r = parse_reference(ref)
    digest = manifest_digest(ref)
    if digest:
        req = urllib.request.Request(f"http://{r.registry}/v2/{r.repository}/manifests/{digest}", method="DELETE")
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass


@pytest.mark.docker
def test_skips_when_the_tag_is_in_the_registry(base_image: str, cli) -> None:
    proc = cli("base", "bootstrap", "--push", base_image, "--quiet", env={"ENVBUILD_CACHE_DIR": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == f"{parse_reference(base_image).name}@{manifest_digest(base_image)}\n"
    assert PINNED.match(proc.stdout.strip())
    loud = cli("base", "bootstrap", "--push", base_image)
    assert "in the registry already; skipped" in loud.stderr and loud.stdout == proc.stdout


def test_unreachable_registry_is_exit_2(cli) -> None:
    proc = cli("base", "bootstrap", "--push", "127.0.0.1:9/envbuild/base:bookworm")
    assert proc.returncode == 2
    assert "registry 127.0.0.1:9 unreachable" in proc.stderr and "make docker-up" in proc.stderr


@pytest.mark.docker
def test_real_bootstrap_cached_second_time_and_runs_offline(docker_engine, tmp_path: Path, cli) -> None:
    ref = f"{REGISTRY}/envbuild-test/base-{uuid.uuid4().hex[:10]}:bookworm"
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    made: list[str] = []  # image ids this test created (each --force import makes a new one)

    def image_id() -> str:
        made.append(subprocess.run(["docker", "image", "inspect", ref, "--format", "{{.Id}}"],
                                   capture_output=True, text=True).stdout.strip())
        return made[-1]

    try:
        first = cli("base", "bootstrap", "--push", ref, env=env)
        assert first.returncode == 0, first.stderr
        assert "debootstrap bookworm" in first.stderr and "rootfs built and cached" in first.stderr
        image_id()
        pinned = first.stdout.strip()
        assert PINNED.match(pinned) and pinned == f"{ref.rsplit(':', 1)[0]}@{manifest_digest(ref)}"

        # the container runs python3 with no network at all
        run = subprocess.run(["docker", "run", "--rm", "--network", "none", pinned, "python3", "-c",
                              "import json, ssl, sys, venv; print(json.dumps(sys.version_info[:2]))"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [3, 11]

        # the second bootstrap takes the rootfs from the cache (no debootstrap)
        again = cli("base", "bootstrap", "--push", ref, "--force", "--quiet", env=env)
        assert again.returncode == 0, again.stderr
        assert again.stderr == "" and PINNED.match(again.stdout.strip())
        image_id()
        loud = cli("base", "bootstrap", "--push", ref, "--force", env=env)
        image_id()
        assert "rootfs from cache" in loud.stderr and "debootstrap" not in loud.stderr
        assert loud.stdout.strip() == f"{ref.rsplit(':', 1)[0]}@{manifest_digest(ref)}"
    finally:
        _delete_from_registry(ref)
        for i in filter(None, dict.fromkeys(made)):
            subprocess.run(["docker", "rmi", i], capture_output=True)


def test_the_base_says_its_python_in_a_label() -> None:
    from envbuild.basepython import LABEL, from_config
    from envbuild.oci.layer import Entry

    entries = [Entry("usr/bin/python3.11", "file", 0o755), Entry("usr/bin/python3", "symlink", linkname="python3.11"),
               Entry("usr/lib/python3.9", "dir", 0o755)]
    assert bs.python_label(entries) == {LABEL: "3.11"}
    assert from_config({"config": {"Labels": bs.python_label(entries)}}) == ["3.11"]  # lock needs no sandbox
    assert bs.python_label([Entry("usr/bin/perl", "file")]) == {}
