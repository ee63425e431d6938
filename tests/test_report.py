"""envbuild report: the HTML page of runs, built from records, opened in real headless Chromium.

Unit tests render hand-written records (tests/helpers/records.py); the browser tests load the page
from disk with the network off and look at what was drawn; the torch test does it all on a real
run of examples/torch-mnistlike in the real engine, and through `reproduce --report` and
`verify --report`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from envbuild import report
from envbuild.errors import EnvbuildError
from tests.conftest import REPO_ROOT, missing, run_cli
from tests.helpers import browser
from tests.helpers.records import SHA, record, save, variant

# what the browser test asks the page: each plot's drawn SVG size, its curves and lineage boxes
PROBE = """(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].map(p => {
    const svg = p.querySelector('svg.main-svg'), r = svg ? svg.getBoundingClientRect() : null;
    const text = [...p.querySelectorAll('text')].map(t => t.textContent).join(' | ');
    return {id: p.id, width: r ? r.width : 0, height: r ? r.height : 0, text,
            curves: [...p.querySelectorAll('.scatterlayer path.js-line')]
                      .filter(l => (l.getAttribute('d') || '').length > 10).length,
            nodes: p.querySelectorAll('.sankey-node').length, links: p.querySelectorAll('.sankey-link').length};
  });
  return {plots, text: document.body.innerText, scripts: [...document.scripts].map(s => s.src).filter(Boolean)};
})()"""


def _write_history(run_dir: Path, values: dict[str, list[float]], steps: bool = True) -> None:
    n = max(len(v) for v in values.values())
    with open(run_dir / "metrics.jsonl", "w") as f:
        for i in range(n):
            entry = {"metrics": {k: v[i] for k, v in values.items() if i < len(v)}, "step": i if steps else None,
                     "time": 1.0 + i}
            f.write(json.dumps(entry) + "\n")


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    a = record("20260101T000000Z-aaaaaa", metrics={"loss": 0.25, "acc": 0.9, "wall_s": 3.0})
    b = variant(a, "20260101T000100Z-bbbbbb", seed=7, started_at="2026-01-01T00:01:00Z",
                metrics={"loss": 0.2, "acc": 0.92, "wall_s": 3.5})
    b["outputs"] = [{"path": "outputs/model.npy", "sha256": SHA["9"], "bytes": 80}]
    _write_history(save(tmp_path, a), {"loss": [1.0, 0.5, 0.25], "acc": [0.5, 0.8, 0.9]})
    # a NaN (a diverged step) is a gap in the curve, not a broken page
    _write_history(save(tmp_path, b), {"loss": [0.9, float("nan"), 0.2], "acc": [0.6, 0.85, 0.92]}, steps=False)
    return tmp_path


def test_series_takes_steps_and_numbers_calls_without_one(two_runs: Path) -> None:
    runs = two_runs / ".envbuild" / "runs"
    assert report.series(runs / "20260101T000000Z-aaaaaa")["loss"] == ([0, 1, 2], [1.0, 0.5, 0.25])
    assert report.series(runs / "20260101T000100Z-bbbbbb")["acc"] == ([0, 1, 2], [0.6, 0.85, 0.92])


def test_page_has_card_charts_tables_diff_and_lineage_and_nothing_from_the_network(two_runs: Path) -> None:
    out = report.write(two_runs, ["20260101T0001", "20260101T0000"], two_runs / "r.html")
    page = out.read_text()
    # oldest first whatever the order asked; both cards with their facts
    assert page.index("Run 20260101T000000Z-aaaaaa") < page.index("Run 20260101T000100Z-bbbbbb")
    for fact in ("sha256:" + SHA["1"], "sha256:" + SHA["2"], SHA["3"], "c" * 40, SHA["6"], SHA["8"], SHA["9"],
                 "python train.py --epochs 3", "data/train.csv", "outputs/model.npy", "5.0 s"):
        assert fact in page, fact
    # a chart per metric with steps (two runs overlaid), a table for the one without
    assert 'id="metric-0"' in page and 'id="metric-1"' in page and 'id="metric-2"' not in page
    assert "<h3>Final values</h3>" in page and "wall_s" in page
    # the diff by cause, as envbuild diff says it: only the seed differs
    assert "differs in: <b>seed and determinism</b>" in page
    assert "✓ Code: identical" in page and "✗ Seed and determinism" in page
    assert "0 of 1 files byte-identical" in page
    assert 'id="lineage-0"' in page and 'id="lineage-1"' in page
    # self-contained: plotly.js inline, no script or stylesheet fetched from anywhere
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    assert len(page) > 3_000_000  # plotly.js is in it


def test_one_run_has_no_diff_and_says_when_nothing_was_logged_over_steps(tmp_path: Path) -> None:
    save(tmp_path, record())
    page = report.write(tmp_path, ["latest", "20260101T000000Z-aaaaaa"], tmp_path / "one.html").read_text()
    assert '<section id="diff">' not in page and page.count('<section class="card"') == 1
    assert "No metric was logged over steps" in page


def test_card_names_gpu_driver_and_cuda(tmp_path: Path) -> None:
    r = record()
    r["host"]["gpus"] = [{"index": 0, "name": "NVIDIA H200", "driver": "570.86.15", "cuda": "12.8"}]
    r["cuda"] = {"lock": {}, "torch": {"torch": "2.13.0+cu128", "cuda": "12.8", "cudnn": "91002"}}
    gpu = dict(report.card_rows(r))["GPU / driver"]
    assert gpu == ("NVIDIA H200, driver 570.86.15, CUDA 12.8; torch 2.13.0+cu128 with CUDA 12.8, cuDNN 91002")
    assert dict(report.card_rows(record()))["GPU / driver"] == "none (CPU)"


def test_checks_without_runs(tmp_path: Path) -> None:
    from envbuild.verify import Check

    page = report.write(tmp_path, [], tmp_path / "c.html", [Check("lock", False, "stale: requirements.in changed"),
                                                           Check("image", True, "built")]).read_text()
    assert '<li class="bad">✗ <b>lock</b>: stale: requirements.in changed</li>' in page
    assert '<li class="ok">✓ <b>image</b>' in page and '<section id="lineage">' not in page
    with pytest.raises(EnvbuildError, match="no runs to report on"):
        report.write(tmp_path, [], tmp_path / "d.html")


def test_record_text_is_escaped(tmp_path: Path) -> None:
    save(tmp_path, record(command=["python", "<script>alert(1)</script>"]))
    page = report.write(tmp_path, ["latest"], tmp_path / "x.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    save(tmp_path, record())
    with pytest.raises(EnvbuildError, match="no run 'nope'"):
        report.write(tmp_path, ["nope"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    (tmp_path / "dir").mkdir()
    with pytest.raises(EnvbuildError, match="is a directory"):
        report.write(tmp_path, ["latest"], tmp_path / "dir")
    theirs = tmp_path / "notes.html"
    theirs.write_text("<html>my notes</html>")
    with pytest.raises(EnvbuildError, match="exists and is not an envbuild report"):
        report.write(tmp_path, ["latest"], theirs)
    assert theirs.read_text() == "<html>my notes</html>"
    report.write(tmp_path, ["latest"], tmp_path / "r2.html")
    report.write(tmp_path, ["latest"], tmp_path / "r2.html")  # its own report is replaced
    proc = run_cli("report", "nope", "-C", str(tmp_path), "-o", str(tmp_path / "r.html"))
    assert proc.returncode != 0 and "no run 'nope'" in proc.stderr and not (tmp_path / "r.html").exists()


# --- in a real browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (make browser): skip locally without it, fail under ENVBUILD_REQUIRE_DOCKER=1 (CI)."""
    binary = browser.chromium()
    if binary:
        return binary
    missing("chromium is not installed (run `make browser`)")


def look(path: Path, shot: Path) -> browser.PageResult:
    """Open the report offline, check it drew without errors or fetches, save its screenshot."""
    page = browser.open_page(path, PROBE)
    shot.write_bytes(page.screenshot)
    assert page.errors == [], page.errors
    assert page.failed == [] and page.requests == [path.resolve().as_uri()], page.requests
    assert page.value["scripts"] == []
    width, height = browser.png_size(page.screenshot)
    assert width == browser.WIDTH and height > 1000, (width, height)  # nothing sticks out sideways
    return page


def test_browser_draws_the_charts_and_lineage_offline(two_runs: Path, chromium: str, tmp_path: Path) -> None:
    out = report.write(two_runs, ["20260101T0000", "20260101T0001"], two_runs / "r.html")
    page = look(out, tmp_path / "shot.png")
    plots = {p["id"]: p for p in page.value["plots"]}
    assert set(plots) == {"metric-0", "metric-1", "lineage-0", "lineage-1"}
    for p in plots.values():
        assert p["width"] > 900 and p["height"] >= 200, p
    assert plots["metric-0"]["curves"] == 2 and plots["metric-1"]["curves"] == 2  # both runs overlaid
    assert "acc" in plots["metric-0"]["text"] and "loss" in plots["metric-1"]["text"]
    # base, lock file, image, run, two data files, one output: 7 boxes, 6 flows
    assert plots["lineage-0"]["nodes"] == 7 and plots["lineage-0"]["links"] == 6
    assert "run 20260101T000000Z-aaaaaa" in plots["lineage-0"]["text"]
    assert "outputs/model.npy 88888888" in plots["lineage-0"]["text"]
    assert "differs in: seed and determinism" in page.value["text"]


def test_the_browser_writes_nothing_into_home(chromium: str, tmp_path: Path, monkeypatch) -> None:
    """Chromium keeps its profile, caches and dconf in the test's temp dir, not in ~/.cache or ~/.config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    page = tmp_path / "p.html"
    page.write_text("<html><body>hello</body></html>")
    assert browser.open_page(page, "document.body.innerText", ready="true").value == "hello"
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []


# --- a real run of the torch example ------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(root), *args],
                   check=True, capture_output=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_torch_example_report_shows_loss_curve_card_and_lineage(
        base_image: str, chromium: str, tmp_path: Path) -> None:
    root = Path(shutil.copytree(REPO_ROOT / "examples" / "torch-mnistlike", tmp_path / "torch",
                                ignore=shutil.ignore_patterns("outputs", ".envbuild")))
    locked = run_cli("lock", cwd=root, timeout=1500)
    assert locked.returncode == 0, locked.stderr[-3000:]
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "torch example")
    ran = run_cli("run", "--json", "train.py", "--epochs", "4", cwd=root, timeout=1500)
    assert ran.returncode == 0, ran.stderr[-3000:]
    r = json.loads(ran.stdout)
    model = next(o for o in r["outputs"] if o["path"] == "outputs/model.pt")

    made = run_cli("report", "-o", str(tmp_path / "torch.html"), cwd=root)
    assert made.returncode == 0, made.stderr
    page = look(tmp_path / "torch.html", Path(os.environ.get("ENVBUILD_REPORT_SHOT", tmp_path / "torch.png")))
    text = page.value["text"]
    for fact in (r["id"], "succeeded", "python train.py --epochs 4", str(r["seed"]), r["image"]["id"],
                 r["image"]["base_digest"], r["lock"]["lock_hash"], r["code"]["commit"], "clean",
                 model["sha256"], "none (CPU)"):
        assert fact in text, fact
    plots = {p["id"]: p for p in page.value["plots"]}
    loss = next(p for p in plots.values() if "train_loss" in p["text"])
    assert loss["curves"] == 1 and loss["width"] > 900 and loss["height"] >= 250
    lineage = plots["lineage-0"]
    assert lineage["nodes"] >= 5 and f"run {r['id']}" in lineage["text"]
    assert f"outputs/model.pt {model['sha256'][:8]}" in lineage["text"]
    assert f"image {r['image']['id'][:19]}" in lineage["text"]  # "sha256:" + 12 hex

    # the same report for CI: reproduce adds the new run and the diff; verify adds its checks
    again = run_cli("reproduce", "latest", "--report", str(tmp_path / "again.html"), cwd=root, timeout=1500)
    assert again.returncode == 0, again.stderr[-3000:]
    page = (tmp_path / "again.html").read_text()
    assert page.count('<section class="card"') == 2 and '<section id="diff">' in page and "✓ Code: identical" in page
    assert "1 of 1 files byte-identical" in page and "reproduce" in page
    checked = run_cli("verify", "--report", str(tmp_path / "verify.html"), cwd=root, timeout=600)
    assert checked.returncode == 0, checked.stderr[-3000:]
    page = (tmp_path / "verify.html").read_text()
    assert '<li class="ok">✓ <b>lock</b>' in page and '<li class="ok">✓ <b>image</b>' in page
    assert page.count('<section class="card"') == 1  # no --reproduce: the latest run
