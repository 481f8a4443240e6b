"""A builder's bad arguments are recipe errors (exit 2) naming the argument, from `recipes check` and from
`run` before any data, TensorFlow or training; what a builder raises while building is exit 2 naming it.

Builders raising while building through `run` (TensorFlow imported first): tests/integration/test_cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from conftest import BASE_RECIPE, invoke
from pydantic import Field

from edgepack.errors import EXIT_BAD_INPUT, EdgepackError, ModelError
from edgepack.models.builders import build, describe
from edgepack.recipe.model import BuilderModel

WIDTHS = [("-5", "must be greater than 0"), ("1000000000000000000", "must be less than or equal to 256")]


def _recipe(tmp_path: Path, args: str, builder: str = "edgepack.models.zoo:digits_cnn") -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BASE_RECIPE.replace("edgepack.models.zoo:digits_cnn", builder) + f"args = {args}\n")
    return path


@pytest.mark.parametrize("width, why", WIDTHS, ids=["negative", "huge"])
def test_recipes_check_refuses_a_width_out_of_the_builders_bounds(tmp_path: Path, width: str, why: str) -> None:
    path = _recipe(tmp_path, f"{{ width = {width} }}")
    result = invoke("recipes", "check", str(path))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"error (builder-args): model.args.width = {width}: {why}" in result.stderr
    assert f"{path}: model.args = {{'width': {width}}}" in result.stderr
    assert "builder 'edgepack.models.zoo:digits_cnn' takes 'width': int, > 0 and <= 256" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("width, why", WIDTHS, ids=["negative", "huge"])
def test_run_refuses_a_width_out_of_bounds_before_any_data_or_training(tmp_path: Path, width: str, why: str) -> None:
    """The unit tier's conftest fails this test if TensorFlow is imported: the refusal comes first."""
    path = _recipe(tmp_path, f"{{ width = {width} }}")
    result = invoke("run", str(path), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"model.args.width = {width}: {why}" in result.stderr and str(path) in result.stderr
    assert not list((tmp_path / "w").rglob("stage.json"))  # no stage ran


@pytest.mark.parametrize(
    "builder, args, expected",
    [
        ("mlp", "{ hidden = [32, -1] }", "model.args.hidden[1] = -1: must be greater than 0"),
        (
            "mlp",
            "{ hidden = [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8] }",
            "must have at most 16 items, not 17",
        ),
        ("mlp", '{ activation = "rleu" }', "model.args.activation = 'rleu': must be 'relu', 'elu'"),
        ("dense_autoencoder", "{ bottleneck = 0 }", "model.args.bottleneck = 0: must be greater than 0"),
        ("mobilenetv2", "{ alpha = 0 }", "model.args.alpha = 0: must be greater than 0"),
        ("mobilenetv2", "{ dropout = 1.0 }", "model.args.dropout = 1.0: must be less than 1"),
        ("keras3_cnn", "{ width = 4096 }", "model.args.width = 4096: must be less than or equal to 256"),
        ("digits_cnn", "{ depth = 3 }", "its arguments besides the input shape and size: width"),
    ],
)
def test_every_shipped_builder_declares_its_bounds(tmp_path: Path, builder: str, args: str, expected: str) -> None:
    result = invoke("recipes", "check", str(_recipe(tmp_path, args, f"edgepack.models.zoo:{builder}")))
    assert result.exit_code == EXIT_BAD_INPUT and expected in result.stderr, result.stderr


def test_a_distillation_students_args_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "student.toml"
    path.write_text(
        BASE_RECIPE + '[[optimize]]\nkind = "distill"\n'
        'student = { kind = "builder", builder = "edgepack.models.zoo:digits_cnn", args = { width = -5 } }\n'
    )
    result = invoke("recipes", "check", str(path))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "optimize[0].student.args.width = -5: must be greater than 0" in result.stderr


def test_a_bound_reads_as_words() -> None:
    assert describe(Annotated[int, Field(gt=0, le=256)]) == "int, > 0 and <= 256"
    hidden = Annotated[list[Annotated[int, Field(gt=0, le=8)]], Field(max_length=4)] | None
    assert describe(hidden) == "a list of (int, > 0 and <= 8), at most 4 items, or none"


def _raising(exc: BaseException) -> Any:
    def builder(input_shape: tuple[int, ...], size: int, width: int = 3) -> Any:
        raise exc

    return builder


class ResourceExhaustedError(Exception):
    """Named as TensorFlow's OOM error (tf.errors.ResourceExhaustedError): known by name, TensorFlow unimported."""


@pytest.mark.parametrize(
    "exc, code, words",
    [
        (
            ValueError("width 6 is not a multiple of 4"),
            "builder-failed",
            "failed: ValueError: width 6 is not a multiple",
        ),
        (MemoryError("Unable to allocate 7.3 EiB"), "builder-out-of-memory", "ran out of memory building the model"),
        (ResourceExhaustedError("OOM when allocating tensor"), "builder-out-of-memory", "ran out of memory"),
    ],
)
def test_what_a_builder_raises_is_a_bad_input_naming_it_and_its_args(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, code: str, words: str
) -> None:
    spec = BuilderModel(kind="builder", builder="mine:net", args={"width": 6})
    monkeypatch.setattr("edgepack.models.builders.builder_function", lambda *a: _raising(exc))
    with pytest.raises(ModelError) as caught:
        build(spec, (8, 8, 1), 10, Path.cwd())
    error = caught.value
    assert error.exit_code == EXIT_BAD_INPUT and error.code == code
    assert words in error.message and "builder 'mine:net' with model.args = {'width': 6}" in error.message
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    "text, shown",
    [
        (
            "1 validation error for digits_cnn\ninput_shape.0\n  Input should be greater than 0",
            "1 validation error for digits_cnn\ninput_shape.0\n  Input should be greater than 0",
        ),
        ("Exception encountered when calling layer 'conv'\n\nnegative dimension", "\n\nnegative dimension"),
        ("\n".join(f"line {i}" for i in range(9)), "line 5 ..."),
    ],
)
def test_a_builders_message_keeps_its_first_six_lines(monkeypatch: pytest.MonkeyPatch, text: str, shown: str) -> None:
    """A short message is kept whole (pydantic's field and reason, Keras's reason after its first line);
    a long one (TensorFlow's graph nodes) is cut after six lines."""
    monkeypatch.setattr("edgepack.models.builders.builder_function", lambda *a: _raising(ValueError(text)))
    with pytest.raises(ModelError) as caught:
        build(BuilderModel(kind="builder", builder="mine:net"), (8, 8, 1), 10, Path.cwd())
    assert caught.value.message.endswith(shown) and "line 6" not in caught.value.message


def test_a_multi_input_dataset_for_a_shipped_builder_names_input_shape_not_args() -> None:
    """Two input arrays for a one-input builder: the data's shape is wrong, not model.args (refused by the
    builder's own validate_call before it imports TensorFlow)."""
    spec = BuilderModel(kind="builder", builder="edgepack.models.zoo:mlp", args={"hidden": [8]})
    with pytest.raises(ModelError) as caught:
        build(spec, [(4,), (3,)], 3, Path.cwd())
    error = caught.value
    assert error.exit_code == EXIT_BAD_INPUT and error.code == "builder-failed"
    assert "cannot take what the data gives, input_shape = [(4,), (3,)]" in error.message
    assert "validation error" in error.message and "Input should be a valid integer" in error.message  # kept
    assert "dataset.x_key" in error.hint and "change model.args" not in error.hint


def test_edgepacks_own_error_from_a_builder_passes_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    own = EdgepackError("TensorFlow is not installed", code="tensorflow-missing")
    monkeypatch.setattr("edgepack.models.builders.builder_function", lambda *a: _raising(own))
    with pytest.raises(EdgepackError) as caught:
        build(BuilderModel(kind="builder", builder="mine:net"), (8, 8, 1), 10, Path.cwd())
    assert caught.value is own
