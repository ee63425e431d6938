"""envbuild keys: the local key that signs provenance attestations."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from envbuild import options

app = typer.Typer(help="The local signing key for provenance attestations (ECDSA P-256, offline).",
                  no_args_is_help=True)


@app.command("generate")
def generate(
    directory: Optional[Path] = typer.Option(
        None, "--dir", help="Where to keep the pair; default $ENVBUILD_KEYS_DIR or ~/.config/envbuild/keys. "
        "Never a project directory: the private key must not be committed."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key (attestations signed with the old "
                               "one then verify only with the old .pub)."),
    json_out: bool = options.json_out("{private, public, keyid}"),
) -> None:
    """Make the key pair that signs every build's SLSA provenance (a DSSE envelope).

    envbuild.key (PKCS#8 PEM, mode 0600) stays on this machine; hand envbuild.pub to whoever verifies:
    `envbuild verify --provenance --key envbuild.pub`, or `cosign verify-attestation --key envbuild.pub
    --type slsaprovenance1 --insecure-ignore-tlog`. Nothing is sent anywhere.

    Example: envbuild keys generate
    """
    from envbuild import keys
    from envbuild.errors import EnvbuildError
    from envbuild.output import info, print_json

    d = (directory or keys.keys_dir()).expanduser().resolve()
    if (d / "pyproject.toml").exists() or (d / ".git").exists() or (d / "envbuild.lock").exists():
        raise EnvbuildError(f"{d} looks like a project; keep keys out of it: give --dir outside any project")
    pair = keys.generate(d, force=force)
    keyid = keys.key_id(pair.public.read_bytes())
    if json_out:
        print_json({"private": str(pair.private), "public": str(pair.public), "keyid": keyid})
    else:
        info(f"wrote {pair.private} (mode 600) and {pair.public}\n  keyid {keyid}", markup=False)
