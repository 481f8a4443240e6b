"""`edgepack compare`, baseline budgets (`[budgets] baseline`, `gate --baseline`) and the Markdown summary,
on the default run's bundle and the shipped ptq-int8 recipe's (its train stage is the default run's, copied:
nothing is trained again)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, run_cli


@pytest.fixture(scope="module")
def ptq(ptq_run: dict[str, Any]) -> dict[str, Any]:
    """The shipped `ptq-int8` recipe's bundle (the session's `ptq_run`): its float training is the default
    recipe's (same settings), its conversion post-training int8."""
    bundle = ptq_run["bundle"]
    return {
        "bundle": bundle,
        "manifest": json.loads((bundle / "manifest.json").read_text()),
        "measurements": json.loads((bundle / "measurements.json").read_text()),
        "work": ptq_run["work"],
    }


def compare_json(*args: str) -> dict[str, Any]:
    result = invoke("--json", "compare", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def changes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["changes"]}


def test_compare_reports_the_manifests_differences(default_run: dict[str, Any], ptq: dict[str, Any]) -> None:
    old, new = ptq["manifest"], default_run["manifest"]
    report = changes(compare_json(str(ptq["bundle"]), str(default_run["bundle"])))
    size = report["shipped size"]
    assert (size["old"], size["new"]) == (old["model"]["size_bytes"], new["model"]["size_bytes"])
    assert size["change"] == new["model"]["size_bytes"] - old["model"]["size_bytes"]
    converted = report["size"]
    assert converted["change"] == new["model"]["converted_size_bytes"] - old["model"]["converted_size_bytes"]
    accuracy = report["accuracy (.tflite)"]
    assert accuracy["change"] == pytest.approx(
        new["metrics"]["accuracy"]["tflite"] - old["metrics"]["accuracy"]["tflite"], abs=1e-12
    )
    assert accuracy["old"] == old["metrics"]["accuracy"]["tflite"]
    p90 = report["latency p90 on host"]
    assert p90["old"] == ptq["measurements"]["validation"]["host"]["latency_ms"]["p90"]
    assert (
        p90["new"]
        == json.loads((default_run["bundle"] / "measurements.json").read_text())["validation"]["host"]["latency_ms"][
            "p90"
        ]
    )
    assert report["MACs"]["old"] == report["MACs"]["new"] > 0  # the same network, from each model file
    assert report["ops CONV_2D"]["new"] == 3
    # ptq-int8 measured the per-layer error (post-training); the QAT default cannot: old only
    quant = [c for c in report.values() if c["group"] == "quantization"]
    assert quant and len(quant) == len(old["quantization_error"]["layers"])
    assert {c["new"] for c in quant} == {None}


def test_compare_flags_a_regression_and_renders_a_table(default_run: dict[str, Any], ptq: dict[str, Any]) -> None:
    backwards = compare_json(str(default_run["bundle"]), str(ptq["bundle"]))  # the larger gzip size is worse
    assert "gzip size" in backwards["regressions"]
    assert changes(backwards)["gzip size"]["regression"] is True
    result = invoke("compare", str(default_run["bundle"]), str(ptq["bundle"]))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "shipped size" in result.stdout and "worse" in result.stdout and "gzip size" in result.stdout
    same = compare_json(str(default_run["bundle"]), str(default_run["bundle"] / "manifest.json"))
    assert same["regressions"] == []
    assert changes(same)["shipped size"]["change"] == 0


def test_compare_of_a_zip_takes_measurements(default_run: dict[str, Any], ptq: dict[str, Any], tmp_path: Path) -> None:
    from edgepack.bundle.writer import zip_bytes

    archive = tmp_path / "old.zip"
    archive.write_bytes(zip_bytes(ptq["bundle"], exclude=("measurements.json",)))
    without = changes(compare_json(str(archive), str(default_run["bundle"])))
    assert without["latency p90 on host"]["old"] is None
    assert without["MACs"]["old"] > 0  # from the model in the archive
    given = changes(
        compare_json(
            str(archive), str(default_run["bundle"]), "--old-measurements", str(ptq["bundle"] / "measurements.json")
        )
    )
    assert given["latency p90 on host"]["old"] == ptq["measurements"]["validation"]["host"]["latency_ms"]["p90"]
    wrong = invoke(
        "compare",
        str(archive),
        str(default_run["bundle"]),
        "--old-measurements",
        str(default_run["bundle"] / "measurements.json"),
    )
    assert wrong.exit_code == 2 and "measured another model" in wrong.stderr


def test_compare_names_a_missing_bundle(default_run: dict[str, Any], tmp_path: Path) -> None:
    result = invoke("compare", str(tmp_path / "nowhere"), str(default_run["bundle"]))
    assert result.exit_code == 2
    assert "nowhere: no bundle here" in result.stderr and "Traceback" not in result.stderr


MINIMAL = """
[dataset]
kind = "digits"
normalization = {{ mean = 0.0, std = 16.0 }}

[model]
kind = "builder"
builder = "edgepack.models.zoo:digits_cnn"

[budgets]
{budgets}
"""


@pytest.fixture(scope="module")
def edited_baseline(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the default bundle as a baseline that was 10 % smaller, 1.5x faster and 2 points more accurate
    (manifest and measurements.json figures edited; the artifacts, and so their hashes, untouched)."""
    folder = tmp_path_factory.mktemp("baseline")
    bundle = folder / "baseline"
    shutil.copytree(default_run["bundle"], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    size = manifest["model"]["size_bytes"]
    manifest["model"]["size_bytes"] = round(size / 1.10)
    accuracy = manifest["metrics"]["tflite"]["accuracy"] + 0.02
    manifest["metrics"]["tflite"]["accuracy"] = manifest["metrics"]["accuracy"]["tflite"] = accuracy
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    run = json.loads((bundle / "measurements.json").read_text())
    p90 = run["validation"]["host"]["latency_ms"]["p90"]
    run["validation"]["host"]["latency_ms"]["p90"] = p90 / 1.5
    (bundle / "measurements.json").write_text(json.dumps(run, indent=2))
    new = json.loads((default_run["bundle"] / "measurements.json").read_text())["validation"]["host"]["latency_ms"][
        "p90"
    ]
    expected = {
        "max_size_increase": size / round(size / 1.10) - 1,
        "max_latency_increase": new / (p90 / 1.5) - 1,
        "max_accuracy_loss": accuracy - default_run["manifest"]["metrics"]["tflite"]["accuracy"],
    }
    return {"bundle": bundle, "folder": folder, "expected": expected}


def junit_failures(path: Path) -> list[str]:
    import xml.etree.ElementTree as ET

    return [case.get("name") for case in ET.parse(path).getroot().iter("testcase") if case.find("failure") is not None]


def gate_json(bundle: Path, recipe: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke("--json", "gate", str(bundle), "--recipe", str(recipe), *args)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("budget", ["max_size_increase", "max_latency_increase", "max_accuracy_loss"])
def test_a_baseline_budget_fails_just_below_the_change_and_passes_just_above(
    budget: str, default_run: dict[str, Any], edited_baseline: dict[str, Any], tmp_path: Path
) -> None:
    recipe = edited_baseline["folder"] / f"{budget}.toml"  # baseline = "baseline": beside the recipe file
    recipe.write_text(MINIMAL.format(budgets=f'baseline = "baseline"\n{budget} = 10.0'))
    code, report = gate_json(default_run["bundle"], recipe)
    assert code == 0, report
    [result] = report["results"]
    assert result["name"] == (f"{budget}.host" if budget == "max_latency_increase" else budget)
    measured = result["measured"]
    assert measured == pytest.approx(edited_baseline["expected"][budget], abs=2e-6)
    for limit, exit_code, failed in ((measured - 1e-4, 3, [result["name"]]), (measured + 1e-4, 0, [])):
        recipe.write_text(MINIMAL.format(budgets=f'baseline = "baseline"\n{budget} = {limit!r}'))
        junit = tmp_path / f"junit-{exit_code}.xml"
        outcome = invoke("gate", str(default_run["bundle"]), "--recipe", str(recipe), "--junit", str(junit))
        assert outcome.exit_code == exit_code, outcome.stdout + outcome.stderr
        assert junit_failures(junit) == failed
        if failed:
            assert f"{result['name']}: measured" in outcome.stderr and "over by" in outcome.stderr


def test_gate_baseline_option_and_a_missing_baseline(
    default_run: dict[str, Any], edited_baseline: dict[str, Any], tmp_path: Path
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(MINIMAL.format(budgets='baseline = "nowhere"\nmax_size_increase = 0.05'))
    missing = invoke("gate", str(default_run["bundle"]), "--recipe", str(recipe))
    assert missing.exit_code == 2
    assert f"the baseline {tmp_path / 'nowhere'} cannot be read" in missing.stderr.replace("\n", "")
    assert "Traceback" not in missing.stderr
    code, report = gate_json(default_run["bundle"], recipe, "--baseline", str(edited_baseline["bundle"]))
    assert code == 3 and [r["name"] for r in report["results"] if not r["passed"]] == ["max_size_increase"]
    same = gate_json(default_run["bundle"], recipe, "--baseline", str(default_run["bundle"] / "manifest.json"))
    assert same[0] == 0 and same[1]["results"][0]["measured"] == 0.0
    recipe.write_text(MINIMAL.format(budgets="max_size_increase = 0.05"))
    unset = invoke("gate", str(default_run["bundle"]), "--recipe", str(recipe))
    assert unset.exit_code == 2 and "no baseline to compare with" in unset.stderr


def terminal_rows(stdout: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled `title` in a command's output."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows = []
    for line in lines[start + 4 :]:  # title, top border, header, rule
        if not line.startswith("│"):
            break
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def markdown_rows(text: str, title: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(f"**{title}**")
    rows = []
    for line in lines[start + 4 :]:  # title, blank, header, alignment
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_run_with_a_baseline_writes_markdown_and_appends_the_step_summary(
    default_run: dict[str, Any], edited_baseline: dict[str, Any], tmp_path: Path
) -> None:
    import os

    from conftest import REPO, work_copy

    work = work_copy(default_run, tmp_path)
    text = (
        (REPO / "recipes" / "digits.toml")
        .read_text()
        .replace("[budgets]", f'[budgets]\nbaseline = "{edited_baseline["bundle"]}"\nmax_size_increase = 0.05')
    )
    recipe = tmp_path / "digits.toml"
    recipe.write_text(text)
    step = tmp_path / "step-summary.md"
    step.write_text("## an earlier step\n")
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(step), "COLUMNS": "200"}
    proc = run_cli(
        "run",
        str(recipe),
        "--workdir",
        str(work),
        "--junit",
        str(junit),
        "--markdown",
        str(summary),
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert junit_failures(junit) == ["max_size_increase"]
    markdown = summary.read_text()
    rows = markdown_rows(markdown, "budgets")
    assert rows == terminal_rows(proc.stdout, "budgets")
    assert [r[0] for r in rows] == [
        "max_size",
        "latency_p90_ms.host",
        "max_accuracy_drop",
        "min_accuracy",
        "max_size_increase",
    ]
    assert rows[-1][-1] == "FAIL" and "**1 budget(s) exceeded**" in markdown
    assert "**edgepack results**" in markdown and f"**against the baseline {edited_baseline['bundle']}**" in markdown
    assert step.read_text() == "## an earlier step\n\n" + markdown  # appended, the earlier step kept
    again = run_cli("gate", str(work / "digits" / "bundle"), "--markdown", str(summary), cwd=tmp_path, env=env)
    assert again.returncode == 3, again.stdout + again.stderr
    assert step.read_text() == "## an earlier step\n\n" + markdown + "\n" + summary.read_text()
    assert markdown_rows(summary.read_text(), "budgets") == terminal_rows(again.stdout, "budgets")
