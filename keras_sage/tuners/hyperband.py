"""TG-SAGE under Hyperband: P + α·TG decides, at every rung, which candidates train longer.

KerasTuner's `HyperbandOracle` (Li et al., 2018) runs brackets of successive halving: many candidates get
a few epochs, the best 1/`factor` of them by the objective continue to `factor` times as many, and so on
up to `max_epochs`. With `SageHyperband` the objective at every rung is the teacher-guided score, so TG
takes part in each promotion (the paper scores once, after a fixed premature budget; §5 leaves cheaper
fidelities for later). A promoted trial starts from the weights and optimizer state its parent trial
saved (KerasTuner's `tuner/trial_id`; KerasTuner's own `Hyperband` tuner restores the weights only) and
trains the epochs from `tuner/initial_epoch` to `tuner/epochs`; only those epochs count in
`search_cost()`.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import keras_tuner

from keras_sage._validation import check_positive_int
from keras_sage.score import DEFAULT_ALPHA
from keras_sage.teachers import TeacherStore
from keras_sage.tuners import _compat
from keras_sage.tuners.failures import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS
from keras_sage.tuners.sage_tuner import SCORE_OBJECTIVE, SageTuner

__all__ = ["SageHyperband"]


class SageHyperband(SageTuner):
    """Teacher-guided Hyperband: `SageTuner` with KerasTuner's `HyperbandOracle`, scored at every rung.

    Everything else is `SageTuner`'s (the teacher, α, the similarity and layer matching, `rerank`,
    `search_cost`, the project directory).

    Args:
        hypermodel: A `keras_tuner.HyperModel` (e.g. `CNNSearchSpace`).
        teacher: A `TeacherStore`, or the path of a teacher file.
        max_epochs: The most epochs a candidate trains (the last rung), as `HyperbandOracle`'s.
        factor: The reduction factor between rungs (3, as in the Hyperband paper and KerasTuner).
        hyperband_iterations: How many times the whole set of brackets runs.
        alpha: α, the weight of TG in the score at every rung.
        seed: Seed of the oracle and of each trial's initialization.
        max_consecutive_failed_trials: Failed trials in a row that stop the search.
        **kwargs: `SageTuner`'s other arguments (`directory`, `project_name`, `similarity`, ...).

    Example:

    ```python
    tuner = SageHyperband(CNNSearchSpace(num_classes=10, input_shape=(32, 32, 3)), teacher="teacher.h5",
                          max_epochs=9, factor=3, alpha=1.0, directory="searches", project_name="hb")
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), batch_size=64)
    tuner.search_cost()  # examples processed over all rungs
    ```
    """

    def __init__(
        self,
        hypermodel: keras_tuner.HyperModel,
        teacher: TeacherStore | str | os.PathLike[str],
        max_epochs: int,
        factor: int = 3,
        hyperband_iterations: int = 1,
        alpha: float = DEFAULT_ALPHA,
        seed: int | None = None,
        max_consecutive_failed_trials: int = DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
        **kwargs: Any,
    ) -> None:
        for name in ("oracle", "premature_epochs", "premature_steps"):
            if name in kwargs:
                raise TypeError(f"SageHyperband sets {name} itself (from max_epochs and factor)")
        if "objective" in kwargs:
            raise TypeError(
                "SageHyperband promotes the best of each rung by one number, the score P + α·TG, so it takes "
                "no objective; for a Pareto search use TPEOracle(objective=[...]) with SageTuner"
            )
        max_epochs = check_positive_int("max_epochs", max_epochs)
        if check_positive_int("factor", factor) < 2:
            raise ValueError(f"factor must be at least 2, got {factor!r}.")
        oracle = keras_tuner.oracles.HyperbandOracle(
            objective=SCORE_OBJECTIVE,
            max_epochs=max_epochs,
            factor=factor,
            hyperband_iterations=check_positive_int("hyperband_iterations", hyperband_iterations),
            seed=seed,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        _compat.keep_oracle_seed(oracle, seed)
        super().__init__(
            hypermodel, teacher, alpha=alpha, premature_epochs=max_epochs, oracle=oracle, seed=seed, **kwargs
        )

    def _premature_budget(self, trial: keras_tuner.engine.trial.Trial) -> tuple[int | None, int | None, int]:
        """The rung's epochs: from `tuner/initial_epoch` (0, or the parent's epochs) to `tuner/epochs`."""
        values = trial.hyperparameters.values
        return int(values["tuner/epochs"]), None, int(values["tuner/initial_epoch"])

    def _warm_start(self, trial: keras_tuner.engine.trial.Trial, model: keras.Model) -> None:
        """A promoted trial continues its parent trial (`tuner/trial_id`): the weights it was scored with
        and its optimizer's state (step count, momentum), so the rung's epochs continue its training."""
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent is None:
            return
        if model.optimizer is not None and not model.optimizer.built:
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        model.load_weights(_compat.checkpoint_path(self, str(parent)))
