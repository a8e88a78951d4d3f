"""The TPE and REINFORCE oracles drive a real teacher-guided search over CNNSearchSpace."""

import json
from pathlib import Path

import numpy as np
import pytest

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace, resnet_cifar
from keras_sage.teachers import register_teacher
from keras_sage.tuners import ReinforceOracle, SageTuner, TPEOracle

MAX_LAYERS = 3


@pytest.fixture(scope="module")
def data():
    splits = digits(image_size=8, probe_size=20)
    return splits.x_train[:64], splits.y_train[:64], splits.x_val[:32], splits.y_val[:32], splits


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory, data) -> Path:
    *_, splits = data
    teacher = resnet_cifar(depth=8, num_classes=10, input_shape=(8, 8, 1))
    path = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    register_teacher(teacher, splits.x_probe, splits.y_probe, path=path, verbose=0)
    return path


def space() -> CNNSearchSpace:
    return CNNSearchSpace(max_layers=MAX_LAYERS, num_classes=10, input_shape=(8, 8, 1))


def run_search(oracle, teacher_path: Path, data, directory: Path) -> list[dict]:
    x, y, x_val, y_val, _ = data
    tuner = SageTuner(
        space(), teacher=teacher_path, premature_steps=2, oracle=oracle, directory=directory, project_name="p"
    )
    tuner.search(x, y, validation_data=(x_val, y_val), batch_size=16, verbose=0)
    return [json.loads(path.read_text()) for path in sorted((directory / "p").glob("trial_*/trial.json"))]


def assert_scored_cnn_trials(trials: list[dict], count: int) -> None:
    assert len(trials) == count
    for trial in trials:
        assert trial["status"] == "COMPLETED", trial.get("message")
        values = trial["hyperparameters"]["values"]
        assert 1 <= values["num_layers"] <= MAX_LAYERS
        metrics = {name: m["observations"][-1]["value"][0] for name, m in trial["metrics"]["metrics"].items()}
        expected = metrics["premature_accuracy"] + metrics["teacher_guidance"]
        assert metrics["score"] == pytest.approx(expected, abs=1e-6)
        assert -1 <= metrics["teacher_guidance"] <= 1


def test_tpe_oracle_searches_the_cnn_space_with_seed_zero(tmp_path, teacher_path, data):
    first = run_search(TPEOracle(max_trials=3, seed=0), teacher_path, data, tmp_path / "a")
    assert_scored_cnn_trials(first, 3)
    # A seed of 0 is a seed: a second search proposes the same architectures.
    second = run_search(TPEOracle(max_trials=3, seed=0), teacher_path, data, tmp_path / "b")
    assert [t["hyperparameters"]["values"] for t in first] == [t["hyperparameters"]["values"] for t in second]


def test_reinforce_oracle_searches_the_cnn_space(tmp_path, teacher_path, data):
    trials = run_search(ReinforceOracle(space(), max_trials=3, seed=0), teacher_path, data, tmp_path)
    assert_scored_cnn_trials(trials, 3)
    depths = [t["hyperparameters"]["values"]["num_layers"] for t in trials]
    # Only the active layers' hyperparameters are set: none beyond num_layers.
    for trial, depth in zip(trials, depths, strict=True):
        names = trial["hyperparameters"]["values"]
        assert f"filters_{depth}" in names
        assert np.all([f"filters_{layer}" not in names for layer in range(depth + 1, MAX_LAYERS + 1)])


class CountingSpace(CNNSearchSpace):
    builds = 0

    def build(self, hp):
        CountingSpace.builds += 1
        return super().build(hp)


def test_the_whole_space_is_declared_without_building_models(tmp_path, teacher_path):
    deep = CountingSpace(max_layers=20, num_classes=10, input_shape=(8, 8, 1))
    tuner = SageTuner(deep, teacher=teacher_path, max_trials=1, directory=tmp_path)
    assert CountingSpace.builds == 0
    names = {hp.name for hp in tuner.oracle.get_space().space}
    assert {"num_layers", "filters_20", "connect_image_to_20", "connect_19_to_20"} <= names
    assert len(names) == 1 + 20 * 7 + 19 * 20 // 2
