"""Dev groups: tools for working interactively (Jupyter, a debugger, linters) on the locked image
without touching the training image.

`dev-groups = ["dev"]` in the spec names [project.optional-dependencies] groups that `envbuild lock`
resolves with the rest, but apart: against the training pins as constraints, into
requirements-dev.lock (only the packages the training lock lacks, hashed), governed by
envbuild-dev.lock. envbuild.lock and its lock hash never see them, so the training image (its tag,
its labels, its digest) is the same with or without a dev group.

The dev image is the training image plus one layer: the dev wheels installed into the same venv,
written by envbuild like every other layer (tag envbuild/<project>-dev:<dev hash[:12]>, labels
naming the training image it extends). `envbuild shell` and `envbuild notebook` run in it.

envbuild-dev.lock (canonical JSON):
  {"version": 1, "lock_hash": <the training envbuild.lock's>, "inputs_hash": <sha256 of the dev
   groups and their requirements>, "requirements_dev_sha256": <sha256 of requirements-dev.lock>}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from envbuild import platforms
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import atomic_write_json, canonical_json, sha256_bytes, sha256_file, temp_dir
from envbuild.lockfile import EnvLock, read_pip_lock
from envbuild.spec import Spec

DEV_LOCK = "requirements-dev.lock"
DEV_STATE = "envbuild-dev.lock"
LABEL_EXTENDS = "dev.envbuild.extends"  # the training image id a dev image is built on
LABEL_DEV_HASH = "dev.envbuild.dev-hash"


def inputs_hash(spec: Spec) -> str:
    return sha256_bytes(canonical_json({"groups": list(spec.dev_groups),
                                        "requirements": list(spec.dev_dependencies)}).encode())


def read_state(root: Path) -> dict | None:
    try:
        data = json.loads((Path(root) / DEV_STATE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dev_hash(state: dict) -> str:
    """Names the dev image: the training lock, the dev inputs and the dev pins together."""
    return sha256_bytes(canonical_json(state).encode())


def staleness(spec: Spec, lock: EnvLock) -> str | None:
    """Why the dev lock does not fit (None when fresh, or when the spec has no dev groups)."""
    if not spec.dev_groups:
        return None
    state = read_state(spec.root)
    if state is None or not (spec.root / DEV_LOCK).is_file():
        return f"dev groups {', '.join(spec.dev_groups)} are not locked yet"
    if state.get("lock_hash") != lock.lock_hash:
        return "the training lock changed since the dev groups were locked"
    if state.get("inputs_hash") != inputs_hash(spec):
        return f"dev groups {', '.join(spec.dev_groups)} changed"
    if state.get("requirements_dev_sha256") != sha256_file(spec.root / DEV_LOCK):
        return f"{DEV_LOCK} was edited by hand"
    return None


def _blocks(text: str) -> list[tuple[str | None, str]]:
    """(canonical name or None for header/option lines, text) per entry of a pip-compile output."""
    from envbuild.wheelhouse import canonical

    out: list[tuple[str | None, list[str]]] = []
    for line in text.splitlines(keepends=True):
        if line[:1].isspace() and out:
            out[-1][1].append(line)
            continue
        name = None
        if line.strip() and not line.startswith(("#", "-")):
            name = canonical(line.split("==", 1)[0].split("[", 1)[0].strip())
        out.append((name, [line]))
    return [(n, "".join(lines)) for n, lines in out]


def lock_dev(spec: Spec, lock: EnvLock, upgrade: bool = False, step: Callable[[str], None] = lambda m: None) -> bool:
    """Resolve the dev groups against the training pins when stale; True when it wrote anything."""
    from envbuild.resolvers import pip_resolver
    from envbuild.store import state_dir
    from envbuild.wheelhouse import canonical

    if not spec.dev_groups or (staleness(spec, lock) is None and not upgrade):
        return False
    if not spec.uses_pip:
        raise EnvbuildError(f"{spec.source}: dev-groups: the dev groups need the project's pip dependencies; "
                            "add a requirements list (or drop dev-groups)")
    training = {canonical(p.name): p.version for p in read_pip_lock(spec.root)}
    mod, _ = pip_resolver(spec)
    with temp_dir(state_dir(spec.root), "lock-dev-") as work:
        limits = work / "training-constraints.txt"
        limits.write_text("".join(f"{n}=={v}\n" for n, v in sorted(training.items())))
        step(f"Resolving dev groups {', '.join(spec.dev_groups)} against the {len(training)} training pins")
        whole = replace(spec, dependencies=spec.dependencies + spec.dev_dependencies)
        mod.resolve(whole, work / "all.lock", upgrade, (), spec.root / DEV_LOCK, constraints=limits)
        extra = "".join(text for name, text in _blocks((work / "all.lock").read_text())
                        if name is None or name not in training)
        (work / DEV_LOCK).write_text(extra)
        state = {"version": 1, "lock_hash": lock.lock_hash, "inputs_hash": inputs_hash(spec),
                 "requirements_dev_sha256": sha256_file(work / DEV_LOCK)}
        (work / DEV_LOCK).replace(spec.root / DEV_LOCK)
        atomic_write_json(spec.root / DEV_STATE, state)  # last: a lock killed before it stays stale
    return True


def require_fresh(spec: Spec, lock: EnvLock) -> dict:
    why = staleness(spec, lock)
    if why:
        raise EnvbuildError(f"{spec.root / DEV_STATE}: {why}; run envbuild lock")
    return read_state(spec.root) or {}


# --- the dev image ---------------------------------------------------------------------------


@dataclass
class DevImage:
    facts: object  # image.ImageFacts of the dev image
    training: object  # image.BuildResult of the training image it extends
    manifest_digest: str | None


def image_ref(spec: Spec, state: dict) -> str:
    return f"envbuild/{spec.name}-dev:{dev_hash(state)[:12]}"


def build(spec: Spec, lock: EnvLock, log: Callable[[str], None] = lambda m: None) -> DevImage:
    """The training image (built when missing), then the dev image over it (written when missing)."""
    from envbuild import assemble, image
    from envbuild.oci.blobs import Store

    state = require_fresh(spec, lock)
    store = Store.default()
    training, written = image.built_and_described(spec, lock, store, log=log)
    ref = image_ref(spec, state)
    facts = image.inspect(ref)
    if facts is not None and facts.labels.get(LABEL_EXTENDS) == training.id:
        described = assemble.described(store, facts.id)
        return DevImage(facts, training, described.manifest_digest if described else None)
    dev = _write(spec, lock, state, written, store, ref, log)
    facts = image.inspect(ref)
    if facts is None or facts.id != dev.id:
        raise EnvbuildError(f"docker load of {ref} did not give the image envbuild wrote ({dev.id})", EXIT_FAILURE)
    return DevImage(facts, training, dev.manifest_digest)


def _write(spec: Spec, lock: EnvLock, state: dict, training, store, ref: str, log) -> object:
    """One layer (the dev wheels in the training venv), the training config plus that layer, loaded."""
    from envbuild import __version__, assemble, engine
    from envbuild.fsutil import cache_dir
    from envbuild.image import VENV, inspect
    from envbuild.ingredients import BuildContext
    from envbuild.ingredients.pip import compile_pyc, install
    from envbuild.oci import layer
    from envbuild.oci.blobs import digest_of
    from envbuild.oci.config import CONFIG_TYPE, Blob, ImageConfig, manifest_bytes, timestamp
    from envbuild.oci.gzip import compressor_id
    from envbuild.oci.layout import docker_load
    from envbuild.wheelhouse import Target, ensure_pins, parse_requirements_lock, project_sources

    target = Target(training.platform, lock.python)
    pins = parse_requirements_lock(spec.root / DEV_LOCK, target)
    house = ensure_pins(pins, target, progress=log, sources=project_sources(spec.root))
    with temp_dir(cache_dir() / "tmp", "build-dev-") as tmp:
        ctx = BuildContext(spec, lock, training.platform, store, tmp, lock.epoch, lock.base.pinned,
                           training.platform == platforms.host(), VENV, "", log)
        log(f"installing {len(house.wheels)} dev wheels into {VENV}")
        stages = []
        for w in sorted(house.wheels, key=lambda w: w.pin.name):
            stages.append(tmp / "pip" / f"dev-{w.pin.name}")
            install(w.path, stages[-1], VENV, lock.python)
        compile_pyc(ctx, stages)
        entries = [e for stage in stages for e in layer.tree_entries(stage, "")]
        names = ", ".join(str(w.pin) for w in sorted(house.wheels, key=lambda w: w.pin.name))
        own = layer.write(entries, store, lock.epoch, f"dev groups {', '.join(spec.dev_groups)}: {names[:200]}")
    cfg = ImageConfig.from_base(store.read_json(training.config.digest))
    cfg.labels.update({LABEL_EXTENDS: training.id, LABEL_DEV_HASH: dev_hash(state),
                       "org.opencontainers.image.title": f"{spec.name}-dev"})
    cfg.diff_ids.append(own.diff_id)
    cfg.history.append({"created": timestamp(lock.epoch), "created_by": f"envbuild {__version__}: {own.comment}"})
    config_bytes = cfg.to_bytes(lock.epoch)
    config = Blob(CONFIG_TYPE, store.put_bytes(config_bytes), len(config_bytes))
    if inspect(training.config.digest) is None:
        raise EnvbuildError(f"the training image {training.id} left the engine; run envbuild build", EXIT_FAILURE)
    load = lambda: docker_load(store, config.digest, cfg.diff_ids, len(training.diff_ids), ref,  # noqa: E731
                               engine.docker_bin(), log)
    blobs = assemble.compress_while(store, [own.diff_id], log, load)
    manifest = manifest_bytes(config, training.layers + blobs, {assemble.ANNOTATION_COMPRESSOR: compressor_id()})
    store.put_bytes(manifest)
    written = assemble.Written(config, digest_of(manifest), manifest, training.layers + blobs, cfg.diff_ids,
                               training.base_name, training.base_layers, training.platform,
                               [*training.comments, own.comment])
    assemble.describe(store, written)
    return written
