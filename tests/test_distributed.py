"""KerasTuner's parallel tuning with SageTuner: a real chief and real workers on 127.0.0.1.

The processes run `tests/distributed/search.py` (digits at 8x8, a CNN of at most 2 layers, 2 SGD steps per
candidate); the chief's own logic (heartbeats, held-back stops, trials ended once) is also tested here on
an oracle in this process.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import grpc
import keras_tuner
import numpy as np
import optuna
import pytest
from distributed_harness import (
    PATIENT_TIMES,
    SEED,
    Processes,
    finished_runs,
    free_port,
    oracle_state,
    project,
    returned_at,
    trials,
    write_teacher,
)

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.project_files import CONTROLLER_FILE, JOURNAL_FILE
from keras_sage.tuners import SageTuner, TPEOracle, _compat, distributed

MAX_TRIALS = 4


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory) -> Path:
    return write_teacher(tmp_path_factory.mktemp("teacher"))


def assert_every_trial_ran_once(directory: Path, max_trials: int) -> list[tuple[str, str, int]]:
    found = trials(directory)
    assert sorted(found) == [str(i) for i in range(max_trials)]
    assert {trial["status"] for trial in found.values()} == {"COMPLETED"}, {
        trial_id: trial["message"] for trial_id, trial in found.items()
    }
    runs = finished_runs(directory)
    counts = collections.Counter(trial_id for trial_id, _, _ in runs)
    assert counts == {str(i): 1 for i in range(max_trials)}, runs
    # Each trial draws its weights and data order from the oracle's seed, whichever process runs it.
    assert all(seed == SEED + int(trial_id) for trial_id, _, seed in runs)
    state = oracle_state(directory)
    assert state["ongoing_trials"] == {}
    assert state["retry_queue"] == []
    assert sorted(state["end_order"]) == sorted(found)
    return runs


@pytest.mark.parametrize("oracle", ["tpe", pytest.param("reinforce", marks=pytest.mark.slow)])
def test_a_chief_and_two_workers_run_every_trial_once(tmp_path, teacher_path, oracle):
    directory = tmp_path / "search"
    with Processes(
        directory, teacher_path, oracle, MAX_TRIALS, port=free_port(), times=PATIENT_TIMES
    ) as processes:
        workers = [processes.start("worker0"), processes.start("worker1")]
        if oracle == "tpe":
            # Workers started before their chief wait for it, then join.
            for worker in workers:
                processes.wait_for_line(worker, "search.py: worker")
        chief = processes.start("chief")
        processes.wait_all([chief, *workers])
        logs = "\n".join(processes.log(p) for p in (chief, *workers))
        assert [p.returncode for p in (chief, *workers)] == [0, 0, 0], logs

    runs = assert_every_trial_ran_once(directory, MAX_TRIALS)
    assert {tuner_id for _, tuner_id, _ in runs} == {"worker0", "worker1"}
    values = [json.dumps(t["hyperparameters"]["values"], sort_keys=True) for t in trials(directory).values()]
    assert len(set(values)) == MAX_TRIALS, f"{len(set(values))} distinct suggestions of {MAX_TRIALS}"

    # The oracle's state lives on the chief, which wrote it once per trial.
    if oracle == "tpe":
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(project(directory) / JOURNAL_FILE))
        )
        study = optuna.load_study(study_name="keras-sage", storage=storage)
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * MAX_TRIALS
        told = sorted(t.value for t in study.trials)
        assert told == pytest.approx(sorted(t["score"] for t in trials(directory).values()))
    else:
        with np.load(project(directory) / CONTROLLER_FILE) as saved:
            assert int(saved["updates"]) == MAX_TRIALS // 2  # search.py's batch_size is 2

    # KerasTuner's chief polls every 20 s: its search returned ~20 s after the last trial. This one polls
    # every 0.5 s; the workers, told to stop within as long, exit at once. (The chief's process then
    # takes seconds more to exit: Python's final garbage collection of TensorFlow's objects.)
    last_trial_end = max(p.stat().st_mtime for p in project(directory).glob("trial_*/trial.json"))
    returned = returned_at(processes.log(chief)) - last_trial_end
    assert returned < 8, f"the chief's search returned {returned:.1f} s after the last trial ended"


# The chief's logic, on an oracle in this process.


def tiny_oracle(tmp_path: Path, max_trials: int = 3) -> keras_tuner.Oracle:
    objective = keras_tuner.Objective("score", "max")
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=1)
    _compat.set_oracle_project_dir(oracle, str(tmp_path), "p")
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 1000)
    oracle.update_space(hp)
    return oracle


def end(oracle: keras_tuner.Oracle, trial: keras_tuner.engine.trial.Trial, score: float) -> bool:
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = "COMPLETED"
    return distributed._end_trial(oracle, trial)


def test_a_silent_workers_trial_goes_back_to_the_queue_and_runs_once(tmp_path):
    oracle = tiny_oracle(tmp_path)
    seen: dict[str, float] = {}
    tuners: dict[str, float] = {}
    first = distributed._create_trial(oracle, "worker0")
    second = distributed._create_trial(oracle, "worker1")
    seen[first.trial_id] = time.monotonic() - 10  # worker0 has been silent for 10 s
    seen[second.trial_id] = time.monotonic()
    assert distributed._requeue_silent(oracle, seen, tuners, timeout=5) == [("worker0", first.trial_id)]
    assert "worker0" not in oracle.tuner_ids and list(oracle.ongoing_trials) == ["worker1"]
    # oracle.json says so at once, so a chief restarted now re-runs it too, and only it.
    assert json.loads((tmp_path / "p" / "oracle.json").read_text())["retry_queue"] == [first.trial_id]

    # worker1 ends its trial and asks again: it gets the dead worker's trial, not a new one.
    assert end(oracle, second, 0.5)
    again = distributed._create_trial(oracle, "worker1")
    assert again.trial_id == first.trial_id and again.status == "RUNNING"
    assert end(oracle, again, 0.7)
    # The dead worker's late report of the same trial is ignored: the trial ended once.
    assert not end(oracle, first, 0.1)
    assert oracle.end_order == [second.trial_id, first.trial_id]
    assert oracle.trials[first.trial_id].score == 0.7


def test_a_worker_is_held_back_not_stopped_while_another_worker_runs_the_last_trials(tmp_path):
    oracle = tiny_oracle(tmp_path, max_trials=2)
    first = distributed._create_trial(oracle, "worker0")
    second = distributed._create_trial(oracle, "worker1")
    assert end(oracle, first, 0.5)
    # Every trial has been handed out but worker1's still runs: worker0 waits (it may be needed).
    assert distributed._create_trial(oracle, "worker0").status == "IDLE"
    assert not distributed._finished(oracle)
    assert end(oracle, second, 0.6)
    assert distributed._create_trial(oracle, "worker0").status == "STOPPED"
    assert distributed._create_trial(oracle, "worker1").status == "STOPPED"
    assert distributed._finished(oracle) and distributed._no_worker_left(oracle)
    # Saved after the last trial was forgotten as ongoing: a reopened project re-runs nothing.
    assert json.loads((tmp_path / "p" / "oracle.json").read_text())["ongoing_trials"] == {}


def test_an_idle_worker_silent_for_the_timeout_is_forgotten(tmp_path):
    oracle = tiny_oracle(tmp_path, max_trials=1)
    tuners = {"worker0": time.monotonic() - 10}
    oracle.tuner_ids.add("worker0")
    assert distributed._requeue_silent(oracle, {}, tuners, timeout=5) == []
    assert not oracle.tuner_ids


def one_trial_tuner(directory: Path, teacher_path: Path) -> SageTuner:
    return SageTuner(
        CNNSearchSpace(max_layers=1, num_classes=10, input_shape=(8, 8, 1)),
        teacher=teacher_path,
        premature_steps=1,
        oracle=TPEOracle(max_trials=1, seed=1),
        directory=directory,
    )


def search_as_a_worker(
    directory: Path, teacher_path: Path, monkeypatch, tuner_id: str, port: int, wait: str
) -> tuple[distributed.ChiefUnreachableError, float]:
    """A worker's search with its chief at 127.0.0.1:`port`; returns the error it ends with, and the
    seconds its `search` took (the tuner's making, which loads the teacher, not counted)."""
    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv(distributed.CHIEF_WAIT_VARIABLE, wait)
    tuner = one_trial_tuner(directory, teacher_path)
    splits = digits(image_size=8, probe_size=20)
    started = time.monotonic()
    with pytest.raises(distributed.ChiefUnreachableError) as raised:
        tuner.search(
            splits.x_train[:8], splits.y_train[:8], validation_data=(splits.x_val[:8], splits.y_val[:8])
        )
    return raised.value, time.monotonic() - started


def test_a_worker_without_a_chief_gives_up_with_one_line(tmp_path, teacher_path, monkeypatch):
    port = free_port()
    error, waited = search_as_a_worker(tmp_path, teacher_path, monkeypatch, "worker7", port, wait="1.5")
    assert 1.4 < waited < 10
    message = str(error)
    assert "\n" not in message
    assert f"worker7: no chief answered at 127.0.0.1:{port} within 1.5 s" in message
    assert distributed.CHIEF_WAIT_VARIABLE in message


def test_an_interrupt_landing_after_the_trial_end_stopped_the_heartbeat_is_a_lost_chief(
    tmp_path, teacher_path, monkeypatch
):
    # The chief died between answering a trial's update and its end: the heartbeat gives up (and
    # interrupts the main thread) while `on_trial_end` is stopping it.
    lost = "keras-sage worker worker0: the chief at 127.0.0.1:1 stopped answering"

    class GaveUp:
        def __init__(self) -> None:
            self.lost = lost

        def stop(self) -> None:
            pass

    def search_interrupted_after_the_trial_end(tuner, *args, **kwargs):
        tuner._heartbeat = GaveUp()
        tuner.on_trial_end(tuner.oracle.create_trial(tuner.tuner_id))
        raise KeyboardInterrupt

    monkeypatch.setattr(keras_tuner.Tuner, "search", search_interrupted_after_the_trial_end)
    tuner = one_trial_tuner(tmp_path, teacher_path)
    with pytest.raises(distributed.ChiefUnreachableError) as raised:
        tuner.search(
            np.zeros((8, 8, 8, 1)), np.zeros(8), validation_data=(np.zeros((8, 8, 8, 1)), np.zeros(8))
        )
    assert str(raised.value) == lost


def test_a_heartbeat_that_gives_up_after_its_trial_ended_interrupts_nothing(monkeypatch):
    # The chief stopped answering while the worker's trial ended: the heartbeat finds it lost, but the
    # worker's main thread has left the trial, so nothing must interrupt it (its next call finds out).
    interrupts: list[tuple] = []
    monkeypatch.setattr(distributed.signal, "pthread_kill", lambda *args: interrupts.append(args))
    started = threading.Event()
    holder: list[distributed.Heartbeat] = []

    class Stub:
        def GetTrial(self, request, **kwargs):
            started.wait(5)
            holder[0].stop()  # The trial ends during the heartbeat's call...
            raise grpc.RpcError  # ...which the dead chief never answers.

    class Client:
        stub = Stub()

    timeouts = distributed.Timeouts(heartbeat=0.01, worker_timeout=0.02, chief_timeout=0.01, chief_wait=1)
    holder.append(distributed.Heartbeat(Client(), "3", timeouts, "worker0"))
    started.set()
    holder[0]._thread.join(5)
    assert holder[0].lost is not None and "worker0" in holder[0].lost
    assert interrupts == []


def test_a_worker_waiting_for_its_chief_tries_again_every_second(tmp_path, teacher_path, monkeypatch):
    # Something listens at the chief's address but is no chief: it hangs up on every connection. gRPC's
    # own backoff (1 s, then x1.6 up to 120 s, ±20%) tries 3 or 4 times in 5 s, at least 1.28 s apart in
    # the median; the worker's (0.2 s, x1.6, at most 1 s, ±20%) 6 to 8 times, at most 1.2 s apart.
    listener = socket.create_server(("127.0.0.1", 0))
    attempts: list[float] = []

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                attempts.append(time.monotonic())
                connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        search_as_a_worker(tmp_path, teacher_path, monkeypatch, "worker0", port, wait="5")
    finally:
        listener.close()
    gaps = np.diff(attempts)
    assert len(attempts) >= 4 and np.median(gaps) <= 1.2, [
        round(later - attempts[0], 2) for later in attempts
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            distributed.HEARTBEAT_VARIABLE,
            "soon",
            "KERAS_SAGE_HEARTBEAT_S must be a number of seconds, got 'soon'",
        ),
        (distributed.CHIEF_TIMEOUT_VARIABLE, "0", "KERAS_SAGE_CHIEF_TIMEOUT_S must be a positive number"),
        (
            distributed.WORKER_TIMEOUT_VARIABLE,
            "2",
            "worker timeout (2.0 s, KERAS_SAGE_WORKER_TIMEOUT_S) must be",
        ),
    ],
)
def test_bad_times_in_the_environment_are_named(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv(
        distributed.HEARTBEAT_VARIABLE, "5"
    ) if variable != distributed.HEARTBEAT_VARIABLE else None
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        distributed.Timeouts.from_environment()


def test_reopening_a_project_whose_oracle_lists_an_ended_trial_as_ongoing_runs_nothing(
    tmp_path, teacher_path
):
    # KerasTuner's chief saved oracle.json before it forgot the last trial as ongoing; reopening such a
    # project re-ran that COMPLETED trial.
    splits = digits(image_size=8, probe_size=20)

    def search() -> SageTuner:
        tuner = SageTuner(
            CNNSearchSpace(max_layers=1, num_classes=10, input_shape=(8, 8, 1)),
            teacher=teacher_path,
            premature_steps=1,
            oracle=TPEOracle(max_trials=1, seed=1),
            directory=tmp_path,
            project_name="p",
        )
        tuner.search(
            splits.x_train[:16], splits.y_train[:16], validation_data=(splits.x_val[:8], splits.y_val[:8])
        )
        return tuner

    search()
    oracle_file = tmp_path / "p" / "oracle.json"
    state = json.loads(oracle_file.read_text())
    state["ongoing_trials"] = {"chief": "0"}
    oracle_file.write_text(json.dumps(state))
    trial_file = tmp_path / "p" / "trial_0" / "trial.json"
    before = trial_file.read_bytes()
    reopened = search()
    assert trial_file.read_bytes() == before
    assert reopened.search_examples == 16  # The first search's examples only: nothing trained again.
