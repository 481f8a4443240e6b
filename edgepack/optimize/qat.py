"""Quantization-aware training of the whole model with TFMOT (Keras 2 models only)."""

from __future__ import annotations

from typing import Any

from edgepack.datasets import Dataset
from edgepack.errors import ModelError
from edgepack.models.tf import load
from edgepack.optimize.loop import fit
from edgepack.recipe.schema import QatStage
from edgepack.reporting import Reporter


def qat(model: Any, stage: QatStage, data: Dataset, reporter: Reporter, label: str,
        preserve_sparsity: bool) -> tuple[Any, dict[str, Any]]:
    """Wrap `model` for QAT (pruning-preserving after pruning) and fine-tune it."""
    tfmot = load().tfmot
    quant = tfmot.quantization.keras
    try:
        annotated = quant.quantize_annotate_model(model)
        if preserve_sparsity:
            scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            wrapped = quant.quantize_apply(annotated, scheme)
        else:
            wrapped = quant.quantize_apply(annotated)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"quantization-aware training cannot wrap this model: {exc}",
            context=f"optimize stage '{label}'",
            hint="remove the [[optimize]] kind = 'qat' stage to use post-training int8 quantization",
            code="qat-unsupported",
        ) from exc
    metrics = fit(wrapped, data, stage, reporter, label)
    return wrapped, {**metrics, "preserve_sparsity": preserve_sparsity}
