"""Keras 3 models in edgepack: what a saved file holds, loading it, and rebuilding it in tf_keras.

TFMOT (pruning, QAT, clustering) works on tf_keras (Keras 2) models only, and tf_keras cannot load
files saved by Keras 3. `bridge()` rebuilds a Keras 3 Sequential or Functional model in tf_keras:
each layer's config is translated through a registry of the layers whose maths both libraries
share (`RULES`), the graph is rebuilt by calling the tf_keras layers along the Keras 3 config's
nodes (branches, shared layers, several inputs and outputs, nested models), and every weight is
copied with its shape checked. Anything the registry does not cover, and any Keras-3-only argument
away from its default, is refused before anything is built (`UnbridgeableLayer`): nothing that
changes the maths is dropped silently. `prove_bridge()` then runs both models and compares every
output; on a mismatch it names the first layer whose outputs differ.

Both libraries live in one process: `edgepack.models.tf.load()` selects tf_keras for TensorFlow
first, and `import keras` afterwards still gives Keras 3.

The package, one concern a module: `files` (what a saved file holds, no TensorFlow), `loading`
(Keras 3 itself and loading its files), `rules` (the registry and the config translation), `plan`
(the Keras 3 graph read from its config), `build` (the tf_keras model and its weights: `bridge`)
and `proof` (`prove_bridge`). Nothing imports TensorFlow or Keras at module level.
"""

from __future__ import annotations

from edgepack.models.keras3.build import bridge
from edgepack.models.keras3.files import FILE_HINT, SavedFormat, saved_format
from edgepack.models.keras3.loading import LOAD_ERRORS, is_keras3_model, keras3_module, load_keras3
from edgepack.models.keras3.proof import BridgeProof, prove_bridge
from edgepack.models.keras3.rules import (
    ACTIVATION_KEYS,
    DIFFERENT_ACTIVATIONS,
    DTYPE_POLICIES,
    INPUT_DTYPES,
    KERAS3_OBJECT_KEYS,
    MODEL_CLASSES,
    RENAMED_ACTIVATIONS,
    RENAMED_OBJECTS,
    RULES,
    SAME_ACTIVATIONS,
    Rule,
    UnbridgeableLayer,
)

__all__ = [
    "ACTIVATION_KEYS",
    "DIFFERENT_ACTIVATIONS",
    "DTYPE_POLICIES",
    "FILE_HINT",
    "INPUT_DTYPES",
    "KERAS3_OBJECT_KEYS",
    "LOAD_ERRORS",
    "MODEL_CLASSES",
    "RENAMED_ACTIVATIONS",
    "RENAMED_OBJECTS",
    "RULES",
    "SAME_ACTIVATIONS",
    "BridgeProof",
    "Rule",
    "SavedFormat",
    "UnbridgeableLayer",
    "bridge",
    "is_keras3_model",
    "keras3_module",
    "load_keras3",
    "prove_bridge",
    "saved_format",
]
