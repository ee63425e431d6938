"""`envbuild trace` through real runs: a copied output finds its run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.commands.test_reproduce import envbuild, train  # proj: conftest

pytestmark = pytest.mark.docker


def test_trace_finds_the_run_from_a_copy_anywhere(proj: Path, tmp_path: Path):
    orig = train(proj)
    copy = tmp_path / "elsewhere" / "renamed-model.bin"
    copy.parent.mkdir()
    shutil.copy(proj / "outputs" / "model.json", copy)
    out = json.loads(envbuild(tmp_path, "trace", str(copy), "--project", str(proj), "--json").stdout)
    made = out["made_by"]
    assert made["run"] == orig["id"] and made["path"] == "outputs/model.json"
    assert made["ingredients"]["code"]["commit"] == orig["code"]["commit"]
    assert made["ingredients"]["lock_hash"] == orig["lock"]["lock_hash"]
    assert made["reproduce"] == f"envbuild reproduce {orig['id']} --project {proj.resolve()}"
    text = envbuild(proj, "trace", str(copy)).stdout
    assert orig["id"] in text and f"envbuild reproduce {orig['id']}" in text
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"not made by any run")
    proc = envbuild(proj, "trace", str(stranger), expect=1)
    assert "no run of" in proc.stderr and str(stranger) in proc.stderr
