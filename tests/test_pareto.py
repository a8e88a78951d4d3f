"""Pareto search: P and TG kept apart by optuna's multi-objective samplers, the front, its crowding
distances, `results_summary`, `rerank(front=True)`, and objective lists that are refused."""

import json
import re
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from keras_sage import project_files
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners.hyperband import SageHyperband
from keras_sage.tuners.oracles.optuna_oracle import STUDY_NAME, OptunaOracle
from keras_sage.tuners.oracles.reinforce import ReinforceOracle
from keras_sage.tuners.oracles.tpe import TPEOracle
from keras_sage.tuners.pareto import (
    crowding_distances,
    most_spread,
    non_dominated,
    reported_metrics,
    rerank_candidates,
)
from keras_sage.tuners.sage_tuner import SageTuner

P_AND_TG = [
    keras_tuner.Objective("premature_accuracy", "max"),
    keras_tuner.Objective("teacher_guidance", "max"),
]


def brute_force_front(points: np.ndarray) -> list[int]:
    """Rows no other row beats on one column without losing on another (every column maximised)."""
    front = []
    for i, a in enumerate(points):
        beaten = any(
            all(b[c] >= a[c] for c in range(len(a))) and any(b[c] > a[c] for c in range(len(a)))
            for j, b in enumerate(points)
            if j != i
        )
        if not beaten:
            front.append(i)
    return front


def test_the_front_is_the_brute_force_one_on_random_points_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        points = rng.integers(0, 5, size=(rng.integers(1, 15), rng.integers(1, 4))).astype(float)
        assert non_dominated(points) == brute_force_front(points)


def test_crowding_distances_by_hand():
    # Front of three: extremes infinite; the middle one's gaps are (0.9 - 0.1) / 0.8 on each objective.
    points = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
    np.testing.assert_allclose(crowding_distances(points), [np.inf, 2.0, np.inf])
    # Five points on a line x + y = 1: interior gaps 0.5/1, 0.4/1, 0.6/1 on each objective, doubled.
    points = np.array([[0.0, 1.0], [0.3, 0.7], [0.5, 0.5], [0.7, 0.3], [1.0, 0.0]])
    np.testing.assert_allclose(crowding_distances(points), [np.inf, 1.0, 0.8, 1.0, np.inf])
    # A constant objective adds nothing.
    np.testing.assert_allclose(
        crowding_distances(np.array([[0.0, 1.0], [0.2, 1.0], [1.0, 1.0]])), [np.inf, 1.0, np.inf]
    )


def test_most_spread_keeps_the_extremes_then_the_most_isolated():
    points = np.array([[0.0, 1.0], [0.3, 0.7], [0.5, 0.5], [0.7, 0.3], [1.0, 0.0]])
    assert most_spread(points, 2) == [0, 4]
    assert most_spread(points, 3) == [0, 1, 4]  # 1 and 3 tie at 1.0: the earlier one
    assert most_spread(points, 5) == [0, 1, 2, 3, 4]


class TinySpace(keras_tuner.HyperModel):
    """One conv endpoint of tunable width and kernel."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        image = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(
            hp.Int("filters", 1, 8), hp.Choice("kernel", [1, 3]), padding="same", name="layer_1"
        )(image)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1), dtype=np.float32)
    return {"x": x[:30], "y": rng.integers(0, 3, 30), "x_val": x[30:], "y_val": rng.integers(0, 3, 10)}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    probe = rng.random((9, 8, 8, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    store = TeacherStore.create(path, probe, np.repeat(np.arange(3), 3))
    flat = probe.reshape(len(probe), -1)
    store.add_rdm("L1", rdm(np.maximum(flat @ rng.normal(size=(64, 16)), 0), name="L1"))
    return path


def searched(folder: Path, name: str, oracle, teacher: Path, data: dict) -> SageTuner:
    tuner = SageTuner(
        TinySpace(),
        teacher,
        premature_steps=2,
        oracle=oracle,
        seed=2,
        directory=str(folder),
        project_name=name,
    )
    tuner.search(
        data["x"], data["y"], validation_data=(data["x_val"], data["y_val"]), batch_size=8, verbose=0
    )
    return tuner


def trial_metrics(project: Path) -> dict[str, dict[str, float]]:
    metrics = {}
    for path in project.glob("trial_*/trial.json"):
        state = json.loads(path.read_text())
        if state["status"] == "COMPLETED":
            metrics[state["trial_id"]] = {
                name: values["observations"][-1]["value"][0]
                for name, values in state["metrics"]["metrics"].items()
            }
    return metrics


def study_of(project: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(project / project_files.JOURNAL_FILE)))
    return optuna.load_study(study_name=STUDY_NAME, storage=storage)


@pytest.fixture(scope="module")
def tpe_tuner(tmp_path_factory, teacher, data) -> SageTuner:
    oracle = TPEOracle(objective=P_AND_TG, max_trials=6, n_startup_trials=2, seed=1)
    return searched(tmp_path_factory.mktemp("pareto"), "tpe", oracle, teacher, data)


def test_tpe_with_an_objective_list_tells_optuna_p_and_tg_apart(tpe_tuner):
    project = Path(tpe_tuner.project_dir)
    study = study_of(project)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    metrics = trial_metrics(project)
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) == len(metrics) >= 4
    for trial in completed:
        trial_metric = metrics[trial.user_attrs["keras_tuner_trial_id"]]
        assert trial.values == [
            pytest.approx(trial_metric["premature_accuracy"], abs=1e-12),
            pytest.approx(trial_metric["teacher_guidance"], abs=1e-12),
        ]


def test_the_tuners_front_is_the_brute_force_front_of_its_trials(tpe_tuner):
    metrics = trial_metrics(Path(tpe_tuner.project_dir))
    ids = sorted(metrics, key=int)
    points = np.array([[metrics[i]["premature_accuracy"], metrics[i]["teacher_guidance"]] for i in ids])
    expected = [ids[index] for index in brute_force_front(points)]
    assert [trial.trial_id for trial in tpe_tuner.pareto_front()] == expected
    study_front = {
        trial.user_attrs["keras_tuner_trial_id"]
        for trial in study_of(Path(tpe_tuner.project_dir)).best_trials
    }
    assert study_front == set(expected)


def test_results_summary_marks_each_front_member(tpe_tuner, capsys):
    tpe_tuner.results_summary(num_trials=10)
    out = capsys.readouterr().out
    front = tpe_tuner.pareto_front()
    assert out.count("On the Pareto front") == len(front)
    assert f"{len(front)} on the Pareto front of" in out
    assert "premature_accuracy (max), teacher_guidance (max)" in out


def test_rerank_of_the_front_trains_each_member_and_counts_the_cost(tpe_tuner, data):
    before = tpe_tuner.search_cost()
    front = [trial.trial_id for trial in tpe_tuner.pareto_front()]
    results = tpe_tuner.rerank(
        None,
        1,
        data["x"],
        data["y"],
        validation_data=(data["x_val"], data["y_val"]),
        batch_size=8,
        front=True,
    )
    assert sorted(result.trial_id for result in results) == sorted(front)
    accuracies = [result.mature_accuracy for result in results]
    assert accuracies == sorted(accuracies, reverse=True)
    assert all(result.examples_processed == 30 for result in results)  # one epoch of 30 examples each
    assert tpe_tuner.search_cost() == before + 30 * len(front)


def test_rerank_of_the_front_with_top_k_takes_the_most_spread(tpe_tuner):
    front = tpe_tuner.pareto_front()
    points = np.array(
        [
            [trial.metrics.get_last_value(name) for name in ("premature_accuracy", "teacher_guidance")]
            for trial in front
        ]
    )
    for k in range(1, len(front) + 1):
        chosen = rerank_candidates(tpe_tuner.oracle, k, front=True)
        assert [trial.trial_id for trial in chosen] == [
            front[index].trial_id for index in most_spread(points, k)
        ]
    by_score = sorted(
        tpe_tuner.oracle.trials.values(), key=lambda trial: -trial.metrics.get_last_value("score")
    )
    chosen = rerank_candidates(tpe_tuner.oracle, 2, front=False)
    assert [trial.trial_id for trial in chosen] == [trial.trial_id for trial in by_score[:2]]
    with pytest.raises(ValueError, match="top_k must be positive"):
        rerank_candidates(tpe_tuner.oracle, 0, front=True)
    with pytest.raises(ValueError, match="give top_k"):
        rerank_candidates(tpe_tuner.oracle, None, front=False)


def test_nsga2_with_a_cost_objective_keeps_three_values(tmp_path, teacher, data):
    objectives = [*P_AND_TG, keras_tuner.Objective("params", "min")]
    oracle = OptunaOracle(
        optuna.samplers.NSGAIISampler(seed=1, population_size=2), objective=objectives, max_trials=4
    )
    tuner = searched(tmp_path, "nsga2", oracle, teacher, data)
    study = study_of(Path(tuner.project_dir))
    assert study.directions[2] == optuna.study.StudyDirection.MINIMIZE
    metrics = trial_metrics(Path(tuner.project_dir))
    for trial in study.trials:
        trial_metric = metrics[trial.user_attrs["keras_tuner_trial_id"]]
        assert trial.values == [
            pytest.approx(trial_metric[objective.name], abs=1e-12) for objective in objectives
        ]
    # The front over three objectives: a smaller candidate stays on it even with lower P and TG.
    ids = sorted(metrics, key=int)
    points = np.array(
        [
            [metrics[i]["premature_accuracy"], metrics[i]["teacher_guidance"], -metrics[i]["params"]]
            for i in ids
        ]
    )
    assert [trial.trial_id for trial in tuner.pareto_front()] == [
        ids[index] for index in brute_force_front(points)
    ]


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (
            [keras_tuner.Objective("val_loss", "min"), P_AND_TG[0]],
            "'val_loss' is not a metric SageTuner reports",
        ),
        ([P_AND_TG[0], keras_tuner.Objective("params", "max")], "'params' must be minimised"),
        (keras_tuner.Objective("flops", "min"), "'flops' must be minimised and given in a list"),
        (
            [keras_tuner.Objective("teacher_guidance", "min"), P_AND_TG[0]],
            "'teacher_guidance' must be maximised",
        ),
    ],
)
def test_bad_objective_lists_are_one_line_naming_the_metric(tmp_path, teacher, objective, message):
    oracle = TPEOracle(objective=objective, max_trials=2)
    with pytest.raises(ValueError, match=message) as error:
        SageTuner(TinySpace(), teacher, oracle=oracle, directory=str(tmp_path), project_name="bad")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "bad").exists()


def test_oracles_that_rank_by_one_number_refuse_a_list(tmp_path, teacher):
    with pytest.raises(ValueError, match="ReinforceOracle takes one objective"):
        ReinforceOracle([("filters", [1, 2])], objective=P_AND_TG)
    with pytest.raises(ValueError, match="HyperbandOracle ranks trials by one number"):
        SageTuner(
            TinySpace(),
            teacher,
            oracle=keras_tuner.oracles.HyperbandOracle(objective=P_AND_TG, max_epochs=3),
            directory=str(tmp_path),
        )
    with pytest.raises(TypeError, match="SageHyperband promotes the best of each rung by one number"):
        SageHyperband(TinySpace(), teacher, max_epochs=3, objective=P_AND_TG, directory=str(tmp_path))


def test_a_cost_objective_the_candidates_do_not_record_stops_the_search_naming_it():
    oracle = TPEOracle(objective=[*P_AND_TG, keras_tuner.Objective("flops", "min")], max_trials=2)
    metrics = {"premature_accuracy": 0.5, "teacher_guidance": 0.25, "flops": 10.0}
    assert reported_metrics(oracle, metrics) == {**metrics, "multi_objective": 10.0 - 0.5 - 0.25}
    with pytest.raises(keras_tuner.errors.FatalValueError, match="'flops' is not recorded by this search"):
        reported_metrics(oracle, {"premature_accuracy": 0.5, "teacher_guidance": 0.2, "params": 10.0})


@pytest.fixture(scope="module")
def config_folder(tmp_path_factory) -> Path:
    """A folder with a teacher on the digits config's probe set (as `keras-sage search` users have)."""
    from test_cli_search import PROBE_SIZE, write_teacher

    from keras_sage.datasets import digits

    folder = tmp_path_factory.mktemp("config")
    data = digits(image_size=8, probe_size=PROBE_SIZE)
    write_teacher(folder / "teacher.h5", data.x_probe, data.y_probe)
    return folder


def pareto_config(folder: Path, name: str, objectives: str, oracle: str = "tpe") -> Path:
    from test_cli_search import write_config

    path = write_config(folder, name, max_trials=3, oracle=oracle)
    path.write_text(path.read_text().replace("seed = 1\n", f"seed = 1\nobjectives = {objectives}\n"))
    return path


def test_a_config_with_objectives_runs_a_pareto_search_from_the_command_line(config_folder, capsys):
    from keras_sage.cli import main

    config = pareto_config(config_folder, "pareto", '["premature_accuracy", "teacher_guidance", "params"]')
    assert main(["search", str(config)]) == 0
    project = config_folder / "searches" / "pareto"
    study = study_of(project)
    maximize, minimize = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    assert study.directions == [maximize, maximize, minimize]
    assert study.metric_names == ["premature_accuracy", "teacher_guidance", "params"]
    metrics = trial_metrics(project)
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            trial_metric = metrics[trial.user_attrs["keras_tuner_trial_id"]]
            assert trial.values == [
                pytest.approx(trial_metric[name], abs=1e-12)
                for name in ("premature_accuracy", "teacher_guidance", "params")
            ]
    # Progress lines count the front, never a best score (KerasTuner's sum of the objectives).
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if re.match(r"trial \d+/", line)]
    assert progress and all(" on the front · " in line and "best score" not in line for line in progress)


@pytest.mark.parametrize(
    ("objectives", "oracle", "message"),
    [
        ('["premature_accuracy", "val_loss"]', "tpe", "[search] objectives: 'val_loss' is not a metric"),
        ('"teacher_guidance"', "tpe", "[search] objectives must be an array of metric names"),
        ('["premature_accuracy", "teacher_guidance"]', "reinforce", "ReinforceOracle takes one objective"),
    ],
)
def test_bad_objectives_in_a_config_are_one_line_exit_2(config_folder, capsys, objectives, oracle, message):
    from keras_sage.cli import main

    config = pareto_config(config_folder, f"bad_{oracle}", objectives, oracle=oracle)
    assert main(["search", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    project = config_folder / "searches" / f"bad_{oracle}"
    assert not (project / "oracle.json").exists() and not list(project.glob("trial_*"))
    if oracle == "tpe":  # refused with the config, before the search takes its project's lock
        assert not project.exists()


def test_the_analysis_front_of_p_and_tg_marks_the_summary_the_report_and_the_export(tpe_tuner, tmp_path):
    from keras_sage.analysis import front_trial_ids, project_records, project_report, search_summary
    from keras_sage.analysis.export import trial_rows
    from keras_sage.analysis.records import FRONT, TrialRecord

    records = [
        TrialRecord("0", "COMPLETED", premature_accuracy=0.5, teacher_guidance=0.5),
        TrialRecord("1", "COMPLETED", premature_accuracy=0.4, teacher_guidance=0.4),
        TrialRecord("2", "FAILED"),
        TrialRecord("3", "COMPLETED", premature_accuracy=0.6, teacher_guidance=0.1),
        TrialRecord("4", "COMPLETED", premature_accuracy=0.5, teacher_guidance=0.5),
    ]
    assert front_trial_ids(records) == ["0", "3", "4"]
    project = project_records(tpe_tuner.project_dir)
    front = [trial.trial_id for trial in tpe_tuner.pareto_front()]  # P and TG are its objectives
    assert front_trial_ids(project.records) == front
    assert (
        search_summary("pareto", project)[FRONT] == search_summary("pareto", tpe_tuner)[FRONT] == len(front)
    )
    report = project_report(tpe_tuner.project_dir, tmp_path / "report")
    assert f"on the Pareto front of P and TG ({len(front)} trials" in report
    marked = [line.split()[0] for line in report.splitlines() if line.split()[1:2] == ["*"]]
    assert marked == front
    assert [row["trial_id"] for row in trial_rows(tpe_tuner.project_dir) if row["on_front"]] == front


# A Pareto search as users run it: processes killed with SIGKILL and resumed, a chief with workers.


@pytest.fixture(scope="module")
def process_teacher(tmp_path_factory) -> Path:
    from distributed_harness import write_teacher

    return write_teacher(tmp_path_factory.mktemp("process_teacher"))


def told_values(directory: Path) -> list[tuple]:
    from distributed_harness import project

    return [(trial.state, tuple(trial.values or ())) for trial in study_of(project(directory)).trials]


def p_and_tg(directory: Path) -> dict[str, tuple[float, float]]:
    from distributed_harness import trials

    return {
        trial_id: tuple(
            trial["metrics"]["metrics"][name]["observations"][-1]["value"][0] for name in P_AND_TG_NAMES
        )
        for trial_id, trial in trials(directory).items()
    }


P_AND_TG_NAMES = ("premature_accuracy", "teacher_guidance")


@pytest.mark.slow
def test_a_pareto_search_killed_mid_trial_resumes_as_if_it_had_never_stopped(tmp_path, process_teacher):
    from distributed_harness import Processes, kill, paused_trial, trials, wait_for

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with (
        Processes(killed, process_teacher, "pareto", 4) as runs,
        Processes(reference, process_teacher, "pareto", 4) as references,
    ):
        uninterrupted = references.start()
        victim = runs.start(pause_at=3)
        wait_for(lambda: paused_trial(killed, "tuner0") is not None, "the third trial", [victim], 200)
        kill(victim)
        resumed = runs.start()
        assert runs.wait(resumed) == 0, runs.log(resumed)
        assert references.wait(uninterrupted) == 0, references.log(uninterrupted)
    assert {trial["status"] for trial in trials(killed).values()} == {"COMPLETED"}
    expected = p_and_tg(reference)
    assert {trial_id: pytest.approx(values, abs=1e-6) for trial_id, values in expected.items()} == p_and_tg(
        killed
    )
    told = told_values(killed)
    assert [state for state, _ in told] == [optuna.trial.TrialState.COMPLETE] * 4
    assert told == [(state, pytest.approx(values, abs=1e-6)) for state, values in told_values(reference)]
    np.testing.assert_allclose(
        sorted(values for _, values in told), sorted(p_and_tg(killed).values()), atol=1e-12
    )


@pytest.mark.slow
def test_a_pareto_search_with_a_chief_and_two_workers_tells_the_chief_p_and_tg(tmp_path, process_teacher):
    from distributed_harness import PATIENT_TIMES, Processes, free_port, trials

    directory = tmp_path / "search"
    with Processes(
        directory, process_teacher, "pareto", 4, port=free_port(), times=PATIENT_TIMES
    ) as processes:
        workers = [processes.start("worker0"), processes.start("worker1")]
        chief = processes.start("chief")
        processes.wait_all([chief, *workers])
        logs = "\n".join(processes.log(process) for process in (chief, *workers))
        assert [process.returncode for process in (chief, *workers)] == [0, 0, 0], logs
    assert {trial["status"] for trial in trials(directory).values()} == {"COMPLETED"}
    told = told_values(directory)
    assert [state for state, _ in told] == [optuna.trial.TrialState.COMPLETE] * 4
    np.testing.assert_allclose(
        sorted(values for _, values in told), sorted(p_and_tg(directory).values()), atol=1e-12
    )


@pytest.mark.slow
def test_keras_sage_search_as_a_command_runs_a_pareto_search_from_its_config(config_folder):
    import subprocess
    import sys

    config = pareto_config(config_folder, "command", '["premature_accuracy", "teacher_guidance"]')
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    project = config_folder / "searches" / "command"
    study = study_of(project)
    assert study.metric_names == list(P_AND_TG_NAMES)
    metrics = trial_metrics(project)
    assert len(study.trials) == 3
    for trial in study.trials:
        if (
            trial.state != optuna.trial.TrialState.COMPLETE
            or trial.user_attrs["keras_tuner_trial_id"] not in metrics
        ):
            continue
        trial_metric = metrics[trial.user_attrs["keras_tuner_trial_id"]]
        assert trial.values == [pytest.approx(trial_metric[name], abs=1e-12) for name in P_AND_TG_NAMES]
