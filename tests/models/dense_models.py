"""Dense-heavy builders for the size tests (tests/integration/test_granularity.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.models.tf import load


def dense_bn_autoencoder(
    input_shape: tuple[int, ...],
    size: int,
    width: int = 128,
    bottleneck: int = 8,
    spread: float = 1.0,
    init_scale: float = 1.0,
) -> Any:
    """The MLPerf Tiny anomaly autoencoder's shape: 640-128x4-8-128x4-640, each hidden Dense layer followed
    by BatchNormalization and ReLU (the converter folds the BN into the Dense kernel).

    `spread` > 1 starts the model with output channels of different ranges, as trained models have them:
    each BN's scales run geometrically over `spread` and the next Dense layer's input rows are divided by
    the same factors, which leaves the function unchanged (ReLU is positively homogeneous).

    `init_scale` < 1 scales every initial kernel down: training then writes the data's structure into
    kernels that start near zero, so the trained kernels' spectrum is concentrated (0.1, 10 epochs at batch
    16 on data of 8 latent factors: energy 0.9 at rank 5-30 of 128, against 60-100 at 1.0; the low-rank
    tests, tests/integration/test_lowrank.py). With `spread` = 1 every initializer is Keras's own, so the
    model clones and reloads from `.h5` (what optimize stages and a cached train stage need)."""
    keras = load().keras
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="frames")
    h, factors = inputs, None
    for index, units in enumerate([width] * 4 + [bottleneck] + [width] * 4):
        h = _dense(keras, units, f"dense{index + 1}", factors, init_scale)(h)
        scales = np.geomspace(1.0, 1.0 / spread, units).astype(np.float32)
        h = layers.BatchNormalization(
            name=f"bn{index + 1}",
            gamma_initializer=keras.initializers.Constant(scales.tolist()),  # a list: an array does not reload from .h5
        )(h)
        factors = None if spread == 1.0 else scales
        h = layers.ReLU(name=f"relu{index + 1}")(h)
    out = _dense(keras, size, "reconstruction", factors, init_scale)(h)
    return keras.Model(inputs, out, name="dense_bn_autoencoder")


def _dense(keras: Any, units: int, name: str, row_factors: np.ndarray | None, scale: float = 1.0) -> Any:
    """A Dense layer whose Glorot-initialized kernel, times `scale`, has its rows divided by `row_factors`
    (its inputs' scales). Without row factors the initializer is Keras's own (Glorot uniform times `scale`
    is variance scaling by scale^2), so the model clones and rebuilds from its config."""
    if row_factors is None and scale == 1.0:
        return keras.layers.Dense(units, name=name)
    if row_factors is None:
        init = keras.initializers.VarianceScaling(scale=scale**2, mode="fan_avg", distribution="uniform")
        return keras.layers.Dense(units, name=name, kernel_initializer=init)
    glorot = keras.initializers.GlorotUniform()

    def init(shape: Any, dtype: Any = None) -> Any:
        return glorot(shape, dtype) * scale / row_factors[:, None]

    return keras.layers.Dense(units, name=name, kernel_initializer=init)
