"""`envbuild diff` through real runs: the one ingredient that differs is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.test_reproduce import TRAIN, envbuild, git, lock_and_build, train  # proj: conftest

pytestmark = pytest.mark.docker


def test_diff_names_the_one_ingredient_that_differs(proj: Path):
    base = train(proj)

    def causes(other: dict) -> list[str]:
        out = json.loads(envbuild(proj, "diff", base["id"], other["id"], "--json").stdout)
        return out["differs"]

    assert causes(train(proj)) == []  # same everything
    seeded = train(proj, "--seed", "7")
    assert causes(seeded) == ["seed"]
    out = json.loads(envbuild(proj, "diff", base["id"], seeded["id"], "--json").stdout)
    assert [(c["what"], c["a"], c["b"]) for c in out["sections"]["seed"]["changes"]] == [("seed", 1234, 7)]
    (proj / "train.py").write_text(TRAIN.replace("LR = 0.05", "LR = 0.03"))
    assert causes(train(proj)) == ["code"]
    git(proj, "checkout", "train.py")
    data = (proj / "data" / "train.csv").read_text()
    (proj / "data" / "train.csv").write_text(data + "3.0,7.5\n")
    assert causes(train(proj)) == ["data"]
    (proj / "data" / "train.csv").write_text(data)
    (proj / "requirements.in").write_text("six==1.17.0\n")
    lock_and_build(proj)
    git(proj, "commit", "-qam", "six 1.17.0")
    pkg = train(proj)
    assert causes(pkg) == ["environment"]
    out = json.loads(envbuild(proj, "diff", base["id"], pkg["id"], "--json").stdout)
    six = [c for c in out["sections"]["environment"]["changes"] if c["what"] == "six"]
    assert six == [{"what": "six", "a": "1.16.0", "b": "1.17.0", "note": "changed"}]
    report = envbuild(proj, "diff", base["id"], pkg["id"]).stdout
    assert "Code: identical" in report and "Data: identical" in report and "1.17.0" in report
