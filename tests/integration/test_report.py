"""report.html: written with every bundle (evidence, outside the reproducible part), by `edgepack report` for an
existing one; its figures are the manifest's and measurements.json's; it loads in a real headless Chromium with no
console errors and no network, and every plot renders."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it"
)
ALL_PLOTS = ["plot-stages", "plot-latency", "plot-quant-error", "plot-memory", "plot-pareto"]


class Page(HTMLParser):
    """The parts of a report the tests read: data-key rows, plots, table rows by table id, the CSP."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.latency: dict[tuple[str, str], float] = {}
        self.plots: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.csp: str | None = None
        self._table: list[str] = []
        self._device: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content")
        if tag == "table":
            self._table.append(a.get("id") or "")
        if tag == "tr":
            self._device = a.get("data-device")
            self._row = []
            if a.get("data-key") is not None:
                self.values[a["data-key"] or ""] = a.get("data-value") or ""
        if tag == "td" and self._device and a.get("data-key"):
            self.latency[(self._device, a["data-key"] or "")] = float(a.get("data-value") or "nan")
        if tag in ("td", "th"):
            self._cell = []
        if tag == "img" and a.get("class") == "plot":
            self.plots[a.get("id") or ""] = a.get("src") or ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._row is not None and self._table:
            self.rows.setdefault(self._table[-1], []).append(self._row)
            self._row = None
        if tag == "table" and self._table:
            self._table.pop()


@pytest.fixture(scope="module")
def full_bundle(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the default bundle whose records also hold a measured per-layer error and a mode search (the
    default recipe, QAT without a search, has neither), with its report written by `edgepack report --baseline`."""
    bundle = tmp_path_factory.mktemp("report") / "bundle"
    shutil.copytree(default_run["bundle"], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["quantization_error"] = {
        "measured": True,
        "file": "quant_error.json",
        "layers": [
            {
                "layer": "conv1",
                "tensor": "t1",
                "op": "CONV_2D",
                "rmse_over_scale": 0.31,
                "mean_abs_error": 0.001,
                "max_abs_error": 0.005,
            },
            {
                "layer": "logits",
                "tensor": "t2",
                "op": "FULLY_CONNECTED",
                "rmse_over_scale": 0.42,
                "mean_abs_error": 0.07,
                "max_abs_error": 0.14,
            },
        ],
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    run = json.loads((bundle / "measurements.json").read_text())
    size = manifest["model"]["size_bytes"]
    run["search"] = {
        "objective": "smallest",
        "device": "host",
        "allowed_drop": 0.01,
        "met": True,
        "metric": "accuracy",
        "criterion": None,
        "candidates": [
            {
                "mode": mode,
                "size_bytes": s,
                "latency_p50_ms": 0.03,
                "metric": "accuracy",
                "value": v,
                "drop": 0.0,
                "worst_sqnr_db": 40.0,
                "meets": True,
                "pareto": p,
                "chosen": c,
            }
            for mode, s, v, p, c in (
                ("int8", size, 0.98, True, True),
                ("float16", 2 * size, 0.99, True, False),
                ("float32", 4 * size, 0.99, False, False),
            )
        ],
    }
    (bundle / "measurements.json").write_text(json.dumps(run, indent=2))
    result = invoke("report", str(bundle), "--baseline", str(default_run["bundle"]))
    assert result.exit_code == 0, result.stdout + result.stderr
    return {"bundle": bundle, "manifest": manifest, "run": run, "page": bundle / "report.html"}


def test_every_bundle_has_a_report_outside_its_reproducible_part(default_run: dict[str, Any]) -> None:
    bundle = default_run["bundle"]
    assert (bundle / "report.html").is_file()
    assert "report.html" not in {a["path"] for a in default_run["manifest"]["artifacts"]}
    result = invoke("--json", "verify", str(bundle))
    assert result.exit_code == 0, result.stdout
    assert "report.html" not in {row["path"] for row in json.loads(result.stdout)["artifacts"]}


def test_the_reports_figures_are_the_manifests(default_run: dict[str, Any]) -> None:
    manifest = default_run["manifest"]
    run = json.loads((default_run["bundle"] / "measurements.json").read_text())
    page = Page((default_run["bundle"] / "report.html").read_text())
    assert page.csp == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert page.values["model.sha256"] == manifest["model"]["sha256"]
    assert page.values["recipe.sha256"] == manifest["recipe"]["sha256"]
    assert int(page.values["model.size_bytes"]) == manifest["model"]["size_bytes"]
    assert page.values["toolchain.tensorflow"] == manifest["toolchain"]["tensorflow"]
    expected = [
        manifest["metrics"]["float"]["accuracy"],
        *[s["test_metrics"]["accuracy"] for s in manifest["optimization"]["stages"]],
        manifest["metrics"]["tflite"]["accuracy"],
    ]
    assert [float(page.values[f"stage.{i}"]) for i in range(len(expected))] == expected
    assert len(expected) == 4  # float, prune, qat, .tflite
    for key in ("p50", "p90", "p99", "mean", "std", "min", "max"):
        assert page.latency[("host", key)] == run["validation"]["host"]["latency_ms"][key]
    memory = manifest["memory"]
    assert int(page.values["memory.peak_bytes"]) == memory["activation_peak_bytes"]
    assert page.values["memory.peak_op"] == memory["peak_op"]
    budgets = page.rows["budgets"][1:]  # the header row first
    assert [row[0] for row in budgets] == [r["name"] for r in run["gate"]["results"]]
    assert {row[-1] for row in budgets} == {"pass"}
    assert sorted(page.plots) == ["plot-latency", "plot-memory", "plot-stages"]  # no search; QAT: no layer error
    assert "http://" not in (default_run["bundle"] / "report.html").read_text()
    assert "https://" not in (default_run["bundle"] / "report.html").read_text()


def test_report_command_draws_every_plot_and_the_baseline(full_bundle: dict[str, Any]) -> None:
    page = Page(full_bundle["page"].read_text())
    assert sorted(page.plots) == sorted(ALL_PLOTS)
    for src in page.plots.values():
        assert src.startswith("data:image/svg+xml;base64,") and len(src) > 2000
    assert [float(page.values[f"quant.{i}"]) for i in range(2)] == [0.31, 0.42]
    search = page.rows["search"][1:]
    assert [row[0] for row in search] == ["int8", "float16", "float32"]
    baseline = {row[0]: row for row in page.rows["baseline"][1:]}
    assert (
        baseline["shipped size"][1]
        == baseline["shipped size"][2]
        == f"{full_bundle['manifest']['model']['size_bytes']:,} B"
    )


def chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            f"--user-data-dir={folder / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_the_report_loads_in_chromium_with_no_console_errors_and_no_fetch(
    full_bundle: dict[str, Any], tmp_path: Path
) -> None:
    proc = chromium(tmp_path, "--dump-dom", full_bundle["page"].as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console(proc.stderr) == []
    dom = Page(proc.stdout)
    assert sorted(dom.plots) == sorted(ALL_PLOTS)  # the DOM Chromium built holds every plot
    # the control: a page that tries a fetch shows a console error, and the policy blocked it
    fetching = tmp_path / "fetching.html"
    fetching.write_text(
        full_bundle["page"].read_text().replace("<h1>", '<img src="https://example.invalid/x.png"><h1>', 1)
    )
    blocked = chromium(tmp_path, "--dump-dom", fetching.as_uri())
    assert any("example.invalid" in line and "Content Security Policy" in line for line in console(blocked.stderr))


@needs_chromium
def test_every_plot_renders_in_chromium(full_bundle: dict[str, Any], tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    def dark(img: Any) -> int:
        return int((np.asarray(img).sum(axis=2) < 600).sum())

    width, height = 400, 300
    cells = {plot: ((i % 3) * width, (i // 3) * height) for i, plot in enumerate(ALL_PLOTS)}
    css = [
        "body * { visibility: hidden !important; } body { margin: 0; background: #fff; }",
        f"img.plot {{ visibility: visible !important; position: fixed !important; margin: 0 !important; "
        f"width: {width}px !important; height: {height}px !important; }}",
    ]
    css += [f"#{plot} {{ left: {x}px; top: {y}px; }}" for plot, (x, y) in cells.items()]
    grid = tmp_path / "grid.html"
    grid.write_text(full_bundle["page"].read_text().replace("</head>", f"<style>{' '.join(css)}</style></head>", 1))
    shot = tmp_path / "grid.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={3 * width},{2 * height}", grid.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    for plot, (x, y) in cells.items():
        cell = image.crop((x, y, x + width, y + height))
        inked = dark(cell)
        assert inked > 0.01 * width * height, f"{plot} is blank ({inked} dark pixels)"
        assert len(cell.getcolors(maxcolors=1 << 16) or []) > 10, f"{plot} has no colours"
    empty = image.crop((2 * width, height, 3 * width, 2 * height))  # the sixth cell: no plot there
    assert dark(empty) == 0
    page = tmp_path / "page.png"
    full = chromium(tmp_path, f"--screenshot={page}", "--window-size=1200,2400", full_bundle["page"].as_uri())
    assert full.returncode == 0 and console(full.stderr) == []
    assert len(Image.open(page).convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50
