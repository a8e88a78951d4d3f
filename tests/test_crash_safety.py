"""A search survives kill -9 (of itself, a worker, the chief), read-only or full disks, and planted pickles.

The killed processes are real (`tests/distributed/search.py`, see `distributed_harness.py`); the disk and
pickle checks run a search in this process.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from distributed_harness import (
    CHIEF_TIMEOUT_S,
    HEARTBEAT_S,
    SEED,
    WORKER_TIMEOUT_S,
    Processes,
    completed,
    finished_runs,
    free_port,
    kill,
    oracle_state,
    paused_trial,
    project,
    returned_at,
    trials,
    wait_for,
    write_teacher,
)

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.project_files import CONTROLLER_FILE, JOURNAL_FILE, JOURNAL_LOCK_FILE, PICKLED_SAMPLER_FILE
from keras_sage.tuners import ReinforceOracle, SageTuner, TPEOracle, _compat
from keras_sage.tuners.oracles.optuna_oracle import BatchedJournalFile

MAX_TRIALS = 4


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory) -> Path:
    return write_teacher(tmp_path_factory.mktemp("teacher"))


def statuses(directory: Path) -> dict[str, str]:
    return {trial_id: trial["status"] for trial_id, trial in trials(directory).items()}


def assert_every_trial_ended_once(directory: Path, max_trials: int) -> list[tuple[str, str, int]]:
    assert statuses(directory) == {str(i): "COMPLETED" for i in range(max_trials)}
    runs = finished_runs(directory)
    assert collections.Counter(trial_id for trial_id, _, _ in runs) == {
        str(i): 1 for i in range(max_trials)
    }, runs
    assert all(seed == SEED + int(trial_id) for trial_id, _, seed in runs)
    state = oracle_state(directory)
    assert state["ongoing_trials"] == {} and state["retry_queue"] == []
    assert sorted(state["end_order"]) == [str(i) for i in range(max_trials)]
    return runs


def study_trials(directory: Path) -> list[optuna.trial.FrozenTrial]:
    backend = optuna.storages.journal.JournalFileBackend(str(project(directory) / JOURNAL_FILE))
    return optuna.load_study(study_name="keras-sage", storage=optuna.storages.JournalStorage(backend)).trials


# kill -9 of a single-process search.


@pytest.mark.parametrize("oracle", ["tpe", pytest.param("reinforce", marks=pytest.mark.slow)])
def test_a_search_killed_mid_trial_resumes_as_if_it_had_never_stopped(tmp_path, teacher_path, oracle):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with (
        Processes(killed, teacher_path, oracle, MAX_TRIALS) as runs,
        Processes(reference, teacher_path, oracle, MAX_TRIALS) as references,
    ):
        uninterrupted = references.start()
        victim = runs.start(pause_at=3)
        wait_for(lambda: paused_trial(killed, "tuner0") is not None, "the third trial", [victim], 200)
        kill(victim)
        assert statuses(killed) == {"0": "COMPLETED", "1": "COMPLETED", "2": "RUNNING"}
        kept = {trial_id: trial["score"] for trial_id, trial in trials(killed).items() if trial_id != "2"}

        resumed = runs.start()  # The same command again.
        assert runs.wait(resumed) == 0, runs.log(resumed)
        assert references.wait(uninterrupted) == 0, references.log(uninterrupted)

    # The completed trials were kept (not run again), the interrupted one ran again, once.
    assert_every_trial_ended_once(killed, MAX_TRIALS)
    assert {trial_id: trials(killed)[trial_id]["score"] for trial_id in kept} == kept
    # The same trials, scores and best as a search that was never killed (the oracle state was intact).
    for (trial_id, trial), (_, expected) in zip(
        trials(killed).items(), trials(reference).items(), strict=True
    ):
        assert trial["hyperparameters"]["values"] == expected["hyperparameters"]["values"], trial_id
        assert trial["score"] == pytest.approx(expected["score"], abs=1e-6), trial_id
    if oracle == "tpe":
        told = [(t.state, t.value) for t in study_trials(killed)]
        assert told == [(t.state, t.value) for t in study_trials(reference)]
        assert [state for state, _ in told] == [optuna.trial.TrialState.COMPLETE] * MAX_TRIALS
    else:
        with (
            np.load(project(killed) / CONTROLLER_FILE) as got,
            np.load(project(reference) / CONTROLLER_FILE) as want,
        ):
            assert sorted(got.files) == sorted(want.files)
            for name in want.files:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-6, err_msg=name)
            assert int(got["updates"]) == MAX_TRIALS // 2


# kill -9 in parallel tuning.


def test_a_worker_killed_mid_trial_has_its_trial_run_again_by_another(tmp_path, teacher_path):
    directory = tmp_path / "search"
    with Processes(directory, teacher_path, "tpe", MAX_TRIALS, port=free_port()) as processes:
        chief = processes.start("chief")
        victim = processes.start("worker0", pause_at=1)
        survivor = processes.start("worker1")
        wait_for(lambda: paused_trial(directory, "worker0") is not None, "worker0's trial", [victim], 200)
        lost = paused_trial(directory, "worker0")
        kill(victim)
        processes.wait_all([chief, survivor])
        assert (chief.returncode, survivor.returncode) == (0, 0), processes.log(chief) + processes.log(
            survivor
        )

    runs = assert_every_trial_ended_once(directory, MAX_TRIALS)
    assert (lost, "worker1") in [(trial_id, tuner_id) for trial_id, tuner_id, _ in runs]
    assert all(tuner_id == "worker1" for _, tuner_id, _ in runs)
    # The chief noticed the silent worker (after WORKER_TIMEOUT_S without a heartbeat) and said so.
    assert (
        f"keras-sage chief: worker worker0 sent nothing for {WORKER_TIMEOUT_S:g} s; "
        f"its trial {lost} goes back to the queue"
    ) in processes.log(chief)
    assert [t.state for t in study_trials(directory)] == [optuna.trial.TrialState.COMPLETE] * MAX_TRIALS


def test_a_killed_chief_stops_its_workers_and_a_restart_runs_no_trial_twice(tmp_path, teacher_path):
    directory = tmp_path / "search"
    port = free_port()
    with Processes(directory, teacher_path, "tpe", MAX_TRIALS, port=port) as processes:
        chief = processes.start("chief")
        workers = [processes.start("worker0", pause_at=1), processes.start("worker1")]
        wait_for(
            lambda: completed(directory) >= 1 and paused_trial(directory, "worker0") is not None,
            "a completed trial and worker0 in its trial",
            [chief, *workers],
            200,
        )
        killed_at = time.time()
        kill(chief)
        exited = processes.wait_all(workers)
        before = {trial_id: trial["score"] for trial_id, trial in trials(directory).items() if trial["score"]}
        for worker, name in zip(workers, ("worker0", "worker1"), strict=True):
            log = processes.log(worker)
            assert worker.returncode == 3, log
            # One line, within the chief timeout and a heartbeat (and the time it takes to notice); a worker
            # whose main thread is in native code then (a loaded machine) is ended one chief timeout later,
            # without search.py's own "gave up" line.
            assert (
                log.strip()
                .splitlines()[-1]
                .startswith(f"keras-sage worker {name}: the chief at 127.0.0.1:{port} stopped answering")
            ), log
            stopped = returned_at(log, "gave up") if " gave up at " in log else exited[worker.pid]
            gave_up = stopped - killed_at
            assert gave_up < 2 * CHIEF_TIMEOUT_S + HEARTBEAT_S + 10, (
                f"{name} gave up {gave_up:.1f} s after the chief died"
            )

        # The same commands again: the search resumes and no trial that had ended runs again.
        restarted = [processes.start("chief"), processes.start("worker0"), processes.start("worker1")]
        processes.wait_all(restarted)
        assert [p.returncode for p in restarted] == [0, 0, 0], "\n".join(processes.log(p) for p in restarted)
        assert_no_trial_ran_twice(directory, before)

        # Reopening the finished project runs nothing and leaves no trial listed as ongoing.
        reopened = [processes.start("chief"), processes.start("worker0")]
        processes.wait_all(reopened)
        assert [p.returncode for p in reopened] == [0, 0]
    assert_no_trial_ran_twice(directory, before)


def test_a_writer_killed_holding_the_journal_lock_leaves_no_stale_lock(tmp_path):
    """The journal's lock is the kernel's: while a process holds it a flush waits, and once that process is
    killed (-9) the flush goes through at once (optuna's lock files outlive their holder by 30 s)."""
    journal = tmp_path / JOURNAL_FILE
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from keras_sage.tuners.oracles.optuna_oracle import KernelJournalLock\n"
            "KernelJournalLock(sys.argv[1]).acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            str(tmp_path / JOURNAL_LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        backend = BatchedJournalFile(str(journal))
        backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}])
        flush = threading.Thread(target=backend.flush, daemon=True)
        flush.start()
        flush.join(timeout=2)
        assert flush.is_alive() and journal.read_bytes() == b"", "the flush did not wait for the holder"
    finally:
        kill(holder)
    flush.join(timeout=60)
    assert not flush.is_alive(), "the lock outlived its killed holder"
    assert [json.loads(line)["study_name"] for line in journal.read_text().splitlines()] == ["s"]
    assert [log["study_name"] for log in BatchedJournalFile(str(journal)).read_logs(0)] == ["s"]


@pytest.mark.parametrize("before", [[], ["s"]])
def test_a_journal_line_torn_by_a_kill_is_cut_off_before_the_next_append(tmp_path, before):
    journal = tmp_path / JOURNAL_FILE
    backend = BatchedJournalFile(str(journal))
    backend.append_logs([{"op_code": 0, "study_name": name} for name in before])
    backend.flush()
    with journal.open("ab") as file:
        file.write(b'{"op_code": 0, "study_na')  # A writer killed mid-append.
    reopened = BatchedJournalFile(str(journal))
    assert [log["study_name"] for log in reopened.read_logs(0)] == before
    reopened.append_logs([{"op_code": 0, "study_name": "t"}])
    reopened.flush()
    assert [json.loads(line)["study_name"] for line in journal.read_text().splitlines()] == [*before, "t"]


def assert_no_trial_ran_twice(directory: Path, ended_before: dict[str, float]) -> None:
    """Every trial COMPLETED and ended once: those that had ended before the chief died kept their score.

    A worker logs a finished run after the chief has answered its report; the chief may have died in
    between, so a trial that ended then has no line, and must not run again.
    """
    assert statuses(directory) == {str(i): "COMPLETED" for i in range(MAX_TRIALS)}
    counts = collections.Counter(trial_id for trial_id, _, _ in finished_runs(directory))
    assert all(count == 1 for count in counts.values()), counts
    assert set(counts) | set(ended_before) == {str(i) for i in range(MAX_TRIALS)}
    assert {trial_id: trials(directory)[trial_id]["score"] for trial_id in ended_before} == ended_before
    state = oracle_state(directory)
    assert state["ongoing_trials"] == {} and state["retry_queue"] == []
    assert sorted(state["end_order"]) == [str(i) for i in range(MAX_TRIALS)]


# The disk, and data that is never executed.


def small_search(directory: Path, teacher_path: Path, max_trials: int, oracle=None) -> SageTuner:
    space = CNNSearchSpace(max_layers=1, num_classes=10, input_shape=(8, 8, 1))
    tuner = SageTuner(
        space,
        teacher=teacher_path,
        premature_steps=1,
        oracle=oracle or TPEOracle(max_trials=max_trials, n_startup_trials=2, seed=SEED),
        directory=directory,
        project_name="p",
    )
    splits = digits(image_size=8, probe_size=20)
    tuner.search(
        splits.x_train[:32],
        splits.y_train[:32],
        validation_data=(splits.x_val[:16], splits.y_val[:16]),
        batch_size=16,
        verbose=0,
    )
    return tuner


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def make_read_only(directory: Path, read_only: bool) -> None:
    """chmod for a user; for root (whom chmod does not stop) the immutable attribute, or a skip."""
    if os.geteuid() != 0:
        for path in [directory, *directory.rglob("*")]:
            path.chmod(
                (0o555 if path.is_dir() else 0o444) if read_only else (0o755 if path.is_dir() else 0o644)
            )
        return
    done = subprocess.run(["chattr", "-R", "+i" if read_only else "-i", str(directory)], capture_output=True)
    if done.returncode and read_only:
        pytest.skip(f"cannot make a directory read-only for root here: {done.stderr.decode().strip()}")


def test_a_read_only_project_is_a_clear_error_and_no_file_is_half_written(tmp_path, teacher_path):
    small_search(tmp_path, teacher_path, max_trials=1)
    before = snapshot(tmp_path / "p")
    make_read_only(tmp_path / "p", True)
    try:
        with pytest.raises(
            OSError, match=rf"cannot write in the project directory {tmp_path / 'p'} \("
        ) as raised:
            small_search(tmp_path, teacher_path, max_trials=2)
        assert raised.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    finally:
        make_read_only(tmp_path / "p", False)
    assert snapshot(tmp_path / "p") == before


def test_a_full_disk_leaves_every_state_file_whole_and_names_the_file(tmp_path, teacher_path, monkeypatch):
    tuner = small_search(tmp_path, teacher_path, max_trials=1)
    before = snapshot(tmp_path / "p")

    def disk_full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    oracle_file = tmp_path / "p" / "oracle.json"
    with pytest.raises(OSError, match=rf"cannot write {oracle_file} \(No space left on device"):
        tuner.oracle.save()  # KerasTuner's own writer, made atomic by keras-sage.
    with pytest.raises(OSError, match=rf"cannot write {tmp_path / 'p' / 'trial_0' / 'trial.json'} \("):
        tuner.oracle.update_trial("0", {"score": 2.0})  # which saves the trial
    monkeypatch.undo()
    assert snapshot(tmp_path / "p") == before  # No half-written file, no temporary file left.


class Planted:
    """Unpickling this creates the file `marker`: what any code in a planted pickle could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_planted_sampler_pickle_is_never_loaded_and_the_search_resumes(tmp_path, teacher_path):
    small_search(tmp_path / "a", teacher_path, max_trials=2)
    marker = tmp_path / "code-ran"
    (tmp_path / "a" / "p" / PICKLED_SAMPLER_FILE).write_bytes(pickle.dumps(Planted(marker)))
    with pytest.warns(UserWarning, match=f"{PICKLED_SAMPLER_FILE} is ignored: keras-sage never unpickles"):
        small_search(tmp_path / "a", teacher_path, max_trials=3)
    assert not marker.exists()
    got = {
        p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "a" / "p").glob("trial_*/trial.json")
    }
    assert {t["status"] for t in got.values()} == {"COMPLETED"} and len(got) == 3

    # The sampler's random state was saved as data and restored: the resumed search's TPE suggestion is
    # the one a search that never stopped makes.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        small_search(tmp_path / "b", teacher_path, max_trials=3)
    want = {
        p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "b" / "p").glob("trial_*/trial.json")
    }
    assert got["trial_2"]["hyperparameters"]["values"] == want["trial_2"]["hyperparameters"]["values"]
    state = json.loads((tmp_path / "a" / "p" / "optuna_sampler.json").read_text())
    assert sorted(state["random_states"]) == ["_random_sampler._rng", "_rng"]


def test_a_planted_object_array_in_the_controller_file_is_never_unpickled(tmp_path):
    space = CNNSearchSpace(max_layers=1, num_classes=10, input_shape=(8, 8, 1))
    oracle = ReinforceOracle(space, max_trials=2, seed=1)
    _compat.set_oracle_project_dir(oracle, str(tmp_path), "p")
    marker = tmp_path / "code-ran"
    path = Path(_compat.oracle_project_dir(oracle)) / CONTROLLER_FILE
    np.savez(path, weight_0=np.array([Planted(marker)], dtype=object), updates=np.array(1))
    with pytest.raises(ValueError, match=f"{path} is not a controller state that keras-sage wrote"):
        oracle.set_state(oracle.get_state())
    assert not marker.exists()
