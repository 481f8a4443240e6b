"""Dense-heavy builders for the size tests (tests/integration/test_granularity.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.models.tf import load


def dense_bn_autoencoder(
    input_shape: tuple[int, ...], size: int, width: int = 128, bottleneck: int = 8, spread: float = 1.0
) -> Any:
    """The MLPerf Tiny anomaly autoencoder's shape: 640-128x4-8-128x4-640, each hidden Dense layer followed
    by BatchNormalization and ReLU (the converter folds the BN into the Dense kernel).

    `spread` > 1 starts the model with output channels of different ranges, as trained models have them:
    each BN's scales run geometrically over `spread` and the next Dense layer's input rows are divided by
    the same factors, which leaves the function unchanged (ReLU is positively homogeneous)."""
    keras = load().keras
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="frames")
    h, factors = inputs, None
    for index, units in enumerate([width] * 4 + [bottleneck] + [width] * 4):
        h = _dense(keras, units, f"dense{index + 1}", factors)(h)
        factors = np.geomspace(1.0, 1.0 / spread, units).astype(np.float32)
        h = layers.BatchNormalization(name=f"bn{index + 1}", gamma_initializer=keras.initializers.Constant(factors))(h)
        h = layers.ReLU(name=f"relu{index + 1}")(h)
    out = _dense(keras, size, "reconstruction", factors)(h)
    return keras.Model(inputs, out, name="dense_bn_autoencoder")


def _dense(keras: Any, units: int, name: str, row_factors: np.ndarray | None) -> Any:
    """A Dense layer whose Glorot-initialized kernel rows are divided by `row_factors` (its inputs' scales)."""
    if row_factors is None:
        return keras.layers.Dense(units, name=name)
    glorot = keras.initializers.GlorotUniform()

    def init(shape: Any, dtype: Any = None) -> Any:
        return glorot(shape, dtype) / row_factors[:, None]

    return keras.layers.Dense(units, name=name, kernel_initializer=init)
