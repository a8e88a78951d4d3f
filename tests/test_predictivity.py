"""Predictivity of a pool: correlations, paired bootstrap, partial correlations, α calibration."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.stats

from keras_sage.analysis.predictors import (
    alpha_of_predictor,
    calibrate_alpha,
    combined_predictor_name,
    predictivity,
    resample_indices,
    tie_bounds,
    to_dataframe,
)


def pool_from_columns(budget=100, **columns):
    """A one-budget pool whose rows hold `columns` (arrays of equal length), architectures a000, a001, ..."""
    n = len(next(iter(columns.values())))
    return [
        {"arch_id": f"a{i:03d}", "budget": budget, **{name: values[i] for name, values in columns.items()}}
        for i in range(n)
    ]


def known_pool(n=80, seed=0):
    """A pool whose answers are known: S_L1 is mature accuracy plus a little noise, P plus more noise,
    TG_labels is unrelated, and capacity (depth, flops) is unrelated too."""
    rng = np.random.default_rng(seed)
    mature = rng.uniform(0.4, 0.9, n)
    return pool_from_columns(
        mature_accuracy=mature,
        premature_accuracy=mature + rng.normal(0, 0.15, n),
        teacher_guidance=mature + rng.normal(0, 0.1, n),
        S_L1=mature + rng.normal(0, 0.02, n),
        S_L2=rng.uniform(0, 1, n),
        TG_untrained=rng.uniform(0, 1, n),
        TG_labels=rng.uniform(0, 1, n),
        depth=rng.integers(2, 12, n),
        params=rng.uniform(1e4, 1e6, n),
        flops=rng.uniform(1e6, 1e8, n),
        examples=np.full(n, 6400),
    )


def by_predictor(rows, budget=100):
    return {row["predictor"]: row for row in rows if row["budget"] == budget}


def test_a_predictor_close_to_the_target_beats_a_noisier_p_and_a_useless_one_covers_zero():
    rows = by_predictor(predictivity(known_pool(), n_boot=500))

    close = rows["S_L1"]
    assert close["r"] > 0.95 and close["ci_low"] > 0.9
    assert close["delta"] > 0.1 and close["delta_ci_low"] > 0
    assert rows["P"]["delta"] == 0 and rows["P"]["delta_ci_low"] == rows["P"]["delta_ci_high"] == 0
    useless = rows["TG_labels"]
    assert useless["ci_low"] < 0 < useless["ci_high"]
    assert useless["delta_ci_high"] < 0  # far worse than P


def test_rows_name_every_predictor_in_order_with_the_combined_scores():
    rows = predictivity(known_pool(), alphas=(0, 0.25, 1), n_boot=10)
    names = [row["predictor"] for row in rows]
    assert names == [
        "P",
        "TG",
        "S_L1",
        "S_L2",
        "P+0TG",
        "P+0.25TG",
        "P+1TG",
        "TG_untrained",
        "TG_labels",
        "depth",
        "params",
        "log_flops",
        "P+0TG_untrained",
        "P+0.25TG_untrained",
        "P+1TG_untrained",
        "P+0TG_labels",
        "P+0.25TG_labels",
        "P+1TG_labels",
    ]
    assert set(rows[0]) == {
        "budget",
        "predictor",
        "n",
        "r",
        "ci_low",
        "ci_high",
        "delta",
        "delta_ci_low",
        "delta_ci_high",
        "partial_r",
        "partial_ci_low",
        "partial_ci_high",
    }
    assert combined_predictor_name(0.25) == "P+0.25TG" and combined_predictor_name(2.0) == "P+2TG"
    assert alpha_of_predictor("P+0.25TG") == 0.25
    assert alpha_of_predictor("P+1TG_labels", "TG_labels") == 1.0
    assert alpha_of_predictor("P+1TG_labels") is None and alpha_of_predictor("TG") is None


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_r_on_the_full_sample_is_scipys(method):
    pool = known_pool(n=40, seed=1)
    rows = by_predictor(predictivity(pool, method=method, alphas=(0.5, 2), n_boot=10))
    column = {
        name: np.array([row[name] for row in pool], dtype=float) for name in pool[0] if name != "arch_id"
    }
    p, tg = column["premature_accuracy"], column["teacher_guidance"]
    expected_values = {
        "P": p,
        "TG": tg,
        "S_L1": column["S_L1"],
        "P+0.5TG": p + 0.5 * tg,
        "P+2TG": p + 2 * tg,
        "depth": column["depth"],
        "log_flops": np.log(column["flops"]),
        "P+2TG_labels": p + 2 * column["TG_labels"],
    }
    correlate = scipy.stats.spearmanr if method == "spearman" else scipy.stats.pearsonr
    for name, values in expected_values.items():
        expected = correlate(values, column["mature_accuracy"]).statistic
        assert rows[name]["r"] == pytest.approx(expected, abs=1e-12), name
        assert rows[name]["delta"] == pytest.approx(expected - rows["P"]["r"], abs=1e-12), name


def least_squares_residuals(predictor, target, controls, method):
    """The residuals of the predictor and the target (ranked for Spearman) regressed on the controls with an
    intercept by `numpy.linalg.lstsq`, and the two columns centred."""
    columns = [predictor, target, *controls]
    if method == "spearman":
        columns = [scipy.stats.rankdata(values) for values in columns]
    design = np.column_stack([np.ones(len(predictor)), *columns[2:]])
    residuals = [values - design @ np.linalg.lstsq(design, values, rcond=None)[0] for values in columns[:2]]
    return residuals, [values - values.mean() for values in columns[:2]]


def hand_partial_correlation(predictor, target, controls, method):
    residuals, _ = least_squares_residuals(predictor, target, controls, method)
    return np.corrcoef(residuals[0], residuals[1])[0, 1]


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_partial_r_is_the_correlation_of_least_squares_residuals(method):
    pool = known_pool(n=50, seed=2)
    rows = by_predictor(predictivity(pool, method=method, alphas=(1,), n_boot=10))
    mature = np.array([row["mature_accuracy"] for row in pool])
    controls = [np.array([row["depth"] for row in pool], float), np.log([row["flops"] for row in pool])]
    for name, key in [("TG", "teacher_guidance"), ("S_L2", "S_L2"), ("params", "params")]:
        predictor = np.array([row[key] for row in pool], dtype=float)
        expected = hand_partial_correlation(predictor, mature, controls, method)
        assert rows[name]["partial_r"] == pytest.approx(expected, abs=1e-10), name
    assert math.isnan(rows["depth"]["partial_r"]) and math.isnan(rows["log_flops"]["partial_r"])


def test_a_pure_capacity_predictor_has_no_partial_correlation_given_depth():
    rng = np.random.default_rng(3)
    n = 200
    depth = rng.integers(1, 11, n)
    mature = 0.05 * depth + rng.normal(0, 0.05, n)
    pool = pool_from_columns(
        mature_accuracy=mature,
        premature_accuracy=mature + rng.normal(0, 0.1, n),
        teacher_guidance=rng.uniform(0, 1, n),
        S_L1=depth * 0.01,  # a function of depth alone
        depth=depth,
        params=1000 * depth
        + rng.uniform(0, 1, n),  # depth, with an order inside each depth unrelated to accuracy
    )
    rows = by_predictor(predictivity(pool, controls=("depth", "log_flops"), n_boot=200))

    assert rows["params"]["r"] > 0.8 and rows["params"]["ci_low"] > 0.7
    assert abs(rows["params"]["partial_r"]) < 0.15
    assert rows["params"]["partial_ci_low"] < 0 < rows["params"]["partial_ci_high"]
    for name in ("S_L1", "depth"):  # its residual given depth is zero; a control given itself
        row = rows[name]
        assert math.isnan(row["partial_r"]) and math.isnan(row["partial_ci_low"]), name
        assert math.isnan(row["partial_ci_high"]), name
    assert rows["P"]["partial_r"] > 0.25  # P predicts beyond capacity (about 0.45 in expectation)
    assert 0 < rows["P"]["partial_ci_low"] < rows["P"]["partial_r"] < rows["P"]["partial_ci_high"]
    assert "log_flops" not in rows  # the pool has no flops: left out, as a predictor and as a control
    mature_ranks_given_depth = hand_partial_correlation(
        pool_column(pool, "premature_accuracy"), mature, [depth.astype(float)], "spearman"
    )
    assert rows["P"]["partial_r"] == pytest.approx(mature_ranks_given_depth, abs=1e-10)


def pool_column(pool, name):
    return np.array([row[name] for row in pool], dtype=float)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_bootstrap_intervals_are_a_brute_force_loop_over_the_same_resamples(method):
    pool = known_pool(n=15, seed=4)
    n_boot, seed = 300, 7
    rows = by_predictor(predictivity(pool, method=method, alphas=(1,), n_boot=n_boot, seed=seed))
    mature = pool_column(pool, "mature_accuracy")
    premature = pool_column(pool, "premature_accuracy")
    correlate = scipy.stats.spearmanr if method == "spearman" else scipy.stats.pearsonr
    for name, values in [
        ("TG", pool_column(pool, "teacher_guidance")),
        ("depth", pool_column(pool, "depth")),
        ("P+1TG", premature + pool_column(pool, "teacher_guidance")),
    ]:
        resampled_r, resampled_delta = [], []
        for indices in resample_indices(len(pool), n_boot, seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns of a constant resample (NaN)
                r = correlate(values[indices], mature[indices]).statistic
                r_premature = correlate(premature[indices], mature[indices]).statistic
            resampled_r.append(r)
            resampled_delta.append(r - r_premature)
        resampled_r, resampled_delta = np.array(resampled_r), np.array(resampled_delta)
        expected = np.percentile(resampled_r[np.isfinite(resampled_r)], [2.5, 97.5])
        expected_delta = np.percentile(resampled_delta[np.isfinite(resampled_delta)], [2.5, 97.5])
        row = rows[name]
        assert [row["ci_low"], row["ci_high"]] == pytest.approx(expected, abs=1e-10), name
        assert [row["delta_ci_low"], row["delta_ci_high"]] == pytest.approx(expected_delta, abs=1e-10), name
        assert row["ci_low"] < row["r"] < row["ci_high"]


def brute_force_partial_interval(predictor, target, controls, method, n_boot, seed):
    """The partial correlation's bootstrap interval by a loop: each resample materialised, ranked, and
    regressed with `numpy.linalg.lstsq`; a resample where the controls determine a column is left out."""
    resampled = []
    for indices in resample_indices(len(target), n_boot, seed):
        residuals, centred = least_squares_residuals(
            predictor[indices], target[indices], [values[indices] for values in controls], method
        )
        determined = any(
            np.linalg.norm(residual) <= 1e-9 * np.linalg.norm(values)
            for residual, values in zip(residuals, centred, strict=True)
        )
        resampled.append(math.nan if determined else np.corrcoef(residuals[0], residuals[1])[0, 1])
    resampled = np.array(resampled)
    return np.percentile(resampled[np.isfinite(resampled)], [2.5, 97.5]), np.isnan(resampled).mean()


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_partial_intervals_are_a_brute_force_loop_over_the_same_resamples(method):
    pool = known_pool(n=15, seed=10)
    depth = pool_column(pool, "depth")
    for index, row in enumerate(pool):
        # a function of depth but for the first architecture: determined in resamples that miss it
        row["S_L2"] = 0.01 * depth[index] + (0.5 if index == 0 else 0)
    n_boot, seed = 300, 7
    rows = by_predictor(predictivity(pool, method=method, alphas=(1,), n_boot=n_boot, seed=seed))
    mature = pool_column(pool, "mature_accuracy")
    controls = [depth, np.log(pool_column(pool, "flops"))]
    for name, values in [
        ("TG", pool_column(pool, "teacher_guidance")),
        ("P+1TG", pool_column(pool, "premature_accuracy") + pool_column(pool, "teacher_guidance")),
        ("params", pool_column(pool, "params")),
        ("S_L2", pool_column(pool, "S_L2")),
    ]:
        expected, left_out = brute_force_partial_interval(values, mature, controls, method, n_boot, seed)
        row = rows[name]
        assert [row["partial_ci_low"], row["partial_ci_high"]] == pytest.approx(expected, abs=1e-10), name
        assert row["partial_ci_low"] < row["partial_r"] < row["partial_ci_high"], name
        if name == "S_L2":
            assert 0.2 < left_out < 0.5  # (14/15)^15 ≈ 0.36 of the resamples miss the first architecture
        else:
            assert left_out == 0, name


def test_missing_values_drop_architectures_per_predictor():
    pool = known_pool(n=30, seed=5)
    pool[3]["teacher_guidance"] = math.nan  # a diverged candidate
    del pool[4]["S_L1"]
    pool[5]["depth"] = None
    pool[6]["premature_accuracy"] = math.inf
    rows = by_predictor(predictivity(pool, alphas=(1,), n_boot=10, controls=("depth",)))

    assert rows["P"]["n"] == rows["TG_labels"]["n"] == 29  # without architecture 6 (no P)
    assert rows["TG"]["n"] == rows["P+1TG"]["n"] == rows["S_L1"]["n"] == rows["depth"]["n"] == 28
    kept = [row for i, row in enumerate(pool) if i not in (3, 6)]
    expected = scipy.stats.spearmanr(
        pool_column(kept, "teacher_guidance"), pool_column(kept, "mature_accuracy")
    )
    assert rows["TG"]["r"] == pytest.approx(expected.statistic, abs=1e-12)
    premature_there = scipy.stats.spearmanr(
        pool_column(kept, "premature_accuracy"), pool_column(kept, "mature_accuracy")
    ).statistic
    assert rows["TG"]["delta"] == pytest.approx(expected.statistic - premature_there, abs=1e-12)
    controlled = [row for i, row in enumerate(pool) if i not in (3, 5, 6)]
    assert rows["TG"]["partial_r"] == pytest.approx(
        hand_partial_correlation(
            pool_column(controlled, "teacher_guidance"),
            pool_column(controlled, "mature_accuracy"),
            [pool_column(controlled, "depth")],
            "spearman",
        ),
        abs=1e-10,
    )
    expected, _ = brute_force_partial_interval(
        pool_column(controlled, "teacher_guidance"),
        pool_column(controlled, "mature_accuracy"),
        [pool_column(controlled, "depth")],
        "spearman",
        n_boot=10,
        seed=0,
    )
    assert [rows["TG"]["partial_ci_low"], rows["TG"]["partial_ci_high"]] == pytest.approx(expected, abs=1e-10)


def test_every_budget_is_analysed_on_its_own_rows():
    first, second = known_pool(n=20, seed=6), known_pool(n=20, seed=7)
    for row in second:
        row["budget"] = 400
    rows = predictivity(second + first, alphas=(1,), n_boot=10)
    assert [row["budget"] for row in rows] == [100] * (len(rows) // 2) + [400] * (len(rows) // 2)
    assert by_predictor(rows, 100)["TG"]["r"] == pytest.approx(
        by_predictor(predictivity(first, alphas=(1,), n_boot=10))["TG"]["r"], abs=1e-15
    )
    assert by_predictor(rows, 400)["TG"]["r"] != by_predictor(rows, 100)["TG"]["r"]


def test_a_pool_with_two_rows_of_an_architecture_at_a_budget_or_a_bad_method_is_refused():
    pool = known_pool(n=10)
    with pytest.raises(ValueError, match="two rows of architecture 'a000'"):
        predictivity([*pool, pool[0]], n_boot=10)
    with pytest.raises(ValueError, match="method"):
        predictivity(pool, method="kendall")


def test_calibrate_alpha_finds_the_alpha_that_makes_the_score_the_target():
    rng = np.random.default_rng(8)
    n = 40
    premature, guidance = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    pool = pool_from_columns(
        premature_accuracy=premature, teacher_guidance=guidance, mature_accuracy=premature + 2 * guidance
    )
    for method in ("spearman", "pearson"):
        calibration = calibrate_alpha(pool, 100, alphas=(0, 0.5, 1, 2, 4, 8), method=method, n_boot=200)
        assert calibration.alpha == calibration.in_sample_alpha == 2.0
        assert calibration.r == pytest.approx(1.0, abs=1e-12)
        assert calibration.split_choices[2.0] == 1.0
        assert calibration.win_fractions == {0.0: 0, 0.5: 0, 1.0: 0, 2.0: 1.0, 4.0: 0, 8.0: 0}
        assert calibration.correlations[0.0] < calibration.correlations[1.0] < calibration.correlations[2.0]
        assert calibration.n == n and calibration.budget == 100


def test_calibrate_alpha_reports_how_often_each_alpha_wins_over_resamples():
    pool = known_pool(n=30, seed=9)
    calibration = calibrate_alpha(pool, 100, alphas=(0, 1, 2, 4), n_boot=400, seed=3)
    rows = by_predictor(predictivity(pool, alphas=(0, 1, 2, 4), n_boot=10))
    assert calibration.correlations == {
        alpha: pytest.approx(rows[combined_predictor_name(alpha)]["r"], abs=1e-12) for alpha in (0, 1, 2, 4)
    }
    assert calibration.in_sample_r == max(calibration.correlations.values())
    assert calibration.r == calibration.correlations[calibration.alpha]
    assert sum(calibration.win_fractions.values()) == pytest.approx(1.0)
    assert 0 < calibration.win_fractions[calibration.alpha] < 1  # a noisy pool: the choice is not certain

    premature, guidance = pool_column(pool, "premature_accuracy"), pool_column(pool, "teacher_guidance")
    mature = pool_column(pool, "mature_accuracy")
    wins = np.zeros(4)
    for indices in resample_indices(len(pool), 400, 3):
        resampled = [
            scipy.stats.spearmanr(premature[indices] + alpha * guidance[indices], mature[indices]).statistic
            for alpha in (0, 1, 2, 4)
        ]
        wins[int(np.argmax(resampled))] += 1
    assert list(calibration.win_fractions.values()) == pytest.approx(wins / 400, abs=1e-12)


def test_to_dataframe_holds_the_rows():
    pandas = pytest.importorskip("pandas")
    rows = predictivity(known_pool(n=20), alphas=(1,), n_boot=10)
    frame = to_dataframe(rows)
    assert isinstance(frame, pandas.DataFrame) and len(frame) == len(rows)
    assert list(frame["r"]) == pytest.approx([row["r"] for row in rows])


def test_tie_bounds_find_the_runs_of_equal_values():
    starts, ends = tie_bounds(np.array([[1.0, 2.0, 2.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0, 1.0, 2.0]]))
    assert starts.tolist() == [[0, 1, 1, 3, 3, 3], [0, 0, 0, 0, 4, 5]]
    assert ends.tolist() == [[0, 2, 2, 5, 5, 5], [3, 3, 3, 3, 4, 5]]


def test_the_analysis_of_a_pool_imports_no_tensorflow():
    code = (
        "import sys; import keras_sage.analysis.predictors, keras_sage.analysis.search_replay; "
        "import keras_sage.analysis.plots; "
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_alpha_is_chosen_on_one_half_and_its_gain_measured_on_the_other(method):
    pool = known_pool(n=24, seed=5)
    alphas = (0, 0.5, 1, 2, 4)
    calibration = calibrate_alpha(
        pool, 100, alphas=alphas, method=method, n_resamples=10, seed=11, n_splits=60
    )
    correlate = scipy.stats.spearmanr if method == "spearman" else scipy.stats.pearsonr

    premature, guidance = pool_column(pool, "premature_accuracy"), pool_column(pool, "teacher_guidance")
    mature = pool_column(pool, "mature_accuracy")
    rng = np.random.default_rng(11)
    deltas, choices = [], np.zeros(len(alphas))
    for _ in range(60):
        order = rng.permutation(len(pool))
        choosing, measuring = order[:12], order[12:]

        def rho(values, half):
            return correlate(values[half], mature[half]).statistic

        chosen = int(np.argmax([rho(premature + alpha * guidance, choosing) for alpha in alphas]))
        choices[chosen] += 1
        alpha = alphas[chosen]
        deltas.append(rho(premature + alpha * guidance, measuring) - rho(premature, measuring))
    assert calibration.splits == 60
    assert calibration.out_of_sample_delta == pytest.approx(np.median(deltas), abs=1e-12)
    assert calibration.out_of_sample_interval == pytest.approx(
        tuple(np.percentile(deltas, [2.5, 97.5])), abs=1e-12
    )
    assert list(calibration.split_choices.values()) == pytest.approx(choices / 60)
    assert calibration.alpha == alphas[int(np.argmax(choices))]


def test_a_pool_too_small_to_halve_has_no_out_of_sample_gain():
    calibration = calibrate_alpha(known_pool(n=5, seed=1), 100, alphas=(0, 1), n_resamples=10)
    assert calibration.splits == 0 and math.isnan(calibration.out_of_sample_delta)
    assert calibration.alpha == calibration.in_sample_alpha


def test_resampled_difference_is_paired_and_matches_scipy_on_the_whole_sample():
    from keras_sage.analysis.predictors import resample_indices, resampled_difference

    rng = np.random.default_rng(11)
    target = rng.normal(size=30)
    values, reference = target + rng.normal(0, 0.5, 30), target + rng.normal(0, 2.0, 30)
    difference, low, high = resampled_difference(values, reference, target, n_resamples=300, seed=4)
    expected = scipy.stats.spearmanr(values, target)[0] - scipy.stats.spearmanr(reference, target)[0]
    assert difference == pytest.approx(expected)
    # The same resamples for both: the interval of a loop over them with scipy.
    samples = [
        scipy.stats.spearmanr(values[i], target[i])[0] - scipy.stats.spearmanr(reference[i], target[i])[0]
        for i in resample_indices(30, 300, 4)
    ]
    assert (low, high) == pytest.approx(tuple(np.percentile(samples, [2.5, 97.5])), abs=1e-9)
    assert low > 0  # the less noisy predictor is shown better
