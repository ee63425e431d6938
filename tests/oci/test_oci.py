"""envbuild/oci: layers, gzip, config and manifest are functions of their inputs only."""

from __future__ import annotations

import gzip as stdgzip
import io
import json
import os
import tarfile
import time
from pathlib import Path

import pytest

from envbuild.errors import EnvbuildError
from envbuild.oci import gzip, layer
from envbuild.oci.blobs import Store, digest_of
from envbuild.oci.config import Blob, ImageConfig, manifest_bytes


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "oci")


def _compress(src: Path, threads: int) -> bytes:
    out = io.BytesIO()
    gzip.compress_file(src, out, threads=threads)
    return out.getvalue()


def test_gzip_bytes_do_not_depend_on_threads_and_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.write_bytes(os.urandom(1 << 20) + b"abc" * (3 * gzip.CHUNK // 3) + os.urandom(12345))
    one, two, four = (_compress(src, n) for n in (1, 2, 4))
    assert one == two == four
    assert stdgzip.decompress(one) == src.read_bytes()
    assert one[4:8] == b"\0\0\0\0"  # mtime 0 in the header
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert stdgzip.decompress(_compress(empty, 2)) == b""


def _tree(root: Path) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "tool").write_text("#!/bin/sh\n")
    (root / "pkg" / "sub" / "tool").chmod(0o700)
    (root / "pkg" / "link").symlink_to("sub/tool")


def test_same_tree_gives_the_same_layer_whatever_the_host_times_and_umask(tmp_path: Path, store: Store) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a)
    time.sleep(1.1)
    old = os.umask(0o077)
    try:
        _tree(b)
    finally:
        os.umask(old)
    la = layer.write(layer.tree_entries(a, "/opt/x"), store, 0, "a")
    lb = layer.write(layer.tree_entries(b, "/opt/x"), store, 0, "b")
    assert la.diff_id == lb.diff_id
    with tarfile.open(store.path(la.diff_id)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["opt", "opt/x", "opt/x/pkg", "opt/x/pkg/__init__.py", "opt/x/pkg/link", "opt/x/pkg/sub",
                     "opt/x/pkg/sub/tool"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    modes = {m.name: m.mode for m in members}
    assert modes["opt/x/pkg/sub/tool"] == 0o755 and modes["opt/x/pkg/__init__.py"] == 0o644
    assert all(not m.pax_headers for m in members)


def test_mtimes_are_clamped_to_the_epoch_and_litter_is_dropped(store: Store) -> None:
    entries = [layer.Entry("usr/bin/old", "file", 0o755, mtime=100, data=b"x", size=1),
               layer.Entry("usr/bin/new", "file", 0o755, mtime=2_000_000_000, data=b"y", size=1),
               layer.file_entry("var/log/dpkg.log", b"noise"), layer.file_entry("var/cache/ldconfig/aux-cache", b"n"),
               layer.dir_entry("var/log")]
    lay = layer.write(entries, store, 1000, "t")
    with tarfile.open(store.path(lay.diff_id)) as tar:
        got = {m.name: m.mtime for m in tar.getmembers()}
    assert got["usr/bin/old"] == 100 and got["usr/bin/new"] == 1000
    assert "var/log/dpkg.log" not in got and "var/cache/ldconfig/aux-cache" not in got and "var/log" in got


def test_two_different_files_for_one_path_are_refused(store: Store) -> None:
    with pytest.raises(EnvbuildError, match="two different entries"):
        layer.write([layer.file_entry("a", b"1"), layer.file_entry("a", b"2")], store, 0, "t")


def test_tar_entries_turn_hard_links_into_files_and_skip_devices(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./usr/bin/perl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"perl"))
        link = tarfile.TarInfo("./usr/bin/perl5.36")
        link.type, link.linkname = tarfile.LNKTYPE, "./usr/bin/perl"
        tar.addfile(link)
        dev = tarfile.TarInfo("./dev/null")
        dev.type = tarfile.CHRTYPE
        tar.addfile(dev)
    buf.seek(0)
    entries = {e.path: e for e in layer.tar_entries(buf)}
    assert entries["usr/bin/perl5.36"].data == b"perl" and entries["usr/bin/perl5.36"].kind == "file"
    assert "dev/null" not in entries


def test_config_and_manifest_are_canonical() -> None:
    base = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T10:00:00Z",
            "config": {"Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}, "history": [{"created_by": "base"}]}
    cfg = ImageConfig.from_base(base)
    cfg.env["X"] = "1"
    cfg.diff_ids.append("sha256:" + "b" * 64)
    data = cfg.to_bytes(0)
    doc = json.loads(data)
    assert doc["created"] == "1970-01-01T00:00:00Z" and doc["config"]["Cmd"] == ["python3"]
    assert doc["rootfs"]["diff_ids"][-1] == "sha256:" + "b" * 64
    assert data == ImageConfig.from_base(json.loads(data)).to_bytes(0)  # a fixed point
    config = Blob("application/vnd.oci.image.config.v1+json", digest_of(data), len(data))
    m = manifest_bytes(config, [Blob("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "c" * 64, 5)])
    assert b" " not in m and json.loads(m)["config"]["digest"] == digest_of(data)


def test_blob_store_refuses_a_changed_blob_and_compresses_once(store: Store, tmp_path: Path) -> None:
    lay = layer.write([layer.file_entry("a", b"1" * 100000)], store, 0, "t")
    first = store.compressed(lay.diff_id)
    assert store.compressed(lay.diff_id) == first
    assert stdgzip.decompress(store.path(first[0]).read_bytes()) == store.path(lay.diff_id).read_bytes()
    store.path(lay.diff_id).write_bytes(b"changed")
    with pytest.raises(EnvbuildError, match="corrupt blob was removed"):
        store.verified(lay.diff_id)
    assert not store.has(lay.diff_id)
