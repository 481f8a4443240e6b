"""The registry: Keras 3 layer classes tf_keras rebuilds exactly, and the translation of their configs.

Activations, dtype policies and serialized objects (initializers, regularizers, constraints) are
translated here; anything tf_keras would compute differently is refused (`UnbridgeableLayer`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.models.tf import load


class UnbridgeableLayer(ModelError):
    """A Keras 3 layer that edgepack cannot rebuild exactly in tf_keras."""

    code = "keras3-unbridgeable"

    def __init__(
        self, layer: str, layer_class: str, reason: str, *, context: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(
            f"layer '{layer}' ({layer_class}) cannot be rebuilt in tf_keras: {reason}", context=context, hint=hint
        )
        self.layer = layer
        self.layer_class = layer_class
        self.reason = reason


@dataclass(frozen=True)
class Rule:
    """How one Keras 3 layer class becomes its tf_keras twin.

    `keras3_only` maps the arguments tf_keras lacks to the value at which dropping them is exact
    (any other value is refused); `rename` maps Keras 3 argument names to tf_keras ones; `drop`
    lists arguments tf_keras lacks that do not change the maths (random seeds of dropout masks).
    """

    keras3_only: Mapping[str, Any] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


_LORA_AND_QUANT = {"lora_rank": None, "lora_alpha": None, "quantization_config": None}

RULES: dict[str, Rule] = {
    **{
        name: Rule()
        for name in (
            "Conv1D",
            "Conv2D",
            "DepthwiseConv2D",
            "SeparableConv2D",
            "Conv2DTranspose",
            "ReLU",
            "PReLU",
            "ELU",
            "Softmax",
            "Activation",
            "MaxPooling1D",
            "MaxPooling2D",
            "AveragePooling1D",
            "AveragePooling2D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalMaxPooling1D",
            "GlobalMaxPooling2D",
            "Add",
            "Subtract",
            "Multiply",
            "Average",
            "Maximum",
            "Minimum",
            "Concatenate",
            "Reshape",
            "Flatten",
            "Permute",
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "GaussianNoise",
            "ZeroPadding2D",
            "Cropping1D",
            "Cropping2D",
            "UpSampling1D",
            "UpSampling2D",
            "Rescaling",
            "Normalization",
            "Identity",
        )
    },
    "Dense": Rule(keras3_only=_LORA_AND_QUANT),
    "Embedding": Rule(keras3_only=_LORA_AND_QUANT),
    "BatchNormalization": Rule(
        keras3_only={"synchronized": False, "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99}
    ),
    "LayerNormalization": Rule(keras3_only={"rms_scaling": False}),
    "LeakyReLU": Rule(rename={"negative_slope": "alpha"}),
    "ZeroPadding1D": Rule(keras3_only={"data_format": "channels_last"}),
    "LSTM": Rule(drop=("seed",)),
    "GRU": Rule(drop=("seed",)),
}

# Keras 3 activation names whose tf_keras function is the same maths (checked numerically).
SAME_ACTIVATIONS = frozenset(
    {
        "elu",
        "exponential",
        "gelu",
        "leaky_relu",
        "linear",
        "log_softmax",
        "mish",
        "relu",
        "relu6",
        "selu",
        "sigmoid",
        "softmax",
        "softplus",
        "softsign",
        "swish",
        "tanh",
    }
)
RENAMED_ACTIVATIONS = {"silu": "swish"}
DIFFERENT_ACTIVATIONS = {
    "hard_sigmoid": "Keras 3's hard_sigmoid is relu6(x + 3) / 6, tf_keras's is clip(0.2 x + 0.5, 0, 1)",
    "hard_silu": "tf_keras has no hard_silu (x * relu6(x + 3) / 6)",
    "hard_swish": "tf_keras has no hard_swish (x * relu6(x + 3) / 6)",
}
ACTIVATION_KEYS = ("activation", "recurrent_activation")
DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
INPUT_DTYPES = ("float32", "int32", "int64")
# Keras 3 serialized-object classes renamed in tf_keras, and config keys tf_keras lacks (-> exact default).
RENAMED_OBJECTS = {"IdentityInitializer": "Identity"}
KERAS3_OBJECT_KEYS = {"input_axes": None, "output_axes": None}
MODEL_CLASSES = ("Sequential", "Functional")


def _refuse(entry: Mapping[str, Any], reason: str, where: str, hint: str | None = None) -> UnbridgeableLayer:
    given = entry.get("config")
    config: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    name = str(entry.get("name") or config.get("name") or "?")
    return UnbridgeableLayer(name, str(entry.get("class_name", "?")), reason, context=where, hint=hint)


def _activation(value: Any, key: str, entry: Mapping[str, Any], where: str) -> str:
    if isinstance(value, Mapping) and value.get("module") == "keras.activations":
        value = value.get("config")  # a built-in function serialized as an object: its name
    if not isinstance(value, str):
        raise _refuse(
            entry,
            f"{key} is a custom function ({_short(value)})",
            where,
            hint="use a built-in activation name, or a separate built-in activation layer",
        )
    if value in SAME_ACTIVATIONS:
        return value
    if value in RENAMED_ACTIVATIONS:
        return RENAMED_ACTIVATIONS[value]
    reason = DIFFERENT_ACTIVATIONS.get(value, f"tf_keras has no activation '{value}'")
    known = ", ".join(sorted(SAME_ACTIVATIONS | set(RENAMED_ACTIVATIONS)))
    raise _refuse(
        entry, f"{key}='{value}': {reason}", where, hint=f"activations tf_keras computes the same way: {known}"
    )


def _dtype(value: Any, entry: Mapping[str, Any], where: str) -> str:
    name = value if isinstance(value, str) else None
    if isinstance(value, Mapping) and value.get("class_name") in DTYPE_POLICIES:
        name = (value.get("config") or {}).get("name")
    if name != "float32":
        raise _refuse(
            entry,
            f"dtype policy {_policy_name(value)}: edgepack bridges float32 models only "
            "(no mixed precision, no Keras 3 quantized layers)",
            where,
            hint="rebuild or reload the model with the default float32 policy before bridging",
        )
    return "float32"


def _policy_name(value: Any) -> str:
    if not isinstance(value, Mapping):
        return repr(value)
    config = value.get("config") or {}
    if "mode" in config:
        return f"{value.get('class_name')}(mode={config['mode']!r})"
    return repr(config.get("name", value.get("class_name")))


def _object(value: Any, key: str, entry: Mapping[str, Any], where: str) -> Any:
    """An initializer, regularizer or constraint in the form tf_keras deserializes, refused if tf_keras lacks it."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or "class_name" not in value:
        raise _refuse(entry, f"{key} = {_short(value)} is not a serialized Keras object", where)
    registered = value.get("registered_name")
    if registered not in (None, value["class_name"]) or not str(value.get("module") or "").startswith("keras"):
        raise _refuse(
            entry,
            f"{key} is a custom {value['class_name']} ({registered or value.get('module')})",
            where,
            hint="use a built-in initializer, regularizer or constraint",
        )
    config = dict(value.get("config") or {})
    for extra, default in KERAS3_OBJECT_KEYS.items():
        if extra in config:
            if config[extra] != default:
                raise _refuse(entry, f"{key} {value['class_name']}({extra}={config[extra]!r}) is Keras 3 only", where)
            del config[extra]
    translated = {"class_name": RENAMED_OBJECTS.get(value["class_name"], value["class_name"]), "config": config}
    _check_object(translated, key, entry, where)
    return translated


def _check_object(translated: dict[str, Any], key: str, entry: Mapping[str, Any], where: str) -> None:
    tk = load().keras
    kind = next((k for k in ("initializer", "regularizer", "constraint") if key.endswith(k)), None)
    modules = {"initializer": tk.initializers, "regularizer": tk.regularizers, "constraint": tk.constraints}
    module = modules.get(kind) if kind is not None else None
    name = translated["class_name"]
    if module is None:
        raise _refuse(entry, f"argument {key} holds an object ({name}) edgepack does not translate", where)
    try:
        obj = module.deserialize(translated)
    except (ValueError, TypeError) as exc:
        raise _refuse(entry, f"{key} {name}: tf_keras cannot rebuild it ({_line(exc)})", where) from exc
    kept = obj.get_config() if hasattr(obj, "get_config") else {}
    lost = [k for k, v in translated["config"].items() if k not in kept or not _same(v, kept[k])]
    if lost:
        raise _refuse(entry, f"{key} {name}: tf_keras does not keep {', '.join(lost)}", where)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (Mapping, list)) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _same(a: Any, b: Any) -> bool:
    """Loose equality of config values: tuples equal lists, floats equal up to float32 rounding."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if "class_name" in a and "class_name" in b:
            return a["class_name"] == b["class_name"] and _same(a.get("config") or {}, b.get("config") or {})
        return all(k in b and _same(v, b[k]) for k, v in a.items())
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _same(np.asarray(a).tolist(), np.asarray(b).tolist())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def _layer_config(entry: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """The tf_keras class name and config of a registry layer, or UnbridgeableLayer."""
    class_name = str(entry.get("class_name"))
    rule = _rule(entry, where)
    config: dict[str, Any] = {}
    for key, value in dict(entry.get("config") or {}).items():
        if key in rule.drop:
            continue
        if key in rule.keras3_only:
            if not _same(value, rule.keras3_only[key]):
                raise _refuse(
                    entry,
                    f"argument {key}={value!r} is Keras 3 only (tf_keras's {class_name} has no "
                    f"such argument; only {rule.keras3_only[key]!r} is exact)",
                    where,
                    hint=f"rebuild the layer with {key}={rule.keras3_only[key]!r} if that is acceptable",
                )
            continue
        if key == "dtype":
            value = _dtype(value, entry, where)
        elif key in ACTIVATION_KEYS:
            value = _activation(value, key, entry, where)
        elif key.endswith(("_initializer", "_regularizer", "_constraint")):
            value = _object(value, key, entry, where)
        config[rule.rename.get(key, key)] = value
    return class_name, config


def _rule(entry: Mapping[str, Any], where: str) -> Rule:
    class_name = str(entry.get("class_name"))
    if class_name == "Lambda":
        raise _refuse(
            entry,
            "a Lambda layer holds Python code, which a config cannot carry to tf_keras",
            where,
            hint="replace the Lambda by built-in layers",
        )
    module = entry.get("module")
    if str(module).startswith("keras.src.ops"):
        raise _refuse(
            entry,
            f"a keras.ops operation ({module}.{class_name}) in the functional graph has no tf_keras layer",
            where,
            hint="use keras.layers layers (keras.layers.Add, Multiply, Reshape, ...) instead of keras.ops",
        )
    if module != "keras.layers" or entry.get("registered_name") not in (None, class_name):
        raise _refuse(
            entry,
            f"a custom layer ({entry.get('registered_name') or module}) is not in edgepack's registry",
            where,
            hint="build the model from built-in layers, or build it in tf_keras directly",
        )
    if class_name not in RULES:
        raise _refuse(
            entry,
            f"{class_name} is not in edgepack's Keras 3 registry",
            where,
            hint=f"layers edgepack bridges: InputLayer, {', '.join(sorted(RULES))}",
        )
    return RULES[class_name]


def _make_layer(entry: Mapping[str, Any], where: str) -> Any:
    """A tf_keras layer built from the translated config, checked to keep every argument."""
    class_name, config = _layer_config(entry, where)
    tk = load().keras
    try:
        layer = getattr(tk.layers, class_name).from_config(dict(config))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _refuse(entry, f"tf_keras refused its config ({_line(exc)})", where) from exc
    reported = layer.get_config()
    missing = object()
    for key, value in config.items():
        kept = reported.get(key, getattr(layer, key, missing))
        if kept is missing or not _same(value, kept):
            raise _refuse(
                entry,
                f"tf_keras's {class_name} does not keep argument {key}={_short(value)} "
                f"(it has {_short(kept) if kept is not missing else 'no such argument'})",
                where,
            )
    return layer


def _input_config(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`tf_keras.Input` arguments for a Keras 3 InputLayer."""
    config = dict(entry.get("config") or {})
    allowed = {"batch_shape", "batch_input_shape", "dtype", "sparse", "ragged", "name", "optional"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise _refuse(entry, f"argument {unknown[0]}={config[unknown[0]]!r} is Keras 3 only", where)
    for key in ("sparse", "ragged", "optional"):
        if config.get(key):
            raise _refuse(entry, f"argument {key}=True: edgepack bridges dense, required inputs only", where)
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, Mapping):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype not in INPUT_DTYPES:
        raise _refuse(entry, f"input dtype {dtype!r}: edgepack bridges {', '.join(INPUT_DTYPES)} inputs only", where)
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None:
        raise _refuse(entry, "the input has no batch_shape", where)
    return {"batch_shape": tuple(shape), "dtype": dtype, "name": config.get("name", entry.get("name"))}
