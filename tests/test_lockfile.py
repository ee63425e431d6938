"""lockfile: inputs, staleness reasons and the lockfile readers (no resolver needed)."""

from __future__ import annotations

from pathlib import Path

from envbuild.lockfile import (Base, EnvLock, inputs_hash, lock_inputs, lock_is_fresh, read_pip_lock, stale_reasons,
                               write_lock)
from envbuild.spec import load_spec


def _project(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["six"]\n[tool.envbuild]\n')
    return tmp_path


def _lock_for(root: Path) -> EnvLock:
    spec = load_spec(root)
    inputs = lock_inputs(spec)
    (root / "requirements.lock").write_text("six==1.17.0 \\\n    --hash=sha256:ab\n")
    from envbuild.fsutil import sha256_file

    return EnvLock(envbuild="0.1.0", python=spec.python, platforms=list(spec.platforms),
                   inputs_hash=inputs_hash(inputs), inputs=inputs, base=Base(spec.base, "sha256:" + "0" * 64),
                   lockfiles={"requirements.lock": sha256_file(root / "requirements.lock")})


def test_fresh_then_each_change_is_named(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert lock_is_fresh(load_spec(root)) == (False, "no envbuild.lock yet")
    write_lock(root, _lock_for(root))
    assert lock_is_fresh(load_spec(root)) == (True, "up to date")
    (root / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["six", "attrs"]\n'
                                         '[tool.envbuild]\npython = "3.12"\n')
    reasons = stale_reasons(load_spec(root), _lock_for(_project(tmp_path / "other")))
    assert "dependency list changed" in reasons
    assert "python changed: locked 3.11, spec says 3.12" in reasons


def test_read_pip_lock_with_markers(tmp_path: Path) -> None:
    (tmp_path / "requirements.lock").write_text(
        "# header\nsix==1.17.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via -r pyproject.toml\n"
        "tomli==2.2.1 ; python_version < \"3.11\" \\\n    --hash=sha256:cc\n")
    pins = read_pip_lock(tmp_path)
    assert [(p.name, p.version, p.hashes) for p in pins] == [
        ("six", "1.17.0", ("sha256:aa", "sha256:bb")), ("tomli", "2.2.1", ("sha256:cc",))]
    assert pins[1].marker == 'python_version < "3.11"'
    assert pins[1].requirement == 'tomli==2.2.1 ; python_version < "3.11"'
