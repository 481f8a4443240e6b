"""The `ethos-u` format: the model compiled by Vela for an Ethos-U NPU (what the NPU's driver loads:
TensorFlow Lite Micro with the Ethos-U custom op runs `ethos-u/model_vela.tflite`), Vela's summary
and per-layer reports, and the manifest entry with the configuration and Vela's key figures."""

from __future__ import annotations

from edgepack.bundle.formats_model import EthosUFormat
from edgepack.bundle.measurements_model import CpuOp
from edgepack.devices.profiles import EthosUDevice
from edgepack.devices.toolchains.vela import VelaRun
from edgepack.devices.toolchains.vela_report import VelaEstimate

FOLDER = "ethos-u"


def ethos_u_files(
    run: VelaRun, estimate: VelaEstimate, device: EthosUDevice, reused: bool
) -> tuple[dict[str, str | bytes], EthosUFormat]:
    """The files under `ethos-u/` and the manifest's `formats.ethos-u` entry (`reused`: the validation's
    compile of the same model for the same profile, not a compile of its own)."""
    files: dict[str, str | bytes] = {
        f"{FOLDER}/{run.compiled.name}": run.compiled.read_bytes(),
        f"{FOLDER}/{run.summary_csv.name}": run.summary_csv.read_bytes(),
    }
    if run.per_layer_csv.is_file():
        files[f"{FOLDER}/{run.per_layer_csv.name}"] = run.per_layer_csv.read_bytes()
    entry = EthosUFormat(
        files=sorted(files),
        device=device.name,
        accelerator=device.accelerator,
        system_config=estimate.system_config,
        memory_mode=estimate.memory_mode,
        clock_mhz=estimate.clock_mhz,
        vela_version=estimate.vela_version,
        model_sha256=estimate.model_sha256,
        compiled_sha256=estimate.compiled["sha256"],
        npu_ops=estimate.npu_ops,
        cpu_ops=estimate.cpu_ops,
        cpu_fallback=[CpuOp(op=op.op, name=op.name, reason=op.reason) for op in estimate.cpu_fallback],
        memory_bytes=estimate.memory_bytes,
        macs=estimate.macs,
        cycles_total=estimate.cycles["total"],
        inference_ms=estimate.inference_ms,
        inferences_per_second=estimate.inferences_per_second,
        compiled_by="validate (reused)" if reused else "bundle",
    )
    return files, entry
