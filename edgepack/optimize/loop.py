"""The shared training loop: compile, fit with a progress bar, and measure accuracy."""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence

import numpy as np

from edgepack.datasets import Dataset
from edgepack.models.tf import load
from edgepack.reporting import Reporter, Task


class Settings(Protocol):
    """The fields the loop needs: epochs, batch_size, learning_rate, optimizer."""

    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str


def make_optimizer(settings: Settings) -> Any:
    """The recipe's optimizer at its learning rate."""
    keras = load().keras
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                  "rmsprop": keras.optimizers.RMSprop}
    return optimizers[settings.optimizer](learning_rate=settings.learning_rate)


def compile_model(model: Any, settings: Settings) -> None:
    """Compile with the recipe's optimizer and learning rate, for integer class labels."""
    loss = load().keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model))
    model.compile(optimizer=make_optimizer(settings), loss=loss, metrics=["accuracy"])


def outputs_probabilities(model: Any) -> bool:
    """True when the model ends in a softmax (layer or activation), so it outputs probabilities.

    Looks through TFMOT's wrappers: QAT wraps the layer and its activation, pruning the layer.
    """
    last = model.layers[-1]
    inner = getattr(last, "layer", last)
    names = {type(last).__name__, type(inner).__name__, last.name, inner.name}
    for activation in (getattr(last, "activation", None), getattr(inner, "activation", None)):
        wrapped = getattr(activation, "activation", activation)
        names.add(getattr(wrapped, "__name__", ""))
    return any("softmax" in name.lower() for name in names)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one epoch over `n` samples."""
    return max(1, math.ceil(n / batch_size))


def fit(model: Any, data: Dataset, settings: Settings, reporter: Reporter, label: str,
        callbacks: Sequence[Any] = (), compiled: bool = False) -> dict[str, float]:
    """Compile (unless `compiled`) and train on the train split; returns the last epoch's loss and accuracy."""
    if not compiled:
        compile_model(model, settings)
    steps = steps_per_epoch(len(data.x_train), settings.batch_size)
    with reporter.task(f"{label}: epoch 1/{settings.epochs}", settings.epochs * steps) as task:
        history = model.fit(
            data.x_train, data.y_train, epochs=settings.epochs, batch_size=settings.batch_size,
            shuffle=True, verbose=0, callbacks=[*callbacks, _progress_callback(task, label, settings.epochs)],
        )
    return {"loss": float(history.history["loss"][-1]), "train_accuracy": float(history.history["accuracy"][-1])}


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, reporter: Reporter, label: str,
             batch_size: int = 256) -> float:
    """Top-1 accuracy of a Keras model on (x, y), with a progress bar over batches."""
    predictions = []
    with reporter.task(label, len(x)) as task:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            predictions.append(np.asarray(model(batch, training=False)))
            task.advance(len(batch))
    return float(np.mean(np.argmax(np.concatenate(predictions), axis=-1) == y))


def _progress_callback(task: Task, label: str, epochs: int) -> Any:
    keras = load().keras

    class _Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            task.advance(1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss", float("nan"))
            nxt = min(epoch + 2, epochs)
            task.advance(0, description=f"{label}: epoch {nxt}/{epochs} (loss {loss:.3f})")

    return _Progress()
