"""Low-rank factorization: selected Dense (and 1x1 Conv2D) kernels replaced by two thinner layers.

A kernel W (in x out) is split by its truncated SVD, W ~= A @ B with A = U_r sqrt(S_r) (in x r) and
B = sqrt(S_r) V_r^T (r x out). A layer `NAME_lowrank` (A: no bias, no activation) is inserted before
the layer, which keeps its name, bias and activation and now reads r channels, so later stages'
layer patterns still find it. Both are plain Dense (or 1x1 Conv2D) layers: TFMOT prunes, clusters
and quantizes them, and the model saves as `.h5`. The model is rebuilt from its config
(`rebuild.py`, as BatchNorm folding does), every weight copied by layer name and checked.

The rank is the recipe's (at most min(in, out)) or the smallest that keeps `energy` of the squared
singular values. A layer is factored only where r (in + out) < in out; otherwise it is kept whole
and its record says why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from edgepack.datasets import Dataset
from edgepack.optimize.loop import evaluate, fit
from edgepack.optimize.rebuild import copy_weights, edit_layers, is_sequential, model_config, rebuild
from edgepack.optimize.select import Selection, select_layers
from edgepack.progress import Reporter
from edgepack.recipe.optimize import LowRankStage

SUFFIX = "_lowrank"
_UNSET = ("kernel_regularizer", "kernel_constraint", "bias_regularizer", "bias_constraint", "activity_regularizer")


@dataclass(frozen=True)
class LayerFactor:
    """What low-rank did to one selected layer: its rank, the energy kept, parameters before and after.

    `left` says why the layer was kept whole (then `params_after` equals `params_before`, and `rank`
    and `energy` are what factoring would have used); None when it was factored.
    """

    name: str
    shape: tuple[int, int]  # the kernel as a matrix: (in, out)
    rank: int
    energy: float
    params_before: int
    params_after: int
    left: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON form, as the stage record and the manifest carry it."""
        return {**asdict(self), "shape": list(self.shape), "factored": self.left is None}


def choose_rank(singular: np.ndarray, rank: int | None, energy: float | None) -> int:
    """The recipe's rank (at most the number of singular values), else the smallest rank whose
    squared singular values hold `energy` of the total (an all-zero kernel: rank 1)."""
    if rank is not None:
        return min(rank, singular.size)
    total = float(np.sum(singular**2))
    if total == 0.0:
        return 1
    share = np.cumsum(singular**2) / total
    return min(int(np.searchsorted(share, (energy or 1.0) - 1e-9)) + 1, singular.size)


def energy_kept(singular: np.ndarray, rank: int) -> float:
    """The fraction of the squared singular values the first `rank` of them hold."""
    total = float(np.sum(singular**2))
    return float(np.sum(singular[:rank] ** 2)) / total if total else 1.0


def split(kernel: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """A = U_r sqrt(S_r) (in x rank) and B = sqrt(S_r) V_r^T (rank x out): A @ B is the best
    rank-`rank` approximation of the matrix `kernel` (the truncated SVD, computed in float64)."""
    u, s, vt = np.linalg.svd(kernel.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(np.float32), (root[:, None] * vt[:rank]).astype(np.float32)


def factorable(shared: dict[str, int]) -> Callable[[Any], str | None]:
    """The `applies(layer)` rule of low-rank: None for a Dense or 1x1 Conv2D layer called once, else why not."""

    def applies(layer: Any) -> str | None:
        kind = type(layer).__name__
        if kind not in ("Dense", "Conv2D"):
            return "low-rank factors Dense and 1x1 Conv2D layers"
        if kind == "Conv2D" and (reason := _conv_reason(layer)):
            return reason
        if layer.name in shared:
            return f"a shared layer (called {shared[layer.name]} times): its factors would be shared too"
        return None

    return applies


def _conv_reason(layer: Any) -> str | None:
    kernel, strides, dilation = tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    if kernel != (1, 1):
        return f"a {kernel[0]}x{kernel[1]} convolution: low-rank factors 1x1 convolutions only"
    if strides != (1, 1) or dilation != (1, 1) or getattr(layer, "groups", 1) != 1:
        return f"a 1x1 convolution with strides {strides}, dilation {dilation}: low-rank needs stride 1, no dilation, one group"
    return None


def plan_layer(layer: Any, rank: int | None, energy: float | None) -> tuple[LayerFactor, list[list[np.ndarray]]]:
    """The layer's factor record, and (where it is factored) the weights of the inserted layer and of the layer."""
    weights = layer.get_weights()
    kernel, bias = weights[0], weights[1:]
    matrix = kernel.reshape(kernel.shape[-2], kernel.shape[-1])
    n_in, n_out = matrix.shape
    singular = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    r = choose_rank(singular, rank, energy)
    before = int(matrix.size + sum(np.size(b) for b in bias))
    factor = LayerFactor(layer.name, (n_in, n_out), r, round(energy_kept(singular, r), 6), before, before)
    if r * (n_in + n_out) >= n_in * n_out:
        capped = f" (rank {rank} capped at min(in, out) = {r})" if rank is not None and rank > r else ""
        why = (
            f"rank {r}{capped} needs {r * (n_in + n_out):,} kernel parameters, no fewer than the "
            f"{n_in * n_out:,} of the whole {n_in}x{n_out} kernel"
        )
        return replace(factor, left=why), []
    a, b = split(matrix, r)
    head = kernel.shape[:-2]  # (1, 1) for a convolution, () for Dense
    after = int(r * (n_in + n_out) + sum(np.size(x) for x in bias))
    return replace(factor, params_after=after), [
        [a.reshape(*head, n_in, r)],
        [b.reshape(*head, r, n_out), *bias],
    ]


def factorize(model: Any, stage: LowRankStage, label: str) -> tuple[Any, list[LayerFactor], Selection]:
    """The model with each selected layer that saves parameters factored; a record per selected layer."""
    sequential = is_sequential(model)
    config = model_config(model, label, "low-rank factorization inserts layers")
    shared = {} if sequential else _shared(config)
    selection = select_layers(model, stage.layers, stage.skip, label, factorable(shared), "low-rank factorization")
    entries = {entry["config"]["name"]: entry for entry in config["layers"]}
    if stage.rank == "auto":  # the pipeline's search gives each try its own rank
        raise ValueError(f"{label}: rank = 'auto' reached the stage itself; the search should have replaced it")
    factors: list[LayerFactor] = []
    given: dict[str, list[np.ndarray]] = {}
    insert: dict[str, dict[str, Any]] = {}
    for name in selection.chosen:
        factor, weights = plan_layer(model.get_layer(name), stage.rank, stage.energy)
        factors.append(factor)
        if weights:
            first = _free_name(f"{name}{SUFFIX}", entries, insert)
            insert[name] = _first_layer(entries[name], first, factor.rank)
            _reads_rank(entries[name])
            given[first], given[name] = weights
    if not insert:
        return model, factors, selection
    rebuilt = rebuild(
        model,
        edit_layers(config, sequential, insert=insert),
        label,
        "with its factored layers",
        hint="leave the layers named in the error out of low-rank (`skip`)",
    )
    copy_weights(model, rebuilt, given, label)
    return rebuilt, factors, selection


def _shared(config: dict[str, Any]) -> dict[str, int]:
    """Layers of a functional config called more than once, with their number of calls."""
    calls = {entry["name"]: len(entry["inbound_nodes"]) for entry in config["layers"]}
    return {name: n for name, n in calls.items() if n > 1}


def _free_name(name: str, entries: dict[str, Any], insert: dict[str, Any]) -> str:
    taken = set(entries) | {spec["config"]["name"] for spec in insert.values()}
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _first_layer(entry: dict[str, Any], name: str, rank: int) -> dict[str, Any]:
    """The config of the inserted layer: the layer's own, `rank` units (filters), no bias, no activation."""
    spec = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("name", "inbound_nodes", "build_config")}
    config = spec["config"]
    config.update({"name": name, "use_bias": False, "activation": "linear"})
    config["units" if entry["class_name"] == "Dense" else "filters"] = rank
    config.update(dict.fromkeys(_UNSET))
    return spec


def _reads_rank(entry: dict[str, Any]) -> None:
    """The factored layer no longer takes the model's input shape: the inserted layer does."""
    entry["config"].pop("batch_input_shape", None)
    entry.pop("build_config", None)


def low_rank(
    model: Any, stage: LowRankStage, data: Dataset, reporter: Reporter, label: str
) -> tuple[Any, dict[str, Any]]:
    """Factor the selected layers and fine-tune; returns the model and, per layer, what was done."""
    factored, factors, selection = factorize(model, stage, label)
    done = [f for f in factors if f.left is None]
    if not done:
        reporter.note(f"{label}: no layer was factored (none saves parameters at the chosen rank)")
    before_fine_tune = evaluate(factored, data, reporter, f"{label}: evaluate the factored model")
    metrics = fit(factored, data, stage, reporter, label)
    return factored, {
        **metrics,
        "rank": stage.rank,
        "energy": stage.energy,
        "layers": [f.record() for f in factors],
        "left_out": selection.left_out,
        "totals": _totals(factors, _params(model), _params(factored)),
        "test_metrics_factored": before_fine_tune,
    }


def _params(model: Any) -> int:
    return int(sum(np.size(w) for w in model.get_weights()))


def _totals(factors: list[LayerFactor], model_before: int, model_after: int) -> dict[str, Any]:
    return {
        "factored": sum(f.left is None for f in factors),
        "kept": sum(f.left is not None for f in factors),
        "layer_params_before": sum(f.params_before for f in factors),
        "layer_params_after": sum(f.params_after for f in factors),
        "model_params_before": model_before,
        "model_params_after": model_after,
        "ratio": round(model_after / model_before, 4) if model_before else 1.0,
    }
