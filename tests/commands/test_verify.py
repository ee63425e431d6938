"""`envbuild verify` through real runs: the one check for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.test_reproduce import envbuild, train  # proj: conftest

pytestmark = pytest.mark.docker


def test_verify_for_ci(proj: Path):
    orig = train(proj)
    out = json.loads(envbuild(proj, "verify", "--reproduce", orig["id"], "--json").stdout)
    assert out["ok"] and [c["name"] for c in out["checks"]] == ["lock", "image", "reproduce"]
    lock = proj / "requirements.lock"
    lock.write_text(lock.read_text() + "\n# edited by hand\n")
    proc = envbuild(proj, "verify", expect=1)
    assert "✗ lock" in proc.stdout and "requirements.lock" in proc.stdout
