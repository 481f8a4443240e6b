"""Knowledge distillation: a teacher's softened outputs teach a smaller student.

TFMOT has no distillation API; a small `Distiller` model does it:
loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)).
Models that end in a softmax are handled through log-probabilities, which give the same softened
distribution as the logits. With `compare_scratch`, the same student (same initial weights, same
epochs, batch size and learning rate) is also trained from the labels alone, so the report says
what distillation changed, honestly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepack.datasets import Dataset
from edgepack.models.origins import recipe_source
from edgepack.models.source import count_params
from edgepack.models.tf import load, seed_everything
from edgepack.optimize.loop import accuracy, fit, make_optimizer
from edgepack.progress import Reporter
from edgepack.recipe.optimize import DistillStage
from edgepack.tasks.classification import outputs_probabilities


def distill(
    trained: Any, stage: DistillStage, data: Dataset, reporter: Reporter, label: str, base_dir: Path, seed: int
) -> tuple[Any, dict[str, Any]]:
    """Train the stage's student against the teacher; returns the student and the comparison."""
    teacher = trained if stage.teacher_path is None else _load_teacher(stage.teacher_path, base_dir, data)
    seed_everything(seed)
    from edgepack import tasks

    where = f"{label.split()[0]}.student"  # optimize[N].student
    student = recipe_source(stage.student, base_dir, where).load(data, tasks.get(data.task), optimizable=True).model
    initial = student.get_weights()
    distiller = _distiller(teacher, student, stage)
    distiller.compile(optimizer=make_optimizer(stage))
    metrics = fit(distiller, data, stage, reporter, f"{label} (distilled)", compiled=True)
    teacher_params, student_params = count_params(teacher), count_params(student)
    record: dict[str, Any] = {
        **metrics,
        "teacher": stage.teacher_path or "trained",
        "teacher_params": teacher_params,
        "teacher_accuracy": accuracy(teacher, data.x_test, data.y_test, reporter, f"{label}: teacher"),
        "student_params": student_params,
        "param_ratio": round(student_params / teacher_params, 4),
        "temperature": stage.temperature,
        "alpha": stage.alpha,
    }
    if stage.compare_scratch:
        record["scratch_accuracy"] = _scratch_accuracy(student, initial, stage, data, reporter, label, seed)
    return student, record


def _load_teacher(path: str, base_dir: Path, data: Dataset) -> Any:
    """The teacher file, tf_keras or Keras 3 (bridged: it runs inside the tf_keras distiller)."""
    from edgepack import tasks
    from edgepack.models.origins import SavedSource
    from edgepack.recipe.model import SavedModel

    source = SavedSource(SavedModel(kind="saved", path=path), base_dir, field="optimize distill.teacher_path")
    return source.load(data, tasks.get(data.task), optimizable=True).model


def _scratch_accuracy(
    student: Any, initial: list[Any], stage: DistillStage, data: Dataset, reporter: Reporter, label: str, seed: int
) -> float:
    """Test accuracy of the same student, from the same initial weights, trained on labels only."""
    keras = load().keras
    scratch = keras.models.clone_model(student)
    scratch.set_weights(initial)
    seed_everything(seed)
    fit(scratch, data, stage, reporter, f"{label} (from scratch)")
    return accuracy(scratch, data.x_test, data.y_test, reporter, f"{label}: evaluate from scratch")


def _distiller(teacher: Any, student: Any, stage: DistillStage) -> Any:
    mods = load()
    tf, keras = mods.tf, mods.keras
    t, alpha = stage.temperature, stage.alpha
    teacher_probs, student_probs = outputs_probabilities(teacher), outputs_probabilities(student)
    hard_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    soft_loss = keras.losses.KLDivergence(reduction="none")

    def logits(outputs: Any, probabilities: bool) -> Any:
        return tf.math.log(tf.clip_by_value(outputs, 1e-7, 1.0)) if probabilities else outputs

    model_class: Any = keras.Model  # tf_keras' Model, known only at run time

    class Distiller(model_class):
        def __init__(self) -> None:
            super().__init__()
            self.student = student
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker, self.accuracy]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.student(x, training=training)

        def train_step(self, batch: Any) -> dict[str, Any]:
            x, y = batch
            soft_targets = tf.nn.softmax(logits(teacher(x, training=False), teacher_probs) / t)
            with tf.GradientTape() as tape:
                s = logits(self.student(x, training=True), student_probs)
                per_sample = alpha * hard_loss(y, s) + (1 - alpha) * t * t * soft_loss(
                    soft_targets, tf.nn.softmax(s / t)
                )
                loss = tf.nn.compute_average_loss(per_sample)
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            self.loss_tracker.update_state(tf.reduce_mean(per_sample))
            self.accuracy.update_state(y, s)
            return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy.result()}

    return Distiller()
