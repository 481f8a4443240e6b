"""The Python API: `edgepack.run` and `edgepack.api`'s stages return the pipeline's typed results, raise
the CLI's typed errors, and `import edgepack` stays light."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, work_copy


@pytest.fixture(scope="module")
def work(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return work_copy(default_run, tmp_path_factory.mktemp("api"))


def test_run_returns_the_typed_result_of_the_whole_run(work: Path, default_run: dict[str, Any]) -> None:
    import edgepack
    from edgepack.pipeline import RunResult
    from edgepack.records import EvaluateRecord

    result = edgepack.run(REPO / "recipes" / "digits.toml", workdir=work)
    assert isinstance(result, RunResult) and result.passed is True
    assert set(result.stages) >= {"train", "optimize", "convert", "evaluate"}
    assert all(result.stages[name].cached for name in ("train", "optimize", "convert", "evaluate"))
    evaluated = result.stages["evaluate"].record
    assert isinstance(evaluated, EvaluateRecord)
    assert evaluated.tflite == default_run["manifest"]["metrics"]["accuracy"]["tflite"]
    assert result.validation["host"].latency_ms["p90"] > 0
    assert [r.name for r in result.gate] == [r["name"] for r in default_run["report"]["gate"]["results"]]
    assert result.bundle[0] == work / "digits" / "bundle" and (result.bundle[0] / "manifest.json").is_file()


def test_single_stages_come_from_the_api_module(work: Path) -> None:
    from edgepack import api
    from edgepack.records import ConvertRecord

    converted = api.convert("digits", workdir=work)
    assert isinstance(converted.record, ConvertRecord) and converted.cached and converted.record.mode == "int8"
    assert (converted.dir / converted.record.model_file).is_file()
    records = api.validate("digits", workdir=work, devices=["host"])
    assert list(records) == ["host"] and records["host"].parity_ok is True


def test_an_exceeded_budget_is_a_result_and_a_bad_recipe_an_exception(work: Path, tmp_path: Path) -> None:
    from edgepack import api
    from edgepack.errors import RecipeError

    text = (REPO / "recipes" / "digits.toml").read_text().replace('max_size = "64 KB"', "max_size = 1000")
    assert "max_size = 1000" in text
    (tmp_path / "digits.toml").write_text(text)
    results = api.gate(tmp_path / "digits.toml", workdir=work)
    size = next(r for r in results if r.name == "max_size")
    assert size.passed is False and size.measured is not None and size.measured > 1000
    (tmp_path / "broken.toml").write_text(text.replace("[train]", "[train]\nepochz = 3"))
    with pytest.raises(RecipeError, match=r"broken\.toml: 1 problem") as refused:
        api.train(tmp_path / "broken.toml", workdir=work)
    assert "train.epochz = 3: unknown key" in str(refused.value.context)
