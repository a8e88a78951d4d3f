"""Real searches compared arm against baseline, paired by seed."""

import math

import pytest

from keras_sage.analysis import compare_searches, format_table, search_summary
from keras_sage.analysis.records import ProjectRecords
from keras_sage.analysis.search_comparison import search_efficiency


def search_row(alpha, seed, mature, examples=1000):
    return {"alpha": alpha, "seed": seed, "winner mature acc": mature, "examples (M1·E1)": examples}


def test_differences_are_paired_by_seed_with_a_t_interval():
    rows = [
        search_row(0.0, 1, 0.40),
        search_row(2.0, 3, 0.50, examples=990),
        search_row(0.0, 3, 0.45),
        search_row(2.0, 1, 0.42, examples=1010),
        search_row(2.0, 2, 0.41, examples=1000),
        search_row(0.0, 2, 0.44),
        search_row(0.0, 9, 0.30),  # no guided search with seed 9
    ]
    comparison = compare_searches(rows, alpha=2.0)
    assert comparison.seeds == (1, 2, 3) and comparison.unpaired_seeds == (9,)
    assert comparison.arm_values == pytest.approx((0.42, 0.41, 0.50))
    assert comparison.baseline_values == pytest.approx((0.40, 0.44, 0.45))
    # Differences +0.02, −0.03, +0.05: mean 0.0133..., sd 0.040415, t(0.975, df 2) = 4.302653.
    differences = [0.02, -0.03, 0.05]
    mean = sum(differences) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert comparison.mean_difference == pytest.approx(mean)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx((mean - half, mean + half), abs=1e-6)
    assert (comparison.wins, comparison.ties, comparison.losses) == (2, 0, 1)
    assert comparison.examples_ratio == pytest.approx(3000 / 3000)


def test_one_seed_or_no_spread_has_no_interval():
    one = compare_searches([search_row(0.0, 1, 0.462), search_row(2.0, 1, 0.462)], alpha=2.0)
    assert one.mean_difference == 0 and (one.wins, one.ties, one.losses) == (0, 1, 0)
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)
    same = compare_searches(
        [search_row(0.0, 1, 0.4), search_row(1.0, 1, 0.5), search_row(0.0, 2, 0.3), search_row(1.0, 2, 0.4)],
        alpha=1.0,
    )
    assert same.mean_difference == pytest.approx(0.1) and math.isnan(same.ci_low)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([search_row(0.0, 1, 0.4), search_row(2.0, 2, 0.5)], r"seeds \[2\]\) and α = 0 \(seeds \[1\]\)"),
        ([search_row(0.0, 1, 0.4), {"alpha": 2.0, "winner mature acc": 0.5}], "search row 1 has no seed"),
        ([search_row(0.0, 1, 0.4), search_row(0.0, 1, 0.5)], "search row 1 repeats α = 0 with seed 1"),
    ],
)
def test_bad_comparisons_are_named(rows, message):
    with pytest.raises(ValueError, match=message):
        compare_searches(rows, alpha=2.0)


def finished_search(alpha, mature_accuracy, search_examples):
    return ProjectRecords(
        directory="unused",
        records=[],
        alpha=alpha,
        search_examples=search_examples,
        rerank_examples=0,
        bootstrap_examples=0,
        reranked=[{"trial_id": "3", "score": 0.5, "mature_accuracy": mature_accuracy}],
    )


def test_search_summary_rows_compare_as_written():
    rows = [
        {**search_summary("α = 0", finished_search(0.0, 0.6, 500)), "seed": 1},
        {**search_summary("α = 1", finished_search(1.0, 0.7, 400)), "seed": 1},
    ]
    assert "winner mature acc" in format_table(rows)
    comparison = compare_searches(rows, alpha=1.0)
    assert comparison.mean_difference == pytest.approx(0.1) and comparison.examples_ratio == pytest.approx(
        0.8
    )


def test_the_top_scored_candidate_is_what_the_search_chose_before_reranking():
    records = finished_search(2.0, 0.0, 100)
    records.reranked[:] = [
        {"trial_id": "3", "score": 0.4, "mature_accuracy": 0.7},
        {"trial_id": "5", "score": 0.6, "mature_accuracy": 0.5},
        {"trial_id": "8", "score": math.nan, "mature_accuracy": 0.6},
    ]
    summary = search_summary("α = 2", records)
    assert summary["winner"] == "3" and summary["winner mature acc"] == 0.7
    assert summary["top-score mature acc"] == 0.5
    rows = [{**summary, "seed": 1}, {**summary, "alpha": 0.0, "seed": 1, "top-score mature acc": 0.45}]
    assert compare_searches(rows, alpha=2.0, value="top-score mature acc").mean_difference == pytest.approx(
        0.05
    )
    records.reranked.clear()
    assert math.isnan(search_summary("α = 2", records)["top-score mature acc"])


def nb201_row(arm, seed, regret, curve, examples, alpha=0.0, proxy_weights=None):
    return {
        "arm": arm,
        "alpha": alpha,
        "seed": seed,
        "regret": regret,
        "winner mature acc": 0.94 - regret,
        "curve": curve,
        "examples (M1·E1)": examples,
        "proxy_weights": proxy_weights or {},
    }


def test_arms_that_share_an_alpha_are_compared_by_name():
    rows = [
        nb201_row("P", 1, 0.05, [[100, 0.05]], 100),
        nb201_row("P + 0.1·synflow", 1, 0.02, [[100, 0.02]], 100, proxy_weights={"synflow": 0.1}),
        nb201_row("P", 2, 0.04, [[100, 0.04]], 100),
        nb201_row("P + 0.1·synflow", 2, 0.04, [[100, 0.04]], 100, proxy_weights={"synflow": 0.1}),
    ]
    by_name = compare_searches(rows, alpha="P + 0.1·synflow", baseline_alpha="P")
    assert by_name.mean_difference == pytest.approx(0.015) and by_name.wins == 1 and by_name.ties == 1
    # By α, the proxy arm's rows (α = 0 too) are not mistaken for P's.
    assert compare_searches(rows, alpha=0.0, baseline_alpha="P").mean_difference == 0.0


def test_search_efficiency_counts_the_examples_to_reach_the_baselines_final_regret():
    rows = [
        nb201_row("P", 1, 0.03, [[100, 0.05], [200, 0.03]], 200),
        nb201_row("P", 2, 0.02, [[100, 0.02], [200, 0.02]], 200),
        nb201_row("TG", 1, 0.01, [[100, 0.03], [200, 0.01]], 200, alpha=2.0),
        nb201_row("TG", 2, 0.02, [[100, 0.04], [200, 0.02]], 200, alpha=2.0),
    ]
    efficiency = search_efficiency(rows, "TG", "P", n_resamples=200)
    # P reached its final regret after 200 and 100 examples; TG reached them after 100 and 200.
    assert efficiency.ratio == pytest.approx(300 / 300) and efficiency.reached == 2
    same = search_efficiency([*rows[:2], *[{**row, "arm": "copy"} for row in rows[:2]]], "copy", "P")
    assert same.ratio == 1.0
    assert efficiency.seeds == (1, 2) and efficiency.ci_low <= efficiency.ratio <= efficiency.ci_high
    never = [
        *rows[:2],
        nb201_row("TG", 1, 0.05, [[100, 0.06]], 100),
        nb201_row("TG", 2, 0.02, [[100, 0.02]], 100),
    ]
    stalled = search_efficiency(never, "TG", "P", n_resamples=50)
    assert stalled.ratio == 0.0 and stalled.reached == 1
    # A curve follows the top-scored candidate, whose regret can rise again: a regret is reached only once
    # it is kept. P's seed 1 dips to 0.01 at 100 examples, ends at 0.05, and keeps 0.05 from 300.
    dipping = [
        nb201_row("P", 1, 0.05, [[100, 0.01], [200, 0.09], [300, 0.05]], 300),
        nb201_row("TG", 1, 0.04, [[100, 0.06], [200, 0.04], [300, 0.04]], 300, alpha=2.0),
    ]
    kept = search_efficiency(dipping, "TG", "P", n_resamples=50)
    assert kept.ratio == pytest.approx(300 / 200) and kept.reached == 1
