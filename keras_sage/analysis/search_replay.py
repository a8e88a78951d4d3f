"""Random search replayed on a finished pool: what a search guided by P + α·TG would have found, and at
what cost (paper §4.3, Fig. 4-right).

A replayed search at a budget draws `trials` architectures of the pool uniformly without replacement,
keeps the one with the highest score P + α·TG at that budget (α = 0: P alone), and returns that
architecture's mature accuracy; it costs `trials` × the examples processed at that budget. Nothing is
sampled: over all equally likely draws, the architecture with the i-th lowest score (of n) is the one
kept with probability C(i − 1, trials − 1) / C(n, trials), and architectures of equal score share their
probability equally (ties broken uniformly at random). So the results are exact: the mean is what
infinitely many repeated searches average, and the interval is the exact 2.5th and 97.5th percentiles of
the best mature accuracy over those searches.

Example:

```python
from keras_sage.analysis import efficiency_ratio, replay, replay_curve

result = replay(pool, budget=200, alpha=1.0, trials=20)
print(result.mean_best_mature_accuracy, result.examples_processed)
curve = replay_curve(pool, budgets=[100, 200, 400], alpha=1.0, trials_grid=range(1, 41))
ratio = efficiency_ratio(pool, budgets=[100, 200, 400], alpha=1.0, trials_grid=range(1, 41))
print(f"P + 1·TG needs {ratio.ratio:.1f}× fewer examples ({ratio.ci_low:.1f}-{ratio.ci_high:.1f})")
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage.analysis.pool import ARCH_ID, EXAMPLES, MATURE_ACCURACY
from keras_sage.analysis.predictors import (
    CONFIDENCE,
    column,
    percentile_interval,
    resample_count,
    resample_indices,
    rows_at_budget,
    tie_bounds,
)
from keras_sage.score import combined_score

# The columns a replay reads: the three every replayed architecture needs, then the cost.
_REPLAY_COLUMNS = (contract.PREMATURE_ACCURACY, contract.TEACHER_GUIDANCE, MATURE_ACCURACY, EXAMPLES)
# Accuracies this close count as equal when a curve is asked whether it reaches a target accuracy.
_ACCURACY_TOLERANCE = 1e-12
# Cumulative probabilities this close to a percentile's level count as reaching it.
_PROBABILITY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ReplayResult:
    """A random search of `trials` architectures at one budget, replayed on a pool (exactly).

    Attributes:
        alpha: The α of the score P + α·TG that picks the best architecture (0: P alone).
        budget: The budget (SGD steps) of every trial.
        trials: Architectures drawn (without replacement) per search.
        examples_processed: trials × the mean examples processed at the budget.
        mean_best_mature_accuracy: The expected mature accuracy of the architecture kept.
        ci_low: The 2.5th percentile of that mature accuracy over all equally likely searches.
        ci_high: The 97.5th percentile.
        n_architectures: The architectures the search draws from.
    """

    alpha: float
    budget: int
    trials: int
    examples_processed: float
    mean_best_mature_accuracy: float
    ci_low: float
    ci_high: float
    n_architectures: int


@dataclass(frozen=True)
class EfficiencyRatio:
    """How many times fewer examples a search by P + α·TG needs to match the best search by P.

    Attributes:
        alpha: The α of P + α·TG.
        ratio: `examples_premature / examples_guided` (above 1: P + α·TG is cheaper; 0 if it never
            reaches the target).
        ci_low: The 2.5th percentile of the ratio over bootstrap resamples of the architectures.
        ci_high: The 97.5th percentile.
        target_accuracy: The mean best mature accuracy of P's most expensive search on the grid.
        examples_premature: The fewest examples with which a search by P reaches the target.
        examples_guided: The fewest with which a search by P + α·TG does (inf if none does).
        n_architectures: The architectures replayed.
    """

    alpha: float
    ratio: float
    ci_low: float
    ci_high: float
    target_accuracy: float
    examples_premature: float
    examples_guided: float
    n_architectures: int


def replay(pool: Sequence[Mapping[str, Any]], *, budget: int, alpha: float, trials: int) -> ReplayResult:
    """Replays a random search of `trials` architectures at `budget`, scored by P + α·TG, on a pool.

    The search draws from the architectures that have P, TG and mature accuracy at `budget` (for every
    α, so that α = 0 and α > 0 replay the same candidates). The result is exact (see the module's
    docstring); the examples processed are `trials` × the mean `examples` of those architectures at the
    budget (NaN if the pool has no `examples`).

    Args:
        pool: The pool's rows.
        budget: The budget (SGD steps) of the trials.
        alpha: The α of the score P + α·TG (0: P alone).
        trials: Architectures per search, from 1 to the number of architectures.

    Returns:
        A `ReplayResult`.

    Example:

    ```python
    guided = replay(pool, budget=200, alpha=1.0, trials=20)
    unguided = replay(pool, budget=200, alpha=0.0, trials=20)
    print(guided.mean_best_mature_accuracy - unguided.mean_best_mature_accuracy)
    ```
    """
    return _replay_points(_ReplayTable.from_pool(pool, [budget]), alpha, [trials])[0]


def replay_curve(
    pool: Sequence[Mapping[str, Any]], budgets: Sequence[int], alpha: float, trials_grid: Sequence[int]
) -> list[ReplayResult]:
    """Best mature accuracy against examples processed, for searches by P and by P + α·TG (Fig. 4-right).

    Replays (see `replay`) every search of the grid: α = 0 (P) and `alpha`, at each budget, for each
    number of trials. All of them draw from the same architectures: those with P, TG and mature accuracy
    at every budget of `budgets`.

    Args:
        pool: The pool's rows.
        budgets: The budgets (SGD steps) to replay at.
        alpha: The α of the guided score P + α·TG (0 replays P alone, once).
        trials_grid: Numbers of trials, each from 1 to the number of architectures.

    Returns:
        One `ReplayResult` per α (0 first), budget and number of trials, in that order.

    Example:

    ```python
    for point in replay_curve(pool, [100, 400], alpha=1.0, trials_grid=[5, 10, 20]):
        print(point.alpha, point.budget, point.examples_processed, point.mean_best_mature_accuracy)
    ```
    """
    table = _ReplayTable.from_pool(pool, budgets)
    return [
        point
        for score_alpha in dict.fromkeys([0.0, alpha])
        for point in _replay_points(table, score_alpha, trials_grid)
    ]


def efficiency_ratio(
    pool: Sequence[Mapping[str, Any]],
    budgets: Sequence[int],
    alpha: float,
    trials_grid: Sequence[int],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    n_boot: int | None = None,
) -> EfficiencyRatio:
    """How many times fewer examples P + α·TG needs than P to find as good an architecture (paper §4.3).

    On the grid of `replay_curve` (each budget × each number of trials, costing trials × examples at the
    budget), with the same architectures:

    - the target is the mean best mature accuracy of P's most expensive search on the grid (the largest
      cost; the first budget and number of trials of equal cost);
    - `examples_premature` is the least cost of a search by P whose mean best mature accuracy reaches the
      target (at most the most expensive one's); `examples_guided` the least cost of a search by
      P + α·TG that reaches it (inf if none does);
    - the ratio is `examples_premature / examples_guided` (0 when P + α·TG never reaches the target).

    Costs are read off the grid, so a finer `trials_grid` gives a finer ratio. The interval is the 95%
    percentile bootstrap over architectures: a resample draws the architectures with replacement
    (`resample_indices(n, n_resamples, seed)`; the same resample at every budget), and the target and both
    costs are recomputed on it.

    Args:
        pool: The pool's rows; every architecture needs `examples` at every budget of `budgets`.
        budgets: The budgets (SGD steps) to replay at.
        alpha: The α of the guided score P + α·TG.
        trials_grid: Numbers of trials, each from 1 to the number of architectures.
        n_resamples: Resamples of the architectures, drawn with replacement (at least 1).
        n_boot: The former name of `n_resamples`, still accepted.
        seed: Seed of the resamples.

    Returns:
        An `EfficiencyRatio`.

    Example:

    ```python
    ratio = efficiency_ratio(pool, [100, 200, 400, 800], alpha=1.0, trials_grid=range(1, 51))
    print(f"{ratio.ratio:.1f}× ({ratio.ci_low:.1f}-{ratio.ci_high:.1f})")
    ```
    """
    n_resamples = resample_count(n_resamples, n_boot)
    table = _ReplayTable.from_pool(pool, budgets)
    grid = _checked_trials(trials_grid, table.n_architectures)
    if not np.all(np.isfinite(table.examples)):
        raise ValueError(f"The pool has no `{EXAMPLES}` at some of the budgets {list(budgets)}.")
    n = table.n_architectures
    indices = np.vstack([np.arange(n)[None], resample_indices(n, n_resamples, seed)])
    costs = table.examples[:, None] * np.array(grid, dtype=float)[None, :]
    reference = np.unravel_index(np.argmax(costs), costs.shape)
    premature = _mean_best(table, 0.0, grid, indices)
    guided = _mean_best(table, alpha, grid, indices)
    target = premature[reference]
    examples_premature = _least_cost(premature, costs, target)
    examples_guided = _least_cost(guided, costs, target)
    ratios = np.where(np.isinf(examples_guided), 0.0, examples_premature / examples_guided)
    low, high = percentile_interval(ratios[1:])
    return EfficiencyRatio(
        alpha=float(alpha),
        ratio=float(ratios[0]),
        ci_low=low,
        ci_high=high,
        target_accuracy=float(target[0]),
        examples_premature=float(examples_premature[0]),
        examples_guided=float(examples_guided[0]),
        n_architectures=n,
    )


@dataclass(frozen=True)
class _ReplayTable:
    """The columns a replay reads, for the architectures complete at every budget (rows: budgets)."""

    budgets: tuple[int, ...]
    premature: np.ndarray
    guidance: np.ndarray
    mature: np.ndarray
    examples: np.ndarray

    @property
    def n_architectures(self) -> int:
        return int(self.premature.shape[1])

    @classmethod
    def from_pool(cls, pool: Sequence[Mapping[str, Any]], budgets: Sequence[int]) -> _ReplayTable:
        """The architectures with P, TG and mature accuracy at every budget, ordered by `arch_id`."""
        by_budget = []
        for budget in budgets:
            rows = rows_at_budget(pool, budget)
            values = np.stack([column(rows, name) for name in _REPLAY_COLUMNS], axis=1)
            complete = np.isfinite(values[:, :3]).all(axis=1)
            by_budget.append({str(row[ARCH_ID]): values[i] for i, row in enumerate(rows) if complete[i]})
        architectures = sorted(set.intersection(*(set(rows) for rows in by_budget))) if by_budget else []
        if not architectures:
            raise ValueError(
                f"No architecture of the pool has P, TG and mature accuracy at the budgets {list(budgets)}."
            )
        stacked = np.array([[rows[architecture] for architecture in architectures] for rows in by_budget])
        examples = stacked[:, :, 3]
        known = np.isfinite(examples)
        with np.errstate(invalid="ignore"):
            mean_examples = np.where(known, examples, 0.0).sum(axis=1) / known.sum(axis=1)
        return cls(
            budgets=tuple(int(budget) for budget in budgets),
            premature=stacked[:, :, 0],
            guidance=stacked[:, :, 1],
            mature=stacked[:, :, 2],
            examples=mean_examples,
        )


def _replay_points(table: _ReplayTable, alpha: float, trials_grid: Sequence[int]) -> list[ReplayResult]:
    """`ReplayResult`s of every budget of `table` and number of trials, with the full pool."""
    grid = _checked_trials(trials_grid, table.n_architectures)
    weights = _rank_weights(table.n_architectures, grid)
    points = []
    for position, budget in enumerate(table.budgets):
        scores = combined_score(table.premature[position], table.guidance[position], alpha)
        order = np.argsort(scores, kind="stable")
        sorted_scores = scores[order]
        mature = table.mature[position][order]
        for trials, by_rank in zip(grid, weights, strict=True):
            kept = _tie_means(sorted_scores, by_rank)
            low, high = _quantiles(mature, kept, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
            points.append(
                ReplayResult(
                    alpha=float(alpha),
                    budget=budget,
                    trials=trials,
                    examples_processed=trials * float(table.examples[position]),
                    mean_best_mature_accuracy=float(kept @ mature),
                    ci_low=low,
                    ci_high=high,
                    n_architectures=table.n_architectures,
                )
            )
    return points


def _mean_best(table: _ReplayTable, alpha: float, grid: Sequence[int], indices: np.ndarray) -> np.ndarray:
    """The mean best mature accuracy of each budget, number of trials and resample: (budgets, trials, B).

    Sharing a tie's probability equally among its architectures gives the same mean as giving each of
    them the tie's mean mature accuracy with the probabilities of distinct scores, so each resample's
    means are one product with the weights of `_rank_weights`.
    """
    weights = _rank_weights(table.n_architectures, grid)
    means = np.empty((len(table.budgets), len(grid), len(indices)))
    for position in range(len(table.budgets)):
        scores = combined_score(table.premature[position], table.guidance[position], alpha)[indices]
        order = np.argsort(scores, axis=-1, kind="stable")
        mature = np.take_along_axis(table.mature[position][indices], order, axis=-1)
        means[position] = weights @ _tie_means(np.take_along_axis(scores, order, axis=-1), mature).T
    return means


def _least_cost(means: np.ndarray, costs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per resample, the least cost (budgets, trials) whose mean (budgets, trials, B) reaches the target."""
    reached = means >= target - _ACCURACY_TOLERANCE
    least: np.ndarray = np.where(reached, costs[:, :, None], np.inf).min(axis=(0, 1))
    return least


def _rank_weights(n: int, grid: Sequence[int]) -> np.ndarray:
    """The probability that a search of t draws of n items keeps the one of rank i (from 0, lowest score
    first; scores distinct): C(i, t − 1) / C(n, t), for each t of `grid`: (len(grid), n)."""
    return np.array(
        [[math.comb(rank, trials - 1) / math.comb(n, trials) for rank in range(n)] for trials in grid]
    )


def _tie_means(sorted_scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values`, in the order of `sorted_scores` (sorted along the last axis), each replaced by their mean
    over its run of equal scores."""
    starts, ends = tie_bounds(sorted_scores)
    cumulative = np.zeros((*np.shape(sorted_scores)[:-1], sorted_scores.shape[-1] + 1))
    np.cumsum(np.broadcast_to(values, sorted_scores.shape), axis=-1, out=cumulative[..., 1:])
    through = np.take_along_axis(cumulative, ends + 1, axis=-1)
    means: np.ndarray = (through - np.take_along_axis(cumulative, starts, axis=-1)) / (ends - starts + 1)
    return means


def _quantiles(values: np.ndarray, probabilities: np.ndarray, levels: Sequence[float]) -> tuple[float, ...]:
    """The smallest value whose cumulative probability reaches each level (inverted distribution function)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(probabilities[order])
    positions = np.searchsorted(cumulative, np.asarray(levels) - _PROBABILITY_TOLERANCE)
    return tuple(float(values[order][min(position, len(values) - 1)]) for position in positions)


def _checked_trials(trials_grid: Sequence[int], n: int) -> list[int]:
    grid = [int(trials) for trials in trials_grid]
    if not grid or min(grid) < 1 or max(grid) > n:
        raise ValueError(f"Numbers of trials must be from 1 to the {n} architectures, got {grid}.")
    return grid
