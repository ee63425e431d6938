"""`envbuild report` of two runs that logged 3 metrics over 1,000 steps each, against the same charts
written straight with plotly (`fig.write_html(include_plotlyjs=True)`, one self-contained file per
metric, as a user would script it): what the card, tables, diff and lineage cost on top.

Both sides are timed as commands (interpreter start-up included) and both inline plotly.js.

    python bench/report.py [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

from common import ENVBUILD, PYTHON, Row, repeat, script_main, timed

STEPS, SMOKE_STEPS = 1000, 20
METRICS = ("loss", "acc", "lr")
PEER = """
import json, sys
from pathlib import Path
import plotly.graph_objects as go
runs = sorted(Path(sys.argv[1]).glob(".envbuild/runs/*"))
for name in %r:
    fig = go.Figure()
    for run in runs:
        rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r["metrics"][name] for r in rows], name=run.name))
    fig.write_html(str(Path(sys.argv[1]) / f"{name}.html"), include_plotlyjs=True)
""" % (METRICS,)


def write_runs(root: Path, steps: int) -> list[str]:
    from tests.helpers.records import record, save, variant

    a = record("20260101T000000Z-aaaaaa")
    b = variant(a, "20260101T000100Z-bbbbbb", seed=7, started_at="2026-01-01T00:01:00Z")
    for i, r in enumerate((a, b)):
        lines = [json.dumps({"metrics": {"loss": 1 / (s + 1 + i), "acc": s / steps, "lr": 0.1 * 0.99 ** s},
                             "step": s, "time": 1.0 + s}) for s in range(steps)]
        (save(root, r) / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return [a["id"], b["id"]]


def measure(runs: int, smoke: bool) -> list[Row]:
    steps = SMOKE_STEPS if smoke else STEPS
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-report-") as tmp:
        root = Path(tmp)
        ids = write_runs(root, steps)
        script = root / "peer.py"
        script.write_text(PEER)
        report = [*ENVBUILD, "report", *ids, "-o", str(root / "report.html"), "-C", str(root)]
        timed(report, root)  # untimed first start: modules in the page cache
        peer = repeat(lambda: timed([PYTHON, str(script), str(root)], root), runs)
        ours = repeat(lambda: timed(report, root), runs)
        size = (root / "report.html").stat().st_size
    ref = f"plotly write_html, {len(METRICS)} charts"
    return [
        Row("report", ref, peer, note=f"{len(METRICS)} files, 2 runs x {steps} steps each"),
        Row("report", f"envbuild report (2 runs x {steps} steps)", ours, ref=ref,
            note=f"one {size / 1e6:.1f} MB page: charts + cards, tables, diff, lineage"),
    ]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return script_main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
