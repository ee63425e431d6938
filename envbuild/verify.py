"""One check for CI: the lock is fresh, its image is here and was built from it, and (optionally)
a recorded run reproduces within tolerance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    runs: list[str] = field(default_factory=list)  # the run ids it concerns (for verify --report)


def check_lock(root: Path) -> tuple[Check, Any, Any]:
    """(check, spec, lock): the lock exists and is fresh against the spec, without resolving."""
    from envbuild.errors import EnvbuildError
    from envbuild.lockfile import read_lock, staleness
    from envbuild.spec import load_spec

    spec = load_spec(root)
    lock = read_lock(spec.root)
    if lock is None:
        return Check("lock", False, "no envbuild.lock; run envbuild lock"), spec, None
    try:
        stale = staleness(spec, lock)
    except EnvbuildError as e:
        return Check("lock", False, str(e)), spec, lock
    if stale:
        return Check("lock", False, f"stale: {stale}; run envbuild lock"), spec, lock
    return Check("lock", True, f"fresh (lock hash {lock.lock_hash[:12]})"), spec, lock


def check_image(spec: Any, lock: Any) -> Check:
    """The image named by the lock hash is in the engine and its label carries that lock hash."""
    from envbuild import image

    ref = image.image_ref(spec, lock)
    info = image.inspect(ref)
    if info is None:
        return Check("image", False, f"{ref} is not built; run envbuild build")
    labelled = info.labels.get(image.LABEL_LOCK_HASH)
    if labelled != lock.lock_hash:
        return Check("image", False, f"{ref} carries lock hash {labelled}, the lock's is {lock.lock_hash}; "
                                     "run envbuild build")
    return Check("image", True, f"{ref} built from lock {lock.lock_hash[:12]}")


def check_driver(cuda_facts: dict[str, str]) -> Check:
    """This host's NVIDIA driver runs the locked torch build (or there is no driver: it runs on the CPU)."""
    from envbuild.nvidia import driver_status

    ok, detail, fix = driver_status(cuda_facts)
    return Check("nvidia driver", ok, f"{detail}; {fix}" if fix else detail)


def check_provenance(root: Path, lock: Any, image: str | None, key: Path | None) -> Check:
    """The image's signed provenance, fetched from its registry by digest, matches the committed lock."""
    from envbuild import attest
    from envbuild.errors import EnvbuildError
    from envbuild.image import pushed_digest

    target = image or (pushed_digest(root, lock.lock_hash) if lock is not None else None)
    if not target:
        return Check("provenance", False, "the image of this lock was never pushed; run envbuild push, "
                                          "or give --image REPO@sha256:...")
    try:
        artifact, _ = attest.verify(root, target, key)
    except EnvbuildError as e:
        return Check("provenance", False, f"{target}: {e}")
    return Check("provenance", True, f"{target}: signed, subject and every material match the lock ({artifact})")


def verify(root: Path, reproduce_run: str | None, tol: Any, say: Callable[[str], None] = lambda m: None,
           quiet: bool = False, provenance: bool = False, image: str | None = None,
           key: Path | None = None) -> list[Check]:
    """Every check, in order; the image check needs a lock, the reproduction a good image."""
    from envbuild.errors import EnvbuildError
    from envbuild.reproduce import reproduce

    lock_check, spec, lock = check_lock(root)
    checks = [lock_check]
    checks.append(check_image(spec, lock) if lock is not None else Check("image", False, "no lock to name an image"))
    if lock is not None and lock.cuda.get("min_driver"):
        checks.append(check_driver(lock.cuda))
    if provenance:
        checks.append(check_provenance(root, lock, image, key))
    if reproduce_run:
        try:
            r = reproduce(root, reproduce_run, tol, quiet=quiet, say=say)
            bad = [c.name for c in r.metrics if not c.ok]
            detail = (f"run {r.new} reproduces {r.original}" if r.reproduced else
                      f"run {r.new} does not reproduce {r.original}: " +
                      (f"outside tolerance: {', '.join(bad)}" if bad else f"exit code {r.exit_code}"))
            checks.append(Check("reproduce", r.reproduced, detail, [r.original] + ([r.new] if r.new else [])))
        except EnvbuildError as e:
            checks.append(Check("reproduce", False, str(e)))
    return checks


def to_dict(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
