"""Several objectives kept apart: which metrics a search may optimise, its Pareto front, and the front's
most spread members.

`SageTuner` takes KerasTuner's list syntax, `objective=[kt.Objective("premature_accuracy", "max"),
kt.Objective("teacher_guidance", "max")]`, given to an optuna oracle (`TPEOracle`: optuna's multi-objective
TPE; `OptunaOracle` with `NSGAIISampler`), which then keeps P and TG apart instead of summing them. A cost
objective, `params` or `flops` with direction "min", adds the paper's compactness trade-off (its Tables
2–3). After the search, `tuner.pareto_front()` gives the non-dominated completed trials, and
`tuner.rerank(front=True, top_k=k)` trains the front (or its k most spread members, by NSGA-II's crowding
distance) at maturity, so that mature accuracy, not a weight α, picks the winner.

A trial dominates another if it is at least as good on every objective and better on one (each objective
in its own direction). Only completed trials with a finite value for every objective take part.

Example:

```python
objectives = [kt.Objective("premature_accuracy", "max"), kt.Objective("teacher_guidance", "max")]
tuner = SageTuner(space, teacher, oracle=TPEOracle(objective=objectives, max_trials=50))
tuner.search(x, y, validation_data=(x_val, y_val))
tuner.pareto_front()  # [Trial, ...], non-dominated in P and TG
tuner.rerank(top_k=3, epochs=20, x=x, y=y, validation_data=(x_val, y_val), front=True)
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras_tuner
import numpy as np
import numpy.typing as npt

from keras_sage import contract
from keras_sage.dominance import crowding_distances, most_spread, non_dominated

__all__ = [
    "COST_METRICS",
    "SCORE_OBJECTIVE",
    "crowding_distances",
    "front_trials",
    "most_spread",
    "named_objectives",
    "non_dominated",
    "objective_values",
    "objectives_of",
    "reported_metrics",
    "rerank_candidates",
    "results_summary",
    "search_score",
    "use_reported_objectives",
]

SCORE_OBJECTIVE = keras_tuner.Objective(contract.SCORE, direction="max")
# Costs an objective list may add, minimised: the paper's compactness trade-off.
COST_METRICS = contract.COST_METRICS

_COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED


def objectives_of(oracle: keras_tuner.Oracle) -> list[Any]:
    """The oracle's objectives (KerasTuner `Objective`s), in order; one for a single objective."""
    return list(getattr(oracle.objective, "objectives", None) or [oracle.objective])


def named_objectives(names: Sequence[str]) -> list[Any]:
    """The objectives of a search config's `[search] objectives = [...]`: the costs (`params`, `flops`)
    minimised, every other metric maximised.

    Raises:
        ValueError: A name is not a metric `SageTuner` reports, naming it.
    """
    objectives = []
    for name in names:
        if not contract.is_objective_metric(name):
            raise ValueError(
                f"{name!r} is not a metric SageTuner reports; give score, premature_accuracy, "
                "teacher_guidance, S_<layer>, params or flops"
            )
        objectives.append(keras_tuner.Objective(name, "min" if name in COST_METRICS else "max"))
    return objectives


def use_reported_objectives(oracle: keras_tuner.Oracle) -> None:
    """Gives an oracle without an objective `score`; refuses objectives `SageTuner` does not report.

    Raises:
        ValueError: An objective names a metric the tuner does not report, a cost that is not minimised or
            is given alone, or a score metric that is minimised; the message names it.
    """
    if getattr(oracle.objective, "name", None) == "default_objective":
        oracle.objective = SCORE_OBJECTIVE
        return
    objectives = objectives_of(oracle)
    summing = (keras_tuner.oracles.HyperbandOracle, keras_tuner.oracles.BayesianOptimizationOracle)
    if len(objectives) > 1 and isinstance(oracle, summing):
        raise ValueError(
            f"{type(oracle).__name__} ranks trials by one number and would sum the objectives; for a "
            "Pareto search use TPEOracle(objective=[...]) or OptunaOracle(NSGAIISampler())"
        )
    for objective in objectives:
        name = str(objective.name)
        if name in COST_METRICS:
            if objective.direction != "min" or len(objectives) == 1:
                raise ValueError(
                    f"the cost objective {name!r} must be minimised and given in a list beside "
                    f'premature_accuracy or teacher_guidance: keras_tuner.Objective("{name}", "min")'
                )
        elif name not in contract.SCORE_METRICS and contract.teacher_layer_of_metric(name) is None:
            raise ValueError(
                f"the oracle's objective {name!r} is not a metric SageTuner reports; use "
                "keras_tuner.Objective('score', 'max') (or premature_accuracy, teacher_guidance, S_<layer>, "
                "and in a list params or flops with 'min')"
            )
        elif objective.direction != "max" and len(objectives) > 1:
            raise ValueError(
                f'the objective {name!r} must be maximised: keras_tuner.Objective("{name}", "max")'
            )


def reported_metrics(oracle: keras_tuner.Oracle, metrics: Mapping[str, float]) -> dict[str, float]:
    """A trial's metrics as the tuner reports them to the oracle: with several objectives, KerasTuner's
    `multi_objective` added (its sum of the objectives, "min" ones counted as costs), which KerasTuner
    requires of a `run_trial` that returns a dict.

    Raises:
        keras_tuner.errors.FatalValueError: An objective's metric is missing (a cost objective `flops` on
            candidates whose input size is not fixed), naming it.
    """
    objectives = objectives_of(oracle)
    missing = [str(objective.name) for objective in objectives if objective.name not in metrics]
    if missing:
        raise keras_tuner.errors.FatalValueError(
            f"the objective {missing[0]!r} is not recorded by this search (the candidates report "
            f"{', '.join(sorted(metrics))}); FLOPs need a fixed input size"
        )
    if len(objectives) == 1:
        return dict(metrics)
    return {**metrics, oracle.objective.name: float(oracle.objective.get_value(metrics))}


def search_score(oracle: keras_tuner.Oracle, trial: keras_tuner.engine.trial.Trial) -> float:
    """The score a reranked candidate had in the search: the oracle's objective value, or with several
    objectives the trial's teacher-guided `score` (P + α·TG)."""
    if len(objectives_of(oracle)) == 1 or not trial.metrics.exists(contract.SCORE):
        return float(trial.score)
    return float(trial.metrics.get_last_value(contract.SCORE))


def objective_values(trial: keras_tuner.engine.trial.Trial, objectives: Sequence[Any]) -> list[float]:
    """A trial's last value of each objective's metric (NaN where it has none)."""
    return [
        float(trial.metrics.get_last_value(objective.name))
        if trial.metrics.exists(objective.name)
        else math.nan
        for objective in objectives
    ]


def _scored_trials(oracle: keras_tuner.Oracle) -> tuple[list[Any], npt.NDArray[np.float64]]:
    """The completed trials with a finite value for every objective, in the order they started, and their
    values as an (n, m) array with "min" objectives negated (every column maximised)."""
    objectives = objectives_of(oracle)
    signs = np.array([1.0 if objective.direction == "max" else -1.0 for objective in objectives])
    trials, rows = [], []
    for trial_id in getattr(oracle, "start_order", None) or list(oracle.trials):
        trial = oracle.trials.get(trial_id)
        if trial is None or trial.status != _COMPLETED:
            continue
        values = objective_values(trial, objectives)
        if all(math.isfinite(value) for value in values):
            trials.append(trial)
            rows.append(values)
    return trials, np.array(rows, dtype=np.float64).reshape(len(rows), len(objectives)) * signs


def front_trials(oracle: keras_tuner.Oracle) -> list[Any]:
    """The oracle's Pareto front: its completed trials that no other completed trial dominates, in the
    order they started (with one objective, the best trials)."""
    trials, points = _scored_trials(oracle)
    return [trials[index] for index in non_dominated(points)]


def rerank_candidates(oracle: keras_tuner.Oracle, top_k: int | None, front: bool) -> list[Any]:
    """The trials `SageTuner.rerank` trains: the front (or its `top_k` most spread members), or the
    `top_k` best trials by KerasTuner's score (with several objectives, whose sum KerasTuner would rank by,
    by the teacher-guided `score`, P + α·TG).

    Raises:
        ValueError: `top_k` is not positive, or missing without `front`.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be positive or None (the whole front), got {top_k}")
    if not front:
        if top_k is None:
            raise ValueError("give top_k, the number of best trials to rerank, or front=True")
        if len(objectives_of(oracle)) == 1:
            return [trial for trial in oracle.get_best_trials(top_k) if trial.status == _COMPLETED]
        scored = [trial for trial in oracle.trials.values() if trial.status == _COMPLETED]
        return sorted(scored, key=lambda trial: -search_score(oracle, trial))[:top_k]
    trials, points = _scored_trials(oracle)
    members = non_dominated(points)
    if top_k is not None and top_k < len(members):
        members = [members[index] for index in most_spread(points[members], top_k)]
    return [trials[index] for index in members]


def results_summary(tuner: keras_tuner.Tuner, num_trials: int) -> None:
    """Prints KerasTuner's summary of the best trials, the Pareto front's members first, each marked."""
    oracle = tuner.oracle
    front = front_trials(oracle)
    front_ids = {trial.trial_id for trial in front}
    others = [
        trial for trial in oracle.get_best_trials(len(oracle.trials)) if trial.trial_id not in front_ids
    ]
    shown = (front + others)[:num_trials]
    print("Results summary")
    print(f"Results in {tuner.project_dir}")
    print(f"Showing {len(shown)} best trials; {len(front)} on the Pareto front of")
    print(", ".join(f"{objective.name} ({objective.direction})" for objective in objectives_of(oracle)))
    for trial in shown:
        print()
        if trial.trial_id in front_ids:
            print("On the Pareto front")
        trial.summary()
