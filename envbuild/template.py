"""The templates envbuild ships: starter projects, team-base specs, CI pipelines, the Dockerfile.

They live in the top-level `templates/` of the repository and inside the wheel as
`envbuild/templates` (a link in the checkout, files in the wheel):
- `projects/NAME/`: what `envbuild init --template NAME` writes into a project;
- `bases/NAME/`: the team-base spec `envbuild base build --template NAME` starts from;
- `ci/`: pipelines that run `envbuild verify` (GitHub Actions, GitLab CI), to copy;
- `dockerfile/`: what `envbuild build --dockerfile-only` renders;
- `report.html`: the page `envbuild report` fills in.
A template's files may hold `{name}`, `{base}` and `{torch_source}`, filled in when written.
"""

from __future__ import annotations

from pathlib import Path

from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_text

ROOT = Path(__file__).parent / "templates"
KINDS = {"project": "projects", "base": "bases"}
FILLS = {"torch_source": "--torch-source URL (the PyTorch wheel index for that CUDA version, or a directory of its wheels)"}


def names(kind: str) -> list[str]:
    return sorted(p.name for p in (ROOT / KINDS[kind]).iterdir() if p.is_dir())


def write(kind: str, name: str, dest: Path, values: dict[str, str], force: bool = False) -> list[Path]:
    """Write template `name` of `kind` into `dest` with its placeholders filled; the paths written.
    Refuses before writing anything: an unknown name, a missing value, a file that exists (without force)."""
    src = ROOT / KINDS[kind] / name
    if not name or not src.is_dir():
        raise EnvbuildError(f"--template {name}: no such {kind} template; choose one of {', '.join(names(kind))}")
    planned = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        text = path.read_text()
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        for key, how in FILLS.items():
            if "{" + key + "}" in text:
                raise EnvbuildError(f"--template {name}: {path.relative_to(src)} needs {how}")
        planned.append((dest / path.relative_to(src), text))
    clash = [target for target, _ in planned if target.exists()]
    if clash and not force:
        raise EnvbuildError(f"{clash[0]}: exists already; --template writes a fresh project "
                            "(use an empty directory, or --force to replace the template's files)")
    for target, text in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
    return [target for target, _ in planned]
