"""The `envbuild` executable: answers the hot paths before the CLI framework loads.

typer and rich alone take longer to import than the whole answer to the three commands people
and scripts type most often, so those are tried here first:
- `envbuild build [-C DIR] [--json]` when the image for the lock exists (nothing to do);
- `envbuild lock [-C DIR] [--check] [--json]` when the lock is fresh (nothing to resolve);
- `envbuild run [-C DIR] [--json] [--seed N] SCRIPT.py [ARGS] | -- CMD [ARGS]`: the run itself
  (runner.run), without typer and rich, which a run would otherwise spend a third of its own
  time importing; its messages are plain lines (rich loads only if there is one to say);
- `envbuild [COMMAND ...] --help`, served from a cache of the screen the full CLI rendered last
  time for the same envbuild code, arguments and terminal.
Each gives the same checks and the same output as its command module; anything else, or anything
that would do work or fail, goes to the full CLI, which says it properly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def _project_args(args: list[str], command: str, flags: tuple[str, ...]) -> tuple[str, set[str]] | None:
    """(project dir, flags given) for `COMMAND [-C DIR] [FLAGS]`; None for anything else."""
    if not args or args[0] != command:
        return None
    project, given, rest = ".", set(), args[1:]
    while rest:
        arg = rest.pop(0)
        if arg in flags:
            given.add(arg)
        elif arg in ("-C", "--project") and rest:
            project = rest.pop(0)
        elif arg.startswith("--project="):
            project = arg.split("=", 1)[1]
        else:
            return None
    return project, given


def _write_json(obj: Any) -> None:
    import json  # the same spelling as envbuild.output.print_json, without importing rich

    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _noop_build(args: list[str]) -> bool:
    """True when `envbuild build [-C DIR] [--json]` found the image up to date and said so."""
    parsed = _project_args(args, "build", ("--json",))
    if parsed is None:
        return False
    project, given = parsed
    try:
        from envbuild import engine, platforms
        from envbuild.image import image_ref, require_fresh_lock
        from envbuild.oci.blobs import Store
        from envbuild.spec import load_spec

        spec = load_spec(project)
        lock = require_fresh_lock(spec)
        ref = image_ref(spec, lock, platform=platforms.choose(lock.platforms, None))
        data = engine.inspect_image_fast(ref)
        if data is None:
            return False
        digest = Store.default().manifest_digest(data["Id"])
        from envbuild.devcontainer import outdated

        if outdated(spec, lock, data["Id"]):
            return False  # the full CLI rewrites .devcontainer/devcontainer.json
        from envbuild import keys
        from envbuild.store import attest_paths

        sbom, signed = attest_paths(spec.root, digest)
        if not sbom.is_file() or (not signed.is_file() and (keys.keys_dir() / keys.PRIVATE).is_file()):
            return False  # the full CLI writes the SBOM or provenance this image lacks
    except Exception:  # noqa: BLE001 - anything unusual: the full CLI does it and reports it properly
        return False
    if "--json" in given:
        _write_json({"ref": ref, "id": data["Id"], "digest": digest, "up_to_date": True, "downloaded": [], "cached": [],
                     "sbom": str(sbom), "provenance": str(signed) if signed.is_file() else None})
    else:
        print(f"{ref} is up to date (id {data['Id']}, digest {digest})", file=sys.stderr)
    return True


def _fresh_lock(args: list[str]) -> bool:
    """True when `envbuild lock [-C DIR] [--check] [--json]` found the lock fresh and said so."""
    parsed = _project_args(args, "lock", ("--check", "--json"))
    if parsed is None:
        return False
    project, given = parsed
    try:
        from envbuild.locker import check
        from envbuild.spec import load_spec

        spec = load_spec(project)
        fresh, _ = check(spec)
        if not fresh:
            return False
        from envbuild.lockfile import read_lock

        lock = read_lock(spec.root)
    except Exception:  # noqa: BLE001 - stale, unreadable or bad input: the full CLI says it properly
        return False
    if "--check" in given:
        if "--json" in given:
            _write_json({"fresh": True, "reasons": []})
        else:
            print("envbuild.lock is up to date")
    elif "--json" in given:  # envbuild.locker.LockOutcome(False, lock).to_dict()
        _write_json({"status": "up to date", "lock_hash": lock.lock_hash, "reasons": [], "notes": [],
                     "lock": lock.to_dict()})
    else:
        print(f"envbuild.lock is up to date (lock {lock.lock_hash[:12]})")
    return True


SEED_MAX = 2**32 - 1  # commands/run.py's --seed range


def _run_args(args: list[str]) -> tuple[str, bool, int | None, list[str]] | None:
    """(project, --json, --seed, command) for the plain forms of `envbuild run`; None for any other
    option (the full CLI parses and checks it). As there, options go before the script."""
    if not args or args[0] != "run":
        return None
    project, as_json, seed, rest = ".", False, None, args[1:]
    while rest and rest[0].startswith("-"):
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg == "--json":
            as_json = True
        elif arg in ("-C", "--project") and rest:
            project = rest.pop(0)
        elif arg.startswith("--project="):
            project = arg.split("=", 1)[1]
        elif arg == "--seed" and rest and rest[0].isdigit() and int(rest[0]) <= SEED_MAX:
            seed = int(rest.pop(0))
        else:
            return None
    return (project, as_json, seed, rest) if rest else None


def _plain_run(args: list[str]) -> bool:
    """Run `envbuild run`'s plain forms here; False (nothing done) for anything else. Once the run
    starts it ends here, whatever happens, with the full CLI's output and exit code."""
    parsed = _run_args(args)
    if parsed is None:
        return False
    project, as_json, seed, command = parsed
    from envbuild import runner
    from envbuild.errors import reported

    req = runner.RunRequest(command=runner.command_for(command), seed=seed,
                            stdout=sys.stderr.buffer if as_json else None)
    with reported():
        run_dir, record = runner.run(project, req)
    if as_json:
        _write_json(record)
    else:
        print(runner.summary(run_dir, record), file=sys.stderr)
    sys.exit(runner.exit_code(record))


# --- --help, rendered once per code, arguments and terminal ---------------------------------

_HELP_ENV = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE",
             "TTY_INTERACTIVE", "JUPYTER_COLUMNS")


def _help_cache(args: list[str]) -> Path | None:
    """Where the help screen for `args` is kept; None when `args` is not a plain help request."""
    if not args or args[-1] not in ("--help", "-h") or any(a.startswith("-") for a in args[:-1]):
        return None
    if args[0] == "run" and len(args) > 2:  # `run SCRIPT --help`: the script's own option
        return None
    import hashlib
    import shutil

    here = Path(__file__).parent
    code = [here / "cli.py", here / "__init__.py", *sorted((here / "commands").glob("*.py"))]
    stats = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in code]
    key = repr((args, stats, tuple(shutil.get_terminal_size()), sys.stdout.isatty(),
                [os.environ.get(k) for k in _HELP_ENV]))
    cache = Path(os.environ.get("ENVBUILD_CACHE_DIR") or Path.home() / ".cache" / "envbuild")
    return cache / "help" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".txt")


class _Tee:
    """sys.stdout that also keeps what was written (rich asks it for isatty, encoding ...)."""

    def __init__(self, stream: Any) -> None:
        self._stream, self.parts = stream, []

    def write(self, text: str) -> int:
        n = self._stream.write(text)  # first: click probes with b"" and expects the TypeError
        self.parts.append(text)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _cached_help(path: Path | None) -> bool:
    if path is None or not path.is_file():
        return False
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return True


def _run_cli(help_path: Path | None) -> None:
    from envbuild.cli import main as cli_main

    if help_path is None:
        cli_main()
        return
    tee = sys.stdout = _Tee(sys.stdout)
    try:
        cli_main()
    except SystemExit as e:
        if e.code in (0, None):
            _keep(help_path, tee.parts)
        raise
    finally:
        sys.stdout = tee._stream
    _keep(help_path, tee.parts)


def _keep(path: Path, parts: list[str]) -> None:
    from envbuild.fsutil import atomic_write_text

    if not "".join(parts).strip():  # a help screen is never empty: this was not one
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(parts))
    except OSError:  # a read-only cache only costs speed
        pass


def main() -> None:
    args = sys.argv[1:]
    help_path = _help_cache(args)
    if _cached_help(help_path) or _noop_build(args) or _fresh_lock(args) or _plain_run(args):
        return
    _run_cli(help_path)
