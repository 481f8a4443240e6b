"""Run the stages in order, each cached by the hash of its inputs.

recipe -> data -> train -> optimize -> convert -> evaluate -> validate -> gate -> bundle

A stage's id is the sha256 of its name, its resolved settings, the ids of the stages it reads and
the toolchain versions. Its outputs live in `WORKDIR/RECIPE/STAGE/` with a `stage.json`; when that
file holds the same id, the stage is a cache hit. Each stage directory is written to a temporary
directory and renamed into place, so an interrupted run never leaves a half-written stage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from edgepack.bundle.manifest import MODEL_FILE, toolchain_versions
from edgepack.datasets import Dataset, calibration_indices, calibration_quality, fingerprint, load_dataset
from edgepack.errors import BadInputError
from edgepack.fsutil import atomic_write_bytes, clean_stale_temps, replace_dir, temp_dir_beside
from edgepack.gate.budgets import BudgetResult, Measurements, check_budgets, conversion_results, gated_latency
from edgepack.native import captured_native_logs
from edgepack.recipe import LoadedRecipe
from edgepack.recipe.load import canonical_json
from edgepack.reporting import NullReporter, Reporter

QUANT_ERROR_FILE = "quant_error.json"
FALLBACK_FILE = "fallback.json"
STAGES = ("train", "optimize", "convert", "evaluate", "validate", "gate", "bundle")
STAGE_FILE = "stage.json"
KERAS_FILE = "model.h5"
SAVED_MODEL_DIR = "saved_model"


@dataclass
class StageOutput:
    """What a stage produced: its id, its directory, its record, and whether it came from the cache."""

    name: str
    id: str
    dir: Path
    record: dict[str, Any]
    cached: bool = False


@dataclass
class RunResult:
    """Everything `edgepack run` reports."""

    stages: dict[str, StageOutput] = field(default_factory=dict)
    validation: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: list[BudgetResult] = field(default_factory=list)
    bundle: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every budget holds."""
        return all(result.passed for result in self.gate)


class Pipeline:
    """The stages of one recipe, sharing data and in-memory models, cached in `workdir`."""

    def __init__(self, loaded: LoadedRecipe, workdir: Path, reporter: Reporter | None = None,
                 use_cache: bool = True, quiet_native: bool = True) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.root = workdir / self.recipe.name
        self.reporter = reporter or NullReporter()
        self.use_cache = use_cache
        self.quiet_native = quiet_native
        self.result = RunResult()
        self._models: dict[str, Any] = {}
        self._gated = False
        self._devices: list[Any] | None = None
        self._external_model: Path | None = None
        self._search: dict[str, Any] | None = None
        self._external_stage: StageOutput | None = None
        self._shipped: tuple[Path, Any] | None = None
        self._external_bundled = False
        self.root.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.root)

    # -- data ---------------------------------------------------------------------------------
    @cached_property
    def data(self) -> Dataset:
        """The recipe's dataset, normalized and split with the recipe's seed."""
        return load_dataset(self.recipe.dataset, self.recipe.seed, self.loaded.base_dir)

    @cached_property
    def calibration_indices(self) -> Any:
        """Which train samples are the representative sample (drawn with calibration_seed, else seed)."""
        seed = self.recipe.convert.calibration_seed
        seed = self.recipe.seed if seed is None else seed
        return calibration_indices(len(self.data.x_train), self.recipe.convert.calibration_samples, seed)

    @cached_property
    def calibration(self) -> Any:
        """The representative sample for calibration, drawn from the train split."""
        return self.data.x_train[self.calibration_indices]

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """sha256 fingerprints of the train, calibration and test data."""
        d = self.data
        return {"train": fingerprint(d.x_train, d.y_train), "calibration": fingerprint(self.calibration),
                "test": fingerprint(d.x_test, d.y_test)}

    # -- caching ------------------------------------------------------------------------------
    def _stage_id(self, name: str, config: Any, inputs: dict[str, str]) -> str:
        payload = {"stage": name, "config": config, "inputs": inputs, "toolchain": toolchain_versions()}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]

    def _run_stage(self, name: str, stage_id: str, body: Callable[[Path], dict[str, Any]]) -> StageOutput:
        if name in self.result.stages:
            return self.result.stages[name]
        target = self.root / name
        cached = self._load_cached(target, stage_id)
        if cached is not None:
            self.reporter.stage(name, "cached")
            out = StageOutput(name, stage_id, target, cached, cached=True)
        else:
            self.reporter.stage(name, "running")
            tmp = temp_dir_beside(target)
            try:
                with captured_native_logs(self.quiet_native):
                    record = body(tmp)
                (tmp / STAGE_FILE).write_text(json.dumps({"id": stage_id, "record": record}, indent=2))
                replace_dir(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            out = StageOutput(name, stage_id, target, record)
        self.result.stages[name] = out
        return out

    def _load_cached(self, target: Path, stage_id: str) -> dict[str, Any] | None:
        if not self.use_cache:
            return None
        try:
            saved = json.loads((target / STAGE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return saved["record"] if saved.get("id") == stage_id else None

    def _model(self, stage: StageOutput) -> Any:
        if stage.name not in self._models:
            from edgepack.models.source import load_model

            self._models[stage.name] = load_model(stage.dir / stage.record["model_file"])
        return self._models[stage.name]

    # -- stages -------------------------------------------------------------------------------
    def train(self) -> StageOutput:
        """Build and train (or load) the float reference model; measure its test accuracy."""
        r = self.recipe
        config = {"model": r.model.model_dump(mode="json"), "seed": r.seed,
                  "train": r.train.model_dump(mode="json") if r.model.kind == "builder" else None,
                  "saved": _path_digest(self.loaded.base_dir / r.model.path) if r.model.kind == "saved" else None,
                  "strategy": r.strategy}
        stage_id = self._stage_id("train", config, {"data": self.fingerprints["train"]})

        def body(out: Path) -> dict[str, Any]:
            from edgepack.models.source import count_params, save_model
            from edgepack.models.tf import seed_everything, strategy_scope
            from edgepack.optimize.loop import accuracy
            from edgepack.optimize.train import train

            seed_everything(r.seed)
            with strategy_scope(r.strategy):
                model, metrics = train(self.loaded, self.data, self.reporter)
            test_accuracy = accuracy(model, self.data.x_test, self.data.y_test, self.reporter, "train: evaluate")
            save_model(model, out / KERAS_FILE)
            self._models["train"] = model
            return {"model_file": KERAS_FILE, "params": count_params(model), "test_accuracy": test_accuracy,
                    **metrics}

        return self._run_stage("train", stage_id, body)

    def optimize(self) -> StageOutput:
        """Run the `[[optimize]]` stages in order on the trained model."""
        trained = self.train()
        stages = [s.model_dump(mode="json") for s in self.recipe.optimize]
        config = {"stages": stages, "seed": self.recipe.seed, "strategy": self.recipe.strategy,
                  "files": self._optimize_files()}
        if not self.recipe.convert.per_channel:  # QAT trains for the converter's weight granularity
            config["per_channel"] = False
        stage_id = self._stage_id("optimize", config, {"train": trained.id})

        def body(out: Path) -> dict[str, Any]:
            from edgepack.models.source import export_saved_model
            from edgepack.models.tf import seed_everything
            from edgepack.optimize.stages import optimize

            model, records = self._model(trained), []
            if self.recipe.optimize:
                seed_everything(self.recipe.seed + 1)
                model, records = optimize(model, self.recipe.optimize, self.data, self.reporter,
                                          self.loaded.base_dir, self.recipe.seed + 1, self.recipe.strategy,
                                          self.recipe.convert.per_channel)
            export_saved_model(model, out / SAVED_MODEL_DIR)
            layers = [getattr(layer, "layer", layer).name for layer in model.layers]
            return {"saved_model": SAVED_MODEL_DIR, "layers": layers, "stages": records}

        return self._run_stage("optimize", stage_id, body)

    def _optimize_files(self) -> dict[str, str]:
        """Digests of the files the optimize stages read (a distillation teacher, a saved student)."""
        files = {}
        for index, stage in enumerate(self.recipe.optimize):
            if stage.kind != "distill":
                continue
            if stage.teacher_path:
                files[f"{index}.teacher"] = _path_digest(self.loaded.base_dir / stage.teacher_path)
            if stage.student.kind == "saved":
                files[f"{index}.student"] = _path_digest(self.loaded.base_dir / stage.student.path)
        return files

    def convert(self) -> StageOutput:
        """Convert the optimized model to `.tflite` in the recipe's mode, calibrated (with
        `[convert.search]`: the candidate the search picks; after `use_model`: that model)."""
        if self._external_stage is not None:
            return self._external_stage
        if self.recipe.convert.search is not None:
            return self.search()["stage"]
        return self._convert(self.recipe.convert)

    def _convert(self, settings: Any, name: str = "convert") -> StageOutput:
        optimized = self.optimize()
        calibration_seed = self.recipe.seed if settings.calibration_seed is None else settings.calibration_seed
        inputs = {"optimize": optimized.id, "calibration": self.fingerprints["calibration"]}
        if settings.fallback:  # the search measures accuracy on the test split
            inputs["test"] = self.fingerprints["test"]
        stage_id = self._stage_id("convert", settings.model_dump(mode="json"), inputs)

        def body(out: Path) -> dict[str, Any]:
            from edgepack.analyze.weights import gzip_size
            from edgepack.convert.isolated import convert_isolated

            why_not = self._error_report_skipped(settings)
            error_file = out / QUANT_ERROR_FILE
            selective = None
            if settings.keep_float or settings.fallback:
                float_accuracy = (optimized.record["stages"][-1]["test_accuracy"] if optimized.record["stages"]
                                  else self.train().record["test_accuracy"])
                selective = {"x_test": self.data.x_test, "y_test": self.data.y_test,
                             "layers": optimized.record["layers"], "float_accuracy": float_accuracy,
                             "report_out": out / FALLBACK_FILE}
            failed = convert_isolated(optimized.dir / optimized.record["saved_model"], settings, self.calibration,
                                      out / MODEL_FILE, self.reporter, error_out=None if why_not else error_file,
                                      selective=selective)
            flatbuffer = (out / MODEL_FILE).read_bytes()
            fallback = json.loads((out / FALLBACK_FILE).read_text()) if selective else None
            quality = calibration_quality(self.calibration, self.data.y_train[self.calibration_indices],
                                          self.data.x_test, self.data.y_test, list(self.data.labels))
            if quality["missing_classes"] and settings.mode in ("int8", "int16x8"):
                self.reporter.note(f"convert: the {len(self.calibration)} calibration samples miss "
                                   f"{len(quality['missing_classes'])} class(es) of the test split "
                                   f"({', '.join(quality['missing_classes'][:5])}); raise convert.calibration_samples")
            return {"model_file": MODEL_FILE, "mode": settings.mode, "io": settings.io,
                    "sha256": hashlib.sha256(flatbuffer).hexdigest(), "size_bytes": len(flatbuffer),
                    "gzip_bytes": gzip_size(flatbuffer),
                    "weights": tflite_weights(flatbuffer, optimized.record["layers"]),
                    "calibration": {"samples": int(len(self.calibration)), "seed": calibration_seed,
                                    "fingerprint": self.fingerprints["calibration"], **quality},
                    "quant_error": quantization_error_record(error_file, optimized.record["layers"],
                                                             why_not or failed),
                    "fallback": fallback}

        return self._run_stage(name, stage_id, body)

    def search_report(self) -> dict[str, Any] | None:
        """The search's figures as plain data (None without `[convert.search]`)."""
        if self.recipe.convert.search is None or self._external_model is not None:
            return None
        return {k: v for k, v in self.search().items() if k != "stage"}

    def search(self) -> dict[str, Any]:
        """Every candidate mode of `[convert.search]`: size, accuracy, latency on the search device;
        the pick (per the objective, among those meeting the criterion; else the most accurate,
        marked as failing) and the Pareto front. Measured once per run (latency is never cached)."""
        if self._search is not None:
            return self._search
        from edgepack.devices.base import RunRequest
        from edgepack.devices.drivers import run_device
        from edgepack.litert import tflite_accuracy
        from edgepack.recipe.schema import ConvertSettings

        search = self.recipe.convert.search
        assert search is not None
        device = self.devices([search.device or self.recipe.validation.devices[0]])[0]
        if device.emulated:
            raise BadInputError(f"convert.search measures latency on '{device.name}', an emulated device",
                                context=f"recipe '{self.recipe.name}'", code="search-emulated",
                                hint="set convert.search.device to a real device (local, ssh or adb)")
        trained, optimized = self.train(), self.optimize()
        float_accuracy = optimized.record["stages"][-1]["test_accuracy"] if optimized.record["stages"] else \
            trained.record["test_accuracy"]
        allowed = search.allowed_drop(float_accuracy)
        base = self.recipe.convert.model_dump(mode="json", exclude={"search"})
        validate = self.recipe.validation
        candidates = []
        for mode in search.modes:
            fields = {**base, "mode": mode.removesuffix("-fallback"), "fallback": None}
            if fields["mode"] != "int8":
                fields.update(io="float32", keep_float=[])
            if fields["mode"] in ("float16", "float32", "int16x8"):
                fields["per_channel"] = True
            if mode == "int8-fallback":
                fields["fallback"] = {"max_drop": search.max_drop, "max_relative_drop": search.max_relative_drop,
                                      "max_ops": search.max_ops}
            stage = self._convert(ConvertSettings.model_validate(fields), f"convert-{mode}")
            path = stage.dir / stage.record["model_file"]
            accuracy = tflite_accuracy(path, self.data.x_test, self.data.y_test, self.reporter, f"search {mode}")
            record = run_device(device, RunRequest(path, None, validate.runs, validate.warmup,
                                                   device.threads or validate.threads, self.recipe.seed),
                                self.reporter, f"search {mode} on {device.name}")
            drop = round(float_accuracy - accuracy, 6)
            candidates.append({"mode": mode, "size_bytes": stage.record["size_bytes"], "accuracy": accuracy,
                               "drop": drop, "latency_p50_ms": _p50_or_mean(record["latency_ms"]),
                               "meets": drop <= allowed + 1e-9, "stage": stage.name, "_stage": stage,
                               "float_ops": len((stage.record.get("fallback") or {}).get("kept_float", []))})
        key = "size_bytes" if search.objective == "smallest" else "latency_p50_ms"
        meeting = [c for c in candidates if c["meets"]]
        chosen = min(meeting, key=lambda c: (c[key], -c["accuracy"])) if meeting else \
            max(candidates, key=lambda c: c["accuracy"])
        for c in candidates:  # on the front when no other candidate is as good on all three and better on one
            c["pareto"] = not any(_dominates(o, c) for o in candidates if o is not c)
            c["chosen"] = c is chosen
        self.result.stages["convert"] = chosen["_stage"]
        self._search = {"stage": chosen["_stage"], "objective": search.objective, "device": device.name,
                        "float_accuracy": float_accuracy, "allowed_drop": allowed, "met": chosen["meets"],
                        "chosen": chosen["mode"],
                        "candidates": [{k: v for k, v in c.items() if k != "_stage"} for c in candidates]}
        if not chosen["meets"]:
            self.reporter.note(f"search: no mode meets the criterion (drop <= {100 * allowed:.2f} points); keeping "
                               f"the most accurate, {chosen['mode']} (drop {100 * chosen['drop']:.2f} points)")
        return self._search

    def _error_report_skipped(self, settings: Any = None) -> str | None:
        """Why the per-layer quantization error is not measured for this conversion, or None."""
        settings = settings or self.recipe.convert
        if not settings.error_report:
            return "convert.error_report = false"
        if settings.mode != "int8":
            return f"mode {settings.mode}: the report compares int8 with float"
        if any(stage.kind == "qat" for stage in self.recipe.optimize):
            return "a QAT model's quantization is learned; TFLite's debugger measures post-training quantization"
        return None

    @property
    def tflite_path(self) -> Path:
        """The converted model file (or the one given to `use_model`)."""
        if self._external_model is not None:
            return self._external_model
        converted = self.convert()
        return converted.dir / converted.record["model_file"]

    def shipped(self) -> Any:
        """The model that ships (a `bundle.shipped.Shipped`): the converted model with its TFLite metadata
        embedded, the declared normalization proven and the outputs checked unchanged; the converted
        bytes as they are with `bundle.metadata = false` or a model that is not a one-input image model."""
        from edgepack.bundle.manifest import LABELS_FILE
        from edgepack.bundle.shipped import Shipped, describe, ship_model
        from edgepack.litert import interpreter, tensor_records

        source = self.tflite_path
        if self._shipped is not None and self._shipped[0] == source:
            return self._shipped[1]
        converted = source.read_bytes()
        interp = interpreter(source)
        inputs, outputs = tensor_records(interp.get_input_details()), tensor_records(interp.get_output_details())
        why = None
        if not self.recipe.bundle.metadata:
            why = "bundle.metadata = false"
        elif self._external_model is not None and not self._external_bundled:
            why = "a model given to validate --model is measured as it is"
        elif (len(inputs) != 1 or inputs[0]["shape"][1:] != list(self.data.x_test.shape[1:]) or not outputs
              or outputs[0]["shape"][-1:] != [len(self.data.labels)]):
            why = "metadata is written for one-input image classifiers shaped like the recipe's samples and labels"
        if why is not None:
            shipped = Shipped(converted, {"embedded": False, "why": why})
        else:
            bundle = self.recipe.bundle
            meta = describe(self.recipe.name, self.recipe.description, self.recipe.version, bundle, self.data,
                            inputs, outputs, LABELS_FILE)
            if self.data.pixel_range is None:
                self.reporter.note("bundle: dataset.pixel_range is not known for these images, so the metadata's "
                                   "normalization is for the dataset's own values, not 8-bit pixels; set it")
            labels = "".join(f"{label}\n" for label in self.data.labels).encode("utf-8")
            with captured_native_logs(self.quiet_native):
                shipped = ship_model(converted, meta, {LABELS_FILE: labels}, self.data, self.recipe.dataset.resize)
        self._shipped = (source, shipped)
        return shipped

    def shipped_path(self) -> Path:
        """The shipped model as a file (what every device validates), beside the stages."""
        shipped = self.shipped()
        if not shipped.record["embedded"]:
            return self.tflite_path
        path = self.root / "ship" / MODEL_FILE
        if not path.is_file() or path.read_bytes() != shipped.data:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, shipped.data)
        return path

    def use_model(self, path: Path, fit: bool = False) -> None:
        """Take the `.tflite` at `path` as the convert stage's output: nothing is converted, and the
        later stages (evaluate, validate, bundle) work on it. A file that is not a TFLite model is a
        `ModelError` (exit 2) here, before anything runs."""
        from edgepack.analyze.flatbuffer import read_model_file
        from edgepack.analyze.graph import analyze
        from edgepack.analyze.weights import gzip_size

        data, model = read_model_file(path)
        if fit:
            self._check_fits(path, model)
        compute = analyze(model).compute
        inputs = [model.tensors[i].dtype for i in model.inputs]
        mode = {"integer": "int8", "integer (int16 activations)": "int16x8", "dynamic range": "dynamic",
                "float16 weights": "float16"}.get(compute, "float32")
        record = {"model_file": path.name, "given": str(path.resolve()), "mode": mode,
                  "io": "int8" if inputs and all(d == "int8" for d in inputs) else "float32",
                  "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "gzip_bytes": gzip_size(data),
                  "weights": tflite_weights(data, []), "calibration": None,
                  "quant_error": {"measured": False, "why": "a model given with --model (not converted here)"},
                  "fallback": None}
        self._external_model = path
        self._external_bundled = fit  # bundle --model embeds metadata; validate --model measures the file as it is
        self._external_stage = StageOutput("convert", "given-" + record["sha256"][:16], path.parent, record)
        self.result.stages["convert"] = self._external_stage

    def _check_fits(self, path: Path, model: Any) -> None:
        """A given model must take the recipe's samples and give one score per label (exit 2 if not)."""
        from edgepack.errors import ModelError

        shape = tuple(self.data.x_test.shape[1:])
        inputs = [model.tensors[i].shape for i in model.inputs]
        if len(inputs) != 1 or tuple(inputs[0][1:]) != shape:
            raise ModelError(f"{path}: its input{'s are' if len(inputs) != 1 else ' is'} "
                             f"{', '.join('x'.join(map(str, s)) for s in inputs)}; the recipe's samples are "
                             f"{'x'.join(map(str, shape))}", context=f"recipe '{self.recipe.name}'",
                             hint="give the model this recipe's data is shaped for (dataset.resize, channels)",
                             code="model-mismatch")
        outputs = [model.tensors[i].shape for i in model.outputs]
        if len(outputs) != 1 or not outputs[0] or outputs[0][-1] != len(self.data.labels):
            raise ModelError(f"{path}: its output{'s are' if len(outputs) != 1 else ' is'} "
                             f"{', '.join('x'.join(map(str, s)) for s in outputs)}; the recipe has "
                             f"{len(self.data.labels)} labels", context=f"recipe '{self.recipe.name}'",
                             hint="give a classifier with one score per label", code="model-mismatch")

    def evaluate(self) -> StageOutput:
        """Accuracy of the float, optimized and `.tflite` models on the test split."""
        trained, optimized, converted = self.train(), self.optimize(), self.convert()
        stage_id = self._stage_id("evaluate", {}, {"train": trained.id, "optimize": optimized.id,  # float figures
                                                  "convert": converted.id, "test": self.fingerprints["test"]})

        def body(out: Path) -> dict[str, Any]:
            from edgepack.litert import tflite_accuracy

            tflite = tflite_accuracy(self.tflite_path, self.data.x_test, self.data.y_test, self.reporter,
                                     f"evaluate {converted.record['mode']} .tflite")
            float_acc = trained.record["test_accuracy"]
            opt = optimized.record["stages"]
            return {"float": float_acc, "optimized": opt[-1]["test_accuracy"] if opt else float_acc,
                    "tflite": tflite, "drop": round(float_acc - tflite, 6),
                    "test_samples": int(len(self.data.y_test))}

        return self._run_stage("evaluate", stage_id, body)

    def validate(self, model: Path | None = None, devices: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Latency, memory and output parity of the `.tflite` on each device of the recipe (never cached).

        `model` validates that `.tflite` instead of the recipe's (nothing is trained or converted; a
        file that is not a TFLite model is a `ModelError`); `devices` replaces the recipe's list.

        Every device gets the same inputs (a test sample, in the model's input type); outputs are
        compared with the host's: integer outputs must be identical, float ones equal within a
        tolerance. The first plain local device is the reference; without one, a one-invoke run on
        this machine is. Devices on different machines run at the same time (`devices.schedule`).
        """
        from edgepack.devices.base import RunRequest
        from edgepack.devices.drivers import parity, run_device
        from edgepack.devices.profiles import Device, LocalDevice
        from edgepack.devices.schedule import run_all

        settings = self.recipe.validation
        if model is not None:
            self.use_model(model)
        chosen = self.devices(devices)
        inputs = self._validation_inputs()

        def measure(device: Device) -> dict[str, Any]:
            self.reporter.stage("validate", f"on {device.name}")
            req = RunRequest(self.shipped_path(), inputs, settings.runs, settings.warmup,
                             device.threads or settings.threads, self.recipe.seed)
            return run_device(device, req, self.reporter, f"validate {device.name}")

        records = run_all(chosen, measure)  # different machines at once, one machine's devices in turn
        reference: list[dict[str, Any]] | None = None
        for device in chosen:
            record = records[device.name]
            outputs = record.pop("outputs")
            if outputs is None:  # a benchmark binary: timings only
                record["parity"] = {"ok": None, "why": "not checked: the benchmark binary reports no outputs"}
                record["outputs_sha256"] = None
            elif reference is None and isinstance(device, LocalDevice) and not device.cpus and not device.memory_limit:
                reference = outputs
                record["parity"] = {"ok": True, "identical": True, "max_abs_diff": 0.0, "reference": True}
            else:
                reference = reference or self._reference_outputs(inputs)
                record["parity"] = parity(reference, outputs)
                if not record["parity"]["ok"]:
                    self.reporter.note(f"validate {device.name}: outputs differ from the host's: "
                                       f"{record['parity']['why']}")
            if outputs is not None:
                record["outputs_sha256"] = [o["sha256"] for o in outputs]
            self.result.validation[device.name] = {"device": device.name, "kind": device.kind,
                                                   "emulated": device.emulated, **record}
        return self.result.validation

    def devices(self, names: list[str] | None = None) -> list[Any]:
        """The recipe's device profiles (or those `names`), loaded and checked against its budgets
        (before any stage runs: an unknown device or a budget on an emulated one is a recipe mistake)."""
        from edgepack.devices.profiles import load_device

        if names is not None:
            return [load_device(name) for name in names]
        if self._devices is None:
            devices = [load_device(name) for name in self.recipe.validation.devices]
            budget = self.recipe.budgets.latency_p90_ms
            emulated = sorted(d.name for d in devices if d.emulated and isinstance(budget, dict) and d.name in budget)
            if emulated:
                raise BadInputError(
                    f"budgets.latency_p90_ms names {', '.join(emulated)}: an emulated device's latency is the "
                    "emulator's, not a board's, and is never checked", context=f"recipe '{self.recipe.name}'",
                    hint="budget a real device (kind local, ssh or adb) instead", code="budget-emulated")
            self._devices = devices
        return self._devices

    def _validation_inputs(self) -> Path | None:
        """An .npz holding the first test sample in the model's input type; None for multi-input models."""
        import numpy as np

        from edgepack.litert import interpreter, to_input

        details = interpreter(self.tflite_path).get_input_details()
        if len(details) != 1 or tuple(details[0]["shape"][1:]) != tuple(self.data.x_test.shape[1:]):
            return None
        path = self.root / "validate" / "inputs.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        sample = self.data.x_test[: max(1, int(details[0]["shape"][0]))]
        with open(path, "wb") as handle:
            np.savez(handle, input_0=to_input(sample, details[0]))
        return path

    def _reference_outputs(self, inputs: Path | None) -> list[dict[str, Any]]:
        from edgepack.devices.base import RunRequest
        from edgepack.devices.local import run_local
        from edgepack.devices.profiles import LocalDevice

        host = LocalDevice(name="host", kind="local")
        req = RunRequest(self.shipped_path(), inputs, 1, 0, 1, self.recipe.seed)
        return list(run_local(host, req, NullReporter(), "validate: host reference")["outputs"])

    def gate(self) -> list[BudgetResult]:
        """Check the recipe's budgets against the measured figures."""
        evaluated = self.evaluate()
        validation = self.result.validation or self.validate()
        latency, basis = gated_latency(validation)
        measured = Measurements(
            size_bytes=len(self.shipped().data), accuracy_float=evaluated.record["float"],
            accuracy_tflite=evaluated.record["tflite"], latency_p90_ms=latency, latency_basis=basis,
        )
        self.result.gate = check_budgets(self.recipe.budgets, measured)
        self.result.gate += conversion_results(self.search_report(), self.convert().record.get("fallback"),
                                               evaluated.record["tflite"])
        self._gated = True
        return self.result.gate

    def bundle(self, out: Path | None = None, make_zip: bool | None = None, sign_key: Path | None = None) -> list[Path]:
        """Write the bundle: the shipped model, labels, formats, the manifest (build section, signed with
        `sign_key`) and measurements.json (validation and gate results)."""
        from edgepack.bundle.manifest import build_manifest, run_measurements
        from edgepack.bundle.writer import write_bundle

        gate = self.result.gate if self._gated else self.gate()
        self.reporter.stage("bundle", "writing")
        shipped = self.shipped()
        settings = self.recipe.bundle
        extra: dict[str, str | bytes] = {}
        formats: dict[str, Any] = {}
        if "android" in settings.formats:
            from edgepack.bundle.android import android_files
            from edgepack.litert import model_tensors

            files = android_files(self.recipe.name, shipped, self.data.labels, model_tensors(self.tflite_path))
            extra.update(files)
            formats["android"] = {"files": sorted(files), "metadata": shipped.record["embedded"]}
        if "c-array" in settings.formats:
            from edgepack.bundle.c_array import c_sources

            converted = self.tflite_path.read_bytes()  # TFLite Micro ignores metadata: the array is the plain model
            sources = c_sources(converted)
            files = {"c/model_data.h": sources.header, "c/model_data.cc": sources.source}
            extra.update(files)
            formats["c-array"] = {"files": sorted(files), "model_sha256": hashlib.sha256(converted).hexdigest(),
                                  "arena_bytes": sources.arena_bytes,
                                  "activation_peak_bytes": sources.activation_peak_bytes,
                                  "resolver_ops": list(sources.resolver_calls),
                                  "unsupported_ops": list(sources.unsupported_ops)}
            if sources.unsupported_ops:
                self.reporter.note(f"bundle c-array: TFLite Micro has no resolver method for "
                                   f"{', '.join(sources.unsupported_ops)}; register them yourself (model_data.h says)")
        with captured_native_logs(self.quiet_native):
            manifest = build_manifest(self, shipped)
        manifest["formats"] = formats
        measurements = run_measurements(self, gate, shipped)
        target = out or self.default_bundle_dir()
        do_zip = (settings.zip or "zip" in settings.formats) if make_zip is None else make_zip
        self.result.bundle = write_bundle(target, shipped.data, self.data.labels, manifest, do_zip, extra,
                                          measurements, sign_key)
        return self.result.bundle

    def default_bundle_dir(self) -> Path:
        """`bundle.out` from the recipe (relative to the working directory), else WORKDIR/RECIPE/bundle
        (WORKDIR/RECIPE/bundle-NAME for a model given with --model: the recipe's own bundle stays)."""
        if self._external_model is not None:
            return self.root / f"bundle-{self._external_model.stem}"
        return Path(self.recipe.bundle.out) if self.recipe.bundle.out else self.root / "bundle"

    def run(self, out: Path | None = None, make_zip: bool | None = None, sign_key: Path | None = None) -> RunResult:
        """Every stage, in order, ending with the bundle."""
        self.devices()  # a device mistake is said before the training
        if sign_key is not None:
            from edgepack.bundle.signing import load_private_key

            load_private_key(sign_key)  # a bad key is said before the training, too
        self.gate()
        self.bundle(out, make_zip, sign_key)
        return self.result


def _p50_or_mean(latency: dict[str, Any]) -> float:
    """The median latency; a benchmark binary without percentiles gives only the mean."""
    return float(latency["p50"] if latency.get("p50") is not None else latency["mean"])


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`a` is at least as small, fast and accurate as `b`, and better in one."""
    pairs = ((a["size_bytes"], b["size_bytes"]), (a["latency_p50_ms"], b["latency_p50_ms"]),
             (-a["accuracy"], -b["accuracy"]))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def quantization_error_record(path: Path, layers: list[str], why_not: str | None) -> dict[str, Any]:
    """The worker's per-op error rows with their Keras layer, worst first (by RMSE over the step)."""
    from edgepack.analyze.weights import match_layer

    if why_not or not path.is_file():
        return {"measured": False, "why": why_not or "the debugger wrote no report"}
    rows = json.loads(path.read_text())
    for row in rows:
        row["layer"] = match_layer(row["tensor"], layers)
    rows.sort(key=lambda r: -(r["rmse_over_scale"] or 0.0))
    path.write_text(json.dumps(rows, indent=1))  # the file as the record: Keras layers, worst first
    return {"measured": True, "metric": "rmse_over_scale", "file": QUANT_ERROR_FILE, "layers": rows}


def tflite_weights(flatbuffer: bytes, layers: list[str]) -> dict[str, dict[str, Any]]:
    """Per kernel of the `.tflite`, keyed by its Keras layer: sparsity, distinct values, 2:4 check."""
    from edgepack.analyze.weights import weight_stats

    result: dict[str, dict[str, Any]] = {}
    for stat in weight_stats(flatbuffer, layers):
        key = stat.layer or stat.tensor
        if key not in result:
            result[key] = {"op": stat.op, "shape": list(stat.shape), "dtype": stat.dtype,
                           "sparsity": round(stat.sparsity, 4), "unique_values": stat.unique_values,
                           "unique_per_channel_max": stat.unique_per_channel_max,
                           "max_nonzeros_per_4": stat.max_nonzeros_per_4}
    return result


def _path_digest(path: Path) -> str:
    """sha256 over a file, or over every file of a directory (names and bytes)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []:
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
