"""TPE with the paper's hyperopt settings as a KerasTuner oracle (`TPEOracle`).

`TPEOracle` is `keras_sage.tuners.oracles.optuna_oracle.OptunaOracle` with a TPE sampler set up as the
paper's TPE search (hyperopt's TPE, supplement "Details of Search Algorithms"); see `OptunaOracle` for
how a KerasTuner space, failed trials and resuming map to optuna. Its sampler, `SplitOnceTPESampler`, is
optuna's `TPESampler` with the same suggestions, made faster on long histories of large spaces.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import keras_tuner
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from keras_sage.tuners import _compat
from keras_sage.tuners.oracles.optuna_oracle import OptunaOracle


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


class FinishedTrialValues:
    """The finished trials of one study, as one array of internal values per parameter.

    Each array is indexed by trial number, NaN where the trial does not have the parameter (optuna's
    internal values are never NaN), and is filled once per trial: a finished trial never changes.

    Args:
        study: The study the trials come from.
    """

    def __init__(self, study: optuna.Study):
        self.study = study
        self._finished: list[FrozenTrial] = []
        self._numbers: set[int] = set()
        self._size = 0
        # (name, distribution) -> (values by trial number, how many of `_finished` they hold).
        self._columns: dict[tuple[str, BaseDistribution], tuple[np.ndarray, int]] = {}

    def add(self, trials: Sequence[FrozenTrial]) -> None:
        """Registers the finished trials among `trials` that are not registered yet."""
        for trial in trials:
            if trial.state.is_finished() and trial.number not in self._numbers:
                self._numbers.add(trial.number)
                self._finished.append(trial)
                self._size = max(self._size, trial.number + 1)

    def column(self, name: str, distribution: BaseDistribution) -> np.ndarray:
        """The internal values of `name` under `distribution`, by trial number (NaN where absent)."""
        values, filled = self._columns.get((name, distribution), (np.empty(0), 0))
        if filled < len(self._finished):
            if len(values) < self._size:
                grown = np.full(max(self._size, 2 * len(values)), np.nan)
                grown[: len(values)] = values
                values = grown
            for trial in self._finished[filled:]:
                if name in trial.params:
                    values[trial.number] = distribution.to_internal_repr(trial.params[name])
            self._columns[(name, distribution)] = (values, len(self._finished))
        return values

    def observations(
        self,
        search_space: dict[str, BaseDistribution],
        numbers: np.ndarray,
        running: Sequence[tuple[int, dict[str, Any]]] = (),
    ) -> dict[str, np.ndarray]:
        """The values of the trials `numbers` (and `running`) that have every parameter of `search_space`.

        Args:
            search_space: The parameters, with their distributions.
            numbers: Registered finished trials, ascending.
            running: Running trials as (number, parameters), ascending.

        Returns:
            Each parameter's internal values in trial-number order, as optuna's TPE reads them.
        """
        columns = {
            name: self.column(name, distribution)[numbers] for name, distribution in search_space.items()
        }
        present = ~np.isnan(np.stack(list(columns.values()))).any(axis=0)
        observed = {name: column[present] for name, column in columns.items()}
        running = [(number, params) for number, params in running if search_space.keys() <= params.keys()]
        if not running:
            return observed
        order = np.argsort(
            np.concatenate([numbers[present], [number for number, _ in running]]), kind="stable"
        )
        return {
            name: np.concatenate(
                [observed[name], [distribution.to_internal_repr(params[name]) for _, params in running]]
            )[order]
            for name, distribution in search_space.items()
        }


class SplitOnceTPESampler(optuna.samplers.TPESampler):
    """Optuna's `TPESampler`, splitting the history once per suggestion instead of once per parameter.

    In independent mode (the paper's) optuna's TPE sorts the whole history into l(x)'s and g(x)'s trials
    and reads every trial's value again for each parameter of a suggestion: Python work in parameters × N,
    which made a suggestion on the 330-hyperparameter CNN space after 1,000 trials slower than hyperopt's.
    This sampler makes that split once per suggestion, with optuna's own split function, and keeps the
    finished trials' values as arrays (`FinishedTrialValues`), each trial read once; the Parzen
    estimators, their random draws and the choice are the `TPESampler`'s own. So with the same arguments
    and seed it suggests exactly what `TPESampler` suggests (tests/test_tpe.py checks it), in every mode
    (independent, multivariate, group, constant liar). A multi-objective study takes optuna's own path.

    The split is reused while the history is the same: the same trial asking, the same number of
    trials, and the same running ones (a finished trial never changes, and trials are never deleted).
    Optuna reads a study's trials from a per-thread cache without the constant liar; this sampler reads
    them from the storage, which only differs while another process is changing the study.

    Args:
        **kwargs: Those of `optuna.samplers.TPESampler`.

    Example:

    ```python
    import optuna
    from keras_sage.tuners.oracles.tpe import SplitOnceTPESampler

    study = optuna.create_study(sampler=SplitOnceTPESampler(seed=1))
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=50)
    ```
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        _compat.require_tpe_sample_hook()
        self._start_history()

    def _start_history(self) -> None:
        """Empties the cache: the finished trials' values and the last split."""
        self._history: FinishedTrialValues | None = None
        self._split_key: tuple[int, int, tuple[int, ...]] | None = None
        self._below = np.empty(0, dtype=int)
        self._above = np.empty(0, dtype=int)
        self._history_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # The cache (which holds the study) is not pickled: the sampler pickles as a `TPESampler` does.
        # `object.__getstate__` is typed as returning `object`; a sampler's state is its `__dict__`.
        state = dict(cast("dict[str, Any]", super().__getstate__()))
        for name in ("_history", "_split_key", "_below", "_above", "_history_lock"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_history()

    def _sample(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        settings = _compat.tpe_settings(self)
        if len(study.directions) > 1 or settings.gamma is None:
            # Multi-objective splits, and optuna's first suggestion, where it picks its default gamma.
            return _compat.tpe_sample_as_optuna(self, study, trial, search_space)
        states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
        if settings.constant_liar:
            states += (TrialState.RUNNING,)
        trials = study.get_trials(deepcopy=False, states=states)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        with self._history_lock:
            history = self._split(study, trial, trials, running, settings.gamma)
            below = history.observations(search_space, self._below)
            above = history.observations(
                search_space,
                self._above,
                [
                    (t.number, _compat.tpe_trial_params(self, t, study))
                    for t in running
                    if t.number != trial.number
                ],
            )
        return _compat.tpe_suggest(self, search_space, below, above)

    def _split(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        trials: list[FrozenTrial],
        running: list[FrozenTrial],
        gamma: Callable[[int], int],
    ) -> FinishedTrialValues:
        """Splits the finished trials into l(x)'s and g(x)'s, unless the history is the one split last.

        `trials` are the study's trials in the states the sampler reads (the asking `trial` among them
        with the constant liar), `running` those of them that are running.

        Returns:
            The history of the study's finished trials' values, which the split indexes.
        """
        if self._history is None or self._history.study is not study:
            self._history = FinishedTrialValues(study)
            self._split_key = None
        history = self._history
        key = (trial.number, len(trials), tuple(t.number for t in running))
        if key == self._split_key:
            return history
        history.add(trials)
        others = [t for t in trials if t.number != trial.number]
        below, above = _compat.tpe_split_trials(study, others, gamma(len(trials) - len(running)))
        self._below = np.array([t.number for t in below], dtype=int)
        self._above = np.array([t.number for t in above if t.state != TrialState.RUNNING], dtype=int)
        self._split_key = key
        return history


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
        if (
            isinstance(n_startup_trials, bool)
            or not isinstance(n_startup_trials, int)
            or n_startup_trials < 0
        ):
            raise ValueError(f"n_startup_trials must be an integer of at least 0, got {n_startup_trials!r}")
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
            self.sampler = SplitOnceTPESampler(
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
