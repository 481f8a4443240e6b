"""`edgepack compare OLD NEW` (two bundles' figures side by side, the change of each, regressions flagged) and
`edgepack report BUNDLE` (the HTML report of an existing bundle)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary

OLD_MEASUREMENTS = typer.Option(
    None, "--old-measurements", help="OLD's measurements.json (for a .zip, which has none)."
)
NEW_MEASUREMENTS = typer.Option(
    None, "--new-measurements", help="NEW's measurements.json (for a .zip, which has none)."
)


def register(app: typer.Typer) -> None:
    """Add the compare and report commands to the top-level app."""

    @app.command()
    @boundary
    def compare(
        old: Path = typer.Argument(..., help="The earlier bundle: a directory, its manifest.json or BUNDLE.zip."),
        new: Path = typer.Argument(..., help="The later bundle, likewise."),
        old_measurements: Path = OLD_MEASUREMENTS,
        new_measurements: Path = NEW_MEASUREMENTS,
    ) -> None:
        """Compare two bundles: each figure old, new and its change, regressions flagged.

        Size, shipped size, the task's metric, latency percentiles per device, TFLM arena, activation peak,
        MACs, op histogram and per-layer quantization error of OLD and NEW: old, new, change; regressions
        flagged (latency beyond 5 %, timings vary; quantization error beyond 10 %; the rest at any change
        for the worse). Exit 0 either way: budgets (`[budgets] baseline`) are what fail a CI job."""
        from edgepack.bundle.figures import read_figures
        from edgepack.gate.compare import compare as compare_figures
        from edgepack.summary.gate import compare_table

        comparison = compare_figures(read_figures(old, old_measurements), read_figures(new, new_measurements))
        regressions = comparison.regressions
        output.result(
            comparison.to_dict(),
            compare_table(comparison),
            f"{len(regressions)} regression(s): {', '.join(c.name for c in regressions)}"
            if regressions
            else "no regressions",
        )

    @app.command()
    @boundary
    def report(
        bundle: Path = typer.Argument(..., help="A bundle directory, its manifest.json or BUNDLE.zip."),
        baseline: Path = typer.Option(
            None, "--baseline", metavar="OLD", help="Add the comparison against this earlier bundle."
        ),
        out: Path = typer.Option(
            None,
            "--out",
            "-o",
            metavar="FILE",
            help="Where to write (default: report.html in the bundle directory; BUNDLE.report.html beside a .zip).",
        ),
        measurements: Path = typer.Option(
            None, "--measurements", help="The bundle's measurements.json (for a .zip, which has none)."
        ),
    ) -> None:
        """Write the HTML report of an existing bundle.

        One self-contained page (no network, plots inline as SVG)
        with the run's identity, budgets, the task's metric after each stage, latency per device, per-layer
        quantization error, activation memory across ops, the mode search and the baseline comparison.
        It is evidence, like measurements.json: `verify` accepts it, the zip and the manifest leave it out."""
        from edgepack.fsutil import atomic_write_text
        from edgepack.report import default_report_path, report_for

        page = report_for(bundle, baseline, measurements)
        target = out or default_report_path(bundle)
        atomic_write_text(target, page)
        output.result({"report": str(target)}, f"wrote {target}")
