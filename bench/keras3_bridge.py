"""What the Keras 3 bridge costs on a MobileNetV2-sized model, next to what training it costs.

A Keras 3 `keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=1.0, weights=None,
classes=10)` (nothing downloaded) is saved as `.keras` in a temporary folder. Then, in this one
process, each step is timed on its first (cold) call and as the median of N calls after it:

- `load_keras3`: Keras 3 loads the `.keras` file (what a saved Keras 3 model costs before the bridge);
- `bridge`: the model rebuilt in tf_keras from its config, every weight copied;
- `prove_bridge`: both models run on 256 random inputs, every output compared (max abs diff printed).

Next to them, the train stage's cost on the same model: one epoch of `fit` on 256 random 96x96x3
samples (batch 32, Adam, sparse categorical cross-entropy), in tf_keras (the bridged model) and in
Keras 3 (the original); the first call includes compiling and tracing the train step. The table
gives each step's time as a share of one warm tf_keras epoch. It is printed and written to
`bench/results/keras3_bridge.md`.

    python bench/keras3_bridge.py              # 3 calls per step after the cold one
    python bench/keras3_bridge.py --repeats 1  # a quick check
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.keras is tf_keras; `import keras` stays Keras 3
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from pipeline import machine, write_report  # noqa: E402  (bench/pipeline.py)

from edgepack.models.keras3 import bridge, load_keras3, prove_bridge  # noqa: E402
from edgepack.models.tf import load  # noqa: E402

RESULTS = BENCH / "results" / "keras3_bridge.md"
INPUT_SHAPE = (96, 96, 3)
CLASSES = 10
SAMPLES = 256
BATCH_SIZE = 32


@dataclass(frozen=True)
class Timing:
    """One step: its first call's seconds and the seconds of each later call."""

    step: str
    what: str
    first: float
    later: list[float]

    @property
    def median(self) -> float:
        """The median of the calls after the first."""
        return statistics.median(self.later)


def time_step(step: str, what: str, call: Callable[[], Any], repeats: int) -> tuple[Timing, Any]:
    """Time `call` once cold, then `repeats` times; the timing and the last call's result."""
    times, result = [], None
    for _ in range(repeats + 1):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    print(
        f"  {step:<24} first {times[0]:7.3f} s  median {statistics.median(times[1:]):7.3f} s",
        file=sys.stderr,
        flush=True,
    )
    return Timing(step, what, times[0], times[1:]), result


def keras3_mobilenet(folder: Path) -> tuple[Path, int]:
    """Build the Keras 3 MobileNetV2 (random weights) and save it as `.keras`; the file and its parameter count."""
    load()  # TensorFlow first, with tf_keras selected; then Keras 3
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=INPUT_SHAPE, alpha=1.0, weights=None, classes=CLASSES)
    path = folder / "mobilenetv2.keras"
    model.save(path)
    return path, int(model.count_params())


def random_data() -> tuple[np.ndarray, np.ndarray]:
    """256 random images and labels."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, *INPUT_SHAPE)).astype(np.float32)
    return x, rng.integers(0, CLASSES, size=SAMPLES).astype(np.int64)


def fit_once(model: Any, keras: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    """A call that trains `model` for one epoch (compiled here, once, with the library's own Adam)."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy())
    return lambda: model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, shuffle=True, verbose=0)


def measure(repeats: int) -> tuple[list[Timing], dict[str, Any]]:
    """Every timing, and the facts of the model (parameters, file size, the proof's max abs diff)."""
    import keras

    tf_keras = load().keras
    x, y = random_data()
    with tempfile.TemporaryDirectory(prefix="bench-keras3-") as tmp:
        path, params = keras3_mobilenet(Path(tmp))
        facts: dict[str, Any] = {"params": params, "file_bytes": path.stat().st_size}
        load_t, k3 = time_step(
            "load_keras3", "Keras 3 loads the `.keras` file", lambda: load_keras3(path, "bench"), repeats
        )
    bridge_t, bridged = time_step("bridge", "rebuild in tf_keras + copy every weight", lambda: bridge(k3), repeats)
    prove_t, proof = time_step(
        "prove_bridge",
        f"both models on {SAMPLES} inputs, outputs compared",
        lambda: prove_bridge(k3, bridged, x),
        repeats,
    )
    facts["max_abs_diff"], facts["tolerance"] = proof.max_abs_diff, proof.tolerance
    print(f"  max abs diff {proof.max_abs_diff:.3g} (tolerance {proof.tolerance:g})", file=sys.stderr, flush=True)
    fit_tk, _ = time_step(
        "fit tf_keras (1 epoch)",
        f"`fit`, {SAMPLES} samples, batch {BATCH_SIZE}, bridged model",
        fit_once(bridged, tf_keras, x, y),
        repeats,
    )
    fit_k3, _ = time_step(
        "fit Keras 3 (1 epoch)",
        f"`fit`, {SAMPLES} samples, batch {BATCH_SIZE}, Keras 3 model",
        fit_once(k3, keras, x, y),
        repeats,
    )
    facts["keras"] = keras.__version__
    return [load_t, bridge_t, prove_t, fit_tk, fit_k3], facts


def share(seconds: float, epoch: float) -> str:
    """`seconds` as a percentage of one warm tf_keras epoch."""
    return f"{100 * seconds / epoch:.1f} %"


def report(timings: list[Timing], facts: dict[str, Any], repeats: int) -> str:
    """The markdown report: machine, the model, one row per step, the bridge's total against training."""
    epoch = next(t for t in timings if t.step.startswith("fit tf_keras")).median
    by_step = {t.step: t for t in timings}
    bridged = by_step["bridge"].median + by_step["prove_bridge"].median
    cold = by_step["bridge"].first + by_step["prove_bridge"].first
    lines = [
        "# The Keras 3 bridge on MobileNetV2 (alpha 1.0, 96x96x3, 10 classes) against one epoch of training",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/keras3_bridge.py --repeats {repeats}`: "
        f"in one process, each step's first (cold) call and the median of the {repeats} call(s) after it.",
        "",
        *(f"- {key}: {value}" for key, value in {**machine(), "keras": facts["keras"]}.items()),
        "",
        f"Model: {facts['params']:,} parameters, `.keras` file {facts['file_bytes'] / 1e6:.2f} MB, random weights "
        f"(`weights=None`). Bridge proof: max abs diff {facts['max_abs_diff']:.3g} over {SAMPLES} random inputs "
        f"(tolerance {facts['tolerance']:g}).",
        "",
        "| step | what | first call (s) | median (s) | median vs one tf_keras epoch |",
        "|---|---|---:|---:|---:|",
        *(f"| {t.step} | {t.what} | {t.first:.3f} | {t.median:.3f} | {share(t.median, epoch)} |" for t in timings),
        "",
        f"**bridge + prove_bridge: {bridged:.3f} s warm ({share(bridged, epoch)} of one warm tf_keras epoch on "
        f"{SAMPLES} samples), {cold:.3f} s on the first call.** A built Keras 3 model (a recipe builder) pays "
        "bridge + prove; a saved `.keras` file adds load_keras3.",
        "",
        "Calls (seconds, first one first):",
        "",
        *(f"- {t.step}: {', '.join(f'{s:.3f}' for s in [t.first, *t.later])}" for t in timings),
    ]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per step after the cold one (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown report")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main() -> None:
    """Measure, print the report and write it."""
    args = parse_args()
    timings, facts = measure(args.repeats)
    text = report(timings, facts, args.repeats)
    print(text)
    write_report(text, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
