"""Random search replayed on a pool, checked against enumerating every search."""

import itertools
import math

import numpy as np
import pytest

from keras_sage.analysis.predictors import resample_indices
from keras_sage.analysis.search_replay import efficiency_ratio, replay, replay_curve


def pool_rows(budget, premature, guidance, mature, examples=100, first=0):
    return [
        {
            "arch_id": f"a{first + i:02d}",
            "budget": budget,
            "examples": examples,
            "premature_accuracy": p,
            "teacher_guidance": g,
            "mature_accuracy": m,
            "hyperparameters": {"depth": i},
        }
        for i, (p, g, m) in enumerate(zip(premature, guidance, mature, strict=True))
    ]


# Five architectures; with α = 1 the first and the third tie (score 0.6).
PREMATURE = [0.1, 0.2, 0.3, 0.15, 0.05]
GUIDANCE = [0.5, 0.1, 0.3, 0.9, 0.2]
MATURE = [0.3, 0.9, 0.2, 0.5, 0.7]


def enumerated_outcomes(premature, guidance, mature, alpha, trials):
    """Every search's best mature accuracy, each search with weight 1, a tie's weight shared: pairs
    (mature accuracy, weight)."""
    outcomes = []
    for drawn in itertools.combinations(range(len(mature)), trials):
        scores = [premature[i] + alpha * guidance[i] for i in drawn]
        best = [i for i, score in zip(drawn, scores, strict=True) if score == max(scores)]
        outcomes += [(mature[i], 1 / len(best)) for i in best]
    return outcomes


def expected_value(outcomes):
    return sum(value * weight for value, weight in outcomes) / sum(weight for _, weight in outcomes)


def inverted_cdf_percentiles(outcomes, levels):
    values, weights = np.array(outcomes).T
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return [values[order][np.argmax(cumulative >= level - 1e-12)] for level in levels]


@pytest.mark.parametrize("alpha", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("trials", [1, 2, 3, 5])
def test_replay_is_the_average_over_every_search(alpha, trials):
    pool = pool_rows(7, PREMATURE, GUIDANCE, MATURE, examples=640)
    result = replay(pool, budget=7, alpha=alpha, trials=trials)

    outcomes = enumerated_outcomes(PREMATURE, GUIDANCE, MATURE, alpha, trials)
    assert result.mean_best_mature_accuracy == pytest.approx(expected_value(outcomes), abs=1e-12)
    assert [result.ci_low, result.ci_high] == inverted_cdf_percentiles(outcomes, [0.025, 0.975])
    assert result.examples_processed == trials * 640
    assert (result.alpha, result.budget, result.trials, result.n_architectures) == (alpha, 7, trials, 5)


def test_replay_of_two_of_five_is_the_mean_over_the_ten_pairs():
    pool = pool_rows(1, PREMATURE, GUIDANCE, MATURE)
    # α = 0: the pairs' best by P; α = 1: the tie of a00 and a02 (0.3 and 0.2) counts 0.25.
    assert replay(pool, budget=1, alpha=0.0, trials=2).mean_best_mature_accuracy == pytest.approx(0.48)
    assert replay(pool, budget=1, alpha=1.0, trials=2).mean_best_mature_accuracy == pytest.approx(0.415)


def test_one_trial_is_the_pool_mean_and_all_trials_the_best_score():
    rng = np.random.default_rng(0)
    premature, guidance, mature = rng.uniform(0, 1, (3, 12))
    pool = pool_rows(1, premature, guidance, mature)
    one = replay(pool, budget=1, alpha=2.0, trials=1)
    assert one.mean_best_mature_accuracy == pytest.approx(mature.mean(), abs=1e-12)
    assert [one.ci_low, one.ci_high] == [np.sort(mature)[0], np.sort(mature)[-1]]  # 1/12 per architecture
    every = replay(pool, budget=1, alpha=2.0, trials=12)
    best = mature[np.argmax(premature + 2 * guidance)]
    assert every.mean_best_mature_accuracy == pytest.approx(best, abs=1e-12)
    assert every.ci_low == every.ci_high == best


def test_an_architecture_without_tg_is_left_out_of_every_score():
    pool = pool_rows(1, PREMATURE, GUIDANCE, MATURE)
    pool[1]["teacher_guidance"] = math.nan  # the best architecture diverged during its premature training
    for alpha in (0.0, 1.0):
        result = replay(pool, budget=1, alpha=alpha, trials=4)
        assert result.n_architectures == 4
        kept = [0, 2, 3, 4]
        outcomes = enumerated_outcomes(
            [PREMATURE[i] for i in kept], [GUIDANCE[i] for i in kept], [MATURE[i] for i in kept], alpha, 4
        )
        assert result.mean_best_mature_accuracy == pytest.approx(expected_value(outcomes), abs=1e-12)


def test_too_many_trials_are_refused():
    with pytest.raises(ValueError, match="from 1 to the 5 architectures"):
        replay(pool_rows(1, PREMATURE, GUIDANCE, MATURE), budget=1, alpha=1.0, trials=6)


def test_replay_curve_replays_p_and_the_guided_score_on_the_architectures_of_every_budget():
    early = pool_rows(1, PREMATURE, GUIDANCE, MATURE, examples=100)
    late = pool_rows(10, MATURE, GUIDANCE, MATURE, examples=1000)
    late[4]["premature_accuracy"] = math.nan
    curve = replay_curve(early + late, budgets=[1, 10], alpha=1.0, trials_grid=[1, 2, 4])

    assert [(point.alpha, point.budget, point.trials) for point in curve] == [
        (alpha, budget, trials) for alpha in (0.0, 1.0) for budget in (1, 10) for trials in (1, 2, 4)
    ]
    assert all(point.n_architectures == 4 for point in curve)
    without_a04 = [row for row in early if row["arch_id"] != "a04"]
    assert curve[2] == replay(without_a04, budget=1, alpha=0.0, trials=4)
    assert curve[8] == replay(without_a04, budget=1, alpha=1.0, trials=4)
    assert [point.examples_processed for point in curve[3:6]] == [1000, 2000, 4000]
    assert len(replay_curve(early, budgets=[1], alpha=0.0, trials_grid=[2])) == 1


def efficiency_pool(n=20, seed=0):
    """At budget 1 (100 examples) P says nothing and TG is mature accuracy; at budget 10 (1000 examples)
    P is mature accuracy. A search by P needs budget 10; one by P + TG finds the same at budget 1."""
    mature = np.random.default_rng(seed).permutation(np.linspace(0.5, 0.9, n))
    return pool_rows(1, np.zeros(n), mature, mature, examples=100) + pool_rows(
        10, mature, np.zeros(n), mature, examples=1000
    )


def test_the_efficiency_ratio_of_a_pool_where_tg_tells_early_what_p_tells_late():
    ratio = efficiency_ratio(efficiency_pool(), [1, 10], alpha=1.0, trials_grid=range(1, 21), n_boot=100)
    assert ratio.target_accuracy == pytest.approx(0.9)  # P's most expensive search draws every architecture
    assert ratio.examples_premature == 20 * 1000 and ratio.examples_guided == 20 * 100
    assert ratio.ratio == 10.0
    # In every resample the best architecture is found with as many trials at either budget.
    assert ratio.ci_low == ratio.ci_high == 10.0
    assert ratio.n_architectures == 20


def test_the_efficiency_ratio_is_zero_when_the_guided_search_never_reaches_p():
    pool = efficiency_pool(n=8)
    for row in pool:
        row["teacher_guidance"] = -row["mature_accuracy"]  # TG points at the worst architectures
    ratio = efficiency_ratio(pool, [1, 10], alpha=5.0, trials_grid=range(1, 9), n_boot=20)
    assert ratio.ratio == 0.0 and math.isinf(ratio.examples_guided)
    assert ratio.ci_low == ratio.ci_high == 0.0


def test_the_efficiency_ratio_interval_recomputes_the_costs_on_each_resample():
    rng = np.random.default_rng(4)
    n = 10
    mature = rng.uniform(0.5, 0.9, n)
    pool = pool_rows(1, mature + rng.normal(0, 0.2, n), mature + rng.normal(0, 0.02, n), mature, examples=100)
    pool += pool_rows(4, mature + rng.normal(0, 0.1, n), rng.uniform(0, 1, n), mature, examples=400)
    grid = [1, 2, 3, 5, 8, 10]
    result = efficiency_ratio(pool, [1, 4], alpha=2.0, trials_grid=grid, n_boot=50, seed=4)
    assert result.ratio > 1 and result.ci_low < result.ci_high  # a pool whose answer is not trivial

    def ratio_of(rows):
        """The ratio by its definition, each mean by enumerating every search."""

        def mean_best(alpha, budget, trials):
            at_budget = [row for row in rows if row["budget"] == budget]
            columns = [
                [row[name] for row in at_budget] for name in ("premature_accuracy", "teacher_guidance")
            ]
            mature = [row["mature_accuracy"] for row in at_budget]
            return expected_value(enumerated_outcomes(*columns, mature, alpha, trials))

        target = mean_best(0.0, 4, 10)  # P's most expensive search: budget 4 (400 examples), 10 trials
        least_cost = {
            alpha: min(
                (
                    100 * budget * trials
                    for budget in (1, 4)
                    for trials in grid
                    if mean_best(alpha, budget, trials) >= target - 1e-12
                ),
                default=math.inf,
            )
            for alpha in (0.0, 2.0)
        }
        return least_cost[0.0] / least_cost[2.0]

    assert result.ratio == pytest.approx(ratio_of(pool), abs=1e-12)
    resampled = []
    for indices in resample_indices(n, 50, 4):
        rows = []
        for budget in (1, 4):
            at_budget = sorted(
                (row for row in pool if row["budget"] == budget), key=lambda row: row["arch_id"]
            )
            rows += [dict(at_budget[i], arch_id=f"draw{k:02d}") for k, i in enumerate(indices)]
        resampled.append(ratio_of(rows))
    assert [result.ci_low, result.ci_high] == pytest.approx(np.percentile(resampled, [2.5, 97.5]), abs=1e-12)


def test_the_efficiency_ratio_needs_the_examples_of_every_budget():
    pool = efficiency_pool(n=5)
    for row in pool:
        del row["examples"]
    with pytest.raises(ValueError, match="no `examples`"):
        efficiency_ratio(pool, [1, 10], alpha=1.0, trials_grid=[1, 5])
