"""SageHyperband: KerasTuner's Hyperband with P + α·TG as the score at every rung."""

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners import SageHyperband, _compat

N_TRAIN = 32
BATCH_SIZE = 16


class TinySpace(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        filters = hp.Int("filters", 2, 8)
        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="layer_1")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))
        model.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


class RecordingHyperband(SageHyperband):
    """Keeps the weights each trial starts from, after its warm start."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started_from: dict[str, list[np.ndarray]] = {}
        self.started_at_step: dict[str, int] = {}

    def _warm_start(self, trial, model) -> None:
        super()._warm_start(trial, model)
        self.started_from[trial.trial_id] = [np.array(weights) for weights in model.get_weights()]
        self.started_at_step[trial.trial_id] = int(model.optimizer.iterations.numpy())


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.random((N_TRAIN + 12, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, len(x))
    probe = rng.random((9, 8, 8, 1), dtype=np.float32)
    directory = tmp_path_factory.mktemp("hyperband")
    store = TeacherStore.create(directory / "teacher.h5", probe, np.repeat(np.arange(3), 3))
    store.add_rdm("L1", rdm(probe.reshape(9, -1) @ rng.normal(size=(64, 16)), name="L1"))
    tuner = RecordingHyperband(
        TinySpace(),
        teacher=directory / "teacher.h5",
        max_epochs=3,
        factor=3,
        alpha=0.5,
        seed=3,
        directory=directory,
        project_name="hb",
    )
    tuner.search(x[:N_TRAIN], y[:N_TRAIN], validation_data=(x[N_TRAIN:], y[N_TRAIN:]), batch_size=BATCH_SIZE)
    return tuner


def test_every_rung_is_scored_by_p_plus_alpha_tg(searched):
    trials = list(searched.oracle.trials.values())
    assert searched.oracle.objective.name == "score"
    assert len(trials) > 2 and all(trial.status == "COMPLETED" for trial in trials)
    for trial in trials:
        metrics = trial.metrics
        assert metrics.get_last_value("score") == pytest.approx(
            metrics.get_last_value("premature_accuracy") + 0.5 * metrics.get_last_value("teacher_guidance")
        )


def test_promoted_trials_continue_their_parents_weights_and_count_only_new_epochs(searched):
    promoted = 0
    for trial in searched.oracle.trials.values():
        values = trial.hyperparameters.values
        epochs, initial_epoch = values["tuner/epochs"], values["tuner/initial_epoch"]
        assert trial.metrics.get_last_value("examples_processed") == (epochs - initial_epoch) * N_TRAIN
        parent = values.get("tuner/trial_id")
        if parent is None:
            assert initial_epoch == 0 and searched.started_at_step[trial.trial_id] == 0
            continue
        # The optimizer continues where the parent's stopped: its steps (2 batches per epoch) and momentum.
        assert searched.started_at_step[trial.trial_id] == initial_epoch * N_TRAIN // BATCH_SIZE
        promoted += 1
        parent_model = TinySpace().build(searched.oracle.trials[parent].hyperparameters)
        parent_model.load_weights(_compat.checkpoint_path(searched, parent))
        for started, saved in zip(
            searched.started_from[trial.trial_id], parent_model.get_weights(), strict=True
        ):
            np.testing.assert_array_equal(started, saved)
    assert promoted >= 1
    total = sum(
        (t.hyperparameters.values["tuner/epochs"] - t.hyperparameters.values["tuner/initial_epoch"]) * N_TRAIN
        for t in searched.oracle.trials.values()
    )
    assert searched.search_cost() == total


def test_promotions_follow_the_teacher_guided_score(searched):
    """The candidates promoted from each rung are its best by P + α·TG, as many as were promoted."""
    trials = searched.oracle.trials
    rungs: dict[tuple, list] = {}
    promoted: dict[tuple, set] = {}
    for trial in trials.values():
        values = trial.hyperparameters.values
        rungs.setdefault((values["tuner/bracket"], values["tuner/round"]), []).append(trial)
        parent_id = values.get("tuner/trial_id")
        if parent_id is not None:
            parent_values = trials[parent_id].hyperparameters.values
            promoted.setdefault((parent_values["tuner/bracket"], parent_values["tuner/round"]), set()).add(
                parent_id
            )
    assert promoted
    for rung, parents in promoted.items():
        ranked = sorted(rungs[rung], key=lambda t: t.metrics.get_last_value("score"), reverse=True)
        assert parents == {trial.trial_id for trial in ranked[: len(parents)]}


def test_hyperband_sets_its_own_budget():
    with pytest.raises(TypeError, match="SageHyperband sets premature_epochs itself"):
        SageHyperband(TinySpace(), teacher="unused.h5", max_epochs=3, premature_epochs=2)
    with pytest.raises(ValueError, match="factor must be at least 2"):
        SageHyperband(TinySpace(), teacher="unused.h5", max_epochs=3, factor=1)


def test_teacher_guidance_files_record_the_scoring(searched):
    for trial_id in searched.oracle.trials:
        side_file = Path(searched.get_trial_dir(trial_id)) / "teacher_guidance.json"
        assert json.loads(side_file.read_text())["alpha"] == 0.5
