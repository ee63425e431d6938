"""`envbuild lock`: spec -> requirements.lock, conda-lock.yml, system-packages.lock, base digest, envbuild.lock.

Every file is first written into a temp directory in .envbuild; only when every part (base digest,
pip resolve, conda solve, apt) has succeeded are they renamed into place together, through a journal
(fsutil.replace_together): a failure leaves every previous lockfile byte-identical, and a lock killed
while renaming is completed by the next reader (read_lock), so the lockfiles are never a mix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from envbuild import __version__
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import replace_together, sha256_file, temp_dir
from envbuild.store import state_dir
from envbuild.lockfile import (CONDA_LOCK, ENVBUILD_LOCK, REQUIREMENTS_LOCK, SYSTEM_PACKAGES_LOCK, Base, EnvLock,
                               inputs_hash, journal_path, lock_inputs, read_lock, stale_reasons,
                               write_lock)
from envbuild.spec import Spec

Step = Callable[[str], None]


@dataclass
class LockOutcome:
    locked: bool  # False: inputs unchanged, nothing resolved
    lock: EnvLock
    reasons: list[str] = field(default_factory=list)  # why it (re)locked
    notes: list[str] = field(default_factory=list)  # resolver substitutions, digest source

    def to_dict(self) -> dict[str, object]:
        return {"status": "locked" if self.locked else "up to date", "lock_hash": self.lock.lock_hash,
                "reasons": self.reasons, "notes": self.notes, "lock": self.lock.to_dict()}


def _previous(root: Path) -> tuple[EnvLock | None, str | None]:
    try:
        return read_lock(root), None
    except EnvbuildError as e:
        return None, str(e)


def _base(spec: Spec, previous: EnvLock | None, upgrade: bool, step: Step) -> tuple[Base, str | None]:
    """The locked base: kept while the tag is unchanged (that is the point of pinning)."""
    from envbuild.registry import parse_reference, resolve_with_fallback

    keep = previous is not None and previous.base.tag == spec.base and not upgrade
    if keep and all(p in previous.base.platforms for p in spec.platforms):  # type: ignore[union-attr]
        return previous.base, None  # type: ignore[union-attr]
    # Same tag but new platforms: look up the pinned digest, not whatever the tag means today.
    ref = parse_reference(spec.base).pinned(previous.base.digest) if keep else spec.base  # type: ignore[union-attr]
    step(f"Resolving base image {ref}")
    img = resolve_with_fallback(ref, tuple(spec.platforms))
    note = None
    if img.source != "registry":
        note = f"registry unreachable: base digest taken from the local engine ({img.source}), not the registry"
    return Base(spec.base, img.digest, dict(img.platforms), img.source), note


def lock_project(spec: Spec, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
                 step: Step = lambda msg: None) -> LockOutcome:
    """Lock the project when its inputs changed (or an upgrade is asked); else change nothing."""
    root = Path(spec.root)
    previous, unreadable = _previous(root)
    reasons = stale_reasons(spec, previous) if unreadable is None else [unreadable]
    if previous is not None and not reasons and not upgrade and not upgrade_packages:
        from envbuild.dev import lock_dev

        if lock_dev(spec, previous, step=step):  # the training lock stays as it is
            return LockOutcome(True, previous, [f"dev groups {', '.join(spec.dev_groups)}"])
        return LockOutcome(False, previous)
    if upgrade:
        reasons = ["--upgrade"] + reasons
    elif upgrade_packages:
        reasons = [f"--upgrade-package {', '.join(upgrade_packages)}"] + reasons

    notes: list[str] = []
    base, note = _base(spec, previous, upgrade, step)
    notes += [note] if note else []
    if spec.uses_pip:  # the venv is made by the base's python<X.Y>: refuse what it lacks, before anything is written
        from envbuild.basepython import require_python

        step(f"Checking that the base has Python {spec.python}")
        note = require_python(spec, base)
        notes += [note] if note else []
    # the work dir sits in .envbuild (ignored by git, same file system): a killed lock leaves no litter
    with temp_dir(state_dir(root), "lock-") as work:
        from envbuild.ingredients import LockContext, all_ingredients

        ctx = LockContext(spec, base, previous, upgrade, tuple(upgrade_packages), work, step, notes)
        fields: dict[str, Any] = {"resolver": {}, "conda_solver": {}, "indexes": [], "system_packages": {},
                                  "base_packages": {}, "cuda": {}}
        for ingredient in reversed(all_ingredients()):
            if ingredient.used_by(spec):
                fields.update(ingredient.lock(ctx))
        names = [n for n in (REQUIREMENTS_LOCK, CONDA_LOCK, SYSTEM_PACKAGES_LOCK) if (work / n).is_file()]
        inputs = lock_inputs(spec)
        lock = EnvLock(envbuild=__version__, python=spec.python, platforms=list(spec.platforms),
                       inputs_hash=inputs_hash(inputs), inputs=inputs, base=base,
                       lockfiles={n: sha256_file(work / n) for n in names}, epoch=source_date_epoch(), **fields)
        write_lock(work, lock)
        step("Writing lockfiles")
        replace_together(work, [*names, ENVBUILD_LOCK], root, journal_path(root))
    from envbuild.dev import lock_dev

    lock_dev(spec, lock, upgrade, step)
    return LockOutcome(True, lock, reasons, notes)


def source_date_epoch() -> int:
    """The image's file-time ceiling: SOURCE_DATE_EPOCH (the reproducible-builds convention) or 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0").strip() or "0"
    if not value.isdigit():
        raise EnvbuildError(f"SOURCE_DATE_EPOCH={value!r}: not a whole number of seconds; unset it or give one")
    return int(value)


def check(spec: Spec, remote: bool = False) -> tuple[bool, list[str]]:
    """(fresh, reasons) without resolving; `remote` also asks the registry whether the tag moved."""
    previous, unreadable = _previous(Path(spec.root))
    if unreadable:
        return False, [unreadable]
    reasons = stale_reasons(spec, previous)
    from envbuild.devcontainer import stale as devcontainer_stale

    from envbuild.dev import staleness as dev_staleness

    if not reasons and previous is not None and (outdated := dev_staleness(spec, previous)):
        reasons.append(outdated)
    if not reasons and (outdated := devcontainer_stale(spec, previous)):
        reasons.append(outdated)
    if remote and previous is not None and previous.base.tag == spec.base:
        moved = base_moved(previous)
        if moved:
            reasons.append(moved)
    return not reasons, reasons


def base_moved(lock: EnvLock) -> str | None:
    """A message when the registry's digest for the locked tag is no longer the locked one."""
    from envbuild.registry import manifest_digest

    now = manifest_digest(lock.base.tag)
    if now is None:
        raise EnvbuildError(f"base tag {lock.base.tag} no longer exists in its registry", EXIT_FAILURE)
    if now != lock.base.digest:
        return (f"base tag {lock.base.tag} has moved: locked {lock.base.digest}, registry now has {now}; "
                "`envbuild lock --upgrade` takes the new one")
    return None
