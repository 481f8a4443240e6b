"""The shared training loop: compile with the task's loss, fit with a progress bar, measure the task's metrics.

It works on tf_keras models (and their TFMOT wrappers) and on Keras 3 models kept as they are: the
Keras module comes from the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from edgepack.datasets import Dataset
from edgepack.models.tf import load
from edgepack.progress import NullReporter, Reporter, Task


class Settings(Protocol):
    """The fields the loop needs: epochs, batch_size, learning_rate, optimizer.

    Read-only members: the recipe's settings are frozen models (no settable attributes), and their
    `optimizer`, a Literal of names, is a `str` only where the member is read-only."""

    @property
    def epochs(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def learning_rate(self) -> float: ...

    @property
    def optimizer(self) -> str: ...


def keras_of(model: Any) -> Any:
    """The Keras module a model belongs to: tf_keras, or Keras 3 for a Keras 3 model."""
    from edgepack.models.keras3 import is_keras3_model

    if is_keras3_model(model):
        import keras

        return keras
    return load().keras


def make_optimizer(settings: Settings, keras: Any = None) -> Any:
    """The recipe's optimizer at its learning rate."""
    keras = keras or load().keras
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[settings.optimizer](learning_rate=settings.learning_rate)


def compile_model(model: Any, settings: Settings, task: Any) -> None:
    """Compile with the recipe's optimizer and learning rate and the task's loss and metrics."""
    keras = keras_of(model)
    model.compile(optimizer=make_optimizer(settings, keras), loss=task.loss(keras, model), metrics=task.fit_metrics())


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one epoch over `n` samples."""
    return max(1, math.ceil(n / batch_size))


def fit(
    model: Any,
    data: Dataset,
    settings: Settings,
    reporter: Reporter,
    label: str,
    callbacks: Sequence[Any] = (),
    compiled: bool = False,
) -> dict[str, float]:
    """Compile (unless `compiled`) and train on the train split, with the targets of the data's task;
    returns the last epoch's loss and metrics (`train_accuracy` for a classifier)."""
    from edgepack import tasks

    task = tasks.get(data.task)
    if not compiled:
        compile_model(model, settings, task)
    steps = steps_per_epoch(data.train_samples, settings.batch_size)
    with reporter.task(f"{label}: epoch 1/{settings.epochs}", settings.epochs * steps) as bar:
        # a per-batch hook costs a Python call per step (10 % of a small model's fit): none when nobody looks
        progress = (
            []
            if isinstance(reporter, NullReporter)
            else [_progress_callback(bar, label, settings.epochs, keras_of(model))]
        )
        history = model.fit(
            data.x_train,
            task.fit_targets(data),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=[*callbacks, *progress],
        )
    return {
        ("loss" if name == "loss" else f"train_{name}"): float(values[-1])
        for name, values in history.history.items()
        if not name.startswith("val_")
    }


def predict(model: Any, x: Any, reporter: Reporter, label: str, batch_size: int = 256) -> list[np.ndarray]:
    """A Keras model's outputs on x (one array, or a list: one per input), one array per output."""
    from edgepack.tasks import as_list

    inputs = as_list(x)
    total = len(inputs[0])
    batches: list[list[np.ndarray]] = []
    with reporter.task(label, total) as bar:
        for start in range(0, total, batch_size):
            batch = [x_[start : start + batch_size] for x_ in inputs]
            out = model(batch[0] if len(batch) == 1 else batch, training=False)
            if isinstance(out, dict):
                out = (
                    [out[name] for name in model.output_names] if hasattr(model, "output_names") else list(out.values())
                )
            batches.append([np.asarray(o) for o in as_list(out)])
            bar.advance(len(batch[0]))
    return [np.concatenate([b[i] for b in batches]) for i in range(len(batches[0]))]


def evaluate(model: Any, data: Dataset, reporter: Reporter, label: str) -> dict[str, float]:
    """The task's metrics of a Keras model on the test split."""
    from edgepack import tasks

    return tasks.get(data.task).metrics(predict(model, data.x_test, reporter, label), data.test_split())


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, reporter: Reporter, label: str, batch_size: int = 256) -> float:
    """Top-1 accuracy of a Keras classifier on (x, y), with a progress bar over batches."""
    from edgepack.tasks import metrics

    return metrics.accuracy(predict(model, x, reporter, label, batch_size)[0], y)


def _progress_callback(task: Task, label: str, epochs: int, keras: Any) -> Any:
    class _Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            task.advance(1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss", float("nan"))
            nxt = min(epoch + 2, epochs)
            task.advance(0, description=f"{label}: epoch {nxt}/{epochs} (loss {loss:.3f})")

    return _Progress()
