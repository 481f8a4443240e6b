"""Built-in model builders, referenced from recipes as `edgepack.models.zoo:NAME`."""

from __future__ import annotations

from typing import Any


def digits_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> Any:
    """A small CNN for 8x8 digits: three 3x3 convolutions, one pooling, two dense layers.

    Every layer is supported by TFMOT's QAT and by full-integer TFLite conversion.
    """
    from edgepack.models.tf import load

    keras = load().keras
    inputs = keras.Input(shape=input_shape, name="image")
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(4 * width, activation="relu", name="fc")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    probs = keras.layers.Softmax(name="probs")(logits)
    return keras.Model(inputs, probs, name="digits_cnn")


def mobilenetv2(input_shape: tuple[int, ...], num_classes: int, alpha: float = 0.35,
                dropout: float = 0.0, bn_momentum: float = 0.9) -> Any:
    """MobileNetV2 (`alpha` width) from scratch (`weights=None`: nothing is downloaded).

    Needs RGB inputs of at least 32x32; 96x96 or more is the usual edge size. Keras builds its
    BatchNormalization layers with momentum 0.999, made for ImageNet-length training: on a small
    dataset the moving statistics never catch up and inference sits at chance, hence 0.9.
    """
    from edgepack.models.tf import load

    keras = load().keras
    base = keras.applications.MobileNetV2(input_shape=input_shape, alpha=alpha, include_top=False,
                                          weights=None)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    if dropout:
        h = keras.layers.Dropout(dropout, name="dropout")(h)
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(h)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    return keras.Model(base.input, probs, name=f"mobilenetv2_{alpha}")
