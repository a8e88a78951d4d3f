"""Teacher bootstrapping (`Bootstrap`): steps at every K completed trials, versions, scoring, resuming."""

import json
from pathlib import Path

import h5py
import keras
import keras_tuner
import numpy as np
import pytest
from scipy.stats import pearsonr

from keras_sage import contract
from keras_sage.datasets import digits
from keras_sage.features import layer_features
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners import Bootstrap, SageHyperband, SageTuner, _compat
from keras_sage.tuners.schedule import BOOTSTRAP_TEACHER_FILE, BootstrapStep

BATCH_SIZE = 32


class TinyDigitsSpace(keras_tuner.HyperModel):
    """Two conv endpoints of tunable width on 8×8 digits."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        filters = hp.Int("filters", 2, 8)
        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="layer_1")(image)
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name="layer_2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(10, activation="softmax")(x))
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


@pytest.fixture(scope="module")
def data():
    splits = digits(image_size=8, probe_size=20, seed=0)
    return {
        "x": splits.x_train[:160],
        "y": splits.y_train[:160],
        "x_val": splits.x_val[:80],
        "y_val": splits.y_val[:80],
        "probe_images": splits.x_probe,
        "probe_labels": splits.y_probe,
    }


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory, data) -> Path:
    """A weak 'teacher': RDMs of random projections of the probe images, without a recorded accuracy."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    store = TeacherStore.create(path, data["probe_images"], data["probe_labels"])
    flat = data["probe_images"].reshape(len(data["probe_images"]), -1)
    rng = np.random.default_rng(1)
    store.add_rdm("T1", rdm(np.maximum(flat @ rng.normal(size=(64, 16)), 0), name="T1"))
    return path


def make_tuner(directory, teacher_path, schedule, max_trials, overwrite=True, **kwargs) -> SageTuner:
    return SageTuner(
        TinyDigitsSpace(),
        teacher=teacher_path,
        premature_epochs=1,
        max_trials=max_trials,
        seed=3,
        directory=directory,
        project_name="boot",
        overwrite=overwrite,
        teacher_schedule=schedule,
        **kwargs,
    )


def search(tuner: SageTuner, data) -> None:
    tuner.search(
        data["x"], data["y"], validation_data=(data["x_val"], data["y_val"]), batch_size=BATCH_SIZE, verbose=0
    )


def trials_by_id(tuner: SageTuner) -> dict[str, keras_tuner.engine.trial.Trial]:
    return dict(sorted(tuner.oracle.trials.items(), key=lambda item: int(item[0])))


def direct_similarities(tuner: SageTuner, trial, teacher: TeacherStore) -> dict[str, float]:
    """S_i = max_j pearson(T_i, C_j) computed here, from the trial's saved weights and the teacher's RDMs."""
    model = tuner.hypermodel.build(trial.hyperparameters)
    model.load_weights(_compat.checkpoint_path(tuner, trial.trial_id))
    endpoints = ["layer_1", "layer_2"]
    features = layer_features(
        model, endpoints, teacher.probe_images, max_features=tuner.scorer.max_features, seed=tuner.scorer.seed
    )
    student = [rdm(f).values for f in features]
    return {
        name: max(pearsonr(teacher.rdm(name).values, values)[0] for values in student)
        for name in teacher.layer_names
    }


@pytest.fixture(scope="module")
def accepted(tmp_path_factory, teacher_path, data):
    """3 trials, K = 2, a teacher accuracy of 0: the step before trial 3 accepts the best of trials 1-2."""
    directory = tmp_path_factory.mktemp("accepted")
    original = teacher_path.read_bytes()
    schedule = Bootstrap(every=2, mature_epochs=2, teacher_accuracy=0.0)
    tuner = make_tuner(directory, teacher_path, schedule, max_trials=3)
    search(tuner, data)
    return {"tuner": tuner, "schedule": schedule, "original": original, "directory": directory}


def test_a_stronger_student_becomes_version_1_after_k_trials(accepted, teacher_path, data):
    tuner, schedule = accepted["tuner"], accepted["schedule"]
    trials = trials_by_id(tuner)
    assert len(schedule.steps) == 1  # after 2 completed trials
    (step,) = schedule.steps
    first_two = [trials["0"], trials["1"]]
    best = max(first_two, key=lambda trial: trial.score)
    assert step.step == 1 and step.completed_trials == 2
    assert step.trial_id == best.trial_id
    assert step.accepted and step.version == 1
    assert 0.0 < step.mature_accuracy <= 1.0
    assert step.examples_processed == 2 * len(data["x"])
    assert tuner.bootstrap_examples == step.examples_processed
    assert tuner.search_cost() == tuner.search_examples + step.examples_processed

    # The version is in the project's copy, with its provenance; the search's teacher file is untouched.
    assert teacher_path.read_bytes() == accepted["original"]
    path = Path(tuner.project_dir) / BOOTSTRAP_TEACHER_FILE
    store = TeacherStore.open(path)
    assert store.versions == [0, 1]
    info = store.version_info(1)
    assert info["trial_id"] == best.trial_id
    assert info["validation_accuracy"] == pytest.approx(step.mature_accuracy)
    assert info["hyperparameters"] == best.hyperparameters.values
    assert info["training"]["epochs"] == 2 and info["training"]["bootstrap_step"] == 1
    assert info["parent_version"] == 0
    assert info["layers"] == ["layer_1", "layer_2"]
    np.testing.assert_array_equal(store.rdm("T1").values, TeacherStore.open(teacher_path).rdm("T1").values)


# Loading a trial's checkpoint into a freshly built model leaves its optimizer's variables aside.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_trials_record_their_version_and_later_ones_are_scored_on_the_new_rdms(accepted):
    tuner = accepted["tuner"]
    trials = trials_by_id(tuner)
    versions = {tid: trial.metrics.get_last_value(contract.TEACHER_VERSION) for tid, trial in trials.items()}
    assert versions == {"0": 0, "1": 0, "2": 1}
    for trial_id, version in versions.items():
        side = json.loads((Path(tuner.get_trial_dir(trial_id)) / "teacher_guidance.json").read_text())
        assert side["teacher_version"] == version

    project_teacher = TeacherStore.open(Path(tuner.project_dir) / BOOTSTRAP_TEACHER_FILE)
    for trial_id, version in versions.items():
        trial = trials[trial_id]
        teacher = project_teacher.at_version(int(version))
        expected = direct_similarities(tuner, trial, teacher)
        recorded = {name: trial.metrics.get_last_value(f"S_{name}") for name in teacher.layer_names}
        assert recorded == pytest.approx(expected, abs=1e-5)
        tg = float(np.mean(list(expected.values())))
        assert trial.metrics.get_last_value("teacher_guidance") == pytest.approx(tg, abs=1e-5)
    # The new version's layers replace the old ones: no S_T1 after the step.
    assert "S_T1" not in trials["2"].metrics.metrics


def test_a_weaker_student_does_not_replace_the_teacher(tmp_path, teacher_path, data):
    schedule = Bootstrap(every=2, mature_epochs=1, teacher_accuracy=1.0)
    tuner = make_tuner(tmp_path, teacher_path, schedule, max_trials=3)
    search(tuner, data)
    (step,) = schedule.steps
    assert not step.accepted and step.version == 0
    assert step.mature_accuracy < 1.0
    assert "does not beat the teacher's 1.0000" in step.reason
    assert not (Path(tuner.project_dir) / BOOTSTRAP_TEACHER_FILE).exists()
    assert [t.metrics.get_last_value(contract.TEACHER_VERSION) for t in trials_by_id(tuner).values()] == [
        0,
        0,
        0,
    ]
    assert tuner.bootstrap_examples == len(data["x"])


def test_min_improvement_and_the_files_accuracy(tmp_path, teacher_path, data):
    # The teacher's accuracy comes from the file when not given; a student must beat it by min_improvement.
    path = tmp_path / "teacher.h5"
    path.write_bytes(teacher_path.read_bytes())
    store = TeacherStore.open(path, writable=True)
    store.set_validation_accuracy(0.0)
    schedule = Bootstrap(every=1, mature_epochs=1, min_improvement=0.999)
    tuner = make_tuner(tmp_path, path, schedule, max_trials=2)
    assert schedule.current_accuracy == 0.0
    search(tuner, data)
    (step,) = schedule.steps
    assert not step.accepted and "by more than 0.999" in step.reason


def test_restart_resumes_the_schedule_without_repeating_a_step(tmp_path, teacher_path, data):
    first = Bootstrap(every=1, mature_epochs=1, teacher_accuracy=0.0)
    search(make_tuner(tmp_path, teacher_path, first, max_trials=2), data)
    assert [step.step for step in first.steps] == [1]

    resumed_schedule = Bootstrap(every=1, mature_epochs=1, teacher_accuracy=0.0)
    resumed = make_tuner(tmp_path, teacher_path, resumed_schedule, max_trials=3, overwrite=False)
    # The reloaded tuner scores with the version the schedule had reached.
    assert resumed.scorer.teacher.version == 1
    assert resumed_schedule.steps == first.steps
    examples_before = resumed.bootstrap_examples
    assert examples_before == first.steps[0].examples_processed
    search(resumed, data)
    assert [step.step for step in resumed_schedule.steps] == [1, 2]
    assert resumed_schedule.steps[0] == first.steps[0]
    second = resumed_schedule.steps[1]
    assert second.completed_trials == 2
    assert resumed.bootstrap_examples == examples_before + second.examples_processed
    versions = [t.metrics.get_last_value(contract.TEACHER_VERSION) for t in trials_by_id(resumed).values()]
    assert versions[:2] == [0, 1]
    assert versions[2] == second.version


def test_a_version_written_before_a_crash_is_adopted_not_retrained(tmp_path, teacher_path, data):
    schedule = Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.0)
    search(make_tuner(tmp_path, teacher_path, schedule, max_trials=2), data)
    assert schedule.steps == []  # due after 2 trials, but no trial followed
    # A crash after the step wrote its version but before the tuner's state was saved: the project's
    # teacher file has version 1, the saved state knows no step.
    tuner = make_tuner(
        tmp_path, teacher_path, Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.0), 3, False
    )
    student = tuner.hypermodel.build(tuner.oracle.trials["0"].hyperparameters)
    rdms, problem = tuner._bootstrap_runner.student_rdms(student, tuner.scorer)
    assert problem is None
    copy = Path(tuner.project_dir) / BOOTSTRAP_TEACHER_FILE
    copy.write_bytes(teacher_path.read_bytes())
    written = TeacherStore.open(copy, writable=True)
    training = {"bootstrap_step": 1, "examples_processed": 7}
    source = f"bootstrap step 1 of {tuner.project_dir}: trial 0"
    written.add_version(rdms, validation_accuracy=0.5, source=source, trial_id="0", training=training)
    # Another search's step 1, newer in the file (a copied teacher file): not this project's, not adopted.
    training = {"bootstrap_step": 1, "examples_processed": 5}
    written.add_version(
        rdms, 0.9, source="bootstrap step 1 of /elsewhere: trial 0", trial_id="0", training=training
    )
    search(tuner, data)
    (step,) = tuner.teacher_schedule.steps
    assert step.accepted and step.version == 1 and step.trial_id == "0"
    assert step.mature_accuracy == 0.5 and "written before" in step.reason
    assert tuner.bootstrap_examples == 7  # the crashed process's training, counted; nothing trained again
    assert tuner.oracle.trials["2"].metrics.get_last_value(contract.TEACHER_VERSION) == 1


# Settings that cannot work are refused when the tuner is built.


def test_the_teachers_accuracy_is_required(tmp_path, teacher_path):
    with pytest.raises(
        ValueError, match=r"records none for version 0; pass Bootstrap\(\.\.\., teacher_accuracy"
    ):
        make_tuner(tmp_path, teacher_path, Bootstrap(every=2, mature_epochs=1), max_trials=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_match": "fixed", "layer_mapping": {"T1": "layer_1"}}, "layer_match='fixed'"),
        ({"normalise_by_ceiling": True}, "normalise_by_ceiling"),
    ],
)
def test_unsupported_scoring_is_refused(tmp_path, teacher_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_tuner(
            tmp_path, teacher_path, Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.5), 2, **kwargs
        )


def test_parallel_tuning_is_refused(tmp_path, teacher_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    with pytest.raises(ValueError, match="not supported in parallel tuning: each worker scores"):
        make_tuner(tmp_path, teacher_path, Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.5), 2)


def test_hyperband_is_refused(tmp_path, teacher_path):
    with pytest.raises(ValueError, match="not supported with Hyperband"):
        SageHyperband(
            TinyDigitsSpace(),
            teacher=teacher_path,
            max_epochs=3,
            directory=tmp_path,
            teacher_schedule=Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.5),
        )


def test_an_objective_of_one_teacher_layer_is_refused(tmp_path, teacher_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("S_T1", "max"), max_trials=2
    )
    schedule = Bootstrap(every=2, mature_epochs=1, teacher_accuracy=0.5)
    with pytest.raises(ValueError, match="cannot be used with the objective 'S_T1'"):
        make_tuner(tmp_path, teacher_path, schedule, max_trials=2, oracle=oracle)


def test_a_schedule_given_to_a_second_tuner_starts_afresh(tmp_path, teacher_path, data):
    schedule = Bootstrap(every=1, mature_epochs=1, teacher_accuracy=0.0)
    search(make_tuner(tmp_path / "first", teacher_path, schedule, max_trials=2), data)
    assert schedule.steps and schedule.teacher_file is not None

    make_tuner(tmp_path / "second", teacher_path, schedule, max_trials=2)
    assert (schedule.steps, schedule.teacher_file, schedule.version) == ([], None, 0)
    assert schedule.due_step(1) == 1


def test_resuming_with_another_schedule_is_refused(tmp_path, teacher_path, data):
    schedule = Bootstrap(every=1, mature_epochs=1, teacher_accuracy=1.0)
    search(make_tuner(tmp_path, teacher_path, schedule, max_trials=2), data)
    with pytest.raises(
        ValueError, match=r"searched with Bootstrap\(every=1\); resume it with the same schedule"
    ):
        make_tuner(
            tmp_path, teacher_path, Bootstrap(every=3, mature_epochs=1, teacher_accuracy=1.0), 3, False
        )
    with pytest.raises(ValueError, match="searched with a teacher schedule; resume it with the same"):
        make_tuner(tmp_path, teacher_path, None, 3, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 0, "mature_epochs": 1}, "every"),
        ({"every": 2, "mature_epochs": 1.5}, "mature_epochs"),
        (
            {"every": 2, "mature_epochs": 1, "teacher_accuracy": 1.5},
            r"teacher_accuracy must be a number in \[0, 1\]",
        ),
        ({"every": 2, "mature_epochs": 1, "min_improvement": -0.1}, "min_improvement"),
    ],
)
def test_bad_schedule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Bootstrap(**kwargs)


def test_schedule_state_round_trips_through_json():
    schedule = Bootstrap(every=3, mature_epochs=2, teacher_accuracy=0.4)
    schedule.current_accuracy = 0.4
    step = BootstrapStep(1, 3, "2", float("nan"), 0.4, False, 0, 0, "its training diverged")
    schedule.record(step)
    assert schedule.due_step(5) is None and schedule.due_step(6) == 2
    restored = Bootstrap(every=3, mature_epochs=2)
    restored.set_state(json.loads(json.dumps(schedule.get_state())))
    assert np.isnan(restored.steps[0].mature_accuracy)
    assert restored.steps[0].reason == step.reason and restored.current_accuracy == 0.4


def test_the_project_teacher_file_is_version_2_and_readable_with_h5py(accepted):
    path = Path(accepted["tuner"].project_dir) / BOOTSTRAP_TEACHER_FILE
    with h5py.File(path, "r") as file:
        assert file.attrs["format_version"] == 2
        assert sorted(file["versions"]) == ["1"]
        assert json.loads(file["versions/1"].attrs["hyperparameters"])["filters"] >= 2
