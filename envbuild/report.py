"""The run report: one self-contained HTML page per set of runs, for people who do not read record.json.

What is on it, per run: the card (status, command, seed, image and base digests, lock hash, commit and
whether dirty, data and outputs with their checksums, GPU and driver, duration); every metric the run
logged over its steps, several runs overlaid on one chart; the metrics that have a single value, and
the params, in tables; the lineage of each output (output → run → image → lock files → base digest,
data files → run) drawn as a graph. With two runs, the diff by cause exactly as `envbuild diff` says
it (compare.diff_records). `envbuild reproduce --report` and `verify --report` add their checks.

Plotting library: plotly. Its Python wheel is pure Python (no numpy, no compiled parts, imports in
about 70 ms, only by this module, only when a report is written), and `plotly.offline.get_plotlyjs()`
ships plotly.js inside the wheel, so the page carries it inline once: no CDN, no network, opens
from disk or a CI artifact store years later. The charts are interactive (hover for the exact value,
zoom, click a run in the legend to hide it), which a static matplotlib SVG is not, and matplotlib
would bring numpy, pillow and compiled wheels. The lineage is a plotly Sankey diagram: a graph
layout the library draws, no chart code of our own. The cost is size: plotly.js is ~4.6 MB of
every page.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from string import Template
from typing import Any, Iterable

from envbuild import record as rec
from envbuild.record import DataFacts, OutputFacts, Record
from envbuild.errors import EnvbuildError
from envbuild.fsutil import atomic_write_text

TEMPLATE = Path(__file__).parent / "templates" / "report.html"
GENERATOR = '<meta name="generator" content="envbuild report">'  # in the template's head: marks our files
# plotly's default palette, so a run has the same colour on every chart
COLORS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def _plotly():
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError:
        raise EnvbuildError("envbuild report needs plotly, which is not installed; "
                            "pip install 'envbuild[report]'") from None
    return go, plotly.offline


def _e(value: Any) -> str:
    return html.escape("—" if value is None or value == "" else str(value))


def _short(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "—"
    algo, _, hexpart = str(digest).rsplit("@", 1)[-1].rpartition(":")  # repo@sha256:… shows as sha256:…
    return f"{algo + ':' if algo else ''}{hexpart[:n]}"


# --- what the page shows, from records -------------------------------------------------------


def series(run_dir: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Each metric's (steps, values) from envbuild.track; a call without step= counts as the next step."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for entry in rec.metric_history(run_dir):
        for name, value in entry["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            xs, ys = out.setdefault(name, ([], []))
            step = entry.get("step")
            xs.append(step if isinstance(step, (int, float)) and not isinstance(step, bool) else len(xs))
            ys.append(value)
    return out


def card_rows(record: dict[str, Any] | Record) -> list[tuple[str, str]]:
    """(label, HTML) rows of the run card."""
    r = Record.from_dict(record)
    image, lock, code, host = r.image, r.lock, r.code, r.host
    status = r.status if r.status is not None else "?"
    status_html = f'<span class="status {_e(status)}">{_e(status)}</span>' + (
        f" (exit {_e(r.exit_code)})" if r.exit_code is not None else "") + (f": {_e(r.reason)}" if r.reason else "")
    dirty = code.dirty
    dirty_html = ('<span class="warn">dirty: uncommitted diff sha256 ' + _e(code.diff_sha256) + "</span>"
                  if dirty else "clean" if dirty is False else f"state unknown ({_e(code.error)})")
    gpu_html = "; ".join(f"{_e(g.name)}, driver {_e(g.driver)}, CUDA {_e(g.cuda)}" for g in host.gpus) or "none (CPU)"
    torch = r.torch
    if torch.cuda:
        gpu_html += f"; torch {_e(torch.torch)} with CUDA {_e(torch.cuda)}, cuDNN {_e(torch.cudnn)}"
    duration = r.duration_s
    return [
        ("status", status_html),
        ("command", f"<code>{_e(' '.join(r.command))}</code>"),
        ("seed", f"{_e(r.seed)} (deterministic: {_e(r.determinism.enabled)})"),
        ("started", _e(r.started_at)),
        ("duration", f"{duration:.1f} s" if isinstance(duration, (int, float)) else "—"),
        ("image", f"<code>{_e(image.ref)}</code><br>id <code>{_e(image.id)}</code>"),
        ("registry digest", f"<code>{_e(image.repo_digest or 'not pushed')}</code>"),
        ("base", f"<code>{_e(image.base)}</code><br>digest <code>{_e(image.base_digest)}</code>"),
        ("lock hash", f"<code>{_e(r.lock_hash)}</code>"),
        ("lock files", "<br>".join(f"{_e(n)} <code>{_e(s)}</code>" for n, s in lock.lockfiles.items()) or "—"),
        ("commit", f"<code>{_e(code.commit)}</code> ({_e(code.branch)}), {dirty_html}"),
        ("data", _files(r.data)),
        ("outputs", _files(r.outputs)),
        ("GPU / driver", gpu_html),
        ("host", _e(", ".join(str(v) for v in (host.os, host.kernel, host.machine, host.cpu) if v)
                    + (f", {host.cpus} CPUs" if host.cpus else ""))),
        ("reproduces", _e(r.reproduces)),
    ]


def _files(entries: tuple[DataFacts, ...] | tuple[OutputFacts, ...]) -> str:
    """Data entries (with their file counts) or outputs, as a table."""
    if not entries:
        return "—"
    rows = "".join(
        f"<tr><td>{_e(f.path)}</td><td><code>{_e(f.sha256)}</code></td>"
        f"<td>{_e(f.bytes)} bytes" + (f", {_e(f.files)} files" if isinstance(f, DataFacts) else "") + "</td></tr>"
        for f in entries)
    return f'<table class="files">{rows}</table>'


def lineage_figure(go: Any, record: dict[str, Any] | Record) -> Any:
    """output → run → image → lock files → base digest, and data files → run, as a Sankey graph
    (flows point from an ingredient to what was made from it), one column per kind of thing."""
    r = Record.from_dict(record)
    image, lock = r.image, r.lock
    nodes: list[tuple[str, str, int]] = []  # (label, hover, column)
    links: list[tuple[int, int]] = []

    def node(label: str, hover: str, column: int) -> int:
        nodes.append((label, hover, column))
        return len(nodes) - 1

    base = node(f"base {_short(image.base_digest)}", f"{image.base}@{image.base_digest}", 0)
    image_digest = image.repo_digest or image.id
    img = node(f"image {_short(image_digest)}", f"{image.ref}<br>{image_digest}", 1)
    links.append((base, img))
    for name, sha in lock.lockfiles.items():
        links.append((node(f"{name} {_short(sha, 8)}", f"{name}<br>sha256 {sha}", 0), img))
    run = node(f"run {r.id}", f"run {r.id}<br>{' '.join(r.command)}", 2)
    links.append((img, run))
    for d in r.data:
        links.append((node(f"data {d.path} {_short(d.sha256, 8)}", f"{d.path}<br>sha256 {d.sha256}", 1), run))
    for o in r.outputs:
        links.append((run, node(f"{o.path} {_short(o.sha256, 8)}", f"{o.path}<br>sha256 {o.sha256}", 3)))
    # fixed columns, each node centred in its share of the column: labels never run into each other
    columns = [[i for i, n in enumerate(nodes) if n[2] == c] for c in range(4)]
    xs, ys = [0.0] * len(nodes), [0.0] * len(nodes)
    for c, members in enumerate(columns):
        for k, i in enumerate(members):
            xs[i], ys[i] = (0.001, 0.3, 0.55, 0.999)[c], (k + 0.5) / len(members)
    fig = go.Figure(go.Sankey(
        arrangement="fixed",
        node=dict(label=[n[0] for n in nodes], customdata=[n[1] for n in nodes], x=xs, y=ys,
                  hovertemplate="%{customdata}<extra></extra>", pad=18, thickness=14, color="#9aa7c7"),
        link=dict(source=[s for s, _ in links], target=[t for _, t in links], value=[1] * len(links),
                  color="rgba(99,110,250,0.25)"),
    ))
    tallest = max(len(m) for m in columns)
    fig.update_layout(height=max(220, 70 * tallest), margin=dict(l=10, r=10, t=10, b=10), font_size=12)
    return fig


def metric_figure(go: Any, name: str, runs: list[tuple[str, dict]]) -> Any:
    fig = go.Figure()
    for i, (run_id, data) in enumerate(runs):
        if name in data:
            xs, ys = data[name]
            fig.add_trace(go.Scatter(x=xs, y=ys, name=run_id, mode="lines+markers",
                                     line=dict(color=COLORS[i % len(COLORS)])))
    steps = [x for _, data in runs if name in data for x in data[name][0]]
    if all(isinstance(x, int) for x in steps):  # whole steps: no tick at 0.5
        fig.update_xaxes(dtick=max(1, (max(steps) - min(steps)) // 10))
    fig.update_layout(title=name, height=320, margin=dict(l=50, r=20, t=50, b=40), xaxis_title="step",
                      yaxis_title=name, legend=dict(orientation="h", y=-0.2), template="plotly_white")
    return fig


def _table(header: list[str], rows: Iterable[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def diff_html(diff: Any) -> str:
    """The diff by cause, the same sections, changes and deltas `envbuild diff` prints."""
    from envbuild.compare import CAUSES

    parts = [f'<p>differs in: <b>{_e(", ".join(CAUSES[c].lower() for c in diff.causes) or "nothing")}</b></p>']
    for s in diff.sections:
        if s.identical:
            parts.append(f'<p class="same">✓ {_e(s.title)}: identical</p>')
        else:
            parts.append(f'<h3 class="differs">✗ {_e(s.title)}</h3>' + _table(
                ["what", diff.a, diff.b, "note"], ([c.what, _fmt(c.a), _fmt(c.b), c.note] for c in s.changes)))
    if diff.metrics:
        parts.append("<h3>Metrics</h3>" + _table(
            ["metric", diff.a, diff.b, "delta"],
            ([m.name, _fmt(m.a), _fmt(m.b), None if m.delta is None else f"{m.delta:+.6g}"] for m in diff.metrics)))
    if diff.outputs:
        same = sum(o.same for o in diff.outputs)
        parts.append(f"<h3>Outputs</h3><p>{same} of {len(diff.outputs)} files byte-identical</p>" + _table(
            ["path", diff.a, diff.b, "same"], ([o.path, o.a, o.b, "yes" if o.same else "no"] for o in diff.outputs)))
    return "\n".join(parts)


def checks_html(checks: list[Any]) -> str:
    return "<ul class=\"checks\">" + "".join(
        f'<li class="{"ok" if c.ok else "bad"}">{"✓" if c.ok else "✗"} <b>{_e(c.name)}</b>: {_e(c.detail)}</li>'
        for c in checks) + "</ul>"


# --- the page -------------------------------------------------------------------------------


def _metrics_section(go: Any, runs: list[tuple[Path, Record]], fig_html: Any) -> str:
    """A chart per metric logged over steps (the runs overlaid); single values and params in tables."""
    ids = [r.id for _, r in runs]
    history = [(r.id, series(d)) for d, r in runs]
    plotted = sorted({name for _, data in history for name, (xs, _) in data.items() if len(xs) > 1})
    parts = ["<h2>Metrics</h2>"]
    parts += [f'<div class="chart">{fig_html(metric_figure(go, name, history), f"metric-{n}")}</div>'
              for n, name in enumerate(plotted)] or [
        "<p>No metric was logged over steps (envbuild.track.log_metrics(..., step=N)).</p>"]
    # a single value has no curve: such metrics (and the params) go in tables, one column per run
    single = sorted({k for _, r in runs for k in r.metrics} - set(plotted))
    if single:
        parts.append("<h3>Final values</h3>" + _table(
            ["metric", *ids], ([k, *(_fmt(r.metrics.get(k)) for _, r in runs)] for k in single)))
    params = sorted({k for _, r in runs for k in r.params})
    if params:
        parts.append("<h3>Params</h3>" + _table(
            ["param", *ids], ([k, *(r.params.get(k) for _, r in runs)] for k in params)))
    return '<section id="metrics">' + "\n".join(parts) + "</section>"


def render(runs: list[tuple[Path, dict[str, Any] | Record]], checks: list[Any] | None = None, title: str | None = None) -> str:
    """The whole HTML page for these (run dir, record) pairs, oldest first as given."""
    go, offline = _plotly()
    config = {"displaylogo": False, "responsive": True}
    runs = [(d, Record.from_dict(r)) for d, r in runs]
    ids = [r.id for _, r in runs]

    def fig_html(fig: Any, div_id: str, **extra: Any) -> str:
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={**config, **extra})

    sections: list[str] = []
    if checks:
        sections.append('<section id="checks"><h2>Checks</h2>' + checks_html(checks) + "</section>")
    for i, (_, record) in enumerate(runs):
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in card_rows(record))
        sections.append(f'<section class="card" id="card-{i}"><h2><span class="swatch" style="background:'
                        f'{COLORS[i % len(COLORS)]}"></span>Run {_e(record.id)}</h2>'
                        f'<table class="card">{rows}</table></section>')

    if runs:
        sections += [_metrics_section(go, runs, fig_html)]
    if len(runs) == 2:
        from envbuild.compare import diff_records

        (dir_a, a), (dir_b, b) = runs
        sections.append(f'<section id="diff"><h2>Diff by cause: {_e(a.id)} → {_e(b.id)}</h2>'
                        + diff_html(diff_records(a, b, dir_a, dir_b)) + "</section>")
    if runs:
        lineage = [f'<h3>Run {_e(r.id)}</h3><div class="lineage">'
                   f'{fig_html(lineage_figure(go, r), f"lineage-{i}", displayModeBar=False)}</div>'
                   for i, (_, r) in enumerate(runs)]
        sections.append('<section id="lineage"><h2>Lineage</h2><p>Each flow goes from an ingredient to what '
                        'was made from it: base and lock files → image → run → outputs, data files → run. '
                        'Hover a box for its full digest.</p>' + "\n".join(lineage) + "</section>")

    page_title = title or ("envbuild report: " + ", ".join(ids) if ids else "envbuild report: checks")
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Template(TEMPLATE.read_text()).substitute(
        title=_e(page_title), plotlyjs=offline.get_plotlyjs(), generated=_e(generated),
        body="\n".join(sections), data=html.escape(json.dumps({"runs": ids})))


def write(root: Path, refs: list[str], out: Path, checks: list[Any] | None = None) -> Path:
    """Write the report of these runs of the project at `root` to `out`, atomically; return its path."""
    from envbuild import store

    by_id: dict[str, tuple[Path, Record]] = {}
    for ref in refs:
        run_dir, raw = store.load_run(root, ref)
        record = Record.from_dict(raw)
        by_id.setdefault(record.id, (Path(run_dir), record))  # "latest" and its id are one run
    runs = list(by_id.values())
    if not runs and not checks:
        raise EnvbuildError(f"{store.runs_dir(root)}: no runs to report on; start one with envbuild run SCRIPT")
    runs.sort(key=lambda p: (p[1].started_at or "", p[1].id))
    out = Path(out)
    if out.is_dir():
        raise EnvbuildError(f"{out}: is a directory; give the report's file name, e.g. -o {out / 'report.html'}")
    if out.exists() and GENERATOR.encode() not in out.open("rb").read(2048):  # only our own reports are replaced
        raise EnvbuildError(f"{out}: exists and is not an envbuild report; give another file with -o, "
                            "or move that one away")
    atomic_write_text(out, render(runs, checks))
    return out
