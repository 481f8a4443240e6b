"""The default recipe (recipes/digits.toml) written by hand against TensorFlow, tf_keras, TFMOT and LiteRT.

This is the baseline of `bench/pipeline.py`: the script a TensorFlow user would write to do the
same work as `edgepack run digits`, without edgepack. It imports nothing from edgepack; the
hyper-parameters are read from the recipe's TOML so both sides stay in sync.

Steps: load the shipped digits, normalize and split them as the recipe does, build the same CNN,
train it, evaluate the float model, prune it (polynomial decay, same derived schedule), strip and
evaluate, fine-tune with pruning-preserving QAT and evaluate, convert to full int8 with int8 I/O
(256 calibration samples), evaluate the `.tflite` with LiteRT on the test split, time it with the
LiteRT interpreter and write it. The last line of stdout is one JSON object with the results and
`seconds`: the wall time of each step (import, data, train, optimize, convert, evaluate, validate,
bundle), as `bench/pipeline.py` puts them beside edgepack's stages.

    python bench/plain_digits.py --out /tmp/plain/model.tflite
"""

from __future__ import annotations

import os
import time

IMPORTS_START = time.perf_counter()  # the toolchain's imports are timed as a step of their own
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TFMOT needs Keras 2 (tf_keras); set before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import gzip
import json
import math
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter

IMPORTS_SECONDS = time.perf_counter() - IMPORTS_START

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "digits.toml"
DIGITS = ROOT / "datasets" / "digits" / "digits.csv.gz"
DEFAULT_OUT = ROOT / "build" / "plain_digits" / "model.tflite"

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_split(recipe: dict[str, Any]) -> Split:
    """The digits as normalized NHWC float32, split by a seeded permutation (test = ceil(n * fraction))."""
    table = np.loadtxt(gzip.decompress(DIGITS.read_bytes()).decode().splitlines(), delimiter=",", dtype=np.uint8)
    norm = recipe["dataset"]["normalization"]
    x = ((table[:, :64].reshape(-1, 8, 8, 1).astype(np.float32) - norm["mean"]) / norm["std"]).astype(np.float32)
    y = table[:, 64].astype(np.int64)
    n_test = math.ceil(len(x) * recipe["dataset"]["test_fraction"])
    order = np.random.default_rng(recipe["seed"]).permutation(len(x))
    train, test = np.sort(order[n_test:]), np.sort(order[:n_test])
    return x[train], y[train], x[test], y[test]


def build_cnn(width: int, num_classes: int = 10) -> keras.Model:
    """Three 3x3 convolutions, one max-pooling, two dense layers and a softmax."""
    inputs = keras.Input(shape=(8, 8, 1), name="image")
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(4 * width, activation="relu", name="fc")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    probs = keras.layers.Softmax(name="probs")(logits)
    return keras.Model(inputs, probs, name="digits_cnn")


def fit(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    settings: dict[str, Any],
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> None:
    """Compile with the stage's optimizer and learning rate, then train (the model outputs probabilities)."""
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    optimizer = optimizers[settings.get("optimizer", "adam")](learning_rate=settings["learning_rate"])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(
        x,
        y,
        epochs=settings["epochs"],
        batch_size=settings.get("batch_size", 32),
        shuffle=True,
        verbose=0,
        callbacks=callbacks or [],
    )


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 test accuracy of a Keras model."""
    return float(np.mean(np.argmax(model(x, training=False), axis=-1) == y))


def prune_schedule(stage: dict[str, Any], n_train: int) -> tfmot.sparsity.keras.PolynomialDecay:
    """Polynomial decay ending at `end_fraction` of the stage, with 10 sparsity updates on the ramp."""
    total = stage["epochs"] * math.ceil(n_train / stage.get("batch_size", 32))
    end = max(1, round(total * stage.get("end_fraction", 0.7)))
    frequency = max(1, end // 10)
    end = max(frequency, frequency * (end // frequency))
    return tfmot.sparsity.keras.PolynomialDecay(
        stage.get("initial_sparsity", 0.0), stage["final_sparsity"], begin_step=0, end_step=end, frequency=frequency
    )


def prune(model: keras.Model, stage: dict[str, Any], x: np.ndarray, y: np.ndarray) -> keras.Model:
    """Magnitude-prune while fine-tuning, then strip the pruning wrappers."""
    sparsity = tfmot.sparsity.keras
    wrapped = sparsity.prune_low_magnitude(model, pruning_schedule=prune_schedule(stage, len(x)))
    fit(wrapped, x, y, stage, callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)


def qat(model: keras.Model, stage: dict[str, Any], x: np.ndarray, y: np.ndarray) -> keras.Model:
    """Quantization-aware fine-tuning that keeps the pruned zeros."""
    quant = tfmot.quantization.keras
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    wrapped = quant.quantize_apply(quant.quantize_annotate_model(model), scheme)
    fit(wrapped, x, y, stage)
    return wrapped


def convert_int8(model: keras.Model, calibration: np.ndarray) -> bytes:
    """Full-integer int8 conversion with int8 input and output tensors."""

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter.representative_dataset = representative
    return bytes(converter.convert())


def tflite_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the int8 `.tflite`, one quantized sample per invoke."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    quantized = np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)
    correct = 0
    for sample, label in zip(quantized, y):
        interpreter.set_tensor(inp["index"], sample[None, ...])
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])) == label)
    return correct / len(x)


def latency_p90_ms(path: Path, warmup: int, runs: int, threads: int) -> float:
    """p90 invoke latency (ms) of the `.tflite` on a random int8 input."""
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    sample = np.random.default_rng(0).integers(-128, 127, size=inp["shape"], endpoint=True).astype(np.int8)
    interpreter.set_tensor(inp["index"], sample)
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        interpreter.invoke()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 90))


SECONDS: dict[str, float] = {"import": IMPORTS_SECONDS}


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time one step into SECONDS."""
    start = time.perf_counter()
    yield
    SECONDS[name] = SECONDS.get(name, 0.0) + time.perf_counter() - start


def train_and_optimize(recipe: dict[str, Any], split: Split) -> tuple[keras.Model, dict[str, float]]:
    """Train the float model, prune it, fine-tune it with QAT; the test accuracy after each step."""
    x_train, y_train, x_test, y_test = split
    prune_stage, qat_stage = recipe["optimize"]
    with step("train"):
        keras.utils.set_random_seed(recipe["seed"])
        tf.config.experimental.enable_op_determinism()
        model = build_cnn(**recipe["model"]["args"])
        fit(model, x_train, y_train, recipe["train"])
        accuracies = {"float": accuracy(model, x_test, y_test)}
    with step("optimize"):
        keras.utils.set_random_seed(recipe["seed"] + 1)
        model = prune(model, prune_stage, x_train, y_train)
        accuracies["pruned"] = accuracy(model, x_test, y_test)
        model = qat(model, qat_stage, x_train, y_train)
        accuracies["qat"] = accuracy(model, x_test, y_test)
    return model, accuracies


def calibration_sample(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` train samples drawn without replacement with `seed`, in their original order."""
    picks = np.random.default_rng(seed).choice(len(x), size=min(count, len(x)), replace=False)
    return x[np.sort(picks)]


def main() -> None:
    """Run the recipe's steps and print the results as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the int8 .tflite")
    args = parser.parse_args()
    recipe = tomllib.loads(RECIPE.read_text())
    with step("data"):
        split = load_split(recipe)
    model, results = train_and_optimize(recipe, split)
    with step("convert"):
        calibration = calibration_sample(split[0], recipe["convert"]["calibration_samples"], recipe["seed"])
        converted = convert_int8(model, calibration)
    with step("bundle"):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(converted)
    with step("evaluate"):
        results["int8"] = tflite_accuracy(args.out, split[2], split[3])
    with step("validate"):
        validate = recipe["validate"]
        results["latency_p90_ms"] = latency_p90_ms(args.out, validate["warmup"], validate["runs"], validate["threads"])
    results["size_bytes"] = args.out.stat().st_size
    results["seconds"] = SECONDS
    print(json.dumps(results))


if __name__ == "__main__":
    main()
