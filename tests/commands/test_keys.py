"""`envbuild keys generate` as a user runs it: keys stay out of projects."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import run_cli


def test_keys_generate_cli_keeps_keys_out_of_projects(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text("[tool.envbuild]\n")
    r = run_cli("keys", "generate", "--dir", str(proj))
    assert r.returncode == 2 and "looks like a project" in r.stderr and not (proj / "envbuild.key").exists()
    r = run_cli("keys", "generate", "--json", env={"ENVBUILD_KEYS_DIR": str(tmp_path / "keys")})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["private"]).parent == tmp_path / "keys" and out["keyid"].startswith("SHA256:")
    pub = Path(out["public"]).read_bytes()
    if shutil.which("ssh-keygen"):  # the id is the key's SSH fingerprint, as go-securesystemslib derives it
        from cryptography.hazmat.primitives import serialization

        ssh = serialization.load_pem_public_key(pub).public_bytes(serialization.Encoding.OpenSSH,
                                                                  serialization.PublicFormat.OpenSSH)
        (tmp_path / "k.pub").write_bytes(ssh + b"\n")
        shown = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True)
        assert out["keyid"] in shown.stdout, shown
