"""SageTuner end to end on tiny data: trials, metrics on disk, failures, resume, rerank and cost."""

import json
import math
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

from keras_sage.analysis import plot_search, project_records, search_summary, trial_records
from keras_sage.hypermodels import CandidateBuildError
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners.failures import SearchStoppedError, failure_cause, failure_reason
from keras_sage.tuners.sage_tuner import SageTuner

N_TRAIN = 40
BATCH_SIZE = 16


class TinySpace(keras_tuner.HyperModel):
    """Two conv endpoints with a tunable width; `mode` can force a NaN loss or an unbuildable candidate."""

    def __init__(self, modes: tuple[str, ...] = ("ok",)):
        super().__init__()
        self.modes = list(modes)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        filters = hp.Int("filters", 2, 8)
        mode = hp.Choice("mode", self.modes, default="ok")
        if mode == "unbuildable":
            raise CandidateBuildError("spatial size below 1 at layer_2")
        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="layer_1")(image)
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name="layer_2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))

        def loss(y_true, y_pred):
            value = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
            return value * np.nan if mode == "nan" else value

        model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        return model


class ScriptedOracle(keras_tuner.Oracle):
    """Proposes the given hyperparameter values in order, then stops."""

    def __init__(self, script: list[dict], **kwargs):
        super().__init__(max_trials=len(script), **kwargs)
        self.script = script

    def populate_space(self, trial_id: str) -> dict:
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": self.script[int(trial_id)]}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((N_TRAIN + 20, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, len(x))
    probe_images = rng.random((9, 8, 8, 1), dtype=np.float32)
    return {
        "x": x[:N_TRAIN],
        "y": y[:N_TRAIN],
        "x_val": x[N_TRAIN:],
        "y_val": y[N_TRAIN:],
        "probe_images": probe_images,
        "probe_labels": np.repeat(np.arange(3), 3),
    }


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory, data) -> Path:
    """A 'teacher' whose RDMs come from random features of the probe images."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    store = TeacherStore.create(path, data["probe_images"], data["probe_labels"])
    flat = data["probe_images"].reshape(len(data["probe_images"]), -1)
    rng = np.random.default_rng(1)
    store.add_rdm("L1", rdm(np.maximum(flat @ rng.normal(size=(64, 32)), 0), name="L1"))
    store.add_rdm("L2", rdm(flat @ rng.normal(size=(64, 8)), name="L2"))
    return path


def search(tuner: SageTuner, data, **kwargs) -> None:
    tuner.search(
        data["x"], data["y"], validation_data=(data["x_val"], data["y_val"]), batch_size=BATCH_SIZE, **kwargs
    )


def trial_files(directory: Path) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(directory.glob("trial_*/trial.json"))
    }


def last_metric(trial: dict, name: str) -> float:
    return trial["metrics"]["metrics"][name]["observations"][-1]["value"][0]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, data, teacher_path):
    """One 3-trial search (α = 0.7) shared by the tests that read what it wrote."""
    directory = tmp_path_factory.mktemp("search")
    tuner = SageTuner(
        TinySpace(),
        teacher=teacher_path,
        alpha=0.7,
        premature_epochs=1,
        max_trials=3,
        seed=5,
        directory=directory,
        project_name="tg",
    )
    search(tuner, data, callbacks=[keras.callbacks.TensorBoard(str(directory / "logs"))])
    return {"tuner": tuner, "directory": directory, "trials": trial_files(directory / "tg")}


def test_every_trial_completes_and_scores_p_plus_alpha_tg(searched):
    trials = searched["trials"]
    assert len(trials) == 3
    assert [trial["status"] for trial in trials.values()] == ["COMPLETED"] * 3
    for trial in trials.values():
        score = last_metric(trial, "score")
        accuracy = last_metric(trial, "premature_accuracy")
        guidance = last_metric(trial, "teacher_guidance")
        assert score == accuracy + 0.7 * guidance
        assert guidance == pytest.approx((last_metric(trial, "S_L1") + last_metric(trial, "S_L2")) / 2)
        assert trial["score"] == score


def test_trials_record_exact_params_and_flops(searched):
    for trial in searched["trials"].values():
        # Two 3×3 convolutions (8×8, then 4×4 outputs) and a 3-way dense layer, with biases.
        filters = trial["hyperparameters"]["values"]["filters"]
        weights = 9 * filters + filters + 9 * filters * filters + filters + 3 * filters + 3
        assert last_metric(trial, "params") == weights
        assert last_metric(trial, "flops") == 2 * (
            8 * 8 * 9 * filters + 4 * 4 * 9 * filters * filters + 3 * filters
        )


def test_the_user_tensorboard_callback_runs_in_every_trial(searched):
    assert len(list((searched["directory"] / "logs").iterdir())) == 3


def test_best_models_carry_the_premature_weights_they_were_scored_with(searched, data):
    tuner = searched["tuner"]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best_model = tuner.get_best_models(1)[0]
    reloaded = best_model.evaluate(data["x_val"], data["y_val"], verbose=0, return_dict=True)["accuracy"]
    assert reloaded == pytest.approx(best_trial.metrics.get_last_value("premature_accuracy"))


def test_each_trial_writes_its_best_student_layers(searched):
    best_trial = searched["tuner"].oracle.get_best_trials(1)[0]
    side_file = json.loads(
        (searched["directory"] / "tg" / f"trial_{best_trial.trial_id}" / "teacher_guidance.json").read_text()
    )
    assert set(side_file["best_student_layers"].values()) <= {"layer_1", "layer_2"}
    assert (side_file["similarity"], side_file["layer_match"], side_file["layer_mapping"]) == (
        "pearson",
        "max",
        None,
    )


def test_a_fixed_layer_mapping_scores_and_records_the_mapped_layers(tmp_path, data, teacher_path):
    mapping = {"L1": "layer_2", "L2": "layer_1"}
    tuner = SageTuner(
        TinySpace(),
        teacher=teacher_path,
        premature_epochs=1,
        max_trials=1,
        seed=5,
        similarity="spearman",
        layer_match="fixed",
        layer_mapping=mapping,
        directory=tmp_path,
        project_name="fixed",
    )
    search(tuner, data)
    (trial,) = tuner.oracle.trials.values()
    side_file = json.loads(
        (tmp_path / "fixed" / f"trial_{trial.trial_id}" / "teacher_guidance.json").read_text()
    )
    assert side_file["similarity"] == "spearman"
    assert side_file["layer_mapping"] == side_file["best_student_layers"] == mapping
    model = tuner.get_best_models(1)[0]
    features = keras.Model(model.input, model.get_layer("layer_2").output)(data["probe_images"])
    student = rdm(np.asarray(features).reshape(len(data["probe_images"]), -1))
    teacher_rdm = TeacherStore.open(teacher_path).rdms()["L1"]
    expected = spearmanr(teacher_rdm.values, student.values).statistic
    assert trial.metrics.get_last_value("S_L1") == pytest.approx(expected, abs=1e-4)


def test_the_cost_is_the_examples_of_the_premature_training(searched):
    # 3 trials of one epoch over 40 examples.
    assert searched["tuner"].search_cost() == 3 * N_TRAIN


def test_trial_records_and_summary_read_the_trials_back(searched):
    tuner, trials = searched["tuner"], searched["trials"]
    records = trial_records(tuner)
    assert [record.trial_id for record in records] == ["0", "1", "2"]
    for record in records:
        trial = trials[f"trial_{record.trial_id}"]
        assert record.score == last_metric(trial, "score")
        assert record.similarities == {"L1": last_metric(trial, "S_L1"), "L2": last_metric(trial, "S_L2")}
        assert record.examples_processed == N_TRAIN
    summary = search_summary("tg", tuner)
    assert summary["trials"] == 3 and summary["failed"] == 0
    assert summary["best P"] == max(record.premature_accuracy for record in records)
    assert summary["examples (+M2·E2)"] == 3 * N_TRAIN


def test_the_project_directory_read_as_data_gives_the_same_records_and_summary(searched):
    tuner = searched["tuner"]
    project = project_records(searched["directory"] / "tg")
    assert project.records == trial_records(tuner)
    assert (project.alpha, project.search_examples, project.rerank_examples) == (0.7, 3 * N_TRAIN, 0)
    assert search_summary("tg", project) == search_summary("tg", tuner)


def test_keras_tuner_results_summary_and_the_search_plot(searched, capsys, tmp_path):
    tuner = searched["tuner"]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    tuner.results_summary(1)
    assert f"Trial {best_trial.trial_id} summary" in capsys.readouterr().out
    plot = Path(plot_search({"tg": trial_records(tuner)}, tmp_path / "search.png"))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_old_objective_attribute_warns_and_is_the_scorer(searched):
    tuner = searched["tuner"]
    with pytest.warns(DeprecationWarning, match="scorer"):
        assert tuner.objective is tuner.scorer
    assert tuner.scorer.alpha == tuner.alpha == 0.7


class TraceCountingSpace(keras_tuner.HyperModel):
    """A compiled candidate that counts how often its training step is traced into a graph."""

    def __init__(self):
        super().__init__()
        self.traces = 0

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        space = self

        class CountingModel(keras.Model):
            def train_step(self, data):
                space.traces += 1
                return super().train_step(data)

        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(hp.Int("filters", 2, 4), 3, name="layer_1")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = CountingModel(image, keras.layers.Dense(3, activation="softmax")(x))
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


@pytest.mark.parametrize("as_dataset", [False, True])
def test_a_trial_traces_its_training_step_once(tmp_path, data, teacher_path, as_dataset):
    # Keras alone traces twice: it creates the optimizer's and metrics' variables in the first trace.
    space = TraceCountingSpace()
    tuner = SageTuner(space, teacher=teacher_path, premature_epochs=1, max_trials=1, directory=tmp_path)
    if as_dataset:
        training = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(BATCH_SIZE)
        tuner.search(training, validation_data=(data["x_val"], data["y_val"]))
    else:
        search(tuner, data)
    assert tuner.oracle.trials["0"].status == "COMPLETED"
    assert space.traces == 1


def test_a_distribution_strategy_builds_and_trains_candidates_under_it(tmp_path, data, teacher_path):
    space = TraceCountingSpace()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    tuner = SageTuner(
        space,
        teacher=teacher_path,
        premature_epochs=1,
        max_trials=1,
        directory=tmp_path,
        distribution_strategy=strategy,
    )
    search(tuner, data)
    trial = tuner.oracle.trials["0"]
    assert trial.status == "COMPLETED", trial.message
    assert trial.metrics.get_last_value("score") == pytest.approx(
        trial.metrics.get_last_value("premature_accuracy") + trial.metrics.get_last_value("teacher_guidance")
    )
    assert space.traces == 1


def test_alpha_zero_is_performance_guided(tmp_path, data, teacher_path):
    tuner = SageTuner(
        TinySpace(),
        teacher=teacher_path,
        alpha=0.0,
        premature_steps=2,
        max_trials=2,
        seed=1,
        directory=tmp_path,
        project_name="p",
    )
    search(tuner, data)
    for trial in trial_files(tmp_path / "p").values():
        assert last_metric(trial, "score") == last_metric(trial, "premature_accuracy")
        assert last_metric(trial, "teacher_guidance") != 0.0
    # Two steps of 16 examples per trial.
    assert tuner.search_cost() == 2 * 2 * BATCH_SIZE


def test_mismatched_teacher_probe_raises(tmp_path, data, teacher_path):
    with pytest.raises(ValueError, match="different probe set"):
        SageTuner(
            TinySpace(),
            teacher=teacher_path,
            probe=(data["probe_images"][::-1], data["probe_labels"]),
            directory=tmp_path,
            project_name="mismatch",
        )


def test_nan_and_unbuildable_candidates_are_failed_trials(tmp_path, data, teacher_path):
    script = [{"filters": 2, "mode": mode} for mode in ("nan", "unbuildable", "ok")]
    tuner = SageTuner(
        TinySpace(modes=("ok", "nan", "unbuildable")),
        teacher=teacher_path,
        oracle=ScriptedOracle(script),
        premature_steps=3,
        directory=tmp_path,
        project_name="failures",
    )
    assert tuner.oracle.objective.name == "score"
    search(tuner, data)
    trials = trial_files(tmp_path / "failures")
    assert [trial["status"] for trial in trials.values()] == ["FAILED", "FAILED", "COMPLETED"]
    assert trials["trial_0"]["message"] == "training diverged: the loss became NaN or infinite at step 1"
    assert trials["trial_1"]["message"] == "candidate cannot be built: spatial size below 1 at layer_2"


def test_a_failed_trial_prints_one_line_and_logs_its_traceback(tmp_path, data, teacher_path, capsys):
    script = [{"filters": 2, "mode": mode} for mode in ("nan", "unbuildable", "ok")]
    tuner = SageTuner(
        TinySpace(modes=("ok", "nan", "unbuildable")),
        teacher=teacher_path,
        oracle=ScriptedOracle(script),
        premature_steps=3,
        directory=tmp_path,
        project_name="quiet_failures",
    )
    search(tuner, data)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    failures = [line for line in captured.out.splitlines() if " failed: " in line]
    log_0, log_1 = (tmp_path / "quiet_failures" / f"trial_{i}" / "trial.log" for i in range(2))
    diverged = "training diverged: the loss became NaN or infinite at step 1"
    assert failures == [
        f"Trial 0 failed: {diverged} (traceback in {log_0})",
        f"Trial 1 failed: candidate cannot be built: spatial size below 1 at layer_2 (traceback in {log_1})",
    ]
    assert tuner.trial_log_path("0") == str(log_0)
    traceback_0 = log_0.read_text()
    assert traceback_0.startswith("Traceback (most recent call last):")
    assert traceback_0.rstrip().endswith(
        "FailedTrialError: training diverged: the loss became NaN or infinite at step 1"
    )
    assert "CandidateBuildError: spatial size below 1 at layer_2" in log_1.read_text()
    assert not (tmp_path / "quiet_failures" / "trial_2" / "trial.log").exists()


def test_verbose_0_prints_no_failure_line(tmp_path, data, teacher_path, capsys):
    tuner = SageTuner(
        TinySpace(modes=("ok", "nan")),
        teacher=teacher_path,
        oracle=ScriptedOracle([{"filters": 2, "mode": "nan"}]),
        premature_steps=3,
        directory=tmp_path,
        project_name="silent",
    )
    search(tuner, data, verbose=0)
    assert capsys.readouterr().out == ""
    assert (tmp_path / "silent" / "trial_0" / "trial.log").is_file()


@pytest.mark.parametrize(
    ("modes", "causes"),
    [
        (
            ("nan", "nan"),
            "all for the same cause: training diverged: the loss became NaN or infinite at step 1",
        ),
        (("nan", "unbuildable"), "for these causes: 1× training diverged, 1× candidate cannot be built"),
    ],
)
def test_consecutive_failures_stop_the_search_naming_their_causes(
    tmp_path, data, teacher_path, modes, causes
):
    script = [{"filters": 2 + i, "mode": mode} for i, mode in enumerate([*modes, "ok"])]
    tuner = SageTuner(
        TinySpace(modes=("ok", "nan", "unbuildable")),
        teacher=teacher_path,
        oracle=ScriptedOracle(script, max_consecutive_failed_trials=2),
        premature_steps=3,
        directory=tmp_path,
        project_name="stopped",
    )
    with pytest.raises(SearchStoppedError) as stopped:
        search(tuner, data, verbose=0)
    assert str(stopped.value) == (
        f"the search stopped after 2 failed trials in a row (trials 0, 1), {causes}; "
        "each trial's traceback is in its folder's trial.log"
    )


@pytest.mark.parametrize(
    ("error", "message", "reason"),
    [
        (
            keras_tuner.errors.FailedTrialError("training diverged: at step 3"),
            None,
            "training diverged: at step 3",
        ),
        (ValueError("bad shape\nmore"), None, "ValueError: bad shape"),
        (
            None,
            "Traceback ...\nkeras_tuner.src.errors.FailedTrialError: candidate cannot be built: x\n",
            "candidate cannot be built: x",
        ),
        (None, "Traceback ...\nValueError: bad\n", "ValueError: bad"),
        (None, None, "unknown reason"),
    ],
)
def test_failure_reason(error, message, reason):
    assert failure_reason(error, message) == reason
    assert failure_cause(reason) == reason.split(":")[0]


def test_resume_continues_the_trial_count_and_cost(tmp_path, data, teacher_path):
    arguments = {"teacher": teacher_path, "premature_epochs": 1, "seed": 3, "directory": tmp_path}
    first = SageTuner(TinySpace(), max_trials=2, project_name="resume", **arguments)
    search(first, data)
    before = trial_files(tmp_path / "resume")
    resumed = SageTuner(TinySpace(), max_trials=3, project_name="resume", overwrite=False, **arguments)
    assert resumed.remaining_trials == 1
    search(resumed, data)
    after = trial_files(tmp_path / "resume")
    assert sorted(after) == ["trial_0", "trial_1", "trial_2"]
    assert {name: after[name] for name in before} == before
    assert resumed.search_cost() == 3 * N_TRAIN


def test_rerank_trains_the_best_longer_and_adds_to_the_cost(tmp_path, data, teacher_path):
    tuner = SageTuner(
        TinySpace(),
        teacher=teacher_path,
        premature_steps=1,
        max_trials=3,
        seed=2,
        directory=tmp_path,
        project_name="rerank",
    )
    search(tuner, data)
    search_cost = tuner.search_cost()
    assert search_cost == 3 * BATCH_SIZE
    results = tuner.rerank(
        2, 2, data["x"], data["y"], validation_data=(data["x_val"], data["y_val"]), batch_size=BATCH_SIZE
    )
    assert len(results) == 2
    assert [result.mature_accuracy for result in results] == sorted(
        (result.mature_accuracy for result in results), reverse=True
    )
    assert {result.trial_id for result in results} == {
        trial.trial_id for trial in tuner.oracle.get_best_trials(2)
    }
    assert tuner.search_cost() == search_cost + 2 * 2 * N_TRAIN
    reloaded = SageTuner(
        TinySpace(),
        teacher=teacher_path,
        premature_steps=1,
        max_trials=3,
        seed=2,
        directory=tmp_path,
        project_name="rerank",
        overwrite=False,
    )
    assert reloaded.search_cost() == tuner.search_cost()
    assert reloaded.rerank_results == results
    winner_record = next(record for record in trial_records(tuner) if record.trial_id == results[0].trial_id)
    summary = search_summary("tg", tuner, results)
    assert summary["winner"] == results[0].trial_id
    assert summary["winner params"] == int(winner_record.params) > 0
    assert summary["winner FLOPs"] == int(winner_record.flops) > 0
    top_score = max(results, key=lambda result: result.score)
    assert summary["top-score mature acc"] == top_score.mature_accuracy
    assert search_summary("tg", project_records(tmp_path / "rerank"))["top-score mature acc"] == (
        top_score.mature_accuracy
    )


def test_budget_arguments_are_checked(tmp_path, teacher_path):
    with pytest.raises(ValueError, match="either premature_epochs or premature_steps"):
        SageTuner(
            TinySpace(), teacher=teacher_path, premature_epochs=1, premature_steps=5, directory=tmp_path
        )
    with pytest.raises(ValueError, match="premature_steps must be a positive integer"):
        SageTuner(TinySpace(), teacher=teacher_path, premature_steps=0, directory=tmp_path)
    with pytest.raises(ValueError, match="executions_per_trial must be 1"):
        SageTuner(TinySpace(), teacher=teacher_path, executions_per_trial=2, directory=tmp_path)
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    with pytest.raises(ValueError, match="'val_loss' is not a metric SageTuner reports"):
        SageTuner(TinySpace(), teacher=teacher_path, oracle=oracle, directory=tmp_path)


def test_same_seed_gives_the_same_trials(tmp_path, data, teacher_path):
    scores = []
    for project_name in ("first", "second"):
        tuner = SageTuner(
            TinySpace(),
            teacher=teacher_path,
            premature_steps=2,
            max_trials=2,
            seed=0,
            directory=tmp_path,
            project_name=project_name,
        )
        search(tuner, data)
        trials = trial_files(tmp_path / project_name).values()
        scores.append([(trial["hyperparameters"]["values"], last_metric(trial, "score")) for trial in trials])
    assert scores[0] == scores[1]


def test_a_subclass_gets_keras_tuners_epoch_and_batch_hooks(tmp_path, data, teacher_path):
    class HookedTuner(SageTuner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.epochs_ended: list[tuple[str, int, float]] = []
            self.batches_ended = 0

        def on_epoch_end(self, trial, model, epoch, logs=None):
            self.epochs_ended.append((trial.trial_id, epoch, logs["loss"]))

        def on_batch_end(self, trial, model, batch, logs=None):
            self.batches_ended += 1

    tuner = HookedTuner(
        TinySpace(), teacher=teacher_path, premature_epochs=2, max_trials=2, seed=3, directory=tmp_path
    )
    search(tuner, data)
    assert [(trial_id, epoch) for trial_id, epoch, _ in tuner.epochs_ended] == [
        ("0", 0),
        ("0", 1),
        ("1", 0),
        ("1", 1),
    ]
    assert all(math.isfinite(loss) for *_, loss in tuner.epochs_ended)
    assert tuner.batches_ended == 2 * 2 * math.ceil(N_TRAIN / BATCH_SIZE)
    # The hooks add nothing to what a trial records: each metric once, the score still P + α·TG.
    for trial in trial_files(tmp_path / "untitled_project").values():
        metrics = trial["metrics"]["metrics"]
        assert set(metrics) == {
            "score",
            "premature_accuracy",
            "teacher_guidance",
            "S_L1",
            "S_L2",
            "params",
            "flops",
            "examples_processed",
            "teacher_version",
        }
        assert all(len(metric["observations"]) == 1 for metric in metrics.values())
        assert last_metric(trial, "score") == last_metric(trial, "premature_accuracy") + last_metric(
            trial, "teacher_guidance"
        )


# Bad settings fail when the tuner is built, before any trial.


def tuner_with(tmp_path, teacher, hypermodel=None, **kwargs) -> SageTuner:
    return SageTuner(
        hypermodel or TinySpace(),
        teacher=teacher,
        directory=tmp_path,
        project_name="checked",
        **{"max_trials": 1, **kwargs},
    )


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"alpha": -0.5}, ValueError, "alpha must be a finite number of at least 0, got -0.5"),
        ({"alpha": math.nan}, ValueError, "alpha must be a finite number of at least 0, got nan"),
        ({"alpha": "1.0"}, TypeError, "alpha must be a number, got '1.0' (str)"),
        ({"alpha": True}, TypeError, "alpha must be a number, got True (bool)"),
        ({"premature_epochs": "2"}, ValueError, "premature_epochs must be a positive integer, got '2'"),
        ({"premature_epochs": True}, ValueError, "premature_epochs must be a positive integer, got True"),
        ({"premature_steps": 0}, ValueError, "premature_steps must be a positive integer, got 0"),
        ({"premature_steps": 2.0}, ValueError, "premature_steps must be a positive integer, got 2.0"),
        ({"max_trials": "3"}, ValueError, "max_trials must be a positive integer, got '3'"),
    ],
)
def test_bad_alpha_or_budget_is_refused_naming_it(tmp_path, teacher_path, arguments, error, message):
    with pytest.raises(error) as raised:
        tuner_with(tmp_path, teacher_path, **arguments)
    assert str(raised.value).startswith(message)
    assert not (tmp_path / "checked").exists()


def test_alpha_accepts_integers_and_numpy_numbers(tmp_path, teacher_path):
    assert tuner_with(tmp_path, teacher_path, alpha=2).alpha == 2.0
    assert tuner_with(tmp_path, teacher_path, alpha=np.float32(0.5), overwrite=True).alpha == 0.5


def edited_teacher(tmp_path, teacher_path, edit) -> Path:
    """A copy of the teacher file with `edit(h5py.File)` applied to it."""
    import shutil

    import h5py

    path = tmp_path / "edited.h5"
    shutil.copy(teacher_path, path)
    with h5py.File(path, "r+") as file:
        edit(file)
    return path


def set_values(value):
    def edit(file):
        values = file["rdms/L1"][()]
        values[:] = 1.0
        values[2] = value
        file["rdms/L1"][...] = values

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_values(np.nan), "RDM 'L1' holds NaN or infinite values"),
        (set_values(np.inf), "RDM 'L1' holds NaN or infinite values"),
        (set_values(1.0), "RDM 'L1' is constant (every pair of probe images equally dissimilar)"),
    ],
)
def test_a_teacher_rdm_that_cannot_guide_is_refused(tmp_path, teacher_path, edit, message):
    path = edited_teacher(tmp_path, teacher_path, edit)
    with pytest.raises(ValueError) as raised:
        tuner_with(tmp_path, path)
    assert str(raised.value).startswith(f"teacher file {path}: {message}")


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("metric", "manhattan", "/rdms/L2 has metric 'manhattan'; this release knows correlation, euclidean"),
        ("level", "pixel", "RDM 'L2' has level 'pixel'; expected one of image, category"),
    ],
)
def test_a_teacher_of_unknown_metric_or_level_is_refused(tmp_path, teacher_path, attribute, value, message):
    from keras_sage.teachers import TeacherFileError

    path = edited_teacher(
        tmp_path, teacher_path, lambda file: file["rdms/L2"].attrs.__setitem__(attribute, value)
    )
    with pytest.raises(TeacherFileError) as raised:
        TeacherStore.open(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    with pytest.raises(TeacherFileError):
        tuner_with(tmp_path, path)


def test_probe_images_of_another_shape_than_the_hypermodels_input_are_refused(tmp_path, teacher_path):
    from keras_sage.hypermodels import CNNSearchSpace

    space = CNNSearchSpace(max_layers=2, num_classes=3, input_shape=(16, 16, 1))
    with pytest.raises(ValueError) as raised:
        tuner_with(tmp_path, teacher_path, hypermodel=space)
    assert str(raised.value) == (
        f"teacher file {teacher_path}: its probe images have shape (8, 8, 1), but the hypermodel's input "
        "shape is (16, 16, 1); register the teacher on probe images of the candidates' input shape (or "
        "pass probe_preprocessing)"
    )
    tuner_with(tmp_path, teacher_path, hypermodel=space, probe_preprocessing=lambda images: images)


def test_a_hypermodel_without_input_shape_is_checked_before_the_first_training(tmp_path, data, teacher_path):
    class WideSpace(TinySpace):
        def build(self, hp):
            image = keras.Input((10, 10, 1))
            x = keras.layers.Conv2D(2, 3, name="layer_1")(image)
            model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

    tuner = tuner_with(tmp_path, teacher_path, hypermodel=WideSpace(), max_trials=3)
    with pytest.raises(
        keras_tuner.errors.FatalValueError, match=r"the candidate's input shape is \(10, 10, 1\)"
    ):
        search(tuner, data)
    assert tuner.search_examples == 0


def test_a_project_whose_every_trial_failed_says_its_most_common_cause():
    from keras_sage.tuners.failures import check_some_outcome_completed

    diverged = "FailedTrialError: training diverged: the loss became NaN or infinite at step 3"
    outcomes = [("FAILED", diverged), ("FAILED", diverged), ("FAILED", "ValueError: bad shape")]
    with pytest.raises(
        SearchStoppedError, match=r"every trial of the search failed \(3\); .* \(2 of them\): "
    ):
        check_some_outcome_completed(outcomes)
    check_some_outcome_completed([*outcomes, ("COMPLETED", "")])
    check_some_outcome_completed([])
