"""One trainer for every candidate keras-sage trains.

A search trial's premature training, `rerank`'s longer training, a teacher schedule's mature training and
a pool's architectures all train a candidate the same way, here: `fit_candidate` runs one `fit` for a
number of epochs or of SGD steps, counts the examples SGD processed (the paper's cost, §4.3), stops at the
first NaN or infinite loss (a diverged candidate, which the caller reports as failed), and may call back
at given steps (a pool scores its architectures at several budgets of one training). `CandidateTrainer`
does it for a tuner's trials: each rebuilt and seeded as its trial was, with the tuner's callbacks and its
hypermodel's `fit`.

Example:

```python
run = fit_candidate(model, (x_train, y_train), {"batch_size": 64}, steps=100)
run.examples, run.diverged_at_step
```
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner
import numpy as np

from keras_sage import contract
from keras_sage.model_size import count_flops
from keras_sage.objective import premature_accuracy
from keras_sage.tuners import _compat

__all__ = [
    "CandidateTrainer",
    "MatureTraining",
    "TrainingData",
    "TrainingMonitor",
    "TrainingRun",
    "first_batch",
    "fit_candidate",
    "size_metrics",
]

# Keras's batch size when `fit` is given arrays without one.
DEFAULT_BATCH_SIZE = 32


class TrainingMonitor(keras.callbacks.Callback):
    """Counts the examples a fit processes, stops it after `max_steps` or at a NaN loss, and calls
    `on_step(steps)` after each of `at_steps`.

    Args:
        batch_sizes: The size of batch k of an epoch.
        max_steps: Stop after this many SGD steps (None: the epochs decide).
        at_steps: Steps after which `on_step` is called, e.g. a pool's budgets.
        on_step: Called with the number of steps done.
    """

    def __init__(
        self,
        batch_sizes: Callable[[int], int],
        max_steps: int | None = None,
        at_steps: Sequence[int] = (),
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.batch_sizes = batch_sizes
        self.max_steps = max_steps
        self.at_steps = sorted(at_steps)
        self.on_step = on_step
        self.steps = 0
        self.examples = 0
        self.diverged_at_step: int | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps += 1
        self.examples += self.batch_sizes(batch)
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at_step = self.steps
            self.model.stop_training = True
            return
        while self.at_steps and self.steps >= self.at_steps[0]:
            self.at_steps.pop(0)
            if self.on_step is not None:
                self.on_step(self.steps)
        if self.max_steps is not None and self.steps >= self.max_steps:
            self.model.stop_training = True


@dataclass(frozen=True)
class TrainingRun:
    """What one training of a candidate did.

    Attributes:
        steps: SGD steps taken.
        examples: Examples SGD processed.
        diverged_at_step: The step whose loss was NaN or infinite, or None.
    """

    steps: int
    examples: int
    diverged_at_step: int | None

    @property
    def diverged(self) -> bool:
        """Whether the loss became NaN or infinite (the training stopped there)."""
        return self.diverged_at_step is not None

    def failure(self) -> str:
        """The one-line reason of a diverged training."""
        return f"training diverged: the loss became NaN or infinite at step {self.diverged_at_step}"


def fit_candidate(
    model: keras.Model,
    fit_args: Sequence[Any],
    fit_kwargs: Mapping[str, Any],
    *,
    epochs: int | None = None,
    steps: int | None = None,
    initial_epoch: int = 0,
    fit: Callable[..., Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    at_steps: Sequence[int] = (),
    on_step: Callable[[int], None] | None = None,
) -> TrainingRun:
    """Trains a compiled candidate for `epochs` epochs or `steps` SGD steps.

    Args:
        model: The compiled model.
        fit_args: Training data as for `keras.Model.fit` (`x, y`, or a dataset of batches).
        fit_kwargs: Further `fit` arguments (`batch_size`, `callbacks`, ...); not modified.
        epochs: Epochs to train (up to, from `initial_epoch`, Keras's meaning).
        steps: SGD steps to train, instead of epochs.
        initial_epoch: The epoch training starts from (a continued candidate).
        fit: The fit to call with `model`'s data (default `model.fit`); a tuner passes its hypermodel's.
        callbacks: Callbacks besides those of `fit_kwargs`.
        at_steps: Steps after which `on_step` is called.
        on_step: Called with the steps done, after each of `at_steps`.

    Returns:
        A `TrainingRun`.
    """
    fit_kwargs = dict(fit_kwargs)
    training_data = fit_args[0] if fit_args else fit_kwargs.get("x")
    batch_size = fit_kwargs.get("batch_size") or DEFAULT_BATCH_SIZE
    batches_per_epoch, batch_sizes = _training_batches(training_data, batch_size)
    if steps is not None:
        epochs = 1 if batches_per_epoch is None else math.ceil(steps / batches_per_epoch)
        if batches_per_epoch is None:
            fit_kwargs["steps_per_epoch"] = steps
    monitor = TrainingMonitor(batch_sizes, max_steps=steps, at_steps=at_steps, on_step=on_step)
    fit_kwargs.setdefault("verbose", 0)
    if _is_dataset(training_data):
        # A dataset shuffles itself; Keras ignores `shuffle` for it but warns at its default of True.
        fit_kwargs.setdefault("shuffle", False)
    _build_training_state(model, training_data, fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y"))
    all_callbacks = [*fit_kwargs.pop("callbacks", []), *callbacks, monitor]
    (fit or model.fit)(
        *fit_args, epochs=epochs, initial_epoch=initial_epoch, callbacks=all_callbacks, **fit_kwargs
    )
    return TrainingRun(
        steps=monitor.steps, examples=monitor.examples, diverged_at_step=monitor.diverged_at_step
    )


def size_metrics(model: keras.Model) -> dict[str, float]:
    """The candidate's parameter count and, where its input size is fixed, its FLOPs (`count_flops`)."""
    size = {contract.PARAMS: float(model.count_params())}
    with contextlib.suppress(ValueError):
        size[contract.FLOPS] = float(count_flops(model))
    return size


@dataclass(frozen=True)
class TrainingData:
    """What a search trains and validates its candidates on, as `search` was given it.

    Attributes:
        fit_args: Training data as for `fit` (e.g. `x, y`).
        fit_kwargs: Further `fit` arguments (`batch_size`, `callbacks`, ...), `validation_data` excluded.
        validation_data: `(x_val, y_val)` or a dataset, for P and mature accuracies.
    """

    fit_args: tuple[Any, ...]
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
    validation_data: Any = None

    @property
    def batch_size(self) -> int | None:
        """The batch size `search` was given, if any."""
        value = self.fit_kwargs.get("batch_size")
        return None if value is None else int(value)


def first_batch(data: TrainingData, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` training images and labels (of arrays, or of a dataset's first batch)."""
    x: Any = data.fit_args[0] if data.fit_args else data.fit_kwargs.get("x")
    y: Any = data.fit_args[1] if len(data.fit_args) > 1 else data.fit_kwargs.get("y")
    if _is_dataset(x):
        x, y = next(iter(x))[:2]
    return np.asarray(x[:size]), np.asarray(y[:size])


@dataclass(frozen=True)
class MatureTraining:
    """A candidate trained to maturity.

    Attributes:
        model: The trained model.
        accuracy: Its validation accuracy, NaN if its training diverged.
        examples: Examples SGD processed (E2 of the paper's cost).
    """

    model: keras.Model
    accuracy: float
    examples: int


class CandidateTrainer:
    """Trains a tuner's candidates: its trials' premature training and their longer training after it.

    Args:
        tuner: The `keras_tuner.Tuner` whose hypermodel builds and fits the candidates, whose callbacks
            (those `search` was given, TensorBoard's, and KerasTuner's hooks `on_epoch_*`/`on_batch_*`) each
            training gets, as `keras_tuner.Tuner.run_trial` gives them.
        trial_seed: The seed of a trial by its id (weights and data order), so that a candidate rebuilt for
            longer training starts as its trial did.
    """

    def __init__(self, tuner: keras_tuner.Tuner, trial_seed: Callable[[str], int]) -> None:
        self.tuner = tuner
        self.trial_seed = trial_seed

    def fit(
        self,
        trial: keras_tuner.engine.trial.Trial,
        model: keras.Model,
        data: TrainingData,
        epochs: int | None = None,
        steps: int | None = None,
        initial_epoch: int = 0,
    ) -> TrainingRun:
        """Trains a trial's candidate with the tuner's callbacks and its hypermodel's `fit`."""
        fit_kwargs = dict(data.fit_kwargs)
        callbacks = _compat.copy_callbacks(self.tuner, fit_kwargs.pop("callbacks", []))
        _compat.configure_tensorboard(self.tuner, callbacks, trial)
        return fit_candidate(
            model,
            data.fit_args,
            fit_kwargs,
            epochs=epochs,
            steps=steps,
            initial_epoch=initial_epoch,
            fit=functools.partial(self.tuner.hypermodel.fit, trial.hyperparameters, model),
            callbacks=[*callbacks, _compat.tuner_callback(self.tuner, trial)],
        )

    def train_to_maturity(
        self, trial: keras_tuner.engine.trial.Trial, epochs: int, data: TrainingData
    ) -> MatureTraining:
        """Rebuilds a trial's candidate (seeded as its trial was) and trains it from scratch for `epochs`.

        Returns:
            The model, its validation accuracy (NaN if its training diverged) and the examples processed.
        """
        keras.utils.set_random_seed(self.trial_seed(trial.trial_id))
        model = _compat.build_model(self.tuner, trial.hyperparameters)
        run = self.fit(trial, model, data, epochs=epochs)
        accuracy = (
            math.nan
            if run.diverged
            else premature_accuracy(model, data.validation_data, batch_size=data.batch_size)
        )
        return MatureTraining(model=model, accuracy=accuracy, examples=run.examples)


def _is_dataset(data: Any) -> bool:
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset)


def _build_training_state(model: keras.Model, x: Any, y: Any) -> None:
    """Creates the optimizer's, loss's and compiled metrics' variables before `fit` traces its training step.

    Without a distribution strategy Keras creates them while tracing the training step and then traces
    it a second time; building them first, from the shapes of the training data, as Keras itself does
    under a strategy, halves the first step of a large candidate (a random 8-cell network: from 40 s to
    18-22 s on 2 CPU cores). Data other than arrays or a `tf.data.Dataset` is left to Keras.
    """
    if _is_dataset(x):
        data_batch = x.element_spec
    elif hasattr(x, "shape") and hasattr(y, "shape"):
        data_batch = (x[:1], y[:1])
    else:
        return
    with model.distribute_strategy.scope():
        _compat.symbolic_build(model, data_batch)


def _training_batches(training_data: Any, batch_size: int) -> tuple[int | None, Callable[[int], int]]:
    """The number of batches per epoch (if known) and the size of batch k of an epoch.

    Exact for arrays; for a `tf.data.Dataset` of batches, every batch counts as the size of the first.
    """
    if hasattr(training_data, "shape") or isinstance(training_data, (list, tuple, dict)):
        first = training_data
        while isinstance(first, (list, tuple, dict)):
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        n_examples = int(first.shape[0])

        def array_batch_size(batch: int) -> int:
            return max(0, min(batch_size, n_examples - batch * batch_size))

        return math.ceil(n_examples / batch_size), array_batch_size
    if _is_dataset(training_data):
        import tensorflow as tf

        first_batch = next(iter(training_data))
        dataset_batch_size = int(tf.nest.flatten(first_batch)[0].shape[0])
        cardinality = int(training_data.cardinality())
        return (cardinality if cardinality > 0 else None), lambda batch: dataset_batch_size
    raise TypeError(
        f"keras-sage trains on arrays or a tf.data.Dataset of batches; got {type(training_data).__name__}"
    )
