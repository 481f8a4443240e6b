"""The model that ships: the converted model with its TFLite metadata embedded (inputs and outputs
described for the task), the declared normalization proven and the outputs checked unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.bundle.manifest import LABELS_FILE, MODEL_FILE
from edgepack.fsutil import atomic_write_bytes
from edgepack.native import captured_native_logs

if TYPE_CHECKING:
    from edgepack.pipeline.run import Pipeline


def shipped(p: Pipeline) -> Any:
    """The shipped model (a `bundle.shipped.Shipped`); the converted bytes as they are with
    `bundle.metadata = false`, for `validate --model`, or when the tensors do not fit the data."""
    from edgepack.bundle.shipped import Shipped, describe, ship_model
    from edgepack.pipeline.compress import WHY_NO_METADATA, applies, compressed

    source = p.tflite_path
    if p.shipped_model is not None and p.shipped_model[0] == source:
        return p.shipped_model[1]
    if applies(p):  # compression = "lut": the compressed bytes, for TFLM alone (no metadata: the schema's rule)
        p.shipped_model = (source, Shipped(compressed(p).data, {"embedded": False, "why": WHY_NO_METADATA}))
        return p.shipped_model[1]
    converted = source.read_bytes()
    layout, inputs, outputs = tensor_layout(p, source)
    why = None
    if not p.recipe.bundle.metadata:
        why = "bundle.metadata = false"
    elif p.measured_as_given:
        why = "a model given to validate --model is measured as it is"
    elif layout is None:
        why = "the model's tensors do not match the recipe's samples, so metadata would describe other inputs"
    if why is not None or layout is None:
        result = Shipped(converted, {"embedded": False, "why": why})
    else:
        labels_file = LABELS_FILE if p.data.labels and p.task.class_scores else None
        meta = describe(
            p.recipe.name,
            p.recipe.description,
            p.recipe.version,
            p.recipe.bundle,
            p.data,
            inputs,
            outputs,
            labels_file,
            layout,
        )
        if p.data.image and p.data.pixel_range is None:
            p.reporter.note(
                "bundle: dataset.pixel_range is not known for these images, so the metadata's "
                "normalization is for the dataset's own values, not 8-bit pixels; set it"
            )
        files = {LABELS_FILE: "".join(f"{label}\n" for label in p.data.labels).encode("utf-8")} if labels_file else {}
        with captured_native_logs(p.quiet_native):
            result = ship_model(converted, meta, files, p.data, p.recipe.dataset.resize, layout)
    p.shipped_model = (source, result)
    return result


def tensor_layout(p: Pipeline, model: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """How the `.tflite`'s inputs and outputs map to the data and the Keras model (None when its inputs
    do not take the recipe's samples or its outputs are not the task's), and their tensor records in
    the file's order, each with the Keras input or output it is (`keras_index`)."""
    from edgepack.bundle.shipped import Layout
    from edgepack.errors import BadInputError
    from edgepack.litert import interpreter, io_order, tensor_records

    interp = interpreter(model)
    details_in, details_out = interp.get_input_details(), interp.get_output_details()
    records_in, records_out = tensor_records(details_in), tensor_records(details_out)
    shapes = [tuple(x.shape[1:]) for x in p.data.test_inputs]
    try:
        ordered_in, ordered_out = io_order(interp, p.input_names() if len(details_in) > 1 else None, shapes)
    except BadInputError:
        return None, records_in, records_out
    position_in = {d["index"]: i for i, d in enumerate(ordered_in)}
    position_out = {d["index"]: i for i, d in enumerate(ordered_out)}
    layout = Layout(
        [position_in[d["index"]] for d in details_in], [position_out[d["index"]] for d in details_out], p.task.kind
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
            p.task.output_problem(
                [tuple(d["shape"]) for d in ordered_in], [tuple(d["shape"]) for d in ordered_out], p.data
            )
            is None
        )
    return (layout if fits else None), records_in, records_out


def shipped_path(p: Pipeline) -> Path:
    """The shipped model as a file (what every device validates), beside the stages."""
    from edgepack.pipeline.compress import applies

    result = p.shipped()  # timed as the run's `ship`
    if not result.record["embedded"] and not applies(p):
        return p.tflite_path
    path = p.root / "ship" / MODEL_FILE
    if not path.is_file() or path.read_bytes() != result.data:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, result.data)
    return path
