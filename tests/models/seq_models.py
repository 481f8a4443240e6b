"""Builders for layer types that QAT handles specially, used by tests/integration/test_optimize.py."""

from __future__ import annotations

from typing import Any

from edgepack.models.tf import load


def lstm_classifier(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Rows of the 8x8 digit as a sequence of 8 steps, read by an LSTM."""
    keras = load().keras
    inputs = keras.Input(shape=input_shape, name="image")
    h = keras.layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]), name="rows")(inputs)
    h = keras.layers.LSTM(16, name="lstm")(h)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="probs")(h))


def conv1d_classifier(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Rows of the 8x8 digit as a sequence, read by a Conv1D."""
    keras = load().keras
    inputs = keras.Input(shape=input_shape, name="image")
    h = keras.layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]), name="rows")(inputs)
    h = keras.layers.Conv1D(16, 3, activation="relu", name="conv1d")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="probs")(h))
