"""OptunaOracle and TPEOracle: the space mapping, resume, failures, determinism, and search quality."""

from __future__ import annotations

import functools
import math
import os

import keras_tuner
import numpy as np
import optuna
import pytest
from keras_tuner.engine import hyperparameters as hp_module
from optuna.samplers._tpe.sampler import default_weights, hyperopt_default_gamma
from optuna.trial import TrialState
from oracle_harness import FunctionTuner, LayerwiseStandIn, layerwise_space, trial_values

from keras_sage.project_files import JOURNAL_FILE
from keras_sage.tuners import _compat
from keras_sage.tuners.oracles.optuna_oracle import (
    OptunaOracle,
    optuna_distribution,
    optuna_parameter_names,
    to_keras_value,
    to_optuna_value,
)
from keras_sage.tuners.oracles.tpe import (
    SplitOnceTPESampler,
    TPEOracle,
    hyperopt_gamma,
    linear_forgetting_weights,
)

# Test functions with their known minima.
BRANIN_MINIMUM = 0.397887
HARTMANN6_MINIMUM = -3.32237
HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
HARTMANN6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def branin(values: dict) -> float:
    x1, x2 = values["x1"], values["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def branin_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Float("x1", -5.0, 10.0)
    hp.Float("x2", 0.0, 15.0, step=0.05)
    return hp


def hartmann6(values: dict) -> float:
    x = np.array(
        [
            values["x1"],
            values["x2"],
            values["x3"] / 100,
            values["x4"],
            values["x5"],
            values["x6"],
        ]
    )
    return float(-HARTMANN6_ALPHA @ np.exp(-np.sum(HARTMANN6_A * (x - HARTMANN6_P) ** 2, axis=1)))


def hartmann6_space() -> keras_tuner.HyperParameters:
    """Hartmann-6 on [0, 1]^6 encoded with every kind of hyperparameter."""
    hp = keras_tuner.HyperParameters()
    hp.Float("x1", 0.0, 1.0)
    hp.Float("x2", 0.001, 1.0, sampling="log")
    hp.Int("x3", 0, 100)
    hp.Choice("x4", [round(0.1 * i, 1) for i in range(11)])
    hp.Float("x5", 0.0, 1.0, step=0.01)
    hp.Float("x6", 0.0, 1.0)
    return hp


def conditional_toy(values: dict) -> float:
    """Three branches; only "bowl" goes below 1, down to 0 at x = 3, z = -7."""
    if values["branch"] == "bowl":
        return ((values["x"] - 3) / 10) ** 2 + ((values["z"] + 7) / 20) ** 2
    if values["branch"] == "ramp":
        return 1 + values["y"] / 100
    return 2 - values["flag"]


def conditional_toy_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("branch", ["bowl", "ramp", "flat"])
    with hp.conditional_scope("branch", ["bowl"]):
        hp.Float("x", -10.0, 10.0)
        hp.Int("z", -20, 20)
    with hp.conditional_scope("branch", ["ramp"]):
        hp.Int("y", 0, 100)
    with hp.conditional_scope("branch", ["flat"]):
        hp.Boolean("flag")
    return hp


PROBLEMS = {
    "branin": (branin, branin_space, BRANIN_MINIMUM),
    "hartmann6": (hartmann6, hartmann6_space, HARTMANN6_MINIMUM),
    "conditional": (conditional_toy, conditional_toy_space, 0.0),
}


def search(oracle, function, directory, project_name="project", overwrite=True, hypermodel=None):
    tuner = FunctionTuner(
        function,
        oracle=oracle,
        hypermodel=hypermodel,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )
    tuner.search(verbose=0)
    return tuner


def best_after(oracle_factory, problem: str, seed: int, directory, n_trials: int = 100) -> float:
    """The best value found in `n_trials`; `seed` is spread out, as KerasTuner seeds trial k with seed + k."""
    function, space, _ = PROBLEMS[problem]
    oracle = oracle_factory(hyperparameters=space(), seed=1 + 1000 * seed, max_trials=n_trials)
    search(oracle, function, directory, project_name=f"{problem}-{seed}")
    return oracle.get_best_trials()[0].score


def test_hyperopt_settings_are_optunas_hyperopt_functions():
    for n_trials in range(0, 3000, 7):
        assert hyperopt_gamma(n_trials) == hyperopt_default_gamma(n_trials)
        np.testing.assert_allclose(linear_forgetting_weights(n_trials), default_weights(n_trials))
    assert hyperopt_gamma(100) == 3  # ⌈0.25·√100⌉
    np.testing.assert_allclose(linear_forgetting_weights(27, recent=25)[:2], [1 / 27, 1.0])


@pytest.mark.parametrize(
    ("hp", "values"),
    [
        (hp_module.Int("a", 2, 11, step=3), [2, 5, 8, 11]),
        (hp_module.Int("b", 1, 1000, sampling="log"), [1, 17, 1000]),
        (hp_module.Int("c", 2, 32, step=2, sampling="log"), [2, 4, 8, 16, 32]),
        (hp_module.Float("d", 1e-4, 1e-1, sampling="log"), [1e-4, 3e-3, 0.1]),
        (hp_module.Float("e", 0.0, 1.0, step=0.25), [0.0, 0.25, 1.0]),
        (hp_module.Float("f", 1.0, 100.0, sampling="reverse_log"), [1.0, 42.0, 99.0]),
        (hp_module.Choice("g", ["relu", "tanh"]), ["relu", "tanh"]),
        (hp_module.Boolean("h"), [False, True]),
    ],
)
def test_each_keras_value_round_trips_through_its_optuna_distribution(hp, values):
    distribution = optuna_distribution(hp)
    for value in values:
        optuna_value = to_optuna_value(hp, value)
        assert distribution._contains(distribution.to_internal_repr(optuna_value)), (hp, value)
        assert to_keras_value(hp, optuna_value) == pytest.approx(value), (hp, value)


def test_int_and_float_steps_keep_keras_tuner_values():
    assert optuna_distribution(hp_module.Int("a", 2, 11, step=3)).high == 11
    assert optuna_distribution(hp_module.Int("a", 2, 12, step=3)).high == 11
    assert optuna_distribution(hp_module.Float("x", 0.0, 15.0, step=0.05)).high == pytest.approx(15.0)


def test_names_registered_under_several_conditions_get_one_optuna_parameter_each():
    hp = keras_tuner.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 64)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("units", 1, 4)
    assert optuna_parameter_names(hp.space) == ["model", "units", "units[1]"]


def test_trials_hold_exactly_the_active_values_of_a_conditional_space(tmp_path):
    oracle = TPEOracle(objective="loss", max_trials=30, n_startup_trials=10, seed=1)
    search(
        oracle,
        lambda values: -values["num_layers"] - sum(values.get(f"filters_{i}", 0) for i in (1, 2, 3)) / 100,
        tmp_path,
        hypermodel=LayerwiseStandIn(3),
    )
    assert len(oracle.trials) == 30
    for values in trial_values(oracle):
        active = layerwise_space(3)
        active.values = values
        expected = {hp.name for hp in active.space if active.is_active(hp)}
        assert set(values) == expected
        assert set(values) >= {"num_layers", "filters_1", "connect_image_to_1"}
        assert ("connect_2_to_3" in values) == (values["num_layers"] == 3)
        assert values["filters_1"] in (32, 64, 128)
    frozen = oracle.study.trials
    assert [trial.state for trial in frozen] == [TrialState.COMPLETE] * 30
    assert all(
        len(trial.params) == len(values) for trial, values in zip(frozen, trial_values(oracle), strict=True)
    )


def test_same_seed_gives_same_trials_and_another_seed_does_not(tmp_path):
    function = PROBLEMS["hartmann6"][0]
    runs = []
    for seed, name in [(5, "a"), (5, "b"), (6, "c")]:
        oracle = TPEOracle(hyperparameters=hartmann6_space(), max_trials=25, n_startup_trials=5, seed=seed)
        search(oracle, function, tmp_path, project_name=name)
        runs.append(trial_values(oracle))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_a_stopped_and_resumed_search_proposes_the_same_trials(tmp_path):
    function = PROBLEMS["branin"][0]
    straight = TPEOracle(hyperparameters=branin_space(), max_trials=30, n_startup_trials=8, seed=11)
    search(straight, function, tmp_path, project_name="straight")

    first = TPEOracle(hyperparameters=branin_space(), max_trials=15, n_startup_trials=8, seed=11)
    search(first, function, tmp_path, project_name="resumed")
    resumed = TPEOracle(hyperparameters=branin_space(), max_trials=30, n_startup_trials=8, seed=11)
    search(resumed, function, tmp_path, project_name="resumed", overwrite=False)

    assert trial_values(resumed) == trial_values(straight)
    assert [t.value for t in resumed.study.trials] == [t.value for t in straight.study.trials]
    assert os.path.exists(tmp_path / "resumed" / JOURNAL_FILE)


def test_a_fresh_search_does_not_learn_from_a_stale_journal(tmp_path):
    search(TPEOracle(hyperparameters=branin_space(), max_trials=6, seed=1), branin, tmp_path)
    os.remove(tmp_path / "project" / "tuner0.json")  # So the next tuner starts afresh in the same folder.
    oracle = TPEOracle(hyperparameters=branin_space(), max_trials=4, seed=1)
    search(oracle, branin, tmp_path, overwrite=False)
    assert len(oracle.study.trials) == 4


def test_failed_trials_are_told_as_failed_and_the_direction_is_kept(tmp_path):
    def accuracy(values):
        return None if values["x1"] < 0 else {"accuracy": -branin(values)}

    guided_means = {}
    for direction in ("max", "min"):
        oracle = TPEOracle(
            objective=keras_tuner.Objective("accuracy", direction),
            hyperparameters=branin_space(),
            max_trials=40,
            n_startup_trials=10,
            max_consecutive_failed_trials=40,
            seed=2,
        )
        search(oracle, accuracy, tmp_path, project_name=direction)
        study = oracle.study
        assert study.direction.name == {"max": "MAXIMIZE", "min": "MINIMIZE"}[direction]
        for trial_id, number in oracle._optuna_numbers.items():
            failed = oracle.trials[trial_id].status == keras_tuner.engine.trial.TrialStatus.FAILED
            assert failed == (oracle.trials[trial_id].hyperparameters.values["x1"] < 0)
            assert study.trials[number].state == TrialState.COMPLETE
            assert study.trials[number].constraints == ({"keras_tuner_failed": 1.0} if failed else {})
        assert study.best_value == pytest.approx(oracle.get_best_trials()[0].score)
        scores = [oracle.trials[trial_id].score for trial_id in sorted(oracle.trials)[10:]]
        guided_means[direction] = np.mean([score for score in scores if score is not None])
    assert guided_means["max"] > guided_means["min"] + 20, guided_means
    # The failed region (x1 < 0) is learnt: after the start-up trials, few proposals land there.
    assert sum(values["x1"] < 0 for values in trial_values(oracle)[20:]) <= 5


def test_failed_trials_can_be_told_as_optuna_failures(tmp_path):
    oracle = TPEOracle(
        hyperparameters=branin_space(),
        max_trials=12,
        n_startup_trials=4,
        max_consecutive_failed_trials=12,
        failed_trials="fail",
        seed=2,
    )
    search(oracle, lambda values: None if values["x1"] < 0 else branin(values), tmp_path)
    states = [oracle.study.trials[oracle._optuna_numbers[t]].state for t in sorted(oracle.trials)]
    expected = [
        TrialState.FAIL if values["x1"] < 0 else TrialState.COMPLETE for values in trial_values(oracle)
    ]
    assert states == expected
    assert TrialState.FAIL in states


def test_crash_mid_trial_is_retried_and_an_unhanded_ask_is_failed(tmp_path):
    oracle = TPEOracle(hyperparameters=branin_space(), max_trials=5, seed=3)
    tuner = search(oracle, branin, tmp_path)
    # Simulate a crash: one trial created and never ended, and one optuna ask never handed out.
    oracle.max_trials = 7
    running = oracle.create_trial(tuner.tuner_id)
    orphan = oracle.study.ask()
    oracle._journal.flush()
    oracle.save()
    tuner.save()

    resumed = TPEOracle(hyperparameters=branin_space(), max_trials=7, seed=3)
    search(resumed, branin, tmp_path, overwrite=False)
    study = resumed.study
    assert study.trials[orphan.number].state == TrialState.FAIL
    assert resumed.trials[running.trial_id].status == keras_tuner.engine.trial.TrialStatus.COMPLETED
    retried = study.trials[resumed._optuna_numbers[running.trial_id]]
    assert retried.state == TrialState.COMPLETE
    assert retried.value == pytest.approx(branin(running.hyperparameters.values))
    assert len(resumed.trials) == 7
    assert sum(trial.state == TrialState.COMPLETE for trial in study.trials) == 7


def test_trials_from_another_oracle_are_added_to_the_study(tmp_path):
    random_oracle = keras_tuner.oracles.RandomSearchOracle(
        objective="loss", hyperparameters=conditional_toy_space(), max_trials=6, seed=4
    )
    search(random_oracle, conditional_toy, tmp_path)
    oracle = TPEOracle(hyperparameters=conditional_toy_space(), max_trials=9, seed=4)
    search(oracle, conditional_toy, tmp_path, overwrite=False)
    study = oracle.study
    assert len(study.trials) == 9
    for trial_id in sorted(random_oracle.trials):
        frozen = study.trials[oracle._optuna_numbers[trial_id]]
        assert frozen.params == random_oracle.trials[trial_id].hyperparameters.values
        assert frozen.value == pytest.approx(random_oracle.trials[trial_id].score)


def test_any_optuna_sampler_drives_the_oracle_as_it_would_drive_a_study(tmp_path):
    oracle = OptunaOracle(
        optuna.samplers.RandomSampler(seed=0), objective="loss", hyperparameters=branin_space(), max_trials=8
    )
    search(oracle, branin, tmp_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for values in trial_values(oracle):
        trial = study.ask()
        assert values == {
            "x1": trial.suggest_float("x1", -5.0, 10.0),
            "x2": trial.suggest_float("x2", 0.0, 15.0, step=0.05),
        }
        study.tell(trial, branin(values))


def suggest_mixed(trial: optuna.Trial) -> float:
    """Float, log Float, stepped Int, log Int, stepped Float and a Choice with conditional children."""
    value = (trial.suggest_float("x", -5.0, 10.0) - 2) ** 2
    value += abs(math.log10(trial.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2)
    value += trial.suggest_int("n", 1, 19, step=3) / 10 + trial.suggest_int("m", 1, 1000, log=True) / 1000
    value += trial.suggest_float("q", 0.0, 1.0, step=0.05)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    if kind == "a":
        value += trial.suggest_float("extra", -1.0, 1.0) ** 2
    elif kind == "b":
        value += 1 + trial.suggest_categorical("flag", [True, False])
    return value


def ask_and_tell(sampler: optuna.samplers.BaseSampler, n_trials: int = 60) -> tuple[list[dict], int]:
    """Runs a study with three trials pending at a time (pruned, infeasible and failed ones among them).

    Returns:
        Every trial's parameters, and how many trials were asked after the 10 start-up trials finished.
    """
    study = optuna.create_study(sampler=sampler)
    pending, tpe_trials = [], 0
    for number in range(n_trials):
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        tpe_trials += len(finished) >= 10
        trial = study.ask()
        pending.append((trial, suggest_mixed(trial)))
        if len(pending) == 3 or number == n_trials - 1:
            oldest, value = pending.pop(0)
            if oldest.number % 7 == 3:
                study.tell(oldest, state=TrialState.PRUNED if oldest.number % 2 else TrialState.FAIL)
                continue
            if oldest.number % 11 == 5:
                oldest.set_constraint("infeasible", 1.0)
            study.tell(oldest, value)
    return [trial.params for trial in study.trials], tpe_trials


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize(
    "mode",
    [{}, {"constant_liar": False}, {"multivariate": True, "group": True}],
    ids=["paper", "no_liar", "group"],
)
def test_split_once_sampler_suggests_what_optunas_tpe_suggests(monkeypatch, mode):
    settings = {
        "n_startup_trials": 10,
        "gamma": functools.partial(hyperopt_gamma),
        "weights": linear_forgetting_weights,
        "multivariate": False,
        "seed": 8,
        **mode,
    }
    optunas, _ = ask_and_tell(optuna.samplers.TPESampler(**settings))
    splits = []
    split_trials = _compat.tpe_split_trials
    monkeypatch.setattr(
        _compat, "tpe_split_trials", lambda *args: splits.append(args[1]) or split_trials(*args)
    )
    ours, tpe_trials = ask_and_tell(SplitOnceTPESampler(**settings))
    assert ours == optunas
    assert len({len(params) for params in ours}) > 1  # Conditional parameters were suggested.
    # One split per suggestion, not one per parameter; the pending trials were in the history.
    assert len(splits) == tpe_trials == 48
    assert max(sum(t.state == TrialState.RUNNING for t in trials) for trials in splits) == (
        0 if mode.get("constant_liar") is False else 2
    )


def random_oracle(**kwargs):
    return keras_tuner.oracles.RandomSearchOracle(objective="loss", **kwargs)


def tpe_oracle(**kwargs):
    return TPEOracle(objective="loss", **kwargs)


def test_tpe_beats_random_search_on_the_conditional_space(tmp_path):
    tpe = [best_after(tpe_oracle, "conditional", seed, tmp_path / "tpe", n_trials=50) for seed in range(3)]
    rand = [
        best_after(random_oracle, "conditional", seed, tmp_path / "random", n_trials=50) for seed in range(3)
    ]
    assert np.mean(tpe) < 0.5 * np.mean(rand), (tpe, rand)


@pytest.mark.slow
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_tpe_beats_random_search_over_ten_seeds(tmp_path, problem):
    minimum = PROBLEMS[problem][2]
    tpe = [best_after(tpe_oracle, problem, seed, tmp_path / "tpe") - minimum for seed in range(10)]
    rand = [best_after(random_oracle, problem, seed, tmp_path / "random") - minimum for seed in range(10)]
    assert np.mean(tpe) < 0.75 * np.mean(rand), (tpe, rand)
    assert np.median(tpe) < 0.75 * np.median(rand), (tpe, rand)
