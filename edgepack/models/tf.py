"""The only place edgepack imports TensorFlow, tf_keras and tfmot.

TFMOT works on Keras 2 models only, so `TF_USE_LEGACY_KERAS=1` must be set before TensorFlow is
first imported. Commands that need TensorFlow call `load()` when they start; nothing imports
TensorFlow as a side effect of importing an edgepack module.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache, lru_cache
from types import ModuleType

from edgepack.errors import StageError


@dataclass(frozen=True)
class TF:
    """The toolchain modules: `tf`, `keras` (tf_keras) and `tfmot`, imported when first asked for
    (about 1 s: a post-training recipe never needs it)."""

    tf: ModuleType
    keras: ModuleType

    @property
    def tfmot(self) -> ModuleType:
        """tensorflow-model-optimization."""
        import tensorflow_model_optimization as tfmot

        return tfmot


@lru_cache(maxsize=1)
def load() -> TF:
    """Import TensorFlow with Keras 2 selected, quiet logs, and return the modules."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    import sys

    if "tensorflow" in sys.modules and not _legacy_keras_active(sys.modules["tensorflow"]):
        raise StageError(
            "TensorFlow was imported before edgepack could select Keras 2 (tf_keras)",
            hint="set TF_USE_LEGACY_KERAS=1 before importing tensorflow, or let edgepack import it",
        )
    import tensorflow as tf
    import tf_keras as keras

    tf.get_logger().setLevel("ERROR")
    return TF(tf=tf, keras=keras)


def _legacy_keras_active(tf: ModuleType) -> bool:
    return "tf_keras" in getattr(tf.keras, "__name__", "")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TensorFlow ops deterministic."""
    mods = load()
    mods.keras.utils.set_random_seed(seed)
    mods.tf.config.experimental.enable_op_determinism()


@cache
def _strategy(name: str) -> object:
    tf = load().tf
    return tf.distribute.MirroredStrategy() if name == "mirrored" else tf.distribute.get_strategy()


def strategy_scope(name: str) -> AbstractContextManager[object]:
    """The scope of the recipe's `tf.distribute` strategy: `default` (one device) or `mirrored`.

    `mirrored` replicates training over every visible GPU (or the CPU when there is none); models
    built, wrapped and compiled inside the scope train under it.
    """
    return _strategy(name).scope()  # type: ignore[attr-defined]
