"""Every search watchable: the journal mirror, `keras-sage export` and `keras-sage dashboard` (a subprocess
serving optuna-dashboard over HTTP), on tiny searches of 8×8 images."""

import csv
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from distributed_harness import free_port
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from keras_sage import project_files
from keras_sage.analysis.export import trial_rows
from keras_sage.cli import main
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners.journal_mirror import MIRROR_WRITER, journal_lines
from keras_sage.tuners.oracles.optuna_oracle import STUDY_NAME
from keras_sage.tuners.oracles.tpe import TPEOracle
from keras_sage.tuners.sage_tuner import SCORE_OBJECTIVE, SageTuner

optuna_dashboard = pytest.importorskip("optuna_dashboard")

# Where the HTTP test waits (bounded): the server's start, and each request.
SERVER_START_S = 60
REQUEST_S = 10


class TinySpace(keras_tuner.HyperModel):
    """One conv endpoint of tunable width; mode "nan" makes the loss NaN (a failed trial)."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        filters = hp.Int("filters", 2, 8)
        mode = hp.Choice("mode", ["ok", "nan"])
        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="layer_1")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))

        def loss(y_true, y_pred):
            value = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
            return value * np.nan if mode == "nan" else value

        model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        return model


class ScriptedOracle(keras_tuner.Oracle):
    """Proposes the given hyperparameter values in order, then stops (an oracle with no optuna study)."""

    def __init__(self, script: list[dict], **kwargs):
        super().__init__(max_trials=len(script), objective=SCORE_OBJECTIVE, **kwargs)
        self.script = script

    def populate_space(self, trial_id: str) -> dict:
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": self.script[int(trial_id)]}


SCRIPT = [{"filters": 2, "mode": "ok"}, {"filters": 5, "mode": "nan"}, {"filters": 7, "mode": "ok"}]


def run_search(folder: Path, name: str, oracle: keras_tuner.Oracle, callbacks: tuple = ()) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, len(x))
    probe = rng.random((9, 8, 8, 1), dtype=np.float32)
    teacher = folder / "teacher.h5"
    if not teacher.exists():
        store = TeacherStore.create(teacher, probe, np.repeat(np.arange(3), 3))
        flat = probe.reshape(len(probe), -1)
        store.add_rdm("L1", rdm(np.maximum(flat @ rng.normal(size=(64, 16)), 0), name="L1"))
        store.add_rdm("L2", rdm(flat @ rng.normal(size=(64, 4)), name="L2"))
    tuner = SageTuner(
        TinySpace(),
        teacher,
        premature_steps=2,
        oracle=oracle,
        seed=3,
        directory=str(folder),
        project_name=name,
    )
    tuner.search(
        x[:30], y[:30], validation_data=(x[30:], y[30:]), batch_size=8, verbose=0, callbacks=list(callbacks)
    )
    return folder / name


@pytest.fixture(scope="module")
def scripted_project(tmp_path_factory) -> Path:
    """A finished 3-trial search (the second fails) by an oracle that keeps no optuna study."""
    return run_search(tmp_path_factory.mktemp("scripted"), "scripted", ScriptedOracle(SCRIPT))


@pytest.fixture(scope="module")
def tpe_project(tmp_path_factory) -> Path:
    oracle = TPEOracle(objective=SCORE_OBJECTIVE, max_trials=3, seed=1)
    return run_search(tmp_path_factory.mktemp("tpe"), "tpe", oracle)


def trial_states(project: Path) -> dict[str, dict]:
    return {
        path.parent.name[len("trial_") :]: json.loads(path.read_text())
        for path in project.glob("trial_*/trial.json")
    }


def last_metric(state: dict, name: str) -> float:
    return state["metrics"]["metrics"][name]["observations"][-1]["value"][0]


def load_journal(path: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(path))))


def snapshot(project: Path) -> dict[str, tuple[int, int]]:
    """Every file of a project directory with its size and modification time."""
    return {
        str(path.relative_to(project)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(project.rglob("*"))
        if path.is_file()
    }


METRICS_AS_ATTRIBUTES = ("score", "premature_accuracy", "teacher_guidance", "S_L1", "S_L2", "params", "flops")


def test_each_ended_trial_is_mirrored_with_its_values_hyperparameters_and_metrics(scripted_project):
    assert not (scripted_project / project_files.JOURNAL_FILE).exists()
    journal = scripted_project / project_files.MIRROR_JOURNAL_FILE
    assert project_files.search_journal(scripted_project) == journal
    study = load_journal(journal)
    states = trial_states(scripted_project)
    trials = study.get_trials()
    assert [trial.user_attrs["keras_tuner_trial_id"] for trial in trials] == ["0", "1", "2"]
    assert [trial.state for trial in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    assert study.metric_names == ["score"]
    for trial, script in zip(trials, SCRIPT, strict=True):
        assert trial.params == script
    for trial in (trials[0], trials[2]):
        state = states[trial.user_attrs["keras_tuner_trial_id"]]
        assert trial.values == [pytest.approx(state["score"], abs=1e-12)]
        for name in (*METRICS_AS_ATTRIBUTES, "teacher_version", "examples_processed"):
            assert trial.user_attrs[name] == pytest.approx(last_metric(state, name), abs=1e-12), name
        assert trial.user_attrs["score"] == pytest.approx(
            trial.user_attrs["premature_accuracy"] + trial.user_attrs["teacher_guidance"], abs=1e-6
        )
    assert trials[1].values is None
    assert (
        "loss" in trials[1].user_attrs["message"].lower() or "nan" in trials[1].user_attrs["message"].lower()
    )
    assert trials[1].user_attrs["message"] == states["1"]["message"]


def test_a_rewritten_mirror_starts_with_the_bytes_it_had():
    maximize = optuna.study.StudyDirection.MAXIMIZE
    distribution = optuna.distributions.IntDistribution(2, 8)
    trials = [
        optuna.trial.create_trial(
            params={"filters": filters}, distributions={"filters": distribution}, values=[filters / 10]
        )
        for filters in (2, 5, 7)
    ]
    shorter, longer = (
        journal_lines(trials[:2], [maximize], ["score"]),
        journal_lines(trials, [maximize], ["score"]),
    )
    assert longer.startswith(shorter) and len(longer) > len(shorter)
    records = [json.loads(line) for line in longer.decode().splitlines()]
    assert {record["worker_id"] for record in records if "worker_id" in record} == {MIRROR_WRITER}


def test_the_tpe_oracles_own_journal_holds_the_metrics_and_no_mirror_is_written(tpe_project):
    assert not (tpe_project / project_files.MIRROR_JOURNAL_FILE).exists()
    study = load_journal(tpe_project / project_files.JOURNAL_FILE)
    states = trial_states(tpe_project)
    completed = [trial for trial in study.get_trials() if trial.state == optuna.trial.TrialState.COMPLETE]
    assert completed
    for trial in completed:
        state = states[trial.user_attrs["keras_tuner_trial_id"]]
        if state["status"] != "COMPLETED":
            continue
        assert trial.value == pytest.approx(state["score"], abs=1e-12)
        for name in METRICS_AS_ATTRIBUTES:
            assert trial.user_attrs[name] == pytest.approx(last_metric(state, name), abs=1e-12), name


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_writes_one_row_per_trial_with_its_hyperparameters_and_metrics(
    scripted_project, tmp_path, suffix, capsys
):
    output = tmp_path / f"trials{suffix}"
    assert main(["export", str(scripted_project), "-o", str(output)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 3 trials to {output}"
    if suffix == ".csv":
        with output.open() as file:
            rows = list(csv.DictReader(file))
    else:
        rows = [json.loads(line) for line in output.read_text().splitlines()]
    states = trial_states(scripted_project)
    assert [row["trial_id"] for row in rows] == ["0", "1", "2"]
    for row, script in zip(rows, SCRIPT, strict=True):
        state = states[row["trial_id"]]
        assert row["status"] == state["status"]
        assert int(row["hp.filters"]) == script["filters"] and row["hp.mode"] == script["mode"]
        if state["status"] == "COMPLETED":
            for name in METRICS_AS_ATTRIBUTES:
                assert float(row[name]) == pytest.approx(last_metric(state, name), rel=1e-12), name
            assert row["message"] == ""
        else:
            assert row["score"] in ("", None)
            assert row["message"] == state["message"]
    in_memory = trial_rows(scripted_project)
    assert list(rows[0]) == list(in_memory[0])
    assert math.isnan(in_memory[1]["score"])


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_export_and_dashboard_of_a_folder_without_a_search_are_one_line_and_change_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a search")
    before = snapshot(empty)
    output = tmp_path / "trials.csv"
    assert main(["export", str(empty), "-o", str(output)]) == 2
    assert str(empty) in one_error_line(capsys)
    assert not output.exists()
    assert main(["dashboard", str(empty), "--port", str(free_port())]) == 2
    line = one_error_line(capsys)
    assert str(empty) in line and project_files.MIRROR_JOURNAL_FILE in line
    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert "no project directory" in one_error_line(capsys)
    assert snapshot(empty) == before


def test_export_to_an_unknown_format_is_one_line(scripted_project, tmp_path, capsys):
    assert main(["export", str(scripted_project), "-o", str(tmp_path / "trials.xlsx")]) == 2
    assert "'.xlsx'" in one_error_line(capsys)


def test_a_port_in_use_is_one_line_and_changes_nothing(scripted_project, capsys):
    before = snapshot(scripted_project)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert main(["dashboard", str(scripted_project), "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in one_error_line(capsys)
    assert snapshot(scripted_project) == before


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=REQUEST_S) as answer:
        return json.loads(answer.read())


def wait_for_studies(url: str, server: subprocess.Popen) -> dict:
    """The dashboard's list of studies, once it answers (bounded by SERVER_START_S)."""
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if server.poll() is not None:
            raise AssertionError(f"the dashboard exited with {server.returncode}: {server.stderr.read()}")
        try:
            return get_json(f"{url}/api/studies")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_dashboard_serves_the_search_over_http_read_only(scripted_project):
    before = snapshot(scripted_project)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_sage.cli", "dashboard", str(scripted_project), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        studies = wait_for_studies(url, server)["study_summaries"]
        assert [study["study_name"] for study in studies] == [STUDY_NAME]
        detail = get_json(f"{url}/api/studies/{studies[0]['study_id']}?after=0")
        states = trial_states(scripted_project)
        trials = detail["trials"]
        assert [trial["state"] for trial in trials] == ["Complete", "Fail", "Complete"]
        for trial in trials:
            attributes = {attribute["key"]: attribute["value"] for attribute in trial["user_attrs"]}
            state = states[attributes["keras_tuner_trial_id"]]
            assert {param["name"]: param["param_external_value"] for param in trial["params"]} == {
                name: str(value) for name, value in state["hyperparameters"]["values"].items()
            }
            if trial["state"] == "Complete":
                assert trial["values"] == [pytest.approx(state["score"], abs=1e-12)]
                for name in METRICS_AS_ATTRIBUTES:
                    assert float(attributes[name]) == pytest.approx(last_metric(state, name), abs=1e-12)
        best = [trial["number"] for trial in detail["best_trials"]]
        scores = {trial["number"]: trial["values"][0] for trial in trials if "values" in trial}
        assert best == [max(scores, key=scores.get)]
    finally:
        server.terminate()
        server.wait(timeout=REQUEST_S)
    assert snapshot(scripted_project) == before


def scalars_and_plugins(folder: Path) -> tuple[dict[str, float], set[str]]:
    """The scalars (last value by tag) and the plugins of the summaries in a folder's event files."""
    import tensorflow as tf

    scalars, plugins = {}, set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugins.add(value.metadata.plugin_data.plugin_name)
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalars[value.tag] = float(tf.make_ndarray(value.tensor))
    return scalars, plugins


def test_tensorboard_gets_each_trials_hyperparameters_and_p_tg_and_each_s_i(tmp_path):
    log_dir = tmp_path / "logs"
    project = run_search(
        tmp_path,
        "tensorboard",
        ScriptedOracle(SCRIPT[:1]),
        callbacks=(keras.callbacks.TensorBoard(str(log_dir)),),
    )
    state = trial_states(project)["0"]
    session = log_dir / "0" / "execution0"
    scalars, _ = scalars_and_plugins(session / "sage")
    for name in METRICS_AS_ATTRIBUTES:
        assert scalars[name] == pytest.approx(last_metric(state, name), rel=1e-6), name
    _, plugins = scalars_and_plugins(session)
    assert "hparams" in plugins


@pytest.mark.slow
def test_a_chief_with_workers_mirrors_every_trial_of_an_oracle_without_a_journal(tmp_path):
    from distributed_harness import PATIENT_TIMES, Processes, project, trials, write_teacher

    directory = tmp_path / "search"
    (tmp_path / "teacher").mkdir()
    teacher = write_teacher(tmp_path / "teacher")
    with Processes(directory, teacher, "reinforce", 4, port=free_port(), times=PATIENT_TIMES) as processes:
        workers = [processes.start("worker0"), processes.start("worker1")]
        chief = processes.start("chief")
        processes.wait_all([chief, *workers])
        logs = "\n".join(processes.log(process) for process in (chief, *workers))
        assert [process.returncode for process in (chief, *workers)] == [0, 0, 0], logs
    journal = project(directory) / project_files.MIRROR_JOURNAL_FILE
    mirrored = {
        trial.user_attrs["keras_tuner_trial_id"]: trial for trial in load_journal(journal).get_trials()
    }
    states = trials(directory)
    assert sorted(mirrored) == sorted(states)
    for trial_id, state in states.items():
        assert mirrored[trial_id].values == [pytest.approx(state["score"], abs=1e-12)]
