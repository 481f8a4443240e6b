"""The tflm device without tflite-micro: a latency budget on it is a recipe error, and parity allows the
stated quantization steps (TensorFlow Lite Micro's interpreter on real models: tests/integration/test_tflm.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from conftest import REPO, invoke

from edgepack.validate.parity import parity


def test_budgeting_latency_on_tflm_is_a_recipe_error(tmp_path: Path) -> None:
    text = (REPO / "recipes" / "digits.toml").read_text().replace('devices = ["host"]', 'devices = ["host", "tflm"]')
    text = text.replace("latency_p90_ms = 5.0", "latency_p90_ms = { tflm = 5.0 }")
    assert "{ tflm = 5.0 }" in text
    (tmp_path / "digits.toml").write_text(text)
    result = invoke("run", str(tmp_path / "digits.toml"), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "budget-emulated" in result.stderr and "tflm" in result.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()


def test_parity_allows_the_stated_steps_and_names_more() -> None:
    def out(values: list[float], dtype: str = "int8") -> dict[str, Any]:
        array = np.asarray(values, dtype=dtype)
        return {
            "shape": [1, len(values)],
            "dtype": dtype,
            "values": array.tolist(),
            "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
        }

    one_step = {"steps": 1, "per_output": [1.0]}
    host = [out([-5, 3, 100])]
    assert parity(host, [out([-5, 4, 100])], one_step)["ok"] is True
    assert parity(host, [out([-5, 4, 100])])["ok"] is False  # identical is the rule for LiteRT devices
    beyond = parity(host, [out([-5, 5, 100])], one_step)
    assert beyond["ok"] is False and "by up to 2, more than the 1 allowed" in beyond["why"]
    # A float output dequantized from int8 (scale 0.5): one step is 0.5 in its units, two are not.
    floats, scaled = [out([0.5, 1.0], "float32")], {"steps": 1, "per_output": [0.5]}
    assert parity(floats, [out([1.0, 1.0], "float32")], scaled)["ok"] is True
    assert parity(floats, [out([1.0, 1.0], "float32")])["ok"] is False
    assert parity(floats, [out([1.5, 1.0], "float32")], scaled)["ok"] is False
    # A non-quantized integer output (a class index) gets no slack however the device is.
    assert parity([out([3], "int32")], [out([4], "int32")], {"steps": 1, "per_output": [0.0]})["ok"] is False
