"""Bad recipes are refused with the file, the field path and what is allowed; exit 2, no traceback (a
builder's arguments refused by the train stage too: tests/integration/test_recipe_validation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE_RECIPE as BASE
from conftest import invoke

from edgepack.errors import RecipeError
from edgepack.recipe.load import list_recipes, load_recipe, parse_recipe

PRUNE = '[[optimize]]\nkind = "prune"\n'
LOW_RANK = '[[optimize]]\nkind = "low-rank"\n'
DISTILL = (
    '[[optimize]]\nkind = "distill"\n'
    'student = { kind = "builder", builder = "edgepack.models.zoo:digits_cnn", args = { width = 4 } }\n'
)

# (name, recipe text appended to / replacing BASE, expected fragments of the error)
BAD = [
    (
        "misspelled-train-key",
        BASE + "[train]\nepochz = 3\n",
        ["train.epochz = 3", "unknown key", "did you mean 'epochs'"],
    ),
    ("misspelled-top-key", BASE + "sed = 3\n", ["sed = 3", "unknown key", "allowed keys here"]),
    ("unknown-section", BASE + "[bundel]\nzip = true\n", ["bundel", "unknown key", "'bundle'"]),
    ("wrong-type-epochs", BASE + '[train]\nepochs = "ten"\n', ["train.epochs = 'ten'", "valid integer"]),
    ("wrong-type-zip", BASE + '[bundle]\nzip = "yes please"\n', ["bundle.zip", "valid boolean"]),
    (
        "sparsity-out-of-range",
        BASE + '[[optimize]]\nkind = "prune"\nfinal_sparsity = 1.5\n',
        ["optimize[0].final_sparsity = 1.5", 'must be > 0 and < 1, or "auto"'],
    ),
    (
        "unknown-optimize-key",
        BASE + '[[optimize]]\nkind = "qat"\n[[optimize]]\nkind = "prune"\nfrequncy = 3\n',
        ["optimize[1].frequncy = 3", "unknown key", "final_sparsity"],
    ),
    (
        "unknown-dataset-kind",
        BASE.replace('"digits"', '"digitz"'),
        ["dataset.kind = 'digitz'", "'digits', 'npz', 'folder'"],
    ),
    (
        "unknown-convert-mode",
        BASE + '[convert]\nmode = "int4"\n',
        ["convert.mode = 'int4'", "'int8', 'float16', 'dynamic', 'int16x8' or 'float32'"],
    ),
    ("negative-lr", BASE + "[train]\nlearning_rate = -0.1\n", ["train.learning_rate = -0.1", "greater than 0"]),
    ("runs-zero", BASE + "[validate]\nruns = 0\n", ["validate.runs = 0", "greater than or equal to 1"]),
    ("bad-size", BASE + '[budgets]\nmax_size = "12 parsecs"\n', ["budgets.max_size = '12 parsecs'", "80 KB"]),
    (
        "accuracy-as-percent",
        BASE + "[budgets]\nmin_accuracy = 95\n",
        ["budgets.min_accuracy = 95", "less than or equal to 1"],
    ),
    (
        "missing-builder",
        BASE.replace('builder = "edgepack.models.zoo:digits_cnn"\n', ""),
        ["model.builder", "required field is missing"],
    ),
    ("bad-builder-format", BASE.replace("zoo:digits_cnn", "zoo.digits_cnn"), ["model.builder", "pattern"]),
    (
        "latency-unknown-device",
        BASE + "[budgets]\nlatency_p90_ms = { rpi4 = 12.0 }\n",
        ["rpi4", "validate.devices", "budgets.latency_p90_ms"],
    ),
    (
        "sparsity-order",
        BASE + '[[optimize]]\nkind = "prune"\ninitial_sparsity = 0.6\nfinal_sparsity = 0.5\n',
        ["initial_sparsity (0.6)", "final_sparsity (0.5)"],
    ),
    ("int8-io-needs-int8", BASE + '[convert]\nmode = "float16"\nio = "int8"\n', ["io = 'int8' needs mode = 'int8'"]),
    ("qat-not-last", BASE + '[[optimize]]\nkind = "qat"\n[[optimize]]\nkind = "prune"\n', ["'qat' must be the last"]),
    ("not-toml", "[dataset\nkind = 1", ["not valid TOML"]),
    ("distill-not-first", BASE + PRUNE + DISTILL, ["'distill' must be the first stage", "['prune', 'distill']"]),
    (
        "prune-after-cluster",
        BASE + '[[optimize]]\nkind = "cluster"\n' + PRUNE,
        ["'prune' after 'cluster' undoes the clusters", "prune first"],
    ),
    (
        "two-four-with-sparsity",
        BASE + PRUNE + 'structure = "2:4"\nfinal_sparsity = 0.8\n',
        ["structure = '2:4' fixes the sparsity at 50 %"],
    ),
    ("block-size-unstructured", BASE + PRUNE + "block_size = [2, 2]\n", ["block_size is set", "structure = 'block'"]),
    ("begin-twice", BASE + PRUNE + "begin_epoch = 1\nbegin_fraction = 0.1\n", ["begin_epoch or begin_fraction"]),
    ("end-after-stage", BASE + PRUNE + "epochs = 2\nend_epoch = 3\n", ["end_epoch (3.0)", "epochs = 2"]),
    ("unknown-structure", BASE + PRUNE + 'structure = "3:4"\n', ["structure = '3:4'", "'2:4'"]),
    (
        "clusters-one",
        BASE + '[[optimize]]\nkind = "cluster"\nclusters = 1\n',
        ["optimize[0].clusters = 1", "greater than or equal to 2"],
    ),
    ("distill-no-student", BASE + '[[optimize]]\nkind = "distill"\n', ["optimize[0].student", "missing"]),
    (
        "unknown-strategy",
        BASE.replace("[dataset]", 'strategy = "tpu"\n[dataset]'),
        ["strategy = 'tpu'", "'default' or 'mirrored'"],
    ),
    (
        "per-tensor-float16",
        BASE + '[convert]\nmode = "float16"\nper_channel = false\n',
        ["convert", "per_channel = false applies to integer weights", "'int8' or 'dynamic'"],
    ),
    (
        "per-tensor-int16x8",
        BASE + '[convert]\nmode = "int16x8"\nper_channel = false\n',
        ["not supported by the converter's int16x8 mode"],
    ),
    (
        "sparsity-neither-number-nor-auto",
        BASE + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "most"\n',
        ["1 problem(s)", "optimize[0].final_sparsity = 'most': must be > 0 and < 1, or \"auto\""],
    ),
    (
        "sparsity-grid-without-auto",
        BASE + '[[optimize]]\nkind = "prune"\nsparsity_grid = [0.5, 0.7]\n',
        ["optimize[0]", "sparsity_grid is for final_sparsity = 'auto' (it is 0.5); remove it"],
    ),
    (
        "sparsity-grid-descending",
        BASE
        + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "auto"\nsparsity_grid = [0.8, 0.5]\n[budgets]\nmin_accuracy = 0.9\n',
        ["sparsity_grid [0.8, 0.5] must ascend"],
    ),
    (
        "sparsity-auto-without-budgets",
        BASE + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "auto"\n[budgets]\nmin_sqnr_db = 30\n',
        ["optimize[0].final_sparsity = 'auto'", "[budgets] sets none: set one of max_accuracy_drop, min_accuracy"],
    ),
    (
        "sparsity-auto-twice",
        BASE
        + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "auto"\nlayers = ["conv*"]\n'
        + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "auto"\nlayers = ["fc"]\n[budgets]\nmin_accuracy = 0.9\n',
        ["optimize[0].final_sparsity and optimize[1].final_sparsity are both 'auto'", "one value at a time"],
    ),
    (
        "sparsity-auto-below-initial",
        BASE
        + '[[optimize]]\nkind = "prune"\nfinal_sparsity = "auto"\ninitial_sparsity = 0.6\n[budgets]\nmin_accuracy = 0.9\n',
        ["initial_sparsity (0.6) must be below the grid's lowest value (0.5)"],
    ),
    (
        "dense-granularity-unknown",
        BASE + '[convert]\ndense_granularity = "per-row"\n',
        ["convert.dense_granularity", "'per-channel', 'per-tensor' or 'auto'"],
    ),
    (
        "dense-granularity-float16",
        BASE + '[convert]\nmode = "float16"\ndense_granularity = "per-tensor"\n',
        ["dense_granularity = 'per-tensor' applies to integer weights", "'int16x8' or 'dynamic'"],
    ),
    (
        "dense-granularity-with-per-channel-false",
        BASE + '[convert]\nper_channel = false\ndense_granularity = "auto"\n',
        ["with per_channel = false", "Dense layers included, is per tensor already"],
    ),
    (
        "dense-granularity-auto-without-budgets",
        BASE + '[convert]\ndense_granularity = "auto"\n',
        ["[budgets] sets none", "max_accuracy_drop, min_accuracy, min_sqnr_db"],
    ),
    (
        "dense-granularity-auto-with-qat",
        BASE + '[[optimize]]\nkind = "qat"\n[convert]\ndense_granularity = "auto"\n[budgets]\nmin_sqnr_db = 20\n',
        ["'auto' with a QAT stage", "trains Dense layers per tensor"],
    ),
    (
        "per-tensor-after-prune",
        BASE + PRUNE + '[[optimize]]\nkind = "qat"\n[convert]\nper_channel = false\n',
        ["convert.per_channel = false with QAT after prune", "per channel only"],
    ),
    (
        "fallback-two-criteria",
        BASE + "[convert.fallback]\nmax_drop = 0.01\nmax_relative_drop = 0.02\n",
        ["convert.fallback", "exactly one criterion"],
    ),
    ("fallback-no-criterion", BASE + "[convert.fallback]\nmax_ops = 3\n", ["exactly one criterion"]),
    (
        "fallback-float16",
        BASE + '[convert]\nmode = "float16"\nkeep_float = ["SOFTMAX"]\n',
        ["keep_float and fallback", "choose mode 'int8'"],
    ),
    (
        "search-one-mode",
        BASE + '[convert.search]\nmodes = ["int8"]\nmax_drop = 0.01\n',
        ["convert.search.modes", "at least 2"],
    ),
    (
        "search-unknown-device",
        BASE + '[convert.search]\nmodes = ["int8", "float16"]\nmax_drop = 0.01\ndevice = "rpi9"\n',
        ["convert.search.device 'rpi9' is not in validate.devices"],
    ),
    (
        "search-and-fallback",
        BASE + '[convert.search]\nmodes = ["int8", "float16"]\nmax_drop = 0.01\n[convert.fallback]\nmax_drop = 0.01\n',
        ["convert.search and convert.fallback together", "int8-fallback"],
    ),
    (
        "fallback-after-qat",
        BASE + '[[optimize]]\nkind = "qat"\n[convert.fallback]\nmax_drop = 0.01\n',
        ["with a QAT stage", "post-training quantization"],
    ),
    (
        "unknown-task",
        BASE + '[task]\nkind = "segmentation"\n',
        ["task.kind = 'segmentation'", "'classification', 'regression', 'anomaly', 'fidelity'"],
    ),
    (
        "budget-of-another-task",
        BASE + '[task]\nkind = "regression"\n[budgets]\nmin_accuracy = 0.9\n',
        ["budgets.min_accuracy does not apply to task.kind = 'regression'", "max_rmse, max_rmse_increase"],
    ),
    (
        "anomaly-without-labels",
        BASE + '[task]\nkind = "anomaly"\n',
        ["dataset.anomaly_key", "task.normal_classes", "give exactly one"],
    ),
    (
        "anomaly-key-without-anomaly",
        BASE.replace('kind = "digits"', 'kind = "npz"\npath = "d.npz"\nanomaly_key = "flag"'),
        ["dataset.anomaly_key is set but task.kind = 'classification'"],
    ),
    ("fidelity-builder", BASE + '[task]\nkind = "fidelity"\n', ["no targets to train a built model on"]),
    (
        "distill-regression",
        BASE + '[task]\nkind = "regression"\n' + DISTILL,
        ["'distill' teaches class scores", "task.kind = 'regression'"],
    ),
    (
        "fidelity-drop-criterion",
        BASE.replace('kind = "builder"\nbuilder = "edgepack.models.zoo:digits_cnn"', 'kind = "saved"\npath = "m.h5"')
        + '[task]\nkind = "fidelity"\n[convert.fallback]\nmax_drop = 0.01\n',
        ["judged by SQNR alone", "min_sqnr_db"],
    ),
    (
        "criterion-three-ways",
        BASE + "[convert.fallback]\nmax_drop = 0.01\nmin_sqnr_db = 30\n",
        ["exactly one criterion"],
    ),
    (
        "low-rank-rank-and-energy",
        BASE + LOW_RANK + "rank = 8\nenergy = 0.8\n",
        ["rank or energy, not both", "rank = 8"],
    ),
    (
        "low-rank-energy-above-one",
        BASE + LOW_RANK + "energy = 1.5\n",
        ["optimize[0].energy = 1.5", "less than or equal to 1"],
    ),
    ("low-rank-energy-zero", BASE + LOW_RANK + "energy = 0\n", ["optimize[0].energy = 0", "greater than 0"]),
    ("low-rank-rank-zero", BASE + LOW_RANK + "rank = 0\n", ["optimize[0].rank = 0", 'from 1 to 65536, or "auto"']),
    ("low-rank-rank-word", BASE + LOW_RANK + 'rank = "low"\n', ["1 problem(s)", "optimize[0].rank = 'low'", '"auto"']),
    (
        "low-rank-grid-without-auto",
        BASE + LOW_RANK + "rank = 8\nrank_grid = [16, 8]\n",
        ["optimize[0]", "rank_grid is for rank = 'auto' (rank = 8); remove it or set rank = 'auto'"],
    ),
    (
        "low-rank-grid-ascending",
        BASE + LOW_RANK + 'rank = "auto"\nrank_grid = [4, 16]\n[budgets]\nmin_accuracy = 0.9\n',
        ["rank_grid [4, 16] must descend"],
    ),
    (
        "low-rank-auto-without-budgets",
        BASE + LOW_RANK + 'rank = "auto"\n',
        ["optimize[0].rank = 'auto' keeps the smallest rank", "[budgets] sets none: set one of max_accuracy_drop"],
    ),
    (
        "low-rank-auto-and-energy",
        BASE + LOW_RANK + 'rank = "auto"\nenergy = 0.8\n[budgets]\nmin_accuracy = 0.9\n',
        ["give rank or energy, not both"],
    ),
    (
        "auto-rank-and-sparsity",
        BASE + LOW_RANK + 'rank = "auto"\n' + PRUNE + 'final_sparsity = "auto"\n[budgets]\nmin_accuracy = 0.9\n',
        ["optimize[0].rank and optimize[1].final_sparsity are both 'auto'"],
    ),
    ("low-rank-unknown-key", BASE + LOW_RANK + "rnak = 4\n", ["optimize[0].rnak = 4", "unknown key", "'rank'"]),
    (
        "low-rank-after-prune",
        BASE + PRUNE + LOW_RANK,
        ["'low-rank' after 'prune'", "['prune', 'low-rank']", "distill, low-rank, prune, cluster, qat"],
    ),
    ("low-rank-twice", BASE + LOW_RANK + LOW_RANK, ["'low-rank' must appear once"]),
    (
        "x-key-list-twice",
        BASE.replace('kind = "digits"', 'kind = "npz"\npath = "d.npz"\nx_key = ["a", "a"]'),
        ["dataset.x_key", "each once"],
    ),
    (
        "int4-weights-float-mode",
        BASE + '[convert]\nmode = "float16"\nweights = "int4"\n',
        ["weights = 'int4' needs mode = 'int8'", "mode is 'float16'"],
    ),
    ("int4-unknown-weights", BASE + '[convert]\nweights = "int2"\n', ["convert.weights = 'int2'", "'int8' or 'int4'"]),
    (
        "int4-float-io",
        BASE + '[convert]\nweights = "int4"\nio = "float32"\n',
        ["weights = 'int4' with io = 'float32'", "int8 inputs"],
    ),
    (
        "int4-per-tensor",
        BASE + '[convert]\nweights = "int4"\nper_channel = false\n',
        ["weights = 'int4' quantizes kernels per channel"],
    ),
    (
        "int4-keep-float",
        BASE + '[convert]\nweights = "int4"\nkeep_float = ["SOFTMAX"]\n',
        ["weights = 'int4' with keep_float or fallback"],
    ),
    (
        "int4-search",
        BASE + '[convert]\nweights = "int4"\n[convert.search]\nmodes = ["int8", "float16"]\nmax_drop = 0.01\n',
        ["weights = 'int4' with convert.search", "put 'int4' in convert.search.modes"],
    ),
    (
        "int4-searched-for-tflm",
        BASE + '[convert.search]\nmodes = ["int8", "int4"]\nmax_drop = 0.01\n[validate]\ndevices = ["host", "tflm"]\n',
        ["'int4' in convert.search.modes with validate.devices 'tflm'", "take 'int4' out of the search's modes"],
    ),
    (
        "search-objective-and-minimize",
        BASE
        + '[convert.search]\nmodes = ["int8", "int4"]\nmax_drop = 0.01\nobjective = "fastest"\nminimize = "size"\n',
        ["give minimize or objective, not both"],
    ),
    (
        "search-minimize-unknown",
        BASE + '[convert.search]\nmodes = ["int8", "int4"]\nmax_drop = 0.01\nminimize = "power"\n',
        ["convert.search.minimize = 'power'", "'size', 'latency' or 'arena'"],
    ),
    (
        "int4-c-array",
        BASE + '[convert]\nweights = "int4"\n[bundle]\nformats = ["c-array"]\n',
        ["convert.weights = 'int4' with bundle.formats \"c-array\"", "TFLite Micro", "Vela"],
    ),
    (
        "int4-tflm-device",
        BASE + '[convert]\nweights = "int4"\n[validate]\ndevices = ["host", "tflm"]\n',
        ["validate.devices 'tflm'", "TFLite Micro"],
    ),
    (
        "lut-float-mode",
        BASE + '[convert]\nmode = "float16"\ncompression = "lut"\n',
        ["compression = 'lut' needs mode = 'int8'", "mode is 'float16'"],
    ),
    (
        "lut-int4",
        BASE + '[convert]\nweights = "int4"\ncompression = "lut"\n',
        ["compression = 'lut' with weights = 'int4'"],
    ),
    (
        "lut-unknown",
        BASE + '[convert]\ncompression = "huffman"\n',
        ["convert.compression = 'huffman'", "'none' or 'lut'"],
    ),
    (
        "lut-search",
        BASE + '[convert]\ncompression = "lut"\n[convert.search]\nmodes = ["int8", "float16"]\nmax_drop = 0.01\n',
        ["compression = 'lut' with convert.search"],
    ),
    (
        "lut-default-host",
        BASE + '[convert]\ncompression = "lut"\n',
        ["convert.compression = 'lut' with validate.devices 'host'", "LiteRT refuses TFLM's TFLM_DECODE", '"tflm"'],
    ),
    (
        "lut-rpi4",
        BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm", "rpi4-emulated"]\n',
        ["validate.devices 'rpi4-emulated'", "LiteRT"],
    ),
    (
        "lut-ethos-u-device",
        BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm", "ethos-u55-128"]\n',
        ["validate.devices 'ethos-u55-128'", "Vela leaves TFLM_DECODE on the CPU"],
    ),
    (
        "lut-android-format",
        BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm"]\n[bundle]\nformats = ["android"]\n',
        ['bundle.formats "android"', "LiteRT refuses"],
    ),
    (
        "lut-ethos-u-format",
        BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm"]\n[bundle]\nformats = ["ethos-u"]\n',
        ['bundle.formats "ethos-u"', "Vela"],
    ),
    (
        "lut-metadata",
        BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm"]\n[bundle]\nmetadata = true\n',
        ["compression = 'lut' with bundle.metadata = true", "TFLite Micro ignores metadata"],
    ),
    (
        "int4-fits",
        BASE + '[convert]\nweights = "int4"\n[budgets]\nfits = ["pico"]\n',
        ["budgets.fits ['pico']", "weights = 'int8' for microcontrollers"],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_recipe_is_refused_with_field_path(tmp_path: Path, name: str, text: str, expected: list[str]) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    result = invoke("recipes", "check", str(path))
    assert result.exit_code == 2, result.output
    assert str(path) in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_recipe_errors_are_json_with_json_flag(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + "[train]\nepochs = 0\n")
    result = invoke("--json", "recipes", "check", str(path))
    assert result.exit_code == 2
    assert '"recipe-invalid"' in result.stdout and "train.epochs = 0" in result.stdout


@pytest.mark.parametrize("path", list_recipes(), ids=lambda p: p.stem)
def test_shipped_recipes_validate(path: Path) -> None:
    result = invoke("recipes", "check", str(path))
    assert result.exit_code == 0, result.stderr


def test_recipe_named_by_name_or_path_is_the_same() -> None:
    by_name = load_recipe("digits")
    by_path = load_recipe(str(list_recipes()[0].parent / "digits.toml"))
    assert by_name.sha256 == by_path.sha256
    assert by_name.recipe.name == "digits"


def test_unknown_recipe_lists_the_shipped_ones() -> None:
    result = invoke("recipes", "show", "digitz")
    assert result.exit_code == 2
    assert "recipe 'digitz' not found" in result.stderr and "digits" in result.stderr


def test_recipe_hash_ignores_formatting_but_not_values() -> None:
    a = parse_recipe('name = "a"\n' + BASE)
    b = parse_recipe('name = "a"\n\n# comment\n' + BASE.replace(" = ", "="))
    c = parse_recipe('name = "a"\nseed = 1\n' + BASE)
    assert a.sha256 == b.sha256 != c.sha256


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(BASE + "[train]\nepochs = 0\nbatch_size = -1\n", Path("r.toml"))
    assert "train.epochs = 0" in info.value.context and "train.batch_size = -1" in info.value.context


@pytest.mark.parametrize("path", list_recipes(), ids=lambda p: p.stem)
def test_resolved_recipes_validate_again(path: Path) -> None:
    # The manifest carries the resolved recipe (every default filled in); `gate` re-reads it.
    from edgepack.recipe.schema import Recipe

    recipe = load_recipe(str(path)).recipe
    assert Recipe.model_validate(recipe.resolved()) == recipe


def test_a_resolved_float16_recipe_validates_again() -> None:
    from edgepack.recipe.schema import Recipe

    recipe = parse_recipe('name = "f16"\n' + BASE + '[convert]\nmode = "float16"\n').recipe
    assert recipe.convert.io == "float32"
    assert Recipe.model_validate(recipe.resolved()) == recipe


def test_a_low_rank_stage_keeps_energy_0_9_unless_a_rank_is_given_and_resolves_again() -> None:
    from edgepack.recipe.schema import Recipe

    default = parse_recipe('name = "lr"\n' + BASE + LOW_RANK + '[[optimize]]\nkind = "qat"\n').recipe
    assert (default.optimize[0].energy, default.optimize[0].rank) == (0.9, None)
    assert Recipe.model_validate(default.resolved()) == default
    ranked = parse_recipe('name = "lr"\n' + BASE + LOW_RANK + "rank = 4\n").recipe
    assert (ranked.optimize[0].energy, ranked.optimize[0].rank) == (None, 4)
    assert Recipe.model_validate(ranked.resolved()) == ranked


def test_a_user_builder_beside_the_recipe_is_checked_and_its_kwargs_are_free(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "def net(input_shape, size, depth: int = 2, *, name: str = 'n',\n"
        "        kernel: tuple[int, int] = (3, 3), **extra):\n"
        "    raise AssertionError('recipes check does not build')\n"
    )
    good = tmp_path / "good.toml"
    good.write_text(
        BASE.replace("edgepack.models.zoo:digits_cnn", "mine:net")
        + 'args = { depth = 3, name = "x", kernel = [5, 5], anything = 1.5 }\n'
    )
    assert invoke("recipes", "check", str(good)).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace("edgepack.models.zoo:digits_cnn", "mine:net") + 'args = { depth = "deep" }\n')
    result = invoke("recipes", "check", str(bad))
    assert result.exit_code == 2 and "model.args.depth = 'deep': must be a valid integer" in result.stderr
    assert "builder 'mine:net' takes 'depth': int" in result.stderr
    bad.write_text(BASE.replace("edgepack.models.zoo:digits_cnn", "mine:net") + "args = { kernel = [5, 5, 5] }\n")
    result = invoke("recipes", "check", str(bad))
    assert result.exit_code == 2 and "model.args.kernel = [5, 5, 5]" in result.stderr
    missing = tmp_path / "missing.toml"
    missing.write_text(BASE.replace("edgepack.models.zoo:digits_cnn", "nowhere:net"))
    result = invoke("recipes", "check", str(missing))
    assert result.exit_code == 2 and "cannot import builder module 'nowhere'" in result.stderr
