"""The project image: rendered Dockerfile, offline build, content-addressed tag, push record.

The tag is `envbuild/<project>:<first 12 hex of the lock hash>`, so an image that exists is up
to date by construction and `envbuild build` does nothing. Code is mounted at run time; only
`bake_code` copies it in (tag suffix `-code-<tree hash>`). The build context is assembled in a
temporary directory from the lock, the verified wheelhouse, the verified .debs of
system-packages.lock (envbuild/debs.py) and the runtime; `docker build
--network none` installs from it, so no build step can reach the network.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from envbuild import __version__, engine
from envbuild.errors import EXIT_FAILURE, EnvbuildError
from envbuild.fsutil import atomic_write_json, sha256_bytes, sha256_file
from envbuild.lockfile import CONDA_LOCK, REQUIREMENTS_LOCK, EnvLock, lock_path, require_lock, staleness
from envbuild.spec import Spec

TEMPLATE = Path(__file__).parent / "templates" / "dockerfile" / "Dockerfile"
VENV_STEPS = Path(__file__).parent / "templates" / "dockerfile" / "venv.Dockerfile"
RUNTIME_SITE = Path(__file__).parent / "runtime" / "site"
VENV = "/opt/venv"
BASE_VENV = "/opt/envbuild/base-venv"  # where a team base (envbuild base build) keeps its packages
SITE = "/opt/envbuild/site"
IMAGES_JSON = Path(".envbuild") / "images.json"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIP_IN_CODE = {".git", ".envbuild", "__pycache__"}
LABEL_LOCK_HASH = "dev.envbuild.lock-hash"
LABEL_BASE_DIGEST = "dev.envbuild.base-digest"
LABEL_VERSION = "dev.envbuild.version"


# --- the lock the build trusts ---------------------------------------------------------


def require_fresh_lock(spec: Spec, fix: str = "run envbuild lock") -> EnvLock:
    """The project's envbuild.lock, refused (exit 2, `fix`) when missing or stale."""
    lock = require_lock(spec.root)
    why = staleness(spec, lock)
    if why:
        raise EnvbuildError(f"{lock_path(spec.root)} is stale: {why}; {fix}")
    return lock


def refuse_unsupported(spec: Spec, lock: EnvLock) -> None:
    """Parts of a spec that builds cannot install yet: say so instead of building something else."""
    if REQUIREMENTS_LOCK not in lock.lockfiles and CONDA_LOCK not in lock.lockfiles:
        raise EnvbuildError(f"{spec.root / 'envbuild.lock'} governs neither {REQUIREMENTS_LOCK} nor {CONDA_LOCK}; "
                            "run envbuild lock")


# --- names -----------------------------------------------------------------------------


def code_tree_hash(spec: Spec) -> str:
    """sha256 over the project's files (paths, exec bits, contents), minus .git/.envbuild/outputs."""
    parts = []
    for path in _code_files(spec):
        rel = path.relative_to(spec.root).as_posix()
        if path.is_symlink():
            parts.append(f"{rel}\0link\0{os.readlink(path)}")
        else:
            parts.append(f"{rel}\0{os.stat(path).st_mode & 0o111 and 'x' or '-'}\0{sha256_file(path)}")
    return sha256_bytes("\n".join(parts).encode())


def _skipped(spec: Spec) -> set[str]:
    return SKIP_IN_CODE | {o.strip("/").split("/")[0] for o in spec.outputs}


def _code_files(spec: Spec) -> list[Path]:
    skip, top_skip = SKIP_IN_CODE, _skipped(spec)
    files = []
    for dirpath, dirnames, filenames in os.walk(spec.root):
        at_top = Path(dirpath) == spec.root
        dirnames[:] = sorted(d for d in dirnames if d not in (top_skip if at_top else skip))
        files += [Path(dirpath) / f for f in sorted(filenames)]
    return files


def image_ref(spec: Spec, lock: EnvLock, *, bake_code: bool = False, team_base: bool = False,
              platform: str | None = None) -> str:
    """The local tag of the project's image: envbuild/<project>:<lock hash[:12]>[-<arch>][-base]
    [-code-<tree[:12]>]; -<arch> only for a platform other than the engine's (say -arm64)."""
    from envbuild import platforms

    tag = lock.lock_hash[:12]
    if platform and platform != platforms.host():
        tag += "-" + platform.split("/")[1]
    if team_base:
        tag += "-base"
    if bake_code:
        tag += f"-code-{code_tree_hash(spec)[:12]}"
    return f"envbuild/{spec.name}:{tag}"


# --- Dockerfile ------------------------------------------------------------------------


def labels(spec: Spec, lock: EnvLock, tag: str, *, team_base: bool = False, platform: str | None = None) -> dict[str, str]:
    out = {
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.version": tag.rsplit(":", 1)[1],
        "org.opencontainers.image.base.name": lock.base.tag,
        "org.opencontainers.image.base.digest": lock.base.digest,
        LABEL_LOCK_HASH: lock.lock_hash,
        LABEL_BASE_DIGEST: lock.base.digest,
        "dev.envbuild.base": lock.base.pinned,
        LABEL_VERSION: __version__,
    }
    if team_base:  # projects on this base resolve against these pins (envbuild/teambase.py)
        from envbuild.lockfile import read_pip_lock
        from envbuild.teambase import PINS_LABEL, pins_label
        from envbuild.wheelhouse import canonical

        out[PINS_LABEL] = pins_label({canonical(p.name): p.version for p in read_pip_lock(spec.root)})
        if CONDA_LOCK in lock.lockfiles:
            from envbuild import condapkgs
            from envbuild.teambase import CONDA_PINS_LABEL, conda_pins_label

            found = condapkgs.read(spec.root, platform or lock.platforms[0]).packages
            out[CONDA_PINS_LABEL] = conda_pins_label([(p.name, p.version, p.build or "") for p in found],
                                                     condapkgs.PREFIX)
    return out


def _conda_lock(spec: Spec, lock: EnvLock):
    """conda-lock.yml for the engine's platform (else the first locked one), None without conda."""
    if CONDA_LOCK not in lock.lockfiles:
        return None
    from envbuild import condapkgs

    machine = _machine()
    return condapkgs.read(spec.root, machine if machine in lock.platforms else lock.platforms[0])


def render(spec: Spec, lock: EnvLock, *, bake_code: bool = False, team_base: bool = False,
           base_env: dict[str, str] | None = None) -> str:
    """The Dockerfile for this lock (a pure function of its arguments and the project's git state)."""
    from envbuild.condapkgs import PREFIX, builder_steps

    tag = image_ref(spec, lock, bake_code=bake_code, team_base=team_base)
    venv = BASE_VENV if team_base else VENV
    uses_pip, conda = REQUIREMENTS_LOCK in lock.lockfiles, _conda_lock(spec, lock)
    # PATH: the project's venv, then its conda environment, then a team base's venv.
    built = ([venv] if uses_pip else []) + ([PREFIX] if conda else [])
    path = ":".join(f"{d}/bin" for d in built + ([] if team_base else [BASE_VENV])) + f":{SYSTEM_PATH}"
    env_vars = " ".join(([f"VIRTUAL_ENV={venv}"] if uses_pip else []) + ([f"CONDA_PREFIX={PREFIX}"] if conda else []))
    copies = "".join(f"COPY --from=builder {d} {d}\n" for d in built)
    tf32 = ""
    if "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in (base_env or {}):
        # The base sets it (NGC images set 1) and a Dockerfile cannot unset: 0 turns it off.
        tf32 = "ENV TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=0\n"
    code = ""
    if bake_code:
        code = "# The project's code, baked in for shipping (--bake-code).\nCOPY --chown=envbuild:envbuild code/ /workspace/\n"
    from string import Template  # here: the no-op build never renders a Dockerfile

    from envbuild.debs import dockerfile_step

    label_text = " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels(spec, lock, tag).items()))
    venv_steps = Template(VENV_STEPS.read_text()).substitute(python=lock.python, venv=venv) if uses_pip else ""
    return Template(TEMPLATE.read_text()).substitute(
        envbuild_version=__version__, lock_hash=lock.lock_hash, tag=tag, base=lock.base.pinned,
        venv_steps=venv_steps, conda_steps=builder_steps(conda, lock.python) if conda else "",
        copy_envs=copies, env_vars=env_vars, path=path, tf32=tf32, code=code, labels=label_text,
        system_packages=dockerfile_step(lock),
    )


def pth_text(python: str, *, team_base: bool) -> str:
    """zz-envbuild.pth (runtime/__init__.py contract); a project venv also sees a team base's packages."""
    lines = [SITE]
    if not team_base:
        lines.append(f"{BASE_VENV}/lib/python{python}/site-packages")  # site.py skips it when absent
    return "\n".join(lines + ["import envbuild_hook"]) + "\n"


# --- facts about images ----------------------------------------------------------------


@dataclass
class ImageFacts:
    ref: str
    id: str
    repo_digests: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    size: int = 0
    env: dict[str, str] = field(default_factory=dict)  # the image's own Config.Env
    entrypoint: list[str] = field(default_factory=list)  # the image's own Config.Entrypoint


def inspect(ref: str) -> ImageFacts | None:
    """id (local config digest), RepoDigests (pullable elsewhere), labels, size and env; None when absent."""
    data = engine.inspect_image(ref)
    if data is None:
        return None
    config = data.get("Config") or {}
    env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
    return ImageFacts(ref, data["Id"], list(data.get("RepoDigests") or []), dict(config.get("Labels") or {}),
                      int(data.get("Size") or 0), env, list(config.get("Entrypoint") or []))


def inspect_or_pull(ref: str, *, show_pull: bool = False) -> ImageFacts:
    """The image's facts, pulled first when the engine lacks it (show_pull: docker's progress on the terminal)."""
    facts = inspect(ref)
    if facts is None:
        engine.docker("pull", ref, capture=not show_pull)
        facts = inspect(ref)
    if facts is None:
        raise EnvbuildError(f"docker pull {ref} finished but the engine has no such image", EXIT_FAILURE)
    return facts


# --- building --------------------------------------------------------------------------


@dataclass
class BuildResult:
    facts: ImageFacts  # of the built (or already present) image, so callers need not inspect again
    up_to_date: bool
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    manifest_digest: str | None = None  # of the image as envbuild wrote it: what a push will be answered

    @property
    def ref(self) -> str:
        return self.facts.ref

    @property
    def id(self) -> str:
        return self.facts.id

    def to_dict(self) -> dict[str, Any]:
        """What `envbuild build --json` prints."""
        return {"ref": self.ref, "id": self.id, "digest": self.manifest_digest, "up_to_date": self.up_to_date,
                "downloaded": self.downloaded, "cached": self.cached}


def _machine() -> str | None:
    from envbuild import platforms

    return platforms.host()


def build(spec: Spec, lock: EnvLock, *, bake_code: bool = False, team_base: bool = False,
          no_cache: bool = False, platform: str | None = None,
          log: Callable[[str], None] | None = None) -> BuildResult:
    """Write the image (envbuild/assemble.py) and `docker load` it, unless its tag exists already.

    Wheels, conda packages and .debs are fetched and verified first, so a bad file stops the build
    before anything is written; the engine gets the image only once its digests are known."""
    from envbuild import platforms
    from envbuild.oci.blobs import Store

    target = platforms.choose(lock.platforms, platform)
    ref = image_ref(spec, lock, bake_code=bake_code, team_base=team_base, platform=target)
    facts = inspect(ref)
    store = Store.default()
    if facts is not None and not no_cache:  # the hot path of every run: no assemble import
        return BuildResult(facts, True, manifest_digest=store.manifest_digest(facts.id))
    from envbuild import assemble
    from envbuild.oci.layout import docker_load

    say = log or (lambda _m: None)
    code = _code_entries(spec) if bake_code else None
    native = target == platforms.host()
    if native:
        inspect_or_pull(lock.base.pinned)  # the base's layers come from the engine's own pull, by digest

    def load(config_digest: str, diff_ids: list[str], base_layers: int) -> None:
        say(f"loading {ref} into the engine")
        base_blobs = None
        if not native:  # the engine pulled (if anything) its own platform of the base: send this one's
            from envbuild.oci.upload import fetch_blob

            base = assemble.fetch_base(lock.base, target, store)
            for blob in base.layers:
                fetch_blob(base.ref, blob.digest, store)
            base_blobs = [b.digest for b in base.layers]
        docker_load(store, config_digest, diff_ids, base_layers, ref, engine.docker_bin(), say, base_blobs)

    written = assemble.assemble(spec, lock, labels(spec, lock, ref, team_base=team_base, platform=target), platform=target,
                                team_base=team_base, store=store, say=say, code_entries=code, load=load)
    for note in written.notes:
        say(note)
    facts = inspect(ref)
    if facts is None:
        raise EnvbuildError(f"docker load finished but {ref} is not in the engine", EXIT_FAILURE)
    if facts.id != written.id:
        raise EnvbuildError(f"the engine names {ref} {facts.id}, but envbuild wrote {written.id}; "
                            "the engine changed the image on load", EXIT_FAILURE)
    return BuildResult(facts, False, written.downloaded, written.cached, manifest_digest=written.manifest_digest)


def built_and_described(spec: Spec, lock: EnvLock, store: Any, *, bake_code: bool = False, team_base: bool = False,
                        platform: str | None = None, log: Callable[[str], None] | None = None) -> tuple[BuildResult, Any]:
    """The image built (when missing) and envbuild's description of it (assemble.Written), rebuilt when
    the engine has the image but the layer store lost what envbuild wrote (push, --oci, --check need it)."""
    from envbuild import assemble

    result = build(spec, lock, bake_code=bake_code, team_base=team_base, platform=platform, log=log)
    written = assemble.described(store, result.id)
    if written is None or not written.materials:  # described before envbuild recorded materials: write it again
        result = build(spec, lock, bake_code=bake_code, team_base=team_base, platform=platform, no_cache=True, log=log)
        written = assemble.described(store, result.id)
    if written is None:
        raise EnvbuildError(f"{result.ref}: built, but {store.root} holds no description of it", EXIT_FAILURE)
    return result, written


def check(spec: Spec, lock: EnvLock, *, platform: str | None = None, bake_code: bool = False,
          log: Callable[[str], None] | None = None) -> tuple[BuildResult, str, str | None]:
    """Build (when needed), then build again from scratch (a fresh layer store, no engine) and compare:
    (result, rebuilt manifest digest, None when bit-identical else where the two first differ)."""
    from envbuild import assemble
    from envbuild.fsutil import cache_dir, temp_dir
    from envbuild.oci.blobs import Store

    store = Store.default()
    result, first = built_and_described(spec, lock, store, bake_code=bake_code, platform=platform, log=log)
    say = log or (lambda _m: None)
    say("rebuilding from scratch (empty layer store, no engine) to compare")
    with temp_dir(cache_dir() / "tmp", "check-") as tmp:
        fresh_store = Store(tmp)
        code = _code_entries(spec) if bake_code else None
        again = assemble.assemble(spec, lock, labels(spec, lock, result.ref), platform=first.platform,
                                  team_base=False, store=fresh_store, say=say, code_entries=code)
        return result, again.manifest_digest, assemble.first_difference(store, first, fresh_store, again)


def export_oci(spec: Spec, lock: EnvLock, dest: Path, *, platform: str | None = None, bake_code: bool = False,
               log: Callable[[str], None] | None = None) -> BuildResult:
    """The image as an OCI image layout at `dest` (base layers fetched from the base's registry)."""
    from envbuild.oci import layout, upload
    from envbuild.oci.blobs import Store
    from envbuild.registry import parse_reference

    store = Store.default()
    result, written = built_and_described(spec, lock, store, bake_code=bake_code, platform=platform, log=log)
    base = parse_reference(written.base_name)
    for blob in written.layers[:written.base_layers]:
        upload.fetch_blob(base, blob.digest, store)
    for diff_id in written.diff_ids[written.base_layers:]:
        store.compressed(diff_id, log)
    layout.write_layout(store, written.manifest, [written.config.digest] + [b.digest for b in written.layers],
                        dest, result.ref.rsplit(":", 1)[1])
    return result


def _code_entries(spec: Spec) -> list:
    """The project's files at /workspace, owned by the image's user (--bake-code)."""
    from envbuild.oci.layer import Entry, symlink_entry

    entries = []
    for path in _code_files(spec):
        rel = path.relative_to(spec.root).as_posix()
        if path.is_symlink():
            entries.append(symlink_entry(f"workspace/{rel}", os.readlink(path)))
        else:
            st = os.stat(path)
            entries.append(Entry(f"workspace/{rel}", "file", 0o755 if st.st_mode & 0o111 else 0o644,
                                 int(st.st_mtime), path, uid=1000, gid=1000, size=st.st_size))
    return entries


def ensure_image(spec: Spec, lock: EnvLock, *, bake_code: bool = False) -> str:
    """The project's image ref, built first when the engine does not have it (for `envbuild run`)."""
    from envbuild.output import info

    return build(spec, lock, bake_code=bake_code, log=info).ref


# --- pushing ---------------------------------------------------------------------------


def _images_json(root: Path) -> Path:
    return Path(root) / IMAGES_JSON


def read_images(root: Path) -> dict[str, Any]:
    try:
        return json.loads(_images_json(root).read_text())
    except (OSError, ValueError):
        return {}


def record_key(local: str, lock: EnvLock) -> str:
    """images.json key: the full lock hash, plus the tag's -base/-code-<tree> suffix for variants."""
    return lock.lock_hash + local.rsplit(":", 1)[1][12:]


def pushed_digest(root: Path, lock_hash: str) -> str | None:
    """`repo@sha256:...` that `envbuild push` recorded for the plain image of this lock hash, or None."""
    entry = read_images(root).get(lock_hash)
    return entry.get("repo_digest") if entry else None


def remote_ref(local: str, repo: str) -> str:
    """REGISTRY/REPO[:TAG] to push to; without a tag, the local tag (lock hash prefix) is used."""
    from envbuild.registry import parse_reference  # urllib and http.client: only when a registry is asked

    ref = parse_reference(repo)
    if ref.digest:
        raise EnvbuildError(f"{repo}: push to a repository or tag, not a digest")
    has_tag = ":" in repo.rsplit("/", 1)[-1]
    return f"{ref.name}:{ref.tag if has_tag else local.rsplit(':', 1)[1]}"


def push(root: Path, local: str, repo: str, lock: EnvLock, say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Send the image as envbuild wrote it to `repo` over the registry API; record its digest in
    .envbuild/images.json. The registry's answer must be the digest the build computed."""
    from envbuild import assemble
    from envbuild.oci import upload
    from envbuild.oci.blobs import Store
    from envbuild.oci.config import MANIFEST_TYPE
    from envbuild.registry import parse_reference

    remote = remote_ref(local, repo)
    facts = inspect(local)
    store = Store.default()
    written = assemble.described(store, facts.id) if facts else None
    if facts is None or written is None:
        raise EnvbuildError(f"{local}: envbuild has no record of writing this image; run envbuild build --no-cache",
                            EXIT_FAILURE)
    target = parse_reference(remote)
    for diff_id in written.diff_ids[written.base_layers:]:  # compressed at build; again only if the cache lost it
        store.compressed(diff_id, say)
    blobs = [b.digest for b in written.layers] + [written.config.digest]
    result = upload.push(store, target, written.manifest, MANIFEST_TYPE, blobs,
                         mount_from=parse_reference(written.base_name), say=say)
    if result["digest"] and result["digest"] != written.manifest_digest:
        raise EnvbuildError(f"registry {target.registry} answered {result['digest']} for {remote}, but envbuild "
                            f"wrote {written.manifest_digest}", EXIT_FAILURE)
    digest = f"{target.name}@{written.manifest_digest}"
    entry = {
        "ref": local, "pushed": remote, "repo_digest": digest, "id": facts.id, "digest": written.manifest_digest,
        "lock_hash": lock.lock_hash, "base_digest": lock.base.digest,
        "sent": len(result["sent"]), "skipped": len(result["skipped"]), "sent_bytes": result["sent_bytes"],
        "image_bytes": sum(b.size for b in written.layers) + written.config.size + len(written.manifest),
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    from envbuild import attest

    att = attest.write(root, lock, written, local, say)
    entry["attached"] = attest.push(target, att, written.manifest, say)
    images = read_images(root)
    images[record_key(local, lock)] = entry
    atomic_write_json(_images_json(root), images)
    return entry


def build_and_push(spec: Spec, repo: str | None, *, bake_code: bool = False, team_base: bool = False,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the image when missing, push it to `repo` (default: the spec's `image`), record it."""
    target = repo or spec.image
    if not target:
        give = "--push REGISTRY/REPO" if team_base else "one: envbuild push REGISTRY/REPO"
        raise EnvbuildError(f"{spec.source}: no repository to push to; give {give}, "
                            'or set image = "registry/repo" in the spec')
    lock = require_fresh_lock(spec)
    from envbuild.oci.blobs import Store

    result, _ = built_and_described(spec, lock, Store.default(), bake_code=bake_code, team_base=team_base, log=log)
    if log:
        log(f"pushing {result.ref} to {target}")
    return push(spec.root, result.ref, target, lock, say=log or (lambda m: None))
