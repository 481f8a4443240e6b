"""`edgepack gate BUNDLE`: check budgets against a bundle's recorded measurements."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.cli.group import typer_app
from edgepack.cli.stages import JUNIT, MARKDOWN, baseline_table, finish_gate, write_markdown
from edgepack.summary.gate import budget_table
from edgepack.table import Span, Table

if TYPE_CHECKING:
    from edgepack.records import Fit

BASELINE = typer.Option(
    None,
    "--baseline",
    metavar="OLD",
    help="Check the baseline budgets (max_size_increase, max_latency_increase, max_accuracy_loss) "
    "against this earlier bundle (a directory or its manifest.json) instead of the "
    "budgets' own baseline (relative to --recipe's file, else to the current directory).",
)


def register(app: typer.Typer) -> None:
    """Add the gate and verify commands to the top-level app."""

    @app.command()
    @boundary
    def gate(
        bundle: Path = typer.Argument(..., help="A bundle directory, its manifest.json, or BUNDLE.zip."),
        recipe: str = typer.Option(
            None, "--recipe", "-r", help="Take the budgets from this recipe instead of the bundle's own."
        ),
        junit: Path = JUNIT,
        measurements: Path = typer.Option(
            None,
            "--measurements",
            help="The measurements.json to check latency budgets against "
            "(default: the one in the bundle directory; a .zip has none).",
        ),
        baseline: Path = BASELINE,
        markdown: Path = MARKDOWN,
    ) -> None:
        """Check budgets against a bundle (directory or .zip); exit 0 when all hold, 3 when any is exceeded."""
        import json

        from edgepack.bundle.manifest import read_manifest, read_measurements
        from edgepack.bundle.verify import measurements_problems
        from edgepack.errors import BundleError
        from edgepack.gate import check_budgets, measurements_from_manifest
        from edgepack.gate.baseline import baseline_path, baseline_results, load_baseline
        from edgepack.gate.budgets import conversion_results, gpu_figures, needs_gpu
        from edgepack.recipe import load_recipe
        from edgepack.recipe.schema import Budgets

        manifest = read_manifest(bundle)
        run = read_measurements(measurements or bundle)  # None for a .zip: latencies change every run
        if measurements is not None and run is None:
            raise BundleError(
                f"{measurements}: no measurements file here", hint="give the measurements.json of a bundle directory"
            )
        base_dir = Path.cwd()  # a baseline in the bundle's own budgets is read from here
        if recipe is not None:
            loaded = load_recipe(recipe)
            budgets, base_dir = loaded.recipe.budgets, loaded.base_dir
        else:
            try:
                budgets = Budgets.model_validate(manifest["recipe"]["resolved"]["budgets"])
            except (KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
                raise BundleError(
                    f"{bundle}: the manifest lacks or garbles the budgets: {exc}",
                    hint="re-create the bundle with `edgepack bundle`",
                ) from exc
        old = load_baseline(baseline_path(budgets, base_dir, baseline))
        if run is not None:
            problems = measurements_problems(json.dumps(run).encode("utf-8"), None)
            if run.get("model_sha256") != (manifest.get("model") or {}).get("sha256"):
                problems.append("measurements.json: measured another model (its model_sha256 is not the manifest's)")
            if problems:
                raise BundleError(
                    "; ".join(problems),
                    context=str(measurements or bundle),
                    code="bundle-modified",
                    hint="gate the measurements.json written with this bundle",
                )
        elif budgets.latency_p90_ms is not None:
            raise BundleError(
                f"{bundle}: no measurements.json to check latency_p90_ms against (the .zip edgepack "
                "writes leaves it out: it changes every run)",
                hint="gate the bundle directory, or give --measurements DIR/measurements.json",
            )
        try:
            measured = measurements_from_manifest(manifest, run)
            if budgets.fits:  # fitted now, to the board profiles as they are (the bundle's own or another recipe's)
                measured = replace(measured, fits=_fits(bundle, manifest, budgets.fits))
            if needs_gpu(budgets):  # the GPU delegate's verdict, from the bundle's model file (offline)
                from edgepack.bundle.figures import bundle_model

                model = bundle_model(bundle, manifest)
                measured = replace(measured, gpu=None if model is None else gpu_figures(model))
            results = check_budgets(budgets, measured)
            results += conversion_results(
                (run or {}).get("search"),
                manifest.get("fallback"),
                manifest.get("metrics", {}).get("accuracy", {}).get("tflite"),
            )
            if old is not None:
                results += baseline_results(
                    budgets, measured, manifest.get("metrics", {}).get("metric", "accuracy"), old
                )
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            raise BundleError(
                f"{bundle}: the manifest or measurements.json lacks or garbles a field the gate needs: {exc!r}",
                hint="re-create the bundle with `edgepack bundle`",
            ) from exc
        output.result(
            {
                "bundle": str(bundle),
                "passed": all(r.passed for r in results),
                "results": [r.to_dict() for r in results],
            },
            budget_table(results),
        )
        if markdown is not None:
            tables = [budget_table(results)]
            if old is not None:
                from edgepack.bundle.figures import read_figures

                tables.append(baseline_table(old, read_figures(bundle, measurements)))
            write_markdown(markdown, f"edgepack gate: {manifest.get('name', 'bundle')}", results, tables)
        finish_gate(results, junit, manifest.get("name", "bundle"))

    @app.command()
    @boundary
    def verify(
        bundle: Path = typer.Argument(..., help="A bundle directory or BUNDLE.zip."),
        key: Path = typer.Option(
            None,
            "--key",
            metavar="PUB",
            help="Also check the bundle's Ed25519 signature (manifest.sig) with this "
            "public key (KEY.pub from `edgepack keygen KEY`, or an ssh-ed25519 "
            "line); an unsigned bundle, another key or an edited manifest fails.",
        ),
        on: str = typer.Option(
            None,
            "--on",
            metavar="DEVICE",
            help="Also run the bundle's golden vectors (golden.npz) on this device profile "
            "(host, tflm, rpi4-emulated, an ssh or adb board) and compare every output with "
            "the golden outputs within their tolerance; a mismatch names the output and element.",
        ),
    ) -> None:
        """Re-hash every artifact and check the model against its declared tensors; exit 2 naming what changed.

        With --on DEVICE, the golden vectors run there too."""
        from edgepack.bundle.verify import verify as verify_bundle
        from edgepack.bundle.verify import verify_golden
        from edgepack.errors import EXIT_BAD_INPUT, BundleError

        report = verify_bundle(bundle, public_key=key)
        signature = report["signature"]
        if on is not None and report["ok"]:  # a bundle that does not verify is not run
            report["golden"] = verify_golden(bundle, on, output.reporter())
            if report["golden"]["ok"] is False:
                report["ok"] = False
                report["problems"].append(f"golden on {on}: {report['golden']['why']}")
        output.result(report, _verify_table(bundle, report))
        if not report["ok"] and output.state.json:
            raise typer.Exit(EXIT_BAD_INPUT)  # the report says what changed: one JSON document
        if not report["ok"] and "golden" in report:
            raise BundleError(
                f"{bundle}: the golden vectors differ on {on}: {report['golden']['why']}",
                code="golden-mismatch",
                hint="the model is not the one the golden outputs were made with, or this device computes it "
                "differently: re-create the bundle, or check the device's runtime",
            )
        if not report["ok"]:
            raise BundleError(
                f"{bundle} does not verify: " + "; ".join(report["problems"]),
                code="bundle-modified",
                hint=_verify_hint(signature),
            )
        golden = report.get("golden")
        if golden is not None:
            output.message(f"{bundle}: {golden['samples']} golden samples on {on}: every output within its tolerance")
        if signature["checked"]:
            output.message(
                f"{bundle}: signed by key {signature['key_sha256'][:16]}, and every artifact matches its manifest"
            )
        else:
            note = "; it carries manifest.sig: check it with --key KEY.pub" if signature["present"] else ""
            output.message(f"{bundle}: every artifact matches its manifest{note}")


def _verify_table(bundle: Path, report: dict[str, Any]) -> Table:
    """Each artifact's status (and the signature's, when checked)."""
    table = Table.of(f"verify {bundle}", ["artifact", "status"])
    for row in report["artifacts"]:
        table.add_row(row["path"], row["status"] if row["status"] == "ok" else Span(row["status"], "bad"))
    signature = report["signature"]
    if signature["checked"]:
        table.add_row("manifest.sig", "signed" if signature["ok"] else Span("not verified", "bad"))
    golden = report.get("golden")
    if golden is not None:
        table.add_row(f"golden on {golden['device']}", "ok" if golden["ok"] else Span("differs", "bad"))
    return table


def _verify_hint(signature: dict[str, object]) -> str:
    """What to do about a bundle that does not verify, the signature's case first."""
    if signature.get("checked") and not signature.get("ok"):
        return (
            "check --key is the signer's public key; sign an unsigned bundle with `edgepack run --sign KEY`; "
            "a bundle edited after signing is not the one signed: re-create and re-sign it, or find who edited it"
        )
    return "the bundle changed after edgepack wrote it: re-create it, or find who edited it"


manifest_app = typer_app(help="The bundle manifest's published JSON Schema.", no_args_is_help=True)


@manifest_app.command("schema")
@boundary
def schema(
    measurements: bool = typer.Option(
        False, "--measurements", help="The schema of measurements.json (the run section) instead."
    ),
) -> None:
    """Print the JSON Schema (draft 2020-12) that every manifest.json (the build section) edgepack writes
    conforms to; with --measurements, the one of measurements.json (validation, search, gate)."""
    import json

    from edgepack.bundle.schema import manifest_schema, measurements_schema

    typer.echo(json.dumps(measurements_schema() if measurements else manifest_schema(), indent=2))


def _fits(bundle: Path, manifest: dict[str, Any], boards: list[str]) -> dict[str, Fit]:
    """Each board fitted again, to its profile as it is now, from the bundle's model (flash: the converted
    model's size the manifest records, the c-array's bytes) and the arena the manifest records (else measured
    now). Where that cannot be done here (the board's profile is not in ./devices, the bundle is only its
    manifest, no tflite-micro to measure an arena the manifest lacks) the fit the manifest records stands."""
    from edgepack.devices.profiles import known_devices
    from edgepack.errors import BundleError, DeviceUnreachable
    from edgepack.records import board_fits

    recorded = board_fits(manifest.get("fits"))
    known = set(known_devices())
    here = [board for board in boards if board in known or board not in recorded]  # unknown, unrecorded: refused
    fits = {board: recorded[board] for board in boards if board not in here}
    if here:
        try:
            fits.update(_refit(bundle, manifest, here))
        except (BundleError, DeviceUnreachable):
            if not all(board in recorded for board in here):
                raise
            fits.update({board: recorded[board] for board in here})
    return fits


def _refit(bundle: Path, manifest: dict[str, Any], boards: list[str]) -> dict[str, Fit]:
    import hashlib

    from edgepack.bundle.manifest import MODEL_FILE
    from edgepack.devices.boards import model_fits
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.errors import BundleError

    if bundle.is_file() and bundle.suffix.lower() == ".zip":
        from edgepack.bundle.archive import read_archive

        model = read_archive(bundle).get(MODEL_FILE)
    else:
        path = (bundle if bundle.is_dir() else bundle.parent) / MODEL_FILE
        model = path.read_bytes() if path.is_file() else None
    if model is None:
        raise BundleError(
            f"{bundle}: no {MODEL_FILE} to fit to {', '.join(boards)}",
            hint="gate a whole bundle (its directory or .zip)",
        )
    if hashlib.sha256(model).hexdigest() != (manifest.get("model") or {}).get("sha256"):
        raise BundleError(
            f"{bundle}: {MODEL_FILE} is not the model the manifest lists (its sha256 differs)",
            code="bundle-modified",
            hint="run `edgepack verify` on the bundle; re-create it",
        )
    recorded = (manifest.get("memory") or {}).get("arena") or {}
    arena = (
        Arena(recorded["need"], recorded.get("non_persistent"), recorded.get("persistent"), recorded["runtime"])
        if recorded.get("how") == "measured"
        else None
    )
    from edgepack.bundle.manifest import flash_size

    return model_fits(boards, model, arena, output.reporter(), flash_bytes=flash_size(manifest))
