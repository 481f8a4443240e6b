"""What ships from one converted model (`Shipment`), each made once, on first use: the shipped model (its
metadata embedded and proven, or LUT-compressed), that model as a file, the models LiteRT and a
microcontroller run, their tensor records, the compression's report, TFLM's arena of the microcontroller
model and the boards' fits. The runner makes one per converted file and hands it the run's inputs; the
stage functions it calls are ship.py's, compress.py's and fits.py's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.pipeline.compress import applies

if TYPE_CHECKING:
    from edgepack.bundle.shipped import Shipped
    from edgepack.convert.lut import Compressed
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.records import DeviceRun, Fit


class Shipment:
    """The shipped forms of the `converted` model; `input_names` gives the Keras model's input names (asked only
    for several inputs), `validation` the run's device records so far (a tflm one carries TFLM's arena)."""

    def __init__(
        self,
        inputs: RunInputs,
        converted: Path,
        input_names: Callable[[], list[str] | None],
        validation: Callable[[], dict[str, DeviceRun]],
    ) -> None:
        self.inputs = inputs
        self.converted = converted
        self.input_names = input_names
        self.validation = validation
        self.compresses = applies(inputs.recipe, inputs.plan)  # compression = "lut": the shipped model is compressed
        self._shipped: Shipped | None = None
        self._compressed: Compressed | None = None
        self._plain_arena: tuple[int | None, str] | None = None
        self.arena: tuple[Arena | None, str] | None = None  # TFLM's arena of the microcontroller model, once measured

    def shipped(self) -> Shipped:
        """The model that ships, with its TFLite metadata embedded and proven (timed as the run's `ship`)."""
        from edgepack.pipeline.ship import ship, ship_compressed

        with self.inputs.clock.timed("ship"):
            if self._shipped is None:
                if self.compresses:  # the compressed bytes, for TFLM alone
                    self._shipped = ship_compressed(self.compressed_model())
                else:
                    self._shipped = ship(self.inputs, self.converted, self.input_names)
            return self._shipped

    def shipped_path(self) -> Path:
        """The shipped model as a file (what every device validates), beside the stages."""
        from edgepack.pipeline.ship import shipped_file

        return shipped_file(self.inputs.root, self.shipped(), self.converted, self.compresses)

    def litert_path(self) -> Path:
        """The shipped model as LiteRT runs it (the parity reference, the tensor records): the shipped file, or
        the converted one when the shipped one is LUT-compressed (the same tensors and weight values)."""
        return self.converted if self.compresses else self.shipped_path()

    def micro_path(self) -> Path:
        """The model a microcontroller holds (the c-array's bytes, the boards' flash, TFLM's arena): the
        converted model without metadata, or the shipped LUT-compressed one."""
        return self.shipped_path() if self.compresses else self.converted

    def tensor_records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The shipped model's input and output tensors in the file's order, each with the Keras input or
        output it is (`keras_index`), as the manifest lists them."""
        from edgepack.pipeline.ship import tensor_layout

        _, inputs, outputs = tensor_layout(self.inputs, self.litert_path(), self.input_names)
        return inputs, outputs

    def compressed_model(self) -> Compressed:
        """The converted model, LUT-compressed."""
        from edgepack.pipeline.compress import compress_model

        if self._compressed is None:
            self._compressed = compress_model(self.converted, self.inputs.reporter)
        return self._compressed

    def compression_report(self) -> dict[str, Any] | None:
        """`compression = "lut"` as plain data: what was compressed, the sizes, TFLM's arena (None without it)."""
        from edgepack.pipeline.compress import compression_report

        if not self.compresses:
            return None
        measured = self.micro_arena()
        plain = self.plain_arena()[0] if measured[0] is not None else None
        return compression_report(self.compressed_model(), measured, plain)

    def plain_arena(self) -> tuple[int | None, str]:
        """TFLM's arena of the converted (uncompressed) model, or None and why; measured once (a failure too:
        each try spawns TFLM, and the answer would not change)."""
        from edgepack.pipeline.compress import uncompressed_arena

        if self._plain_arena is None:
            self._plain_arena = uncompressed_arena(self.converted, self.inputs.reporter)
        return self._plain_arena

    def micro_arena(self) -> tuple[Arena | None, str]:
        """TFLM's arena of the microcontroller model, or None and why: taken from a tflm validation when there
        was one, else measured (the c-array, the fits and the compression report share it)."""
        from edgepack.pipeline.fits import measured_arena, validated_arena

        if self.arena is None:
            self.arena = validated_arena(self.validation()) or measured_arena(self.micro_path(), self.inputs.reporter)
        return self.arena

    def fits(self) -> list[Fit]:
        """Each board of `budgets.fits` against the microcontroller model and its arena."""
        from edgepack.pipeline.fits import boards, fits

        found = boards(self.inputs.recipe)
        if not found:
            return []
        return fits(self.inputs.recipe, found, self.micro_arena(), self.micro_path().read_bytes())
