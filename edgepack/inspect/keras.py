"""What a saved Keras model holds, as `edgepack init` reads it: its format, who saved it, its inputs and
outputs, its parameters, whether tf_keras can rebuild a Keras 3 model (for `[[optimize]]` stages) and
whether its first layer normalizes the raw input itself (TensorFlow is imported to load it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def keras_report(path: Path, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The report of the saved model at `path` (`imports`: modules registering its custom Keras 3 layers)."""
    from edgepack.init.model import read_model

    info = read_model(path, imports)

    def tensor(t: Any) -> dict[str, Any]:
        return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}

    return {
        "model": str(path),
        "format": info.container,
        "saved_by": info.saved_by,
        "inputs": [tensor(t) for t in info.inputs],
        "outputs": [tensor(t) for t in info.outputs],
        "params": info.params,
        "tf_keras_rebuild": None
        if info.keras != 3
        else {"possible": info.bridge_problem is None, "why": info.bridge_problem},
        "normalizer": info.normalizer,
    }
