"""TPE with the paper's hyperopt settings as a KerasTuner oracle (`TPEOracle`).

`TPEOracle` is `keras_sage.tuners.optuna_oracle.OptunaOracle` with an optuna `TPESampler` set up as the
paper's TPE search (hyperopt's TPE, supplement "Details of Search Algorithms"); see `OptunaOracle` for how
a KerasTuner space, failed trials and resuming map to optuna.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import keras_tuner
import numpy as np
import optuna

from keras_sage.tuners.optuna_oracle import OptunaOracle


def hyperopt_gamma(n_trials: int, gamma: float = 0.25, limit: int = 25) -> int:
    """The number of best trials that form l(x) in hyperopt's TPE: y* is the ⌈γ·√N⌉-th best loss.

    With the defaults this is optuna's `hyperopt_default_gamma`; the paper writes it y* = √N/4.

    Args:
        n_trials: N, the number of finished trials.
        gamma: γ.
        limit: Largest size of l(x) (hyperopt caps it at its linear-forgetting count, 25).

    Returns:
        The size of the "below" set.
    """
    return min(math.ceil(gamma * math.sqrt(n_trials)), limit)


def linear_forgetting_weights(n_trials: int, recent: int = 25) -> np.ndarray:
    """Hyperopt's linear forgetting: the newest `recent` trials weigh 1, older ones ramp down to 1/N.

    With the defaults this is optuna's `default_weights`.

    Args:
        n_trials: N, the number of trials in one density estimate, oldest first.
        recent: How many of the newest trials keep full weight.

    Returns:
        The weights, shape (N,), oldest first.
    """
    if n_trials <= recent:
        return np.ones(n_trials)
    ramp = np.linspace(1.0 / n_trials, 1.0, num=n_trials - recent)
    return np.concatenate([ramp, np.ones(recent)])


class TPEOracle(OptunaOracle):
    """Tree of Parzen Estimators with the paper's hyperopt settings, as a KerasTuner oracle.

    The defaults are the paper's (supplement, "Details of Search Algorithms"): 20 random start-up
    trials, 24 candidates drawn from l(x) per suggestion (n_d) of which the one with the lowest
    g(x)/l(x) is taken, y* at the ⌈γ·√N⌉-th best of N trials with γ = 0.25, linear forgetting of all but
    the newest 25 trials, and prior weight 1. Like hyperopt, each hyperparameter is modelled on its own
    (`multivariate=False`); optuna's multivariate TPE, and its `group` mode for conditional spaces,
    are one argument away.

    Args:
        objective: See `OptunaOracle`.
        max_trials: The number of trials to run at most.
        n_startup_trials: Random trials before TPE starts.
        n_ei_candidates: n_d, the draws from l(x) per suggestion.
        gamma: γ; l(x) models the best ⌈γ·√N⌉ trials (at most `recent_trials`).
        recent_trials: Trials that keep full weight under linear forgetting (hyperopt's 25).
        prior_weight: Weight of the prior in each Parzen estimator.
        multivariate: Model the hyperparameters jointly (optuna's multivariate TPE).
        group: With `multivariate`, model each group of hyperparameters that appear together
            separately, which suits conditional spaces.
        constant_liar: With parallel workers, treat running trials as bad ones so workers spread out.
            Changes nothing with one worker.
        hyperparameters, allow_new_entries, tune_new_entries, max_retries_per_trial,
            max_consecutive_failed_trials, failed_trials: See `OptunaOracle`.
        seed: Seeds the sampler and the oracle; the same seed gives the same trials.

    Example:

    ```python
    import keras_tuner
    from keras_sage.tuners import TPEOracle

    oracle = TPEOracle(objective=keras_tuner.Objective("score", "max"), max_trials=100, seed=1)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=search_space, directory="runs")
    ```
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int = 10,
        n_startup_trials: int = 20,
        n_ei_candidates: int = 24,
        gamma: float = 0.25,
        recent_trials: int = 25,
        prior_weight: float = 1.0,
        multivariate: bool = False,
        group: bool = False,
        constant_liar: bool = True,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        failed_trials: str = "infeasible",
    ):
        super().__init__(
            sampler=optuna.samplers.RandomSampler(),
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            failed_trials=failed_trials,
        )
        with warnings.catch_warnings():
            # Optuna 4.9 deprecated passing gamma, weights and prior_weight (they stay until 6.0);
            # they are what makes this hyperopt's TPE.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.sampler = optuna.samplers.TPESampler(
                n_startup_trials=n_startup_trials,
                n_ei_candidates=n_ei_candidates,
                gamma=functools.partial(hyperopt_gamma, gamma=gamma, limit=recent_trials),
                weights=functools.partial(linear_forgetting_weights, recent=recent_trials),
                prior_weight=prior_weight,
                multivariate=multivariate,
                group=group,
                constant_liar=constant_liar,
                seed=self.seed,
            )
