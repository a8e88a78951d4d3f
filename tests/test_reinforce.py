"""ReinforceOracle and its LSTM controller: the probability model, batches, resume, and learning."""

from __future__ import annotations

import itertools

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from oracle_harness import FunctionTuner, LayerwiseStandIn, layerwise_space, trial_values

from keras_sage.hypermodels.base import LayerwiseSpec
from keras_sage.tuners.oracles.reinforce import (
    CONTROLLER_FILE,
    LayerwiseController,
    ReinforceOracle,
    check_spec_matches_space,
    reinforce_loss,
)

TrialStatus = keras_tuner.engine.trial.TrialStatus
REWARD = keras_tuner.Objective("reward", "max")

# A configuration the toy reward favours.
TARGET = {
    "num_layers": 2,
    "filters_1": 64,
    "kernel_height_1": 3,
    "kernel_width_1": 3,
    "stride_1": 1,
    "activation_1": "relu",
    "normalization_1": "batchnorm",
    "connect_image_to_1": True,
    "filters_2": 128,
    "kernel_height_2": 5,
    "kernel_width_2": 5,
    "stride_2": 2,
    "activation_2": "relu",
    "normalization_2": "batchnorm",
    "connect_image_to_2": False,
    "connect_1_to_2": True,
}


def toy_reward(values: dict) -> float:
    """The fraction of the target's decisions that these values share."""
    return sum(values.get(name) == value for name, value in TARGET.items()) / len(TARGET)


def search(oracle, directory, function=toy_reward, project_name="project", overwrite=True, max_layers=3):
    tuner = FunctionTuner(
        function,
        oracle=oracle,
        hypermodel=LayerwiseStandIn(max_layers),
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )
    tuner.search(verbose=0)
    return tuner


def test_the_controller_is_a_probability_distribution_over_architectures():
    spec = LayerwiseSpec("depth", 1, 2, {"filters": (8, 16), "stride": (1, 2)})
    controller = LayerwiseController(spec, units=8, seed=3)
    total = 0.0
    for depth in (1, 2):
        per_layer = [
            {f"filters_{layer}": f, f"stride_{layer}": s}
            for layer in range(1, depth + 1)
            for f, s in itertools.product((8, 16), (1, 2))
        ]
        connections = [
            spec.connection(s, layer) for layer in range(1, depth + 1) for s in spec.sources(layer)
        ]
        for layers in itertools.product(*[per_layer[4 * i : 4 * i + 4] for i in range(depth)]):
            for bits in itertools.product((False, True), repeat=len(connections)):
                values = {"depth": depth, **dict(zip(connections, bits, strict=True))}
                for layer in layers:
                    values.update(layer)
                total += float(np.exp(controller.unroll(values=values)[1].numpy()))
    assert total == pytest.approx(1.0, abs=1e-5)


def test_a_sample_replays_to_the_log_probability_it_was_drawn_with():
    controller = LayerwiseController(LayerwiseStandIn(4).layerwise_spec(), seed=1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        values, log_probability = controller.unroll(rng=rng)
        assert set(values) >= {"num_layers", "filters_1", "connect_image_to_1"}
        assert ("connect_3_to_4" in values) == (values["num_layers"] == 4)
        replayed = controller.unroll(values={**values, "unrelated": 1})[1]
        assert float(replayed) == pytest.approx(float(log_probability), abs=1e-5)
        assert float(log_probability) < 0


def test_reinforce_loss_is_the_negative_advantage_weighted_mean_log_probability():
    log_probabilities = tf.constant([-1.0, -2.0, -3.0])
    loss = reinforce_loss(log_probabilities, np.array([1.0, 0.5, 0.0]), baseline=0.5)
    assert float(loss) == pytest.approx(-(0.5 * -1.0 + 0.0 * -2.0 + -0.5 * -3.0) / 3)


def test_trials_hold_exactly_the_active_values_of_the_layerwise_space(tmp_path):
    oracle = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=12, seed=4)
    search(oracle, tmp_path)
    for values in trial_values(oracle):
        active = layerwise_space(3)
        active.values = values
        assert set(values) == {hp.name for hp in active.space if active.is_active(hp)}
    assert oracle.updates == 2
    assert (tmp_path / "project" / CONTROLLER_FILE).exists()


def test_parallel_workers_wait_while_a_batch_runs(tmp_path):
    space = LayerwiseStandIn(2)
    oracle = ReinforceOracle(space, objective=REWARD, max_trials=20, seed=5)
    FunctionTuner(toy_reward, oracle=oracle, hypermodel=space, directory=str(tmp_path), project_name="p")
    oracle.verbose = 0
    batch = [oracle.create_trial(f"worker{i}") for i in range(5)]
    assert [trial.status for trial in batch] == [TrialStatus.RUNNING] * 5
    assert oracle.create_trial("worker5").status == TrialStatus.IDLE
    weights = [w.copy() for w in oracle.controller.get_weights()]
    for trial in batch:
        oracle.update_trial(trial.trial_id, {"reward": toy_reward(trial.hyperparameters.values)})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    assert oracle.updates == 1
    assert any(
        not np.array_equal(a, b) for a, b in zip(weights, oracle.controller.get_weights(), strict=True)
    )
    assert oracle.create_trial("worker5").status == TrialStatus.RUNNING


def test_same_seed_gives_same_trials_and_another_seed_does_not(tmp_path):
    runs = []
    for seed, name in [(7, "a"), (7, "b"), (8, "c")]:
        oracle = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=12, seed=seed)
        search(oracle, tmp_path, project_name=name)
        runs.append(trial_values(oracle))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_a_stopped_and_resumed_search_proposes_the_same_trials(tmp_path):
    straight = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=17, seed=9)
    search(straight, tmp_path, project_name="straight")

    first = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=7, seed=9)
    search(first, tmp_path, project_name="resumed")
    resumed = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=17, seed=9)
    search(resumed, tmp_path, project_name="resumed", overwrite=False)

    assert trial_values(resumed) == trial_values(straight)
    assert resumed.updates == straight.updates == 3
    assert resumed.baseline == pytest.approx(straight.baseline)
    for a, b in zip(resumed.controller.get_weights(), straight.controller.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(resumed.optimizer.variables, straight.optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_failed_trials_complete_their_batch_with_the_worst_reward(tmp_path):
    def reward_or_failure(values):
        return None if values["num_layers"] == 3 else toy_reward(values)

    oracle = ReinforceOracle(
        LayerwiseStandIn(3), objective=REWARD, max_trials=15, max_consecutive_failed_trials=15, seed=10
    )
    search(oracle, tmp_path, function=reward_or_failure)
    statuses = [oracle.trials[t].status for t in sorted(oracle.trials)]
    assert TrialStatus.FAILED in statuses
    assert oracle.updates == 3
    rewards = [oracle._reward(oracle.trials[t]) for t in sorted(oracle.trials)]
    assert [r is None for r in rewards] == [s == TrialStatus.FAILED for s in statuses]


def test_a_spec_that_disagrees_with_the_space_is_refused_naming_the_hyperparameter():
    choices = LayerwiseStandIn(3).layerwise_spec().layer_choices
    with pytest.raises(ValueError, match="num_layers"):
        check_spec_matches_space(LayerwiseStandIn(4).layerwise_spec(), layerwise_space(3))
    with pytest.raises(ValueError, match="dropout_1"):
        spec = LayerwiseSpec("num_layers", 1, 3, {**choices, "dropout": (0.0, 0.5)})
        check_spec_matches_space(spec, layerwise_space(3))
    with pytest.raises(ValueError, match="filters_1"):
        spec = LayerwiseSpec("num_layers", 1, 3, {**choices, "filters": (16, 32)})
        check_spec_matches_space(spec, layerwise_space(3))
    with pytest.raises(TypeError, match="layerwise_spec"):
        ReinforceOracle(object(), objective=REWARD)


def test_one_update_raises_the_rewarded_architecture_and_lowers_the_others(tmp_path):
    space = LayerwiseStandIn(3)
    oracle = ReinforceOracle(space, objective=REWARD, max_trials=5, seed=12)
    FunctionTuner(toy_reward, oracle=oracle, hypermodel=space, directory=str(tmp_path), project_name="p")
    oracle.verbose = 0
    batch = [oracle.create_trial(f"worker{i}") for i in range(5)]
    before = [np.log(oracle.probability(trial.hyperparameters.values)) for trial in batch]
    for k, trial in enumerate(batch):
        oracle.update_trial(trial.trial_id, {"reward": 1.0 if k == 0 else 0.0})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    after = [np.log(oracle.probability(trial.hyperparameters.values)) for trial in batch]
    assert after[0] > before[0]
    assert np.mean(after[1:]) < np.mean(before[1:])
    # The baseline started at the batch's mean reward and moved towards it.
    assert oracle.baseline == pytest.approx(0.2)


@pytest.mark.slow
def test_the_controller_learns_the_configuration_the_reward_favours(tmp_path):
    """With the paper's settings, 300 trials (60 updates) raise P(target); the opposite reward lowers it."""
    changes = {}
    for name, reward in [("favoured", toy_reward), ("opposed", lambda values: 1 - toy_reward(values))]:
        oracle = ReinforceOracle(LayerwiseStandIn(3), objective=REWARD, max_trials=300, seed=11)
        before = np.log(oracle.probability(TARGET))
        search(oracle, tmp_path, function=reward, project_name=name)
        changes[name] = np.log(oracle.probability(TARGET)) - before
    assert changes["favoured"] > 1.0, changes
    assert changes["opposed"] < -1.0, changes
