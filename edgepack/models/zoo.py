"""Built-in model builders, referenced from recipes as `edgepack.models.zoo:NAME`.

A builder is called as `f(input_shape, size, **args)`: `size` is the class count (classification),
the target size (regression) or the input size (an anomaly autoencoder).

Each builder declares the bounds of its arguments in its annotations, and `validate_call` holds a Python
caller to them; `recipes check` reads the same annotations without building anything (this module
imports no TensorFlow until a builder runs), so `width = -5` or `width = 10**18` is a recipe error naming
`width`, not a Keras error or an out-of-memory. The bounds are sized for edge models: a digits CNN of
width 256 already has about 11 M parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, validate_call

MAX_WIDTH = 256
"""The widest convolution base (`width`) of the CNNs: filters per layer, up to 4x in their last layers."""
MAX_UNITS = 4096
"""The most units in one Dense layer of `hidden`, or in an autoencoder's `bottleneck`."""
MAX_LAYERS = 16
"""The most hidden layers (`hidden`) of the MLP and the autoencoder."""

Shape = tuple[Annotated[int, Field(gt=0)], ...]
Size = Annotated[int, Field(gt=0)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
Units = Annotated[int, Field(gt=0, le=MAX_UNITS)]
Hidden = Annotated[list[Units], Field(max_length=MAX_LAYERS)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]
Momentum = Annotated[float, Field(ge=0.0, le=1.0)]
Activation = Literal[
    "relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "softplus",
    "softsign",
    "exponential",
    "linear",
]  # tf_keras's activations by name (softmax left out: not a hidden layer's)


@validate_call
def digits_cnn(input_shape: Shape, num_classes: Size, width: Width = 16) -> Any:
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


@validate_call
def mobilenetv2(
    input_shape: Shape,
    num_classes: Size,
    alpha: Annotated[float, Field(gt=0.0, le=2.0)] = 0.35,
    dropout: Dropout = 0.0,
    bn_momentum: Momentum = 0.9,
) -> Any:
    """MobileNetV2 (`alpha` width) from scratch (`weights=None`: nothing is downloaded).

    Needs RGB inputs of at least 32x32; 96x96 or more is the usual edge size. Keras builds its
    BatchNormalization layers with momentum 0.999, made for ImageNet-length training: on a small
    dataset the moving statistics never catch up and inference sits at chance, hence 0.9.
    """
    from edgepack.models.tf import load

    keras = load().keras
    base = keras.applications.MobileNetV2(input_shape=input_shape, alpha=alpha, include_top=False, weights=None)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    if dropout:
        h = keras.layers.Dropout(dropout, name="dropout")(h)
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(h)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    return keras.Model(base.input, probs, name=f"mobilenetv2_{alpha}")


@validate_call
def mlp(input_shape: Shape, size: Size, hidden: Hidden | None = None, activation: Activation = "relu") -> Any:
    """A multilayer perceptron for feature vectors: Dense layers of `hidden` units, then `size` linear
    outputs (a regression's targets, or a classifier's logits)."""
    from edgepack.models.tf import load

    keras = load().keras
    inputs = keras.Input(shape=input_shape, name="features")
    h = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for index, units in enumerate(hidden or [32, 16]):
        h = keras.layers.Dense(units, activation=activation, name=f"dense{index + 1}")(h)
    outputs = keras.layers.Dense(size, name="prediction")(h)
    return keras.Model(inputs, outputs, name="mlp")


@validate_call
def dense_autoencoder(input_shape: Shape, size: Size, hidden: Hidden | None = None, bottleneck: Units = 8) -> Any:
    """A dense autoencoder (the shape of the MLPerf Tiny anomaly-detection model, smaller): the flattened
    input through `hidden` units down to `bottleneck` and back, reshaped like the input. Its anomaly
    score is the reconstruction error."""
    from edgepack.models.tf import load

    keras = load().keras
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="input")
    h = layers.Flatten(name="flatten")(inputs)
    widths = hidden or [64, 32]
    for index, units in enumerate(widths):
        h = layers.Dense(units, activation="relu", name=f"encode{index + 1}")(h)
    h = layers.Dense(bottleneck, activation="relu", name="bottleneck")(h)
    for index, units in enumerate(reversed(widths)):
        h = layers.Dense(units, activation="relu", name=f"decode{index + 1}")(h)
    h = layers.Dense(size, name="reconstruct")(h)
    outputs = layers.Reshape(input_shape, name="reconstruction")(h)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


@validate_call
def keras3_cnn(
    input_shape: Shape, num_classes: Size, width: Width = 16, dropout: Dropout = 0.1, bn_momentum: Momentum = 0.9
) -> Any:
    """A small residual CNN built with Keras 3 (`import keras`), as users hold models today:
    convolution, BatchNormalization, ReLU, a depthwise block with a residual Add, global pooling,
    Dropout, Dense. edgepack bridges it to tf_keras for pruning and QAT. BatchNormalization's
    momentum is 0.9, not Keras' 0.99: on a small dataset its moving statistics must catch up."""
    from edgepack.models.tf import load

    load()  # TensorFlow first, with tf_keras selected for tf.keras; `keras` stays Keras 3
    import keras

    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    h = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem")(inputs)
    h = layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(h)
    h = layers.ReLU(name="stem_relu")(h)
    d = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    d = layers.BatchNormalization(momentum=bn_momentum, name="dw_bn")(d)
    d = layers.ReLU(name="dw_relu")(d)
    d = layers.Conv2D(width, 1, use_bias=False, name="pw")(d)
    d = layers.BatchNormalization(momentum=bn_momentum, name="pw_bn")(d)
    h = layers.Add(name="residual")([h, d])
    h = layers.ReLU(name="block_relu")(h)
    h = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(h)
    return keras.Model(inputs, outputs, name="keras3_cnn")
