"""Does TG add to the field's best proxy? The held-out comparison against known answers and scipy."""

import math

import numpy as np
import pytest
import scipy.stats

from keras_sage.analysis.beyond_proxies import teacher_beyond_proxy
from keras_sage.analysis.predictors import held_out_comparison


def pool(n, seed, teacher_weight):
    """Mature accuracy made of a proxy's decades and, with `teacher_weight`, an independent TG signal."""
    rng = np.random.default_rng(seed)
    decades, guidance = rng.uniform(20, 60, n), rng.uniform(0, 1, n)
    premature = rng.uniform(0.1, 0.2, n)
    mature = decades / 40 + teacher_weight * guidance + rng.normal(0, 0.05, n)
    return [
        {
            "arch_id": f"{i:04d}",
            "budget": 10,
            "premature_accuracy": premature[i],
            "teacher_guidance": guidance[i],
            "mature_accuracy": mature[i],
            "synflow": 10.0 ** decades[i],
            "naswot": -math.inf if i == 0 else float(rng.normal()),
            "params": float(rng.integers(10**5, 10**6)),
            "flops": float(rng.integers(10**7, 10**8)),
        }
        for i in range(n)
    ]


def test_tg_that_carries_what_the_proxy_lacks_adds_to_it_out_of_sample():
    result = teacher_beyond_proxy(pool(60, 1, teacher_weight=1.0), 10, n_resamples=200, n_splits=100)
    assert result is not None and result.proxy == "synflow" and result.n == 60
    assert result.delta > 0.1 and result.interval[0] > 0
    assert result.partial_given_proxy[1] > 0.5  # the interval's low end


def test_tg_that_is_noise_adds_nothing_to_the_proxy():
    result = teacher_beyond_proxy(pool(60, 2, teacher_weight=0.0), 10, n_resamples=200, n_splits=100)
    assert result is not None and result.proxy == "synflow"
    assert result.interval[0] < 0 < result.interval[1] or result.delta <= 0
    assert result.partial_given_proxy[1] < 0 < result.partial_given_proxy[2]


def test_p_plus_beta_proxy_is_scored_on_the_pool_and_out_of_sample():
    rows = pool(60, 4, teacher_weight=0.0)  # P is noise; the proxy carries the signal
    result = teacher_beyond_proxy(rows, 10, n_resamples=200, n_splits=100)
    assert result is not None and result.proxy == "synflow" and result.beta > 0
    assert result.proxy_gain > 0.3 and result.proxy_gain_interval[0] > 0
    premature = np.array([row["premature_accuracy"] for row in rows])
    mature = np.array([row["mature_accuracy"] for row in rows])
    combined = premature + result.beta * np.log10([row["synflow"] for row in rows])
    r, low, high = result.combined_r
    assert r == pytest.approx(scipy.stats.spearmanr(combined, mature).statistic)
    assert low < r < high and r > 0.8


def test_a_named_proxy_is_used_instead_of_the_best():
    rows = pool(60, 4, teacher_weight=0.0)  # synflow carries the signal, naswot is noise
    result = teacher_beyond_proxy(rows, 10, n_resamples=200, n_splits=100, proxy="naswot")
    assert result is not None and result.proxy == "naswot" and result.n == 60
    naswot = np.array([row["naswot"] for row in rows])
    mature = np.array([row["mature_accuracy"] for row in rows])
    # The −∞ naswot (coinciding codes) ranks below every other.
    assert result.proxy_r == pytest.approx(scipy.stats.spearmanr(naswot, mature).statistic)
    # naswot is noise here: P + β·naswot is not shown to beat P.
    assert abs(result.proxy_r) < 0.3 and result.proxy_gain_interval[0] <= 0 <= result.proxy_gain_interval[1]
    assert teacher_beyond_proxy(rows, 10, proxy="snip") is None  # not in the pool
    with pytest.raises(ValueError, match="one of synflow, naswot, snip, grad_norm; got 'flops'"):
        teacher_beyond_proxy(rows, 10, proxy="flops")


def test_a_pool_without_proxies_has_no_answer():
    rows = [
        {key: value for key, value in row.items() if key not in ("synflow", "naswot")}
        for row in pool(8, 3, 1)
    ]
    rows = [{key: value for key, value in row.items() if key not in ("params", "flops")} for row in rows]
    assert teacher_beyond_proxy(rows, 10) is None


def test_the_held_out_comparison_is_a_loop_over_the_same_splits_with_scipy():
    rng = np.random.default_rng(5)
    target = rng.normal(size=20)
    reference = np.stack([target + rng.normal(size=20) * scale for scale in (1.0, 3.0)])
    challenger = np.stack([target + rng.normal(size=20) * scale for scale in (0.5, 2.0, 4.0)])
    result = held_out_comparison(reference, challenger, target, n_splits=40, seed=9)

    splits = np.random.default_rng(9)
    deltas, choices = [], np.zeros(3)
    for _ in range(40):
        order = splits.permutation(20)
        choosing, measuring = order[:10], order[10:]

        def rho(values, half):
            return scipy.stats.spearmanr(values[half], target[half]).statistic

        best_reference = max(range(2), key=lambda k: (rho(reference[k], choosing), -k))
        best_challenger = max(range(3), key=lambda k: (rho(challenger[k], choosing), -k))
        choices[best_challenger] += 1
        deltas.append(rho(challenger[best_challenger], measuring) - rho(reference[best_reference], measuring))
    assert result.delta == pytest.approx(np.median(deltas), abs=1e-12)
    assert list(result.choices) == pytest.approx(choices / 40)
    assert result.splits == 40


def test_the_report_answers_against_the_best_proxy_when_the_pool_has_proxies(tmp_path):
    from keras_sage.analysis.report import pool_report

    rows = pool(30, 4, teacher_weight=1.0)
    rows = [{**row, "budget": 0, "examples": 0} for row in rows] + [{**row, "examples": 80} for row in rows]
    markdown = pool_report(rows, tmp_path / "report", n_resamples=100)
    assert "**Against the proxies at 10 steps" in markdown
    assert "partial ρ(TG | synflow)" in markdown
    table = markdown.split("## P + β·proxy for each of the field's proxies, and TG added to it")[1]
    table = table.split("```")[1].strip().splitlines()[2:]
    assert [line.split()[:2] for line in table] == [
        ["0", "synflow"],
        ["0", "naswot"],
        ["10", "synflow"],
        ["10", "naswot"],
    ]
    naswot = teacher_beyond_proxy(rows, 10, n_resamples=100, proxy="naswot")
    assert float(table[3].split()[2]) == pytest.approx(naswot.proxy_r, abs=1e-4)
