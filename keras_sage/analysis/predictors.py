"""How well premature measures predict mature accuracy across a pool of architectures (paper §4.1).

A pool is a list of plain dict rows, one per (architecture, budget): `arch_id`, `budget` (SGD steps),
`examples`, `premature_accuracy` (P), `teacher_guidance` (TG), `S_<teacher layer>` per teacher layer, the
control scores `TG_untrained` and `TG_labels`, `mature_accuracy` (the target), `depth`, `params`, `flops`,
`seed` and `hyperparameters`. Any numeric column may be missing from a pool; a missing value, None, NaN or
an infinite value counts as missing, and each computation drops the architectures that miss a value it
uses (each docstring says which).

`predictivity` correlates every predictor (P, TG, each S_i, P + α·TG for a grid of α, and the controls)
with mature accuracy at every budget, with bootstrap confidence intervals over architectures, the paired
gain over P, and the partial correlation given capacity controls (paper Fig. 2 and Fig. 3-bottom).
`calibrate_alpha` picks the α that predicts best at one budget and says how stable that choice is.

Example:

```python
from keras_sage.analysis import calibrate_alpha, format_table, predictivity

rows = predictivity(pool)
print(format_table([row for row in rows if row["budget"] == 200]))
calibration = calibrate_alpha(pool, budget=200)
print(calibration.alpha, calibration.win_fractions)
```
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage.analysis.pool import (
    ARCH_ID,
    BUDGET,
    DEPTH,
    LOG_FLOPS,
    MATURE_ACCURACY,
    TG_LABELS,
    TG_UNTRAINED,
)
from keras_sage.score import combined_score

# Predictor names of P and TG in the rows `predictivity` returns.
PREMATURE = "P"
GUIDANCE = "TG"

# Scores that predict mature accuracy without a trained teacher, or by capacity alone: every one present
# in a pool is also a predictor, so that P + α·TG can be compared with them.
# The field's proxies at initialisation (`keras_sage.proxies`), controls where a pool has them.
PROXY_COLUMNS = (contract.SYNFLOW, contract.SNIP, contract.GRAD_NORM, contract.NASWOT)
# Counts of a network's size.
SIZE_COLUMNS = (DEPTH, contract.PARAMS, LOG_FLOPS)
CONTROL_COLUMNS = (TG_UNTRAINED, TG_LABELS, *SIZE_COLUMNS, *PROXY_COLUMNS)

# Up to 64: where P ranks architectures backwards the best α can run to TG alone; the report says when the
# α chosen is the grid's largest.
DEFAULT_ALPHAS = (0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
DEFAULT_CONTROLS = (DEPTH, LOG_FLOPS)
CONFIDENCE = 0.95
# Random splits of a pool in halves for choosing α out of sample (`calibrate_alpha`).
DEFAULT_SPLITS = 500
METHODS = ("spearman", "pearson")

# A resampled column whose weighted variance is at most this per item is constant (values are ranks or
# standardised, so a column that varies has a variance of order one).
_CONSTANT_VARIANCE = 1e-20
# A residual this small relative to the centred values means the controls explain the column entirely.
_RESIDUAL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AlphaCalibration:
    """The α of P + α·TG chosen at one budget, out of sample, and what it gains there.

    α is chosen out of sample: the architectures are split in random halves, α is chosen on one half (the
    highest correlation of P + α·TG with mature accuracy) and its gain over P measured on the other, and
    this is repeated. The α chosen most often is `alpha`; the median gain on the held-out halves, with the
    central 95% of the splits (the median always lies inside it), is what calibrating α on a pool is worth
    on architectures it has not seen.
    The α of the highest correlation on the whole pool (`in_sample_alpha`) is reported beside it, labelled:
    its gain is measured on the pool that chose it, so it is optimistic.

    Attributes:
        budget: The budget (SGD steps).
        alpha: The α chosen out of sample: the one chosen most often on the halves (the first of equals).
        r: The correlation of P + `alpha`·TG on the whole pool.
        correlations: The correlation of P + α·TG with mature accuracy on the whole pool, by α.
        win_fractions: By α, the fraction of resamples of the architectures (with replacement) in which that
            α has the highest correlation (they sum to 1; a choice is stable when one α wins almost always).
        n: The number of architectures used.
        in_sample_alpha: The α of the highest correlation on the whole pool (the first of equals).
        in_sample_r: That correlation.
        split_choices: By α, the fraction of the splits whose choosing half chose it.
        out_of_sample_delta: The median over the splits of r(P + α·TG) − r(P) on the held-out half, α chosen
            on the other half (NaN with fewer than 6 architectures).
        out_of_sample_interval: The central 95% of that difference over the splits.
        splits: The number of random splits.
    """

    budget: int
    alpha: float
    r: float
    correlations: dict[float, float]
    win_fractions: dict[float, float]
    n: int
    in_sample_alpha: float
    in_sample_r: float
    split_choices: dict[float, float]
    out_of_sample_delta: float
    out_of_sample_interval: tuple[float, float]
    splits: int


def combined_predictor_name(alpha: float, guidance: str = GUIDANCE) -> str:
    """The name of the predictor P + α·`guidance`: `P+{alpha:g}{guidance}`, e.g. `P+0.25TG`, `P+1TG`."""
    return f"{PREMATURE}+{alpha:g}{guidance}"


def alpha_of_predictor(name: str, guidance: str = GUIDANCE) -> float | None:
    """The α of a predictor named by `combined_predictor_name(α, guidance)`, or None for any other name.

    Example:

    ```python
    alpha_of_predictor("P+0.25TG")  # 0.25
    alpha_of_predictor("P+1TG_labels", "TG_labels")  # 1.0
    alpha_of_predictor("TG")  # None
    ```
    """
    prefix = f"{PREMATURE}+"
    if not (name.startswith(prefix) and name.endswith(guidance)):
        return None
    try:
        return float(name[len(prefix) : len(name) - len(guidance)])
    except ValueError:
        return None


def pool_budgets(pool: Iterable[Mapping[str, Any]]) -> list[int]:
    """The budgets of a pool, in increasing order."""
    return sorted({int(row[BUDGET]) for row in pool})


def rows_at_budget(pool: Iterable[Mapping[str, Any]], budget: int) -> list[Mapping[str, Any]]:
    """The rows of a pool at one budget, ordered by `arch_id`.

    Ordering by architecture makes a bootstrap resample (`resample_indices`) pick the same architectures
    at every budget that holds the same architectures.

    Raises:
        ValueError: if an architecture has two rows at the budget.
    """
    rows = sorted((row for row in pool if int(row[BUDGET]) == budget), key=lambda row: str(row[ARCH_ID]))
    for previous, row in itertools.pairwise(rows):
        if str(previous[ARCH_ID]) == str(row[ARCH_ID]):
            raise ValueError(f"The pool has two rows of architecture {row[ARCH_ID]!r} at budget {budget}.")
    return rows


def column(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    """The values of one numeric column as float64, NaN where a row misses it (absent, None, not finite).

    `log_flops` is derived: the natural log of `flops` (NaN where `flops` is not positive).

    Example:

    ```python
    column([{"depth": 3}, {"depth": None}, {}], "depth")  # array([3., nan, nan])
    ```
    """
    if name == LOG_FLOPS:
        flops = column(rows, contract.FLOPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _finite_or_nan(np.log(flops))
    values = [row.get(name) for row in rows]
    return _finite_or_nan(np.array([math.nan if value is None else float(value) for value in values]))


def resample_count(n_resamples: int, n_boot: int | None = None) -> int:
    """The number of resamples a function was asked for: `n_resamples`, or `n_boot`, its name until 0.1.

    "Bootstrap" names the teacher's bootstrapping in keras-sage (`keras_sage.Bootstrap`); the statistical
    resampling of architectures is called resampling, and `n_boot` stays accepted for it.

    Raises:
        ValueError: Fewer than 1, naming the parameter as given.
    """
    count, name = (n_resamples, "n_resamples") if n_boot is None else (n_boot, "n_boot")
    if count < 1:
        raise ValueError(f"{name} must be at least 1, got {count}.")
    return int(count)


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of `n` items: an `(n_resamples, n)` array of indices drawn with replacement.

    Every bootstrap of this package draws its resamples here, so a resample can be reproduced from its
    seed: `numpy.random.default_rng(seed).integers(0, n, size=(n_resamples, n))`.
    """
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    """The central `CONFIDENCE` (95%) percentile interval of the finite `samples` of a bootstrap.

    Returns:
        (low, high), the 2.5th and 97.5th percentiles (linear interpolation); NaN if no sample is finite.
    """
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def predictivity(
    pool: Sequence[Mapping[str, Any]],
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
    controls: Sequence[str] = DEFAULT_CONTROLS,
    n_boot: int | None = None,
) -> list[dict[str, Any]]:
    """Correlates each premature predictor with mature accuracy, at every budget of a pool.

    The predictors, in this order: `P` (premature accuracy), `TG` (teacher guidance), each `S_<layer>`,
    `P+{α:g}TG` for each α (P + α·TG, e.g. `P+0.25TG`), then each control column the pool has
    (`TG_untrained`, `TG_labels`, `depth`, `params`, `log_flops`), and `P+{α:g}TG_untrained`,
    `P+{α:g}TG_labels` where those controls exist. The target is `mature_accuracy`.

    For each budget and predictor:

    - `r` is the correlation of the predictor with mature accuracy: Spearman's rank correlation (the
      Pearson correlation of average ranks, ties averaged) or Pearson's, over the architectures where
      the predictor, P and mature accuracy all have a value (`n` of them); fewer than 3 give NaN.
    - `ci_low`, `ci_high`: the 95% percentile bootstrap interval of `r`. A resample draws `n`
      architectures with replacement (`resample_indices(n, n_resamples, seed)`) and recomputes `r` on it
      (ranks recomputed within the resample); a resample whose predictor or target is constant has no
      correlation and is left out of the percentiles.
    - `delta` is `r` − r(P) on the same architectures; `delta_ci_low`, `delta_ci_high` its paired
      bootstrap interval: r and r(P) are recomputed on the same resample, and the percentiles are taken
      of their difference.
    - `partial_r` is the partial correlation given the `controls` the pool has (controls absent from
      the pool are left out), over those of the `n` architectures that have every control: for Spearman,
      every column is ranked; the predictor's ranks and the target's ranks are each regressed on the
      controls' ranks with an intercept (least squares), and `partial_r` is the Pearson correlation of
      the two residuals. For Pearson, the same on the values. It is NaN for a predictor that is one of
      the controls, or that the controls determine entirely (a residual of zero), or with fewer than
      (controls + 3) architectures.
    - `partial_ci_low`, `partial_ci_high`: the 95% percentile bootstrap interval of `partial_r`, over
      the architectures it uses (`m` of them, `m` = `n` when none misses a control, and then the
      resamples are r's): a resample draws `resample_indices(m, n_resamples, seed)` and recomputes
      `partial_r` on it (ranks recomputed within the resample); a resample where the controls determine
      the predictor or the target is left out. NaN where `partial_r` is NaN.

    Args:
        pool: The pool's rows.
        alphas: The α of the combined predictors P + α·TG.
        method: `"spearman"` or `"pearson"`.
        n_resamples: Resamples of the architectures, drawn with replacement (at least 1).
        n_boot: The former name of `n_resamples`, still accepted.
        seed: Seed of the resamples.
        controls: Columns to partial out (`log_flops` is the log of `flops`).

    Returns:
        One dict per budget (increasing) and predictor: `budget`, `predictor`, `n`, `r`, `ci_low`,
        `ci_high`, `delta`, `delta_ci_low`, `delta_ci_high`, `partial_r`, `partial_ci_low`,
        `partial_ci_high`.

    Example:

    ```python
    rows = predictivity(pool, alphas=(0.5, 1, 2), controls=("depth",))
    best = max((row for row in rows if row["budget"] == 200), key=lambda row: row["r"])
    print(best["predictor"], best["r"], best["ci_low"], best["ci_high"])
    guidance = next(row for row in rows if row["budget"] == 200 and row["predictor"] == "TG")
    print("TG beyond depth:", guidance["partial_ci_low"] > 0)
    ```
    """
    _check_method(method)
    n_resamples = resample_count(n_resamples, n_boot)
    present = _present_columns(pool)
    used_controls = [name for name in controls if name in present]
    results = []
    for budget in pool_budgets(pool):
        rows = rows_at_budget(pool, budget)
        target = column(rows, MATURE_ACCURACY)
        premature = column(rows, contract.PREMATURE_ACCURACY)
        predictors = _predictors(rows, present, alphas)
        control_values = np.array([column(rows, name) for name in used_controls]).reshape(
            len(used_controls), len(rows)
        )
        budget_results: list[dict[str, Any]] = []
        for names, sample in _groups_by_sample(predictors, premature, target):
            correlations = _Resampled.of(
                np.stack([premature[sample], *(predictors[name][sample] for name in names)]),
                functools.partial(_correlations, target=target[sample], method=method),
                n_resamples,
                seed,
                minimum=3,
            )
            partial_names = [name for name in names if name not in used_controls]
            complete = sample & np.all(np.isfinite(control_values), axis=0)
            given_controls = functools.partial(
                _correlations, target=target[complete], method=method, controls=control_values[:, complete]
            )
            partials = _Resampled.of(
                np.array([predictors[name][complete] for name in partial_names]).reshape(
                    len(partial_names), int(complete.sum())
                ),
                given_controls,
                n_resamples,
                seed,
                minimum=len(used_controls) + 3,
            )
            for position, name in enumerate(names, start=1):
                r_interval = correlations.interval(position)
                delta_interval = correlations.delta_interval(position)
                if name in used_controls:
                    partial_r, partial_interval = math.nan, (math.nan, math.nan)
                else:
                    partial_position = partial_names.index(name)
                    partial_r = partials.value(partial_position)
                    partial_interval = partials.interval(partial_position)
                budget_results.append(
                    {
                        "budget": budget,
                        "predictor": name,
                        "n": int(sample.sum()),
                        "r": correlations.value(position),
                        "ci_low": r_interval[0],
                        "ci_high": r_interval[1],
                        "delta": correlations.value(position) - correlations.value(0),
                        "delta_ci_low": delta_interval[0],
                        "delta_ci_high": delta_interval[1],
                        "partial_r": partial_r,
                        "partial_ci_low": partial_interval[0],
                        "partial_ci_high": partial_interval[1],
                    }
                )
        order = {name: position for position, name in enumerate(predictors)}
        results += sorted(budget_results, key=lambda row: order[row["predictor"]])
    return results


def calibrate_alpha(
    pool: Sequence[Mapping[str, Any]],
    budget: int,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
    n_boot: int | None = None,
    n_splits: int = DEFAULT_SPLITS,
) -> AlphaCalibration:
    """Chooses the α of P + α·TG at one budget out of sample, and measures what it gains (paper Fig. 2).

    Uses the architectures that have P, TG and mature accuracy at `budget`. The correlation is the one
    of `predictivity` (same `method`); the win fractions come from the same bootstrap (the same `seed`
    draws the same resamples): in each resample the α of the highest correlation wins (the first of
    equals in `alphas` order); resamples where no α has a correlation are left out.

    Args:
        pool: The pool's rows.
        budget: The budget (SGD steps) to calibrate at.
        alphas: The candidate α.
        method: `"spearman"` or `"pearson"`.
        n_resamples: Resamples of the architectures, drawn with replacement (at least 1).
        n_boot: The former name of `n_resamples`, still accepted.
        seed: Seed of the resamples and of the random halves.
        n_splits: Random splits in halves for the out-of-sample choice.

    Returns:
        An `AlphaCalibration`.

    Example:

    ```python
    calibration = calibrate_alpha(pool, budget=200)
    print(f"α = {calibration.alpha:g} (wins {calibration.win_fractions[calibration.alpha]:.0%})")
    ```
    """
    _check_method(method)
    n_resamples = resample_count(n_resamples, n_boot)
    rows = rows_at_budget(pool, budget)
    premature = column(rows, contract.PREMATURE_ACCURACY)
    guidance = column(rows, contract.TEACHER_GUIDANCE)
    target = column(rows, MATURE_ACCURACY)
    sample = np.isfinite(premature) & np.isfinite(guidance) & np.isfinite(target)
    scores = np.stack([combined_score(premature[sample], guidance[sample], alpha) for alpha in alphas])
    statistic = functools.partial(_correlations, target=target[sample], method=method)
    correlations = _Resampled.of(scores, statistic, n_resamples, seed, minimum=3)
    full = correlations.full
    ranked = np.where(np.isnan(correlations.resampled), -np.inf, correlations.resampled)
    decided = np.isfinite(ranked).any(axis=0)
    wins = np.bincount(np.argmax(ranked[:, decided], axis=0), minlength=len(alphas))
    fractions = wins / max(int(decided.sum()), 1)
    best = int(np.argmax(np.where(np.isnan(full), -np.inf, full)))
    held_out = held_out_comparison(
        premature[sample][None], scores, target[sample], method=method, n_splits=n_splits, seed=seed
    )
    chosen = int(np.argmax(held_out.choices)) if held_out.splits else best
    return AlphaCalibration(
        budget=budget,
        alpha=float(alphas[chosen]),
        r=float(full[chosen]),
        correlations={float(alpha): float(r) for alpha, r in zip(alphas, full, strict=True)},
        win_fractions={float(alpha): float(share) for alpha, share in zip(alphas, fractions, strict=True)},
        n=int(sample.sum()),
        in_sample_alpha=float(alphas[best]),
        in_sample_r=float(full[best]),
        split_choices={
            float(alpha): float(share) for alpha, share in zip(alphas, held_out.choices, strict=True)
        },
        out_of_sample_delta=held_out.delta,
        out_of_sample_interval=held_out.interval,
        splits=held_out.splits,
    )


@dataclass(frozen=True)
class HeldOut:
    """Two families of predictors, the best of each chosen on one random half of the architectures and
    compared on the other (`held_out_comparison`).

    Attributes:
        choices: By challenger, the fraction of splits whose choosing half chose it.
        delta: The median over the splits of r(challenger) − r(reference) on the held-out half (NaN when no
            split gives both).
        interval: The central 95% of that difference over the splits.
        splits: The number of splits that gave a difference.
    """

    choices: np.ndarray
    delta: float
    interval: tuple[float, float]
    splits: int


def held_out_comparison(
    reference: np.ndarray,
    challenger: np.ndarray,
    target: np.ndarray,
    *,
    method: str = "spearman",
    n_splits: int = DEFAULT_SPLITS,
    seed: int = 0,
) -> HeldOut:
    """Chooses the best of each family on one random half, compares the two on the other half, repeated.

    The architectures are split in random halves `n_splits` times (`numpy.random.default_rng(seed)`
    permutations); on the choosing half, the predictor of each family with the highest correlation with
    `target` is chosen (the first of equals); on the other half, r(chosen challenger) − r(chosen reference).
    `calibrate_alpha` is this with P alone as the reference and P + α·TG for each α as the challengers.

    Args:
        reference: (k_r, m): the reference family, e.g. P + β·proxy for each β.
        challenger: (k_c, m): the challengers, e.g. P + α·TG + β·proxy for each (α, β).
        target: (m,): mature accuracy.
        method: `"spearman"` or `"pearson"`.
        n_splits: Random splits in halves.
        seed: Seed of the splits.

    Returns:
        A `HeldOut`; NaN with fewer than 6 architectures.
    """
    size, m = challenger.shape
    if m < 6:
        return HeldOut(np.zeros(size), math.nan, (math.nan, math.nan), 0)
    rng = np.random.default_rng(seed)
    permutations = np.stack([rng.permutation(m) for _ in range(n_splits)])
    choosing, measuring = permutations[:, : m // 2], permutations[:, m // 2 :]
    splits = np.arange(n_splits)
    chosen = {}
    for name, family in (("reference", reference), ("challenger", challenger)):
        chosen_r = _correlations(family, choosing, target=target, method=method)
        best = np.argmax(np.where(np.isnan(chosen_r), -np.inf, chosen_r), axis=0)
        chosen[name] = (best, _correlations(family, measuring, target=target, method=method)[best, splits])
    deltas = chosen["challenger"][1] - chosen["reference"][1]
    finite = deltas[np.isfinite(deltas)]
    choices = np.bincount(chosen["challenger"][0], minlength=size) / n_splits
    if not len(finite):
        return HeldOut(choices, math.nan, (math.nan, math.nan), 0)
    return HeldOut(choices, float(np.median(finite)), percentile_interval(finite), len(finite))


def resampled_correlation(
    values: np.ndarray,
    target: np.ndarray,
    *,
    controls: Sequence[np.ndarray] = (),
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """One predictor's correlation with a target (partial, given `controls`) and its 95% percentile
    interval from resampling the items (with replacement; `resample_indices(n, n_resamples, seed)`), as
    `predictivity` computes them.

    Returns:
        `(r, ci_low, ci_high)`; NaN with fewer than 3 items.
    """
    _check_method(method)
    statistic = functools.partial(
        _correlations,
        target=np.asarray(target, dtype=np.float64),
        method=method,
        controls=[np.asarray(control, dtype=np.float64) for control in controls],
    )
    correlations = _Resampled.of(
        np.asarray(values, dtype=np.float64)[None], statistic, resample_count(n_resamples), seed, minimum=3
    )
    low, high = correlations.interval(0)
    return correlations.value(0), low, high


def resampled_difference(
    values: np.ndarray,
    reference: np.ndarray,
    target: np.ndarray,
    *,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """r(values, target) − r(reference, target), with the 95% percentile interval of that difference over
    resamples of the items that draw the same items for both (paired, as `predictivity`'s Δ).

    Args:
        values: (n,) a predictor, e.g. P + α·TG.
        reference: (n,) the predictor it is set against, e.g. log FLOPs.
        target: (n,) mature accuracy.
        method: `"spearman"` or `"pearson"`.
        n_resamples: Resamples of the items, with replacement (`resample_indices(n, n_resamples, seed)`).
        seed: Seed of the resamples.

    Returns:
        `(difference, ci_low, ci_high)`; NaN with fewer than 3 items.

    Example:

    ```python
    difference, low, high = resampled_difference(p_plus_tg, log_flops, mature)
    shown_better = low > 0
    ```
    """
    _check_method(method)
    statistic = functools.partial(_correlations, target=np.asarray(target, dtype=np.float64), method=method)
    columns = np.stack([np.asarray(reference, dtype=np.float64), np.asarray(values, dtype=np.float64)])
    correlations = _Resampled.of(columns, statistic, resample_count(n_resamples), seed, minimum=3)
    low, high = correlations.delta_interval(1)
    return correlations.value(1) - correlations.value(0), low, high


def to_dataframe(rows: Sequence[Mapping[str, Any]] | Sequence[Any]) -> Any:
    """The rows of `predictivity` (or results such as `replay_curve`'s dataclasses) as a pandas DataFrame.

    pandas is imported here, only when called; keras-sage does not require it.

    Example:

    ```python
    frame = to_dataframe(predictivity(pool))
    frame.pivot(index="budget", columns="predictor", values="r")
    ```
    """
    import pandas

    return pandas.DataFrame([_as_dict(row) for row in rows])


def _as_dict(row: Any) -> dict[str, Any]:
    """A row as a dict: the fields of a dataclass instance, or the row itself (a mapping)."""
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    return dict(row)


@dataclass(frozen=True)
class _Resampled:
    """A statistic of several columns on the full sample (`full`, (k,)) and on its bootstrap resamples
    (`resampled`, (k, B)). For correlations, row 0 is the reference (P) that `delta_interval` subtracts.
    """

    full: np.ndarray
    resampled: np.ndarray

    @classmethod
    def of(
        cls,
        columns: np.ndarray,
        statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
        n_resamples: int,
        seed: int,
        *,
        minimum: int,
    ) -> _Resampled:
        """`statistic(columns, indices)` of `columns` (k, n) on each resample of `indices` (B, n) (a (k, B)
        array), on the full sample and on `resample_indices(n, n_resamples, seed)`; NaN with fewer than
        `minimum` items."""
        size, n = columns.shape
        if n < minimum:
            return cls(np.full(size, math.nan), np.full((size, n_resamples), math.nan))
        full = statistic(columns, np.arange(n)[None])[:, 0]
        return cls(full, statistic(columns, resample_indices(n, n_resamples, seed)))

    def value(self, position: int) -> float:
        return float(self.full[position])

    def interval(self, position: int) -> tuple[float, float]:
        return percentile_interval(self.resampled[position])

    def delta_interval(self, position: int) -> tuple[float, float]:
        return percentile_interval(self.resampled[position] - self.resampled[0])


def _correlations(
    columns: np.ndarray,
    indices: np.ndarray,
    *,
    target: np.ndarray,
    method: str,
    controls: Iterable[np.ndarray] = (),
) -> np.ndarray:
    """The correlation of each of `columns` (k, n) with `target` (n,) on each resample of `indices` (B, n);
    given `controls` (each (n,)), the partial correlation.

    A resample is never materialised: it is the full sample weighted by how often it draws each
    architecture, and every column is centred within it: its values (Pearson) or its ranks within the
    resample (Spearman). The controls are orthogonalised in turn (weighted Gram-Schmidt; in a resample
    where the earlier controls determine one, it adds nothing), and a column's residual is what remains
    of it off the controls' span: the least squares residual, with an intercept, on the resample's drawn
    architectures (without controls, the centred column). Returns a (k, B) array: the weighted
    correlation of each column's residual with the target's, NaN where either is constant or the controls
    determine it (see `_is_determined`).
    """
    weights = _multiplicities(indices, len(target))
    centre = _centred_resampled_ranks if method == "spearman" else _centred_resampled_values
    basis: list[np.ndarray] = []
    for control in controls:
        centred = centre(control, weights)
        residual = _residual(centred, basis, weights)
        basis.append(np.where(_is_determined(residual, centred, weights)[:, None], 0.0, residual))
    target_centred = centre(target, weights)
    target_residual = _residual(target_centred, basis, weights)
    target_determined = _is_determined(target_residual, target_centred, weights)
    weighted_target = weights * target_residual
    target_variance = (weighted_target * target_residual).sum(axis=1)
    correlations = np.empty((len(columns), len(indices)))
    for position, values in enumerate(columns):
        centred = centre(values, weights)
        residual = _residual(centred, basis, weights)
        covariance = (residual * weighted_target).sum(axis=1)
        variance = (weights * residual**2).sum(axis=1)
        undefined = target_determined | _is_determined(residual, centred, weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            correlations[position] = np.where(
                undefined, math.nan, covariance / np.sqrt(variance * target_variance)
            )
    return correlations


def _residual(centred: np.ndarray, basis: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """`centred` (B, n) less its weighted projection on each of the orthogonal `basis` (B, n) directions
    (a zero direction projects nothing)."""
    residual = centred
    for direction in basis:
        norm = (weights * direction**2).sum(axis=1)
        projection = (weights * direction * residual).sum(axis=1)
        coefficient = np.divide(projection, norm, out=np.zeros_like(norm), where=norm > 0)
        residual = residual - coefficient[:, None] * direction
    return residual


def _is_determined(residual: np.ndarray, centred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per resample, whether the `centred` values (B, n) are constant (a weighted variance of at most
    `_CONSTANT_VARIANCE` per item) or their `residual` given the controls is zero (at most
    `_RESIDUAL_TOLERANCE` of their norm)."""
    residual_variance = (weights * residual**2).sum(axis=1)
    variance = (weights * centred**2).sum(axis=1)
    constant = variance <= centred.shape[1] * _CONSTANT_VARIANCE
    return np.asarray(constant | (residual_variance <= _RESIDUAL_TOLERANCE**2 * variance))


def _multiplicities(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each resample of `indices` (B, size) draws each of the n items: a (B, n) float array (a
    resample with replacement has size n; a half of the items, size n // 2)."""
    n_resamples = len(indices)
    offsets = (np.arange(n_resamples) * n)[:, None]
    return (
        np.bincount((indices + offsets).ravel(), minlength=n_resamples * n)
        .reshape(n_resamples, n)
        .astype(float)
    )


def _centred_resampled_values(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`values` (n,), standardised, minus their weighted mean in each resample: a (B, n) array."""
    spread = values.std()
    standardised = (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)
    centred: np.ndarray = standardised[None, :] - (weights @ standardised / weights.sum(axis=1))[:, None]
    return centred


def _centred_resampled_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The average rank of each of `values` (n,) within each resample, minus the resample's mean rank.

    An item's rank in a resample is the weight of smaller values plus (the weight of equal values + 1)/2,
    read off a cumulative sum of the weights in sorted order (no sort per resample): with `below` and
    `through` the cumulative weights before and through its run of ties, (below + through + 1)/2. Items a
    resample does not draw get a rank too; their weight of zero leaves them out of every sum. Returns a
    (B, n) array.
    """
    n = len(values)
    order = np.argsort(values, kind="stable")
    starts, ends = tie_bounds(values[order])
    cumulative = np.zeros((weights.shape[0], n + 1))
    np.cumsum(np.take(weights, order, axis=1), axis=1, out=cumulative[:, 1:])
    # Minus the mean rank (W + 1)/2 of a resample of total weight W (n with replacement, n // 2 a half).
    total = cumulative[:, -1:]
    sorted_ranks = (np.take(cumulative, starts, axis=1) + np.take(cumulative, ends + 1, axis=1) - total) / 2
    return np.take(sorted_ranks, np.argsort(order), axis=1)


def tie_bounds(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of rows sorted along the last axis, the first and last position of its run of
    equal values.

    Example:

    ```python
    tie_bounds(np.array([1.0, 2.0, 2.0, 3.0]))  # (array([0, 1, 1, 3]), array([0, 2, 2, 3]))
    ```
    """
    n = sorted_values.shape[-1]
    positions = np.broadcast_to(np.arange(n), sorted_values.shape)
    changes = sorted_values[..., 1:] != sorted_values[..., :-1]
    edge = np.ones((*sorted_values.shape[:-1], 1), dtype=bool)
    first = np.concatenate([edge, changes], axis=-1)
    last = np.concatenate([changes, edge], axis=-1)
    starts = np.maximum.accumulate(np.where(first, positions, 0), axis=-1)
    ends = np.flip(np.minimum.accumulate(np.flip(np.where(last, positions, n - 1), -1), axis=-1), -1)
    return starts, ends


def _groups_by_sample(
    predictors: Mapping[str, np.ndarray], premature: np.ndarray, target: np.ndarray
) -> list[tuple[list[str], np.ndarray]]:
    """Predictor names grouped by the architectures they are computed on (predictor, P, target present).

    Predictors with the same sample share one bootstrap (usually all of them, when nothing is missing).
    """
    groups: dict[bytes, tuple[list[str], np.ndarray]] = {}
    base = np.isfinite(premature) & np.isfinite(target)
    for name, values in predictors.items():
        sample = base & np.isfinite(values)
        groups.setdefault(sample.tobytes(), ([], sample))[0].append(name)
    return list(groups.values())


def constant_columns(pool: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """Those of `names` that take one and the same finite value in every row of the pool that has one
    (`log_flops` from `flops`): a control the same for every architecture (the depth of NAS-Bench-201's
    cells) controls for nothing. A column no row has is absent, not constant.

    Args:
        pool: The pool's rows.
        names: Column names.

    Returns:
        The constant ones, in the order of `names`.

    Example:

    ```python
    constant_columns(pool, ("depth", "log_flops"))  # ["depth"] for a NAS-Bench-201 pool
    ```
    """
    rows = list(pool)
    constant = []
    for name in names:
        values = column(rows, name)
        if len(np.unique(values[np.isfinite(values)])) == 1:
            constant.append(name)
    return constant


def _present_columns(pool: Iterable[Mapping[str, Any]]) -> list[str]:
    """The columns of a pool in first-seen order, with `log_flops` where the pool has `flops`."""
    present: dict[str, None] = {}
    for row in pool:
        present.update(dict.fromkeys(row))
    if contract.FLOPS in present:
        present[LOG_FLOPS] = None
    return list(present)


def _predictors(
    rows: Sequence[Mapping[str, Any]], present: Sequence[str], alphas: Sequence[float]
) -> dict[str, np.ndarray]:
    """The values of every predictor of `predictivity` at one budget, by name, in the order of its rows."""
    premature = column(rows, contract.PREMATURE_ACCURACY)
    guidance = column(rows, contract.TEACHER_GUIDANCE)
    predictors = {PREMATURE: premature, GUIDANCE: guidance}
    for name in present:
        if contract.teacher_layer_of_metric(name) is not None:
            predictors[name] = column(rows, name)
    for alpha in alphas:
        predictors[combined_predictor_name(alpha)] = combined_score(premature, guidance, alpha)
    for name in CONTROL_COLUMNS:
        if name in present:
            predictors[name] = column(rows, name)
    for name in (TG_UNTRAINED, TG_LABELS):
        if name in present:
            for alpha in alphas:
                predictors[combined_predictor_name(alpha, name)] = combined_score(
                    premature, predictors[name], alpha
                )
    return predictors


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, math.nan)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
