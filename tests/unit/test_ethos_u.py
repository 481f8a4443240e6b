"""The ethos-u device without Vela: an estimate's latency in the gate, and the recipe mistakes said before
training (Vela's own figures on real models: tests/integration/test_ethos_u.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, invoke


def test_one_latency_figure_for_every_device_leaves_estimates_out() -> None:
    from edgepack.gate.budgets import Measurements, check_budgets, gated_latency
    from edgepack.recipe.schema import Budgets
    from edgepack.records import device_runs

    estimate = {
        "inference_ms": 0.5,
        "clock_mhz": 500.0,
        "accelerator": "ethos-u55-128",
        "system_config": "Ethos_U55_High_End_Embedded",
        "memory_mode": "Shared_Sram",
    }
    latency, basis = gated_latency(
        device_runs(
            {
                "host": {"emulated": False, "latency_ms": {"p90": 1.0}},
                "npu": {"emulated": True, "latency_ms": None, "estimate": estimate},
                "tflm": {"emulated": True, "latency_ms": None},
            }
        )
    )
    assert latency == {"host": 1.0, "npu": 0.5} and set(basis) == {"npu"}
    scalar = check_budgets(Budgets(latency_p90_ms=0.1), Measurements(1, 1.0, 1.0, latency, basis))
    assert [(r.name, r.estimated) for r in scalar] == [("latency_p90_ms.host", False)]  # an estimate is named
    named = check_budgets(Budgets(latency_p90_ms={"npu": 0.4}), Measurements(1, 1.0, 1.0, latency, basis))
    assert [(r.label, r.passed, r.measured) for r in named] == [("latency_p90_ms.npu (estimated)", False, 0.5)]


def test_bundle_ethos_u_names_a_profile_only_with_the_format(tmp_path: Path) -> None:
    text = (REPO / "recipes" / "digits.toml").read_text() + '\n[bundle]\nethos_u = "ethos-u85-256"\n'
    (tmp_path / "digits.toml").write_text(text)
    result = invoke("recipes", "check", str(tmp_path / "digits.toml"))
    assert result.exit_code == 2, result.output
    assert "ethos_u = 'ethos-u85-256'" in result.stderr and 'lacks "ethos-u"' in result.stderr


def test_ethos_u_format_mistakes_are_said_before_training(tmp_path: Path) -> None:
    base = (REPO / "recipes" / "digits.toml").read_text()
    floating = base.replace('mode = "int8"', 'mode = "float16"', 1).replace('io = "int8"', 'io = "float32"', 1)
    (tmp_path / "float.toml").write_text(floating + '\n[bundle]\nformats = ["ethos-u"]\n')
    floated = invoke("recipes", "check", str(tmp_path / "float.toml"))
    assert floated.exit_code == 2 and "convert.mode = 'float16': an Ethos-U NPU runs integer models" in floated.stderr
    (tmp_path / "wrong.toml").write_text(base + '\n[bundle]\nformats = ["ethos-u"]\nethos_u = "tflm"\n')
    wrong = invoke("run", str(tmp_path / "wrong.toml"), "--workdir", str(tmp_path / "w"))
    assert wrong.exit_code == 2 and "bundle.ethos_u = 'tflm': a tflm device, not an ethos-u profile" in wrong.stderr
    assert not (tmp_path / "w" / "wrong" / "train").exists()
