"""The runner of one recipe's stages, in order:

recipe -> data -> train -> optimize -> convert -> evaluate -> validate -> gate -> bundle

`Pipeline` follows its `Plan` (a recipe's model made here, or a given `.tflite` read as the convert
stage), makes the `RunInputs` every stage reads, calls each stage function of this package with the
records of the stages before it, and memoizes what a run makes once (models in memory, the tune, the
search, the `Shipment` of the converted model); a stage comes from the cache when its inputs are
unchanged. No stage module imports this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack import tasks
from edgepack.datasets import Dataset, calibration_indices, fingerprint, load_dataset
from edgepack.gate.budgets import BudgetResult
from edgepack.models.origins import ModelSource, recipe_source
from edgepack.pipeline.cache import StageCache, StageOutput
from edgepack.pipeline.inputs import RunInputs
from edgepack.pipeline.plan import Plan
from edgepack.pipeline.shipment import Shipment
from edgepack.progress import NullReporter, Reporter
from edgepack.recipe import LoadedRecipe
from edgepack.records import ConvertRecord, DeviceRun, EvaluateRecord, Fit, OptimizeRecord, TrainRecord

if TYPE_CHECKING:
    from edgepack.bundle.manifest import BuildInputs
    from edgepack.bundle.shipped import Shipped
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.pipeline.search import SearchResult
    from edgepack.pipeline.tune import Tuned


@dataclass
class RunResult:
    """Everything `edgepack run` reports."""

    stages: dict[str, StageOutput[Any]] = field(default_factory=dict)
    validation: dict[str, DeviceRun] = field(default_factory=dict)
    gate: list[BudgetResult] = field(default_factory=list)
    bundle: list[Path] = field(default_factory=list)
    fits: dict[str, Fit] = field(default_factory=dict)  # board -> how the model fits it (budgets.fits)
    seconds: dict[str, float] = field(default_factory=dict)  # each stage's own wall seconds (pipeline/timing.py)

    @property
    def passed(self) -> bool:
        """True when every budget holds."""
        return all(result.passed for result in self.gate)


class Pipeline:
    """The runner of one recipe's stages: it follows its `Plan` (default: the recipe's model trained, optimized
    and converted here; `Plan.measure_given` / `Plan.bundle_given`: a `.tflite` converted elsewhere read as
    the convert stage), hands each stage function `RunInputs` and the records before it, memoizes what is made
    once per run and keeps the run's result; stages are cached in `workdir`. `source` is where the recipe's
    model comes from (default: its `[model]`; for a given file, the float model it is judged against)."""

    def __init__(
        self,
        loaded: LoadedRecipe,
        workdir: Path,
        reporter: Reporter | None = None,
        use_cache: bool = True,
        quiet_native: bool = True,
        source: ModelSource | None = None,
        plan: Plan | None = None,
    ) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.root = workdir / self.recipe.name
        self.reporter = reporter or NullReporter()
        self.cache = StageCache(self.root, self.reporter, use_cache, quiet_native)
        self.source = source or recipe_source(self.recipe.model, loaded.base_dir)
        self.plan = plan or Plan()
        self.task = tasks.get(self.recipe.task.kind)
        self.clock = self.cache.clock
        self.result = RunResult(stages=self.cache.done, seconds=self.clock.seconds)
        self.models: dict[str, Any] = {}  # stage name -> its Keras model, once in memory
        self._shipment: Shipment | None = None  # what ships from the converted model (made with it)
        self._gated = False
        self._devices: list[Any] | None = None

    @property
    def measured_arena(self) -> tuple[Arena | None, str] | None:
        """TFLM's arena of the microcontroller model and why not, once this run measured it (else None)."""
        return None if self._shipment is None else self._shipment.arena

    @property
    def quiet_native(self) -> bool:
        """Keep TensorFlow's and LiteRT's native log lines off the terminal (not with --debug)."""
        return self.cache.quiet_native

    @cached_property
    def inputs(self) -> RunInputs:
        """What every stage reads (made once, with the data, before the first stage runs)."""
        return RunInputs(
            self.loaded,
            self.plan,
            self.root,
            self.task,
            self.source,
            self.data,
            self.calibration_indices,
            self.calibration,
            self.fingerprints,
            self.cache,
            self.reporter,
        )

    # -- data -----------------------------------------------------------------------------------
    @cached_property
    def data(self) -> Dataset:
        """The recipe's dataset for its task, normalized and split with the recipe's seed."""
        with self.clock.timed("data"):
            return load_dataset(self.recipe.dataset, self.recipe.seed, self.loaded.base_dir, self.recipe.task)

    @cached_property
    def baseline(self) -> Any:
        """The `[budgets] baseline` bundle's figures (`bundle.figures.BundleFigures`, relative to the recipe), or
        None; a baseline budget without a baseline, or one that cannot be read, is a bad input."""
        from edgepack.gate.baseline import baseline_path, load_baseline

        return load_baseline(baseline_path(self.recipe.budgets, self.loaded.base_dir))

    @cached_property
    def calibration_indices(self) -> Any:
        """Which train samples are the representative sample (drawn with calibration_seed, else seed)."""
        seed = self.recipe.convert.calibration_seed
        seed = self.recipe.seed if seed is None else seed
        samples = self.data.train_samples
        with self.clock.timed("data"):
            return calibration_indices(samples, self.recipe.convert.calibration_samples, seed)

    @cached_property
    def calibration(self) -> Any:
        """The representative sample for calibration, drawn from the train split (one array per input)."""
        return tasks.take(self.data.x_train, self.calibration_indices)

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """sha256 fingerprints of the train, calibration and test data."""
        d, calibration = self.data, self.calibration
        with self.clock.timed("data"):
            return {
                "train": fingerprint(*d.train_inputs, *tasks.as_list(d.y_train)),
                "calibration": fingerprint(*tasks.as_list(calibration)),
                "test": fingerprint(*d.test_inputs, *tasks.as_list(d.y_test)),
            }

    # -- stages ---------------------------------------------------------------------------------
    def train(self) -> StageOutput[TrainRecord]:
        """Get (and, for a built model, train) the float reference model; its test metrics."""
        from edgepack.pipeline.train import check_kept_keras3, train_stage

        if "train" not in self.cache.done:
            stage, model = train_stage(self.inputs)
            if model is not None:
                self.models[stage.name] = model
        stage = self.cache.done["train"]
        check_kept_keras3(self.recipe, stage)  # every time: a caller that caught it must not go on past it
        return stage

    def optimize(self) -> StageOutput[OptimizeRecord]:
        """Run the `[[optimize]]` stages in order on the trained model; export the result (with
        `final_sparsity = "auto"` or `rank = "auto"`: the search's pick)."""
        from edgepack.pipeline.optimize import optimize_stage
        from edgepack.pipeline.tune import auto_stage

        if "optimize" in self.cache.done:
            return self.cache.done["optimize"]
        if auto_stage(self.recipe) is not None:
            return self.tuned.stage  # the grid's pick (until [convert.search] picks among the tries that held)
        trained = self.train()
        return optimize_stage(self.inputs, trained, lambda: self.model(trained))

    @cached_property
    def tuned(self) -> Tuned:
        """An "auto" optimize value: the tries, the kept one and the search's figures (made once per run)."""
        from edgepack.pipeline.tune import tuned

        trained = self.train()
        found = tuned(self.inputs, trained, lambda: self.model(trained))
        self.cache.adopt("optimize", found.stage)
        return found

    def tune_report(self) -> dict[str, dict[str, Any]]:
        """The search of an "auto" optimize value as plain data, under its key (`sparsity_search`,
        `rank_search`); empty without one, or for a converted model given to the run."""
        from edgepack.pipeline.tune import auto_stage

        found = auto_stage(self.recipe)
        if found is None or not self.plan.converts:
            return {}
        return {found[1].report_key: self.tuned.report}

    def convert(self) -> StageOutput[ConvertRecord]:
        """The `.tflite`: converted in the recipe's mode (with `[convert.search]`: the search's pick),
        or the model the source gives."""
        from edgepack.pipeline.convert import convert_stage, given_stage

        if "convert" in self.cache.done:
            return self.cache.done["convert"]
        if not self.plan.converts:
            from edgepack.pipeline.convert import read_given

            with self.clock.timed("convert"):  # reading and checking the given file (a bad one before any data)
                given = read_given(self.recipe, self.plan)
                return self.cache.adopt("convert", given_stage(self.inputs, given, self.input_names))
        if self.recipe.convert.int4_possible:
            from edgepack.convert.int4 import check_int4

            check_int4(self.recipe.name, [])  # the quantizer installed (a single-stage `convert` too)
        if self.recipe.convert.search is not None:
            return self.searched.stage
        if self.recipe.convert.dense_granularity == "auto":
            return self.dense_choice[0]
        return convert_stage(self.inputs, self.recipe.convert, self.optimize(), self.train())

    @cached_property
    def dense_choice(self) -> tuple[StageOutput[ConvertRecord], dict[str, Any]]:
        """`dense_granularity = "auto"`: the chosen conversion and the choice's figures (made once per run)."""
        from edgepack.pipeline.granularity import dense_choice

        chosen, report = dense_choice(self.inputs, self.optimize(), self.train())
        return self.cache.adopt("convert", chosen), report

    @cached_property
    def searched(self) -> SearchResult:
        """`[convert.search]`: every candidate judged and timed once per run (latency is never cached); its pick
        becomes the run's convert stage (and, among an "auto" value's tries, its optimize stage). Its own
        seconds (judging and timing) are the run's `search`; each conversion is its `convert-MODE` stage's."""
        from edgepack.pipeline.search import Source, check_search_device, search, tried_sources
        from edgepack.pipeline.tune import auto_stage, picked_by_search

        settings = self.recipe.convert.search
        assert settings is not None
        with self.clock.timed("search"):
            device = self.devices([settings.device or self.recipe.validation.devices[0]])[0]
            check_search_device(self.recipe, device)  # a recipe mistake: said before anything trains
            auto = auto_stage(self.recipe) is not None
            sources = tried_sources(self.tuned) if auto else [Source(self.optimize())]
            found = search(self.inputs, device, sources, self.train())
        self.cache.adopt("convert", found.stage)
        if found.source.field is not None:  # the search over both: its try becomes the run's optimize stage
            self.cache.adopt("optimize", found.source.stage)
            assert found.source.value is not None
            picked_by_search(self.tuned, found.source.value)
        return found

    def granularity_report(self) -> dict[str, Any] | None:
        """The Dense-granularity choice as plain data (None unless `dense_granularity = "auto"` chose it)."""
        if not self.plan.converts or self.recipe.convert.search is not None:
            return None
        return self.dense_choice[1] if self.recipe.convert.dense_granularity == "auto" else None

    def evaluate(self) -> StageOutput[EvaluateRecord]:
        """The task's metrics of the float, optimized and `.tflite` models, and the `.tflite`'s fidelity."""
        from edgepack.pipeline.evaluate import evaluate_stage

        converted = self.convert()  # first: a search over "auto" optimize tries decides which try is the run's
        return evaluate_stage(self.inputs, self.train(), self.optimize(), converted)

    def validate(self, devices: list[str] | None = None) -> dict[str, DeviceRun]:
        """Latency, memory and output parity of the shipped model on each device (never cached); the records
        join the run's result (one per device validated)."""
        from edgepack.pipeline.validate import validate
        from edgepack.validate.samples import validation_inputs

        with self.clock.timed("validate"):
            chosen = self.devices(devices)
            folder = self.root / "validate"
            samples = validation_inputs(
                self.data.test_inputs, folder, self.reporter, self.tflite_path, self.input_names
            )
            shipped = self.shipped_path()  # made here, not in the devices' threads (the stage clock is one thread's)
            self.result.validation.update(validate(self.inputs, chosen, samples, shipped, self.litert_path()))
            return self.result.validation

    def gate(self) -> list[BudgetResult]:
        """Check the recipe's budgets against the measured figures (kept in the run's result and measurements.json)."""
        from edgepack.pipeline.fits import fit_records
        from edgepack.pipeline.gate import gate

        with self.clock.timed("gate"):
            evaluated = self.evaluate().record
            validation = self.result.validation or self.validate()
            with self.clock.timed("fits"):  # the boards' fits: a TFLM arena when validation did not measure one
                self.result.fits = fit_records(self.shipment.fits())
            self.result.gate = gate(
                self.recipe.budgets,
                evaluated,
                validation,
                len(self.shipped().data),
                self.result.fits,
                self.search_report(),
                self.convert().record.fallback,
                self.baseline,
                self.task.metric,
                self.shipped().data,
            )
            self._gated = True
            return self.result.gate

    def bundle(self, out: Path | None = None, make_zip: bool | None = None, sign_key: Path | None = None) -> list[Path]:
        """Gate (unless done), then write the bundle: the shipped model, labels, formats, manifest and
        measurements.json; returns the paths written."""
        from edgepack.bundle.formats_model import Formats
        from edgepack.bundle.manifest import build_manifest, run_measurements
        from edgepack.native import captured_native_logs
        from edgepack.pipeline.bundle import formats as bundle_formats
        from edgepack.pipeline.bundle import golden, write

        with self.clock.timed("bundle"):
            if not self._gated:
                self.devices()  # a device mistake is said before the training (`edgepack bundle` gates first)
            gate = self.result.gate if self._gated else self.gate()
            self.reporter.stage("bundle", "writing")
            shipped = self.shipped()
            extra, formats = bundle_formats(self.inputs, self.shipment, self.devices)
            extra.update(golden(self.inputs, self.litert_path(), self.input_names))
            with captured_native_logs(self.quiet_native):
                manifest = build_manifest(self._build_inputs(shipped), Formats.model_validate(formats))
            measurements = run_measurements(gate, shipped, self.result.validation, self.search_report())
            target = out or self.default_bundle_dir()
            self.result.bundle = write(
                self.inputs, target, shipped, manifest, measurements, extra, make_zip, sign_key, self.baseline
            )
            return self.result.bundle

    def _build_inputs(self, shipped: Shipped) -> BuildInputs:
        """What the manifest's build section is made of (`bundle.manifest.BuildInputs`), asked for in the order
        the stages decide one another."""
        from edgepack.bundle.manifest import BuildInputs

        converted = self.convert()  # first: a search over "auto" optimize tries decides the run's optimize stage
        trained, optimized = self.train(), self.optimize()
        evaluated = self.evaluate().record
        converted_file = self.tflite_path
        inputs, outputs = self.tensor_records()
        stages = {name: out.id for name, out in self.result.stages.items()}
        return BuildInputs(
            loaded=self.loaded,
            data=self.data,
            fingerprints=self.fingerprints,
            shipped=shipped,
            trained=trained.record,
            optimized=optimized.record,
            converted=converted.record,
            evaluated=evaluated,
            converted_file=converted_file,
            inputs=inputs,
            outputs=outputs,
            stages=stages,
            tune_report=self.tune_report(),
            granularity=self.granularity_report(),
            compression=self.compression_report(),
            measured_arena=self.measured_arena,  # after the compression report, which may measure it
            fits=self.result.fits,
        )

    def run(self, out: Path | None = None, make_zip: bool | None = None, sign_key: Path | None = None) -> RunResult:
        """Every stage, in order, ending with the bundle."""
        from edgepack.models.builders import check_recipe_builders

        check_recipe_builders(self.loaded)  # bad builder args before any data or TensorFlow
        self.devices()  # a device mistake (a LUT-compressed model on a non-TFLM one too) is said before the training
        if self.recipe.convert.int4_possible:
            from edgepack.convert.int4 import check_int4

            check_int4(self.recipe.name, self.devices())  # ... and an int4 model nothing named can run
        if self.recipe.budgets.fits:
            from edgepack.devices.toolchains.tflm_arena import require_tflm

            require_tflm(f"recipe '{self.recipe.name}': budgets.fits")  # the boards' RAM can be measured (else exit 4)
        if "ethos-u" in self.recipe.bundle.formats:
            from edgepack.pipeline.bundle import ethos_u_profile

            ethos_u_profile(
                self.recipe, self.devices()
            )  # ... and so is a bundle.ethos_u that is not an ethos-u profile
        _ = self.baseline  # ... and a missing baseline
        if self.plan.converts and not (self.cache.use_cache and self._conversions_on_disk()):
            from edgepack.convert.pool import prewarm

            prewarm()  # the conversion worker imports TensorFlow while the model trains
        if sign_key is not None:
            from edgepack.bundle.signing import load_private_key

            load_private_key(sign_key)  # a bad key is said before the training, too
        self.gate()
        self.bundle(out, make_zip, sign_key)
        self.result.seconds = dict(self.clock.seconds)  # as the run ends (later calls add to the clock)
        return self.result

    def _conversions_on_disk(self) -> bool:
        """Whether every conversion this run needs has a stage directory (then no worker is started)."""
        search = self.recipe.convert.search
        if search is not None:
            from edgepack.pipeline.search import search_candidates
            from edgepack.pipeline.tune import auto_stage

            if auto_stage(self.recipe) is not None:
                return False  # its tries, each a source of every candidate, are known once tuned

            names = [c.stage for c in search_candidates(self.recipe.convert)]
        elif self.recipe.convert.dense_granularity == "auto":
            from edgepack.pipeline.granularity import CHOICES, stage_name

            names = [stage_name(g) for g in CHOICES]
        else:
            names = ["convert"]
        return all((self.root / name).is_dir() for name in names)

    # -- what the stages share ------------------------------------------------------------------
    def model(self, stage: StageOutput[TrainRecord]) -> Any:
        """The train stage's Keras model (in memory, else loaded from its file)."""
        if stage.name not in self.models:
            from edgepack.models.source import load_stage_model

            self.models[stage.name] = load_stage_model(
                stage.dir / stage.record.model_file, stage.record.keras, self.source.imports, self.loaded.base_dir
            )
        return self.models[stage.name]

    def input_names(self) -> list[str] | None:
        """The Keras model's input names, which map a `.tflite`'s inputs through its signature; None for
        a model given to `validate --model` (nothing is trained: inputs are told apart by shape)."""
        if self.plan.as_given:
            return None
        return list(self.optimize().record.inputs)

    @property
    def tflite_path(self) -> Path:
        """The converted model file (or the one the source gives)."""
        converted = self.convert()
        return converted.dir / converted.record.model_file

    def search_report(self) -> dict[str, Any] | None:
        """The search's figures as plain data (None without `[convert.search]`)."""
        if self.recipe.convert.search is None or not self.plan.converts:
            return None
        return self.searched.report

    @property
    def shipment(self) -> Shipment:
        """What ships from the converted model (made once per converted file: `pipeline/shipment.py`)."""
        converted = self.tflite_path
        if self._shipment is None or self._shipment.converted != converted:
            self._shipment = Shipment(self.inputs, converted, self.input_names, lambda: self.result.validation)
        return self._shipment

    def shipped(self) -> Shipped:
        """The model that ships (a `bundle.shipped.Shipped`), with its TFLite metadata embedded and proven."""
        return self.shipment.shipped()

    def shipped_path(self) -> Path:
        """The shipped model as a file (what every device validates), beside the stages."""
        return self.shipment.shipped_path()

    def litert_path(self) -> Path:
        """The shipped model as LiteRT runs it (the LUT-compressed one's: the converted file)."""
        return self.shipment.litert_path()

    def tensor_records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The shipped model's input and output tensors in the file's order, as the manifest lists them."""
        return self.shipment.tensor_records()

    def compression_report(self) -> dict[str, Any] | None:
        """`compression = "lut"` as plain data: what was compressed, the sizes, TFLM's arena (None without it)."""
        return self.shipment.compression_report()

    @property
    def _compresses(self) -> bool:
        """Whether the shipped model is LUT-compressed (known before any data: `pipeline.compress.applies`)."""
        from edgepack.pipeline.compress import applies

        return applies(self.recipe, self.plan)

    def devices(self, names: list[str] | None = None) -> list[Any]:
        """The recipe's device profiles (or those `names`), loaded and checked against its budgets."""
        from edgepack.validate.devices import load_devices

        if names is not None:
            return load_devices(self.recipe, names, self._compresses)
        if self._devices is None:
            self._devices = load_devices(self.recipe, None, self._compresses)
        return self._devices

    def default_bundle_dir(self) -> Path:
        """`bundle.out` from the recipe (relative to the working directory), else WORKDIR/RECIPE/bundle
        (WORKDIR/RECIPE/bundle-NAME for a model given with --model: the recipe's own bundle stays)."""
        if self.plan.given is not None:
            return self.root / f"bundle-{self.plan.given.stem}"
        return Path(self.recipe.bundle.out) if self.recipe.bundle.out else self.root / "bundle"
