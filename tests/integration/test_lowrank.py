"""`[[optimize]] kind = "low-rank"`: truncated-SVD factorization of Dense and 1x1 Conv2D layers.

The factorization itself on matrices of known spectrum (tiny models, no training), then the stage in
`edgepack run` on a Dense autoencoder: parameters, the task's metric, the manifest, QAT after it, the
stage cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import dense_ae_recipe
from typer.testing import CliRunner

from edgepack.cli.app import app
from edgepack.errors import ModelError

pytestmark = pytest.mark.slow

SPECTRUM = np.array([4.0, 3.0, 2.0, 1.0])  # squared: 16, 9, 4, 1 of 30: rank 3 keeps 29/30 >= 0.9


def known_kernel(n_in: int, n_out: int, seed: int = 0) -> np.ndarray:
    """An (n_in x n_out) matrix whose singular values are SPECTRUM (the rest zero)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n_in, SPECTRUM.size)))
    v, _ = np.linalg.qr(rng.normal(size=(n_out, SPECTRUM.size)))
    return (u * SPECTRUM @ v.T).astype(np.float32)


def sequential_model() -> Any:
    from edgepack.models.tf import load

    keras = load().keras
    model = keras.Sequential(
        [
            keras.layers.Dense(48, activation="relu", input_shape=(64,), name="hidden"),
            keras.layers.Dense(10, name="head"),
        ]
    )
    model.get_layer("hidden").set_weights([known_kernel(64, 48), np.linspace(-1, 1, 48, dtype=np.float32)])
    return model


def conv_model() -> Any:
    """A functional model: a 1x1 convolution of known spectrum, a 3x3 one, a Dense head."""
    from edgepack.models.tf import load

    keras = load().keras
    inputs = keras.Input((6, 6, 32), name="image")
    h = keras.layers.Conv2D(24, 1, activation="relu", name="pointwise")(inputs)
    h = keras.layers.Conv2D(8, 3, name="conv3x3")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, keras.layers.Dense(5, name="fc")(h))
    model.get_layer("pointwise").set_weights([known_kernel(32, 24, seed=1).reshape(1, 1, 32, 24), np.ones(24)])
    return model


def stage(**settings: Any) -> Any:
    from edgepack.recipe.optimize import LowRankStage

    return LowRankStage(kind="low-rank", **settings)


def test_rank_from_energy_and_the_parameters_on_a_known_spectrum() -> None:
    from edgepack.optimize.lowrank import choose_rank, energy_kept, factorize

    assert [choose_rank(SPECTRUM, None, e) for e in (0.5, 0.84, 0.9, 0.97, 1.0)] == [1, 3, 3, 4, 4]
    assert choose_rank(SPECTRUM, 10, None) == 4 and energy_kept(SPECTRUM, 3) == pytest.approx(29 / 30)
    _, factors, _ = factorize(sequential_model(), stage(energy=0.9, layers=["hidden"]), "t")
    (hidden,) = factors
    assert (hidden.name, hidden.shape, hidden.rank, hidden.left) == ("hidden", (64, 48), 3, None)
    assert hidden.energy == pytest.approx(29 / 30, abs=1e-6)
    assert (hidden.params_before, hidden.params_after) == (64 * 48 + 48, 3 * (64 + 48) + 48)


def test_the_factored_layers_reproduce_the_layer_at_its_full_rank() -> None:
    from edgepack.optimize.lowrank import SUFFIX, factorize, split

    kernel = np.random.default_rng(2).normal(size=(40, 24)).astype(np.float32)
    a, b = split(kernel, 24)  # a random matrix's full rank: exact
    assert a.shape == (40, 24) and b.shape == (24, 24) and np.abs(a @ b - kernel).max() < 1e-5
    model = sequential_model()
    factored, factors, _ = factorize(model, stage(energy=1.0, layers=["hidden"]), "t")
    assert factors[0].rank == 4  # the kernel's own rank
    assert [layer.name for layer in factored.layers] == [f"hidden{SUFFIX}", "hidden", "head"]
    first, second = factored.get_layer(f"hidden{SUFFIX}"), factored.get_layer("hidden")
    assert (first.units, first.use_bias, first.activation.__name__) == (4, False, "linear")
    assert (second.units, second.activation.__name__) == (48, "relu")
    assert np.array_equal(second.get_weights()[1], model.get_layer("hidden").get_weights()[1])  # its own bias
    assert np.array_equal(factored.get_layer("head").get_weights()[0], model.get_layer("head").get_weights()[0])
    x = np.random.default_rng(3).normal(size=(16, 64)).astype(np.float32)
    assert np.abs(np.asarray(factored(x)) - np.asarray(model(x))).max() < 1e-4


def test_a_1x1_convolution_factors_into_two_and_the_model_round_trips_through_h5(tmp_path: Path) -> None:
    from edgepack.models.source import load_model, save_model
    from edgepack.optimize.lowrank import factorize

    model = conv_model()
    factored, factors, selection = factorize(model, stage(energy=1.0), "t")
    by_name = {f.name: f for f in factors}
    assert by_name["pointwise"].rank == 4 and by_name["pointwise"].left is None
    assert "no fewer than the 40" in (by_name["fc"].left or "")  # 8x5: rank 5 saves nothing
    assert "3x3 convolution" in selection.left_out["conv3x3"]
    pair = [factored.get_layer(n) for n in ("pointwise_lowrank", "pointwise")]
    assert [type(layer).__name__ for layer in pair] == ["Conv2D", "Conv2D"]
    assert [layer.kernel.shape.as_list() for layer in pair] == [[1, 1, 32, 4], [1, 1, 4, 24]]
    x = np.random.default_rng(4).normal(size=(3, 6, 6, 32)).astype(np.float32)
    assert np.abs(np.asarray(factored(x)) - np.asarray(model(x))).max() < 1e-4
    save_model(factored, tmp_path / "model.h5")
    reloaded = load_model(tmp_path / "model.h5")
    assert np.array_equal(np.asarray(reloaded(x)), np.asarray(factored(x)))


def test_a_rank_above_what_a_layer_allows_is_capped_and_kept_where_it_saves_nothing() -> None:
    from edgepack.optimize.lowrank import factorize

    model = sequential_model()
    same, factors, _ = factorize(model, stage(rank=1000), "t")
    assert same is model and all(f.left for f in factors)  # nothing factored: the model as it was
    assert "rank 48 (rank 1000 capped at min(in, out) = 48)" in (factors[0].left or "")
    _, factors, _ = factorize(model, stage(rank=20, layers=["hidden"]), "t")
    assert (factors[0].rank, factors[0].params_after) == (20, 20 * 112 + 48)


def test_selection_refusals_name_the_layer() -> None:
    from edgepack.optimize.lowrank import factorize

    with pytest.raises(ModelError, match="matches no layer") as unmatched:
        factorize(conv_model(), stage(layers=["dense*"]), "t")
    assert unmatched.value.code == "layer-pattern-unmatched"
    with pytest.raises(ModelError, match="'conv3x3'.*3x3 convolution") as refused:
        factorize(conv_model(), stage(layers=["conv3x3"]), "t")
    assert refused.value.code == "layer-unsupported"


def test_tfmot_prunes_clusters_and_quantizes_the_factored_layers() -> None:
    from edgepack.models.tf import load
    from edgepack.optimize.lowrank import factorize

    tfmot = load().tfmot
    wrappers = (
        tfmot.sparsity.keras.prune_low_magnitude,
        lambda model: tfmot.clustering.keras.cluster_weights(model, number_of_clusters=4),
        tfmot.quantization.keras.quantize_model,
    )
    for wrap in wrappers:  # a model each: TFMOT's clustering takes the kernels out of the layers it wraps
        factored, _, _ = factorize(sequential_model(), stage(energy=0.9, layers=["hidden"]), "t")
        names = {getattr(layer, "layer", layer).name for layer in wrap(factored).layers}
        assert {"hidden_lowrank", "hidden"} <= names


RECIPE = """
[train]
epochs = 10
batch_size = 16
learning_rate = 0.003

[[optimize]]
kind = "low-rank"
energy = 0.9
epochs = 2
batch_size = 16
learning_rate = 0.001
{more}
[convert]
mode = "int8"
io = "float32"
calibration_samples = 64
error_report = false

[validate]
warmup = 1
runs = 5
"""

QAT = """
[[optimize]]
kind = "qat"
epochs = 1
batch_size = 16
learning_rate = 0.0001
"""


def _recipe(folder: Path, more: str = "") -> Path:
    file = "lowrank-qat.toml" if more else "lowrank.toml"
    return dense_ae_recipe(folder, "dense-ae-lowrank", "{ init_scale = 0.1 }", RECIPE.format(more=more), file)


def _run(recipe: Path, work: Path, *flags: str) -> tuple[Any, dict[str, Any]]:
    """`edgepack run` in-process (a wide terminal: the summary's rows on one line each) and its manifest."""
    result = CliRunner().invoke(app, [*flags, "run", str(recipe), "--workdir", str(work)], env={"COLUMNS": "200"})
    manifest = json.loads((work / "dense-ae-lowrank" / "bundle" / "manifest.json").read_text())
    return result, manifest


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The low-rank recipe run, then run again on the same workdir (terminal output: the summary)."""
    folder = tmp_path_factory.mktemp("lowrank")
    recipe, work = _recipe(folder), folder / "work"
    first, manifest = _run(recipe, work, "--json")
    assert first.exit_code == 0, first.output
    again, manifest_again = _run(recipe, work)
    return {
        "folder": folder,
        "work": work,
        "report": json.loads(first.stdout),
        "manifest": manifest,
        "again": again,
        "manifest_again": manifest_again,
    }


def test_low_rank_at_energy_0_9_keeps_at_most_0_6_of_the_parameters(runs: dict[str, Any]) -> None:
    stages = runs["report"]["stages"]
    (record,) = stages["optimize"]["stages"]
    float_params = stages["train"]["params"]
    print(
        f"params {float_params} -> {record['params']}; rmse {stages['train']['test_metrics']['rmse']:.4f} "
        f"float, {record['test_metrics_factored']['rmse']:.4f} factored, {record['test_metrics']['rmse']:.4f} "
        f"fine-tuned; optimize {runs['report']['seconds']['optimize']} s"
    )
    assert record["kind"] == "low-rank" and record["energy"] == 0.9 and record["rank"] is None
    assert record["params"] <= 0.6 * float_params
    assert record["totals"]["model_params_before"] == float_params
    assert record["totals"]["model_params_after"] == record["params"]
    assert record["totals"]["factored"] + record["totals"]["kept"] == 10  # the ten Dense layers
    assert record["totals"]["factored"] >= 8  # the 8-wide bottleneck pair may need its full rank; the rest saves
    assert {"rmse", "mae"} <= set(record["test_metrics"]) and "rmse" in record["test_metrics_factored"]
    # the factored and fine-tuned autoencoder stays far better than predicting the mean
    x = np.load(runs["folder"] / "frames.npz")["x"]
    assert record["test_metrics"]["rmse"] < 0.9 * float(np.std(x))


def test_the_manifest_records_each_layers_rank_and_parameters(runs: dict[str, Any]) -> None:
    (record,) = runs["manifest"]["optimization"]["stages"]
    layers = {entry["name"]: entry for entry in record["layers"]}
    assert set(layers) == {f"dense{i}" for i in range(1, 10)} | {"reconstruction"}
    for entry in layers.values():
        n_in, n_out = entry["shape"]
        assert entry["energy"] >= 0.9
        if not entry["factored"]:
            assert "no fewer than" in entry["left"] and entry["params_after"] == entry["params_before"]
            continue
        assert entry["left"] is None
        assert 1 <= entry["rank"] < min(n_in, n_out)
        assert entry["params_before"] == n_in * n_out + n_out
        assert entry["params_after"] == entry["rank"] * (n_in + n_out) + n_out < entry["params_before"]
    assert record["totals"]["layer_params_after"] == sum(e["params_after"] for e in layers.values())
    assert "bn1" in record["left_out"]  # what is not a Dense layer is left, with why
    from edgepack.analyze.flatbuffer import read_model

    bundle = Path(runs["report"]["bundle"][0])
    ops = [op.op_name for op in read_model((bundle / "model.tflite").read_bytes()).operators]
    assert ops.count("FULLY_CONNECTED") == 10 + record["totals"]["factored"]  # two thinner layers for each factored


def test_a_second_run_is_cached_and_gives_the_same_figures(runs: dict[str, Any]) -> None:
    again = runs["again"]
    assert again.exit_code == 0, again.output
    for name in ("train", "optimize", "convert", "evaluate"):
        assert f"{name} cached" in again.stderr, again.stderr
    factored = runs["manifest"]["optimization"]["stages"][0]["totals"]["factored"]
    assert f"0: low-rank (energy 0.9, {factored}/10 factored)" in again.stdout, again.stdout
    first, second = runs["manifest"], runs["manifest_again"]
    assert second["optimization"] == first["optimization"]
    assert second["metrics"] == first["metrics"]
    assert second["artifacts"] == first["artifacts"]


def test_low_rank_then_qat_runs_end_to_end_and_converts_to_int8(runs: dict[str, Any]) -> None:
    recipe = _recipe(runs["folder"], more=QAT)
    result, manifest = _run(recipe, runs["work"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stages"]["train"]["cached"]  # the same training as the low-rank run: not trained again
    low_rank, qat = report["stages"]["optimize"]["stages"]
    assert (low_rank["kind"], qat["kind"]) == ("low-rank", "qat")
    assert qat["params"] == low_rank["params"] <= 0.6 * report["stages"]["train"]["params"]
    convert = report["stages"]["convert"]
    assert convert["mode"] == "int8"
    from edgepack.analyze.flatbuffer import read_model

    model = read_model((Path(report["bundle"][0]) / "model.tflite").read_bytes())
    fc = [op for op in model.operators if op.op_name == "FULLY_CONNECTED"]
    assert len(fc) == 10 + low_rank["totals"]["factored"]
    assert {model.tensors[op.inputs[1]].dtype for op in fc} == {"int8"}  # every kernel, both halves, in int8
    assert np.isfinite(manifest["metrics"]["tflite"]["rmse"])
    print(f"low-rank + QAT: rmse .tflite {manifest['metrics']['tflite']['rmse']}, {convert['size_bytes']} B")


def test_a_model_with_tensorflow_ops_between_its_layers_is_rebuilt() -> None:
    """tf_keras writes a TF op layer's inbound node flat (`x * 2.0`, `x + y`): the rebuild reads and rewires it."""
    from edgepack.models.tf import load
    from edgepack.optimize.lowrank import SUFFIX, factorize

    keras = load().keras
    inputs = keras.Input((16,), name="x")
    hidden = keras.layers.Dense(24, activation="relu", name="hidden")(inputs * 2.0)
    mixed = hidden + keras.layers.Dense(24, name="side")(inputs)  # a TF op reading two layers
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(mixed))
    for name in ("hidden", "side"):  # kernels of rank 2: factored exactly at energy 1
        layer = model.get_layer(name)
        layer.set_weights([_rank2(16, 24), layer.get_weights()[1]])
    factored, factors, _ = factorize(model, stage(energy=1.0, layers=["hidden", "side"]), "t")
    assert {f.name for f in factors if f.left is None} == {"hidden", "side"} and {f.rank for f in factors} == {2}
    assert {f"hidden{SUFFIX}", f"side{SUFFIX}"} <= {layer.name for layer in factored.layers}
    x = np.random.default_rng(4).normal(size=(8, 16)).astype(np.float32)
    assert np.abs(np.asarray(factored(x)) - np.asarray(model(x))).max() < 1e-4


def _rank2(n_in: int, n_out: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return (rng.normal(size=(n_in, 2)) @ rng.normal(size=(2, n_out))).astype(np.float32)


def test_rank_auto_keeps_the_smallest_rank_that_holds_the_budget_and_reruns_cached(runs: dict[str, Any]) -> None:
    """Ranks 32 and 8 keep the 8-factor data (RMSE within 0.03 of the float model's); 2 does not."""
    text = RECIPE.format(more="").replace("energy = 0.9", 'rank = "auto"\nrank_grid = [32, 8, 2]')
    text += "\n[budgets]\nmax_rmse_increase = 0.03\n"
    recipe = dense_ae_recipe(runs["folder"], "dense-ae-lowrank", "{ init_scale = 0.1 }", text, "lowrank-auto.toml")
    result, manifest = _run(recipe, runs["work"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stages"]["train"]["cached"]  # the low-rank run's training
    search = report["rank_search"]
    float_rmse = report["stages"]["train"]["test_metrics"]["rmse"]
    tries = {t["rank"]: t for t in search["tries"]}
    print("rank tries:", {r: round(t["metrics"]["rmse"], 3) for r, t in tries.items()}, f"float {float_rmse:.3f}")
    assert list(tries) == [32, 8, 2]  # from the largest rank down, stopped at the first that breaks
    for rank, t in tries.items():
        assert t["holds"] == (t["metrics"]["rmse"] <= float_rmse + 0.03), (rank, t["metrics"], float_rmse)
    assert tries[32]["holds"] and tries[8]["holds"] and not tries[2]["holds"]
    assert search["chosen"] == 8 and tries[8]["chosen"] and search["met"]
    assert search["why"] == "2 breaks max_rmse_increase; 8 is the smallest that holds"
    (record,) = report["stages"]["optimize"]["stages"]
    assert record["rank"] == 8 and report["stages"]["optimize"]["dir"].endswith("optimize-rank-8")
    assert {entry["rank"] for entry in record["layers"] if entry["factored"]} == {8}
    assert manifest["optimization"]["rank_search"]["chosen"] == 8
    again, manifest_again = _run(recipe, runs["work"], "--json")
    assert again.exit_code == 0, again.output
    cached = json.loads(again.stdout)["rank_search"]["tries"]
    assert [t["rank"] for t in cached] == [32, 8, 2] and {t["cached"] for t in cached} == {True}
    assert manifest_again["optimization"]["stages"] == manifest["optimization"]["stages"]
    assert manifest_again["metrics"] == manifest["metrics"]


JOINT = """
[convert.search]
modes = ["int8", "int4"]
max_relative_drop = 0.05
minimize = "{minimize}"

[budgets]
max_rmse_increase = 0.03
"""


def test_the_search_over_ranks_granularity_and_int4_minimizes_what_it_is_asked(runs: dict[str, Any]) -> None:
    """rank = "auto", dense_granularity = "auto" and int4 in one search: every held rank x every conversion,
    the pick by the objective among those that meet the criterion, the run's stages the pick's."""
    text = RECIPE.format(more="").replace("energy = 0.9", 'rank = "auto"\nrank_grid = [32, 8, 2]')
    text = text.replace('mode = "int8"', 'mode = "int8"\ndense_granularity = "auto"')
    recipe = dense_ae_recipe(
        runs["folder"], "dense-ae-lowrank", "{ init_scale = 0.1 }", text + JOINT.format(minimize="size"), "joint.toml"
    )
    result, manifest = _run(recipe, runs["work"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    search = report["search"]
    held = [t["rank"] for t in report["rank_search"]["tries"] if t["holds"]]
    assert held and 2 not in held  # rank 2 breaks the RMSE budget: no conversion of it is tried
    conversions = ["int8", "int8, dense per-tensor", "int4"]
    assert [c["mode"] for c in search["candidates"]] == [f"{m} @ rank {r}" for r in held for m in conversions]
    measured = json.loads((Path(report["bundle"][0]) / "measurements.json").read_text())["search"]
    for c in measured["candidates"]:
        assert c["size_bytes"] > 0 and c["arena_bytes"] > 0 and c["latency_p50_ms"] > 0, c
        assert c["value"] is not None and c["worst_sqnr_db"] is not None and c["optimize"]["field"] == "rank"
    assert {c["weights"] for c in search["candidates"]} == {"int8", "int4"}
    # the figures docs/optimize.md quotes
    print("search:", [(c["mode"], c["size_bytes"], c["meets"]) for c in search["candidates"]])
    meeting = [c for c in search["candidates"] if c["meets"]]
    chosen = min(meeting, key=lambda c: c["size_bytes"])
    assert search["chosen"] == chosen["mode"] and chosen["chosen"] and search["met"]
    assert (
        search["why"]
        == f"the smallest file of the {len(meeting)} of {len(search['candidates'])} candidates that meet the criterion and the budgets"
    )
    # the pick's try and conversion are the run's: what is evaluated, bundled and recorded
    rank = chosen["optimize"]["value"]
    assert report["stages"]["optimize"]["dir"].endswith(f"optimize-rank-{rank:g}")
    assert report["stages"]["convert"]["size_bytes"] == chosen["size_bytes"]
    assert (Path(report["bundle"][0]) / "model.tflite").stat().st_size >= chosen["size_bytes"]  # + metadata
    assert report["rank_search"]["chosen"] == rank and manifest["optimization"]["rank_search"]["chosen"] == rank
    assert manifest["optimization"]["stages"][0]["rank"] == rank
    # the same search minimizing the arena: the conversions from the cache, the summary and report say why
    recipe.write_text(recipe.read_text().replace('minimize = "size"', 'minimize = "arena"'))
    again = CliRunner().invoke(app, ["run", str(recipe), "--workdir", str(runs["work"])], env={"COLUMNS": "220"})
    assert again.exit_code == 0, again.output
    by_arena = json.loads((runs["work"] / "dense-ae-lowrank" / "bundle" / "measurements.json").read_text())["search"]
    lightest = min(
        (c for c in by_arena["candidates"] if c["meets"]), key=lambda c: (c["arena_bytes"], c["drop_from_float"])
    )
    assert by_arena["chosen"] == lightest["mode"] and by_arena["minimize"] == "arena"
    assert (
        "search: the smallest arena" in again.stdout and f"{lightest['mode']} kept: the smallest arena" in again.stdout
    )
    html = (runs["work"] / "dense-ae-lowrank" / "bundle" / "report.html").read_text()
    assert f"{lightest['mode']} kept: the smallest arena of" in html and 'id="search"' in html
