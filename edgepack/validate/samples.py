"""The samples every device gets (the first test sample of each input, in the model's tensor order and types)
and the host's reference outputs on them, which every device's outputs are compared with."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgepack.fsutil import atomic_write_bytes
from edgepack.progress import NullReporter, Reporter


def validation_inputs(
    test_inputs: Sequence[Any],
    folder: Path,
    reporter: Reporter,
    converted: Path,
    input_names: Callable[[], list[str] | None],
) -> Path | None:
    """`folder`/inputs.npz holding the first test sample of each input (`test_inputs`, one array per Keras input)
    in its tensor's type and in the `converted` model's tensor order (`input_0`, `input_1`...); None when the
    model's inputs do not take the recipe's samples (the runner then feeds seeded random inputs). `input_names`
    is asked only for a model of several inputs."""
    import numpy as np

    samples = ordered_samples(test_inputs, reporter, converted, input_names, 1)
    if samples is None:
        return None
    path = folder / "inputs.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **samples)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def ordered_samples(
    test_inputs: Sequence[Any],
    reporter: Reporter,
    converted: Path,
    input_names: Callable[[], list[str] | None],
    count: int,
) -> dict[str, Any] | None:
    """The first `count` invokes' worth of test samples of each input (`input_0`, `input_1`... in the `converted`
    model's tensor order, each in its tensor's type, `count` x the tensor's batch rows); None when the model's
    inputs do not take the recipe's samples."""
    from edgepack.errors import BadInputError
    from edgepack.litert import input_order, interpreter, to_input

    interp = interpreter(converted)
    arrays = test_inputs
    details = interp.get_input_details()
    try:
        ordered = input_order(interp, input_names() if len(details) > 1 else None, [x.shape[1:] for x in arrays])
    except BadInputError as exc:
        reporter.note(f"validate: random inputs: {exc.message}")
        return None
    if len(ordered) != len(arrays) or any(tuple(d["shape"][1:]) != tuple(x.shape[1:]) for d, x in zip(ordered, arrays)):
        return None
    by_index = {d["index"]: x for d, x in zip(ordered, arrays)}
    return {
        f"input_{i}": to_input(by_index[d["index"]][: count * max(1, int(d["shape"][0]))], d)
        for i, d in enumerate(details)
    }


def reference_outputs(seed: int, litert: Path, samples: Path | None) -> list[dict[str, Any]]:
    """The shipped model's outputs on this machine, one invoke: the parity reference (`litert`: a LUT-compressed
    model's are the uncompressed model's: LiteRT cannot run the compressed one, and the weights are the same)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers.local import run_local
    from edgepack.devices.profiles import LocalDevice

    host = LocalDevice(name="host", kind="local")
    req = RunRequest(litert, samples, 1, 0, 1, seed)
    return list(run_local(host, req, NullReporter(), "validate: host reference")["outputs"])
