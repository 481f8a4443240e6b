"""The regression, anomaly and Keras 3 recipes written by hand against TensorFlow, tf_keras, TFMOT and LiteRT.

The baseline of `bench/tasks.py`, as `bench/plain_digits.py` is that of `bench/pipeline.py`: the
script a TensorFlow user would write to do the work of `edgepack run RECIPE`, without edgepack.
It imports nothing from edgepack; the hyper-parameters are read from `recipes/RECIPE.toml`, and
the data are loaded, normalized, split (seeded permutation, test = ceil(n * fraction)) and
sampled for calibration (seeded draw without replacement, sorted) with the same numpy steps, so
both sides train, calibrate and test on the same samples.

Steps: load the data (diabetes `.npz`: per-feature standardization; digits: NHWC / 16; anomaly:
train on the normal digits only, test labels 0 normal / 1 anomalous), build the model in tf_keras
(`mlp`, `dense_autoencoder`, or the residual CNN that `keras3_cnn` builds in Keras 3, written
directly in tf_keras since TFMOT needs tf_keras), train it (seeded, deterministic ops), evaluate
the float model, run the recipe's `[[optimize]]` stages (prune with the same derived polynomial
schedule, then pruning-preserving QAT; seeded with seed + 1), export a SavedModel, convert it to
full int8 with the recipe's I/O type and calibration samples, evaluate the `.tflite` with LiteRT
on the test split (one sample per invoke), time it (p90 of the invoke latency) and print one JSON
line: the task's metrics of the float, optimized and int8 models, the headline figure
(regression: RMSE; anomaly: ROC AUC of the per-sample reconstruction MSE; classification:
accuracy), the size and the latency.

    python bench/plain_tasks.py diabetes-regression --out /tmp/plain
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TFMOT needs Keras 2 (tf_keras); set before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import contextlib
import gzip
import io
import json
import math
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
DIGITS = ROOT / "datasets" / "digits" / "digits.csv.gz"
RECIPE_NAMES = ("diabetes-regression", "digits-anomaly", "keras3-prune-qat-int8")
TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam"}
FINE_TUNE_DEFAULTS = {"epochs": 2, "batch_size": 32, "learning_rate": 1e-4, "optimizer": "adam"}
PRUNE_DEFAULTS = {"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_fraction": 0.0, "end_fraction": 0.7}
VALIDATE_DEFAULTS = {"warmup": 20, "runs": 200, "threads": 1}
HEADLINE = {"regression": "rmse", "anomaly": "auc", "classification": "accuracy"}
UPDATES_PER_RAMP = 10


@dataclass(frozen=True)
class Data:
    """Normalized inputs and the task's targets, split; `y_train` is None for an autoencoder (it learns x)."""

    task: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def fit_targets(self) -> np.ndarray:
        """What `fit` is given as y: the targets, or the inputs themselves (autoencoder)."""
        return self.x_train if self.y_train is None else self.y_train


# -- data -------------------------------------------------------------------------------------------
def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices of a seeded permutation (test = ceil(n * fraction))."""
    n_test = math.ceil(n * fraction)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def normalize(x: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """`(x - mean) / std`, per feature or channel (the last axis) when lists are given; float32."""
    mean = np.asarray(norm["mean"], dtype=np.float32)
    std = np.asarray(norm["std"], dtype=np.float32)
    return ((x.astype(np.float32) - mean) / std).astype(np.float32)


def load_digits(norm: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The shipped 8x8 digits as normalized NHWC float32 images and their classes 0..9."""
    table = np.loadtxt(gzip.decompress(DIGITS.read_bytes()).decode().splitlines(), delimiter=",", dtype=np.uint8)
    return normalize(table[:, :64].reshape(-1, 8, 8, 1), norm), table[:, 64].astype(np.int64)


def load_npz(dataset: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A `.npz`'s features (normalized) and float targets shaped (N, outputs); the path is the recipe's."""
    with np.load(RECIPES / dataset["path"]) as arrays:
        x, y = arrays[dataset["x_key"]], arrays[dataset["y_key"]].astype(np.float32)
    return normalize(x, dataset["normalization"]), (y[:, None] if y.ndim == 1 else y)


def load_data(recipe: dict[str, Any]) -> Data:
    """The recipe's data for its task, split with its seed (anomaly: train on the normal samples only)."""
    dataset, task = recipe["dataset"], recipe.get("task", {"kind": "classification"})
    fraction, seed = dataset.get("test_fraction", 0.25), recipe["seed"]
    if dataset["kind"] == "npz":
        x, y = load_npz(dataset)
    else:
        x, y = load_digits(dataset["normalization"])
    train, test = split_indices(len(x), fraction, seed)
    if task["kind"] != "anomaly":
        return Data(task["kind"], x[train], y[train], x[test], y[test])
    anomalous = (~np.isin(y, [int(c) for c in task["normal_classes"]])).astype(np.int64)
    train = train[anomalous[train] == 0]
    return Data("anomaly", x[train], None, x[test], anomalous[test])


def calibration_sample(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` train samples drawn without replacement with `seed`, in their original order."""
    picks = np.random.default_rng(seed).choice(len(x), size=min(count, len(x)), replace=False)
    return x[np.sort(picks)]


# -- models ------------------------------------------------------------------------------------------
def mlp(
    input_shape: tuple[int, ...], size: int, hidden: list[int] | None = None, activation: str = "relu"
) -> keras.Model:
    """Dense layers of `hidden` units, then `size` linear outputs."""
    inputs = keras.Input(shape=input_shape, name="features")
    h = inputs
    for index, units in enumerate(hidden or [32, 16]):
        h = keras.layers.Dense(units, activation=activation, name=f"dense{index + 1}")(h)
    return keras.Model(inputs, keras.layers.Dense(size, name="prediction")(h), name="mlp")


def dense_autoencoder(
    input_shape: tuple[int, ...], size: int, hidden: list[int] | None = None, bottleneck: int = 8
) -> keras.Model:
    """The flattened input down through `hidden` to `bottleneck` and back up, reshaped like the input."""
    layers, widths = keras.layers, hidden or [64, 32]
    inputs = keras.Input(shape=input_shape, name="input")
    h = layers.Flatten(name="flatten")(inputs)
    for index, units in enumerate(widths):
        h = layers.Dense(units, activation="relu", name=f"encode{index + 1}")(h)
    h = layers.Dense(bottleneck, activation="relu", name="bottleneck")(h)
    for index, units in enumerate(reversed(widths)):
        h = layers.Dense(units, activation="relu", name=f"decode{index + 1}")(h)
    h = layers.Dense(size, name="reconstruct")(h)
    return keras.Model(inputs, layers.Reshape(input_shape, name="reconstruction")(h), name="dense_autoencoder")


def residual_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 16, dropout: float = 0.1) -> keras.Model:
    """The architecture of `edgepack.models.zoo:keras3_cnn`, written in tf_keras: conv-BN-ReLU stem,
    a depthwise-separable block with a residual Add, a strided conv, global pooling, Dropout, softmax."""
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    h = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem")(inputs)
    h = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(h))
    d = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    d = layers.ReLU(name="dw_relu")(layers.BatchNormalization(name="dw_bn")(d))
    d = layers.BatchNormalization(name="pw_bn")(layers.Conv2D(width, 1, use_bias=False, name="pw")(d))
    h = layers.ReLU(name="block_relu")(layers.Add(name="residual")([h, d]))
    h = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = layers.Dropout(dropout, name="dropout")(layers.GlobalAveragePooling2D(name="pool")(h))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax", name="probs")(h), name="keras3_cnn")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "edgepack.models.zoo:mlp": mlp,
    "edgepack.models.zoo:dense_autoencoder": dense_autoencoder,
    "edgepack.models.zoo:keras3_cnn": residual_cnn,
}


def build_model(recipe: dict[str, Any], data: Data) -> keras.Model:
    """The recipe's builder, called as f(input_shape, size, **args) (size: classes, targets or input size)."""
    shape = tuple(int(d) for d in data.x_train.shape[1:])
    sizes = {
        "classification": 10,
        "regression": int(np.prod(data.fit_targets.shape[1:])),
        "anomaly": int(np.prod(shape)),
    }
    model = recipe["model"]
    return BUILDERS[model["builder"]](shape, sizes[data.task], **model.get("args", {}))


# -- training ----------------------------------------------------------------------------------------
def fit(
    model: keras.Model, data: Data, settings: dict[str, Any], callbacks: list[keras.callbacks.Callback] | None = None
) -> None:
    """Compile with the stage's optimizer and the task's loss, then train on the train split."""
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    optimizer = optimizers[settings["optimizer"]](learning_rate=settings["learning_rate"])
    if data.task == "classification":  # the models end in a softmax: probabilities
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(), ["accuracy"]
    else:
        loss, metrics = keras.losses.MeanSquaredError(), (["mae"] if data.task == "regression" else [])
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.fit(
        data.x_train,
        data.fit_targets,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        shuffle=True,
        verbose=0,
        callbacks=callbacks or [],
    )


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic over average ranks (ties count half)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    return float((np.sum(ranks[labels == 1]) - positives * (positives + 1) / 2.0) / (positives * negatives))


def task_metrics(data: Data, predictions: np.ndarray) -> dict[str, float]:
    """The task's figures of predictions on the test split."""
    p = np.asarray(predictions, dtype=np.float64)
    if data.task == "regression":
        errors = p.reshape(data.y_test.shape) - data.y_test.astype(np.float64)
        return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}
    if data.task == "anomaly":
        x = data.x_test.reshape(len(data.x_test), -1).astype(np.float64)
        return {"auc": roc_auc(np.mean((p.reshape(x.shape) - x) ** 2, axis=1), data.y_test)}
    return {"accuracy": float(np.mean(np.argmax(p.reshape(len(p), -1), axis=-1) == data.y_test))}


def keras_metrics(model: keras.Model, data: Data) -> dict[str, float]:
    """The task's figures of a Keras model on the test split."""
    return task_metrics(data, np.asarray(model(data.x_test, training=False)))


def stage_settings(stage: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A recipe table with the schema's defaults filled in."""
    return {**defaults, **stage}


def prune_schedule(stage: dict[str, Any], n_train: int) -> tfmot.sparsity.keras.PolynomialDecay:
    """Polynomial decay from step `begin` (>= 1) to `end` of the stage, about 10 sparsity updates on the ramp."""
    total = stage["epochs"] * max(1, math.ceil(n_train / stage["batch_size"]))
    begin = min(max(1, round(total * stage["begin_fraction"])), total)
    end = min(max(begin, round(total * stage["end_fraction"])), total)
    frequency = max(1, (end - begin) // UPDATES_PER_RAMP)
    end = begin + frequency * ((end - begin) // frequency)
    return tfmot.sparsity.keras.PolynomialDecay(
        stage["initial_sparsity"], stage["final_sparsity"], begin_step=begin, end_step=end, frequency=frequency
    )


def prune(model: keras.Model, stage: dict[str, Any], data: Data) -> keras.Model:
    """Magnitude-prune while fine-tuning, then strip the pruning wrappers."""
    sparsity = tfmot.sparsity.keras
    wrapped = sparsity.prune_low_magnitude(model, pruning_schedule=prune_schedule(stage, len(data.x_train)))
    fit(wrapped, data, stage, callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)


def qat(model: keras.Model, stage: dict[str, Any], data: Data, pruned: bool) -> keras.Model:
    """Quantization-aware fine-tuning (pruning-preserving after a prune stage)."""
    quant = tfmot.quantization.keras
    annotated = quant.quantize_annotate_model(model)
    wrapped = (
        quant.quantize_apply(annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
        if pruned
        else quant.quantize_apply(annotated)
    )
    fit(wrapped, data, stage)
    return wrapped


def optimize(model: keras.Model, stages: list[dict[str, Any]], data: Data) -> keras.Model:
    """The recipe's `[[optimize]]` stages in order (prune and QAT are what these recipes use)."""
    done: set[str] = set()
    for stage in stages:
        if stage["kind"] == "prune":
            model = prune(model, stage_settings(stage, {**FINE_TUNE_DEFAULTS, **PRUNE_DEFAULTS}), data)
        elif stage["kind"] == "qat":
            model = qat(model, stage_settings(stage, FINE_TUNE_DEFAULTS), data, pruned="prune" in done)
        else:
            raise SystemExit(f"plain_tasks.py does not write optimize stage '{stage['kind']}'")
        done.add(stage["kind"])
    return model


# -- conversion and LiteRT ---------------------------------------------------------------------------
def convert_int8(saved_model: Path, calibration: np.ndarray, integer_io: bool) -> bytes:
    """Full-integer int8 conversion of the SavedModel, int8 or float32 input and output tensors."""

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if integer_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    converter.representative_dataset = representative
    return bytes(converter.convert())


def tflite_predict(path: Path, x: np.ndarray) -> np.ndarray:
    """The `.tflite`'s output on each sample (quantized in, dequantized out when the I/O is int8)."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero_point = inp["quantization"]
        x = np.clip(np.round(x / scale + zero_point), -128, 127)
    x = x.astype(inp["dtype"])
    outputs = []
    for sample in x:
        interpreter.set_tensor(inp["index"], sample[None, ...])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).astype(np.float32))
    y = np.concatenate(outputs)
    if out["dtype"] == np.int8:
        scale, zero_point = out["quantization"]
        y = (y - zero_point) * scale
    return y


def latency_p90_ms(path: Path, settings: dict[str, int]) -> float:
    """p90 invoke latency (ms) of the `.tflite` on one random input."""
    interpreter = Interpreter(model_path=str(path), num_threads=settings["threads"])
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    sample = (
        rng.integers(-128, 127, size=inp["shape"], endpoint=True)
        if inp["dtype"] == np.int8
        else rng.standard_normal(inp["shape"])
    ).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], sample)
    times = []
    for i in range(settings["warmup"] + settings["runs"]):
        start = time.perf_counter()
        interpreter.invoke()
        if i >= settings["warmup"]:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 90))


# -- the recipe --------------------------------------------------------------------------------------
def train_and_optimize(recipe: dict[str, Any], data: Data) -> tuple[keras.Model, dict[str, Any]]:
    """Train the float model (seeded), then the optimize stages (seeded with seed + 1); metrics after each."""
    keras.utils.set_random_seed(recipe["seed"])
    tf.config.experimental.enable_op_determinism()
    model = build_model(recipe, data)
    fit(model, data, stage_settings(recipe.get("train", {}), TRAIN_DEFAULTS))
    results: dict[str, Any] = {"float": keras_metrics(model, data)}
    if recipe.get("optimize"):
        keras.utils.set_random_seed(recipe["seed"] + 1)
        model = optimize(model, recipe["optimize"], data)
    results["optimized"] = keras_metrics(model, data)
    return model, results


def export(model: keras.Model, out: Path) -> Path:
    """The model's inference graph as a SavedModel in `out/saved_model` (the converter's input)."""
    path = out / "saved_model"
    with contextlib.redirect_stdout(io.StringIO()):  # `export` prints its endpoints
        model.export(str(path))
    return path


def run(name: str, out: Path) -> dict[str, Any]:
    """Every step of the recipe `name`; writes out/model.tflite; returns the figures."""
    recipe = tomllib.loads((RECIPES / f"{name}.toml").read_text())
    data = load_data(recipe)
    model, results = train_and_optimize(recipe, data)
    out.mkdir(parents=True, exist_ok=True)
    convert = recipe["convert"]
    if convert.get("mode", "int8") != "int8":
        raise SystemExit(f"plain_tasks.py converts to int8 only; {name} asks for {convert['mode']}")
    seed = convert.get("calibration_seed", recipe["seed"])
    calibration = calibration_sample(data.x_train, convert.get("calibration_samples", 256), seed)
    tflite = out / "model.tflite"
    tflite.write_bytes(convert_int8(export(model, out), calibration, convert.get("io", "int8") == "int8"))
    results["tflite"] = task_metrics(data, tflite_predict(tflite, data.x_test))
    metric = HEADLINE[data.task]
    validate = stage_settings(recipe.get("validate", {}), VALIDATE_DEFAULTS)
    return {
        "recipe": name,
        "task": data.task,
        "metric": metric,
        "headline": results["tflite"][metric],
        **results,
        "size_bytes": tflite.stat().st_size,
        "latency_p90_ms": latency_p90_ms(tflite, validate),
    }


def main() -> None:
    """Run one recipe's steps and print the results as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=RECIPE_NAMES, help="the shipped recipe to write by hand")
    parser.add_argument("--out", type=Path, required=True, help="folder for the SavedModel and model.tflite")
    args = parser.parse_args()
    print(json.dumps(run(args.recipe, args.out)))


if __name__ == "__main__":
    main()
