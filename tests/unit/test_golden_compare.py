"""golden.npz's comparison: within the tolerance passes, beyond it names the element, NaN never passes."""

from __future__ import annotations

import json

import numpy as np

from edgepack.validate.golden import compare, mismatch_line, npz_bytes, read_golden

GOLDEN = {
    "input_0": np.zeros((2, 3), np.float32),
    "output_0": np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]], np.float32),
    "output_1": np.array([[3], [-4]], np.int8),
    "atol": np.array([0.01, 4.0]),
    "rtol": np.array([0.0, 0.0]),
    "output_names": np.array(["scores", "code"]),
    "invokes": np.array(2),
}


def outputs(first: list[float], second: list[int]) -> list[dict[str, list[float] | list[int]]]:
    return [{"values": first}, {"values": second}]


def test_within_the_tolerance_passes_and_beyond_it_names_output_sample_and_element() -> None:
    assert all(r["ok"] for r in compare(GOLDEN, 0, outputs([0.505, -1.0, 1.995], [7])))
    rows = compare(GOLDEN, 1, outputs([1.0, 1.0, 1.0], [-9]))
    assert [r["ok"] for r in rows] == [True, False]
    assert mismatch_line(rows[1]) == (
        "output 1 (code), golden sample 1, element 0: expected -4, got -9 (tolerance atol 4 + rtol 0)"
    )


def test_nan_is_a_mismatch_and_the_row_stays_json() -> None:
    rows = compare(GOLDEN, 0, outputs([0.5, float("nan"), 2.0], [3]))
    assert rows[0]["ok"] is False and rows[0]["index"] == 1 and rows[0]["max_abs_diff"] is None
    json.dumps(rows, allow_nan=False)  # no NaN reaches --json


def test_a_wrong_count_of_values_or_outputs_fails() -> None:
    assert compare(GOLDEN, 0, outputs([0.5, -1.0], [3]))[0]["ok"] is False
    assert compare(GOLDEN, 0, [{"values": [0.5, -1.0, 2.0]}])[0]["ok"] is False


def test_the_npz_round_trips_and_its_bytes_do_not_depend_on_order() -> None:
    data = npz_bytes(GOLDEN)
    assert data == npz_bytes(dict(reversed(list(GOLDEN.items()))))
    back = read_golden(data)
    assert set(back) == set(GOLDEN) and np.array_equal(back["output_1"], GOLDEN["output_1"])
    assert back["output_1"].dtype == np.int8 and str(back["output_names"][1]) == "code"
