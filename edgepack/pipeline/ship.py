"""The model that ships: the converted model with its TFLite metadata embedded (inputs and outputs
described for the task), the declared normalization proven and the outputs checked unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.bundle.manifest import LABELS_FILE, MODEL_FILE
from edgepack.fsutil import atomic_write_bytes
from edgepack.native import captured_native_logs

if TYPE_CHECKING:
    from edgepack.bundle.shipped import Layout, Shipped
    from edgepack.convert.lut import Compressed
    from edgepack.pipeline.inputs import RunInputs

InputNames = Callable[[], "list[str] | None"]  # the Keras model's input names (asked only for several inputs)


def ship(inputs: RunInputs, converted: Path, input_names: InputNames) -> Shipped:
    """The shipped model made from the `converted` file: its metadata embedded and proven; the converted bytes
    as they are with `bundle.metadata = false`, for `validate --model`, or when the tensors do not fit the
    data. `input_names` is asked only for a model of several inputs (it may need the optimize stage)."""
    from edgepack.bundle.shipped import Shipped, describe, ship_model

    recipe, data, task = inputs.recipe, inputs.data, inputs.task
    model = converted.read_bytes()
    layout, tensors_in, tensors_out = tensor_layout(inputs, converted, input_names)
    why = None
    if not recipe.bundle.metadata:
        why = "bundle.metadata = false"
    elif inputs.plan.as_given:
        why = "a model given to validate --model is measured as it is"
    elif layout is None:
        why = "the model's tensors do not match the recipe's samples, so metadata would describe other inputs"
    if why is not None or layout is None:
        return Shipped(model, {"embedded": False, "why": why})
    labels_file = LABELS_FILE if data.labels and task.class_scores else None
    meta = describe(
        recipe.name,
        recipe.description,
        recipe.version,
        recipe.bundle,
        data,
        tensors_in,
        tensors_out,
        labels_file,
        layout,
    )
    if data.image and data.pixel_range is None:
        inputs.reporter.note(
            "bundle: dataset.pixel_range is not known for these images, so the metadata's "
            "normalization is for the dataset's own values, not 8-bit pixels; set it"
        )
    files = {LABELS_FILE: "".join(f"{label}\n" for label in data.labels).encode("utf-8")} if labels_file else {}
    with captured_native_logs(inputs.quiet_native):
        return ship_model(model, meta, files, data, recipe.dataset.resize, layout)


def ship_compressed(compressed: Compressed) -> Shipped:
    """The shipped model with `compression = "lut"`: the compressed bytes, for TFLM alone (no metadata: the
    schema's rule)."""
    from edgepack.bundle.shipped import Shipped
    from edgepack.pipeline.compress import WHY_NO_METADATA

    return Shipped(compressed.data, {"embedded": False, "why": WHY_NO_METADATA})


def tensor_layout(
    inputs: RunInputs, model: Path, input_names: InputNames
) -> tuple[Layout | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """How the `.tflite`'s inputs and outputs map to the data and the Keras model (None when its inputs
    do not take the recipe's samples or its outputs are not the task's), and their tensor records in
    the file's order, each with the Keras input or output it is (`keras_index`)."""
    from edgepack.bundle.shipped import Layout
    from edgepack.errors import BadInputError
    from edgepack.litert import interpreter, io_order, tensor_records

    data, task = inputs.data, inputs.task
    interp = interpreter(model)
    details_in, details_out = interp.get_input_details(), interp.get_output_details()
    records_in, records_out = tensor_records(details_in), tensor_records(details_out)
    shapes = [tuple(x.shape[1:]) for x in data.test_inputs]
    try:
        ordered_in, ordered_out = io_order(interp, input_names() if len(details_in) > 1 else None, shapes)
    except BadInputError:
        return None, records_in, records_out
    position_in = {d["index"]: i for i, d in enumerate(ordered_in)}
    position_out = {d["index"]: i for i, d in enumerate(ordered_out)}
    layout = Layout(
        [position_in[d["index"]] for d in details_in], [position_out[d["index"]] for d in details_out], task
    )
    for record, index in zip(records_in, layout.inputs):
        record["keras_index"] = index
    for record, index in zip(records_out, layout.outputs):
        record["keras_index"] = index
    fits = len(details_in) == len(shapes) and all(
        tuple(int(v) for v in d["shape"][1:]) == shapes[layout.inputs[i]] for i, d in enumerate(details_in)
    )
    if fits:  # the outputs are the task's (a classifier's scores: one per label)
        fits = (
            task.output_problem([tuple(d["shape"]) for d in ordered_in], [tuple(d["shape"]) for d in ordered_out], data)
            is None
        )
    return (layout if fits else None), records_in, records_out


def shipped_file(root: Path, shipped: Shipped, converted: Path, compressed: bool) -> Path:
    """The shipped model as a file (what every device validates): the `converted` file itself when the bytes
    are its own, else WORKDIR/RECIPE/ship/model.tflite, beside the stages (written when it differs)."""
    if not shipped.record["embedded"] and not compressed:
        return converted
    path = root / "ship" / MODEL_FILE
    if not path.is_file() or path.read_bytes() != shipped.data:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, shipped.data)
    return path
