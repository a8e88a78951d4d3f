"""Real searches compared: one arm's winners against a baseline arm's, paired by search seed.

A search comparison is a list of `search_summary` rows, each with the `seed` its search ran with (the
oracle's and the candidates'); the arms differ in α (`alpha`). Searches of the two arms with the same seed
are paired, and the arm's gain is the mean of the per-seed differences of the winners' mature accuracy,
with a Student's t interval over seeds (few seeds give a wide interval, as they should).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from keras_sage.analysis.predictors import percentile_interval, resample_indices
from keras_sage.analysis.records import SEARCH_EXAMPLES, TOP_SCORE_MATURE_ACCURACY, WINNER_MATURE_ACCURACY

# The values compared, and how a sentence names them.
_COMPARED = (
    (WINNER_MATURE_ACCURACY, "the winner after reranking"),
    (TOP_SCORE_MATURE_ACCURACY, "the top-scored candidate (before reranking)"),
)


@dataclass(frozen=True)
class SearchComparison:
    """An arm's searches against the baseline arm's, paired by seed.

    Attributes:
        alpha: The arm's α (or its name, where arms share an α).
        baseline_alpha: The baseline arm's α (usually 0: P alone), or its name.
        seeds: The seeds both arms ran, ascending.
        arm_values: The arm's winner value at each seed.
        baseline_values: The baseline's winner value at each seed.
        mean_difference: Mean over seeds of arm − baseline.
        ci_low: Lower end of its Student's t interval (NaN with fewer than 2 seeds or differences that
            do not vary).
        ci_high: Upper end of that interval.
        wins: Seeds where the arm's winner is better.
        ties: Seeds where both winners are equal.
        losses: Seeds where the baseline's winner is better.
        examples_ratio: The arm's search examples over the baseline's, summed over the paired seeds (1
            at equal cost).
        unpaired_seeds: Seeds only one arm ran, left out.
    """

    alpha: float | str
    baseline_alpha: float | str
    seeds: tuple[int, ...]
    arm_values: tuple[float, ...]
    baseline_values: tuple[float, ...]
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    examples_ratio: float
    unpaired_seeds: tuple[int, ...]


def compare_searches(
    rows: Sequence[Mapping[str, Any]],
    alpha: float | str,
    baseline_alpha: float | str = 0.0,
    value: str = WINNER_MATURE_ACCURACY,
    confidence: float = 0.95,
) -> SearchComparison:
    """Compares the searches with α = `alpha` against those with α = `baseline_alpha`, paired by seed.

    An arm is named by its α, or, where arms share an α (P alone against P + β·proxy, both α = 0), by the
    `arm` its rows name.

    Args:
        rows: `search_summary` rows, each with `alpha` and the `seed` of its search.
        alpha: The arm to compare: its α, or its `arm` name.
        baseline_alpha: The arm it is compared against: its α, or its `arm` name.
        value: The column compared; by default the winner's mature accuracy after `rerank`.
        confidence: The confidence level of the interval.

    Returns:
        A `SearchComparison`.

    Raises:
        ValueError: A row lacks `alpha`, `seed` or `value`; two rows have the same arm and seed; or no seed
            was run by both arms (the message lists what each ran).

    Example:

    ```python
    from keras_sage.analysis import compare_searches, read_pool

    comparison = compare_searches(read_pool("searches.jsonl"), alpha=2.0)
    print(comparison.mean_difference, comparison.ci_low, comparison.ci_high)
    ```
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    arm = _rows_by_seed(rows, alpha, value)
    baseline = _rows_by_seed(rows, baseline_alpha, value)
    seeds = tuple(sorted(set(arm) & set(baseline)))
    if not seeds:
        raise ValueError(
            f"no seed was searched with both {_arm_name(alpha)} (seeds {sorted(arm)}) and "
            f"{_arm_name(baseline_alpha)} (seeds {sorted(baseline)})"
        )
    arm_values = np.array([float(arm[seed][value]) for seed in seeds])
    baseline_values = np.array([float(baseline[seed][value]) for seed in seeds])
    differences = arm_values - baseline_values
    ci_low, ci_high = math.nan, math.nan
    # Differences equal to rounding have no spread: Student's interval is undefined there, not zero-wide.
    if len(seeds) > 1 and np.ptp(differences) > 1e-12:
        interval = stats.ttest_1samp(differences, 0.0).confidence_interval(confidence)
        ci_low, ci_high = float(interval.low), float(interval.high)
    arm_examples = sum(float(arm[seed].get(SEARCH_EXAMPLES, math.nan)) for seed in seeds)
    baseline_examples = sum(float(baseline[seed].get(SEARCH_EXAMPLES, math.nan)) for seed in seeds)
    return SearchComparison(
        alpha=alpha if isinstance(alpha, str) else float(alpha),
        baseline_alpha=baseline_alpha if isinstance(baseline_alpha, str) else float(baseline_alpha),
        seeds=seeds,
        arm_values=tuple(arm_values.tolist()),
        baseline_values=tuple(baseline_values.tolist()),
        mean_difference=float(differences.mean()),
        ci_low=ci_low,
        ci_high=ci_high,
        wins=int((differences > 0).sum()),
        ties=int((differences == 0).sum()),
        losses=int((differences < 0).sum()),
        examples_ratio=arm_examples / baseline_examples if baseline_examples else math.nan,
        unpaired_seeds=tuple(sorted(set(arm) ^ set(baseline))),
    )


def is_search_comparison(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether `rows` are `search_summary` rows with seeds (a search comparison), not a pool."""
    return bool(rows) and all({"arm", "alpha", "seed", WINNER_MATURE_ACCURACY} <= set(row) for row in rows)


def describe_comparisons(rows: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> list[str]:
    """Plain sentences comparing each guided arm's searches with P alone's, paired by seed.

    The baseline is P alone (α = 0, no proxy term). Arms are named by their `arm` where the rows name
    them (NAS-Bench-201's searches: P + α·TG and P + β·proxy), else by their α. Where the rows hold the
    top-scored cell's `regret` to the space's best and its `curve` (searches with looked-up mature
    accuracies), each arm gets one sentence on regret and one on `search_efficiency`; otherwise one on the
    winner after reranking and, where every row records it, one on the top-scored candidate. Where there
    are several guided arms, each pair of them is then compared the same way, paired by seed (teacher-
    guided arms first, so P + α·TG is set against P + β·proxy), without the efficiency sentence, whose
    reference is P's final regret.

    Searches run at several premature budgets (rows with different `budget`s) are compared one budget at a
    time, each sentence led by its budget.

    Args:
        rows: `search_summary` rows (or NAS-Bench-201 search rows), each with `alpha` and `seed`.
        confidence: The confidence level of the t intervals.

    Returns:
        The sentences; empty when the rows do not hold both P alone and a guided arm.
    """
    budgets = sorted({row["budget"] for row in rows if "budget" in row})
    if len(budgets) > 1:
        return [
            f"At {budget} steps: {sentence}"
            for budget in budgets
            for sentence in describe_comparisons(
                [row for row in rows if row.get("budget") == budget], confidence
            )
        ]
    arms = sorted(
        {_arm_of(row) for row in rows},
        key=lambda arm: (_uses_proxy(rows, arm), _arm_alpha(rows, arm), str(arm)),
    )
    baseline = next((arm for arm in arms if _is_p_alone(rows, arm)), None)
    guided = [arm for arm in arms if arm != baseline]
    if baseline is None or not guided:
        return []
    sentences = []
    pairs = [(arm, baseline) for arm in guided] + list(itertools.combinations(guided, 2))
    for arm, reference in pairs:
        reference_seeds = {int(row["seed"]) for row in rows if _arm_of(row) == reference}
        if not reference_seeds & {int(row["seed"]) for row in rows if _arm_of(row) == arm}:
            sentences.append(f"{_arm_name(arm)}: no seed searched by {_arm_name(reference)} too, yet.")
            continue
        if all("regret" in row and "curve" in row for row in rows):
            sentences.extend(
                _describe_regret(rows, arm, reference, confidence, with_efficiency=reference == baseline)
            )
            continue
        for value, what in _COMPARED:
            if not all(value in row for row in rows):
                continue
            comparison = compare_searches(
                rows, alpha=arm, baseline_alpha=reference, value=value, confidence=confidence
            )
            sentences.append(
                f"With {_arm_name(arm)}, {what} matures at {np.mean(comparison.arm_values):.4f} on average "
                f"against {_arm_name(reference)}'s {np.mean(comparison.baseline_values):.4f}: a difference "
                f"of {_signed(comparison.mean_difference)}, paired over {len(comparison.seeds)} seed(s) "
                f"({_interval(comparison.ci_low, comparison.ci_high, confidence)}; better at "
                f"{comparison.wins}, equal at {comparison.ties}, worse at {comparison.losses}), at "
                f"{comparison.examples_ratio:.3f}× {_arm_name(reference)}'s search examples."
            )
    return sentences


def _describe_regret(
    rows: Sequence[Mapping[str, Any]],
    arm: float | str,
    baseline: float | str,
    confidence: float,
    *,
    with_efficiency: bool,
) -> list[str]:
    """The regret sentence of one arm against another, and (`with_efficiency`) the efficiency sentence."""
    # Lower is better: compare_searches's "wins" (arm − baseline > 0) are seeds where the regret is higher.
    comparison = compare_searches(
        rows, alpha=arm, baseline_alpha=baseline, value="regret", confidence=confidence
    )
    name, base = _arm_name(arm), _arm_name(baseline)
    regret = (
        f"{name}: the top-scored cell's regret to the space's best is {np.mean(comparison.arm_values):.4f} "
        f"on average against {base}'s {np.mean(comparison.baseline_values):.4f}, a difference of "
        f"{_signed(comparison.mean_difference)} paired over {len(comparison.seeds)} seed(s) "
        f"({_interval(comparison.ci_low, comparison.ci_high, confidence)}; lower at {comparison.losses}, "
        f"equal at {comparison.ties}, higher at {comparison.wins}), at {comparison.examples_ratio:.3f}× "
        f"{base}'s search examples."
    )
    if not with_efficiency:
        return [regret]
    efficiency = search_efficiency(rows, arm, baseline)
    return [
        regret,
        f"{name} reached {base}'s final regret at {efficiency.reached} of {len(efficiency.seeds)} seed(s); "
        f"the examples {base} needed to reach it over those {name} needed: {efficiency.ratio:.2f} "
        f"[{efficiency.ci_low:.2f}, {efficiency.ci_high:.2f}] (seeds resampled; 0 if {name} never reached "
        "it at some seed; a search reaches a regret once its top-scored cell keeps it).",
    ]


def _interval(low: float, high: float, confidence: float) -> str:
    """A t interval as a sentence's words, or why there is none."""
    if math.isnan(low):
        return "no interval: fewer than 2 seeds or no spread"
    return f"{confidence:.0%} t interval [{_signed(low)}, {_signed(high)}]"


def _signed(value: float) -> str:
    """`value` with its sign to 4 decimals, a difference that rounds to 0 written +0.0000, never -0.0000."""
    return f"{round(value, 4) + 0.0:+.4f}"


def _arm_of(row: Mapping[str, Any]) -> float | str:
    """A row's arm: its `arm` name where it has one, else its α."""
    return str(row["arm"]) if "arm" in row else float(row["alpha"])


def _arm_alpha(rows: Sequence[Mapping[str, Any]], arm: float | str) -> float:
    """The α of the arm's rows."""
    return next(float(row["alpha"]) for row in rows if _arm_of(row) == arm)


def _is_p_alone(rows: Sequence[Mapping[str, Any]], arm: float | str) -> bool:
    """Whether the arm's rows score by P alone: α = 0 and no proxy term."""
    own = [row for row in rows if _arm_of(row) == arm]
    return all(float(row["alpha"]) == 0 for row in own) and not _uses_proxy(rows, arm)


def _uses_proxy(rows: Sequence[Mapping[str, Any]], arm: float | str) -> bool:
    """Whether the arm's score has a proxy term (P + β·proxy)."""
    return any(row.get("proxy_weights") for row in rows if _arm_of(row) == arm)


def _arm_name(arm: float | str) -> str:
    return arm if isinstance(arm, str) else f"α = {arm:g}"


def _rows_by_seed(
    rows: Sequence[Mapping[str, Any]], alpha: float | str, value: str
) -> dict[int, Mapping[str, Any]]:
    """The rows of the arm with this α (or this `arm` name), by seed; checked for the columns the
    comparison reads."""
    by_seed: dict[int, Mapping[str, Any]] = {}
    for position, row in enumerate(rows):
        missing = [name for name in ("alpha", "seed", value) if name not in row]
        if missing:
            raise ValueError(f"search row {position} has no {', '.join(missing)}")
        if isinstance(alpha, str):
            if row.get("arm") != alpha:
                continue
        elif not math.isclose(float(row["alpha"]), alpha, rel_tol=0, abs_tol=1e-12) or row.get(
            "proxy_weights"
        ):
            continue
        seed = int(row["seed"])
        if seed in by_seed:
            raise ValueError(f"search row {position} repeats {_arm_name(alpha)} with seed {seed}")
        by_seed[seed] = row
    return by_seed


@dataclass(frozen=True)
class SearchEfficiency:
    """How many times fewer examples an arm's searches need to reach the baseline's final regret.

    Attributes:
        ratio: Σ over seeds of the examples the baseline needed to reach its own final regret / Σ of the
            examples the arm needed to reach it (0 when some seed never reached it: the arm never caught up
            there). An arm that searches exactly as the baseline does has a ratio of 1.
        ci_low: The 2.5th percentile of the ratio over resamples of the seeds (with replacement).
        ci_high: The 97.5th percentile.
        reached: Seeds where the arm reached the baseline's final regret (and kept it to its end).
        seeds: The paired seeds.
    """

    ratio: float
    ci_low: float
    ci_high: float
    reached: int
    seeds: tuple[int, ...]


def search_efficiency(
    rows: Sequence[Mapping[str, Any]],
    arm: float | str,
    baseline: float | str = 0.0,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> SearchEfficiency:
    """The examples an arm needs to reach the baseline's final regret, against the baseline's, by seed.

    Each row holds `curve`: `[examples so far, regret of the top-scored candidate so far]` after each trial
    (what a search with looked-up mature accuracies records, e.g. on NAS-Bench-201). Both arms' examples
    are read off their curves, so they are counted alike.

    Args:
        rows: Search rows of both arms, with `seed` and `curve`.
        arm: The arm (its α, or its `arm` name).
        baseline: The baseline arm.
        n_resamples: Resamples of the seeds behind the interval.
        seed: Seed of the resamples.

    Returns:
        A `SearchEfficiency`.
    """
    guided = _rows_by_seed(rows, arm, "curve")
    reference = _rows_by_seed(rows, baseline, "curve")
    seeds = tuple(sorted(set(guided) & set(reference)))
    if not seeds:
        raise ValueError(f"no seed was searched with both {_arm_name(arm)} and {_arm_name(baseline)}")
    # Both from the curves: the examples each arm had processed from when its top-scored candidate kept the
    # baseline's final regret (`_examples_to_reach`; the baseline's own, at the latest, at its end).
    finals = [reference[s]["curve"][-1][1] for s in seeds]
    baseline_examples = np.array(
        [_examples_to_reach(reference[s]["curve"], final) for s, final in zip(seeds, finals, strict=True)]
    )
    needed = np.array(
        [_examples_to_reach(guided[s]["curve"], final) for s, final in zip(seeds, finals, strict=True)]
    )

    def ratio(sample: np.ndarray) -> float:
        total = needed[sample].sum()
        return 0.0 if math.isinf(total) else float(baseline_examples[sample].sum() / total)

    resampled = np.array([ratio(sample) for sample in resample_indices(len(seeds), n_resamples, seed)])
    low, high = percentile_interval(resampled)
    return SearchEfficiency(
        ratio=ratio(np.arange(len(seeds))),
        ci_low=low,
        ci_high=high,
        reached=int(np.isfinite(needed).sum()),
        seeds=seeds,
    )


def _examples_to_reach(curve: Sequence[Sequence[float]], regret: float) -> float:
    """The examples processed from which a search's curve stays at or below `regret` (inf if its end is
    above it). The curve follows the top-scored candidate, whose regret can rise again when a new
    candidate scores higher: a search "reaches" a regret only once it keeps it."""
    reached = math.inf
    for examples, current in curve:
        if current > regret:
            reached = math.inf
        elif math.isinf(reached):
            reached = float(examples)
    return reached
