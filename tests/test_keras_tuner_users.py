"""KerasTuner's getting-started pattern made teacher-guided: a user's own `build_model(hp)`, no names."""

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

import keras_sage
from keras_sage.features import default_endpoints
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore


def build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
    """KerasTuner's getting-started model, with convolutions: a plain Sequential, no keras-sage names."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(hp.Int("filters", 4, 8, step=4), 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    return {
        "x": x[:40],
        "y": rng.integers(0, 3, 40),
        "validation_data": (x[40:], rng.integers(0, 3, 20)),
        "probe": rng.random((10, 8, 8, 1), dtype=np.float32),
    }


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, data) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    store = TeacherStore.create(path, data["probe"], None)
    flat = data["probe"].reshape(len(data["probe"]), -1)
    store.add_rdm("T1", rdm(flat @ np.random.default_rng(1).normal(size=(64, 16)), name="T1"))
    return path


def features(model: keras.Model, layer: str, images: np.ndarray) -> np.ndarray:
    extractor = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(extractor(images)).reshape(len(images), -1)


def similarity(model: keras.Model, layer: str, images: np.ndarray, teacher_rdm: np.ndarray) -> float:
    """r between the teacher RDM and a layer's correlation RDM, computed with scipy alone."""
    return float(pearsonr(teacher_rdm, pdist(features(model, layer, images), "correlation"))[0])


def test_a_keras_tuner_users_build_model_searches_with_the_end_of_each_stage(tmp_path, data, teacher):
    tuner = keras_sage.SageTuner(
        build_model,
        teacher=teacher,
        oracle=keras_sage.TPEOracle(max_trials=3, seed=1),
        premature_steps=2,
        max_features=None,
        directory=tmp_path,
        project_name="users",
    )
    tuner.search(data["x"], data["y"], validation_data=data["validation_data"], batch_size=8, verbose=0)

    trials = tuner.oracle.trials.values()
    assert [trial.status for trial in trials] == ["COMPLETED"] * 3
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    stage_ends = default_endpoints(model)
    # The last layer of each spatial size (8×8, 4×4) and the flat layer before the classifier.
    assert stage_ends == [model.layers[0].name, model.layers[2].name, model.layers[3].name]
    teacher_rdm = TeacherStore.open(teacher).rdm("T1").values
    expected = max(similarity(model, layer, data["probe"], teacher_rdm) for layer in stage_ends)
    assert best.metrics.get_last_value("S_T1") == pytest.approx(expected, abs=1e-4)
    side = json.loads((Path(tuner.get_trial_dir(best.trial_id)) / "teacher_guidance.json").read_text())
    assert side["best_student_layers"]["T1"] in stage_ends


def named_build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(hp.Int("filters", 4, 8, step=4), 3, activation="relu", name="early"),
            keras.layers.Conv2D(4, 3, activation="relu", name="late"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("endpoints", [["early"], lambda model: ["early"]], ids=["names", "callable"])
def test_endpoints_named_by_the_user_are_the_only_ones_compared(tmp_path, data, teacher, endpoints):
    tuner = keras_sage.SageTuner(
        named_build_model,
        teacher=teacher,
        max_trials=1,
        seed=3,
        premature_steps=1,
        max_features=None,
        endpoints=endpoints,
        directory=tmp_path,
        project_name="named",
    )
    tuner.search(data["x"], data["y"], validation_data=data["validation_data"], batch_size=8, verbose=0)
    trial = next(iter(tuner.oracle.trials.values()))
    model = tuner.get_best_models(1)[0]
    teacher_rdm = TeacherStore.open(teacher).rdm("T1").values
    expected = similarity(model, "early", data["probe"], teacher_rdm)
    assert trial.metrics.get_last_value("S_T1") == pytest.approx(expected, abs=1e-4)
    side = json.loads((Path(tuner.get_trial_dir(trial.trial_id)) / "teacher_guidance.json").read_text())
    assert side["best_student_layers"] == {"T1": "early"}


def test_a_model_without_endpoints_fails_with_how_to_name_them(tmp_path, data, teacher):
    def dense_only(hp):
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = keras_sage.SageTuner(
        dense_only, teacher=teacher, max_trials=1, premature_steps=1, directory=tmp_path, project_name="none"
    )
    tuner.search(data["x"], data["y"], validation_data=data["validation_data"], batch_size=8, verbose=0)
    trial = next(iter(tuner.oracle.trials.values()))
    assert trial.status == "FAILED"
    assert "has no representation endpoints to compare" in trial.message
    assert "endpoints=" in trial.message


@pytest.mark.parametrize(
    ("endpoints", "error", "message"),
    [("conv", TypeError, "list of layer names or a callable"), ([], ValueError, "endpoints is empty")],
)
def test_endpoints_that_are_neither_names_nor_a_callable_are_refused(
    tmp_path, teacher, endpoints, error, message
):
    with pytest.raises(error, match=message):
        keras_sage.SageTuner(build_model, teacher=teacher, endpoints=endpoints, directory=tmp_path)


def test_proxy_weights_add_each_proxy_at_initialisation_to_the_score(tmp_path, data, teacher):
    import math

    from keras_sage.proxies import naswot, synflow

    tuner = keras_sage.SageTuner(
        named_build_model,
        teacher=teacher,
        max_trials=1,
        seed=5,
        premature_steps=1,
        alpha=0.5,
        proxy_weights={"synflow": 0.02, "naswot": 0.001},
        directory=tmp_path,
        project_name="proxies",
    )
    tuner.search(data["x"], data["y"], validation_data=data["validation_data"], batch_size=8, verbose=0)
    trial = next(iter(tuner.oracle.trials.values()))
    value = trial.metrics.get_last_value
    # The proxies are those of the candidate as it was built for the trial, before any training.
    keras.utils.set_random_seed(5)
    untrained = named_build_model(trial.hyperparameters)
    assert value("synflow") == pytest.approx(synflow(untrained), rel=1e-6)
    assert value("naswot") == pytest.approx(naswot(untrained, data["x"][:64]), rel=1e-6)
    expected = (
        value("premature_accuracy")
        + 0.5 * value("teacher_guidance")
        + 0.02 * math.log10(value("synflow"))
        + 0.001 * value("naswot")
    )
    assert value("score") == pytest.approx(expected, rel=1e-6)
