"""Quantization-aware training with TFMOT (Keras 2 models only): whole model or selected layers.

The scheme follows what earlier stages made, so their work survives into the int8 file:
pruning -> pruning-preserving QAT; clustering -> cluster-preserving QAT; both -> the
cluster-preserving scheme with sparsity kept. Conv1D, which TFMOT's registry leaves out, is
quantized with per-tensor weights (see `_conv1d_config`); the converter lowers it to CONV_2D.
A layer TFMOT cannot quantize is refused up front, by name and type, with the ways out.
"""

from __future__ import annotations

import re
from typing import Any

from edgepack.datasets import Dataset
from edgepack.errors import ModelError
from edgepack.models.tf import load
from edgepack.optimize.fold import Fold, fold_batchnorm
from edgepack.optimize.loop import fit
from edgepack.optimize.select import select_layers
from edgepack.progress import Reporter
from edgepack.recipe.optimize import QatStage

EXTRA_SUPPORTED = ("Conv1D",)
MAX_PROBES = 64
MAX_NAMED = 6
_REFUSED = re.compile(r"Layer (.+?):<class '([\w.]+)'> is not supported")


def scheme_for(pruned: bool, clustered: bool, per_channel: bool = True) -> tuple[str, Any]:
    """The QAT scheme that preserves what the earlier stages made, with its name.

    With `per_channel = False` (the converter's setting; plain QAT only, the recipe check refuses
    it after prune or cluster) Conv2D and DepthwiseConv2D train with one weight scale per tensor,
    as the converter will then quantize them: trained one way and converted the other, the int8
    model loses accuracy (measured: 97 % -> 80 % on MobileNetV2 0.35).
    """
    tfmot = load().tfmot
    combine = tfmot.experimental.combine
    if clustered:
        name = "cluster- and sparsity-preserving" if pruned else "cluster-preserving"
        return name, combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=pruned)
    if pruned:
        return "pruning-preserving", combine.Default8BitPrunePreserveQuantizeScheme()
    from edgepack.optimize.layout import default_scheme

    return ("default 8-bit" if per_channel else "default 8-bit, per-tensor weights"), default_scheme(per_channel)


def qat(
    model: Any,
    stage: QatStage,
    data: Dataset,
    reporter: Reporter,
    label: str,
    pruned: bool = False,
    clustered: bool = False,
    per_channel: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Wrap the selected layers of `model` for QAT in the preserving scheme and fine-tune."""
    scheme_name, scheme = scheme_for(pruned, clustered, per_channel)
    folds: list[Fold] = []
    if not per_channel:  # per-tensor weights are only faithful with BN folded first (see fold.py)
        model, folds = fold_batchnorm(model, label)
        if folds:
            reporter.note(
                f"{label}: folded {len(folds)} BatchNormalization layer(s) into the layer before "
                "each, so that per-tensor QAT trains the kernels that ship"
            )
    selection = select_layers(model, stage.layers, stage.skip, label, lambda layer: None, "quantization-aware training")
    wrapped = _wrap(model, set(selection.chosen), scheme, label)
    metrics = fit(wrapped, data, stage, reporter, label)
    return wrapped, {
        **metrics,
        "scheme": scheme_name,
        "quantized_layers": list(selection.chosen),
        "left_out": selection.left_out,
        "folded_batchnorm": {f.bn: f.into for f in folds},
    }


def _wrap(model: Any, chosen: set[str], scheme: Any, label: str) -> Any:
    """quantize_apply on the chosen layers; every layer TFMOT refuses is found, then reported at once.

    TFMOT decides support only while applying (BatchNormalization after a convolution is folded,
    a lone one is not), so the refusals are collected by applying again without each refused layer.
    """
    refused: dict[str, str] = {}
    for _ in range(MAX_PROBES):
        try:
            wrapped = _apply(model, chosen, scheme)
        except RuntimeError as exc:
            match = _REFUSED.search(str(exc))
            if not match or match.group(1) not in chosen:
                raise _generic_error(exc, label) from exc
            refused[match.group(1)] = match.group(2).rsplit(".", 1)[-1]
            chosen = chosen - {match.group(1)}
            continue
        except (ValueError, TypeError) as exc:
            raise _generic_error(exc, label) from exc
        if refused:
            raise _unsupported_error(refused, label)
        return wrapped
    raise _unsupported_error(refused, label)


def _apply(model: Any, chosen: set[str], scheme: Any) -> Any:
    quant = load().tfmot.quantization.keras

    def annotate(layer: Any) -> Any:
        if layer.name not in chosen:
            return layer
        config = _conv1d_config() if type(layer).__name__ in EXTRA_SUPPORTED else None
        return quant.quantize_annotate_layer(layer, quantize_config=config)

    annotated = load().keras.models.clone_model(model, clone_function=annotate)
    with quant.quantize_scope():
        return quant.quantize_apply(annotated, scheme)


def _generic_error(exc: BaseException, label: str) -> ModelError:
    return ModelError(
        f"quantization-aware training cannot wrap this model: {exc}",
        context=label,
        hint="skip the failing layers in the qat stage (`skip = [...]`), or remove the "
        "qat stage to use post-training int8 quantization",
        code="qat-unsupported",
    )


def _unsupported_error(refused: dict[str, str], label: str) -> ModelError:
    shown = [f"'{name}' ({kind})" for name, kind in list(refused.items())[:MAX_NAMED]]
    more = len(refused) - len(shown)
    named = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    kinds = sorted(set(refused.values()))
    patterns = kinds if len(refused) > len(kinds) else list(refused)
    skip = ", ".join(f'"{p}"' for p in patterns)
    return ModelError(
        f"quantization-aware training does not support layer(s) {named}",
        context=label,
        hint=(
            f"either keep them in float during QAT with `skip = [{skip}]` in this qat stage (the "
            "converter still quantizes them after training, from the calibration data), or remove "
            "the qat stage and use post-training int8 quantization only"
        ),
        code="qat-unsupported",
    )


def _conv1d_config() -> Any:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    # Per-tensor weights: TFMOT's per-channel weight quantizer handles 2-D and 4-D kernels only
    # (a 3-D Conv1D kernel fails inside LastValueQuantize). The converter folds the fake-quant
    # into the CONV_2D it lowers Conv1D to.
    return registry.Default8BitQuantizeConfig(["kernel"], ["activation"], False)
