"""Is it the trained teacher? `teacher_against_control` against known answers and a by-hand replication."""

import numpy as np
import pytest
import scipy.stats

from keras_sage.analysis import teacher_against_control


def pool(n, seed, control):
    """Mature accuracy follows P + TG; the control teacher's TG is TG plus a little noise ("same"), pure
    noise ("noise"), or TG divided by 4 ("scaled": TG's information on another scale)."""
    rng = np.random.default_rng(seed)
    premature, guidance = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    mature = premature + guidance + rng.normal(0, 0.05, n)
    values = {
        "same": guidance + rng.normal(0, 0.01, n),
        "noise": rng.uniform(0, 1, n),
        "scaled": guidance / 4,
    }[control]
    return [
        {
            "arch_id": f"{i:04d}",
            "budget": 10,
            "premature_accuracy": premature[i],
            "teacher_guidance": guidance[i],
            "TG_untrained": values[i],
            "mature_accuracy": mature[i],
        }
        for i in range(n)
    ]


def test_a_control_that_is_noise_is_beaten_and_one_that_is_the_teacher_is_not():
    beaten = teacher_against_control(pool(60, 1, "noise"), 10, n_splits=200)
    assert beaten.control == "TG_untrained" and beaten.n == 60 and beaten.splits == 200
    assert beaten.interval[0] > 0 and beaten.delta > 0.1
    tied = teacher_against_control(pool(60, 1, "same"), 10, n_splits=200)
    assert tied.interval[0] < 0 < tied.interval[1] and abs(tied.delta) < 0.05


def test_each_score_gets_its_own_alpha():
    """A control that is TG on another scale ties with TG (its grid is scaled to TG's), though at TG's own
    α it loses."""
    rows = pool(60, 2, "scaled")
    result = teacher_against_control(rows, 10, n_splits=200)
    assert result.delta == 0 and result.interval == (0, 0)
    premature, guidance, control, mature = (
        np.array([row[name] for row in rows])
        for name in ("premature_accuracy", "teacher_guidance", "TG_untrained", "mature_accuracy")
    )
    at_one_alpha = scipy.stats.spearmanr(premature + guidance, mature).statistic - (
        scipy.stats.spearmanr(premature + control, mature).statistic
    )
    assert at_one_alpha > 0.05


def test_the_held_out_difference_is_the_one_computed_by_hand():
    rows = pool(20, 3, "noise")
    alphas = (0, 1, 4)
    result = teacher_against_control(rows, 10, alphas=alphas, n_splits=30, seed=5)
    premature, guidance, control, mature = (
        np.array([row[name] for row in rows])
        for name in ("premature_accuracy", "teacher_guidance", "TG_untrained", "mature_accuracy")
    )
    scale = np.std(guidance) / np.std(control)  # α′ in TG's units
    rng = np.random.default_rng(5)
    deltas = []
    for _ in range(30):
        order = rng.permutation(20)
        choosing, measuring = order[:10], order[10:]

        def rho(values, half):
            return scipy.stats.spearmanr(values[half], mature[half]).statistic

        best_control = max(alphas, key=lambda a: (rho(premature + a * scale * control, choosing), -a))
        best_teacher = max(alphas, key=lambda a: (rho(premature + a * guidance, choosing), -a))
        deltas.append(
            rho(premature + best_teacher * guidance, measuring)
            - rho(premature + best_control * scale * control, measuring)
        )
    assert result.delta == pytest.approx(np.median(deltas), abs=1e-12)
    assert result.interval == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])), abs=1e-12)


def test_a_pool_without_the_control_has_no_answer_and_a_bad_name_is_one_line():
    rows = [
        {key: value for key, value in row.items() if key != "TG_untrained"} for row in pool(20, 4, "same")
    ]
    assert teacher_against_control(rows, 10) is None
    assert teacher_against_control(pool(5, 4, "same"), 10) is None  # too few to halve
    with pytest.raises(ValueError, match="control must be one of TG_untrained, TG_labels; got 'naswot'"):
        teacher_against_control(rows, 10, "naswot")
