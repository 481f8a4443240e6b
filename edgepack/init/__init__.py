"""Starter recipes: what `edgepack init` writes for a user's own saved model and data.

`write_starter` reads the model (Keras 3 or tf_keras `.keras` / `.h5`, or a SavedModel directory)
for its input and output shapes, and the data (an `.npz` of arrays or a folder of class
sub-folders) for the arrays that feed it (as images or tensors, with the reason) and the task they
can serve; it measures the normalization on the float model (with labels; else it guesses, and says
so), sets a post-training int8 conversion and the host as the device, then measures the draft through
the real pipeline and sets the budgets from that first measurement, with room the user can take back
(none when the float model scores near chance). The recipe is written once: an existing file is
never overwritten, not even by a race.

One concern a module: `model` (the saved model), `data` (the arrays or image folder that feed it),
`task` (the task they serve), `layout` (images or tensors), `candidates` (the normalizations judged on
the float model), `normalization` (the one written, or the guess), `measure` (the first measurement and its
budgets), `render` (the commented TOML text, with `tomlvalue`), `write` (never over a file) and
`command` (all of it, in order). Importing this package imports numpy, never TensorFlow: the model
is loaded, and the pipeline run, inside the functions that need them.
"""

from edgepack.init.candidates import Candidate, NormCheck, chance_of, check_normalization
from edgepack.init.command import NAME_RE, StarterResult, recipe_name, write_starter
from edgepack.init.data import SEED, TEST_FRACTION, Array, DataPlan, describe_array, plan_data, read_npz
from edgepack.init.layout import LayoutChoice, choose_layout
from edgepack.init.measure import LATENCY_FLOOR_MS, Budget, Measured, budgets_from, ceil_sig, ceil_to, measure
from edgepack.init.model import ModelInfo, Shape, Tensor, first_normalizer, read_model
from edgepack.init.normalization import NormGuess, guess_normalization
from edgepack.init.render import Starter, render
from edgepack.init.task import TASK_KINDS, Fit, check_task, model_problem
from edgepack.init.write import exists_error, write_new
from edgepack.tasks.base import Chance

__all__ = [
    "LATENCY_FLOOR_MS",
    "NAME_RE",
    "SEED",
    "TASK_KINDS",
    "TEST_FRACTION",
    "Array",
    "Budget",
    "Candidate",
    "Chance",
    "DataPlan",
    "Fit",
    "LayoutChoice",
    "Measured",
    "ModelInfo",
    "NormCheck",
    "NormGuess",
    "Shape",
    "Starter",
    "StarterResult",
    "Tensor",
    "budgets_from",
    "ceil_sig",
    "ceil_to",
    "chance_of",
    "check_normalization",
    "choose_layout",
    "check_task",
    "describe_array",
    "exists_error",
    "first_normalizer",
    "guess_normalization",
    "read_model",
    "measure",
    "model_problem",
    "plan_data",
    "read_npz",
    "recipe_name",
    "render",
    "write_new",
    "write_starter",
]
