"""Weight clustering: each selected kernel keeps at most N distinct values, stripped before export.

After a prune stage the clustering keeps the zeros (TFMOT's sparsity-preserving clustering), so
prune -> cluster -> QAT stacks without losing either.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.datasets import Dataset
from edgepack.models.tf import load
from edgepack.optimize.loop import fit
from edgepack.optimize.select import Selection, has_kernel, select_layers
from edgepack.progress import Reporter
from edgepack.recipe.optimize import ClusterStage

INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED", "random": "RANDOM"}


def clusterable(layer: Any) -> str | None:
    """None when TFMOT can cluster the layer's weights, else why not."""
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (
        ClusteringRegistry,
    )

    if not has_kernel(layer):
        return "no weights"
    if not (ClusteringRegistry.supports(layer) or hasattr(layer, "get_clusterable_weights")):
        return "TFMOT cannot cluster this layer type"
    return None


def cluster(
    model: Any, stage: ClusterStage, data: Dataset, reporter: Reporter, label: str, pruned: bool = False
) -> tuple[Any, dict[str, Any]]:
    """Cluster and fine-tune the selected layers; returns the stripped model and unique values per kernel."""
    tfmot = load().tfmot
    from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster as experimental

    selection = select_layers(model, stage.layers, stage.skip, label, clusterable, "clustering")
    init = getattr(tfmot.clustering.keras.CentroidInitialization, INITS[stage.init])

    def wrap(layer: Any) -> Any:
        if layer.name not in selection:
            return layer
        return experimental.cluster_weights(
            layer, number_of_clusters=stage.clusters, cluster_centroids_init=init, preserve_sparsity=pruned
        )

    wrapped = load().keras.models.clone_model(model, clone_function=wrap)
    metrics = fit(wrapped, data, stage, reporter, label)
    stripped = tfmot.clustering.keras.strip_clustering(wrapped)
    return stripped, {
        **metrics,
        "clusters": stage.clusters,
        "preserve_sparsity": pruned,
        "unique_values": unique_values(stripped, selection),
        "left_out": selection.left_out,
    }


def unique_values(model: Any, selection: Selection | None = None) -> dict[str, int]:
    """Distinct values in each (selected) layer's kernel."""
    result = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and (selection is None or layer.name in selection):
            result[layer.name] = int(np.unique(kernel.numpy()).size)
    return result
