"""What proving an image costs: its SBOM and signed provenance, and verifying it from the registry.

One locked project (pip pins and a .deb on the base) is built once, not timed. Then:

- no-op build: `envbuild build` with the image, its SBOM and its provenance present (the reference);
- no-op build + SBOM + provenance: the same with .envbuild/attest/ and the base's package cache
  emptied, so the base's layers are read again, the SBOM made and validated, the statement signed;
- the peer, cdxgen (`cdxgen -t docker IMAGE`, CycloneDX's own generator, from npm): an SBOM of the
  same image, unsigned; run only where `cdxgen` is on PATH or ENVBUILD_BENCH_CDXGEN names it;
- verify --provenance: fetch the attestation from the loopback registry by digest, check signature,
  subject and every material against the lock.

    python bench/sbom.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from common import BASE, ENVBUILD, REGISTRY, Row, locked_project, repeat, run, script_main, timed


PACKAGES = ["numpy==2.2.6", "requests==2.32.3"]
SMOKE_PACKAGES = ["six==1.16.0"]


def measure(runs: int, smoke: bool) -> list[Row]:
    name = f"bench-sbom-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-sbom-") as td:
        tmp = Path(td)
        project, cache = tmp / "project", tmp / "cache"
        env = {"ENVBUILD_CACHE_DIR": str(cache), "ENVBUILD_KEYS_DIR": str(tmp / "keys")}
        locked_project(project, name, SMOKE_PACKAGES if smoke else PACKAGES, base=BASE, env=env,
                       extra='system-packages = ["jq"]\n')
        run([*ENVBUILD, "keys", "generate"], project, env)
        ref = json.loads(run([*ENVBUILD, "build", "--json"], project, env).stdout)["ref"]

        def forget() -> None:
            shutil.rmtree(project / ".envbuild" / "attest", ignore_errors=True)
            shutil.rmtree(cache / "oci" / "base-packages", ignore_errors=True)

        build = [*ENVBUILD, "build"]
        noop = repeat(lambda: timed(build, project, env), runs)
        fresh = repeat(lambda: timed(build, project, env), runs, before=forget)
        sbom = next((project / ".envbuild" / "attest").glob("*.sbom.cdx.json"))
        components = len(json.loads(sbom.read_text())["components"])
        run([*ENVBUILD, "push", f"{REGISTRY}/bench/{name}"], project, env)
        verify = repeat(lambda: timed([*ENVBUILD, "verify", "--provenance"], project, env), runs)
        rows = [Row("sbom", "no-op build (SBOM, provenance present)", noop),
                Row("sbom", "no-op build + SBOM + signed provenance", fresh, ref="no-op build (SBOM, provenance present)",
                    note=f"{components} components, the base's read from its layers"),
                Row("sbom", "verify --provenance (fetch by digest, check)", verify)]
        cdxgen = os.environ.get("ENVBUILD_BENCH_CDXGEN") or shutil.which("cdxgen")
        if cdxgen:
            out = tmp / "cdxgen.json"
            peer = repeat(lambda: timed([cdxgen, "-t", "docker", ref, "-o", str(out)], project,
                                        {"FETCH_LICENSE": "false", "CDXGEN_NO_BANNER": "true"}), runs)
            found = len(json.loads(out.read_text()).get("components") or [])
            rows.append(Row("sbom", "peer: cdxgen -t docker IMAGE (unsigned SBOM)", peer,
                            ref="no-op build (SBOM, provenance present)", note=f"{found} components"))
        run(["sh", "-c", f"docker rmi {ref} >/dev/null 2>&1 || true"])
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
