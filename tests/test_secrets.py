"""The secret scan: secret files are named, never copied; secret values are masked everywhere they go."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envbuild import provenance
from envbuild.secrets import MASK, Masker, is_secret_file

GHP = "ghp_" + "A1b2C3d4" * 5
HF = "hf_" + "x" * 34
AKIA = "AKIA" + "ABCDEFGHIJKLMNOP"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7+abc\nZm9vYmFy==\n-----END RSA PRIVATE KEY-----\n"


@pytest.mark.parametrize("name", [".env", "sub/.env", ".env.prod", "id_rsa", "id_ed25519", "server.pem", "tls.key",
                                  "credentials.json", "credentials-prod.json", ".netrc", ".git-credentials"])
def test_secret_file_names(name: str) -> None:
    assert is_secret_file(name)


@pytest.mark.parametrize("name", ["train.py", "id_rsa.pub", ".env.example", "keys.py", "environment.yml", "monkey.csv"])
def test_ordinary_file_names(name: str) -> None:
    assert not is_secret_file(name)


@pytest.mark.parametrize("text", [GHP, HF, AKIA, "glpat-" + "a" * 20, "xoxb-123456789012-abcdef",
                                  "API_TOKEN=s3cr3t-value", "export DB_PASSWORD='p a s s'", "aws_secret_access_key=zzz",
                                  '{"api_key": "abc"}'])
def test_values_masked(text: str) -> None:
    m = Masker()
    out = m.text(f"before {text} after", "stdout.log")
    assert out.startswith("before ") and out.endswith(" after") and MASK in out
    for secret in ("s3cr3t", "p a s s", "zzz", GHP, HF, AKIA, "abc\""):
        assert secret not in out.replace(MASK, "")
    assert m.section()["masked"] == {"stdout.log": 1}


def test_code_is_left_alone() -> None:
    code = "api_key = load_key()\nMONKEY = 3\nfor key in keys: print(key)\n"
    m = Masker()
    assert m.text(code, "code.diff") == code and m.section()["masked"] == {}


def test_pem_block_keeps_its_lines_so_a_diff_stays_a_patch() -> None:
    diff = "".join("+" + line + "\n" for line in PEM.splitlines())
    out = Masker().text(diff, "code.diff")
    assert "MIIE" not in out and "Zm9v" not in out
    assert out.count("\n") == diff.count("\n") and all(line.startswith("+") for line in out.splitlines())


def test_arguments_and_known_values() -> None:
    m = Masker(["hunter2-not-for-records", "1"])  # too short a value is not masked everywhere
    argv = m.argv(["python", "train.py", "--api-key", "k-123456", "--password=pw", "HF_TOKEN=x", "--lr", "1",
                   "--note", "hunter2-not-for-records"])
    assert argv == ["python", "train.py", "--api-key", MASK, f"--password={MASK}", f"HF_TOKEN={MASK}", "--lr", "1",
                    "--note", MASK]
    assert m.params({"api_key": "k", "lr": 0.1, "note": GHP}) == {"api_key": MASK, "lr": 0.1, "note": MASK}


def test_file_masked_in_place_line_by_line(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_text(f"step 1\ntoken {GHP}\n{PEM}done\n")
    m = Masker()
    m.file(log)
    text = log.read_text()
    assert GHP not in text and "MIIE" not in text and text.startswith("step 1\n") and text.endswith("done\n")
    assert m.section()["masked"] == {"stdout.log": 2}
    untouched = tmp_path / "clean.log"
    untouched.write_text("nothing here\n")
    before = untouched.stat().st_mtime_ns
    m.file(untouched)
    assert untouched.stat().st_mtime_ns == before and not list(tmp_path.glob(".*masking"))


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def test_code_diff_withholds_secret_files_and_masks_values(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print(1)\n")
    (repo / "config.pem").write_text("old\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "init")
    (repo / "train.py").write_text(f"print(2)\nTOKEN = '{GHP}'\n")
    (repo / "config.pem").write_text(PEM)  # tracked and changed: still withheld
    (repo / ".env").write_text("API_TOKEN=hunter2-env-file\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "credentials-prod.json").write_text('{"k": 1}\n')
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    m = Masker()
    info = provenance.git_info(repo, run_dir, masker=m)
    diff = (run_dir / "code.diff").read_text()
    assert "print(2)" in diff and GHP not in diff and "hunter2" not in diff and "BEGIN RSA" not in diff
    assert ".env" not in diff and "credentials-prod" not in diff and "config.pem" not in diff
    assert provenance.sha256_bytes(diff.encode()) == info["diff_sha256"]
    withheld = m.section()
    assert [f["path"] for f in withheld["files"]] == [".env", "config.pem", "sub/credentials-prod.json"]
    assert withheld["files"][0]["sha256"] == provenance.sha256_file(repo / ".env")
    assert withheld["masked"] == {"code.diff": 1}
    assert sorted(info["changed_files"]) == [".env", "config.pem", "sub/credentials-prod.json", "train.py"]


def test_a_reproduction_keeps_its_outputs_but_not_secret_files(tmp_path: Path) -> None:
    from envbuild import chain
    from envbuild.reproduce import adopt
    from tests.helpers.records import record, save

    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["six"]\n'
                                             '[tool.envbuild]\noutputs = ["outputs/"]\n')
    (worktree / "outputs").mkdir()
    (worktree / "outputs" / "model.bin").write_bytes(b"m")
    (worktree / "outputs" / ".env").write_text("A_TOKEN=from-the-run\n")
    new = record("20260101T000000Z-aaaaaa")
    dest = adopt(tmp_path / "proj", worktree, save(worktree, new), new, "20251231T000000Z-bbbbbb")
    assert (dest / "outputs" / "outputs" / "model.bin").read_bytes() == b"m"
    assert not (dest / "outputs" / "outputs" / ".env").exists()
    assert chain.verify(tmp_path / "proj").sealed == 1  # sealed into the project's own chain


def test_masking_a_large_log_is_linear_and_blocks_keep_keys_whole(tmp_path: Path) -> None:
    from envbuild.fsutil import CHUNK

    log = tmp_path / "stdout.log"
    line = b"epoch=1 step=2 loss=0.25 lr=0.001 " + b"a." * 30 + b"\n"
    with open(log, "wb") as f:
        f.write(line * (CHUNK // len(line)))  # the key block below straddles the first block boundary
        f.write(PEM.encode() + f"API_TOKEN=tok-123456\n{GHP}\n".encode() + line * 1000)
    m = Masker()
    m.file(log)
    text = log.read_bytes()
    assert b"MIIE" not in text and b"tok-123456" not in text and GHP.encode() not in text
    assert text.count(line) == CHUNK // len(line) + 1000
    assert m.section()["masked"] == {"stdout.log": 3}
