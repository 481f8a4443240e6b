"""Dense-heavy builders for the size tests (tests/integration/test_granularity.py, test_lowrank.py)."""

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
    tests, tests/integration/test_lowrank.py).

    Both are applied to the built model's weights, and every initializer is Keras's own: the model clones
    and reloads from `.h5` (what optimize stages and a cached train stage need)."""
    keras = load().keras
    layers = keras.layers
    init = keras.initializers.VarianceScaling(scale=init_scale**2, mode="fan_avg", distribution="uniform")
    inputs = keras.Input(shape=input_shape, name="frames")
    h = inputs
    for index, units in enumerate([width] * 4 + [bottleneck] + [width] * 4):
        h = layers.Dense(units, name=f"dense{index + 1}", kernel_initializer=init)(h)
        h = layers.BatchNormalization(name=f"bn{index + 1}")(h)
        h = layers.ReLU(name=f"relu{index + 1}")(h)
    out = layers.Dense(size, name="reconstruction", kernel_initializer=init)(h)
    model = keras.Model(inputs, out, name="dense_bn_autoencoder")
    if spread != 1.0:
        _spread_channels(model, spread)
    return model


def _spread_channels(model: Any, spread: float) -> None:
    """Each BN's scales geometric from 1 down to 1/spread, the next Dense kernel's rows divided by them."""
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    norms = [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]
    for norm, following in zip(norms, dense[1:]):
        gamma, beta, mean, variance = norm.get_weights()
        factors = np.geomspace(1.0, 1.0 / spread, gamma.shape[0]).astype(np.float32)
        norm.set_weights([gamma * factors, beta * factors, mean, variance])
        kernel, bias = following.get_weights()
        following.set_weights([kernel / factors[:, None], bias])
