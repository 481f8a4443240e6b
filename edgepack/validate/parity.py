"""Output parity: a device's outputs against the reference run's, every output."""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_RTOL = 1e-5
FLOAT_ATOL = 1e-6


def parity(
    reference: list[dict[str, Any]], outputs: list[dict[str, Any]], tolerance: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Compare a device's outputs with the reference run's, every output: integer outputs must be
    identical, float ones equal within rtol 1e-5 / atol 1e-6, unless the device states a tolerance
    (`{"steps": N, "per_output": [absolute, in each output's units]}`: TFLM's one quantization step).
    `outputs` has one entry per output (its index, identical, max_abs_diff, ok); `why` names the
    first that differs."""
    allowed = list((tolerance or {}).get("per_output") or [])
    if len(reference) != len(outputs):
        return {"ok": False, "why": f"{len(outputs)} output(s), the reference has {len(reference)}"}
    rows, why = [], None
    for index, (ref, out) in enumerate(zip(reference, outputs)):
        if ref["shape"] != out["shape"] or ref["dtype"] != out["dtype"]:
            return {
                "ok": False,
                "why": f"output {index}: {out['shape']} {out['dtype']} vs reference {ref['shape']} {ref['dtype']}",
            }
        a = np.asarray(ref["values"], dtype=np.float64)
        b = np.asarray(out["values"], dtype=np.float64)
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        same = ref["sha256"] == out["sha256"]
        slack = allowed[index] if index < len(allowed) else 0.0
        beyond = f", more than the {slack:g} allowed" if slack else ""
        if np.issubdtype(np.dtype(ref["dtype"]), np.integer):
            ok = same or diff <= slack
            problem = f"output {index}: integer outputs differ from the reference (by up to {diff:g}{beyond})"
        else:
            ok = bool(np.allclose(b, a, rtol=FLOAT_RTOL, atol=max(FLOAT_ATOL, slack)))
            problem = (
                f"output {index}: float outputs differ beyond rtol {FLOAT_RTOL:g} / "
                f"atol {max(FLOAT_ATOL, slack):g} (by up to {diff:g})"
            )
        rows.append(
            {
                "output": index,
                "ok": ok,
                "identical": same,
                "max_abs_diff": diff,
                **({"tolerance": slack} if slack else {}),
            }
        )
        if not ok and why is None:
            why = problem
    result: dict[str, Any] = {
        "ok": why is None,
        "identical": all(r["identical"] for r in rows),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows) if rows else 0.0,
        "outputs": rows,
    }
    if tolerance:
        result["tolerance_steps"] = tolerance.get("steps")
    if why is not None:
        result["why"] = why
    return result
