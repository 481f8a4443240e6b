"""The HTML report of a bundle (`report.html`): figures from its manifest, measurements.json and model."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def report_for(bundle: Path, baseline: Path | None = None, measurements: Path | None = None) -> str:
    """The report of an existing bundle (a directory, its manifest.json or .zip), with the comparison
    against `baseline` when given."""
    from edgepack.bundle.figures import read_figures
    from edgepack.report.html import render_report

    figures = read_figures(bundle, measurements)
    comparison = None
    if baseline is not None:
        from edgepack.gate.baseline import load_baseline
        from edgepack.gate.compare import compare

        comparison = compare(load_baseline(baseline), figures)  # type: ignore[arg-type]
    return render_report(figures.manifest, figures.run, figures.model, comparison)


def default_report_path(bundle: Path) -> Path:
    """Where `edgepack report` writes by default: report.html in the bundle directory (beside a manifest.json),
    BUNDLE.report.html beside a .zip."""
    if bundle.is_dir():
        return bundle / "report.html"
    if bundle.suffix.lower() == ".zip":
        return bundle.with_name(bundle.stem + ".report.html")
    return bundle.with_name("report.html")


def render(manifest: dict[str, Any], run: dict[str, Any] | None, model: bytes | None, comparison: Any = None) -> str:
    """The page from figures in memory (what the bundle stage writes)."""
    from edgepack.report.html import render_report

    return render_report(manifest, run, model, comparison)
